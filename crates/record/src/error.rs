//! Errors of the recorder, classified by whose fault they are.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while recording, finishing or recovering a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The caller asked for something impossible (bad uuid, layout, interval). API misuse.
    #[error("invalid recording parameters: {0}")]
    InvalidParams(String),
    /// The format cannot hold that many channels (MP3: 2, Ogg Opus: 8, WAV: 32).
    #[error("{format} recordings support at most {max} channels, got {channels}")]
    TooManyChannels {
        /// Format asked for (`wav`, `mp3`, `ogg`).
        format: &'static str,
        /// Channels the layout needs.
        channels: u16,
        /// Most the format holds.
        max: u16,
    },
    /// A read, write, flush, seek or rename failed (disk full, EIO, permissions).
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The audio encoder refused its settings or its input.
    #[error("{codec} encoder: {reason}")]
    Encoder {
        /// `mp3` or `opus`.
        codec: &'static str,
        /// What the encoder said.
        reason: String,
    },
    /// A WAV data chunk cannot exceed 4 GiB; the recording stopped writing there.
    #[error("{}: WAV size limit (4 GiB) reached; finish the recording", path.display())]
    SizeLimit {
        /// The WAV file.
        path: PathBuf,
    },
    /// An earlier error stopped this recording; only `fail()` or `finish()` remain.
    #[error("recording already stopped by an earlier error: {0}")]
    Stopped(String),
    /// A sidecar could not be read or is not a callmux sidecar.
    #[error("sidecar {}: {reason}", path.display())]
    Sidecar {
        /// The sidecar file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file left by a crash could not be repaired (it is marked `failed`).
    #[error("cannot recover {}: {reason}", path.display())]
    Recover {
        /// The media file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl RecordError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
