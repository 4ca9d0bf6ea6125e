//! Prompts played to the caller: `talk` (text to speech by espeak-ng) and `stream` (a WAV
//! file fetched by URL and cached on disk). Both end up as 16 kHz mono samples that the
//! call task sends 20 ms at a time through its playout clock, in the caller's codec.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use callmux_ncco::{ActionId, Stream, Talk};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::media_leg::FRAME_16K;

/// The text-to-speech program.
pub(crate) const TTS_PROGRAM: &str = "espeak-ng";

/// Voice used when `talk` gives no `language`.
const DEFAULT_VOICE: &str = "en-us";

/// Longest a TTS run may take.
const TTS_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest stream file fetched.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// Whole-request time-out of a stream download.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether espeak-ng can be run (probed once).
pub(crate) fn tts_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::process::Command::new(TTS_PROGRAM)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A prompt being played: its samples, where it is, how many more passes.
pub(crate) struct Prompt {
    pub(crate) id: ActionId,
    pcm: Arc<Vec<i16>>,
    pos: usize,
    /// Passes left including the current one; `None` = until stopped (`loop: 0`).
    passes_left: Option<u32>,
}

impl Prompt {
    /// A prompt of `pcm` (already scaled), played `loop_count` times (0 = forever).
    pub(crate) fn new(id: ActionId, pcm: Arc<Vec<i16>>, loop_count: u32) -> Self {
        Self {
            id,
            pcm,
            pos: 0,
            passes_left: (loop_count > 0).then_some(loop_count),
        }
    }

    /// The next 20 ms frame, or `None` when every pass has been played.
    pub(crate) fn next_frame(&mut self) -> Option<[i16; FRAME_16K]> {
        if self.pcm.is_empty() {
            return None;
        }
        if self.pos >= self.pcm.len() {
            match &mut self.passes_left {
                Some(n) if *n <= 1 => return None,
                Some(n) => *n -= 1,
                None => {}
            }
            self.pos = 0;
        }
        let mut frame = [0i16; FRAME_16K];
        let end = (self.pos + FRAME_16K).min(self.pcm.len());
        if let (Some(dst), Some(src)) =
            (frame.get_mut(..end - self.pos), self.pcm.get(self.pos..end))
        {
            dst.copy_from_slice(src);
        }
        self.pos = end;
        Some(frame)
    }
}

/// `level` (-1..=1) as a gain: linear, 0 → unchanged, -1 → silent, +1 → doubled (+6 dB,
/// saturating).
pub(crate) fn apply_level(pcm: &mut [i16], level: f64) {
    let gain = (1.0 + level).clamp(0.0, 2.0);
    if (gain - 1.0).abs() < f64::EPSILON {
        return;
    }
    for s in pcm.iter_mut() {
        *s = (f64::from(*s) * gain).round().clamp(-32768.0, 32767.0) as i16;
    }
}

/// The espeak-ng voice for a `language` tag: `en-US` → `en-us`.
fn voice_for(language: Option<&str>) -> String {
    language.map_or_else(|| DEFAULT_VOICE.to_string(), str::to_ascii_lowercase)
}

/// Speaks `talk.text` with espeak-ng and returns 16 kHz samples with `level` applied.
pub(crate) async fn synthesize(talk: &Talk) -> Result<Vec<i16>, String> {
    if !tts_available() {
        return Err(format!(
            "talk needs the text-to-speech program {TTS_PROGRAM}, which is not installed"
        ));
    }
    let voice = voice_for(talk.language.as_deref());
    let ssml = talk.text.trim_start().starts_with("<speak");
    let wav = match run_espeak(&voice, &talk.text, ssml).await {
        Ok(w) => w,
        // A regional voice espeak-ng lacks (e.g. `de-AT`): fall back to the language.
        Err(e) => match voice.split_once('-') {
            Some((primary, _)) => run_espeak(primary, &talk.text, ssml)
                .await
                .map_err(|e2| format!("{e}; {e2}"))?,
            None => return Err(e),
        },
    };
    let level = talk.level;
    tokio::task::spawn_blocking(move || {
        let mut pcm = decode_wav(&wav).map_err(|e| format!("{TTS_PROGRAM} output: {e}"))?;
        apply_level(&mut pcm, level);
        Ok(pcm)
    })
    .await
    .map_err(|e| format!("decoding failed: {e}"))?
}

