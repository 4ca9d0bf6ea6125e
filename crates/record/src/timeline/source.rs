//! Where a source's audio goes on the timeline: anchoring, RTP timestamp mapping with
//! wrap-around, re-anchoring on SSRC change or timestamp jump, and drift correction driven by
//! a windowed minimum of (arrival position − RTP position).
//!
//! All positions are in 16 kHz samples since the timeline's start. A packet's first sample is
//! taken to *start* at its arrival instant (the same convention as played audio).

use crate::layout::SAMPLE_RATE;

/// Tuning shared by every source of a timeline, in samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceParams {
    pub(crate) max_jump: i64,
    /// Furthest a packet may map ahead of its arrival and still be placed (the ring's room
    /// ahead); further is a timestamp jump. At most `max_jump`.
    pub(crate) max_ahead: i64,
    /// Whether a new segment waits (unplaced) for the anchor window before placing.
    pub(crate) staged_anchor: bool,
    pub(crate) drift_threshold: i64,
    pub(crate) drift_window: i64,
    pub(crate) late_resync_packets: u32,
}

/// Why a packet was not placed (counted by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Every sample's position was already final.
    Late,
    /// Same timestamp as a packet placed recently.
    Duplicate,
    /// Clock rate zero.
    Invalid,
}

/// The facts of one received packet that placement needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) ssrc: u32,
    pub(crate) ts: u32,
    pub(crate) rate: u32,
    /// Timeline position of the arrival instant.
    pub(crate) pos: i64,
    /// Samples in the packet.
    pub(crate) len: usize,
}

/// What to do with an accepted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Located {
    /// Place it now.
    Place(Placement, Which),
    /// The segment's anchor is still being chosen: keep the packet (extended timestamp
    /// `ext`) until [`ReceivedSource::commit`].
    Stage {
        /// Extended timestamp (relative to the anchoring packet).
        ext: i64,
    },
}

/// Where to put one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Timeline position of the packet's first sample.
    pub(crate) pos: i64,
    /// Samples at the start of the packet to drop because an earlier drift correction
    /// moved the mapping back over audio already placed ("the overlap is cut").
    pub(crate) cut: usize,
}

/// Counters a received source updates.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SourceEvents {
    pub(crate) ssrc_changes: u64,
    pub(crate) ts_jumps: u64,
    pub(crate) drift_corrections: u64,
    pub(crate) late_resyncs: u64,
    pub(crate) straggler_packets: u64,
}

const BLOCKS: usize = 8;
const RECENT: usize = 16;

/// Minimum of values over a sliding time window, kept as per-block minima (O(1) per push,
/// no allocation). Reports the window's minimum each time a block closes.
#[derive(Debug, Clone)]
struct MinWindow {
    start: [i64; BLOCKS],
    min: [i64; BLOCKS],
    count: [u32; BLOCKS],
    cur: usize,
    block_len: i64,
    window: i64,
}

impl MinWindow {
    fn new(window: i64) -> Self {
        Self {
            start: [0; BLOCKS],
            min: [0; BLOCKS],
            count: [0; BLOCKS],
            cur: 0,
            block_len: (window / BLOCKS as i64).max(1),
            window,
        }
    }

    fn reset(&mut self) {
        self.count = [0; BLOCKS];
    }

    /// Adds value `v` observed at time `t` (samples); returns the window minimum when a block
    /// closes and at least half of the window's blocks hold data.
    fn push(&mut self, t: i64, v: i64) -> Option<i64> {
        let c = self.cur;
        if self.count[c] == 0 {
            (self.start[c], self.min[c], self.count[c]) = (t, v, 1);
            return None;
        }
        if t - self.start[c] < self.block_len {
            self.min[c] = self.min[c].min(v);
            self.count[c] += 1;
            return None;
        }
        let mut m = i64::MAX;
        let mut filled = 0;
        for b in 0..BLOCKS {
            if self.count[b] > 0 && self.start[b] >= t - self.window {
                m = m.min(self.min[b]);
                filled += 1;
            }
        }
        self.cur = (c + 1) % BLOCKS;
        (
            self.start[self.cur],
            self.min[self.cur],
            self.count[self.cur],
        ) = (t, v, 1);
        (filled >= BLOCKS / 2).then_some(m)
    }
}

