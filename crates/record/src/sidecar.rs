//! The JSON sidecar next to every recording: who is in which channel and when, the file's
//! state (recording → complete | recovered | failed). Rewritten atomically (temporary file,
//! fsync, rename, fsync of the directory) so a crash leaves the old or the new version.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::layout::{LayoutName, MAX_CHANNELS, SAMPLE_RATE};
use crate::recording::RecordFormat;

/// The only sidecar version this crate writes and reads.
pub const SIDECAR_VERSION: u32 = 1;
const MAX_SIDECAR_BYTES: u64 = 1 << 20;

/// Lifecycle of a recording as stored in its sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarState {
    /// Being written (or the writer crashed: `recover_unfinished` repairs it).
    Recording,
    /// Finished normally.
    Complete,
    /// Repaired after a crash; audio up to the last checkpoint.
    Recovered,
    /// Stopped by an error; `reason` says which. The file is playable.
    Failed,
}

/// What a channel holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelContent {
    /// Mono: every leg mixed, plus audio played to the caller.
    Mix,
    /// Split channel 1: what the caller sent.
    CallerSent,
    /// Split channel 2: what the caller heard (other legs + audio played to the caller).
    CallerHeard,
    /// Multi: the voice of the leg(s) listed.
    Participant,
}

/// A leg's role in the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegRole {
    /// The first leg added.
    Caller,
    /// Another leg of a mono or split recording.
    Callee,
    /// Another leg of a multichannel recording.
    Participant,
}

/// One stay of a leg in the recording (a leg that leaves and rejoins has two entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarLeg {
    /// The leg's call uuid.
    pub leg_uuid: String,
    /// Caller id of the leg.
    pub from: String,
    /// Destination of the leg.
    pub to: String,
    /// Caller, callee or participant.
    pub role: LegRole,
    /// Milliseconds from the start of the recording when the leg joined.
    pub joined_ms: u64,
    /// Milliseconds from the start when it left (absent while it is in the recording).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<u64>,
}

/// One channel of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEntry {
    /// 1-based channel number (1 = left in stereo).
    pub channel: u16,
    /// What the channel holds.
    pub content: ChannelContent,
    /// Legs whose voice is in the channel.
    pub legs: Vec<SidecarLeg>,
}

/// The sidecar document (`{recording_uuid}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Always [`SIDECAR_VERSION`].
    pub version: u32,
    /// Recording id; also the file's stem.
    pub recording_uuid: String,
    /// Call the recording belongs to.
    pub call_uuid: String,
    /// Conversation the recording belongs to.
    pub conversation_uuid: String,
    /// File format.
    pub format: RecordFormat,
    /// Always 16000.
    pub sample_rate: u32,
    /// Channels of the file.
    pub channels: u16,
    /// `mono`, `split` or `multi`.
    pub layout: LayoutName,
    /// Lifecycle state.
    pub state: SidecarState,
    /// Why the recording failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Wall-clock start (RFC 3339 UTC, milliseconds).
    #[serde(with = "rfc3339")]
    pub start_time: SystemTime,
    /// Wall-clock end, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub end_time: Option<SystemTime>,
    /// File size in bytes, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Audio duration in milliseconds, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// File name of the audio (informational; recovery derives it from the sidecar's name).
    pub file: String,
    /// Channel → legs.
    pub channel_map: Vec<ChannelEntry>,
}

/// Whether a recording uuid is safe as a file stem (1–128 of `[A-Za-z0-9_-]`).
pub fn valid_uuid(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Sidecar {
    /// Parses and validates a sidecar document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let s: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if s.version != SIDECAR_VERSION {
            return Err(format!("unsupported sidecar version {}", s.version));
        }
        if !valid_uuid(&s.recording_uuid) {
            return Err("recording_uuid is not a safe file name".into());
        }
        if s.sample_rate != SAMPLE_RATE {
            return Err(format!("sample_rate must be {SAMPLE_RATE}"));
        }
        if s.channels == 0 || s.channels > u16::from(MAX_CHANNELS) {
            return Err(format!("channels must be 1..={MAX_CHANNELS}"));
        }
        if s.channel_map
            .iter()
            .any(|c| c.channel == 0 || c.channel > s.channels)
        {
            return Err("channel_map names a channel the file does not have".into());
        }
        Ok(s)
    }

    /// Reads and validates the sidecar at `path`.
    pub fn load(path: &Path) -> Result<Self, RecordError> {
        let err = |reason: String| RecordError::Sidecar {
            path: path.to_path_buf(),
            reason,
        };
        let meta = fs::metadata(path).map_err(|e| RecordError::io(path, e))?;
        if meta.len() > MAX_SIDECAR_BYTES {
            return Err(err("larger than 1 MiB".into()));
        }
        let bytes = fs::read(path).map_err(|e| RecordError::io(path, e))?;
        Self::from_json(&bytes).map_err(err)
    }

    /// Writes the sidecar atomically to `path` (temporary file, fsync, rename).
    ///
    /// The file is padded with spaces to a multiple of [`SIDECAR_RESERVE`] bytes, so that
    /// when the disk is full (the temporary file cannot be written) the new content can still
    /// be written in place over the old, which needs no new blocks: a recording stopped by a
    /// full disk still gets its `failed` state and reason on disk.
    pub fn store(&self, path: &Path) -> Result<(), RecordError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| RecordError::Sidecar {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        let padded_len = bytes.len().div_ceil(SIDECAR_RESERVE).max(1) * SIDECAR_RESERVE;
        bytes.resize(padded_len - 1, b' ');
        bytes.push(b'\n');
        let tmp = tmp_path(path);
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        };
        match write() {
            Ok(()) => {}
            Err(e) if is_out_of_space(&e) => {
                let _ = fs::remove_file(&tmp);
                return overwrite_in_place(path, &bytes).map_err(|_| RecordError::io(&tmp, e));
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(RecordError::io(&tmp, e));
            }
        }
        fs::rename(&tmp, path).map_err(|e| RecordError::io(path, e))?;
        sync_dir(path);
        Ok(())
    }

    /// Duration on disk, if known.
    pub fn duration(&self) -> Option<Duration> {
        self.duration_ms.map(Duration::from_millis)
    }
}