async fn run_espeak(voice: &str, text: &str, ssml: bool) -> Result<Vec<u8>, String> {
    let mut cmd = tokio::process::Command::new(TTS_PROGRAM);
    cmd.arg("--stdout").arg("-v").arg(voice);
    if ssml {
        cmd.arg("-m");
    }
    // The text goes through stdin, so nothing in it can be taken for an option.
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {TTS_PROGRAM}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let text = text.to_string();
        tokio::spawn(async move {
            let _ = stdin.write_all(text.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let out = tokio::time::timeout(TTS_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{TTS_PROGRAM} took longer than {} s", TTS_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{TTS_PROGRAM} failed: {e}"))?;
    if !out.status.success() || out.stdout.len() <= 44 {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(format!(
            "{TTS_PROGRAM} -v {voice} failed ({}): {}",
            out.status,
            if err.is_empty() { "no audio" } else { &err }
        ));
    }
    Ok(out.stdout)
}

/// Where a stream URL's file is cached: `{data}/stream-cache/{sha256(url)}.wav`.
pub(crate) fn cache_path(data_dir: &Path, url: &str) -> PathBuf {
    let hash = hex::encode(Sha256::digest(url.as_bytes()));
    data_dir.join("stream-cache").join(format!("{hash}.wav"))
}

/// The samples of a stream action: from the cache, or fetched (and cached) first.
pub(crate) async fn load_stream(
    client: &reqwest::Client,
    data_dir: &Path,
    stream: &Stream,
) -> Result<Vec<i16>, String> {
    let url = &stream.stream_url;
    let path = cache_path(data_dir, url);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(_) => {
            let b = fetch(client, url).await?;
            // Check before caching, so a bad file is fetched again next time.
            decode_wav(&b).map_err(|e| format!("{url}: {e}"))?;
            store(&path, &b).await;
            b
        }
    };
    let level = stream.level;
    let url = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut pcm = decode_wav(&bytes).map_err(|e| format!("{url}: {e}"))?;
        apply_level(&mut pcm, level);
        Ok(pcm)
    })
    .await
    .map_err(|e| format!("decoding failed: {e}"))?
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .timeout(STREAM_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::answer::describe(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    crate::answer::read_limited(response, MAX_STREAM_BYTES)
        .await
        .map_err(|e| format!("{url}: {e}"))
}

/// Writes the cache file atomically (temporary file, then rename); failures only cost a
/// later re-fetch.
async fn store(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if tokio::fs::create_dir_all(dir).await.is_err() {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if tokio::fs::write(&tmp, bytes).await.is_ok() && tokio::fs::rename(&tmp, path).await.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
}

/// Decodes a 16-bit PCM WAV (any rate, any channel count: channels are averaged) to
/// 16 kHz mono. Tolerates the unknown lengths streaming writers put in the header.
pub(crate) fn decode_wav(bytes: &[u8]) -> Result<Vec<i16>, String> {
    if bytes.len() < 12 || bytes.get(..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err("not a WAV file (mp3 and other formats are not supported)".into());
    }
    let mut pos = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = bytes.get(pos..pos + 4).unwrap_or_default();
        let len = u32_le(bytes, pos + 4) as usize;
        let body_start = pos + 8;
        if id == b"fmt " {
            if len < 16 || body_start + 16 > bytes.len() {
                return Err("WAV fmt chunk too short".into());
            }
            fmt = Some((
                u16_le(bytes, body_start),
                u16_le(bytes, body_start + 2),
                u32_le(bytes, body_start + 4),
                u16_le(bytes, body_start + 14),
            ));
        } else if id == b"data" {
            let Some((format, channels, rate, bits)) = fmt else {
                return Err("WAV data before its fmt chunk".into());
            };
            if format != 1 && format != 0xFFFE {
                return Err(format!("WAV format {format} is not PCM"));
            }
            if bits != 16 {
                return Err(format!("{bits}-bit WAV; only 16-bit PCM is supported"));
            }
            if channels == 0 || !(1000..=384_000).contains(&rate) {
                return Err(format!("unusable WAV: {channels} channels at {rate} Hz"));
            }
            let end = body_start.saturating_add(len).min(bytes.len());
            let data = bytes.get(body_start..end).unwrap_or_default();
            let ch = usize::from(channels);
            let mono: Vec<i16> = data
                .chunks_exact(2 * ch)
                .map(|frame| {
                    let sum: i32 = frame
                        .chunks_exact(2)
                        .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                        .sum();
                    (sum / i32::from(channels)) as i16
                })
                .collect();
            if mono.is_empty() {
                return Err("WAV holds no audio".into());
            }
            return Ok(resample_to_16k(&mono, rate));
        }
        pos = body_start.saturating_add(len + (len & 1));
    }
    Err("WAV file without a data chunk".into())
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

/// Band-limited resampling to 16 kHz: a Hann-windowed sinc whose cut-off is the lower of
/// the two Nyquist frequencies (so downsampling does not alias).
pub(crate) fn resample_to_16k(input: &[i16], rate: u32) -> Vec<i16> {
    const OUT_RATE: f64 = 16_000.0;
    const HALF_TAPS: i64 = 16;
    if rate == 16_000 {
        return input.to_vec();
    }
    let ratio = f64::from(rate) / OUT_RATE; // input samples per output sample
    let cutoff = (1.0 / ratio).min(1.0); // relative to the input Nyquist
    let half_width = (HALF_TAPS as f64 / cutoff).ceil() as i64;
    let n_out = (input.len() as f64 / ratio).floor() as usize;
    let mut out = Vec::with_capacity(n_out);
    for i in 0..n_out {
        let center = i as f64 * ratio;
        let c = center.floor() as i64;
        let mut acc = 0.0;
        let mut norm = 0.0;
        for k in (c - half_width + 1)..=(c + half_width) {
            let Some(&x) = usize::try_from(k).ok().and_then(|k| input.get(k)) else {
                continue;
            };
            let t = k as f64 - center;
            let arg = t * cutoff;
            let sinc = if arg.abs() < 1e-9 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * t / (half_width as f64 + 1.0)).cos();
            let h = sinc * w;
            acc += f64::from(x) * h;
            norm += h;
        }
        let y = if norm.abs() > 1e-9 { acc / norm } else { 0.0 };
        out.push(y.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16], unknown_len: bool) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(
            &(if unknown_len {
                0x7fff_ffff
            } else {
                36 + data_len
            })
            .to_le_bytes(),
        );
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
        b.extend_from_slice(&(2 * channels).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(if unknown_len { 0x7fff_ffff } else { data_len }).to_le_bytes());
        for s in samples {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    fn tone(rate: u32, freq: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    /// Dominant frequency by zero crossings.
    fn zero_cross_hz(pcm: &[i16], rate: f64) -> f64 {
        let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        crossings as f64 / 2.0 / (pcm.len() as f64 / rate)
    }

    #[test]
    fn resampling_keeps_frequency_and_length() {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let out = resample_to_16k(&tone(rate, 1000.0, rate as usize), rate);
            assert!(
                (out.len() as i64 - 16_000).abs() <= 1,
                "{rate}: {}",
                out.len()
            );
            let hz = zero_cross_hz(out.get(100..15_900).unwrap(), 16_000.0);
            assert!((hz - 1000.0).abs() < 10.0, "{rate}: {hz}");
        }
    }

    #[test]
    fn downsampling_filters_what_cannot_be_kept() {
        // 12 kHz at 48 kHz is above 16 kHz's Nyquist: it must mostly vanish.
        let out = resample_to_16k(&tone(48_000, 12_000.0, 48_000), 48_000);
        let peak = out
            .iter()
            .skip(200)
            .take(15_000)
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!(peak < 1500, "aliasing left a peak of {peak}");
    }

    #[test]
    fn wav_decoding() {
        let stereo: Vec<i16> = tone(8_000, 500.0, 8_000)
            .iter()
            .flat_map(|&s| [s, s])
            .collect();
        let pcm = decode_wav(&wav(8_000, 2, &stereo, false)).unwrap();
        assert!((pcm.len() as i64 - 16_000).abs() <= 1);
        let pcm = decode_wav(&wav(16_000, 1, &[1, 2, 3], true)).unwrap();
        assert_eq!(pcm, vec![1, 2, 3]);
        assert!(decode_wav(b"ID3\x03junk")
            .unwrap_err()
            .contains("not a WAV"));
        assert!(decode_wav(b"RIFF\0\0\0\0WAVE").is_err());
    }

    #[test]
    fn prompt_loops() {
        let pcm = Arc::new(vec![1i16; FRAME_16K + 10]);
        let mut p = Prompt::new(ActionId(1), Arc::clone(&pcm), 2);
        let frames: Vec<_> = std::iter::from_fn(|| p.next_frame()).collect();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[1][9], 1);
        assert_eq!(frames[1][10], 0);
        let mut forever = Prompt::new(ActionId(2), pcm, 0);
        assert_eq!(
            std::iter::from_fn(|| forever.next_frame())
                .take(100)
                .count(),
            100
        );
    }

    #[test]
    fn level_scales() {
        let mut pcm = vec![1000, -1000, 30_000];
        apply_level(&mut pcm, 0.5);
        assert_eq!(pcm, vec![1500, -1500, 32_767]);
        apply_level(&mut pcm, -1.0);
        assert_eq!(pcm, vec![0, 0, 0]);
    }

    #[test]
    fn cache_path_is_by_url_hash() {
        let a = cache_path(Path::new("/d"), "http://x/a.wav");
        assert_ne!(a, cache_path(Path::new("/d"), "http://x/b.wav"));
        assert!(a.starts_with("/d/stream-cache"));
    }
}