/// One anchored run of a source: a single SSRC and clock rate with continuous timestamps.
#[derive(Debug, Clone)]
struct Segment {
    ssrc: u32,
    rate: i64,
    /// Raw and extended timestamp of the newest packet (reference for unwrapping).
    ref_raw: u32,
    ref_ext: i64,
    /// Position of extended timestamp 0 (the anchoring packet).
    anchor_pos: i64,
    /// Correction added to mapped positions of packets with `ext >= shift_ext`.
    correction: i64,
    /// Correction of packets older than the last shift (reordered stragglers).
    old_correction: i64,
    shift_ext: i64,
    /// Packets with `ext >= shift_ext` drop samples positioned before this.
    cut_until: i64,
    /// End position of the newest packet placed.
    newest_end: i64,
    window: MinWindow,
    late_streak: u32,
    recent: [i64; RECENT],
    recent_next: usize,
    recent_len: usize,
    /// For gap accounting: first and last position covered, samples placed.
    span_start: i64,
    span_end: i64,
    placed: u64,
    /// The anchor is still being chosen (nothing placed yet): `anchor_pos` follows the
    /// earliest (arrival − RTP position) seen.
    staging: bool,
    /// Arrival position of the anchoring packet.
    first_arrival: i64,
    /// Lowest extended timestamp kept while staging (a reordered packet may precede ext 0).
    stage_min_ext: i64,
}

impl Segment {
    fn new(ssrc: u32, rate: u32, ts: u32, arrival_pos: i64, window: i64, staging: bool) -> Self {
        Self {
            ssrc,
            rate: i64::from(rate),
            ref_raw: ts,
            ref_ext: 0,
            anchor_pos: arrival_pos,
            correction: 0,
            old_correction: 0,
            shift_ext: i64::MIN,
            cut_until: i64::MIN,
            newest_end: arrival_pos,
            window: MinWindow::new(window),
            late_streak: 0,
            recent: [0; RECENT],
            recent_next: 0,
            recent_len: 0,
            span_start: i64::MAX,
            span_end: i64::MIN,
            placed: 0,
            staging,
            first_arrival: arrival_pos,
            stage_min_ext: 0,
        }
    }

    fn ext(&self, ts: u32) -> i64 {
        self.ref_ext + i64::from(ts.wrapping_sub(self.ref_raw) as i32)
    }

    fn scaled(&self, ext: i64) -> i64 {
        (ext * i64::from(SAMPLE_RATE)).div_euclid(self.rate)
    }

    fn map(&self, ext: i64) -> i64 {
        let c = if ext >= self.shift_ext {
            self.correction
        } else {
            self.old_correction
        };
        self.anchor_pos + self.scaled(ext) + c
    }

    fn fits(&self, p: &SourceParams, ssrc: u32, rate: u32, ts: u32, arrival_pos: i64) -> bool {
        let ahead = self.map(self.ext(ts)) - arrival_pos;
        self.ssrc == ssrc
            && self.rate == i64::from(rate)
            && ahead <= p.max_ahead
            && -ahead <= p.max_jump
    }

    fn is_duplicate(&mut self, ext: i64) -> bool {
        if self.recent[..self.recent_len].contains(&ext) {
            return true;
        }
        self.recent[self.recent_next] = ext;
        self.recent_next = (self.recent_next + 1) % RECENT;
        self.recent_len = (self.recent_len + 1).min(RECENT);
        false
    }

    /// Moves the mapping of packets from `from_ext` on by `new - correction` samples.
    fn shift(&mut self, new: i64, from_ext: i64) {
        self.cut_until = if new < self.correction {
            self.newest_end
        } else {
            i64::MIN
        };
        self.old_correction = self.correction;
        self.correction = new;
        self.shift_ext = from_ext;
    }

