//! The dispatcher's delivery logic with no I/O: which claimed event to send next, and what
//! to tell the queue when an attempt ends.
//!
//! Run loop (`callmux dispatch`, in crates/server):
//! ```text
//! loop {
//!     let n = sched.claim_limit(now);
//!     if n > 0 { sched.offer(queue.claim(consumer, wall, n, lease)?, now) }
//!     while let Some(job) = sched.poll_job(now) { spawn HTTP attempt for job.event }
//!     wait for an attempt to finish, or until sched.poll_timeout()
//!     on finish: let action = sched.on_result(&id, result, now, wall);
//!                action.apply(queue, &id, &error)?
//! }
//! ```
//!
//! Guarantees: at most one attempt in flight per `call_uuid`, started in `seq` order;
//! at most `max_in_flight` attempts overall; an event offered but not started within half
//! a lease is dropped (its lease may have expired and another dispatcher may hold it), and
//! is delivered later from the queue. Retries are not kept here: a failed event goes back
//! to the queue with `retry_later`, so a dispatcher restart loses no schedule.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use crate::queue::{EventId, EventQueue, QueueError, QueuedEvent};

/// When and how often a failed delivery is tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Factor between consecutive delays.
    pub multiplier: f64,
    /// Ceiling of the delay before jitter.
    pub max_delay: Duration,
    /// Relative random spread of each delay: 0.2 means ±20 %.
    pub jitter: f64,
    /// Age (since enqueue) after which a failing event is dead-lettered.
    pub max_age: Duration,
    /// Failed attempts after which a "will not change" answer (4xx other than 408, 425,
    /// 429; 3xx) dead-letters the event. Give receivers a few tries to fix a route.
    pub permanent_failure_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(600),
            jitter: 0.2,
            max_age: Duration::from_secs(24 * 3600),
            permanent_failure_attempts: 3,
        }
    }
}

/// A retry policy that cannot work (from a bad config file).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `multiplier` must be a finite number ≥ 1.
    #[error("retry multiplier must be a finite number >= 1, got {0}")]
    Multiplier(f64),
    /// `jitter` must be within 0..=1.
    #[error("retry jitter must be within 0..=1, got {0}")]
    Jitter(f64),
    /// `initial` must not exceed `max_delay`.
    #[error("retry initial delay {initial:?} exceeds max_delay {max_delay:?}")]
    Initial {
        /// The initial delay.
        initial: Duration,
        /// The ceiling.
        max_delay: Duration,
    },
    /// `permanent_failure_attempts` must be at least 1.
    #[error("permanent_failure_attempts must be at least 1")]
    PermanentAttempts,
}

