//! Silence detection for NCCO `endOnSilence`: reports once the fed audio has stayed below a
//! level for long enough; any louder frame (a blip) starts the wait over.

use std::time::{Duration, Instant};

use crate::layout::SAMPLE_RATE;

/// Watches 16 kHz mono audio for a stretch of silence.
#[derive(Debug, Clone)]
pub struct SilenceDetector {
    /// Mean square (of i16 samples) at or below which a frame is silent.
    threshold_ms: f64,
    min_silence: Duration,
    silent_since: Option<Instant>,
    reported: bool,
}

impl SilenceDetector {
    /// Silence = frames whose RMS is at or below `threshold_dbfs` (e.g. −45.0); reports after
    /// `min_silence` of it (NCCO endOnSilence: 3–10 s).
    pub fn new(threshold_dbfs: f32, min_silence: Duration) -> Self {
        let amp = 32768.0 * 10f64.powf(f64::from(threshold_dbfs) / 20.0);
        Self {
            threshold_ms: amp * amp,
            min_silence,
            silent_since: None,
            reported: false,
        }
    }

    /// Feeds a frame whose first sample was captured at `at`. Returns true exactly once per
    /// stretch of silence: on the frame that completes `min_silence`.
    pub fn feed(&mut self, at: Instant, frame: &[i16]) -> bool {
        if frame.is_empty() {
            return false;
        }
        let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let mean_square = sum / frame.len() as f64;
        if mean_square > self.threshold_ms {
            self.silent_since = None;
            self.reported = false;
            return false;
        }
        let since = *self.silent_since.get_or_insert(at);
        let frame_len =
            Duration::from_micros(frame.len() as u64 * 1_000_000 / u64::from(SAMPLE_RATE));
        let end = at + frame_len;
        if !self.reported && end.saturating_duration_since(since) >= self.min_silence {
            self.reported = true;
            return true;
        }
        false
    }

    /// How long the audio has been silent, as of the end of the last frame fed at `now`.
    pub fn silent_for(&self, now: Instant) -> Duration {
        self.silent_since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// Forgets the current stretch (e.g. when recording restarts).
    pub fn reset(&mut self) {
        self.silent_since = None;
        self.reported = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(det: &mut SilenceDetector, t0: Instant, frames: &[(u64, i16)]) -> Vec<u64> {
        let mut fired = Vec::new();
        for &(i, amp) in frames {
            let at = t0 + Duration::from_millis(i * 20);
            let f: Vec<i16> = (0..320)
                .map(|k| if k % 2 == 0 { amp } else { -amp })
                .collect();
            if det.feed(at, &f) {
                fired.push(i);
            }
        }
        fired
    }

    #[test]
    fn reports_once_after_min_silence() {
        let t0 = Instant::now();
        let mut d = SilenceDetector::new(-45.0, Duration::from_secs(3));
        let frames: Vec<(u64, i16)> = (0..300)
            .map(|i| (i, if i < 50 { 8000 } else { 20 }))
            .collect();
        // Silence starts at frame 50; 3 s = 150 frames → fires on frame 199 (ends at 4.0 s).
        assert_eq!(run(&mut d, t0, &frames), [199]);
        assert!(d.silent_for(t0 + Duration::from_secs(6)) >= Duration::from_secs(5));
    }

    #[test]
    fn a_blip_restarts_the_wait() {
        let t0 = Instant::now();
        let mut d = SilenceDetector::new(-45.0, Duration::from_secs(3));
        let frames: Vec<(u64, i16)> = (0..400)
            .map(|i| (i, if i == 200 { 9000 } else { 0 }))
            .collect();
        assert_eq!(run(&mut d, t0, &frames), [149, 350]);
    }
}