    fn placement(&self, ext: i64, len: usize) -> Placement {
        let pos = self.map(ext);
        let cut = if ext >= self.shift_ext {
            self.cut_until.saturating_sub(pos).clamp(0, len as i64) as usize
        } else {
            0
        };
        Placement { pos, cut }
    }

    fn record_placed(&mut self, p: Placement, placed: usize, len: usize) {
        let start = p.pos + p.cut as i64;
        let end = p.pos + len as i64;
        if placed > 0 {
            self.span_start = self.span_start.min(start);
            self.span_end = self.span_end.max(end);
            self.placed += placed as u64;
        }
    }

    fn gap_samples(&self) -> u64 {
        if self.span_end <= self.span_start {
            return 0;
        }
        ((self.span_end - self.span_start) as u64).saturating_sub(self.placed)
    }
}

/// What one leg sent, possibly over several SSRCs in turn.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceivedSource {
    cur: Option<Segment>,
    prev: Option<Segment>,
    /// Gap samples of segments no longer current or previous.
    retired_gaps: u64,
    pub(crate) events: SourceEvents,
}

/// Which segment a placement belongs to, so the caller can report what was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Current,
    Previous,
}

impl ReceivedSource {
    /// Decides where a packet goes. `base` is the first non-final position.
    pub(crate) fn locate(
        &mut self,
        p: &SourceParams,
        a: Arrival,
        base: i64,
    ) -> Result<Located, Reject> {
        let Arrival {
            ssrc,
            ts,
            rate,
            pos: arrival_pos,
            len,
        } = a;
        if rate == 0 {
            return Err(Reject::Invalid);
        }
        let fits_cur = self
            .cur
            .as_ref()
            .is_some_and(|s| s.fits(p, ssrc, rate, ts, arrival_pos));
        if !fits_cur {
            let fits_prev = self
                .prev
                .as_ref()
                .is_some_and(|s| s.fits(p, ssrc, rate, ts, arrival_pos));
            if fits_prev {
                if let Some(prev) = self.prev.as_mut() {
                    self.events.straggler_packets += 1;
                    let ext = prev.ext(ts);
                    if prev.is_duplicate(ext) {
                        return Err(Reject::Duplicate);
                    }
                    let pl = prev.placement(ext, len);
                    if pl.pos + len as i64 <= base {
                        return Err(Reject::Late);
                    }
                    return Ok(Located::Place(pl, Which::Previous));
                }
            }
            self.reanchor(p, ssrc, rate, ts, arrival_pos);
        }
        let Some(seg) = self.cur.as_mut() else {
            return Err(Reject::Invalid);
        };
        let ext = seg.ext(ts);
        if seg.is_duplicate(ext) {
            return Err(Reject::Duplicate);
        }
        let newest = ext >= seg.ref_ext;
        if ext > seg.ref_ext {
            seg.ref_ext = ext;
            seg.ref_raw = ts;
        }
        if seg.staging {
            // Anchor on the earliest offset seen: a first packet that was processed late
            // would otherwise put the whole source late, and correcting that later cuts
            // audio that was already placed.
            seg.anchor_pos = seg.anchor_pos.min(arrival_pos - seg.scaled(ext));
            seg.stage_min_ext = seg.stage_min_ext.min(ext);
            return Ok(Located::Stage { ext });
        }
        let raw_offset = arrival_pos - (seg.anchor_pos + seg.scaled(ext));
        if let Some(min) = seg.window.push(arrival_pos, raw_offset) {
            if (min - seg.correction).abs() > p.drift_threshold {
                let from = if newest { ext } else { seg.ref_ext + 1 };
                seg.shift(min, from);
                self.events.drift_corrections += 1;
            }
        }
        let mut pl = seg.placement(ext, len);
        if pl.pos + len as i64 <= base {
            seg.late_streak += 1;
            if seg.late_streak < p.late_resync_packets {
                return Err(Reject::Late);
            }
            // The path got slower than the reorder delay absorbs: follow it now instead of
            // waiting for the drift window, so audio is not lost for a whole window.
            seg.shift(raw_offset, ext);
            seg.cut_until = i64::MIN;
            seg.window.reset();
            seg.late_streak = 0;
            self.events.late_resyncs += 1;
            pl = seg.placement(ext, len);
        } else {
            seg.late_streak = 0;
        }
        if newest {
            seg.newest_end = seg.newest_end.max(pl.pos + len as i64);
        }
        Ok(Located::Place(pl, Which::Current))
    }

