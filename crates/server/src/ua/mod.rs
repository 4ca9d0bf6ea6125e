//! The small SIP user agents built into the binary, for demos and tests: `callmux call` (a
//! UAC) and `callmux answer` (a UAS). Both stream a tone or a WAV file as RTP in real time,
//! can send DTMF, and can save what they hear.

pub(crate) mod answer;
pub(crate) mod call;
mod session;

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use callmux_media::Codec;
use clap::ValueEnum;

pub(crate) use session::{hang_up, MediaSession, SessionEnd, SessionOptions, Source};

/// Codecs the user agents can offer or accept.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CodecArg {
    Pcmu,
    Pcma,
    Opus,
}

impl From<CodecArg> for Codec {
    fn from(c: CodecArg) -> Self {
        match c {
            CodecArg::Pcmu => Self::Pcmu,
            CodecArg::Pcma => Self::Pcma,
            CodecArg::Opus => Self::Opus,
        }
    }
}

/// Parses `START,DURATION` (seconds) for `--gap`.
pub(crate) fn parse_gap(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("expected START,DURATION in seconds, got {s:?}");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let a: f64 = a.trim().parse().map_err(|_| bad())?;
    let b: f64 = b.trim().parse().map_err(|_| bad())?;
    if a < 0.0 || b <= 0.0 {
        return Err(bad());
    }
    Ok((a, b))
}

/// Reads a WAV file as 16 kHz mono (first channel, linear interpolation when resampling).
pub(crate) fn load_wav(path: &PathBuf) -> anyhow::Result<Vec<i16>> {
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        bail!(
            "{}: only 16-bit PCM WAV files are supported",
            path.display()
        );
    }
    let ch = usize::from(spec.channels.max(1));
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .step_by(ch)
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if samples.is_empty() {
        bail!("{}: no audio", path.display());
    }
    if spec.sample_rate == 16_000 {
        return Ok(samples);
    }
    let ratio = f64::from(spec.sample_rate) / 16_000.0;
    let n = (samples.len() as f64 / ratio) as usize;
    Ok((0..n)
        .map(|i| {
            let x = i as f64 * ratio;
            let i0 = x as usize;
            let a = f64::from(samples.get(i0).copied().unwrap_or(0));
            let b = f64::from(samples.get(i0 + 1).copied().unwrap_or(0));
            (a + (b - a) * (x - i0 as f64)) as i16
        })
        .collect())
}

/// A seed from the clock for tags, Call-IDs and SSRCs.
pub(crate) fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32)
}
