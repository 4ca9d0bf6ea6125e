//! Sine tone generation for `callmux call --tone` and for beeps (e.g. before a recording).

/// Default beep: 1 kHz for 250 ms at -10 dBFS.
pub const BEEP_HZ: f32 = 1000.0;
/// Beep length in milliseconds.
pub const BEEP_MS: u32 = 250;
/// Beep level in dBFS.
pub const BEEP_DBFS: f32 = -10.0;

/// A phase-continuous sine generator: consecutive [`fill`](Self::fill) calls join without a
/// click, whatever the buffer sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneGenerator {
    /// Phase in cycles, 0..1 (kept in f64 so hours of tone do not drift).
    phase: f64,
    /// Cycles per sample.
    step: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// A tone of `freq_hz` at `level_dbfs` (peak level relative to full scale, so 0 dBFS is
    /// a full-scale sine) sampled at `sample_rate`. Frequencies at or above Nyquist, and a
    /// zero sample rate, produce silence.
    pub fn new(freq_hz: f32, level_dbfs: f32, sample_rate: u32) -> Self {
        let rate = f64::from(sample_rate);
        let freq = f64::from(freq_hz);
        let valid = sample_rate > 0 && freq.is_finite() && freq >= 0.0 && freq < rate / 2.0;
        let level = f64::from(level_dbfs);
        let amplitude = if valid && level.is_finite() {
            (f64::from(i16::MAX) * 10f64.powf(level.min(0.0) / 20.0)).min(f64::from(i16::MAX))
        } else {
            0.0
        };
        Self {
            phase: 0.0,
            step: if valid { freq / rate } else { 0.0 },
            amplitude,
        }
    }

    /// Overwrites `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out.iter_mut() {
            let v = self.amplitude * (std::f64::consts::TAU * self.phase).sin();
            *s = v.round() as i16;
            self.phase += self.step;
            if self.phase >= 1.0 {
                self.phase -= 1.0;
            }
        }
    }
}

/// A beep cut into frames: [`BEEP_MS`] of [`BEEP_HZ`] at [`BEEP_DBFS`], with 5 ms raised
/// cosine ramps so it does not click, then silence to the end of the last frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Beep {
    tone: ToneGenerator,
    position: usize,
    length: usize,
    ramp: usize,
}

impl Beep {
    /// A beep at `sample_rate` (16000 on the internal path).
    pub fn new(sample_rate: u32) -> Self {
        let per_ms = sample_rate as usize / 1000;
        Self {
            tone: ToneGenerator::new(BEEP_HZ, BEEP_DBFS, sample_rate),
            position: 0,
            length: per_ms * BEEP_MS as usize,
            ramp: per_ms * 5,
        }
    }

    /// Fills the next frame (any length, normally 20 ms); returns `false` once the beep has
    /// finished (the frame is then silence).
    pub fn next_frame(&mut self, frame: &mut [i16]) -> bool {
        if self.position >= self.length {
            frame.fill(0);
            return false;
        }
        self.tone.fill(frame);
        for s in frame.iter_mut() {
            let pos = self.position;
            let gain = if pos >= self.length {
                0.0
            } else if pos < self.ramp {
                ramp_gain(pos, self.ramp)
            } else if self.length - pos <= self.ramp {
                ramp_gain(self.length - pos, self.ramp)
            } else {
                1.0
            };
            *s = (f64::from(*s) * gain).round() as i16;
            self.position += 1;
        }
        true
    }
}

fn ramp_gain(pos: usize, ramp: usize) -> f64 {
    let x = pos as f64 / ramp.max(1) as f64;
    0.5 - 0.5 * (std::f64::consts::PI * x).cos()
}

/// The whole beep at 16 kHz in 20 ms frames (13 frames, the last one partly silent).
pub fn beep() -> Vec<[i16; 320]> {
    let mut beep = Beep::new(16000);
    let mut frames = Vec::new();
    let mut frame = [0i16; 320];
    while beep.next_frame(&mut frame) {
        frames.push(frame);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::tests::{rms, tone_amplitude};

    #[test]
    fn level_and_frequency() {
        let mut t = ToneGenerator::new(1000.0, -6.0, 16000);
        let mut buf = vec![0i16; 16000];
        t.fill(&mut buf);
        let expected = 32767.0 * 10f64.powf(-6.0 / 20.0);
        let peak = buf
            .iter()
            .map(|s| f64::from(s.unsigned_abs()))
            .fold(0.0, f64::max);
        assert!((peak - expected).abs() < 2.0, "peak {peak}");
        let amp = tone_amplitude(&buf, 1000.0, 16000.0);
        assert!((amp - expected).abs() / expected < 0.01, "amplitude {amp}");
        assert!((rms(&buf) - expected / std::f64::consts::SQRT_2).abs() < 20.0);
    }

    #[test]
    fn phase_continuous_across_odd_buffer_sizes() {
        let mut whole = vec![0i16; 1000];
        ToneGenerator::new(440.0, -3.0, 8000).fill(&mut whole);
        let mut t = ToneGenerator::new(440.0, -3.0, 8000);
        let mut pieces = Vec::new();
        for len in [1, 7, 160, 3, 333, 496] {
            let mut buf = vec![0i16; len];
            t.fill(&mut buf);
            pieces.extend(buf);
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn invalid_parameters_give_silence() {
        for t in [
            ToneGenerator::new(9000.0, 0.0, 16000),
            ToneGenerator::new(f32::NAN, 0.0, 16000),
            ToneGenerator::new(1000.0, 0.0, 0),
            ToneGenerator::new(-5.0, 0.0, 16000),
        ] {
            let mut t = t;
            let mut buf = [1i16; 64];
            t.fill(&mut buf);
            assert!(buf.iter().all(|&s| s == 0));
        }
        // Levels above 0 dBFS are clamped to full scale.
        let mut t = ToneGenerator::new(1000.0, 20.0, 16000);
        let mut buf = [0i16; 160];
        t.fill(&mut buf);
        assert!(buf.iter().any(|&s| s > 32000));
    }

    #[test]
    fn beep_shape() {
        let frames = beep();
        assert_eq!(frames.len(), 13);
        let samples: Vec<i16> = frames.iter().flatten().copied().collect();
        assert_eq!(samples[0], 0, "starts from silence");
        assert!(
            samples[4000..].iter().all(|&s| s == 0),
            "silent after 250 ms"
        );
        let body = &samples[400..3600];
        let amp = tone_amplitude(body, 1000.0, 16000.0);
        let expected = 32767.0 * 10f64.powf(-10.0 / 20.0);
        assert!((amp - expected).abs() / expected < 0.02, "{amp}");
        // Ramps: the first 5 ms never exceed the steady-state level, and grow.
        let early = rms(&samples[..16]);
        let late = rms(&samples[64..80]);
        assert!(early < late);
    }
}
