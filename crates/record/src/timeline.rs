//! The recording timeline: places every leg's audio by RTP timestamp on one 16 kHz clock,
//! mixes it into the layout's channels and hands out final, interleaved frames.
//!
//! Pure: no I/O, no clock reads, no allocation per packet once legs are added.

mod ring;
mod source;

use std::time::{Duration, Instant};

use crate::layout::{ChannelLayout, LegKey, Route, SAMPLE_RATE};
use ring::{MixRing, Placed};
use source::{
    Arrival, Located, Placement, PlayedSource, ReceivedSource, Reject, SourceParams, Which,
};

/// Tuning of a [`RecordingTimeline`]. Out-of-range values are clamped by
/// [`RecordingTimeline::new`] (see each field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineConfig {
    /// How long a position stays open for late or reordered packets before it is final and
    /// emitted (default 60 ms; clamped to 0..=1 s).
    pub reorder_delay: Duration,
    /// A packet whose timestamp maps further than this from its arrival re-anchors the source
    /// (timestamp jump). Default 2 s; clamped to 100 ms..=10 s.
    pub max_jump: Duration,
    /// Drift (or a change of network delay) larger than this moves the source's anchor
    /// (default 10 ms; clamped to 1..=10 ms).
    pub drift_threshold: Duration,
    /// Window of the minimum filter over (arrival − RTP position) (default 10 s; clamped to
    /// 200 ms..=10 s). Longer resists jitter better, shorter follows drift sooner. A sender
    /// that sends only some packets on time (SIPp) leaves 2–4 s without one, and a 2 s
    /// window then moved the source later and back again, each time cutting or inserting
    /// 10–16 ms; at 0.1 % drift a 10 s window lags the drift by at most 10 ms.
    pub drift_window: Duration,
    /// Played audio pushed this much later than the end of the previous push starts a new
    /// run at its push instant instead of continuing (default 60 ms).
    pub played_gap: Duration,
    /// Consecutive wholly-late packets after which a source re-syncs to the current arrival
    /// (the network delay stepped up by more than `reorder_delay`). Default 3; at least 1.
    pub late_resync_packets: u32,
    /// How long a new source (a leg's first packet, or a new SSRC) is watched before its
    /// anchor is fixed: its packets are kept unplaced meanwhile and the anchor is the
    /// earliest (arrival − RTP position) seen, so a first packet that was processed late
    /// does not put the source late (which a later correction would fix by cutting audio).
    /// Default 500 ms, long enough to see an on-time packet from a sender that sends most
    /// of them a packet late (SIPp does); clamped to 0..=500 ms (0: anchor on the first
    /// packet).
    pub anchor_window: Duration,
    /// How far (after the end of its newest audio) a received source that has fallen
    /// behind real time holds finality back, so a backlog read after a scheduling stall,
    /// a burst after a network hiccup, or packets released after a loss are placed, not
    /// dropped as late. Default 250 ms; clamped to 0..=1 s.
    pub stall_hold: Duration,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            reorder_delay: Duration::from_millis(60),
            max_jump: Duration::from_secs(2),
            drift_threshold: Duration::from_millis(10),
            drift_window: Duration::from_secs(10),
            played_gap: Duration::from_millis(60),
            late_resync_packets: 3,
            anchor_window: Duration::from_millis(500),
            stall_hold: Duration::from_millis(250),
        }
    }
}

