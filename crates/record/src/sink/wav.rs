//! 16 kHz 16-bit PCM WAV through hound. hound writes WAVE_FORMAT_EXTENSIBLE (channel mask
//! = the low `min(n, 18)` bits) for more than two channels and plain PCM otherwise.

use std::io::BufWriter;

use super::{RecordWriter, Sink, SinkError};
use crate::layout::SAMPLE_RATE;

const BUFFER: usize = 64 * 1024;

/// Writes a WAV file in batches; [`Sink::checkpoint`] patches the RIFF and data sizes.
pub struct WavSink<W: RecordWriter> {
    writer: hound::WavWriter<BufWriter<W>>,
    channels: u16,
    frames: u64,
    max_frames: u64,
}

fn map_err(e: hound::Error) -> SinkError {
    match e {
        hound::Error::IoError(e) => SinkError::Io(e),
        other => SinkError::Encoder {
            codec: "wav",
            reason: other.to_string(),
        },
    }
}

impl<W: RecordWriter> WavSink<W> {
    /// Writes the header (sizes 0 until the first checkpoint) for `channels` channels.
    pub fn new(writer: W, channels: u16) -> Result<Self, SinkError> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(BufWriter::with_capacity(BUFFER, writer), spec)
            .map_err(map_err)?;
        // The RIFF size field is `data + header − 8` in a u32; leave room for the largest
        // (WAVE_FORMAT_EXTENSIBLE) header.
        let max_frames = (u64::from(u32::MAX) - 128) / (2 * u64::from(channels.max(1)));
        Ok(Self {
            writer,
            channels: channels.max(1),
            frames: 0,
            max_frames,
        })
    }
}

impl<W: RecordWriter> Sink for WavSink<W> {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), SinkError> {
        let c = usize::from(self.channels);
        let frames = (interleaved.len() / c) as u64;
        let room = self.max_frames - self.frames;
        let take = frames.min(room);
        if take > 0 {
            // `take` ≤ max_frames, and take × channels < 2^31: fits a u32.
            let n = take as usize * c;
            let mut w = self.writer.get_i16_writer(n as u32);
            for &s in &interleaved[..n] {
                w.write_sample(s);
            }
            w.flush().map_err(map_err)?;
            self.frames += take;
        }
        if take < frames {
            return Err(SinkError::SizeLimit);
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), SinkError> {
        self.writer.flush().map_err(map_err)
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        self.writer.finalize().map_err(map_err)
    }

    fn frames(&self) -> u64 {
        self.frames
    }

    fn channels(&self) -> u16 {
        self.channels
    }
}
