//! Crash recovery: repair files a dead process left in state `recording`, and the shared
//! "make the file match what is on disk" step that [`crate::Recording::fail`] uses too.

use std::fs;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::RecordError;
use crate::format::opus::OpusHead;
use crate::format::{mp3, ogg, wav, Malformed};
use crate::recording::{RecordFormat, RecordingState, RecordingSummary};
use crate::sidecar::{Sidecar, SidecarState};

/// What a repaired file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repaired {
    pub(crate) duration: Duration,
    pub(crate) size: u64,
}

const WAV_HEADER_READ: u64 = 64 * 1024;

pub(crate) fn frames_to_duration(frames: u64, rate: u32) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let secs = frames / u64::from(rate);
    let rem = frames % u64::from(rate);
    Duration::from_secs(secs) + Duration::from_nanos(rem * 1_000_000_000 / u64::from(rate))
}

/// Repairs a file in place so that its header and length match the complete audio on disk.
pub(crate) fn repair_file(path: &Path, format: RecordFormat) -> Result<Repaired, RecordError> {
    let io = |e| RecordError::io(path, e);
    let bad = |m: Malformed| RecordError::Recover {
        path: path.to_path_buf(),
        reason: m.0.to_string(),
    };
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let duration = match format {
        RecordFormat::Wav => {
            let mut head = Vec::new();
            (&mut f)
                .take(WAV_HEADER_READ)
                .read_to_end(&mut head)
                .map_err(io)?;
            let plan = wav::plan_repair(&head, len).map_err(bad)?;
            if plan.truncate_to != len {
                f.set_len(plan.truncate_to).map_err(io)?;
            }
            f.seek(SeekFrom::Start(4)).map_err(io)?;
            f.write_all(&plan.riff_size.to_le_bytes()).map_err(io)?;
            f.seek(SeekFrom::Start(plan.layout.data_size_offset()))
                .map_err(io)?;
            f.write_all(&plan.data_size.to_le_bytes()).map_err(io)?;
            frames_to_duration(plan.frames, plan.layout.sample_rate)
        }
        RecordFormat::Mp3 => {
            let scan = mp3::scan(&mut BufReader::new(&mut f))
                .map_err(io)?
                .map_err(bad)?;
            if scan.end != len {
                f.set_len(scan.end).map_err(io)?;
            }
            frames_to_duration(scan.samples, scan.sample_rate)
        }
        RecordFormat::Ogg => {
            let scan = ogg::scan(&mut BufReader::new(&mut f)).map_err(io)?;
            let head = OpusHead::parse(&scan.first_body).map_err(bad)?;
            if scan.pages < 2 {
                return Err(bad(Malformed("Ogg Opus headers incomplete")));
            }
            if scan.end != len {
                f.set_len(scan.end).map_err(io)?;
            }
            if scan.pages > 2 && scan.last.flags & ogg::FLAG_EOS == 0 {
                let mut page = vec![0u8; scan.last.len];
                f.seek(SeekFrom::Start(scan.last.offset)).map_err(io)?;
                f.read_exact(&mut page).map_err(io)?;
                ogg::mark_eos(&mut page).map_err(bad)?;
                f.seek(SeekFrom::Start(scan.last.offset)).map_err(io)?;
                f.write_all(&page).map_err(io)?;
            }
            let samples = scan
                .last_granule
                .unwrap_or(0)
                .saturating_sub(u64::from(head.pre_skip));
            frames_to_duration(samples, 48_000)
        }
    };
    f.sync_all().map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    Ok(Repaired { duration, size })
}

/// Options of [`recover_unfinished_with`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoverOptions {
    /// Skip recordings whose audio file was modified less than this long before `now_wall`
    /// (a live recorder on another host sharing the directory checkpoints at least every
    /// second). Zero — the default — recovers everything: right for one host per root.
    pub skip_modified_within: Duration,
    /// Recordings (by `recording_uuid`) the caller itself was writing when it stopped: no
    /// one else writes them, so they are recovered however recently they were modified.
    pub own: Vec<String>,
}

/// Finds sidecars in state `recording` under `root` (`{root}/{YYYY}/{MM}/{DD}/`), repairs
/// their files, marks them `recovered` and returns one summary per recording so the
/// server can emit its record event. Unrepairable ones are marked `failed` and returned as
/// errors; unreadable sidecars are returned as errors and left alone.
pub fn recover_unfinished(
    root: &Path,
    now_wall: SystemTime,
) -> Vec<Result<RecordingSummary, RecordError>> {
    recover_unfinished_with(root, now_wall, RecoverOptions::default())
}

