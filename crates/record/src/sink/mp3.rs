//! MP3 through LAME (the `mp3lame-encoder` crate, which builds LAME 3.100 from its bundled
//! source and links it statically): 16 kHz, 32 kbit/s CBR, mono or stereo (L/R, not joint,
//! so the two channels never bleed into each other). Frames are written as they are
//! encoded. No LAME/Info tag: at 32 kbit/s and 16 kHz a frame (144 bytes) is too small to
//! hold one, so LAME's encoder delay (≈ 1105 samples, 69 ms) is not signalled to decoders.

use std::io::{BufWriter, Write};

use mp3lame_encoder::{
    Bitrate, Builder, FlushGap, InterleavedPcm, Mode, MonoPcm, Quality, VbrMode,
};

use super::{RecordWriter, Sink, SinkError};
use crate::layout::SAMPLE_RATE;

/// Most channels MP3 can carry.
pub const MP3_MAX_CHANNELS: u16 = 2;

fn enc_err(e: impl std::fmt::Display) -> SinkError {
    SinkError::Encoder {
        codec: "mp3",
        reason: e.to_string(),
    }
}

/// Writes an MP3 stream as it is encoded.
pub struct Mp3Sink<W: RecordWriter> {
    encoder: mp3lame_encoder::Encoder,
    out: BufWriter<W>,
    buf: Vec<u8>,
    channels: u16,
    frames: u64,
}

impl<W: RecordWriter> Mp3Sink<W> {
    /// An encoder for 1 or 2 channels (anything else is an error: MP3 has no more).
    pub fn new(writer: W, channels: u16) -> Result<Self, SinkError> {
        if !(1..=MP3_MAX_CHANNELS).contains(&channels) {
            return Err(enc_err(format!(
                "mp3 holds 1 or 2 channels, not {channels}"
            )));
        }
        let mut b = Builder::new().ok_or_else(|| enc_err("cannot allocate LAME encoder"))?;
        b.set_num_channels(channels as u8).map_err(enc_err)?;
        b.set_sample_rate(SAMPLE_RATE).map_err(enc_err)?;
        b.set_output_sample_rate(std::num::NonZeroU32::new(SAMPLE_RATE))
            .map_err(enc_err)?;
        b.set_brate(Bitrate::Kbps32).map_err(enc_err)?;
        b.set_vbr_mode(VbrMode::Off).map_err(enc_err)?;
        b.set_mode(if channels == 1 {
            Mode::Mono
        } else {
            Mode::Stereo
        })
        .map_err(enc_err)?;
        b.set_quality(Quality::Good).map_err(enc_err)?;
        b.set_to_write_vbr_tag(false).map_err(enc_err)?;
        let encoder = b.build().map_err(enc_err)?;
        Ok(Self {
            encoder,
            out: BufWriter::with_capacity(16 * 1024, writer),
            buf: Vec::with_capacity(16 * 1024),
            channels,
            frames: 0,
        })
    }
}

impl<W: RecordWriter> Sink for Mp3Sink<W> {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), SinkError> {
        let c = usize::from(self.channels);
        let n = interleaved.len() / c * c;
        if n == 0 {
            return Ok(());
        }
        let pcm = &interleaved[..n];
        self.buf.clear();
        // LAME's documented worst case: 1.25 × samples + 7200 bytes.
        self.buf.reserve(n / c * 5 / 4 + 7200);
        if c == 1 {
            self.encoder
                .encode_to_vec(MonoPcm(pcm), &mut self.buf)
                .map_err(enc_err)?;
        } else {
            self.encoder
                .encode_to_vec(InterleavedPcm(pcm), &mut self.buf)
                .map_err(enc_err)?;
        }
        self.out.write_all(&self.buf)?;
        self.frames += (n / c) as u64;
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), SinkError> {
        self.out.flush()?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        self.buf.clear();
        self.buf.reserve(7200);
        self.encoder
            .flush_to_vec::<FlushGap>(&mut self.buf)
            .map_err(enc_err)?;
        self.out.write_all(&self.buf)?;
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
