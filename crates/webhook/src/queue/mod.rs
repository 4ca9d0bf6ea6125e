//! The durable event queue between the server (which commits each event before the call
//! moves on) and `callmux dispatch` (which delivers them).
//!
//! Contract shared by every backend (and checked by one conformance suite run against
//! each, `tests/queue_conformance.rs`):
//! - `enqueue` returns only once the event is durable (as durable as the backend is
//!   configured to be: see docs/webhooks.md).
//! - Per-call order: `claim` only ever returns the *head* of a call, the live (not dead)
//!   event with the lowest `seq` for that `call_uuid`. The next event of the call becomes
//!   claimable only once the head is acked or dead-lettered. A head waiting in
//!   `retry_later` therefore holds back the rest of its call, so two dispatchers can never
//!   deliver one call's events out of order or at the same time.
//! - `claim` leases what it returns to the named consumer for `lease`; nobody else gets
//!   it until the lease expires (the dispatcher died), after which it is claimable again
//!   with the same `EventId`. The lease must be longer than one delivery attempt.
//! - `ack` is idempotent (acking an unknown or already-acked event is `Ok`);
//!   `retry_later` and `dead_letter` of an unknown event are `QueueError::NotFound`.
//! - `retry_later` and `dead_letter` count a failed attempt (`attempts += 1`) and keep the
//!   error text in `last_error` (for a dead letter: the reason).
//! - `requeue_dead` puts dead events back at the *end* of their call's queue, keeping
//!   their `EventId` (the idempotency key) and `last_error`, with `attempts` reset to 0,
//!   a new `seq`, and `created_at` set to the requeue time (so the retry age restarts).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::WebhookPayload;

pub mod redis;
pub mod sqlite;

pub use self::redis::RedisQueue;
pub use self::sqlite::{SqliteQueue, SqliteSync};

/// Stable identity of one event: a UUID chosen at enqueue time, kept across retries,
/// lease expiry and requeue, and sent as the `X-Callmux-Event-Id` and `Idempotency-Key`
/// headers so receivers can drop duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// A fresh unique id: a UUID v7 (millisecond time prefix, then random bits), so ids
    /// created together sort together and SQLite's id index grows at its end instead of
    /// touching a random page per insert.
    pub fn random() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Wrap an id read back from a queue or typed by an operator (`--requeue ID`).
    pub fn from_string(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text, as it goes into headers.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the dispatcher sends the event (the NCCO's `eventMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// JSON body turned into query parameters.
    Get,
    /// JSON body (the default).
    Post,
}

impl HttpMethod {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

impl FromStr for HttpMethod {
    type Err = QueueError;

    /// Accepts `GET`/`POST` in any case (NCCO `eventMethod` values).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("GET") {
            Ok(Self::Get)
        } else if s.eq_ignore_ascii_case("POST") {
            Ok(Self::Post)
        } else {
            Err(QueueError::Corrupt(format!("unknown HTTP method {s:?}")))
        }
    }
}

/// An event the server wants delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The call whose order this event keeps (the leg uuid).
    pub call_uuid: String,
    /// Where to send it.
    pub url: String,
    /// How to send it.
    pub method: HttpMethod,
    /// The exact JSON body bytes (signed as they are).
    pub body: Vec<u8>,
    /// Event kind for logs and metrics (see [`WebhookPayload::kind`]).
    pub kind: String,
}

impl NewEvent {
    /// Serialise an event body and wrap it for the queue.
    pub fn from_payload<P: WebhookPayload>(
        call_uuid: impl Into<String>,
        url: impl Into<String>,
        method: HttpMethod,
        payload: &P,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            call_uuid: call_uuid.into(),
            url: url.into(),
            method,
            body: serde_json::to_vec(payload)?,
            kind: payload.kind(),
        })
    }
}

/// An event as stored in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Stable id, the idempotency key.
    pub id: EventId,
    /// Order within the call (monotonic per call; compare only within one `call_uuid`).
    pub seq: u64,
    /// The call this event belongs to.
    pub call_uuid: String,
    /// Where to send it.
    pub url: String,
    /// How to send it.
    pub method: HttpMethod,
    /// The exact JSON body bytes.
    pub body: Vec<u8>,
    /// Event kind for logs and metrics.
    pub kind: String,
    /// When it was enqueued (or requeued from the dead letters); retry age counts from it.
    pub created_at: SystemTime,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// The last failure (for a dead letter: why it was dead-lettered).
    pub last_error: Option<String>,
}

/// How many events are where, for metrics and `callmux dispatch --dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Live events not leased to a dispatcher (new, waiting behind their call's head, or
    /// waiting for a retry time).
    pub pending: u64,
    /// Events leased to a dispatcher (including leases that expired but were not yet
    /// claimed again).
    pub in_flight: u64,
    /// Dead letters.
    pub dead: u64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// SQLite failed (including `SQLITE_BUSY` after the busy timeout).
    #[error("sqlite queue: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis failed or could not be reached.
    #[error("redis queue: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The data directory could not be created or opened.
    #[error("queue directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The event is not (or no longer) in the queue.
    #[error("event {0} not in the queue")]
    NotFound(EventId),
    /// The SQLite file was written by a newer callmux.
    #[error("events.db schema version {found} is newer than this callmux supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// Stored data does not have the expected shape.
    #[error("corrupt queue entry: {0}")]
    Corrupt(String),
    /// The queue specification (URL, names) is unusable.
    #[error("bad queue spec: {0}")]
    BadSpec(String),
}

