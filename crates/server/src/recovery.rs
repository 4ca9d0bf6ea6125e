//! Crash recovery of recordings, safe with a recordings directory shared by several hosts:
//! at start-up a host repairs at once the recordings it was itself writing when it crashed
//! (it notes each one in its own data directory while writing it), and any other unfinished
//! recording only once nothing has written it for [`STALE_AFTER`], at start-up or in the
//! periodic sweep. A live recording grows at least once a second, so a stale one has no
//! live writer left.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use callmux_webhook::RecordState;
use tracing::{debug, info, warn};

use crate::call::ServerContext;
use crate::config::Config;
use crate::events::EventSink;

/// Unfinished recordings nobody has written for this long belong to no live recorder (a
/// live one grows at least once a second) and are recovered.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// How often unfinished recordings are checked for staleness.
const STALE_SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Where this host notes the recordings it is writing: `{data}/live-recordings/{uuid}`,
/// each holding the media file's path. The data directory is per host, so a note found at
/// start-up is a recording of this host that a crash cut.
fn live_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("live-recordings")
}

/// This host's note that it is writing a recording; removed when dropped (the recording
/// was finalized or failed), left behind by a crash.
pub(crate) struct LiveMarker(Option<PathBuf>);

impl LiveMarker {
    /// Notes that this host writes `media` (blocking file I/O: call it off the hot path).
    pub(crate) fn create(data_dir: &Path, uuid: &str, media: &Path) -> Self {
        let dir = live_dir(data_dir);
        let note = dir.join(uuid);
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&note, media.as_os_str().as_encoded_bytes()));
        match written {
            Ok(()) => Self(Some(note)),
            Err(e) => {
                // Only recovery speed depends on it: without the note a crash-cut file is
                // recovered after STALE_AFTER instead of at the next start.
                warn!(error = %e, path = %note.display(), "cannot note a live recording");
                Self(None)
            }
        }
    }
}

impl Drop for LiveMarker {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// At start-up: the recording_uuids of the recordings this host was writing when it
/// crashed (nothing else writes them: they are this host's), to be recovered at once; their
/// notes are removed.
pub(crate) fn claim_own_unfinished(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(live_dir(data_dir)) else {
        return Vec::new();
    };
    let mut own = Vec::new();
    for entry in entries.flatten() {
        let note = entry.path();
        if let Some(uuid) = note.file_name().and_then(|n| n.to_str()) {
            debug!(
                recording_uuid = uuid,
                "own unfinished recording: recovered at once"
            );
            own.push(uuid.to_string());
        }
        let _ = std::fs::remove_file(&note);
    }
    own
}

/// Recovers the unfinished recordings no live recorder writes (see STALE_AFTER), and
/// those of `own` (this host's, cut by a crash) whatever their age, and announces each to
/// the application's event URL.
pub(crate) async fn recover_stale(config: &Config, events: &EventSink, own: Vec<String>) {
    let options = callmux_record::RecoverOptions {
        skip_modified_within: STALE_AFTER,
        own,
    };
    let results = tokio::task::block_in_place(|| {
        callmux_record::recover_unfinished_with(&config.recordings_dir, SystemTime::now(), options)
    });
    for result in results {
        match result {
            Ok(s) => {
                info!(
                    event = "record",
                    state = "recovered",
                    recording_uuid = %s.recording_uuid,
                    call_uuid = %s.call_uuid,
                    path = %s.path.display(),
                    size = s.size,
                    duration_ms = s.duration.as_millis() as u64,
                    "recovered a recording left unfinished by a crash"
                );
                // The record action's own eventUrl is not kept on disk: the recovered
                // recording is announced to the application's event URL.
                let ev = crate::serve::record_event(&s, config.http_listen, RecordState::Recovered);
                events
                    .emit(
                        &s.call_uuid,
                        config.event_url.as_deref(),
                        config.event_method,
                        &ev,
                    )
                    .await;
            }
            Err(e) => warn!(error = %e, "could not recover an unfinished recording"),
        }
    }
}

/// Every STALE_SWEEP_EVERY: recovers recordings that went stale meanwhile (a host sharing
/// the recordings directory died and is not coming back).
pub(crate) async fn sweep_stale(ctx: Arc<ServerContext>) {
    let mut tick = tokio::time::interval(STALE_SWEEP_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        recover_stale(&ctx.config, &ctx.events, Vec::new()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_lives_as_long_as_its_recording_and_a_leftover_one_is_claimed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let media = dir.path().join("rec.wav");
        std::fs::write(&media, b"RIFF").unwrap();

        // Finalized normally: the note goes with it.
        drop(LiveMarker::create(&data, "done", &media));
        assert!(!live_dir(&data).join("done").exists());

        // Cut by a crash: the note stays (forget = no drop), and at the next start it names
        // the recording to recover at once; the media file itself is left as it is.
        let before = std::fs::metadata(&media).unwrap().modified().unwrap();
        std::mem::forget(LiveMarker::create(&data, "cut", &media));
        assert!(live_dir(&data).join("cut").exists());
        assert_eq!(claim_own_unfinished(&data), vec!["cut".to_string()]);
        assert!(!live_dir(&data).join("cut").exists());
        assert_eq!(
            std::fs::metadata(&media).unwrap().modified().unwrap(),
            before
        );
        assert!(claim_own_unfinished(&data).is_empty());
    }
}
