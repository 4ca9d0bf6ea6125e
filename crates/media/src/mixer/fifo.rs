//! One speaker's bounded sample FIFO: a ring of `i16` allocated once, when the participant
//! joins. Pushing more than fits drops the oldest samples, in whole frames, so a fast clock
//! or a burst costs one 20 ms discontinuity at a time rather than a click every tick.

use super::FRAME_SAMPLES;

/// A fixed-capacity ring of samples.
#[derive(Debug, Clone)]
pub(super) struct SampleFifo {
    buf: Box<[i16]>,
    /// Index of the oldest sample.
    head: usize,
    /// Samples held.
    len: usize,
}

impl SampleFifo {
    /// An empty FIFO holding at most `capacity` samples (at least one frame).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(FRAME_SAMPLES)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Samples held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Most samples it can hold.
    pub(super) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Appends `samples`. When they do not fit, the oldest samples (already held, then the
    /// start of `samples`) are dropped, rounded up to whole frames. Returns how many samples
    /// were dropped.
    pub(super) fn push(&mut self, mut samples: &[i16]) -> usize {
        let cap = self.capacity();
        let needed = self.len + samples.len();
        let mut dropped = 0;
        if needed > cap {
            dropped = (needed - cap)
                .div_ceil(FRAME_SAMPLES)
                .saturating_mul(FRAME_SAMPLES)
                .min(needed);
            let from_held = dropped.min(self.len);
            self.discard(from_held);
            samples = &samples[dropped - from_held..];
        }
        debug_assert!(self.len + samples.len() <= cap);
        let tail = (self.head + self.len) % cap;
        let first = samples.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&samples[..first]);
        let rest = samples.len() - first;
        self.buf[..rest].copy_from_slice(&samples[first..]);
        self.len += samples.len();
        dropped
    }

    /// Moves up to `out.len()` of the oldest samples into the start of `out`; returns how
    /// many (the rest of `out` is left untouched).
    pub(super) fn pop_into(&mut self, out: &mut [i16]) -> usize {
        let cap = self.capacity();
        let n = out.len().min(self.len);
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        self.discard(n);
        n
    }

    /// Forgets the `n` oldest samples (`n <= len`).
    fn discard(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.capacity()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(from: i16, n: usize) -> Vec<i16> {
        (0..n).map(|i| from.wrapping_add(i as i16)).collect()
    }

    #[test]
    fn fifo_order_across_wrap() {
        let mut f = SampleFifo::new(2 * FRAME_SAMPLES);
        let mut expected = std::collections::VecDeque::new();
        let mut next = 0i16;
        let mut out = vec![0i16; 300];
        for step in 0..200 {
            let n = (step * 37) % 250;
            let chunk = ramp(next, n);
            next = next.wrapping_add(n as i16);
            if f.len() + n <= f.capacity() {
                assert_eq!(f.push(&chunk), 0);
                expected.extend(chunk);
            }
            let take = (step * 53) % 300;
            let got = f.pop_into(&mut out[..take]);
            let want: Vec<i16> = expected.drain(..got).collect();
            assert_eq!(&out[..got], &want[..]);
            assert_eq!(got, take.min(got + expected.len()));
            assert_eq!(f.len(), expected.len());
        }
    }

    #[test]
    fn overflow_drops_oldest_whole_frames() {
        let mut f = SampleFifo::new(3 * FRAME_SAMPLES);
        assert_eq!(f.push(&ramp(0, 3 * FRAME_SAMPLES)), 0);
        // One sample too many costs one whole frame of the oldest audio.
        assert_eq!(f.push(&[7]), FRAME_SAMPLES);
        assert_eq!(f.len(), 2 * FRAME_SAMPLES + 1);
        let mut out = vec![0i16; 2 * FRAME_SAMPLES + 1];
        assert_eq!(f.pop_into(&mut out), 2 * FRAME_SAMPLES + 1);
        assert_eq!(out[0], FRAME_SAMPLES as i16);
        assert_eq!(out[2 * FRAME_SAMPLES], 7);
    }

    #[test]
    fn oversized_push_keeps_the_newest() {
        let mut f = SampleFifo::new(2 * FRAME_SAMPLES);
        f.push(&ramp(-5, 10));
        let big = ramp(0, 5 * FRAME_SAMPLES + 10);
        let dropped = f.push(&big);
        assert_eq!(dropped + f.len(), 10 + big.len());
        assert!(f.len() <= f.capacity());
        let mut out = vec![0i16; f.len()];
        let n = f.pop_into(&mut out);
        assert_eq!(&out[..n], &big[big.len() - n..]);
    }
}