impl QueueError {
    /// True when the same call may succeed later (database busy, Redis unreachable): the
    /// caller should wait and retry rather than give up.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            Self::Redis(e) => e.is_io_error() || e.is_connection_dropped() || e.is_timeout(),
            _ => false,
        }
    }
}

/// The durable queue. Calls block (file or network I/O); the server runs them on a
/// blocking thread, never on the media path.
pub trait EventQueue: Send {
    /// Store one event; durable when it returns.
    fn enqueue(&mut self, ev: NewEvent, now: SystemTime) -> Result<EventId, QueueError>;

    /// Store several events atomically (all or none) at the cost of one commit; ids in
    /// input order. Events of one call keep their input order.
    fn enqueue_batch(
        &mut self,
        evs: Vec<NewEvent>,
        now: SystemTime,
    ) -> Result<Vec<EventId>, QueueError> {
        evs.into_iter().map(|ev| self.enqueue(ev, now)).collect()
    }

    /// Lease up to `limit` due events (call heads only) to `consumer` for `lease`.
    fn claim(
        &mut self,
        consumer: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<QueuedEvent>, QueueError>;

    /// Delivered: remove for good and let the call's next event through. Idempotent.
    fn ack(&mut self, id: &EventId) -> Result<(), QueueError>;

    /// Failed: release the lease, count the attempt, and make the event claimable again
    /// no earlier than `not_before`. The rest of its call waits behind it.
    fn retry_later(
        &mut self,
        id: &EventId,
        not_before: SystemTime,
        error: &str,
    ) -> Result<(), QueueError>;

    /// Give up: move the event to the dead letters (kept until requeued) and let the
    /// call's next event through.
    fn dead_letter(&mut self, id: &EventId, reason: &str) -> Result<(), QueueError>;

    /// The first `limit` dead letters, in the order they were dead-lettered.
    fn list_dead(&mut self, limit: usize) -> Result<Vec<QueuedEvent>, QueueError>;

    /// Requeue one dead letter (`Some`) or all (`None`), stamping them with `now`;
    /// returns how many were requeued.
    fn requeue_dead_at(
        &mut self,
        id: Option<&EventId>,
        now: SystemTime,
    ) -> Result<usize, QueueError>;

    /// [`requeue_dead_at`](Self::requeue_dead_at) with the system clock (operator
    /// command `callmux dispatch --requeue`).
    fn requeue_dead(&mut self, id: Option<&EventId>) -> Result<usize, QueueError> {
        self.requeue_dead_at(id, SystemTime::now())
    }

    /// Counts for metrics.
    fn depth(&mut self) -> Result<QueueDepth, QueueError>;
}

/// Which queue to open. Every process that shares a queue (server, dispatchers) must use
/// the same spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueSpec {
    /// Embedded SQLite file `{data_dir}/events.db` (the default; one host).
    Sqlite {
        /// Directory holding `events.db` (created if missing).
        data_dir: PathBuf,
        /// Durability level of each commit.
        synchronous: SqliteSync,
    },
    /// Redis Streams (several hosts, any number of dispatchers).
    Redis {
        /// `redis://[user:pass@]host[:port][/db]` or `rediss://...`.
        url: String,
        /// Key prefix; every key is `{prefix}:...` (one Redis Cluster hash slot).
        prefix: String,
        /// Consumer group the dispatchers share.
        group: String,
    },
}

/// Default Redis key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "callmux";
/// Default Redis consumer group.
pub const DEFAULT_REDIS_GROUP: &str = "dispatch";

