//! Prometheus metrics of `callmux serve`, rendered on `GET /metrics` of the `--http`
//! listener. Every metric name lives here, with its description, and the rest of the code
//! records through the one-line helpers below, so a metric is renamed in one place and
//! docs/operations.md can list them all.
//!
//! The media path never touches the registry per packet: each RTP leg owns an [`RtpMeter`]
//! that counts locally and flushes the deltas to label-resolved handles at most once a
//! second (and when the leg ends). Gauges that already exist as counters of the server
//! (active calls) or in the queue (events waiting) are read when `/metrics` is scraped.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use callmux_media::ReorderStats;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics::{Counter, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Calls in progress (inbound calls counted against `max_calls`).
pub(crate) const ACTIVE_CALLS: &str = "callmux_active_calls";
/// Recordings being written.
pub(crate) const ACTIVE_RECORDINGS: &str = "callmux_active_recordings";
/// Inbound calls by how they ended, label `result`.
pub(crate) const CALLS: &str = "callmux_calls_total";
/// RTP packets received, label `codec`.
pub(crate) const RTP_RECEIVED: &str = "callmux_rtp_packets_received_total";
/// RTP packets declared lost by the reorder buffer, label `codec`.
pub(crate) const RTP_LOST: &str = "callmux_rtp_packets_lost_total";
/// RTP packets that arrived after their turn (dropped), label `codec`.
pub(crate) const RTP_LATE: &str = "callmux_rtp_packets_late_total";
/// RFC 3550 interarrival jitter of each leg, sampled once a second, label `codec`.
pub(crate) const RTP_JITTER: &str = "callmux_rtp_jitter_seconds";
/// Bytes of finished recordings (file size, header included).
pub(crate) const RECORDED_BYTES: &str = "callmux_recorded_bytes_total";
/// Recordings finished, label `result` (`complete`, `failed`).
pub(crate) const RECORDINGS: &str = "callmux_recordings_total";
/// Events in the queue, label `state` (`pending`, `in_flight`, `dead`).
pub(crate) const QUEUE_EVENTS: &str = "callmux_event_queue_events";
/// Whether the last read of the queue for `/metrics` failed (1) or worked (0).
pub(crate) const QUEUE_ERROR: &str = "callmux_event_queue_read_error";
/// Time to get an NCCO from the answer URL (fallback included), label `result`.
pub(crate) const ANSWER_LATENCY: &str = "callmux_answer_url_duration_seconds";
/// 1 while the server drains for shutdown (new INVITEs get 503), else 0.
pub(crate) const DRAINING: &str = "callmux_draining";

/// Histogram buckets of the answer URL latency (seconds).
const ANSWER_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram buckets of jitter (seconds).
const JITTER_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32,
];

/// How often a leg's local counts go to the registry.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The installed recorder (none in subcommands that do not serve).
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process and describes every metric. Called
/// once by `serve`; a second call (or a recorder already installed) keeps the first.
pub(crate) fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(ANSWER_LATENCY.into()), ANSWER_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(RTP_JITTER.into()), JITTER_BUCKETS))
        .map_err(|e| e.to_string())?;
    let handle = builder.install_recorder().map_err(|e| e.to_string())?;
    let _ = HANDLE.set(handle);
    describe();
    Ok(())
}

