//! The first recorded call, end to end: the real binary, dialled by `callmux call` and by
//! SIPp over loopback, leaves a stereo WAV with the caller's tone left and silence right.

use std::time::{Duration, Instant};

use crate::common::*;

/// Asserts the split layout of a recording of a caller who sent `freq` for `seconds`.
/// The caller's tone left, silence right (what the caller heard), both as long as the media
/// sent (± 100 ms, and 60 ms more for the file).
fn assert_split_tone(path: &std::path::Path, freq: f64, seconds: f64) {
    let a = analyze(path);
    let what = format!(
        "{} (the caller sent {seconds} s of {freq} Hz)",
        path.display()
    );
    assert_eq!(a.sample_rate, 16_000, "{what}");
    assert_split_caller_tone(&a, freq, &what);
    let ms = (seconds * 1000.0).round() as u64;
    assert_voiced(&a, 0, ms - 100..=ms + 100, &what);
    assert_duration(&a, ms - 160..=ms + 160, &what);
}

#[test]
fn callmux_call_is_recorded_split() {
    let server = Server::start(ServerOptions::default());
    call_ok(&server, &["--tone", "440", "--seconds", "3"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    assert_eq!(recs.len(), 1);
    assert_split_tone(&recs[0], 440.0, 3.0);

    // Layout on disk: {recordings}/YYYY/MM/DD/{uuid}.wav with a JSON sidecar naming the leg.
    let rel = recs[0].strip_prefix(server.recordings_dir()).unwrap();
    let parts: Vec<_> = rel
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    assert_eq!(parts.len(), 4, "{rel:?}");
    assert_eq!(parts[0].len(), 4);
    assert_eq!(parts[1].len(), 2);
    assert_eq!(parts[2].len(), 2);
    let sc = sidecar(&recs[0]);
    assert_eq!(sc["state"], "complete");
    assert_eq!(sc["channels"], 2);
    assert_eq!(sc["layout"], "split");
    assert_eq!(
        sc["recording_uuid"].as_str().unwrap(),
        recs[0].file_stem().unwrap().to_str().unwrap()
    );
    let legs = &sc["channel_map"][0]["legs"];
    assert_eq!(legs[0]["from"], "callmux", "{sc}");
    assert_eq!(legs[0]["to"], "100", "{sc}");
}

#[test]
fn sipp_call_is_recorded_split() {
    let server = Server::start(ServerOptions::default());
    Sipp::tone_caller(1000, 3.0, 3000).run_ok(
        &server,
        &["-m", "1", "-s", "200"],
        Duration::from_secs(30),
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    assert_split_tone(&recs[0], 1000.0, 3.0);
}

#[test]
fn recording_is_playable_while_the_call_runs() {
    let server = Server::start(ServerOptions::default());
    let ip = server.ip;
    let uri = server.uri("100");
    let caller =
        std::thread::spawn(move || callmux_call(ip, &uri, &["--tone", "700", "--seconds", "4"]));
    // Two seconds into the call, the file on disk must already be a valid WAV holding most
    // of what was sent so far (header patched at least once a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    let path = loop {
        if let Some(p) = server.recordings().into_iter().next() {
            break p;
        }
        assert!(Instant::now() < deadline, "no recording appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(sidecar_state(&path).as_deref(), Some("recording"));
    let snapshot = server.dir.path().join("snapshot.wav");
    std::fs::copy(&path, &snapshot).unwrap();
    let a = analyze(&snapshot);
    assert_channels(&a, 2, "mid-call file");
    assert_duration(&a, 1000.., "mid-call file");
    assert_tone(&a, 0, 700.0, "mid-call file");
    let out = caller.join().unwrap();
    assert!(out.status.success());
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    assert_split_tone(&recs[0], 700.0, 4.0);
}

#[test]
fn a_gap_in_the_stream_is_silence_in_the_file() {
    let server = Server::start(ServerOptions::default());
    // 4 s of tone with no packets from 1.5 s to 2.5 s (timestamps keep running, as in DTX).
    call_ok(
        &server,
        &["--tone", "500", "--seconds", "4", "--gap", "1.5,1.0"],
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    let left = &a.per_channel[0];
    // 3 s of tone, and the file still lasts 4 s: the gap was kept, not collapsed.
    assert_voiced(&a, 0, 2900..=3100, "caller with a 1 s gap");
    assert_duration(&a, 3840..=4160, "caller with a 1 s gap");
    // The silent stretch sits where the gap was.
    let silent_windows: Vec<u64> = left
        .windows
        .iter()
        .filter(|w| w.rms_dbfs < -50.0)
        .map(|w| w.start_ms)
        .collect();
    let in_gap = silent_windows
        .iter()
        .filter(|&&t| (1500..2500).contains(&t))
        .count();
    assert!(in_gap >= 9, "silent windows {silent_windows:?}");
}

#[test]
fn fifty_concurrent_sipp_calls_are_all_recorded() {
    let server = Server::start(ServerOptions::default());
    Sipp::tone_caller(440, 4.0, 4000).run_ok(
        &server,
        &["-m", "50", "-l", "50", "-r", "25", "-s", "100"],
        Duration::from_secs(60),
    );
    let recs = server.wait_recordings(50, Duration::from_secs(20));
    assert_eq!(recs.len(), 50);
    for r in &recs {
        assert_split_tone(r, 440.0, 4.0);
    }
}