impl RetryPolicy {
    /// Check a policy from configuration; [`DeliveryScheduler::new`] clamps instead.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(PolicyError::Multiplier(self.multiplier));
        }
        if !self.jitter.is_finite() || !(0.0..=1.0).contains(&self.jitter) {
            return Err(PolicyError::Jitter(self.jitter));
        }
        if self.initial > self.max_delay {
            return Err(PolicyError::Initial {
                initial: self.initial,
                max_delay: self.max_delay,
            });
        }
        if self.permanent_failure_attempts == 0 {
            return Err(PolicyError::PermanentAttempts);
        }
        Ok(())
    }

    fn clamped(mut self) -> Self {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            self.multiplier = 1.0;
        }
        self.jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.initial = self.initial.min(self.max_delay);
        self.permanent_failure_attempts = self.permanent_failure_attempts.max(1);
        self
    }

    /// Delay before the next try after failure number `failures_before + 1`, for a
    /// uniform random `unit` in `[0, 1)`: `min(initial·multiplier^failures_before,
    /// max_delay)` scaled by `1 + jitter·(2·unit − 1)`. Never above
    /// `max_delay·(1 + jitter)`.
    pub fn delay(&self, failures_before: u32, unit: f64) -> Duration {
        let exp = i32::try_from(failures_before).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.multiplier.powi(exp);
        let capped = if base.is_finite() {
            base.min(self.max_delay.as_secs_f64())
        } else {
            self.max_delay.as_secs_f64()
        };
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        let ceiling =
            Duration::try_from_secs_f64(self.max_delay.as_secs_f64() * (1.0 + self.jitter))
                .unwrap_or(Duration::MAX);
        Duration::try_from_secs_f64(capped * factor)
            .unwrap_or(self.max_delay)
            .min(ceiling)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered with this status (2xx expected; any other status is
    /// treated as `Failed` with that status).
    Delivered(u16),
    /// No 2xx: an HTTP status, or `None` for time-out, connection or TLS errors.
    Failed {
        /// The HTTP status, if the receiver answered.
        status: Option<u16>,
        /// What happened, for `last_error` and logs.
        error: String,
    },
}

impl DeliveryResult {
    /// Classify an HTTP answer: 2xx is `Delivered`, anything else `Failed`.
    pub fn from_status(status: u16) -> Self {
        if (200..300).contains(&status) {
            Self::Delivered(status)
        } else {
            Self::Failed {
                status: Some(status),
                error: format!("HTTP {status}"),
            }
        }
    }
}

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Time-out, connection error, 408, 425, 429, 5xx: back off and retry until `max_age`.
    Transient,
    /// Any other non-2xx (400, 401, 403, 404, 410, 3xx, ...): the same request will most
    /// likely get the same answer; retried `permanent_failure_attempts` times in all.
    Permanent,
}

/// Classify a failed attempt by its HTTP status.
pub fn classify(status: Option<u16>) -> FailureClass {
    match status {
        None | Some(408 | 425 | 429 | 500..=599) => FailureClass::Transient,
        Some(_) => FailureClass::Permanent,
    }
}

/// What the dispatcher must tell the queue about an event whose attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAction {
    /// `EventQueue::ack`.
    Ack,
    /// `EventQueue::retry_later` with this `not_before`.
    RetryLater(SystemTime),
    /// `EventQueue::dead_letter` with this reason.
    DeadLetter(String),
}

impl QueueAction {
    /// Carry the action out on a queue; `error` is the attempt's error text, stored by
    /// `retry_later`.
    pub fn apply(
        &self,
        queue: &mut dyn EventQueue,
        id: &EventId,
        error: &str,
    ) -> Result<(), QueueError> {
        match self {
            Self::Ack => queue.ack(id),
            Self::RetryLater(not_before) => queue.retry_later(id, *not_before, error),
            Self::DeadLetter(reason) => queue.dead_letter(id, reason),
        }
    }
}

/// One HTTP attempt to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    /// The event to send (id → `X-Callmux-Event-Id` and `Idempotency-Key` headers).
    pub event: QueuedEvent,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerStats {
    /// Attempts started.
    pub started: u64,
    /// Attempts that ended in `Ack`.
    pub acked: u64,
    /// Attempts that ended in `RetryLater`.
    pub retried: u64,
    /// Attempts that ended in `DeadLetter`.
    pub dead: u64,
    /// Offered events dropped unstarted (lease half gone, or their call's head failed);
    /// the queue hands them out again.
    pub dropped: u64,
    /// Offered events ignored because the same id was already held.
    pub duplicates: u64,
}

#[derive(Debug)]
struct Waiting {
    event: QueuedEvent,
    /// `None`: the lease is so long that it never runs out in practice.
    start_by: Option<Instant>,
}

#[derive(Debug, Default)]
struct CallState {
    waiting: BTreeMap<u64, Waiting>,
    busy: bool,
    queued: bool,
}

#[derive(Debug)]
struct InFlight {
    call_uuid: String,
    attempts: u32,
    created_at: SystemTime,
}

/// `wall + delay`, saturating instead of panicking on absurd delays.
fn later(wall: SystemTime, delay: Duration) -> SystemTime {
    wall.checked_add(delay).unwrap_or(wall)
}

