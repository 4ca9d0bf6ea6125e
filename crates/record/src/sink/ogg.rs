//! Opus in Ogg (RFC 7845) through libopus (audiopus): 20 ms packets at 16 kHz input,
//! granule positions at 48 kHz counting the encoder's pre-skip.
//!
//! Channels: 1–2 use mapping family 0 (one stream; 2 channels are one stereo stream at
//! 64 kbit/s). 3–8 use family 1 with one *uncoupled mono stream per channel* (24 kbit/s
//! each) so independent legs never bleed into each other; the multistream packets are built
//! here from per-channel packets in self-delimiting framing. More than 8 channels is
//! refused: family 255 would be valid Ogg Opus, but libopusfile (opusdec, browsers, most
//! players) decodes at most 8 channels, so such files would be unplayable for most users.

use std::io::{BufWriter, Write};

use audiopus::coder::Encoder;
use audiopus::{Application, Bitrate, Channels, SampleRate};

use super::{RecordWriter, Sink, SinkError};
use crate::format::ogg::PageWriter;
use crate::format::opus::{append_self_delimited, opus_tags, OpusHead};
use crate::layout::SAMPLE_RATE;

/// Most channels an Ogg Opus recording may have.
pub const OGG_MAX_CHANNELS: u16 = 8;
/// Input samples per channel of one packet (20 ms at 16 kHz).
const FRAME: usize = 320;
/// 48 kHz granule units per input sample.
const GRANULE_PER_SAMPLE: u64 = 48_000 / SAMPLE_RATE as u64;

fn enc_err(e: impl std::fmt::Display) -> SinkError {
    SinkError::Encoder {
        codec: "opus",
        reason: e.to_string(),
    }
}

/// Writes an Ogg Opus stream; pages are completed at every checkpoint.
pub struct OggOpusSink<W: RecordWriter> {
    out: BufWriter<W>,
    pages: PageWriter,
    encoders: Vec<Encoder>,
    channels: u16,
    frame: Vec<i16>,
    filled: usize,
    mono: Vec<i16>,
    packet: Vec<u8>,
    scratch: Vec<u8>,
    pre_skip: u64,
    packets: u64,
    frames: u64,
}

fn encoder(channels: Channels, bitrate: i32) -> Result<Encoder, SinkError> {
    let mut e = Encoder::new(SampleRate::Hz16000, channels, Application::Audio).map_err(enc_err)?;
    e.set_bitrate(Bitrate::BitsPerSecond(bitrate))
        .map_err(enc_err)?;
    Ok(e)
}

impl<W: RecordWriter> OggOpusSink<W> {
    /// Writes the OpusHead and OpusTags pages for `channels` (1..=32) channels; `serial`
    /// names the logical stream, `comments` are `KEY=value` tags.
    pub fn new(
        writer: W,
        channels: u16,
        serial: u32,
        comments: &[String],
    ) -> Result<Self, SinkError> {
        if !(1..=OGG_MAX_CHANNELS).contains(&channels) {
            return Err(enc_err(format!(
                "ogg recordings hold 1..=8 channels, not {channels}"
            )));
        }
        let encoders = match channels {
            1 => vec![encoder(Channels::Mono, 32_000)?],
            2 => vec![encoder(Channels::Stereo, 64_000)?],
            n => (0..n)
                .map(|_| encoder(Channels::Mono, 24_000))
                .collect::<Result<_, _>>()?,
        };
        let lookahead = encoders[0].lookahead().map_err(enc_err)?;
        let pre_skip = u64::from(lookahead) * GRANULE_PER_SAMPLE;
        let head = OpusHead::for_channels(channels as u8, pre_skip as u16, SAMPLE_RATE);
        let mut sink = Self {
            out: BufWriter::with_capacity(32 * 1024, writer),
            pages: PageWriter::new(serial),
            encoders,
            channels,
            frame: vec![0; FRAME * usize::from(channels)],
            filled: 0,
            mono: vec![0; FRAME],
            packet: Vec::with_capacity(1500 * usize::from(channels)),
            scratch: vec![0; 1500],
            pre_skip,
            packets: 0,
            frames: 0,
        };
        sink.pages.add_packet(&head.to_bytes(), 0, &mut sink.out)?;
        sink.pages.flush_page(&mut sink.out, false)?;
        sink.pages
            .add_packet(&opus_tags("callmux", comments), 0, &mut sink.out)?;
        sink.pages.flush_page(&mut sink.out, false)?;
        sink.out.flush()?;
        Ok(sink)
    }

    fn encode_frame(&mut self, granule: u64) -> Result<(), SinkError> {
        self.packet.clear();
        if self.encoders.len() == 1 {
            self.packet.resize(1500, 0);
            let n = self.encoders[0]
                .encode(&self.frame, &mut self.packet)
                .map_err(enc_err)?;
            self.packet.truncate(n);
        } else {
            let c = usize::from(self.channels);
            let last = self.encoders.len() - 1;
            for (ch, enc) in self.encoders.iter().enumerate() {
                for (m, f) in self.mono.iter_mut().zip(self.frame.chunks_exact(c)) {
                    *m = f[ch];
                }
                let n = enc.encode(&self.mono, &mut self.scratch).map_err(enc_err)?;
                let p = &self.scratch[..n];
                if ch == last {
                    self.packet.extend_from_slice(p);
                } else {
                    append_self_delimited(p, &mut self.packet).map_err(enc_err)?;
                }
            }
        }
        self.packets += 1;
        self.pages
            .add_packet(&self.packet, granule, &mut self.out)?;
        Ok(())
    }
}

impl<W: RecordWriter> Sink for OggOpusSink<W> {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), SinkError> {
        let c = usize::from(self.channels);
        let mut rest = &interleaved[..interleaved.len() / c * c];
        while !rest.is_empty() {
            let take = (FRAME - self.filled).min(rest.len() / c);
            self.frame[self.filled * c..(self.filled + take) * c]
                .copy_from_slice(&rest[..take * c]);
            self.filled += take;
            self.frames += take as u64;
            rest = &rest[take * c..];
            if self.filled == FRAME {
                self.filled = 0;
                let granule =
                    self.pre_skip + (self.packets + 1) * FRAME as u64 * GRANULE_PER_SAMPLE;
                self.encode_frame(granule)?;
            }
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), SinkError> {
        self.pages.flush_page(&mut self.out, false)?;
        self.out.flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        if self.filled > 0 || self.packets == 0 {
            let c = usize::from(self.channels);
            self.frame[self.filled * c..].fill(0);
            self.filled = 0;
            // End trimming: the last granule counts only the real input samples.
            let granule = self.pre_skip + self.frames * GRANULE_PER_SAMPLE;
            self.encode_frame(granule)?;
        }
        self.pages.end_stream(&mut self.out)?;
        self.out.flush()?;
        Ok(())
    }

    fn frames(&self) -> u64 {
        self.frames
    }

    fn channels(&self) -> u16 {
        self.channels
    }
}
