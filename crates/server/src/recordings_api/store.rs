//! Recordings on disk, as the API and the retention sweeper see them: each is a media file
//! `{root}/YYYY/MM/DD/{uuid}.{wav,mp3,ogg}` next to its sidecar `{uuid}.json` (written by
//! `callmux_record`). Blocking file-system calls: run them off the async threads.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use callmux_record::sidecar::valid_uuid;
use callmux_record::{Sidecar, SidecarState};

/// A recording found on disk.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The audio file (may not exist yet for a recording that failed at once).
    pub(crate) media: PathBuf,
    /// `{uuid}.json`.
    pub(crate) sidecar_path: PathBuf,
    /// The parsed sidecar.
    pub(crate) sidecar: Sidecar,
}

impl Stored {
    /// Whether the file is still being written.
    pub(crate) fn in_progress(&self) -> bool {
        self.sidecar.state == SidecarState::Recording
    }

    /// When the recording ended, or started if it has no end (for retention).
    pub(crate) fn age_reference(&self) -> SystemTime {
        self.sidecar.end_time.unwrap_or(self.sidecar.start_time)
    }

    /// Bytes on disk now (the final size once ended; what was written so far before).
    pub(crate) fn size_on_disk(&self) -> u64 {
        std::fs::metadata(&self.media).map_or(0, |m| m.len())
    }
}

/// Media extensions, in the order they are looked for.
const EXTENSIONS: [&str; 3] = ["wav", "mp3", "ogg"];

/// Directories below `dir`, newest (largest name) first.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

/// Every `YYYY/MM/DD` directory, newest first.
fn day_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for y in subdirs(root) {
        for m in subdirs(&y) {
            out.extend(subdirs(&m));
        }
    }
    out
}

/// The media file of recording `id`, and its sidecar if there is one. `None` for an id
/// that is not a safe file name or is not on disk.
pub(crate) fn find(root: &Path, id: &str) -> Option<(PathBuf, Option<Stored>)> {
    if !valid_uuid(id) {
        return None;
    }
    for day in day_dirs(root) {
        let sidecar_path = day.join(format!("{id}.json"));
        let sidecar = Sidecar::load(&sidecar_path).ok();
        let media = match &sidecar {
            Some(s) => Some(day.join(format!("{id}.{}", s.format.extension()))),
            None => EXTENSIONS
                .iter()
                .map(|ext| day.join(format!("{id}.{ext}")))
                .find(|p| p.is_file()),
        };
        let Some(media) = media else {
            continue;
        };
        if !media.is_file() && sidecar.is_none() {
            continue;
        }
        let stored = sidecar.map(|sidecar| Stored {
            media: media.clone(),
            sidecar_path,
            sidecar,
        });
        return Some((media, stored));
    }
    None
}

/// Every recording with a readable sidecar. Sidecars that do not parse are skipped (and
/// logged at debug): they are not deleted or listed.
pub(crate) fn scan(root: &Path) -> Vec<Stored> {
    let mut out = Vec::new();
    for day in day_dirs(root) {
        let Ok(rd) = std::fs::read_dir(&day) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !valid_uuid(stem) {
                continue;
            }
            match Sidecar::load(&path) {
                Ok(sidecar) if sidecar.recording_uuid == stem => out.push(Stored {
                    media: day.join(format!("{stem}.{}", sidecar.format.extension())),
                    sidecar_path: path,
                    sidecar,
                }),
                Ok(_) => tracing::debug!(path = %path.display(), "sidecar names another recording"),
                Err(e) => tracing::debug!(path = %path.display(), error = %e, "unreadable sidecar"),
            }
        }
    }
    out
}

/// Removes the media file, then the sidecar (so a crash in between leaves a sidecar that
/// the next sweep removes, never an unlisted file).
pub(crate) fn delete(media: &Path, sidecar: Option<&Path>) -> io::Result<()> {
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    gone(std::fs::remove_file(media))?;
    if let Some(s) = sidecar {
        gone(std::fs::remove_file(s))?;
    }
    Ok(())
}