/// Descriptions (Prometheus `# HELP`) and units of every metric.
fn describe() {
    describe_gauge!(ACTIVE_CALLS, "Calls in progress.");
    describe_gauge!(ACTIVE_RECORDINGS, "Recordings being written.");
    describe_counter!(
        CALLS,
        "Inbound calls by result: answered, failed (answered, then failed), rejected (4xx/5xx \
         before answer), busy (486/600), cancelled (by the caller), overloaded (503: call \
         limit or shutdown)."
    );
    describe_counter!(RTP_RECEIVED, "RTP packets received, by codec.");
    describe_counter!(RTP_LOST, "RTP packets declared lost, by codec.");
    describe_counter!(
        RTP_LATE,
        "RTP packets that arrived after the reorder window (dropped), by codec."
    );
    describe_histogram!(
        RTP_JITTER,
        Unit::Seconds,
        "RFC 3550 interarrival jitter of each leg, sampled once a second, by codec."
    );
    describe_counter!(
        RECORDED_BYTES,
        Unit::Bytes,
        "Bytes of finished call recordings (file sizes)."
    );
    describe_counter!(RECORDINGS, "Call recordings finished, by result.");
    describe_gauge!(
        QUEUE_EVENTS,
        "Webhook events in the queue by state: pending (not yet delivered), in_flight \
         (leased by a dispatcher), dead (dead letters)."
    );
    describe_gauge!(
        QUEUE_ERROR,
        "1 when the event queue could not be read for this scrape."
    );
    describe_histogram!(
        ANSWER_LATENCY,
        Unit::Seconds,
        "Time to obtain the NCCO from answer_url (fallback included), by result."
    );
    describe_gauge!(
        DRAINING,
        "1 while the server drains for shutdown (new INVITEs get 503)."
    );
}

/// Renders every metric in the Prometheus text format (empty without a recorder).
pub(crate) fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Folds histogram samples into their buckets; run every few seconds so memory stays flat
/// between scrapes.
pub(crate) fn upkeep() {
    if let Some(h) = HANDLE.get() {
        h.run_upkeep();
    }
}

/// Reads the event queue's depth for `/metrics` on its own connection (the event writer's
/// connection stays on the commit path only). Opened on first use, reopened after an error.
pub(crate) struct QueueReader {
    spec: callmux_webhook::QueueSpec,
    queue: std::sync::Mutex<Option<Box<dyn callmux_webhook::EventQueue>>>,
}

impl QueueReader {
    /// A reader of the queue `spec` names (nothing is opened yet).
    pub(crate) fn new(spec: callmux_webhook::QueueSpec) -> Self {
        Self {
            spec,
            queue: std::sync::Mutex::new(None),
        }
    }

    /// The queue's depth, or None when it cannot be read. Blocking: call it off the
    /// async workers.
    pub(crate) fn depth(&self) -> Option<callmux_webhook::QueueDepth> {
        let mut slot = self.queue.lock().ok()?;
        if slot.is_none() {
            *slot = callmux_webhook::open_queue(&self.spec).ok();
        }
        let result = slot.as_mut()?.depth();
        if result.is_err() {
            *slot = None;
        }
        result.ok()
    }
}

/// Everything `/metrics` shows, rendered: the gauges read at scrape time are set first.
pub(crate) async fn scrape(active_calls: usize, queue: std::sync::Arc<QueueReader>) -> String {
    set_active_calls(active_calls);
    let read = tokio::task::spawn_blocking(move || queue.depth());
    let depth = tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    set_queue_depth(depth);
    render()
}

/// How an inbound call ended, for [`CALLS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallResult {
    /// Answered and ended normally.
    Answered,
    /// Answered, then failed (bad NCCO, recording error).
    Failed,
    /// Refused before the answer with a 4xx/5xx (no media, no NCCO, ACL, auth).
    Rejected,
    /// 486 Busy Here / 600 Busy Everywhere.
    Busy,
    /// The caller cancelled before the answer.
    Cancelled,
    /// 503: the call limit was reached or the server is shutting down.
    Overloaded,
}

impl CallResult {
    /// The `result` label.
    fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Busy => "busy",
            Self::Cancelled => "cancelled",
            Self::Overloaded => "overloaded",
        }
    }

    /// The result of a call refused with SIP `status` before it was answered (0 means the
    /// caller cancelled).
    pub(crate) fn from_status(status: u16) -> Self {
        match status {
            0 | 487 => Self::Cancelled,
            486 | 600 => Self::Busy,
            503 => Self::Overloaded,
            _ => Self::Rejected,
        }
    }
}

/// Counts one ended (or refused) inbound call.
pub(crate) fn call_ended(result: CallResult) {
    counter!(CALLS, "result" => result.as_str()).increment(1);
}