    /// Which segment a decoder tail belongs to: the one of `ssrc` and `rate` whose newest
    /// packet the tail follows, i.e. whose newest timestamp lies less than 125 ms (the
    /// longest packet) before `ts` — the current segment, or the one before a re-anchor.
    /// None for a tail that follows neither (it would land somewhere it does not belong).
    pub(crate) fn tail_segment(&self, ssrc: u32, rate: u32, ts: u32) -> Option<Which> {
        let follows = |s: &Segment| {
            let d = s.ext(ts) - s.ref_ext;
            s.ssrc == ssrc && s.rate == i64::from(rate) && d > 0 && d <= s.rate / 8
        };
        if self.cur.as_ref().is_some_and(follows) {
            Some(Which::Current)
        } else if self.prev.as_ref().is_some_and(follows) {
            Some(Which::Previous)
        } else {
            None
        }
    }

    /// Where a decoder tail of `len` samples starting at timestamp `ts` of segment `which`
    /// goes: mapped like a packet, but without any of a packet's effects (duplicate check,
    /// newest timestamp, drift filter, late streak), so the packet that continues the
    /// stream at `ts` is placed as usual on top of it. None while that segment is still
    /// choosing its anchor (commit it first).
    pub(crate) fn tail_placement(&self, which: Which, ts: u32, len: usize) -> Option<Placement> {
        let seg = match which {
            Which::Current => self.cur.as_ref(),
            Which::Previous => self.prev.as_ref(),
        };
        seg.filter(|s| !s.staging)
            .map(|s| s.placement(s.ext(ts), len))
    }

    /// Whether packet `a` would end a staging segment (re-anchor), so what was staged must
    /// be committed first.
    pub(crate) fn breaks_staging(&self, p: &SourceParams, a: &Arrival) -> bool {
        self.cur
            .as_ref()
            .is_some_and(|s| s.staging && a.rate != 0 && !s.fits(p, a.ssrc, a.rate, a.ts, a.pos))
    }

    /// Ends staging: fixes the anchor (never earlier than `base`, the first position not
    /// yet final, so nothing staged is late) and returns true if the segment was staging.
    /// Place the staged packets with [`placement_of`](Self::placement_of) afterwards.
    pub(crate) fn commit(&mut self, base: i64) -> bool {
        let Some(seg) = self.cur.as_mut().filter(|s| s.staging) else {
            return false;
        };
        let first = seg.scaled(seg.stage_min_ext);
        seg.anchor_pos = seg.anchor_pos.max(base - first);
        seg.staging = false;
        true
    }

    /// Where a packet of the current segment (extended timestamp `ext`) goes.
    pub(crate) fn placement_of(&self, ext: i64, len: usize) -> Option<Placement> {
        self.cur.as_ref().map(|s| s.placement(ext, len))
    }

    /// While staging: the arrival position of the anchoring packet.
    pub(crate) fn stage_started(&self) -> Option<i64> {
        self.cur
            .as_ref()
            .filter(|s| s.staging)
            .map(|s| s.first_arrival)
    }

