//! callmux webhook core: event bodies, the durable event queue, the dispatcher's delivery
//! scheduler and webhook signing. Everything except the HTTP client.
//!
//! # Run-loop contract
//! - The **server** builds an event ([`event`]), turns it into a [`queue::NewEvent`] and
//!   calls [`queue::EventQueue::enqueue`] (or `enqueue_batch`) on a blocking thread; when
//!   that returns the event is durable, and only then does the call move on.
//! - **`callmux dispatch`** (a separate process, any number of them) loops:
//!   [`schedule::DeliveryScheduler::claim_limit`] → [`queue::EventQueue::claim`] →
//!   [`schedule::DeliveryScheduler::offer`] → [`schedule::DeliveryScheduler::poll_job`]
//!   (one HTTP attempt each, signed with [`signing::sign_webhook`], headers
//!   [`EVENT_ID_HEADER`] and [`IDEMPOTENCY_KEY_HEADER`] set to the event id) →
//!   [`schedule::DeliveryScheduler::on_result`] → [`schedule::QueueAction::apply`];
//!   between rounds it sleeps until an attempt ends or
//!   [`schedule::DeliveryScheduler::poll_timeout`].
//! - Delivery is at-least-once, in order per call, with exponential back-off and dead
//!   letters; docs/webhooks.md states the guarantees for receivers.
//!
//! # Panic policy
//! A panic is a bug; nothing from the network panics. Token verification, event parsing
//! and everything read back from SQLite or Redis return errors on malformed input.
//!
//! # What this crate never does
//! It never sends HTTP, spawns threads or tasks, sleeps, or reads the clock in its
//! scheduling and signing logic (time is an argument; jitter comes from a seeded
//! generator). Its only I/O is the queue backends: blocking SQLite file access and
//! blocking Redis commands, which the server runs off the media path.

pub mod event;
pub mod query;
pub mod queue;
pub mod schedule;
pub mod signing;
pub mod timestamp;

pub use event::{
    CallEvent, CallStatus, Direction, Dtmf, InputEvent, NotifyEvent, RecordEvent,
    RecordFailedEvent, RecordFailedStatus, RecordState, WebhookPayload,
};
pub use query::query_pairs;
pub use queue::{
    open_queue, EventId, EventQueue, HttpMethod, NewEvent, QueueDepth, QueueError, QueueSpec,
    QueuedEvent,
};
pub use schedule::{DeliveryJob, DeliveryResult, DeliveryScheduler, QueueAction, RetryPolicy};
pub use signing::{sign_webhook, verify_webhook, SigningError, WebhookClaims};
pub use timestamp::Timestamp;

/// Header carrying the event id (stable across retries) so receivers can drop duplicates.
pub const EVENT_ID_HEADER: &str = "X-Callmux-Event-Id";

/// The same event id under the generic idempotency header many frameworks understand.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Fuzz entry points (wired into cargo-fuzz by the server crate); each must never panic.
pub mod fuzzing {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Parse arbitrary bytes as each event body type, and re-serialise what parses.
    pub fn event_json(data: &[u8]) {
        fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(data: &[u8]) {
            if let Ok(v) = serde_json::from_slice::<T>(data) {
                // Whatever parsed must serialise again.
                let _ = serde_json::to_vec(&v);
            }
        }
        roundtrip::<crate::CallEvent>(data);
        roundtrip::<crate::RecordEvent>(data);
        roundtrip::<crate::RecordFailedEvent>(data);
        roundtrip::<crate::InputEvent>(data);
        roundtrip::<crate::NotifyEvent>(data);
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = crate::Timestamp::parse(text);
        }
    }

    /// Verify arbitrary bytes as a webhook token: the first line is the token, the rest
    /// the body.
    pub fn verify_token(data: &[u8]) {
        let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let (token, body) = data.split_at(split);
        let token = String::from_utf8_lossy(token);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let _ = crate::verify_webhook(b"fuzz", &token, body, now, Duration::from_secs(300));
        let _ = crate::verify_webhook(b"fuzz", &token, body, SystemTime::UNIX_EPOCH, Duration::MAX);
    }
}
