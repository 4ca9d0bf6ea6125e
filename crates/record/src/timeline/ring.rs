//! The mixing ring: per channel, a fixed window of i32 accumulators starting at the first
//! position not yet emitted, plus one bit per sample saying whether anything was placed there.
//! Nothing here allocates after construction.

/// Result of placing one block of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Samples written into the ring.
    pub(crate) placed: usize,
    /// Samples dropped because their position was already emitted (final).
    pub(crate) late: usize,
    /// Samples dropped because their position lies beyond the ring's horizon.
    pub(crate) overflow: usize,
}

pub(crate) struct MixRing {
    channels: usize,
    cap: usize,
    mask: usize,
    acc: Vec<i32>,
    occ: Vec<u64>,
    /// First position not yet emitted; every position below it is final.
    base: i64,
    silence: Vec<u64>,
    clipped: Vec<u64>,
}

impl MixRing {
    /// A ring holding at least `min_cap` samples per channel (rounded up to a power of two,
    /// at least 1024).
    pub(crate) fn new(channels: usize, min_cap: usize) -> Self {
        let cap = min_cap.max(1024).next_power_of_two();
        Self {
            channels,
            cap,
            mask: cap - 1,
            acc: vec![0; channels * cap],
            occ: vec![0; channels * cap / 64],
            base: 0,
            silence: vec![0; channels],
            clipped: vec![0; channels],
        }
    }

