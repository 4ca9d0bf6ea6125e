//! Audio measurements for `callmux inspect` and for every test that checks audio: per channel
//! level, peak, voiced and silent time, dominant frequency, and 100 ms windows saying which
//! tone is where. Streaming: memory does not grow with the length of the audio except for the
//! window list.

mod decode;

use std::path::Path;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

pub use decode::analyze_file;

/// Level (dBFS) at or above which a 20 ms window counts as voiced.
pub const VOICED_DBFS: f64 = -50.0;
/// Level reported for digital silence (instead of −∞, which JSON cannot carry).
pub const FLOOR_DBFS: f64 = -120.0;
/// Lowest frequency considered for the dominant frequency (skips DC and rumble).
const MIN_HZ: f64 = 40.0;

/// Why a file could not be analysed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not a WAV, MP3 or Ogg Opus file.
    #[error("{0}: unsupported format (WAV, MP3 and Ogg Opus are supported)")]
    Unsupported(String),
    /// The file is damaged or not what its header says.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One 100 ms window of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowAnalysis {
    /// Start of the window from the start of the audio.
    pub start_ms: u64,
    /// RMS level.
    pub rms_dbfs: f64,
    /// Strongest frequency, if the window is voiced.
    pub dominant_hz: Option<f64>,
}

/// Measurements of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelAnalysis {
    /// 1-based channel number.
    pub channel: u16,
    /// RMS level over the whole channel.
    pub rms_dbfs: f64,
    /// Largest absolute sample.
    pub peak: u16,
    /// Peak level.
    pub peak_dbfs: f64,
    /// Milliseconds in 20 ms windows at or above [`VOICED_DBFS`].
    pub voiced_ms: u64,
    /// Milliseconds in 20 ms windows below it.
    pub silent_ms: u64,
    /// Strongest frequency over all voiced windows (None if none is voiced).
    pub dominant_hz: Option<f64>,
    /// 100 ms windows in order.
    pub windows: Vec<WindowAnalysis>,
}

/// Measurements of interleaved audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioAnalysis {
    /// Sample rate the audio was analysed at.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// Frames (samples per channel).
    pub frames: u64,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// One entry per channel.
    pub per_channel: Vec<ChannelAnalysis>,
}

/// Measurements of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileAnalysis {
    /// The file analysed.
    pub path: String,
    /// `wav`, `mp3` or `ogg`.
    pub format: String,
    /// The audio.
    #[serde(flatten)]
    pub audio: AudioAnalysis,
}

/// Measures interleaved samples (`channels` ≥ 1, `rate` ≥ 50 Hz).
pub fn analyze_samples(interleaved: &[i16], channels: u16, rate: u32) -> AudioAnalysis {
    let mut a = Analyzer::new(channels, rate);
    a.push(interleaved);
    a.finish()
}

fn dbfs(mean_square: f64) -> f64 {
    if mean_square <= 0.0 {
        return FLOOR_DBFS;
    }
    (10.0 * (mean_square / (32768.0 * 32768.0)).log10()).max(FLOOR_DBFS)
}

struct ChannelState {
    sum_sq: f64,
    peak: u16,
    sub_sum: f64,
    sub_n: usize,
    voiced_samples: u64,
    silent_samples: u64,
    win: Vec<f32>,
    win_start: u64,
    spectrum: Vec<f64>,
    voiced_windows: u64,
    windows: Vec<WindowAnalysis>,
}

/// Streaming analyser: push interleaved samples in any chunks, then `finish`.
pub struct Analyzer {
    channels: usize,
    rate: u32,
    frames: u64,
    sub_len: usize,
    win_len: usize,
    fft: Arc<dyn Fft<f32>>,
    hann: Vec<f32>,
    buf: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f64>,
    state: Vec<ChannelState>,
    /// The start of a frame whose other samples come in the next `push`.
    partial: Vec<i16>,
}