/// Per-leg counters, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegStats {
    /// The leg.
    pub leg: Option<LegKey>,
    /// Channel (0-based) its voice goes to.
    pub channel: u16,
    /// Received packets placed (wholly or in part).
    pub frames_placed: u64,
    /// Received samples placed.
    pub samples_placed: u64,
    /// Packets dropped because all their positions were already final.
    pub late_frames: u64,
    /// Samples dropped as late (whole late packets and late heads of packets).
    pub late_samples: u64,
    /// Packets dropped as duplicates of a recently placed timestamp.
    pub duplicate_frames: u64,
    /// Packets with an unusable clock rate.
    pub invalid_frames: u64,
    /// Samples beyond the ring's horizon (a sender far ahead of real time).
    pub overflow_samples: u64,
    /// Samples cut where a drift correction moved the source back over placed audio.
    pub cut_samples: u64,
    /// Re-anchors: SSRC changes plus timestamp jumps.
    pub reanchors: u64,
    /// Of which SSRC changes.
    pub ssrc_changes: u64,
    /// Anchor moves by the drift filter.
    pub drift_corrections: u64,
    /// Re-syncs after a run of late packets.
    pub late_resyncs: u64,
    /// Packets of the previous SSRC/anchor placed after a re-anchor.
    pub straggler_frames: u64,
    /// Silence filled inside the leg's received audio (loss, DTX, hold, drift gaps).
    pub gap_samples: u64,
    /// Decoder-tail samples placed after a pause (see [`RecordingTimeline::push_tail`]).
    pub tail_samples: u64,
    /// Decoder-tail samples dropped: their positions were already final (the pause was
    /// noticed too late) or beyond the ring, or the tail followed the newest packet of
    /// neither the leg's current stream nor the one before.
    pub dropped_tail_samples: u64,
    /// Played-audio pushes recorded.
    pub played_frames: u64,
    /// Packets or pushes received while the leg was not in the recording.
    pub ignored_frames: u64,
}

/// Per-channel counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Emitted samples where nothing was placed (zeros written).
    pub silence_samples: u64,
    /// Emitted samples whose mix was clamped to the i16 range.
    pub clipped_samples: u64,
}

/// Counters of a whole timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// One entry per leg, in joining order.
    pub legs: Vec<LegStats>,
    /// One entry per channel.
    pub channels: Vec<ChannelStats>,
    /// Frames emitted so far (per channel).
    pub frames_emitted: u64,
    /// Packets for legs never added.
    pub unknown_leg_frames: u64,
}

struct Leg {
    key: LegKey,
    route: Route,
    active: bool,
    received: ReceivedSource,
    played: PlayedSource,
    stats: LegStats,
    stage: Stage,
}

/// Packets of a source whose anchor is still being chosen, in arrival order. Allocated
/// once per leg (`anchor_window` plus a margin); when full, the source commits early.
#[derive(Default)]
struct Stage {
    pcm: Vec<i16>,
    /// (extended timestamp, start in `pcm`, length).
    packets: Vec<(i64, usize, usize)>,
}

impl Stage {
    fn with_capacity(samples: usize) -> Self {
        Self {
            pcm: Vec::with_capacity(samples),
            packets: Vec::with_capacity(STAGE_PACKETS),
        }
    }

    fn push(&mut self, ext: i64, pcm: &[i16]) -> bool {
        if self.pcm.len() + pcm.len() > self.pcm.capacity() || self.packets.len() >= STAGE_PACKETS {
            return false;
        }
        self.packets.push((ext, self.pcm.len(), pcm.len()));
        self.pcm.extend_from_slice(pcm);
        true
    }
}

/// Most packets staged per source (100 ms of 2.5 ms Opus frames would be 40).
const STAGE_PACKETS: usize = 64;

/// Counts one placement in the leg's stats and tells the source what was placed.
fn account(l: &mut Leg, pl: Placement, which: Which, placed: Placed, len: usize) {
    l.received.placed(which, pl, placed.placed, len);
    let s = &mut l.stats;
    s.frames_placed += u64::from(placed.placed > 0);
    s.samples_placed += placed.placed as u64;
    s.late_samples += placed.late as u64;
    s.late_frames += u64::from(placed.placed == 0 && placed.late > 0);
    s.overflow_samples += placed.overflow as u64;
    s.cut_samples += pl.cut as u64;
}

/// The leg audio is pushed for, if it is in the recording: a push for an unknown leg or for
/// one that has left is counted (`unknown_leg_frames`, the leg's `ignored_frames`), not placed.
fn pushed_leg<'a>(legs: &'a mut [Leg], unknown: &mut u64, key: LegKey) -> Option<&'a mut Leg> {
    let Some(l) = legs.iter_mut().find(|l| l.key == key) else {
        *unknown += 1;
        return None;
    };
    if !l.active {
        l.stats.ignored_frames += 1;
        return None;
    }
    Some(l)
}