/// Sets the active calls gauge (read from the server's counter at scrape time).
pub(crate) fn set_active_calls(n: usize) {
    gauge!(ACTIVE_CALLS).set(n as f64);
}

/// Sets the draining gauge.
pub(crate) fn set_draining(on: bool) {
    gauge!(DRAINING).set(if on { 1.0 } else { 0.0 });
}

/// Sets the queue gauges from a depth read, or flags the read as failed.
pub(crate) fn set_queue_depth(depth: Option<callmux_webhook::QueueDepth>) {
    match depth {
        Some(d) => {
            gauge!(QUEUE_EVENTS, "state" => "pending").set(d.pending as f64);
            gauge!(QUEUE_EVENTS, "state" => "in_flight").set(d.in_flight as f64);
            gauge!(QUEUE_EVENTS, "state" => "dead").set(d.dead as f64);
            gauge!(QUEUE_ERROR).set(0.0);
        }
        None => gauge!(QUEUE_ERROR).set(1.0),
    }
}

/// Records how long the answer URL took.
pub(crate) fn answer_url_latency(elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    histogram!(ANSWER_LATENCY, "result" => result).record(elapsed.as_secs_f64());
}

/// Counts one finished recording and its size on disk.
pub(crate) fn recording_finished(size: u64) {
    counter!(RECORDINGS, "result" => "complete").increment(1);
    counter!(RECORDED_BYTES).increment(size);
}

/// Counts one recording that could not be finalized.
pub(crate) fn recording_failed() {
    counter!(RECORDINGS, "result" => "failed").increment(1);
}

/// Counts a recording in [`ACTIVE_RECORDINGS`] for as long as it lives.
#[derive(Debug)]
pub(crate) struct RecordingGauge(());

impl RecordingGauge {
    /// One more active recording (one less when dropped).
    pub(crate) fn start() -> Self {
        gauge!(ACTIVE_RECORDINGS).increment(1.0);
        Self(())
    }
}

impl Drop for RecordingGauge {
    fn drop(&mut self) {
        gauge!(ACTIVE_RECORDINGS).decrement(1.0);
    }
}

/// RFC 3550 §6.4.1 interarrival jitter of one RTP stream, in seconds. Sans-IO: fed the
/// RTP timestamp, clock rate and arrival time of each audio packet.
#[derive(Debug, Default, Clone)]
pub(crate) struct JitterEstimator {
    /// Previous packet: arrival and RTP timestamp.
    last: Option<(Instant, u32)>,
    /// Current estimate, seconds.
    jitter: f64,
}

impl JitterEstimator {
    /// Feeds one packet.
    pub(crate) fn on_packet(&mut self, rtp_ts: u32, clock_rate: u32, arrival: Instant) {
        if clock_rate == 0 {
            return;
        }
        if let Some((prev_arrival, prev_ts)) = self.last {
            let transit_arrival = if arrival >= prev_arrival {
                arrival.duration_since(prev_arrival).as_secs_f64()
            } else {
                -prev_arrival.duration_since(arrival).as_secs_f64()
            };
            // Wrapping difference of RTP timestamps, as a signed number of ticks.
            let ticks = rtp_ts.wrapping_sub(prev_ts) as i32;
            let sent = f64::from(ticks) / f64::from(clock_rate);
            let d = (transit_arrival - sent).abs();
            // A stream restart (huge timestamp jump) would poison the estimate: skip it.
            if d < 10.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last = Some((arrival, rtp_ts));
    }

    /// The current estimate, seconds.
    pub(crate) fn seconds(&self) -> f64 {
        self.jitter
    }
}

/// RTP counters of one leg, flushed to the registry at most once a second.
pub(crate) struct RtpMeter {
    received: Counter,
    lost: Counter,
    late: Counter,
    jitter_hist: Histogram,
    /// The leg's interarrival jitter.
    pub(crate) jitter: JitterEstimator,
    /// Cumulative counts already flushed: packets, lost, late.
    flushed: (u64, u64, u64),
    next_flush: Option<Instant>,
}

impl RtpMeter {
    /// A meter for a leg using `codec` (the label; resolved once, here).
    pub(crate) fn new(codec: &'static str) -> Self {
        Self {
            received: counter!(RTP_RECEIVED, "codec" => codec),
            lost: counter!(RTP_LOST, "codec" => codec),
            late: counter!(RTP_LATE, "codec" => codec),
            jitter_hist: histogram!(RTP_JITTER, "codec" => codec),
            jitter: JitterEstimator::default(),
            flushed: (0, 0, 0),
            next_flush: None,
        }
    }