/// SplitMix64: tiny, seedable, and the same on every platform and dependency version.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        // 53 random bits: exactly representable, strictly below 1.
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// Default bound on concurrent attempts.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// Default lease the dispatcher passes to `claim`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Default shortest and longest wait between claims while the queue is empty.
pub const DEFAULT_IDLE_POLL: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(1));

/// The sans-IO delivery scheduler: feed it claimed events and attempt results, get jobs
/// and queue actions. Deterministic for a given seed and input sequence.
#[derive(Debug)]
pub struct DeliveryScheduler {
    policy: RetryPolicy,
    rng: SplitMix64,
    max_in_flight: usize,
    lease: Duration,
    idle_poll: (Duration, Duration),
    idle_wait: Duration,
    next_claim_at: Option<Instant>,
    /// The latest `now` seen (offer, poll_job, on_result).
    last_now: Option<Instant>,
    calls: HashMap<String, CallState>,
    ready: VecDeque<String>,
    held: HashSet<EventId>,
    in_flight: HashMap<EventId, InFlight>,
    waiting_count: usize,
    stats: SchedulerStats,
}

impl DeliveryScheduler {
    /// A scheduler with `policy` (clamped to sane values) and a seed for the jitter.
    pub fn new(policy: RetryPolicy, rng_seed: u64) -> Self {
        Self {
            policy: policy.clamped(),
            rng: SplitMix64(rng_seed),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            lease: DEFAULT_LEASE,
            idle_poll: DEFAULT_IDLE_POLL,
            idle_wait: Duration::ZERO,
            next_claim_at: None,
            last_now: None,
            calls: HashMap::new(),
            ready: VecDeque::new(),
            held: HashSet::new(),
            in_flight: HashMap::new(),
            waiting_count: 0,
            stats: SchedulerStats::default(),
        }
    }

    /// Bound the attempts in flight at once (at least 1).
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The lease the dispatcher passes to `claim`; an offered event not started within
    /// half of it is dropped.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Shortest and longest wait between claims while the queue is empty (the wait
    /// doubles from the first to the second while claims come back empty).
    pub fn with_idle_poll(mut self, min: Duration, max: Duration) -> Self {
        self.idle_poll = (min, max.max(min));
        self
    }

    /// The policy in force (after clamping).
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Counters.
    pub fn stats(&self) -> SchedulerStats {
        self.stats
    }

    /// Attempts started and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Events offered and not yet started.
    pub fn waiting(&self) -> usize {
        self.waiting_count
    }

    /// How many events to claim now: 0 while the idle wait runs or no slot is free.
    pub fn claim_limit(&self, now: Instant) -> usize {
        if self.next_claim_at.is_some_and(|t| now < t) {
            return 0;
        }
        self.free_slots()
    }