    /// The last position that may become final while this source cannot yet be placed
    /// or is catching up, if it holds emission back:
    /// - nothing received yet: `stall_hold` before `now_pos`, so a first packet read late
    ///   can still be anchored where it belongs;
    /// - staging: the larger of `stall_hold` and `reorder` before the earliest staged
    ///   sample, so the anchor can still move that much earlier (its first packet was read
    ///   that late) without any staged sample being late;
    /// - placed, and its newest audio ends at most `stall_hold` before `now_pos`: the end
    ///   of its newest audio. Packets read after a stall (or released after a loss) fill
    ///   positions from there on; without the hold, the first of them would make the rest
    ///   final and they would be dropped as late. A source silent for longer than
    ///   `stall_hold` (DTX, hold, gone) no longer holds anything back.
    pub(crate) fn hold(&self, now_pos: i64, reorder: i64, stall_hold: i64) -> Option<i64> {
        let Some(seg) = self.cur.as_ref() else {
            // Nothing received yet (or since the leg rejoined): its first packet may be
            // read late (the task was busy creating the file, or stalled); keep room for it.
            return Some(now_pos - stall_hold.max(reorder));
        };
        if seg.staging {
            return Some(seg.anchor_pos + seg.scaled(seg.stage_min_ext) - stall_hold.max(reorder));
        }
        (seg.placed > 0 && now_pos - seg.newest_end <= stall_hold).then_some(seg.newest_end)
    }

    fn reanchor(&mut self, p: &SourceParams, ssrc: u32, rate: u32, ts: u32, arrival_pos: i64) {
        if let Some(old) = self.cur.take() {
            if old.ssrc == ssrc {
                self.events.ts_jumps += 1;
            } else {
                self.events.ssrc_changes += 1;
            }
            if let Some(gone) = self.prev.replace(old) {
                self.retired_gaps += gone.gap_samples();
            }
        }
        self.cur = Some(Segment::new(
            ssrc,
            rate,
            ts,
            arrival_pos,
            p.drift_window,
            p.staged_anchor,
        ));
    }

    /// Reports what was actually placed for a located packet (for gap accounting).
    pub(crate) fn placed(&mut self, which: Which, pl: Placement, placed: usize, len: usize) {
        let seg = match which {
            Which::Current => self.cur.as_mut(),
            Which::Previous => self.prev.as_mut(),
        };
        if let Some(seg) = seg {
            seg.record_placed(pl, placed, len);
            if which == Which::Current && placed > 0 {
                seg.newest_end = seg.newest_end.max(pl.pos + len as i64);
            }
        }
    }

    /// Samples inside this source's covered spans where it placed nothing (loss, DTX, gaps
    /// from drift corrections, late drops).
    pub(crate) fn gap_samples(&self) -> u64 {
        self.retired_gaps
            + self.cur.as_ref().map_or(0, Segment::gap_samples)
            + self.prev.as_ref().map_or(0, Segment::gap_samples)
    }

    /// Forgets the anchor (the leg left; a rejoin anchors afresh).
    pub(crate) fn reset(&mut self) {
        self.retired_gaps = self.gap_samples();
        self.cur = None;
        self.prev = None;
    }
}

/// What callmux played to one leg: no timestamps, so contiguous while pushes keep pace with
/// real time, re-anchored at the push instant after a pause.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlayedSource {
    next_pos: Option<i64>,
}

impl PlayedSource {
    /// Position of a push of `len` samples arriving at `arrival_pos`.
    pub(crate) fn locate(&mut self, arrival_pos: i64, len: usize, gap: i64, max_jump: i64) -> i64 {
        let pos = match self.next_pos {
            Some(next) if arrival_pos <= next + gap && next - arrival_pos <= max_jump => next,
            _ => arrival_pos,
        };
        self.next_pos = Some(pos + len as i64);
        pos
    }

