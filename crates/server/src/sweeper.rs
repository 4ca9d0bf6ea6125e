//! Retention: recordings (file and sidecar) older than `[recording] retention_days` are
//! deleted, once at start-up and then every `sweep_interval_s`. Age counts from the end of
//! the recording (its start when it has no end). A recording whose sidecar says
//! `recording` is never deleted, however old; files without a readable sidecar are left
//! alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use crate::recordings_api::store;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SweepReport {
    pub(crate) deleted: usize,
    pub(crate) kept_in_progress: usize,
    pub(crate) failed: usize,
}

/// Deletes what is older than `retention` at `now`. Blocking.
pub(crate) fn sweep(root: &Path, retention: Duration, now: SystemTime) -> SweepReport {
    let mut report = SweepReport::default();
    let Some(cutoff) = now.checked_sub(retention) else {
        return report;
    };
    for rec in store::scan(root) {
        if rec.age_reference() >= cutoff {
            continue;
        }
        if rec.in_progress() {
            report.kept_in_progress += 1;
            continue;
        }
        let age_days = now
            .duration_since(rec.age_reference())
            .map_or(0, |d| d.as_secs() / 86_400);
        match store::delete(&rec.media, Some(&rec.sidecar_path)) {
            Ok(()) => {
                report.deleted += 1;
                info!(
                    event = "retention",
                    recording_uuid = %rec.sidecar.recording_uuid,
                    call_uuid = %rec.sidecar.call_uuid,
                    path = %rec.media.display(),
                    age_days,
                    "deleted a recording past its retention"
                );
            }
            Err(e) => {
                report.failed += 1;
                warn!(path = %rec.media.display(), error = %e, "could not delete an expired recording");
            }
        }
    }
    report
}

/// Runs [`sweep`] now and then every `interval`, for ever (abort the task to stop it).
pub(crate) async fn run(root: PathBuf, retention: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = root.clone();
        let report =
            tokio::task::spawn_blocking(move || sweep(&dir, retention, SystemTime::now())).await;
        match report {
            Ok(r) if r.deleted + r.failed + r.kept_in_progress > 0 => info!(
                deleted = r.deleted,
                failed = r.failed,
                kept_in_progress = r.kept_in_progress,
                retention_days = retention.as_secs() / 86_400,
                "retention sweep"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "retention sweep did not finish"),
        }
    }
}