/// Places a leg's staged packets with its now fixed anchor.
fn commit(l: &mut Leg, ring: &mut MixRing) {
    if !l.received.commit(ring.base()) {
        return;
    }
    let ch = usize::from(l.route.received);
    for i in 0..l.stage.packets.len() {
        let (ext, start, len) = l.stage.packets[i];
        let Some(pl) = l.received.placement_of(ext, len) else {
            break;
        };
        let placed = ring.place(ch, pl.pos, &l.stage.pcm[start..start + len]);
        account(l, pl, Which::Current, placed, len);
    }
    l.stage.pcm.clear();
    l.stage.packets.clear();
}

/// One recording's timeline (see the module docs and docs/recording.md).
pub struct RecordingTimeline {
    layout: ChannelLayout,
    start: Instant,
    reorder: i64,
    anchor_window: i64,
    stall_hold: i64,
    stage_samples: usize,
    played_gap: i64,
    params: SourceParams,
    ring: MixRing,
    legs: Vec<Leg>,
    unknown_leg_frames: u64,
}

/// How far ahead of its arrival a packet may map and still be placed (further: re-anchor).
const LEAD: Duration = Duration::from_millis(500);
/// The longest packet the ring leaves room for (Opus allows 120 ms).
const MAX_PACKET: Duration = Duration::from_millis(120);

/// Converts a duration to 16 kHz samples.
pub(crate) fn samples_of(d: Duration) -> i64 {
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 32_000);
    secs.saturating_mul(i64::from(SAMPLE_RATE))
        .saturating_add(i64::from(d.subsec_nanos()) * i64::from(SAMPLE_RATE) / 1_000_000_000)
}

impl RecordingTimeline {
    /// A timeline whose position 0 is `start`.
    pub fn new(layout: ChannelLayout, config: TimelineConfig, start: Instant) -> Self {
        let clamp = |d: Duration, lo: u64, hi: u64| {
            d.clamp(Duration::from_millis(lo), Duration::from_millis(hi))
        };
        let reorder = samples_of(clamp(config.reorder_delay, 0, 1000));
        let max_jump = samples_of(clamp(config.max_jump, 100, 10_000));
        let anchor_window = samples_of(clamp(config.anchor_window, 0, 500));
        let stall_hold = samples_of(clamp(config.stall_hold, 0, 1000));
        // The ring spans from the oldest position not yet final to the furthest a packet
        // may reach: finality trails `now` by at most a staging window on top of the larger
        // of the reorder delay and a stall hold; packets may map up to LEAD ahead of their
        // arrival (further is a timestamp jump: re-anchored, not dropped), plus one packet.
        // With the defaults: 750 + 500 + 120 ms → 32 768 samples (2.05 s, 128 KiB a channel).
        let lag = anchor_window + reorder.max(stall_hold);
        let lead = samples_of(LEAD);
        let packet = samples_of(MAX_PACKET);
        let cap = (lag + lead + packet).max(1024) as usize;
        let cap = cap.next_power_of_two();
        let max_ahead = (cap as i64 - lag - packet).min(lead).min(max_jump);
        let params = SourceParams {
            max_jump,
            max_ahead,
            staged_anchor: anchor_window > 0,
            drift_threshold: samples_of(clamp(config.drift_threshold, 1, 10)),
            drift_window: samples_of(clamp(config.drift_window, 200, 10_000)),
            late_resync_packets: config.late_resync_packets.max(1),
        };
        Self {
            layout,
            start,
            reorder,
            anchor_window,
            stall_hold,
            // The window's worth of packets arriving on time, as much again for a burst,
            // and one long packet.
            stage_samples: (2 * anchor_window + packet) as usize,
            played_gap: samples_of(config.played_gap.min(Duration::from_secs(10))),
            params,
            ring: MixRing::new(usize::from(layout.channels()), cap),
            legs: Vec::new(),
            unknown_leg_frames: 0,
        }
    }

    /// Number of channels of the output.
    pub fn channels(&self) -> u16 {
        self.layout.channels()
    }

    /// The layout this timeline routes by.
    pub fn layout(&self) -> ChannelLayout {
        self.layout
    }

    /// Timeline position (16 kHz samples) of an instant.
    pub fn position(&self, t: Instant) -> i64 {
        samples_of(t.saturating_duration_since(self.start))
    }

    /// Frames emitted so far (by `drain` and `finish`).
    pub fn emitted_frames(&self) -> u64 {
        self.ring.base() as u64
    }