    /// Whether a flush is due at `now` (one comparison: safe per packet).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        match self.next_flush {
            Some(t) if now < t => false,
            Some(_) => true,
            None => {
                self.next_flush = Some(now + FLUSH_EVERY);
                false
            }
        }
    }

    /// Adds what changed since the last flush: `packets` is the leg's cumulative count of
    /// received RTP packets, `reorder` its reorder buffer's counters.
    pub(crate) fn flush(&mut self, now: Instant, packets: u64, reorder: ReorderStats) {
        let (p, l, t) = self.flushed;
        self.received.increment(packets.saturating_sub(p));
        self.lost.increment(reorder.lost.saturating_sub(l));
        self.late.increment(reorder.late.saturating_sub(t));
        if packets > p {
            self.jitter_hist.record(self.jitter.seconds());
        }
        self.flushed = (packets.max(p), reorder.lost.max(l), reorder.late.max(t));
        self.next_flush = Some(now + FLUSH_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_zero_for_a_perfectly_paced_stream() {
        let t0 = Instant::now();
        let mut j = JitterEstimator::default();
        for i in 0..100u32 {
            j.on_packet(i * 160, 8000, t0 + Duration::from_millis(u64::from(i) * 20));
        }
        assert!(j.seconds() < 1e-9, "{}", j.seconds());
    }

    #[test]
    fn jitter_converges_to_the_mean_deviation_of_alternating_delays() {
        // Packets alternately 0 and 10 ms late: |D| is 10 ms every time, so J → 10 ms.
        let t0 = Instant::now();
        let mut j = JitterEstimator::default();
        for i in 0..500u32 {
            let late = if i % 2 == 1 { 10 } else { 0 };
            let at = t0 + Duration::from_millis(u64::from(i) * 20 + late);
            j.on_packet(i.wrapping_mul(160).wrapping_add(u32::MAX - 8000), 8000, at);
        }
        assert!((j.seconds() - 0.010).abs() < 0.0005, "{}", j.seconds());
    }

    #[test]
    fn a_stream_restart_does_not_poison_the_estimate() {
        let t0 = Instant::now();
        let mut j = JitterEstimator::default();
        j.on_packet(0, 8000, t0);
        j.on_packet(2_000_000_000, 8000, t0 + Duration::from_millis(20));
        assert!(j.seconds() < 1e-9);
    }

    #[test]
    fn meter_is_due_once_a_second_and_flushes_only_deltas() {
        let t0 = Instant::now();
        let mut m = RtpMeter::new("PCMU");
        assert!(!m.due(t0));
        assert!(!m.due(t0 + Duration::from_millis(999)));
        assert!(m.due(t0 + Duration::from_secs(1)));
        let stats = ReorderStats {
            lost: 2,
            late: 1,
            ..ReorderStats::default()
        };
        m.flush(t0 + Duration::from_secs(1), 50, stats);
        assert_eq!(m.flushed, (50, 2, 1));
        assert!(!m.due(t0 + Duration::from_millis(1500)));
        m.flush(t0 + Duration::from_secs(2), 100, stats);
        assert_eq!(m.flushed, (100, 2, 1));
    }

    #[test]
    fn refused_calls_are_classified_by_status() {
        assert_eq!(CallResult::from_status(0), CallResult::Cancelled);
        assert_eq!(CallResult::from_status(486), CallResult::Busy);
        assert_eq!(CallResult::from_status(503), CallResult::Overloaded);
        assert_eq!(CallResult::from_status(488), CallResult::Rejected);
    }
}