    pub(crate) fn base(&self) -> i64 {
        self.base
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Samples emitted with nothing placed, per channel.
    pub(crate) fn silence(&self) -> &[u64] {
        &self.silence
    }

    /// Samples whose mix exceeded the i16 range and were clamped, per channel.
    pub(crate) fn clipped(&self) -> &[u64] {
        &self.clipped
    }

    /// Mixes `samples` into channel `ch` starting at timeline position `pos`.
    pub(crate) fn place(&mut self, ch: usize, pos: i64, samples: &[i16]) -> Placed {
        if ch >= self.channels || samples.is_empty() {
            return Placed::default();
        }
        let len = samples.len() as i64;
        let end = pos.saturating_add(len);
        let horizon = self.base + self.cap as i64;
        let lo = pos.max(self.base);
        let hi = end.min(horizon);
        let late = (lo - pos).clamp(0, len) as usize;
        if hi <= lo {
            let overflow = samples.len() - late;
            return Placed {
                placed: 0,
                late,
                overflow,
            };
        }
        let overflow = (end - hi) as usize;
        let n = (hi - lo) as usize;
        let src = &samples[late..late + n];
        // lo ≥ base ≥ 0, so the cast is lossless.
        let i0 = (lo as usize) & self.mask;
        let first = n.min(self.cap - i0);
        let row = ch * self.cap;
        let words = ch * self.cap / 64;
        let (acc, occ) = (&mut self.acc, &mut self.occ[words..words + self.cap / 64]);
        for (from, src) in [(i0, &src[..first]), (0, &src[first..])] {
            if src.is_empty() {
                continue;
            }
            let to = from + src.len();
            let dst = &mut acc[row + from..row + to];
            if any_bits(occ, from, to) {
                mix_into(dst, src);
            } else {
                // Nothing placed here yet: the accumulators are zero, so a copy is the mix.
                copy_into(dst, src);
            }
            set_bits(occ, from, to);
        }
        Placed {
            placed: n,
            late,
            overflow,
        }
    }

    /// Appends interleaved frames for positions `base..until` to `out` (clamping each mix to
    /// i16 and clearing it), and returns how many frames were appended.
    pub(crate) fn emit(&mut self, until: i64, out: &mut Vec<i16>) -> usize {
        let total = until.saturating_sub(self.base).max(0) as usize;
        out.reserve(total * self.channels);
        let mut left = total;
        while left > 0 {
            let i0 = (self.base as usize) & self.mask;
            let n = left.min(self.cap - i0);
            self.emit_contiguous(i0, n, out);
            self.base += n as i64;
            left -= n;
        }
        total
    }

    /// Emits ring slots `i0..i0 + n` (no wrap inside). The output starts zeroed; per channel,
    /// only the 64-sample words with something placed are read (and cleared): a silent
    /// channel costs one bit test per word, a single-source channel one clamp per sample.
    fn emit_contiguous(&mut self, i0: usize, n: usize, out: &mut Vec<i16>) {
        let c = self.channels;
        let start = out.len();
        out.resize(start + n * c, 0);
        let dst = &mut out[start..];
        for ch in 0..c {
            let row = &mut self.acc[ch * self.cap + i0..ch * self.cap + i0 + n];
            let words = ch * self.cap / 64;
            let occ = &mut self.occ[words..words + self.cap / 64];
            let (mut clipped, mut silent) = (0u64, 0u64);
            for (w, mask) in range_masks(i0, i0 + n) {
                let bits = occ[w] & mask;
                silent += u64::from((mask & !bits).count_ones());
                if bits == 0 {
                    continue;
                }
                occ[w] &= !mask;
                let a = (w * 64).max(i0) - i0;
                let b = (w * 64 + 64).min(i0 + n) - i0;
                let frames = &mut dst[a * c..b * c];
                clipped += match c {
                    1 => drain_run::<1>(&mut row[a..b], frames, 0),
                    2 => drain_run::<2>(&mut row[a..b], frames, ch),
                    _ => drain_run_any(&mut row[a..b], frames, c, ch),
                };
            }
            self.clipped[ch] += clipped;
            self.silence[ch] += silent;
        }
    }
}

/// Moves one channel's accumulators into its slot of `C`-channel frames, clamped to i16,
/// and zeroes them; returns how many were clamped.
#[inline]
fn drain_run<const C: usize>(acc: &mut [i32], frames: &mut [i16], ch: usize) -> u64 {
    let mut clipped = 0u32;
    for (frame, a) in frames.chunks_exact_mut(C).zip(acc.iter_mut()) {
        let v = *a;
        *a = 0;
        let s = v.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        clipped += u32::from(s != v);
        if let Some(slot) = frame.get_mut(ch) {
            *slot = s as i16;
        }
    }
    u64::from(clipped)
}

fn drain_run_any(acc: &mut [i32], frames: &mut [i16], c: usize, ch: usize) -> u64 {
    let mut clipped = 0u64;
    for (frame, a) in frames.chunks_exact_mut(c).zip(acc.iter_mut()) {
        let v = *a;
        *a = 0;
        let s = v.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        clipped += u64::from(s != v);
        frame[ch] = s as i16;
    }
    clipped
}

/// Adds `src` into `acc` with saturation (a mix never wraps around).
#[inline]
fn mix_into(acc: &mut [i32], src: &[i16]) {
    for (a, s) in acc.iter_mut().zip(src) {
        *a = a.saturating_add(i32::from(*s));
    }
}

/// Writes `src` into accumulators known to be zero.
#[inline]
fn copy_into(acc: &mut [i32], src: &[i16]) {
    for (a, s) in acc.iter_mut().zip(src) {
        *a = i32::from(*s);
    }
}

fn range_masks(from: usize, to: usize) -> impl Iterator<Item = (usize, u64)> {
    let first_word = from / 64;
    let last_word = to.div_ceil(64);
    (first_word..last_word).map(move |w| {
        let lo = from.max(w * 64) - w * 64;
        let hi = to.min(w * 64 + 64) - w * 64;
        let mask = if hi - lo == 64 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        (w, mask)
    })
}

/// Whether any bit in `from..to` is set.
fn any_bits(words: &[u64], from: usize, to: usize) -> bool {
    from < to && range_masks(from, to).any(|(w, mask)| words[w] & mask != 0)
}

fn set_bits(words: &mut [u64], from: usize, to: usize) {
    if from >= to {
        return;
    }
    for (w, mask) in range_masks(from, to) {
        words[w] |= mask;
    }
}

/// Counts the clear bits in `from..to` and clears the whole range.
#[cfg(test)]
fn take_zero_bits(words: &mut [u64], from: usize, to: usize) -> u64 {
    if from >= to {
        return 0;
    }
    let mut zeros = 0u64;
    for (w, mask) in range_masks(from, to) {
        zeros += u64::from((!words[w] & mask).count_ones());
        words[w] &= !mask;
    }
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_and_emit_across_the_wrap() {
        let mut r = MixRing::new(2, 1024);
        let mut out = Vec::new();
        assert_eq!(r.emit(1000, &mut out), 1000);
        let block: Vec<i16> = (1..=100).collect();
        let p = r.place(1, 1000, &block);
        assert_eq!(
            p,
            Placed {
                placed: 100,
                late: 0,
                overflow: 0
            }
        );
        out.clear();
        assert_eq!(r.emit(1100, &mut out), 100);
        let ch1: Vec<i16> = out.chunks(2).map(|f| f[1]).collect();
        assert_eq!(ch1, block);
        assert!(out.chunks(2).all(|f| f[0] == 0));
        assert_eq!(r.silence(), &[1100, 1000]);
    }

    #[test]
    fn late_and_overflow_are_counted() {
        let mut r = MixRing::new(1, 1024);
        let mut out = Vec::new();
        r.emit(500, &mut out);
        let p = r.place(0, 490, &[1; 20]);
        assert_eq!(
            p,
            Placed {
                placed: 10,
                late: 10,
                overflow: 0
            }
        );
        let p = r.place(0, 500 + 1024 - 5, &[1; 20]);
        assert_eq!(
            p,
            Placed {
                placed: 5,
                late: 0,
                overflow: 15
            }
        );
        let p = r.place(0, 10_000, &[1; 20]);
        assert_eq!(
            p,
            Placed {
                placed: 0,
                late: 0,
                overflow: 20
            }
        );
    }

    #[test]
    fn mixing_saturates_instead_of_wrapping() {
        let mut r = MixRing::new(1, 1024);
        r.place(0, 0, &[i16::MAX; 4]);
        r.place(0, 0, &[i16::MAX; 4]);
        r.place(0, 4, &[i16::MIN; 4]);
        r.place(0, 4, &[i16::MIN; 4]);
        let mut out = Vec::new();
        r.emit(8, &mut out);
        assert_eq!(
            out,
            [32767, 32767, 32767, 32767, -32768, -32768, -32768, -32768]
        );
        assert_eq!(r.clipped(), &[8]);
    }

    /// Random placements and emits of every size and alignment against a plain model
    /// (a map from position to sum): same output, silence and clipped counts.
    #[test]
    fn matches_a_plain_model() {
        let mut seed = 99u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for channels in [1usize, 2, 3] {
            let mut r = MixRing::new(channels, 1024);
            let mut model: Vec<Vec<i64>> = vec![vec![0; 300_000]; channels];
            let mut touched: Vec<Vec<bool>> = vec![vec![false; 300_000]; channels];
            let mut out = Vec::new();
            let mut until = 0i64;
            for _ in 0..3000 {
                if rnd(3) == 0 {
                    until += rnd(200) as i64;
                    r.emit(until, &mut out);
                } else {
                    let ch = rnd(channels as u64) as usize;
                    let pos = until - 100 + rnd(1300) as i64;
                    let len = 1 + rnd(400) as usize;
                    let v = if rnd(10) == 0 {
                        i16::MAX
                    } else {
                        (rnd(2000) as i16) - 1000
                    };
                    let p = r.place(ch, pos, &vec![v; len]);
                    for (k, q) in (pos..pos + len as i64).enumerate() {
                        let inside = q >= r.base() && q < r.base() + r.capacity() as i64;
                        assert_eq!(inside, k >= p.late && k < p.late + p.placed);
                        if inside {
                            model[ch][q as usize] += i64::from(v);
                            touched[ch][q as usize] = true;
                        }
                    }
                }
            }
            assert_eq!(out.len(), until as usize * channels);
            for ch in 0..channels {
                let mut silent = 0u64;
                let mut clipped = 0u64;
                for q in 0..until as usize {
                    let m = model[ch][q];
                    let want = m.clamp(-32768, 32767);
                    clipped += u64::from(want != m);
                    silent += u64::from(!touched[ch][q]);
                    assert_eq!(i64::from(out[q * channels + ch]), want, "ch {ch} pos {q}");
                }
                assert_eq!(r.silence()[ch], silent, "silence of {ch}");
                assert_eq!(r.clipped()[ch], clipped, "clipped of {ch}");
            }
        }
    }

    #[test]
    fn bit_helpers() {
        let mut w = [0u64; 4];
        set_bits(&mut w, 3, 130);
        assert_eq!(take_zero_bits(&mut w, 0, 256), 256 - 127);
        assert_eq!(w, [0; 4]);
        set_bits(&mut w, 0, 256);
        assert_eq!(take_zero_bits(&mut w, 64, 128), 0);
        assert_eq!(w, [u64::MAX, 0, u64::MAX, u64::MAX]);
    }
}