    /// Samples per channel the ring holds (memory is `channels × this × 4` bytes).
    pub fn ring_capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Adds a leg (or brings back one that left) and returns the channel its voice goes to.
    /// Adding a leg that is already in the recording changes nothing.
    pub fn add_leg(&mut self, leg: LegKey, _now: Instant) -> u16 {
        if let Some(l) = self.legs.iter_mut().find(|l| l.key == leg) {
            l.active = true;
            return l.route.received;
        }
        let route = self.layout.route(self.legs.len());
        let stage = if self.params.staged_anchor {
            Stage::with_capacity(self.stage_samples)
        } else {
            Stage::default()
        };
        self.legs.push(Leg {
            key: leg,
            route,
            active: true,
            received: ReceivedSource::default(),
            played: PlayedSource::default(),
            stats: LegStats {
                leg: Some(leg),
                channel: route.received,
                ..LegStats::default()
            },
            stage,
        });
        route.received
    }

    /// Removes a leg: its later packets are ignored; audio already placed stays.
    pub fn remove_leg(&mut self, leg: LegKey, _now: Instant) {
        if let Some(l) = self.legs.iter_mut().find(|l| l.key == leg) {
            // What it sent before leaving is kept.
            commit(l, &mut self.ring);
            l.active = false;
            l.received.reset();
            l.played.reset();
        }
    }

    /// Audio the leg sent, decoded to 16 kHz mono, with the RTP header fields of the packet
    /// it came from and its arrival instant.
    pub fn push_received(
        &mut self,
        leg: LegKey,
        ssrc: u32,
        rtp_ts: u32,
        clock_rate: u32,
        arrival: Instant,
        pcm: &[i16],
    ) {
        let arrival_pos = self.position(arrival);
        let Some(l) = pushed_leg(&mut self.legs, &mut self.unknown_leg_frames, leg) else {
            return;
        };
        if pcm.is_empty() {
            return;
        }
        let packet = Arrival {
            ssrc,
            ts: rtp_ts,
            rate: clock_rate,
            pos: arrival_pos,
            len: pcm.len(),
        };
        if l.received.breaks_staging(&self.params, &packet) {
            commit(l, &mut self.ring);
        }
        let located = l.received.locate(&self.params, packet, self.ring.base());
        let ch = usize::from(l.route.received);
        let (pl, which) = match located {
            Ok(Located::Place(pl, which)) => (pl, which),
            Ok(Located::Stage { ext }) => {
                if l.stage.push(ext, pcm) {
                    return;
                }
                // No room to wait any longer: fix the anchor now and place this one too.
                commit(l, &mut self.ring);
                match l.received.placement_of(ext, pcm.len()) {
                    Some(pl) => (pl, Which::Current),
                    None => return,
                }
            }
            Err(reject) => {
                let s = &mut l.stats;
                match reject {
                    Reject::Late => {
                        s.late_frames += 1;
                        s.late_samples += pcm.len() as u64;
                    }
                    Reject::Duplicate => s.duplicate_frames += 1,
                    Reject::Invalid => s.invalid_frames += 1,
                }
                return;
            }
        };
        let body = pl.pos + pl.cut as i64;
        let placed = self.ring.place(ch, body, &pcm[pl.cut..]);
        account(l, pl, which, placed, pcm.len());
    }

    /// The rest of a leg's decoded stream after a pause: what the decoder still held
    /// (the G.711 up-sampler's delay and ringing, `AudioDecoder::flush` in callmux-media),
    /// to be placed from RTP timestamp `rtp_ts` on, the one the packet after the last
    /// would carry, of the stream `ssrc` (the current one, or the one before a re-anchor).
    /// It is mixed in like any audio, but is not a packet: the duplicate check, the
    /// expected timestamp and the drift filter do not see it, so a packet that continues
    /// the stream at `rtp_ts` is placed normally and adds to it (the decoder, flushed,
    /// starts that packet from silence; the sum is the unbroken audio). Samples whose
    /// positions are already final are dropped and counted (`dropped_tail_samples`),
    /// never moved; so is a tail that does not follow the newest packet of its stream.
    /// Push it while the stream's positions are held open (`stall_hold` after its newest
    /// audio), before the stream's next packet.
    pub fn push_tail(&mut self, leg: LegKey, ssrc: u32, rtp_ts: u32, clock_rate: u32, pcm: &[i16]) {
        let Some(l) = pushed_leg(&mut self.legs, &mut self.unknown_leg_frames, leg) else {
            return;
        };
        if pcm.is_empty() {
            return;
        }
        let Some(which) = l.received.tail_segment(ssrc, clock_rate, rtp_ts) else {
            l.stats.dropped_tail_samples += pcm.len() as u64;
            return;
        };
        if which == Which::Current && l.received.stage_started().is_some() {
            // A stream shorter than the anchor window paused: nothing more is coming to
            // improve its anchor, so fix it now.
            commit(l, &mut self.ring);
        }
        let Some(pl) = l.received.tail_placement(which, rtp_ts, pcm.len()) else {
            l.stats.dropped_tail_samples += pcm.len() as u64;
            return;
        };
        let placed = self.ring.place(
            usize::from(l.route.received),
            pl.pos + pl.cut as i64,
            &pcm[pl.cut..],
        );
        l.stats.tail_samples += placed.placed as u64;
        l.stats.dropped_tail_samples += (pcm.len() - placed.placed) as u64;
    }

