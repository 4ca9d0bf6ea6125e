//! Committing webhook events to the durable queue from the server.
//!
//! One blocking writer thread owns the queue connection. Call tasks hand it events with
//! [`EventSink::commit`] and await its acknowledgement, which comes only once the batch the
//! events went into is durable (`enqueue_batch`: one commit, one fsync for SQLite FULL). So
//! a call never moves on before its event is safe, and events from many calls share one
//! commit. Nothing is delivered from the server process: `callmux dispatch` does that.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use callmux_webhook::{
    open_queue, CallEvent, CallStatus, Direction, EventQueue, HttpMethod, NewEvent, QueueSpec,
    Timestamp, WebhookPayload,
};
use tokio::sync::oneshot;
use tracing::{debug, error, warn};

/// Most events put into one queue commit.
const MAX_BATCH: usize = 512;

/// How long the writer keeps retrying a transient queue error (busy database, Redis
/// unreachable) before it reports the batch as failed.
const TRANSIENT_RETRY_FOR: Duration = Duration::from_secs(30);

struct Batch {
    events: Vec<NewEvent>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The server's handle to the event writer thread.
pub(crate) struct EventSink {
    tx: std_mpsc::Sender<Batch>,
    /// The application's event URL, for call status events.
    pub(crate) event_url: Option<String>,
    /// Its method.
    pub(crate) event_method: HttpMethod,
}

impl EventSink {
    /// Opens the queue (on this thread, so a bad spec fails start-up) and starts the writer.
    pub(crate) fn start(
        spec: &QueueSpec,
        event_url: Option<String>,
        event_method: HttpMethod,
    ) -> anyhow::Result<Self> {
        let queue =
            open_queue(spec).with_context(|| format!("cannot open the event queue {spec:?}"))?;
        let (tx, rx) = std_mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("event-writer".into())
            .spawn(move || writer(queue, &rx))
            .context("cannot start the event writer thread")?;
        Ok(Self {
            tx,
            event_url,
            event_method,
        })
    }

    /// Commits `events` to the queue and returns once they are durable. An error means
    /// the queue refused them (it is logged with the events' kinds).
    pub(crate) async fn commit(&self, events: Vec<NewEvent>) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let kinds: Vec<String> = events.iter().map(|e| e.kind.clone()).collect();
        let (done, wait) = oneshot::channel();
        if self.tx.send(Batch { events, done }).is_err() {
            error!(?kinds, "event writer stopped; events lost");
            return Err("event writer stopped".into());
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                error!(?kinds, error = %e, "events could not be committed to the queue");
                Err(e)
            }
            Err(_) => {
                error!(?kinds, "event writer stopped; events lost");
                Err("event writer stopped".into())
            }
        }
    }

    /// Commits one payload to `url` (nothing when there is no URL to send it to).
    pub(crate) async fn emit<P: WebhookPayload>(
        &self,
        call_uuid: &str,
        url: Option<&str>,
        method: HttpMethod,
        payload: &P,
    ) {
        let Some(url) = url else {
            debug!(kind = %payload.kind(), "no event URL; event not queued");
            return;
        };
        match NewEvent::from_payload(call_uuid, url, method, payload) {
            Ok(ev) => {
                let _ = self.commit(vec![ev]).await;
            }
            Err(e) => error!(error = %e, "cannot serialise an event"),
        }
    }

    /// Commits a call status event to the application's event URL.
    pub(crate) async fn call_status(&self, event: &CallEvent) {
        self.emit(
            &event.uuid,
            self.event_url.as_deref(),
            self.event_method,
            event,
        )
        .await;
    }
}

/// Who a call is, for its events.
#[derive(Debug, Clone)]
pub(crate) struct CallInfo {
    pub(crate) uuid: String,
    pub(crate) conversation_uuid: String,
    pub(crate) from: String,
    pub(crate) to: String,
}

impl CallInfo {
    /// A call status event for this (inbound) call, stamped now.
    pub(crate) fn event(&self, status: CallStatus) -> CallEvent {
        CallEvent::new(
            &self.uuid,
            &self.conversation_uuid,
            &self.from,
            &self.to,
            Direction::Inbound,
            status,
            Timestamp::from_system_time(SystemTime::now()),
        )
    }

    /// A `failed`/`rejected`/`cancelled` event with a reason and the SIP code sent.
    pub(crate) fn ended_event(
        &self,
        status: CallStatus,
        reason: &str,
        sip_code: Option<u16>,
    ) -> CallEvent {
        let mut ev = self.event(status);
        ev.reason = Some(reason.to_string());
        ev.sip_code = sip_code;
        ev
    }
}

/// The writer thread: takes whatever batches are waiting, commits them together, acks.
fn writer(mut queue: Box<dyn EventQueue>, rx: &std_mpsc::Receiver<Batch>) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        let mut count = batches.iter().map(|b| b.events.len()).sum::<usize>();
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(b) => {
                    count += b.events.len();
                    batches.push(b);
                }
                Err(_) => break,
            }
        }
        let events: Vec<NewEvent> = batches
            .iter()
            .flat_map(|b| b.events.iter().cloned())
            .collect();
        let result = commit_with_retry(queue.as_mut(), events);
        for b in batches {
            let _ = b.done.send(result.clone());
        }
    }
}

fn commit_with_retry(queue: &mut dyn EventQueue, events: Vec<NewEvent>) -> Result<(), String> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(10);
    loop {
        match queue.enqueue_batch(events.clone(), SystemTime::now()) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && start.elapsed() < TRANSIENT_RETRY_FOR => {
                warn!(error = %e, "event queue busy or unreachable; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
