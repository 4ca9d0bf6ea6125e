//! Retention: the sweeper deletes recordings (file and sidecar) past the retention, logs
//! each deletion, and never touches a recording still being recorded, a recent one, or a
//! file without a sidecar.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::api::clone_recording;
use super::*;
use crate::common::*;

fn gone(p: &Path) -> bool {
    !p.exists() && !p.with_extension("json").exists()
}

fn whole(p: &Path) -> bool {
    p.exists() && p.with_extension("json").exists()
}

#[test]
fn sweeper_deletes_only_expired_finished_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerOptions {
        extra_args: config_args(
            dir.path(),
            "[recording]\nretention_days = 30\nsweep_interval_s = 1\n",
        ),
        ..Default::default()
    });
    call_ok(&server, &["--tone", "440", "--seconds", "2"]);
    let real = server.wait_recordings(1, Duration::from_secs(10))[0].clone();
    let root = server.recordings_dir();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let old = now - day * 40;
    let expired = clone_recording(&root, &real, "old-complete", "c1", "v1", old, "complete");
    let expired_failed = clone_recording(&root, &real, "old-failed", "c2", "v2", old, "failed");
    let expired_recovered =
        clone_recording(&root, &real, "old-recovered", "c3", "v3", old, "recovered");
    // Still "recording" after 40 days (a writer that never finished): kept.
    let in_progress = clone_recording(&root, &real, "old-recording", "c4", "v4", old, "recording");
    let recent = clone_recording(
        &root,
        &real,
        "recent",
        "c5",
        "v5",
        now - day * 29,
        "complete",
    );
    // An audio file without a sidecar is not ours to judge.
    let orphan = expired.with_file_name("orphan.wav");
    std::fs::copy(&real, &orphan).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while !(gone(&expired) && gone(&expired_failed) && gone(&expired_recovered)) {
        assert!(
            Instant::now() < deadline,
            "expired recordings still there; log:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Another sweep or two: the rest stays.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        whole(&in_progress),
        "a recording in state recording was deleted"
    );
    assert!(
        whole(&recent),
        "a recording inside the retention was deleted"
    );
    assert!(whole(&real), "today's recording was deleted");
    assert!(orphan.exists(), "a file without sidecar was deleted");
    let log = server.log_text();
    for id in ["old-complete", "old-failed", "old-recovered"] {
        assert!(
            log.lines()
                .any(|l| l.contains("deleted a recording past its retention") && l.contains(id)),
            "no deletion line for {id}:\n{log}"
        );
    }
    assert!(!log.contains("recording_uuid=recent"), "{log}");
}

#[test]
fn retention_zero_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerOptions {
        extra_args: {
            let mut a = config_args(dir.path(), "[recording]\nsweep_interval_s = 1\n");
            a.extend(["--retention-days".into(), "0".into()]);
            a
        },
        ..Default::default()
    });
    call_ok(&server, &["--tone", "440", "--seconds", "2"]);
    let real = server.wait_recordings(1, Duration::from_secs(10))[0].clone();
    let ancient = SystemTime::now() - Duration::from_secs(86_400 * 4000);
    let kept = clone_recording(
        &server.recordings_dir(),
        &real,
        "ancient",
        "c",
        "v",
        ancient,
        "complete",
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(whole(&kept));
}
