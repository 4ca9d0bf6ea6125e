//! The recording timeline: places every leg's audio by RTP timestamp on one 16 kHz clock,
//! mixes it into the layout's channels and hands out final, interleaved frames.
//!
//! Pure: no I/O, no clock reads, no allocation per packet once legs are added.

mod ring;
mod source;

use std::time::{Duration, Instant};

use crate::layout::{ChannelLayout, LegKey, Route, SAMPLE_RATE};
use ring::MixRing;
use source::{Arrival, PlayedSource, ReceivedSource, Reject, SourceParams};

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
    /// Window of the minimum filter over (arrival − RTP position) (default 2 s; clamped to
    /// 200 ms..=10 s). Longer resists jitter better, shorter follows drift sooner.
    pub drift_window: Duration,
    /// Played audio pushed this much later than the end of the previous push starts a new
    /// run at its push instant instead of continuing (default 60 ms).
    pub played_gap: Duration,
    /// Consecutive wholly-late packets after which a source re-syncs to the current arrival
    /// (the network delay stepped up by more than `reorder_delay`). Default 3; at least 1.
    pub late_resync_packets: u32,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            reorder_delay: Duration::from_millis(60),
            max_jump: Duration::from_secs(2),
            drift_threshold: Duration::from_millis(10),
            drift_window: Duration::from_secs(2),
            played_gap: Duration::from_millis(60),
            late_resync_packets: 3,
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
}

/// One recording's timeline (see the module docs and docs/recording.md).
pub struct RecordingTimeline {
    layout: ChannelLayout,
    start: Instant,
    reorder: i64,
    played_gap: i64,
    params: SourceParams,
    ring: MixRing,
    legs: Vec<Leg>,
    unknown_leg_frames: u64,
}

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
        let params = SourceParams {
            max_jump,
            drift_threshold: samples_of(clamp(config.drift_threshold, 1, 10)),
            drift_window: samples_of(clamp(config.drift_window, 200, 10_000)),
            late_resync_packets: config.late_resync_packets.max(1),
        };
        // Room for the reorder delay, the furthest a packet may map ahead of its arrival,
        // and some slack for a driver that polls late.
        let cap = reorder + max_jump + samples_of(Duration::from_millis(500));
        Self {
            layout,
            start,
            reorder,
            played_gap: samples_of(config.played_gap.min(Duration::from_secs(10))),
            params,
            ring: MixRing::new(usize::from(layout.channels()), cap as usize),
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
        });
        route.received
    }

    /// Removes a leg: its later packets are ignored; audio already placed stays.
    pub fn remove_leg(&mut self, leg: LegKey, _now: Instant) {
        if let Some(l) = self.legs.iter_mut().find(|l| l.key == leg) {
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
        let Some(l) = self.legs.iter_mut().find(|l| l.key == leg) else {
            self.unknown_leg_frames += 1;
            return;
        };
        if !l.active {
            l.stats.ignored_frames += 1;
            return;
        }
        if pcm.is_empty() {
            return;
        }
        let base = self.ring.base();
        let packet = Arrival {
            ssrc,
            ts: rtp_ts,
            rate: clock_rate,
            pos: arrival_pos,
            len: pcm.len(),
        };
        let located = l.received.locate(&self.params, packet, base);
        let s = &mut l.stats;
        match located {
            Ok((pl, which)) => {
                let body = pl.pos + pl.cut as i64;
                let placed = self
                    .ring
                    .place(usize::from(l.route.received), body, &pcm[pl.cut..]);
                l.received.placed(which, pl, placed.placed, pcm.len());
                s.frames_placed += u64::from(placed.placed > 0);
                s.samples_placed += placed.placed as u64;
                s.late_samples += placed.late as u64;
                s.late_frames += u64::from(placed.placed == 0 && placed.late > 0);
                s.overflow_samples += placed.overflow as u64;
                s.cut_samples += pl.cut as u64;
            }
            Err(Reject::Late) => {
                s.late_frames += 1;
                s.late_samples += pcm.len() as u64;
            }
            Err(Reject::Duplicate) => s.duplicate_frames += 1,
            Err(Reject::Invalid) => s.invalid_frames += 1,
        }
    }

    /// Audio callmux played to the leg (beep, talk, stream, ringback), pushed as it is sent.
    /// Recorded only where the layout says so (see [`ChannelLayout`]).
    pub fn push_played(&mut self, leg: LegKey, now: Instant, pcm: &[i16]) {
        let arrival_pos = self.position(now);
        let Some(l) = self.legs.iter_mut().find(|l| l.key == leg) else {
            self.unknown_leg_frames += 1;
            return;
        };
        if !l.active {
            l.stats.ignored_frames += 1;
            return;
        }
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
            self.params.max_jump,
        );
        let placed = self.ring.place(usize::from(ch), pos, pcm);
        l.stats.played_frames += 1;
        l.stats.late_samples += placed.late as u64;
        l.stats.overflow_samples += placed.overflow as u64;
    }

    /// Appends every frame that is final at `now` (older than `reorder_delay`) to `out`,
    /// interleaved, zeros where nothing was placed; returns the number of frames appended.
    pub fn drain(&mut self, now: Instant, out: &mut Vec<i16>) -> usize {
        let until = self.position(now) - self.reorder;
        self.ring.emit(until, out)
    }

    /// Appends every frame up to `now`, final or not (the recording ends).
    pub fn finish(&mut self, now: Instant, out: &mut Vec<i16>) -> usize {
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
