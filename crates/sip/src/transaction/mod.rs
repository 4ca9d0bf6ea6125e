//! RFC 3261 §17 transactions (with the RFC 6026 Accepted states) as plain state machines.
//!
//! Each machine stores the bytes it may have to retransmit and its timers as deadlines.
//! The endpoint feeds it messages and `now`, asks `poll_timeout()`, and calls
//! `handle_timeout(now)` when that deadline has passed; the machine answers with what to do.
//! The machines never build messages themselves except the non-2xx ACK (RFC 3261 §17.1.1.3),
//! which [`invite_client::build_ack`] derives from the INVITE and the response.
//!
//! Reliable transports (TCP/TLS) never retransmit requests or non-2xx responses, and Timers
//! D, I, J and K are zero there, so those transactions end at once.

pub mod invite_client;
pub mod invite_server;
pub mod non_invite_client;
pub mod non_invite_server;

use std::time::{Duration, Instant};

/// RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, L and M.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// Misuse of a transaction by its owner (never caused by the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// A final response was already sent; no further response is allowed.
    #[error("transaction already has a final response")]
    AlreadyFinal,
    /// Status code outside 100..=699.
    #[error("status code {0} is out of range")]
    BadStatus(u16),
}

/// Smallest of a set of optional deadlines.
pub(crate) fn earliest<const N: usize>(deadlines: [Option<Instant>; N]) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// True when `deadline` is set and has passed.
pub(crate) fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}
