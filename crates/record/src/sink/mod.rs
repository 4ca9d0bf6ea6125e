//! File sinks: interleaved 16 kHz i16 frames in, a playable file out. Each sink writes as it
//! goes through a buffered writer and makes the file consistent at every
//! [`Sink::checkpoint`], so a copy taken (or a crash) at any moment is playable up to the
//! last checkpoint.

mod mp3;
mod ogg;
mod wav;

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

pub use mp3::{Mp3Sink, MP3_MAX_CHANNELS};
pub use ogg::{OggOpusSink, OGG_MAX_CHANNELS};
pub use wav::WavSink;

/// Anything a sink can write a file through: a `File`, a `Cursor<Vec<u8>>` in tests and
/// benches, or a test double that fails like a full disk (an empty `impl` gets the
/// seek-based [`write_all_at`](Self::write_all_at)).
pub trait RecordWriter: Write + Seek + Send {
    /// Writes all of `buf` at byte `offset` without moving the position the next `write`
    /// goes to (a header patch). The default seeks there and back (three `lseek` and a
    /// `write`); a file does it in one `pwrite`.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let pos = self.stream_position()?;
        self.seek(SeekFrom::Start(offset))?;
        self.write_all(buf)?;
        self.seek(SeekFrom::Start(pos))?;
        Ok(())
    }
}

impl RecordWriter for File {
    #[cfg(unix)]
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, offset)
    }
}

impl RecordWriter for io::Cursor<Vec<u8>> {}

impl<T: RecordWriter + ?Sized> RecordWriter for Box<T> {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        (**self).write_all_at(buf, offset)
    }
}

/// Why a sink could not take more audio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The writer failed (disk full, EIO, …).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The format's size limit was reached (WAV: 4 GiB); what fitted was written.
    #[error("size limit of the format reached")]
    SizeLimit,
    /// The encoder failed.
    #[error("{codec} encoder: {reason}")]
    Encoder {
        /// `mp3` or `opus`.
        codec: &'static str,
        /// What it said.
        reason: String,
    },
}

/// A file being written in real time.
pub trait Sink: Send {
    /// Appends interleaved frames (`len` must be a multiple of the channel count; a partial
    /// trailing frame is ignored).
    fn write(&mut self, interleaved: &[i16]) -> Result<(), SinkError>;
    /// Makes what was written so far a valid file on disk (header sizes patched, encoder
    /// pages/frames flushed, buffers handed to the OS). No fsync.
    fn checkpoint(&mut self) -> Result<(), SinkError>;
    /// Ends the file (encoder flushed, final header/EOS written, buffers flushed).
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
    /// Frames accepted so far.
    fn frames(&self) -> u64;
    /// Channels of the file.
    fn channels(&self) -> u16;
}
