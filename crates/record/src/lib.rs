//! callmux recorder: every leg of a call in its own channel of one file, aligned by RTP
//! timestamp, written in real time, playable after a crash.
//!
//! # Pieces
//! - [`RecordingTimeline`] (pure): places each leg's decoded 16 kHz audio by RTP timestamp
//!   on one clock, fills gaps with silence, corrects drift, mixes into the channels of a
//!   [`ChannelLayout`] and emits final interleaved frames.
//! - [`Recording`]: a timeline + a file sink (WAV via hound, MP3 via LAME, Opus in Ogg via
//!   libopus) + the JSON [`Sidecar`]. Files live in `{root}/{YYYY}/{MM}/{DD}/{uuid}.{ext}`.
//! - [`recover_unfinished`]: repairs files a crash left behind, at start-up.
//! - [`SilenceDetector`] for NCCO `endOnSilence`; [`analysis`] for `callmux inspect` and tests.
//!
//! # Run-loop contract
//! The call task owns one `Recording` per record action and drives it with its own clock:
//! 1. `Recording::create(params, now)`, then `add_leg` for each leg (and `remove_leg` when
//!    one leaves);
//! 2. for every decoded packet `push_received(leg, ssrc, ts, clock_rate, arrival, pcm)`,
//!    for every frame callmux sends to a leg `push_played(leg, now, pcm)`; when a leg's
//!    audio pauses, what its decoder still holds `push_tail(leg, ssrc, next_ts, clock_rate,
//!    pcm)` (docs/recording.md, "Decoder tail");
//! 3. `poll(now)` after a batch of packets and whenever `next_deadline()` passes (at least
//!    every 100 ms): it writes the final frames and checkpoints the file (header patched,
//!    buffers flushed) every `checkpoint_interval` (≤ 1 s);
//! 4. `finish(now, wall_end)` at the end → [`RecordingSummary`] for the record event; after
//!    any error from `poll`, `fail(reason, wall_end)` (or `finish` after `SizeLimit`).
//!
//! Every call is a plain blocking call that returns quickly: file writes go through
//! buffered writers; fsync happens only at create, leg join/leave (sidecar), finish and fail.
//!
//! # Panic policy
//! A panic is a bug; nothing from the network panics. RTP fields, sample data, sidecars and
//! files on disk are untrusted: every parser returns an error instead, and has
//! malformed-input tests and a [`fuzzing`] entry point.
//!
//! # What this crate never does
//! No sockets, no threads, no async runtime, no sleeping, no clock reads (time is always an
//! argument), no decoding of network codecs (the media crate hands over 16 kHz PCM).
//! File I/O with `std::fs` is its one side effect, confined to `Recording` and recovery.

pub mod analysis;
pub mod error;
pub mod format;
pub mod layout;
pub mod recording;
pub mod recover;
pub mod sidecar;
pub mod silence;
pub mod sink;
pub mod timeline;

pub use analysis::{analyze_file, analyze_samples, AnalysisError, AudioAnalysis, FileAnalysis};
pub use error::RecordError;
pub use layout::{ChannelLayout, LegKey, MAX_CHANNELS, SAMPLE_RATE};
pub use recording::{
    LegInfo, RecordFormat, Recording, RecordingParams, RecordingState, RecordingSummary,
};
pub use recover::{recover_unfinished, recover_unfinished_with, RecoverOptions};
pub use sidecar::{Sidecar, SidecarState};
pub use silence::SilenceDetector;
pub use timeline::{ChannelStats, LegStats, RecordingTimeline, TimelineConfig, TimelineStats};

/// Fuzz entry points (the lead wires them into cargo-fuzz). Each feeds arbitrary bytes to a
/// parser and must never panic.
pub mod fuzzing {
    use crate::format::{mp3, ogg, opus, wav};

    /// WAV header parsing and the crash repair of an in-memory file.
    pub fn wav_recover(data: &[u8]) {
        let _ = wav::parse_header(data);
        let mut file = data.to_vec();
        if let Ok(frames) = crate::recover::repair_wav_bytes(&mut file) {
            // A repaired file must parse and agree with itself.
            let again = wav::plan_repair(&file, file.len() as u64);
            assert!(
                matches!(again, Ok(r) if r.frames == frames && r.truncate_to == file.len() as u64)
            );
        }
    }

    /// Sidecar JSON parsing and validation.
    pub fn sidecar(data: &[u8]) {
        if let Ok(s) = crate::sidecar::Sidecar::from_json(data) {
            let json = serde_json::to_vec(&s).unwrap_or_default();
            assert!(crate::sidecar::Sidecar::from_json(&json).is_ok());
        }
    }

    /// MP3 frame walking (recovery of .mp3 files).
    pub fn mp3_scan(data: &[u8]) {
        let _ = mp3::scan(&mut &data[..]);
    }

    /// Ogg page walking, packet reading and OpusHead parsing (recovery and analysis).
    pub fn ogg_scan(data: &[u8]) {
        if let Ok(s) = ogg::scan(&mut &data[..]) {
            let _ = opus::OpusHead::parse(&s.first_body);
        }
        let mut r = ogg::PacketReader::new(data);
        let mut p = Vec::new();
        while let Ok(Some(_)) = r.next_packet(&mut p) {}
    }

    /// Opus packet framing, normal and self-delimited, and multistream splitting.
    pub fn opus_packet(data: &[u8]) {
        let _ = opus::parse_packet(data, false);
        let _ = opus::parse_packet(data, true);
        let (mut scratch, mut ranges) = (Vec::new(), Vec::new());
        let streams = usize::from(data.first().copied().unwrap_or(1) % 8) + 1;
        let _ = opus::split_multistream(data, streams, &mut scratch, &mut ranges);
        let mut out = Vec::new();
        if opus::append_self_delimited(data, &mut out).is_ok() {
            let _ = opus::parse_packet(&out, true);
        }
    }
}
