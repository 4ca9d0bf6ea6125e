//! 16 kHz 16-bit PCM WAV, written directly: the header hound would write (plain PCM for
//! one or two channels, `WAVE_FORMAT_EXTENSIBLE` with channel mask = the low `min(n, 18)`
//! bits for more; a test checks the bytes against hound's), samples converted to
//! little-endian into one reused buffer, and at every checkpoint the buffer written and the
//! RIFF and data sizes patched with one positioned write (`pwrite` on a file) — two system
//! calls, no `lseek`.

use super::{RecordWriter, Sink, SinkError};
use crate::layout::SAMPLE_RATE;

/// Bytes buffered before a write (a checkpoint writes whatever is there).
const BUFFER: usize = 16 * 1024;
/// `KSDATAFORMAT_SUBTYPE_PCM`.
const SUBTYPE_PCM: [u8; 16] = [
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// Writes a WAV file in batches; [`Sink::checkpoint`] patches the RIFF and data sizes.
pub struct WavSink<W: RecordWriter> {
    writer: W,
    /// Bytes not yet handed to the writer.
    buf: Vec<u8>,
    header: [u8; 68],
    header_len: usize,
    channels: u16,
    frames: u64,
    max_frames: u64,
    /// `finish` ran: nothing left to do on drop.
    finished: bool,
}

/// The header up to and including the data chunk's size field (sizes 0); its length.
fn header(channels: u16) -> ([u8; 68], usize) {
    let mut h = [0u8; 68];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    let block_align = 2 * channels;
    put(b"RIFF");
    put(&0u32.to_le_bytes());
    put(b"WAVE");
    put(b"fmt ");
    let extensible = channels > 2;
    put(&(if extensible { 40u32 } else { 16 }).to_le_bytes());
    put(&(if extensible { 0xfffeu16 } else { 1 }).to_le_bytes());
    put(&channels.to_le_bytes());
    put(&SAMPLE_RATE.to_le_bytes());
    put(&(SAMPLE_RATE * u32::from(block_align)).to_le_bytes());
    put(&block_align.to_le_bytes());
    put(&16u16.to_le_bytes());
    if extensible {
        put(&22u16.to_le_bytes());
        put(&16u16.to_le_bytes());
        let mask = (1u32 << channels.min(18)) - 1;
        put(&mask.to_le_bytes());
        put(&SUBTYPE_PCM);
    }
    put(b"data");
    put(&0u32.to_le_bytes());
    (h, at)
}

impl<W: RecordWriter> WavSink<W> {
    /// Writes the header (sizes 0 until the first checkpoint) for `channels` channels.
    pub fn new(writer: W, channels: u16) -> Result<Self, SinkError> {
        let channels = channels.max(1);
        let (header, header_len) = header(channels);
        let mut buf = Vec::with_capacity(BUFFER);
        buf.extend_from_slice(&header[..header_len]);
        // The RIFF size field is `data + header − 8` in a u32.
        let max_frames = (u64::from(u32::MAX) - 128) / (2 * u64::from(channels));
        Ok(Self {
            writer,
            buf,
            header,
            header_len,
            channels,
            frames: 0,
            max_frames,
            finished: false,
        })
    }

    fn write_buffer(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            // Cleared even on error: what failed is not retried (the recording stops).
            let r = self.writer.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        Ok(())
    }

    /// Writes the buffer, then the current RIFF and data sizes into the header on disk.
    fn sync_header(&mut self) -> std::io::Result<()> {
        self.write_buffer()?;
        // frames ≤ max_frames, so both sizes fit a u32.
        let data = (self.frames * 2 * u64::from(self.channels)) as u32;
        let riff = data + (self.header_len as u32 - 8);
        self.header[4..8].copy_from_slice(&riff.to_le_bytes());
        let n = self.header_len;
        self.header[n - 4..n].copy_from_slice(&data.to_le_bytes());
        // Bytes 4..n: the two sizes and the (unchanged) format between them, in one write.
        self.writer.write_all_at(&self.header[4..n], 4)?;
        self.writer.flush()
    }
}

impl<W: RecordWriter> Sink for WavSink<W> {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), SinkError> {
        let c = usize::from(self.channels);
        let frames = (interleaved.len() / c) as u64;
        let room = self.max_frames - self.frames;
        let take = frames.min(room);
        if take > 0 {
            let samples = &interleaved[..take as usize * c];
            let start = self.buf.len();
            self.buf.resize(start + 2 * samples.len(), 0);
            for (d, s) in self.buf[start..].chunks_exact_mut(2).zip(samples) {
                d.copy_from_slice(&s.to_le_bytes());
            }
            self.frames += take;
            if self.buf.len() >= BUFFER {
                self.write_buffer()?;
            }
        }
        if take < frames {
            return Err(SinkError::SizeLimit);
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), SinkError> {
        Ok(self.sync_header()?)
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        self.finished = true;
        Ok(self.sync_header()?)
    }

    fn frames(&self) -> u64 {
        self.frames
    }

    fn channels(&self) -> u16 {
        self.channels
    }
}

impl<W: RecordWriter> Drop for WavSink<W> {
    /// Like hound's writer: whatever can still be written is, and the header is patched, so
    /// a recording dropped without `finish` (a bug, a panic elsewhere) stays playable.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.sync_header();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn with_hound(channels: u16, samples: &[i16]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        cursor.into_inner()
    }

    #[test]
    fn bytes_are_the_same_as_hounds() {
        for channels in [1u16, 2, 3, 8, 18, 19, 32] {
            let samples: Vec<i16> = (0..channels as i32 * 700)
                .map(|i| (i * 37 - 9000) as i16)
                .collect();
            let mut sink = Box::new(WavSink::new(Cursor::new(Vec::new()), channels).unwrap());
            for chunk in samples.chunks(channels as usize * 50) {
                sink.write(chunk).unwrap();
                sink.checkpoint().unwrap();
            }
            // Reach into the box for the bytes before finishing it.
            let mut sink = *sink;
            sink.finished = true;
            sink.sync_header().unwrap();
            let ours = std::mem::take(sink.writer.get_mut());
            assert_eq!(ours, with_hound(channels, &samples), "{channels} channels");
        }
    }

    #[test]
    fn a_checkpoint_leaves_a_complete_file_and_the_position_at_the_end() {
        let mut sink = WavSink::new(Cursor::new(Vec::new()), 2).unwrap();
        sink.write(&[1, 2, 3, 4]).unwrap();
        sink.checkpoint().unwrap();
        let snapshot = sink.writer.get_ref().clone();
        let r = hound::WavReader::new(Cursor::new(&snapshot)).unwrap();
        assert_eq!(r.duration(), 2);
        sink.write(&[5, 6]).unwrap();
        sink.checkpoint().unwrap();
        let r = hound::WavReader::new(Cursor::new(sink.writer.get_ref().clone())).unwrap();
        let all: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
        assert_eq!(all, [1, 2, 3, 4, 5, 6]);
    }
}