    fn free_slots(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.in_flight.len() + self.waiting_count)
    }

    /// Take events returned by `claim` (possibly none: that starts the idle wait).
    pub fn offer(&mut self, events: Vec<QueuedEvent>, now: Instant) {
        self.last_now = Some(now);
        if events.is_empty() {
            self.idle_wait = if self.idle_wait.is_zero() {
                self.idle_poll.0
            } else {
                (self.idle_wait * 2).min(self.idle_poll.1)
            };
            self.next_claim_at = Some(now.checked_add(self.idle_wait).unwrap_or(now));
            return;
        }
        self.idle_wait = Duration::ZERO;
        self.next_claim_at = None;
        let start_by = now.checked_add(self.lease / 2);
        for event in events {
            if !self.held.insert(event.id.clone()) {
                self.stats.duplicates += 1;
                continue;
            }
            let uuid = event.call_uuid.clone();
            let call = self.calls.entry(uuid.clone()).or_default();
            if let Some(old) = call.waiting.insert(event.seq, Waiting { event, start_by }) {
                // Same call and seq under another id: keep the newer, forget the older.
                self.held.remove(&old.event.id);
                self.stats.duplicates += 1;
            } else {
                self.waiting_count += 1;
            }
            if !call.busy && !call.queued {
                call.queued = true;
                self.ready.push_back(uuid);
            }
        }
    }

    /// The next attempt to start, if a slot is free and some call's next event may go.
    pub fn poll_job(&mut self, now: Instant) -> Option<DeliveryJob> {
        self.last_now = Some(now);
        while self.in_flight.len() < self.max_in_flight {
            let uuid = self.ready.pop_front()?;
            let Some(call) = self.calls.get_mut(&uuid) else {
                continue;
            };
            call.queued = false;
            if call.busy {
                continue;
            }
            let Some((_, w)) = call.waiting.pop_first() else {
                self.calls.remove(&uuid);
                continue;
            };
            self.waiting_count -= 1;
            if w.start_by.is_some_and(|t| now >= t) {
                // Half the lease is gone: another dispatcher may own it soon. Let the
                // queue hand it out again rather than risk two senders.
                self.held.remove(&w.event.id);
                self.stats.dropped += 1;
                self.drop_waiting(&uuid);
                continue;
            }
            call.busy = true;
            self.in_flight.insert(
                w.event.id.clone(),
                InFlight {
                    call_uuid: uuid,
                    attempts: w.event.attempts,
                    created_at: w.event.created_at,
                },
            );
            self.stats.started += 1;
            return Some(DeliveryJob { event: w.event });
        }
        None
    }

    /// Drop every waiting event of a call (the queue re-offers them in order).
    fn drop_waiting(&mut self, uuid: &str) {
        if let Some(call) = self.calls.get_mut(uuid) {
            let n = call.waiting.len();
            for (_, w) in std::mem::take(&mut call.waiting) {
                self.held.remove(&w.event.id);
            }
            self.waiting_count -= n;
            self.stats.dropped += n as u64;
            if !call.busy {
                self.calls.remove(uuid);
            }
        }
    }

    /// An attempt ended: decide what the queue must do, and let the call's next event go
    /// (after `Ack` or `DeadLetter`) or hold the call back (after `RetryLater`).
    ///
    /// An id this scheduler did not start (a result reported twice) gets `Ack` for a 2xx
    /// and otherwise a retry after `initial`; it changes nothing else.
    pub fn on_result(
        &mut self,
        id: &EventId,
        result: DeliveryResult,
        now: Instant,
        wall: SystemTime,
    ) -> QueueAction {
        self.last_now = Some(now);
        let (status, error) = match result {
            DeliveryResult::Delivered(s) if (200..300).contains(&s) => (None, None),
            DeliveryResult::Delivered(s) => (Some(s), Some(format!("HTTP {s}"))),
            DeliveryResult::Failed { status, error } => (status, Some(error)),
        };
        let Some(fl) = self.in_flight.remove(id) else {
            return match error {
                None => QueueAction::Ack,
                Some(_) => QueueAction::RetryLater(later(wall, self.policy.initial)),
            };
        };
        self.held.remove(id);
        let action = match error {
            None => QueueAction::Ack,
            Some(error) => self.failure_action(&fl, status, &error, wall),
        };
        match action {
            QueueAction::Ack => self.stats.acked += 1,
            QueueAction::RetryLater(_) => self.stats.retried += 1,
            QueueAction::DeadLetter(_) => self.stats.dead += 1,
        }
        let uuid = fl.call_uuid;
        if matches!(action, QueueAction::RetryLater(_)) {
            self.drop_waiting(&uuid);
        }
        if let Some(call) = self.calls.get_mut(&uuid) {
            call.busy = false;
            if call.waiting.is_empty() {
                self.calls.remove(&uuid);
            } else if !call.queued {
                call.queued = true;
                self.ready.push_back(uuid);
            }
        }
        // A slot is free again: if the last claim was not empty, claim at once.
        if self.idle_wait.is_zero() {
            self.next_claim_at = Some(now);
        }
        action
    }

    fn failure_action(
        &mut self,
        fl: &InFlight,
        status: Option<u16>,
        error: &str,
        wall: SystemTime,
    ) -> QueueAction {
        let failures = fl.attempts.saturating_add(1);
        let age = wall.duration_since(fl.created_at).unwrap_or(Duration::ZERO);
        if classify(status) == FailureClass::Permanent
            && failures >= self.policy.permanent_failure_attempts
        {
            return QueueAction::DeadLetter(format!(
                "permanent failure after {failures} attempts: {error}"
            ));
        }
        if age >= self.policy.max_age {
            return QueueAction::DeadLetter(format!(
                "gave up after {failures} attempts over {}s: {error}",
                age.as_secs()
            ));
        }
        let unit = self.rng.unit();
        QueueAction::RetryLater(later(wall, self.policy.delay(fl.attempts, unit)))
    }

    /// When to call [`claim_limit`](Self::claim_limit) again: `Some(t)` with `t` the end
    /// of the idle wait, or the latest `now` passed in when a claim is due at once; `None`
    /// when no slot is free (nothing to do until an attempt ends) or before any input (claim
    /// at once).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.free_slots() == 0 {
            return None;
        }
        self.next_claim_at.or(self.last_now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_values() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial, Duration::from_secs(1));
        assert_eq!(p.multiplier, 2.0);
        assert_eq!(p.max_delay, Duration::from_secs(600));
        assert_eq!(p.jitter, 0.2);
        assert_eq!(p.max_age, Duration::from_secs(86_400));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn delay_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, 0.5), Duration::from_secs(1));
        assert_eq!(p.delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(p.delay(5, 0.5), Duration::from_secs(32));
        assert_eq!(p.delay(30, 0.5), Duration::from_secs(600));
        assert_eq!(p.delay(u32::MAX, 0.5), Duration::from_secs(600));
        assert_eq!(p.delay(0, 0.0), Duration::from_millis(800));
        assert!(p.delay(30, 0.999_999) <= Duration::from_secs(720));
    }

    #[test]
    fn bad_policies_are_reported_and_clamped() {
        let bad = RetryPolicy {
            multiplier: f64::NAN,
            jitter: 7.0,
            ..RetryPolicy::default()
        };
        assert!(matches!(bad.validate(), Err(PolicyError::Multiplier(_))));
        let s = DeliveryScheduler::new(bad, 1);
        assert_eq!(s.policy().multiplier, 1.0);
        assert_eq!(s.policy().jitter, 1.0);
        let p = RetryPolicy {
            jitter: -0.1,
            ..RetryPolicy::default()
        };
        assert!(matches!(p.validate(), Err(PolicyError::Jitter(_))));
        let p = RetryPolicy {
            initial: Duration::from_secs(700),
            ..RetryPolicy::default()
        };
        assert!(matches!(p.validate(), Err(PolicyError::Initial { .. })));
        let p = RetryPolicy {
            permanent_failure_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.validate(), Err(PolicyError::PermanentAttempts));
    }

    #[test]
    fn classification() {
        for s in [
            None,
            Some(408),
            Some(425),
            Some(429),
            Some(500),
            Some(503),
            Some(599),
        ] {
            assert_eq!(classify(s), FailureClass::Transient, "{s:?}");
        }
        for s in [
            Some(301),
            Some(400),
            Some(401),
            Some(404),
            Some(410),
            Some(422),
        ] {
            assert_eq!(classify(s), FailureClass::Permanent, "{s:?}");
        }
        assert_eq!(
            DeliveryResult::from_status(204),
            DeliveryResult::Delivered(204)
        );
        assert!(matches!(
            DeliveryResult::from_status(404),
            DeliveryResult::Failed {
                status: Some(404),
                ..
            }
        ));
    }

    #[test]
    fn splitmix_is_deterministic_and_in_range() {
        let mut a = SplitMix64(42);
        let mut b = SplitMix64(42);
        for _ in 0..1000 {
            let u = a.unit();
            assert_eq!(u, b.unit());
            assert!((0.0..1.0).contains(&u));
        }
    }
}