    /// Audio callmux played to the leg (beep, talk, stream, ringback), pushed as it is sent.
    /// Recorded only where the layout says so (see [`ChannelLayout`]).
    pub fn push_played(&mut self, leg: LegKey, now: Instant, pcm: &[i16]) {
        let arrival_pos = self.position(now);
        let Some(l) = pushed_leg(&mut self.legs, &mut self.unknown_leg_frames, leg) else {
            return;
        };
        let Some(ch) = l.route.played else {
            return;
        };
        if pcm.is_empty() {
            return;
        }
        let pos = l.played.locate(
            arrival_pos,
            pcm.len(),
            self.played_gap,
            self.params.max_ahead,
        );
        let placed = self.ring.place(usize::from(ch), pos, pcm);
        l.stats.played_frames += 1;
        l.stats.late_samples += placed.late as u64;
        l.stats.overflow_samples += placed.overflow as u64;
    }

    /// Appends every frame that is final at `now` to `out`, interleaved, zeros where
    /// nothing was placed; returns the number of frames appended. A position is final
    /// `reorder_delay` after its instant, unless a received source holds it open: one
    /// still choosing its anchor (`anchor_window`), or one behind real time (a backlog
    /// being read after a stall, packets released after a loss; up to `stall_hold` after
    /// the end of its newest audio). So call it after pushing everything that was read;
    /// calling it before (e.g. on a timer that fired first after a stall) loses nothing.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<i16>) -> usize {
        let now_pos = self.position(now);
        let mut until = now_pos - self.reorder;
        for l in &mut self.legs {
            if !l.active {
                continue;
            }
            if l.received
                .stage_started()
                .is_some_and(|t| now_pos - t >= self.anchor_window)
            {
                commit(l, &mut self.ring);
            }
            if let Some(hold) = l.received.hold(now_pos, self.reorder, self.stall_hold) {
                until = until.min(hold);
            }
        }
        self.ring.emit(until, out)
    }

    /// Appends every frame up to `now`, final or not (the recording ends).
    pub fn finish(&mut self, now: Instant, out: &mut Vec<i16>) -> usize {
        for l in &mut self.legs {
            commit(l, &mut self.ring);
        }
        let until = self.position(now);
        self.ring.emit(until, out)
    }

    /// Counters per leg and per channel.
    pub fn stats(&self) -> TimelineStats {
        let legs = self
            .legs
            .iter()
            .map(|l| {
                let mut s = l.stats.clone();
                let e = &l.received.events;
                s.reanchors = e.ssrc_changes + e.ts_jumps;
                s.ssrc_changes = e.ssrc_changes;
                s.drift_corrections = e.drift_corrections;
                s.late_resyncs = e.late_resyncs;
                s.straggler_frames = e.straggler_packets;
                s.gap_samples = l.received.gap_samples();
                s
            })
            .collect();
        let channels = self
            .ring
            .silence()
            .iter()
            .zip(self.ring.clipped())
            .map(|(&silence_samples, &clipped_samples)| ChannelStats {
                silence_samples,
                clipped_samples,
            })
            .collect();
        TimelineStats {
            legs,
            channels,
            frames_emitted: self.emitted_frames(),
            unknown_leg_frames: self.unknown_leg_frames,
        }
    }
}
