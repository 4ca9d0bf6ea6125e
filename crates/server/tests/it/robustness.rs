//! Nothing already recorded is lost: kill -9 mid-call, a full disk; plus SIP over TCP and
//! RFC 4733 DTMF from the captures that sip-tester ships.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// Waits until the first recording appears and returns its path.
fn first_recording(server: &Server) -> std::path::PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = server.recordings().into_iter().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "no recording appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Python's `wave` module opens the file (stereo PCM) and reports its frame count.
fn python_wave_frames(path: &std::path::Path) -> u64 {
    require_tool("python3");
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sys, wave; w = wave.open(sys.argv[1]); print(w.getnframes(), w.getnchannels(), w.getframerate())")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python wave cannot open {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let frames: u64 = it.next().unwrap().parse().unwrap();
    assert_eq!(it.next(), Some("2"));
    assert_eq!(it.next(), Some("16000"));
    frames
}

fn sox_opens(path: &std::path::Path) {
    require_tool("sox");
    let out = Command::new("sox").arg("--i").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "sox cannot open {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kill_9_mid_recording_loses_at_most_the_last_second() {
    let mut server = Server::start(ServerOptions::default());
    let ip = server.ip;
    let uri = server.uri("100");
    let caller =
        std::thread::spawn(move || callmux_call(ip, &uri, &["--tone", "440", "--seconds", "6"]));
    let path = first_recording(&server);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(3500));
    let killed_after = started.elapsed();
    server.kill9();
    let _ = caller.join();
    assert_eq!(sidecar_state(&path).as_deref(), Some("recording"));

    // After a restart the file is repaired, marked recovered, and its record event produced.
    let restarted = server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sidecar_state(&path).as_deref() != Some("recovered") {
        assert!(
            Instant::now() < deadline,
            "not recovered: {:?}\n{}",
            sidecar_state(&path),
            restarted.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sox_opens(&path);
    let frames = python_wave_frames(&path);
    let a = analyze(&path);
    let voiced = a.per_channel[0].voiced_ms;
    let expected_min = killed_after.as_millis() as u64 - 1000 - 100;
    assert!(
        voiced >= expected_min,
        "recovered file holds {voiced} ms of tone, killed after {} ms",
        killed_after.as_millis()
    );
    assert!(frames >= expected_min * 16);
    assert_tone(&a, 0, 440.0, "recovered file");
    let sc = sidecar(&path);
    assert!(sc["end_time"].is_string(), "{sc}");
    assert!(sc["size"].as_u64().unwrap() > 44, "{sc}");
    let log = restarted.log_text();
    assert!(
        log.contains("recovered") && log.contains(path.file_stem().unwrap().to_str().unwrap()),
        "no record event for the recovered file in the log:\n{log}"
    );
}

/// A tmpfs mounted for the duration of a test (needs root, as CI runs).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Self {
        let uid = Command::new("id").arg("-u").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the full-disk test mounts a small tmpfs and must run as root (CI does)"
        );
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs failed");
        Self(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_recording_cleanly_and_the_call_goes_on() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    // Room for about 3 s of 16 kHz stereo (64 kB/s) plus the sidecar.
    let _fs = Tmpfs::mount(&dir.path().join("recordings"), "200k");
    let server = Server::start_in(std::sync::Arc::clone(&dir), ServerOptions::default(), None);
    let out = call_ok(&server, &["--tone", "440", "--seconds", "6"]);
    let stderr = stderr_of(&out);
    assert!(
        !stderr.contains("the other side hung up"),
        "the call must go on when its recording fails: {stderr}"
    );
    let path = first_recording(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sidecar_state(&path).as_deref() == Some("recording") {
        assert!(
            Instant::now() < deadline,
            "sidecar still 'recording'\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sc = sidecar(&path);
    assert_eq!(sc["state"], "failed", "{sc}");
    let reason = sc["reason"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        reason.contains("space"),
        "reason should name the full disk: {reason}"
    );
    // What was written before the disk filled up is a playable WAV with the tone.
    sox_opens(&path);
    let a = analyze(&path);
    assert_tone_for(&a, 0, 440.0, 1000, "written before the disk filled up");
    assert!(server.log_text().contains("record_failed"));
}

#[test]
fn sipp_over_tcp_is_recorded() {
    let server = Server::start(ServerOptions::default());
    Sipp::tone_caller(600, 3.0, 3000).run_ok(
        &server,
        &["-t", "t1", "-m", "1", "-s", "100"],
        Duration::from_secs(30),
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_tone(&a, 0, 600.0, "caller over TCP");
    assert_voiced(&a, 0, 2900..=3200, "caller over TCP");
}

#[test]
fn end_on_key_from_the_sip_tester_rfc4733_captures() {
    for (pcap, key) in [("dtmf_2833_1.pcap", "1"), ("dtmf_2833_pound.pcap", "#")] {
        let server = Server::start(ServerOptions {
            ncco: Some(format!(
                r#"[{{"action":"record","split":"conversation","endOnKey":"{key}"}}]"#
            )),
            ..Default::default()
        });
        let path = format!("/usr/share/sip-tester/{pcap}");
        assert!(
            std::path::Path::new(&path).exists(),
            "{path} missing (apt-get install sip-tester)"
        );
        let sipp = Sipp::prepare(
            "uac_dtmf_pcap.xml",
            &[("PCAP", path), ("DELAY_MS", "1000".into())],
        );
        let t0 = Instant::now();
        let out = sipp.run(
            server.ip,
            server.sip,
            &["-m", "1", "-s", "100"],
            Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "{pcap}: the server did not hang up after the key: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            server.log_text()
        );
        assert!(t0.elapsed() < Duration::from_secs(8));
        let recs = server.wait_recordings(1, Duration::from_secs(10));
        let sc = sidecar(&recs[0]);
        assert_eq!(sc["state"], "complete");
        let a = analyze(&recs[0]);
        // Ended by the key about a second in, not by a time-out.
        assert!(a.duration_ms < 3000, "{pcap}: {} ms", a.duration_ms);
        let log = server.log_text();
        assert_eq!(
            log.matches(&format!("digit={key}")).count(),
            1,
            "{pcap}: the key must be reported exactly once:\n{log}"
        );
    }
}
