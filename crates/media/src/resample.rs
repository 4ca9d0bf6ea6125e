//! 8 kHz ↔ 16 kHz conversion with small stateful half-band FIR filters, so G.711 legs meet
//! the 16 kHz internal rate without clicks at frame boundaries.
//!
//! Both directions use the same linear-phase half-band low-pass (cut-off fs/4 at 16 kHz),
//! designed as a Kaiser-windowed sinc: [`TAPS`] taps, about 75 dB of stop-band rejection
//! from 4.6 kHz, flat to well within 0.1 dB up to 3.4 kHz. Every other tap of a half-band
//! filter is zero and the centre tap is ½, so each direction is one 32-tap polyphase branch
//! plus a pure delay: per 8 kHz sample, 32 multiply-adds.
//!
//! Arithmetic: the taps are quantised to Q14 (so they sum to exactly 1: DC passes
//! unchanged) and applied in `f32`, where those values are exact and a sum of 32 products
//! of 16-bit samples is accurate to a small fraction of an LSB (a test bounds the
//! difference to the f64 design at 4 LSB); the result is clamped to the `i16` range and
//! rounded to nearest by the float-magic-number trick, so no libm `round` call. Samples are
//! processed in blocks over a contiguous copy of the history, one tap at a time across the
//! block (see [`fir`]): the compiler vectorises that with `mulps`/`addps` on any x86-64
//! (SSE2). Integer arithmetic would need a 32-bit vector multiply, which SSE2 lacks.
//! Nothing allocates, no per-sample branch.
//!
//! Delay: the up-sampler's output lags its input by [`UP_DELAY`] samples at 16 kHz
//! (1.94 ms); [`Upsampler2x::tail`] returns the audio still inside the filter when a stream
//! ends, so N input samples give exactly 2N samples of audio, and [`Upsampler2x::flush`]
//! returns that plus the filter's ringing and empties it, for a stream that pauses and may
//! go on (flush + the emptied filter's output = the unbroken output).

/// Filter length. `(TAPS - 1) / 2` must be odd so the outermost taps are non-zero.
pub const TAPS: usize = 63;
const HALF: usize = (TAPS - 1) / 2;
const BETA: f64 = 7.0;
/// Taps of one polyphase branch (the non-zero taps other than the centre).
const BRANCH: usize = HALF + 1;
/// Samples (at 16 kHz) by which [`Upsampler2x`]'s output lags its input.
pub const UP_DELAY: usize = HALF;
/// Samples (at 16 kHz) that still depend on a stream's input after its last sample went
/// in: the [`UP_DELAY`] samples of delayed audio, then the filter's ringing (every other
/// sample) until the last input leaves the 32-tap branch. [`Upsampler2x::flush`] returns
/// all of them, so flushed output plus a fresh filter's output sums to the unbroken one.
pub const UP_RING_OUT: usize = 2 * HALF - 1;
/// Input samples processed per inner block (a stack buffer of this many plus the history).
const BLOCK: usize = 160;
/// Fixed-point precision of the taps (Q14).
const FRAC: u32 = 14;
/// Q14 unity.
const ONE: i32 = 1 << FRAC;