impl Analyzer {
    /// An analyser for `channels` channels at `rate` Hz (both clamped to at least 1 / 50).
    pub fn new(channels: u16, rate: u32) -> Self {
        let channels = usize::from(channels.max(1));
        let rate = rate.max(50);
        let win_len = (rate / 10) as usize;
        let fft_len = (win_len * 2).next_power_of_two();
        let fft = FftPlanner::new().plan_fft_forward(fft_len);
        let hann = (0..win_len)
            .map(|i| {
                let x = std::f32::consts::PI * 2.0 * i as f32 / win_len as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        let state = (0..channels)
            .map(|_| ChannelState {
                sum_sq: 0.0,
                peak: 0,
                sub_sum: 0.0,
                sub_n: 0,
                voiced_samples: 0,
                silent_samples: 0,
                win: Vec::with_capacity(win_len),
                win_start: 0,
                spectrum: vec![0.0; fft_len / 2 + 1],
                voiced_windows: 0,
                windows: Vec::new(),
            })
            .collect();
        Self {
            channels,
            rate,
            frames: 0,
            sub_len: (rate / 50) as usize,
            win_len,
            fft,
            hann,
            buf: vec![Complex::default(); fft_len],
            scratch,
            power: Vec::with_capacity(fft_len / 2 + 1),
            state,
            partial: Vec::with_capacity(channels),
        }
    }

    /// Adds interleaved samples (a trailing partial frame is ignored).
    pub fn push(&mut self, interleaved: &[i16]) {
        let mut rest = interleaved;
        // Complete a frame split across calls (callers push fixed-size chunks that need not
        // be a multiple of the channel count).
        if !self.partial.is_empty() {
            let need = self.channels - self.partial.len();
            let take = need.min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() < self.channels {
                return;
            }
            let frame = std::mem::take(&mut self.partial);
            self.push_frame(&frame);
            self.partial = frame;
            self.partial.clear();
        }
        let whole = rest.len() / self.channels * self.channels;
        for frame in rest[..whole].chunks_exact(self.channels) {
            self.push_frame(frame);
        }
        self.partial.extend_from_slice(&rest[whole..]);
    }

    fn push_frame(&mut self, frame: &[i16]) {
        for (ch, &s) in frame.iter().enumerate() {
            let v = f64::from(s);
            let st = &mut self.state[ch];
            st.sum_sq += v * v;
            st.peak = st.peak.max(s.unsigned_abs());
            st.sub_sum += v * v;
            st.sub_n += 1;
            if st.sub_n == self.sub_len {
                close_sub(st);
            }
            st.win.push(f32::from(s));
            if st.win.len() == self.win_len {
                self.close_window(ch);
            }
        }
        self.frames += 1;
    }

    fn ms(&self, samples: u64) -> u64 {
        samples * 1000 / u64::from(self.rate)
    }

    fn close_window(&mut self, ch: usize) {
        let rate = f64::from(self.rate);
        let st = &mut self.state[ch];
        let n = st.win.len();
        if n == 0 {
            return;
        }
        let ms: f64 = st
            .win
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / n as f64;
        let rms_dbfs = dbfs(ms);
        let mut dominant_hz = None;
        if rms_dbfs >= VOICED_DBFS {
            for (i, c) in self.buf.iter_mut().enumerate() {
                let x = if i < n {
                    st.win[i] * self.hann[i * self.win_len / n.max(1)]
                } else {
                    0.0
                };
                *c = Complex::new(x, 0.0);
            }
            self.fft
                .process_with_scratch(&mut self.buf, &mut self.scratch);
            let half = &self.buf[..st.spectrum.len()];
            self.power.clear();
            self.power
                .extend(half.iter().map(|c| f64::from(c.norm_sqr())));
            for (acc, p) in st.spectrum.iter_mut().zip(&self.power) {
                *acc += p;
            }
            dominant_hz = peak_hz(&self.power, rate, self.buf.len());
            st.voiced_windows += 1;
        }
        let start_ms = st.win_start * 1000 / u64::from(self.rate);
        st.windows.push(WindowAnalysis {
            start_ms,
            rms_dbfs,
            dominant_hz,
        });
        st.win_start += n as u64;
        st.win.clear();
    }

    /// Ends the analysis.
    pub fn finish(mut self) -> AudioAnalysis {
        for ch in 0..self.channels {
            if self.state[ch].sub_n > 0 {
                close_sub(&mut self.state[ch]);
            }
            if !self.state[ch].win.is_empty() {
                self.close_window(ch);
            }
        }
        let rate = f64::from(self.rate);
        let fft_len = self.buf.len();
        let frames = self.frames;
        let per_channel = (0..self.channels)
            .map(|ch| {
                let st = &self.state[ch];
                let mean_sq = if frames == 0 {
                    0.0
                } else {
                    st.sum_sq / frames as f64
                };
                let peak_dbfs = if st.peak == 0 {
                    FLOOR_DBFS
                } else {
                    (20.0 * (f64::from(st.peak) / 32768.0).log10()).max(FLOOR_DBFS)
                };
                ChannelAnalysis {
                    channel: (ch + 1) as u16,
                    rms_dbfs: dbfs(mean_sq),
                    peak: st.peak,
                    peak_dbfs,
                    voiced_ms: self.ms(st.voiced_samples),
                    silent_ms: self.ms(st.silent_samples),
                    dominant_hz: if st.voiced_windows > 0 {
                        peak_hz(&st.spectrum, rate, fft_len)
                    } else {
                        None
                    },
                    windows: st.windows.clone(),
                }
            })
            .collect();
        AudioAnalysis {
            sample_rate: self.rate,
            channels: self.channels as u16,
            frames,
            duration_ms: self.ms(frames),
            per_channel,
        }
    }
}

fn close_sub(st: &mut ChannelState) {
    let n = st.sub_n as u64;
    if dbfs(st.sub_sum / n as f64) >= VOICED_DBFS {
        st.voiced_samples += n;
    } else {
        st.silent_samples += n;
    }
    st.sub_sum = 0.0;
    st.sub_n = 0;
}

/// Frequency of the strongest bin of a power spectrum, refined by parabolic interpolation
/// of the log power around it.
fn peak_hz(power: &[f64], rate: f64, fft_len: usize) -> Option<f64> {
    let bin_hz = rate / fft_len as f64;
    let first = ((MIN_HZ / bin_hz).ceil() as usize).max(1);
    if power.len() < first + 2 {
        return None;
    }
    let (k, &p) = power
        .iter()
        .enumerate()
        .skip(first)
        .take(power.len() - first - 1)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    if p <= 0.0 {
        return None;
    }
    let l = power[k - 1].max(1e-30).ln();
    let c = p.ln();
    let r = power[k + 1].max(1e-30).ln();
    let denom = l - 2.0 * c + r;
    let delta = if denom.abs() > 1e-12 {
        (0.5 * (l - r) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    Some((k as f64 + delta) * bin_hz)
}

/// Analyses a file by path (see [`analyze_file`]); convenience for `&str` callers.
pub fn analyze_path(path: &str) -> Result<FileAnalysis, AnalysisError> {
    analyze_file(Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, amp: f64, n: usize, rate: u32) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn tone_in_one_channel_silence_in_the_other() {
        let t = tone(440.0, 10_000.0, 32_000, 16_000);
        let inter: Vec<i16> = t.iter().flat_map(|&s| [s, 0]).collect();
        let a = analyze_samples(&inter, 2, 16_000);
        assert_eq!(a.duration_ms, 2000);
        let c1 = &a.per_channel[0];
        let hz = c1.dominant_hz.unwrap();
        assert!((hz - 440.0).abs() < 5.0, "{hz}");
        assert_eq!(c1.voiced_ms, 2000);
        assert!((c1.rms_dbfs - (-13.3)).abs() < 0.5, "{}", c1.rms_dbfs);
        let c2 = &a.per_channel[1];
        assert_eq!(
            (c2.voiced_ms, c2.silent_ms, c2.dominant_hz),
            (0, 2000, None)
        );
        assert_eq!(c2.rms_dbfs, FLOOR_DBFS);
        assert_eq!(c1.windows.len(), 20);
        assert!(c1
            .windows
            .iter()
            .all(|w| (w.dominant_hz.unwrap() - 440.0).abs() < 5.0));
    }

    #[test]
    fn frequency_accuracy_across_the_band() {
        for hz in [300.0, 1000.0, 1234.5, 3400.0, 7000.0] {
            let a = analyze_samples(&tone(hz, 8000.0, 16_000, 16_000), 1, 16_000);
            let got = a.per_channel[0].dominant_hz.unwrap();
            assert!((got - hz).abs() < 5.0, "{hz} → {got}");
        }
    }

    #[test]
    fn empty_and_odd_inputs_do_not_panic() {
        let a = analyze_samples(&[], 3, 16_000);
        assert_eq!(a.frames, 0);
        assert_eq!(a.per_channel.len(), 3);
        let a = analyze_samples(&[1, 2, 3], 2, 8_000);
        assert_eq!(a.frames, 1);
        let a = analyze_samples(&[5; 10], 0, 0);
        assert_eq!(a.channels, 1);
    }
}

#[cfg(test)]
mod push_tests {
    use super::*;

    /// Chunks that split frames (8192 samples of 3-channel audio) keep channels apart.
    #[test]
    fn pushes_that_split_frames_keep_channels_aligned() {
        let frames = 16_000;
        let mut inter = Vec::with_capacity(frames * 3);
        for i in 0..frames {
            let t = i as f64 / 16_000.0;
            inter.push(((2.0 * std::f64::consts::PI * 440.0 * t).sin() * 8000.0) as i16);
            inter.push(((2.0 * std::f64::consts::PI * 1000.0 * t).sin() * 8000.0) as i16);
            inter.push(0);
        }
        let mut a = Analyzer::new(3, 16_000);
        for chunk in inter.chunks(8192) {
            a.push(chunk);
        }
        let r = a.finish();
        assert_eq!(r.frames, frames as u64);
        let f0 = r.per_channel[0].dominant_hz.unwrap();
        let f1 = r.per_channel[1].dominant_hz.unwrap();
        assert!((f0 - 440.0).abs() < 5.0, "{f0}");
        assert!((f1 - 1000.0).abs() < 5.0, "{f1}");
        assert_eq!(r.per_channel[2].voiced_ms, 0);
        for w in &r.per_channel[0].windows {
            assert!((w.dominant_hz.unwrap() - 440.0).abs() < 10.0, "{w:?}");
        }
    }
}