/// Sidecars are padded to a multiple of this size (see [`Sidecar::store`]).
pub const SIDECAR_RESERVE: usize = 4096;

/// ENOSPC or EDQUOT.
fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122))
}

/// Overwrites an existing, large enough file without allocating new blocks (the new content
/// is padded to the old length).
fn overwrite_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    let old_len = f.metadata()?.len();
    if (bytes.len() as u64) > old_len {
        return Err(std::io::Error::other(
            "the new sidecar does not fit in the old one",
        ));
    }
    f.write_all(bytes)?;
    let pad = usize::try_from(old_len).unwrap_or(usize::MAX) - bytes.len();
    if pad > 0 {
        let mut spaces = vec![b' '; pad];
        if let Some(last) = spaces.last_mut() {
            *last = b'\n';
        }
        f.write_all(&spaces)?;
    }
    f.sync_all()
}

/// `x.json` → `x.json.tmp`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Best-effort fsync of a file's directory so a rename or creation is durable.
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            // Some filesystems refuse fsync on directories; the rename itself is done.
            let _ = d.sync_all();
        }
    }
}

/// Formats a wall-clock instant as RFC 3339 UTC with milliseconds
/// (`2024-05-01T12:00:00.123Z`); instants before 1970 or past year 9999 are clamped.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let nanos = i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59.999 UTC));
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt).unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (any offset) into a wall-clock instant.
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let nanos = dt.unix_timestamp_nanos();
    if nanos < 0 {
        return Err("time before 1970".into());
    }
    let nanos = u64::try_from(nanos).map_err(|_| "time out of range".to_string())?;
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos))
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_time(&s).map_err(serde::de::Error::custom)
    }
}

mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_time(*t)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| super::parse_time(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sidecar {
        Sidecar {
            version: 1,
            recording_uuid: "rec-1".into(),
            call_uuid: "call-1".into(),
            conversation_uuid: "conv-1".into(),
            format: RecordFormat::Wav,
            sample_rate: 16_000,
            channels: 2,
            layout: LayoutName::Split,
            state: SidecarState::Recording,
            reason: None,
            start_time: UNIX_EPOCH + Duration::from_millis(1_714_564_800_123),
            end_time: None,
            size: None,
            duration_ms: None,
            file: "rec-1.wav".into(),
            channel_map: vec![ChannelEntry {
                channel: 1,
                content: ChannelContent::CallerSent,
                legs: vec![SidecarLeg {
                    leg_uuid: "leg-a".into(),
                    from: "alice".into(),
                    to: "bob".into(),
                    role: LegRole::Caller,
                    joined_ms: 0,
                    left_ms: None,
                }],
            }],
        }
    }

    #[test]
    fn json_shape_and_roundtrip() {
        let s = sample();
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains(r#""start_time":"2024-05-01T12:00:00.123Z""#),
            "{json}"
        );
        assert!(json.contains(r#""state":"recording""#));
        assert!(json.contains(r#""layout":"split""#));
        assert!(json.contains(r#""format":"wav""#));
        assert!(json.contains(r#""role":"caller""#));
        assert!(!json.contains("end_time") && !json.contains("left_ms"));
        assert_eq!(Sidecar::from_json(json.as_bytes()).unwrap(), s);
    }

    #[test]
    fn malformed_sidecars_are_rejected() {
        let ok = serde_json::to_value(sample()).unwrap();
        let with = |k: &str, v: serde_json::Value| {
            let mut o = ok.clone();
            o[k] = v;
            serde_json::to_vec(&o).unwrap()
        };
        assert!(Sidecar::from_json(b"{").is_err());
        assert!(Sidecar::from_json(b"[]").is_err());
        assert!(Sidecar::from_json(&with("version", 2.into())).is_err());
        assert!(Sidecar::from_json(&with("recording_uuid", "../../etc/passwd".into())).is_err());
        assert!(Sidecar::from_json(&with("recording_uuid", "".into())).is_err());
        assert!(Sidecar::from_json(&with("channels", 0.into())).is_err());
        assert!(Sidecar::from_json(&with("channels", 33.into())).is_err());
        assert!(Sidecar::from_json(&with("channels", 1.into())).is_ok());
        assert!(Sidecar::from_json(&with("sample_rate", 8000.into())).is_err());
        assert!(Sidecar::from_json(&with("start_time", "yesterday".into())).is_err());
        assert!(Sidecar::from_json(&with("start_time", "1960-01-01T00:00:00Z".into())).is_err());
        assert!(Sidecar::from_json(&with("state", "paused".into())).is_err());
    }

    #[test]
    fn time_formatting_clamps_and_parses_offsets() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = parse_time("2024-05-01T14:00:00.5+02:00").unwrap();
        assert_eq!(format_time(t), "2024-05-01T12:00:00.500Z");
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(format_time(far).starts_with("9999-"));
    }

    #[test]
    fn store_is_atomic_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rec-1.json");
        sample().store(&p).unwrap();
        assert!(!tmp_path(&p).exists());
        assert_eq!(Sidecar::load(&p).unwrap(), sample());
    }
}