/// The half-band prototype, `h[k]` for `k = 0..TAPS` (centre at `HALF`), unity DC gain.
fn prototype() -> [f64; TAPS] {
    let i0_beta = bessel_i0(BETA);
    let mut sum = 0.0f64;
    let mut raw = [0.0f64; TAPS];
    for (k, slot) in raw.iter_mut().enumerate() {
        let n = k as f64 - HALF as f64;
        let sinc = if n == 0.0 {
            0.5
        } else {
            (std::f64::consts::PI * n / 2.0).sin() / (std::f64::consts::PI * n)
        };
        let ratio = n / HALF as f64;
        let window = bessel_i0(BETA * (1.0 - ratio * ratio).max(0.0).sqrt()) / i0_beta;
        *slot = sinc * window;
        sum += *slot;
    }
    for v in &mut raw {
        *v /= sum;
    }
    raw
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

/// The branch taps `h[0], h[2], …, h[TAPS - 1]` times `gain`, in Q14, symmetric
/// (`q[i] == q[BRANCH - 1 - i]`), with the rounding error shared by the two largest taps so
/// they sum to exactly `target` (even: symmetric pairs always sum to an even number), so DC
/// passes unchanged.
fn branch_q14(gain: f64, target: i32) -> [i16; BRANCH] {
    let h = prototype();
    let mut q = [0i16; BRANCH];
    for i in 0..BRANCH / 2 {
        let v = (gain * h[2 * i] * f64::from(ONE)).round() as i16;
        (q[i], q[BRANCH - 1 - i]) = (v, v);
    }
    let sum: i32 = q.iter().map(|&c| i32::from(c)).sum();
    let fix = ((target - sum) / 2) as i16;
    let big = BRANCH / 2 - 1;
    q[big] += fix;
    q[BRANCH - 1 - big] += fix;
    q
}

/// Outputs computed together, in registers (eight SSE vectors).
const LANES: usize = 32;

/// `acc[n] = Σ_i c[i] · x[n + i]` for `n` in `0..k` rounded up to [`LANES`] (the extra
/// outputs read the zero padding of `x` and are ignored). The taps are symmetric, so each
/// pair of taps is one multiply of the summed samples. Per group of [`LANES`] outputs the
/// sums stay in registers across the 16 tap pairs: the compiler turns the inner loop into
/// `movups`/`addps`/`mulps` on any x86-64 (SSE2), about 3 500 instructions per 160 inputs.
#[inline(always)]
fn fir(c: &[f32; BRANCH], x: &[f32; BRANCH - 1 + BLOCK], acc: &mut [f32; BLOCK], k: usize) {
    for n0 in (0..k.min(BLOCK)).step_by(LANES) {
        let mut sums = [0f32; LANES];
        for (i, &tap) in c.iter().enumerate().take(BRANCH / 2) {
            let (Some(lo), Some(hi)) = (
                x.get(n0 + i..n0 + i + LANES),
                x.get(n0 + BRANCH - 1 - i..n0 + BRANCH - 1 - i + LANES),
            ) else {
                return;
            };
            for ((s, &a), &b) in sums.iter_mut().zip(lo).zip(hi) {
                *s += tap * (a + b);
            }
        }
        if let Some(dst) = acc.get_mut(n0..n0 + LANES) {
            dst.copy_from_slice(&sums);
        }
    }
}

/// 1.5 × 2^23: adding it to a float of magnitude below 2^22 leaves the nearest integer
/// (ties to even) in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// A filter output → i16: clamped to the i16 range (a full-scale step's overshoot
/// saturates, never wraps), rounded to nearest.
#[inline(always)]
fn to_i16(y: f32) -> i16 {
    let clamped = y.clamp(f32::from(i16::MIN), f32::from(i16::MAX));
    ((clamped + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) as i16
}

/// Q14 taps as the exact f32 values they stand for.
fn q14_to_f32(q: [i16; BRANCH]) -> [f32; BRANCH] {
    q.map(|c| f32::from(c) / ONE as f32)
}

/// Converts `src` to f32 into the start of `dst`.
#[inline(always)]
fn widen(dst: &mut [f32], src: &[i16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32::from(s);
    }
}

/// 8 kHz → 16 kHz interpolator (zero-stuffing + half-band low-pass, polyphase).
///
/// Output pair `n` (for input sample `n`) is the interpolated sample between inputs
/// `n - 16` and `n - 15`, then input `n - 15` itself: the output lags by [`UP_DELAY`].
#[derive(Debug, Clone)]
pub struct Upsampler2x {
    /// `2 h[0], 2 h[2], …, 2 h[TAPS - 1]`, Q14-exact (sum exactly 1).
    taps: [f32; BRANCH],
    /// `[..BRANCH - 1]`: the last input samples, oldest first; then room for a block.
    /// Kept here (not on the stack) so it is never zero-filled per packet.
    buf: [f32; BRANCH - 1 + BLOCK],
    /// Filter outputs of the current block.
    acc: [f32; BLOCK],
    /// The last `(HALF - 1) / 2` input samples (the centre tap's delay line), oldest first.
    centre: [i16; (HALF - 1) / 2],
}

impl Default for Upsampler2x {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler2x {
    /// A fresh interpolator with silent history.
    pub fn new() -> Self {
        // Output m = 2n + p is sum_j 2 h[j] u[m - j] over the zero-stuffed input u (u[2n] =
        // x[n], u[2n + 1] = 0), so output 2n uses the even taps j = 2i against x[n - i] and
        // output 2n + 1 the odd taps. HALF is odd, so the even taps are the non-zero odd
        // offsets from the centre, and the odd taps hold only the centre (a pure delay).
        Self {
            taps: q14_to_f32(branch_q14(2.0, ONE)),
            buf: [0.0; BRANCH - 1 + BLOCK],
            acc: [0.0; BLOCK],
            centre: [0; (HALF - 1) / 2],
        }
    }

    /// Pushes one 8 kHz sample and returns the two 16 kHz samples it produces.
    pub fn push(&mut self, x: i16) -> [i16; 2] {
        let mut y = [0; 2];
        self.run(&[x], &mut y);
        y
    }

    /// Appends `2 * input.len()` 16 kHz samples for 8 kHz `input`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + 2 * input.len(), 0);
        if let Some(dst) = out.get_mut(start..) {
            self.run(input, dst);
        }
    }

    /// Writes `2 * input.len()` samples to the start of `out` (which must be that long;
    /// a shorter `out` gets only the pairs that fit, the state still advances by `input`).
    pub(crate) fn run(&mut self, input: &[i16], out: &mut [i16]) {
        let mut out = out;
        for chunk in input.chunks(BLOCK) {
            let k = chunk.len();
            widen(&mut self.buf[BRANCH - 1..BRANCH - 1 + k], chunk);
            fir(&self.taps, &self.buf, &mut self.acc, k);
            let mut filtered = [0i16; BLOCK];
            for (y, &a) in filtered.iter_mut().zip(&self.acc[..k]) {
                *y = to_i16(a);
            }
            // The centre tap (2 h[HALF] = 1): input n - (HALF - 1) / 2, unfiltered.
            const D: usize = (HALF - 1) / 2;
            let mut delayed = [0i16; D + BLOCK];
            delayed[..D].copy_from_slice(&self.centre);
            delayed[D..D + k].copy_from_slice(chunk);
            let all = std::mem::take(&mut out);
            let n = (2 * k).min(all.len());
            let (dst, rest) = all.split_at_mut(n);
            for ((pair, &a), &x) in dst.chunks_exact_mut(2).zip(&filtered).zip(&delayed) {
                pair[0] = a;
                pair[1] = x;
            }
            out = rest;
            self.buf.copy_within(k..k + BRANCH - 1, 0);
            self.centre.copy_from_slice(&delayed[k..k + D]);
        }
    }

    /// Appends the [`UP_DELAY`] samples still inside the filter, as if the input went
    /// silent now: call it when a stream ends so its last 1.94 ms are not lost. The state
    /// is unchanged (the stream may go on).
    pub fn tail(&self, out: &mut Vec<i16>) -> usize {
        let mut copy = self.clone();
        let mut y = [0i16; 2 * (UP_DELAY / 2 + 1)];
        copy.run(&[0; UP_DELAY / 2 + 1], &mut y);
        out.extend_from_slice(&y[..UP_DELAY]);
        UP_DELAY
    }

    /// Appends the [`UP_RING_OUT`] samples the input so far still contributes, as if the
    /// input went silent now, and forgets the history. Since the filter is linear, these
    /// samples plus what the emptied filter makes of later input are the output of one
    /// unbroken run (each side rounded on its own: within 1 LSB), so a stream that pauses
    /// can be flushed and placed in full, and still go on seamlessly if it was not over.
    pub fn flush(&mut self, out: &mut Vec<i16>) -> usize {
        let mut y = [0i16; 2 * HALF];
        self.run(&[0; HALF], &mut y);
        out.extend_from_slice(&y[..UP_RING_OUT]);
        self.reset();
        UP_RING_OUT
    }

    /// Forgets the history (new stream).
    pub fn reset(&mut self) {
        self.buf = [0.0; BRANCH - 1 + BLOCK];
        self.centre = [0; (HALF - 1) / 2];
    }
}

/// 16 kHz → 8 kHz decimator (half-band low-pass, keep every other sample).
///
/// Polyphase: output `j` (after input `2j + 1`) is the 32-tap branch over the second sample
/// of each input pair plus the centre tap (½) times the first sample of pair `j - 15`.
#[derive(Debug, Clone)]
pub struct Downsampler2x {
    /// `h[0], h[2], …, h[TAPS - 1]`, Q14-exact.
    taps: [f32; BRANCH],
    /// `h[HALF]`, Q14-exact, chosen so the taps sum to exactly 1.
    centre: f32,
    /// The last `BRANCH - 1` second-of-pair samples, oldest first.
    odd_hist: [i16; BRANCH - 1],
    /// The last `(HALF - 1) / 2` first-of-pair samples, oldest first.
    even_hist: [i16; (HALF - 1) / 2],
    /// The first sample of a pair whose second has not come yet.
    pending: Option<i16>,
}

impl Default for Downsampler2x {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler2x {
    /// A fresh decimator with silent history.
    pub fn new() -> Self {
        let taps = branch_q14(1.0, ONE / 2);
        let sum: i32 = taps.iter().map(|&c| i32::from(c)).sum();
        Self {
            taps: q14_to_f32(taps),
            centre: (ONE - sum) as f32 / ONE as f32,
            odd_hist: [0; BRANCH - 1],
            even_hist: [0; (HALF - 1) / 2],
            pending: None,
        }
    }

    /// Pushes one 16 kHz sample; every second call returns the 8 kHz output.
    pub fn push(&mut self, x: i16) -> Option<i16> {
        let mut y = [0; 1];
        (self.run(&[x], &mut y) == 1).then_some(y[0])
    }

    /// Appends the 8 kHz samples for 16 kHz `input` (`input.len() / 2`, carrying an odd
    /// sample over to the next call). Returns how many were appended.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> usize {
        let n = (input.len() + usize::from(self.pending.is_some())) / 2;
        let start = out.len();
        out.resize(start + n, 0);
        match out.get_mut(start..) {
            Some(dst) => self.run(input, dst),
            None => 0,
        }
    }

    /// Writes the outputs for `input` to the start of `out` (room for
    /// `(input.len() + 1) / 2` is enough) and returns how many.
    pub(crate) fn run(&mut self, input: &[i16], out: &mut [i16]) -> usize {
        let mut rest = input;
        let mut produced = 0;
        if let Some(first) = self.pending.take() {
            let Some((&second, tail)) = rest.split_first() else {
                self.pending = Some(first);
                return 0;
            };
            produced += self.pairs(&[first], &[second], out);
            rest = tail;
        }
        let whole = rest.len() / 2 * 2;
        if let Some(&last) = rest.get(whole..).and_then(<[i16]>::first) {
            self.pending = Some(last);
        }
        for block in rest[..whole].chunks(2 * BLOCK) {
            let (mut even, mut odd) = ([0i16; BLOCK], [0i16; BLOCK]);
            let k = block.len() / 2;
            for ((pair, e), o) in block.chunks_exact(2).zip(&mut even).zip(&mut odd) {
                (*e, *o) = (pair[0], pair[1]);
            }
            let dst = out.get_mut(produced..).unwrap_or_default();
            produced += self.pairs(&even[..k], &odd[..k], dst);
        }
        produced
    }

    /// Filters `k` input pairs (first samples `even`, second samples `odd`) into up to `k`
    /// outputs at the start of `out`; returns how many were written.
    fn pairs(&mut self, even: &[i16], odd: &[i16], out: &mut [i16]) -> usize {
        const EH: usize = (HALF - 1) / 2;
        let k = even.len().min(odd.len()).min(BLOCK);
        let mut ext_o = [0i16; BRANCH - 1 + BLOCK];
        let mut ext_e = [0i16; EH + BLOCK];
        ext_o[..BRANCH - 1].copy_from_slice(&self.odd_hist);
        ext_o[BRANCH - 1..BRANCH - 1 + k].copy_from_slice(&odd[..k]);
        ext_e[..EH].copy_from_slice(&self.even_hist);
        ext_e[EH..EH + k].copy_from_slice(&even[..k]);
        let ext_o = &ext_o[..BRANCH - 1 + k];
        let mut xf = [0f32; BRANCH - 1 + BLOCK];
        widen(&mut xf, ext_o);
        let mut acc = [0f32; BLOCK];
        fir(&self.taps, &xf, &mut acc, k);
        let acc = &acc[..k];
        let mut written = 0;
        for ((y, &a), &e) in out.iter_mut().zip(acc.iter()).zip(&ext_e[..k]) {
            *y = to_i16(a + self.centre * f32::from(e));
            written += 1;
        }
        self.odd_hist.copy_from_slice(&ext_o[k..]);
        self.even_hist.copy_from_slice(&ext_e[k..k + EH]);
        written
    }

    /// Forgets the history (new stream).
    pub fn reset(&mut self) {
        self.odd_hist = [0; BRANCH - 1];
        self.even_hist = [0; (HALF - 1) / 2];
        self.pending = None;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Sine of `freq` Hz at `rate`, amplitude `amp`.
    pub(crate) fn sine(freq: f64, rate: f64, amp: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|n| (amp * (2.0 * std::f64::consts::PI * freq * n as f64 / rate).sin()) as i16)
            .collect()
    }

    /// RMS of a signal.
    pub(crate) fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Amplitude of the `freq` component (Goertzel), normalised so a sine of amplitude A gives A.
    pub(crate) fn tone_amplitude(x: &[i16], freq: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / rate;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s0 = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power.sqrt() / x.len() as f64
    }

    fn db(ratio: f64) -> f64 {
        20.0 * ratio.log10()
    }

    #[test]
    fn prototype_is_half_band() {
        let h = prototype();
        let sum: f64 = h.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert!((h[HALF] - 0.5).abs() < 1e-3);
        for k in (0..TAPS).filter(|k| *k != HALF && (*k as isize - HALF as isize) % 2 == 0) {
            assert!(h[k].abs() < 1e-7, "tap {k} should be zero, is {}", h[k]);
        }
        assert!(h[0].abs() > 1e-6, "outer taps are non-zero");
        for k in 0..TAPS {
            assert!((h[k] - h[TAPS - 1 - k]).abs() < 1e-7, "symmetric");
        }
    }

    #[test]
    fn taps_are_q14_exact_and_pass_dc_exactly() {
        let up = Upsampler2x::new();
        let down = Downsampler2x::new();
        let q14 = |t: f32| {
            let q = t * ONE as f32;
            assert_eq!(q, q.round(), "{t} is not a Q14 value");
            q as i32
        };
        assert_eq!(up.taps.iter().map(|&c| q14(c)).sum::<i32>(), ONE);
        for i in 0..BRANCH {
            assert_eq!(up.taps[i], up.taps[BRANCH - 1 - i], "symmetric");
            assert_eq!(down.taps[i], down.taps[BRANCH - 1 - i], "symmetric");
        }
        assert_eq!(
            down.taps.iter().map(|&c| q14(c)).sum::<i32>() + q14(down.centre),
            ONE
        );
        // The worst input: full scale with every tap's sign, at every alignment: the
        // overshoot clamps.
        let worst: Vec<i16> = (0..4)
            .flat_map(|_| {
                up.taps
                    .iter()
                    .rev()
                    .map(|&c| if c < 0.0 { i16::MIN } else { i16::MAX })
            })
            .collect();
        let mut out = Vec::new();
        Upsampler2x::new().process(&worst, &mut out);
        assert!(out.contains(&i16::MAX) && out.contains(&i16::MIN));
        let worst16: Vec<i16> = (0..4)
            .flat_map(|_| {
                down.taps
                    .iter()
                    .rev()
                    .flat_map(|&c| [i16::MAX, if c < 0.0 { i16::MIN } else { i16::MAX }])
            })
            .collect();
        Downsampler2x::new().process(&worst16, &mut out);
        let mut out = Vec::new();
        Upsampler2x::new().process(&[-1234; 200], &mut out);
        assert!(
            out[100..].iter().all(|&s| s == -1234),
            "DC passes unchanged"
        );
        let mut out = Vec::new();
        Downsampler2x::new().process(&[4321; 400], &mut out);
        assert!(out[50..].iter().all(|&s| s == 4321), "DC passes unchanged");
    }

    /// The float reference: the prototype applied to the zero-stuffed input (up) or to the
    /// input before keeping every second sample (down), in f64.
    fn reference_up(x: &[i16]) -> Vec<f64> {
        let h = prototype();
        let u: Vec<f64> = x.iter().flat_map(|&v| [f64::from(v), 0.0]).collect();
        (0..u.len())
            .map(|m| {
                (0..TAPS)
                    .filter(|&j| j <= m)
                    .map(|j| 2.0 * h[j] * u[m - j])
                    .sum()
            })
            .collect()
    }

    fn reference_down(x: &[i16]) -> Vec<f64> {
        let h = prototype();
        (0..x.len() / 2)
            .map(|j| {
                let n = 2 * j + 1;
                (0..TAPS)
                    .filter(|&k| k <= n)
                    .map(|k| h[k] * f64::from(x[n - k]))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn fixed_point_matches_the_float_filter_within_four_lsb() {
        // Speech-like content at a high level: a chord plus a deterministic noise.
        let mut seed = 12_345u32;
        let x8: Vec<i16> = (0..2000)
            .map(|n| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let noise = f64::from((seed >> 16) as i16 >> 4);
                let t = f64::from(n) / 8000.0;
                let v = 9000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                    + 7000.0 * (2.0 * std::f64::consts::PI * 2900.0 * t).sin()
                    + noise;
                v as i16
            })
            .collect();
        let mut up = Vec::new();
        let mut u = Upsampler2x::new();
        for chunk in x8.chunks(160) {
            u.process(chunk, &mut up);
        }
        let worst = |got: &[i16], want: Vec<f64>| {
            got.iter()
                .zip(want)
                .map(|(&g, w)| (f64::from(g) - w).abs())
                .fold(0.0f64, f64::max)
        };
        let e = worst(&up, reference_up(&x8));
        assert!(e <= 4.0, "up: {e} LSB off");
        let x16: Vec<i16> = up.clone();
        let mut down = Vec::new();
        let mut d = Downsampler2x::new();
        for chunk in x16.chunks(333) {
            d.process(chunk, &mut down);
        }
        let e = worst(&down, reference_down(&x16));
        assert!(e <= 4.0, "down: {e} LSB off");
    }

    #[test]
    fn push_and_process_agree() {
        let input = sine(700.0, 8000.0, 15000.0, 500);
        let mut a = Upsampler2x::new();
        let pushed: Vec<i16> = input.iter().flat_map(|&x| a.push(x)).collect();
        let mut whole = Vec::new();
        Upsampler2x::new().process(&input, &mut whole);
        assert_eq!(pushed, whole);
        let mut d = Downsampler2x::new();
        let pushed: Vec<i16> = whole.iter().filter_map(|&x| d.push(x)).collect();
        let mut down = Vec::new();
        Downsampler2x::new().process(&whole, &mut down);
        assert_eq!(pushed, down);
    }

    /// Energy of the output relative to the input's (both at their own rate): 1 when every
    /// sample of audio came out.
    fn energy_ratio(x8: &[i16], y16: &[i16]) -> f64 {
        let e = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        e(y16) / (2.0 * e(x8))
    }

    #[test]
    fn the_tail_holds_the_last_delay_of_audio() {
        // One second of a 1 kHz tone in 20 ms packets: without the tail the output lacks
        // UP_DELAY samples (1.94 ms); with it, all of the audio is there.
        let x8 = sine(1000.0, 8000.0, 12000.0, 8000);
        let mut u = Upsampler2x::new();
        let mut y = Vec::new();
        for packet in x8.chunks(160) {
            u.process(packet, &mut y);
        }
        assert_eq!(y.len(), 16_000);
        let without = energy_ratio(&x8, &y);
        assert!(
            without < 1.0 - 0.8 * UP_DELAY as f64 / 16_000.0,
            "{without}"
        );
        assert_eq!(u.tail(&mut y), UP_DELAY);
        assert_eq!(y.len(), 16_000 + UP_DELAY);
        let with = energy_ratio(&x8, &y);
        assert!((with - 1.0).abs() < 2e-4, "{with}");
        // The tail does not disturb the stream: it goes on as if nothing happened.
        let mut v = Upsampler2x::new();
        let mut z = Vec::new();
        v.process(&x8, &mut z);
        v.process(&x8[..160], &mut z);
        let mut w = Vec::new();
        u.process(&x8[..160], &mut w);
        assert_eq!(&z[16_000..], &w[..]);
    }

    #[test]
    fn flush_then_a_fresh_filter_equals_the_unbroken_output() {
        let x8 = sine(1000.0, 8000.0, 12000.0, 1600);
        let mut unbroken = Vec::new();
        Upsampler2x::new().process(&x8, &mut unbroken);
        let (a, b) = x8.split_at(800);
        let mut u = Upsampler2x::new();
        let mut split = Vec::new();
        u.process(a, &mut split);
        // The flush starts with what `tail` gives, then the ringing.
        let mut tail = Vec::new();
        u.tail(&mut tail);
        assert_eq!(u.flush(&mut split), UP_RING_OUT);
        assert_eq!(&split[1600..1600 + UP_DELAY], &tail[..]);
        let ringing = &split[1600 + UP_DELAY..];
        assert!(
            ringing.iter().map(|&s| i32::from(s).abs()).max() > Some(500),
            "the ringing after the delayed audio is not negligible"
        );
        // Flushed: the same filter now starts from silence; its output adds to the flush.
        let mut rest = Vec::new();
        u.process(b, &mut rest);
        let mut fresh = Vec::new();
        Upsampler2x::new().process(b, &mut fresh);
        assert_eq!(rest, fresh);
        for (k, (&r, &s)) in rest.iter().zip(&unbroken[1600..]).enumerate() {
            let sum = i32::from(r) + split.get(1600 + k).map_or(0, |&t| i32::from(t));
            assert!((sum - i32::from(s)).abs() <= 1, "sample {k}: {sum} vs {s}");
        }
        // Nothing is left after the ring-out: more silence gives silence.
        let mut after = Vec::new();
        let mut v = Upsampler2x::new();
        v.process(a, &mut after);
        v.process(&[0; 100], &mut after);
        assert!(after[1600 + UP_RING_OUT..].iter().all(|&s| s == 0));
    }

    #[test]
    fn downsampler_passes_1k_and_rejects_7k() {
        // Measured after the filter settles; frames of 320 samples like the media path.
        let input = sine(1000.0, 16000.0, 10000.0, 16000);
        let mut d = Downsampler2x::new();
        let mut out = Vec::new();
        for chunk in input.chunks(320) {
            d.process(chunk, &mut out);
        }
        assert_eq!(out.len(), 8000);
        let level = tone_amplitude(&out[800..], 1000.0, 8000.0);
        assert!(db(level / 10000.0).abs() < 0.5, "1 kHz level {level}");

        let input = sine(7000.0, 16000.0, 10000.0, 16000);
        let mut d = Downsampler2x::new();
        let mut out = Vec::new();
        d.process(&input, &mut out);
        // 7 kHz aliases to 1 kHz at 8 kHz: measure everything that is left.
        let alias = rms(&out[800..]) * std::f64::consts::SQRT_2;
        assert!(db(alias / 10000.0) < -40.0, "7 kHz leaks at {alias}");
    }

    #[test]
    fn upsampler_passes_1k_and_rejects_image() {
        let input = sine(1000.0, 8000.0, 10000.0, 8000);
        let mut u = Upsampler2x::new();
        let mut out = Vec::new();
        for chunk in input.chunks(160) {
            u.process(chunk, &mut out);
        }
        assert_eq!(out.len(), 16000);
        let level = tone_amplitude(&out[1600..], 1000.0, 16000.0);
        assert!(db(level / 10000.0).abs() < 0.5, "1 kHz level {level}");
        let image = tone_amplitude(&out[1600..], 7000.0, 16000.0);
        assert!(db(image / 10000.0) < -40.0, "7 kHz image at {image}");
    }

    #[test]
    fn passband_is_flat_to_3400() {
        for freq in [300.0, 1000.0, 2000.0, 3000.0, 3400.0] {
            let input = sine(freq, 8000.0, 8000.0, 8000);
            let mut u = Upsampler2x::new();
            let mut up = Vec::new();
            u.process(&input, &mut up);
            let mut d = Downsampler2x::new();
            let mut back = Vec::new();
            d.process(&up, &mut back);
            let level = tone_amplitude(&back[800..], freq, 8000.0);
            assert!(
                db(level / 8000.0).abs() < 0.5,
                "{freq} Hz round trip at {level}"
            );
        }
    }

    #[test]
    fn chunking_does_not_matter() {
        let input = sine(440.0, 16000.0, 12000.0, 1001);
        let mut whole = Vec::new();
        Downsampler2x::new().process(&input, &mut whole);
        let mut d = Downsampler2x::new();
        let mut pieces = Vec::new();
        for chunk in input.chunks(7) {
            d.process(chunk, &mut pieces);
        }
        assert_eq!(whole, pieces);
        assert_eq!(whole.len(), 500);
    }

    #[test]
    fn full_scale_dc_saturates_instead_of_wrapping() {
        // A step to full scale rings (Gibbs): the overshoot must clamp at full scale and the
        // pre-ringing stay small, never wrap to the other extreme.
        let input = [i16::MAX; 400];
        let mut up = Vec::new();
        Upsampler2x::new().process(&input, &mut up);
        assert!(up.iter().all(|&s| s > -8000), "no wrap-around");
        assert!(
            up[200..].iter().all(|&s| s >= i16::MAX - 2),
            "settles at full scale"
        );
        let input = [i16::MIN; 400];
        let mut down = Vec::new();
        Downsampler2x::new().process(&input, &mut down);
        assert!(down.iter().all(|&s| s < 8000), "no wrap-around");
        assert!(down.contains(&i16::MIN), "overshoot clamps at full scale");
        assert!(down[100..].iter().all(|&s| s <= i16::MIN + 2));
    }
}