impl QueueSpec {
    /// SQLite in `data_dir` with `synchronous=FULL`.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        Self::Sqlite {
            data_dir: data_dir.into(),
            synchronous: SqliteSync::Full,
        }
    }

    /// Parse the `--queue URL` flag: `redis://host:port/db?prefix=P&group=G` (or
    /// `rediss://`, `redis+unix://`); `prefix` and `group` are optional and are removed
    /// from the URL given to the Redis client. `sqlite:DIR` (or `sqlite://DIR`) selects
    /// SQLite in DIR; `?synchronous=normal` relaxes durability to process crashes only.
    pub fn parse_url(url: &str) -> Result<Self, QueueError> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((k, v));
        }
        let lower = base.to_ascii_lowercase();
        if let Some(dir) = lower
            .strip_prefix("sqlite://")
            .or_else(|| lower.strip_prefix("sqlite:"))
        {
            // Take the directory from the original (case-preserving) text.
            let dir = &base[base.len() - dir.len()..];
            if dir.is_empty() {
                return Err(QueueError::BadSpec(format!("{url}: no directory")));
            }
            let mut synchronous = SqliteSync::Full;
            for (k, v) in params {
                match (k, v.to_ascii_lowercase().as_str()) {
                    ("synchronous", "full") => synchronous = SqliteSync::Full,
                    ("synchronous", "normal") => synchronous = SqliteSync::Normal,
                    _ => {
                        return Err(QueueError::BadSpec(format!(
                            "{url}: unknown parameter {k}={v} (allowed: synchronous=full|normal)"
                        )))
                    }
                }
            }
            return Ok(Self::Sqlite {
                data_dir: PathBuf::from(dir),
                synchronous,
            });
        }
        if ["redis://", "rediss://", "redis+unix://", "unix://"]
            .iter()
            .any(|s| lower.starts_with(s))
        {
            let mut prefix = DEFAULT_REDIS_PREFIX.to_owned();
            let mut group = DEFAULT_REDIS_GROUP.to_owned();
            let mut rest = Vec::new();
            for (k, v) in params {
                match k {
                    "prefix" => prefix = v.to_owned(),
                    "group" => group = v.to_owned(),
                    _ => rest.push(format!("{k}={v}")),
                }
            }
            let url = if rest.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", rest.join("&"))
            };
            let spec = Self::Redis { url, prefix, group };
            spec.check()?;
            return Ok(spec);
        }
        Err(QueueError::BadSpec(format!(
            "{url}: expected redis://..., rediss://..., redis+unix://... or sqlite:DIR"
        )))
    }

    fn check(&self) -> Result<(), QueueError> {
        if let Self::Redis { prefix, group, .. } = self {
            let bad =
                |s: &str| s.is_empty() || s.contains(['{', '}']) || s.contains(char::is_whitespace);
            if bad(prefix) {
                return Err(QueueError::BadSpec(format!(
                    "redis prefix {prefix:?} must be non-empty without braces or spaces"
                )));
            }
            if bad(group) {
                return Err(QueueError::BadSpec(format!(
                    "redis group {group:?} must be non-empty without braces or spaces"
                )));
            }
        }
        Ok(())
    }
}

/// Open (creating if needed) the queue a spec names.
pub fn open_queue(spec: &QueueSpec) -> Result<Box<dyn EventQueue>, QueueError> {
    spec.check()?;
    match spec {
        QueueSpec::Sqlite {
            data_dir,
            synchronous,
        } => Ok(Box::new(SqliteQueue::open(data_dir, *synchronous)?)),
        QueueSpec::Redis { url, prefix, group } => {
            Ok(Box::new(RedisQueue::open(url, prefix, group)?))
        }
    }
}

/// Milliseconds since the epoch, clamped (times before 1970 become negative).
pub(crate) fn to_unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Inverse of [`to_unix_ms`].
pub(crate) fn from_unix_ms(ms: i64) -> SystemTime {
    let abs = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + abs
    } else {
        UNIX_EPOCH.checked_sub(abs).unwrap_or(UNIX_EPOCH)
    }
}

/// Lease length in whole milliseconds, at least 1.
pub(crate) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_redis_url_extracts_prefix_and_group() {
        let spec =
            QueueSpec::parse_url("redis://127.0.0.1:6379/2?prefix=cm&group=g1&protocol=resp3")
                .unwrap();
        assert_eq!(
            spec,
            QueueSpec::Redis {
                url: "redis://127.0.0.1:6379/2?protocol=resp3".into(),
                prefix: "cm".into(),
                group: "g1".into()
            }
        );
        let spec = QueueSpec::parse_url("redis://h").unwrap();
        assert_eq!(
            spec,
            QueueSpec::Redis {
                url: "redis://h".into(),
                prefix: DEFAULT_REDIS_PREFIX.into(),
                group: DEFAULT_REDIS_GROUP.into()
            }
        );
    }

    #[test]
    fn parse_sqlite_url() {
        assert_eq!(
            QueueSpec::parse_url("sqlite:/var/lib/CallMux").unwrap(),
            QueueSpec::sqlite("/var/lib/CallMux")
        );
        assert_eq!(
            QueueSpec::parse_url("sqlite:///data?synchronous=NORMAL").unwrap(),
            QueueSpec::Sqlite {
                data_dir: "/data".into(),
                synchronous: SqliteSync::Normal
            }
        );
    }

    #[test]
    fn parse_url_rejects_junk() {
        for bad in [
            "",
            "http://x",
            "sqlite:",
            "sqlite:/d?synchronous=off",
            "redis://h?prefix=",
            "redis://h?prefix={x}",
            "redis://h?group=a b",
        ] {
            assert!(QueueSpec::parse_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unix_ms_round_trip() {
        for ms in [0, 1, -1, 1_714_564_800_123, -86_400_000] {
            assert_eq!(to_unix_ms(from_unix_ms(ms)), ms);
        }
        assert_eq!(lease_ms(Duration::ZERO), 1);
    }

    #[test]
    fn method_parse() {
        assert_eq!("post".parse::<HttpMethod>().unwrap(), HttpMethod::Post);
        assert_eq!("GET".parse::<HttpMethod>().unwrap(), HttpMethod::Get);
        assert!("PUT".parse::<HttpMethod>().is_err());
    }
}