/// [`recover_unfinished`] with options.
pub fn recover_unfinished_with(
    root: &Path,
    now_wall: SystemTime,
    options: RecoverOptions,
) -> Vec<Result<RecordingSummary, RecordError>> {
    let mut sidecars = Vec::new();
    let mut results = Vec::new();
    walk(root, 0, &mut sidecars, &mut results);
    sidecars.sort();
    for path in sidecars {
        if let Some(r) = recover_one(&path, now_wall, &options) {
            results.push(r);
        }
    }
    results
}

/// Collects `*.json` files at depth 3 below root (Y/M/D), removing stale `*.json.tmp`
/// files; symlinks are not followed.
fn walk(
    dir: &Path,
    depth: usize,
    out: &mut Vec<PathBuf>,
    errors: &mut Vec<Result<RecordingSummary, RecordError>>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            if depth == 0 && e.kind() != std::io::ErrorKind::NotFound {
                errors.push(Err(RecordError::io(dir, e)));
            }
            return;
        }
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() && depth < 3 {
            walk(&path, depth + 1, out, errors);
        } else if kind.is_file() && depth == 3 {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json.tmp") {
                let _ = fs::remove_file(&path);
            } else if name.ends_with(".json") {
                out.push(path);
            }
        }
    }
}

fn recover_one(
    sidecar_path: &Path,
    now_wall: SystemTime,
    options: &RecoverOptions,
) -> Option<Result<RecordingSummary, RecordError>> {
    let mut sidecar = match Sidecar::load(sidecar_path) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    if sidecar.state != SidecarState::Recording {
        return None;
    }
    let stem = sidecar_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    if stem.as_deref() != Some(sidecar.recording_uuid.as_str()) {
        return Some(Err(RecordError::Sidecar {
            path: sidecar_path.to_path_buf(),
            reason: "file name does not match recording_uuid".into(),
        }));
    }
    let path = sidecar_path.with_extension(sidecar.format.extension());
    if !options.skip_modified_within.is_zero() && !options.own.contains(&sidecar.recording_uuid) {
        let modified = fs::metadata(&path).and_then(|m| m.modified()).ok();
        let recent = modified.is_some_and(|m| {
            now_wall
                .duration_since(m)
                .map_or(true, |age| age < options.skip_modified_within)
        });
        if recent {
            return None;
        }
    }
    let repaired = match fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_file() => repair_file(&path, sidecar.format),
        Ok(_) => Err(RecordError::Recover {
            path: path.clone(),
            reason: "not a regular file".into(),
        }),
        Err(e) => Err(RecordError::Recover {
            path: path.clone(),
            reason: format!("audio file missing: {e}"),
        }),
    };
    let r = match repaired {
        Ok(r) => r,
        Err(e) => {
            sidecar.state = SidecarState::Failed;
            sidecar.reason = Some(format!("recovery after crash failed: {e}"));
            sidecar.end_time = Some(sidecar.start_time);
            let _ = sidecar.store(sidecar_path);
            return Some(Err(e));
        }
    };
    let end_time = sidecar.start_time + r.duration;
    let ms = u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX);
    for entry in &mut sidecar.channel_map {
        for leg in entry.legs.iter_mut().filter(|l| l.left_ms.is_none()) {
            leg.left_ms = Some(ms.max(leg.joined_ms));
        }
    }
    sidecar.state = SidecarState::Recovered;
    sidecar.end_time = Some(end_time);
    sidecar.size = Some(r.size);
    sidecar.duration_ms = Some(ms);
    if let Err(e) = sidecar.store(sidecar_path) {
        return Some(Err(e));
    }
    Some(Ok(RecordingSummary {
        recording_uuid: sidecar.recording_uuid,
        call_uuid: sidecar.call_uuid,
        conversation_uuid: sidecar.conversation_uuid,
        path,
        sidecar: sidecar_path.to_path_buf(),
        format: sidecar.format,
        channels: sidecar.channels,
        size: r.size,
        start_time: sidecar.start_time,
        end_time,
        duration: r.duration,
        state: RecordingState::Recovered,
    }))
}

/// Runs the WAV repair on an in-memory file (fuzzing and tests).
pub(crate) fn repair_wav_bytes(data: &mut Vec<u8>) -> Result<u64, Malformed> {
    let head_len = data.len().min(WAV_HEADER_READ as usize);
    let plan = wav::plan_repair(&data[..head_len], data.len() as u64)?;
    data.truncate(plan.truncate_to as usize);
    data[4..8].copy_from_slice(&plan.riff_size.to_le_bytes());
    let off = plan.layout.data_size_offset() as usize;
    data[off..off + 4].copy_from_slice(&plan.data_size.to_le_bytes());
    Ok(plan.frames)
}
