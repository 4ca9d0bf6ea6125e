//! File decoding for analysis: WAV (hound), MP3 (nanomp3, a pure-Rust port of minimp3) and
//! Ogg Opus (our Ogg reader + libopus via audiopus, multistream packets split here).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use audiopus::coder::Decoder;
use audiopus::{Channels, SampleRate};

use super::{AnalysisError, Analyzer, FileAnalysis};
use crate::format::ogg::PacketReader;
use crate::format::opus::{split_multistream, OpusHead};

const CHUNK: usize = 8192;

/// Measures a WAV, MP3 or Ogg Opus file (sniffed from its first bytes, not its name).
pub fn analyze_file(path: &Path) -> Result<FileAnalysis, AnalysisError> {
    let name = path.display().to_string();
    let io = |source| AnalysisError::Io {
        path: name.clone(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut magic = [0u8; 12];
    let n = f.read(&mut magic).map_err(io)?;
    drop(f);
    let magic = &magic[..n];
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let (format, audio) =
        if magic.len() >= 12 && &magic[0..4] == b"RIFF" && &magic[8..12] == b"WAVE" {
            ("wav", wav(reader, &name)?)
        } else if magic.starts_with(b"OggS") {
            ("ogg", ogg_opus(reader, &name)?)
        } else if magic.starts_with(b"ID3")
            || (magic.len() >= 2 && magic[0] == 0xFF && magic[1] & 0xE0 == 0xE0)
        {
            ("mp3", mp3(reader, &name)?)
        } else {
            return Err(AnalysisError::Unsupported(name));
        };
    Ok(FileAnalysis {
        path: name,
        format: format.into(),
        audio,
    })
}

fn malformed(path: &str, reason: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::Malformed {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

fn wav(reader: BufReader<File>, name: &str) -> Result<super::AudioAnalysis, AnalysisError> {
    let mut r = hound::WavReader::new(reader).map_err(|e| malformed(name, e))?;
    let spec = r.spec();
    let mut a = Analyzer::new(spec.channels, spec.sample_rate);
    let mut buf = Vec::with_capacity(CHUNK);
    let flush = |buf: &mut Vec<i16>, a: &mut Analyzer| {
        a.push(buf);
        buf.clear();
    };
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => {
            for s in r.samples::<i16>() {
                buf.push(s.map_err(|e| malformed(name, e))?);
                if buf.len() == CHUNK {
                    flush(&mut buf, &mut a);
                }
            }
        }
        (hound::SampleFormat::Int, bits) => {
            let shift = i32::from(bits) - 16;
            for s in r.samples::<i32>() {
                let s = s.map_err(|e| malformed(name, e))?;
                let v = if shift >= 0 { s >> shift } else { s << -shift };
                buf.push(v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
                if buf.len() == CHUNK {
                    flush(&mut buf, &mut a);
                }
            }
        }
        (hound::SampleFormat::Float, _) => {
            for s in r.samples::<f32>() {
                let s = s.map_err(|e| malformed(name, e))?;
                buf.push((s * 32768.0).clamp(-32768.0, 32767.0) as i16);
                if buf.len() == CHUNK {
                    flush(&mut buf, &mut a);
                }
            }
        }
    }
    flush(&mut buf, &mut a);
    Ok(a.finish())
}

fn mp3(mut reader: BufReader<File>, name: &str) -> Result<super::AudioAnalysis, AnalysisError> {
    let io = |source| AnalysisError::Io {
        path: name.to_string(),
        source,
    };
    let mut dec = nanomp3::Decoder::new();
    let mut data = vec![0u8; 64 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    let mut pcm = vec![0f32; nanomp3::MAX_SAMPLES_PER_FRAME];
    let mut out: Vec<i16> = Vec::with_capacity(nanomp3::MAX_SAMPLES_PER_FRAME);
    let mut analyzer: Option<Analyzer> = None;
    let mut layout = (0u8, 0u32);
    loop {
        if !eof && end - start < 16 * 1024 {
            data.copy_within(start..end, 0);
            end -= start;
            start = 0;
            let n = reader.read(&mut data[end..]).map_err(io)?;
            end += n;
            eof = n == 0;
        }
        if start == end {
            break;
        }
        let (consumed, info) = dec.decode(&data[start..end], &mut pcm);
        start += consumed.min(end - start);
        match info {
            Some(info) => {
                let ch = info.channels.num();
                if analyzer.is_none() {
                    layout = (ch, info.sample_rate);
                    analyzer = Some(Analyzer::new(u16::from(ch), info.sample_rate));
                }
                if (ch, info.sample_rate) != layout {
                    return Err(malformed(name, "MP3 changes channels or rate mid-stream"));
                }
                let n = (info.samples_produced * usize::from(ch)).min(pcm.len());
                out.clear();
                out.extend(
                    pcm[..n]
                        .iter()
                        .map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16),
                );
                if let Some(a) = analyzer.as_mut() {
                    a.push(&out);
                }
            }
            None if consumed == 0 && eof => break,
            None => {}
        }
    }
    analyzer
        .map(Analyzer::finish)
        .ok_or_else(|| malformed(name, "no MP3 frame decoded"))
}

fn ogg_opus(reader: BufReader<File>, name: &str) -> Result<super::AudioAnalysis, AnalysisError> {
    let io = |source| AnalysisError::Io {
        path: name.to_string(),
        source,
    };
    let opus = |e: audiopus::Error| malformed(name, format!("opus: {e}"));
    let mut packets = PacketReader::new(reader);
    let mut packet = Vec::new();
    if packets.next_packet(&mut packet).map_err(io)?.is_none() {
        return Err(malformed(name, "empty Ogg stream"));
    }
    let head = OpusHead::parse(&packet).map_err(|e| malformed(name, e))?;
    if packets.next_packet(&mut packet).map_err(io)?.is_none() || !packet.starts_with(b"OpusTags") {
        return Err(malformed(name, "missing OpusTags"));
    }
    let (rate, rate_enum) = if head.input_rate == 16_000 {
        (16_000u32, SampleRate::Hz16000)
    } else {
        (48_000, SampleRate::Hz48000)
    };
    let factor = 48_000 / u64::from(rate);
    let coupled = usize::from(head.coupled);
    let streams = usize::from(head.streams);
    // Longest Opus packet: 120 ms.
    let max = rate as usize * 120 / 1000;
    let mut decoders = Vec::with_capacity(streams);
    let mut decoded = Vec::with_capacity(streams);
    for s in 0..streams {
        let (ch, width) = if s < coupled {
            (Channels::Stereo, 2)
        } else {
            (Channels::Mono, 1)
        };
        decoders.push(Decoder::new(rate_enum, ch).map_err(opus)?);
        decoded.push(vec![0i16; max * width]);
    }
    let channels = usize::from(head.channels);
    let mut scratch = Vec::new();
    let mut ranges = Vec::new();
    let mut out = Vec::new();
    // The newest packet's audio is held back until we know whether it is the last one,
    // whose tail the final granule position trims (end trimming, RFC 7845 §4.5).
    let mut held: Vec<i16> = Vec::new();
    let mut analyzer = Analyzer::new(u16::from(head.channels), rate);
    let mut skip = u64::from(head.pre_skip) / factor;
    let mut pushed = 0u64;
    let mut last_granule = None;
    while let Some(granule) = packets.next_packet(&mut packet).map_err(io)? {
        if granule != u64::MAX {
            last_granule = Some(granule);
        }
        split_multistream(&packet, streams, &mut scratch, &mut ranges)
            .map_err(|e| malformed(name, e))?;
        let mut n = max;
        for ((dec, buf), &(a, b)) in decoders.iter_mut().zip(decoded.iter_mut()).zip(&ranges) {
            let got = dec
                .decode(Some(&scratch[a..b]), &mut buf[..], false)
                .map_err(opus)?;
            n = n.min(got);
        }
        out.clear();
        for i in 0..n {
            for c in 0..channels {
                let m = usize::from(head.mapping.get(c).copied().unwrap_or(255));
                let v = if m == 255 {
                    None
                } else if m < 2 * coupled {
                    decoded.get(m / 2).and_then(|d| d.get(i * 2 + m % 2))
                } else {
                    decoded.get(m - coupled).and_then(|d| d.get(i))
                };
                out.push(v.copied().unwrap_or(0));
            }
        }
        let drop = (skip as usize).min(n);
        skip -= drop as u64;
        analyzer.push(&held);
        pushed += (held.len() / channels) as u64;
        held.clear();
        held.extend_from_slice(&out[drop * channels..]);
    }
    let held_frames = (held.len() / channels) as u64;
    let keep = match last_granule {
        Some(g) => (g.saturating_sub(u64::from(head.pre_skip)) / factor)
            .saturating_sub(pushed)
            .min(held_frames),
        None => held_frames,
    };
    analyzer.push(&held[..keep as usize * channels]);
    Ok(analyzer.finish())
}