    pub(crate) fn reset(&mut self) {
        self.next_pos = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(r: Result<Located, Reject>) -> (Placement, Which) {
        match r {
            Ok(Located::Place(p, w)) => (p, w),
            other => panic!("not placed: {other:?}"),
        }
    }

    const P: SourceParams = SourceParams {
        max_jump: 32_000,
        max_ahead: 32_000,
        staged_anchor: false,
        drift_threshold: 160,
        drift_window: 32_000,
        late_resync_packets: 3,
    };

    #[test]
    fn timestamps_map_at_the_clock_rate_and_unwrap() {
        let mut s = ReceivedSource::default();
        let ts0 = u32::MAX - 100;
        let (a, _) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 7,
                ts: ts0,
                rate: 8000,
                pos: 1000,
                len: 320,
            },
            0,
        ));
        assert_eq!(a.pos, 1000);
        let (b, _) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 7,
                ts: ts0.wrapping_add(160),
                rate: 8000,
                pos: 1320,
                len: 320,
            },
            0,
        ));
        assert_eq!(b.pos, 1320);
        let (c, _) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 7,
                ts: ts0.wrapping_add(480),
                rate: 8000,
                pos: 1960,
                len: 320,
            },
            0,
        ));
        assert_eq!(c.pos, 1960);
        assert_eq!(s.events.ts_jumps + s.events.ssrc_changes, 0);
    }

    #[test]
    fn opus_clock_is_divided_down() {
        let mut s = ReceivedSource::default();
        s.locate(
            &P,
            Arrival {
                ssrc: 1,
                ts: 0,
                rate: 48_000,
                pos: 0,
                len: 320,
            },
            0,
        )
        .unwrap();
        let (b, _) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 1,
                ts: 960,
                rate: 48_000,
                pos: 320,
                len: 320,
            },
            0,
        ));
        assert_eq!(b.pos, 320);
    }

    #[test]
    fn ssrc_change_and_jump_reanchor_and_stragglers_use_the_old_mapping() {
        let mut s = ReceivedSource::default();
        s.locate(
            &P,
            Arrival {
                ssrc: 1,
                ts: 1000,
                rate: 8000,
                pos: 0,
                len: 320,
            },
            0,
        )
        .unwrap();
        let (a, _) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 2,
                ts: 99_999,
                rate: 8000,
                pos: 640,
                len: 320,
            },
            0,
        ));
        assert_eq!(a.pos, 640);
        assert_eq!(s.events.ssrc_changes, 1);
        let (b, w) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 1,
                ts: 1160,
                rate: 8000,
                pos: 700,
                len: 320,
            },
            0,
        ));
        assert_eq!((b.pos, w), (320, Which::Previous));
        let (c, _) = placed(s.locate(
            &P,
            Arrival {
                ssrc: 2,
                ts: 99_999 + 8000 * 60,
                rate: 8000,
                pos: 960,
                len: 320,
            },
            0,
        ));
        assert_eq!(c.pos, 960);
        assert_eq!(s.events.ts_jumps, 1);
    }

    #[test]
    fn duplicates_and_zero_rate_are_rejected() {
        let mut s = ReceivedSource::default();
        s.locate(
            &P,
            Arrival {
                ssrc: 1,
                ts: 0,
                rate: 8000,
                pos: 0,
                len: 320,
            },
            0,
        )
        .unwrap();
        assert_eq!(
            s.locate(
                &P,
                Arrival {
                    ssrc: 1,
                    ts: 0,
                    rate: 8000,
                    pos: 10,
                    len: 320
                },
                0
            ),
            Err(Reject::Duplicate)
        );
        assert_eq!(
            s.locate(
                &P,
                Arrival {
                    ssrc: 1,
                    ts: 0,
                    rate: 0,
                    pos: 10,
                    len: 320
                },
                0
            ),
            Err(Reject::Invalid)
        );
    }

    #[test]
    fn played_audio_is_contiguous_until_a_pause() {
        let mut p = PlayedSource::default();
        assert_eq!(p.locate(100, 320, 960, 32_000), 100);
        assert_eq!(p.locate(430, 320, 960, 32_000), 420);
        assert_eq!(p.locate(5000, 320, 960, 32_000), 5000);
    }

    #[test]
    fn min_window_reports_block_minima() {
        let mut w = MinWindow::new(800);
        let mut seen = None;
        for t in 0..2000 {
            if let Some(m) = w.push(t, 50 - (t % 7)) {
                seen = Some(m);
            }
        }
        assert_eq!(seen, Some(44));
    }
}
