//! Graceful shutdown: SIGTERM during 10 active SIPp calls. New INVITEs get 503 with
//! Retry-After, the calls go on for the grace period, then every call is hung up, every
//! recording is finalized and playable with the caller's tone up to the hang-up, every
//! event (record, completed) is committed to the queue, and the process exits 0. A second
//! signal cuts the grace period short.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::http::{bodies, Dispatcher, Receiver, Reply};
use crate::common::*;

/// Sends `signal` (e.g. `-TERM`) to the server process.
fn signal(server: &Server, signal: &str) {
    let pid = server.child.as_ref().expect("server running").id();
    let st = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success());
}

/// Waits (bounded) for the server to exit; its exit status.
fn wait_exit(server: &mut Server, limit: Duration) -> std::process::ExitStatus {
    let child = server.child.as_mut().expect("server running");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            server.child = None;
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit within {limit:?}:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts SIPp placing `calls` calls at once that would last `pause_ms` (in the background).
fn spawn_calls(server: &Server, sipp: &Sipp, calls: u32) -> Child {
    Command::new("sipp")
        .arg(server.sip.to_string())
        .arg("-sf")
        .arg(&sipp.scenario)
        .args(["-i", &server.ip.to_string(), "-p", "5070"])
        .args(["-mi", &server.ip.to_string(), "-mp", "16000"])
        .args(["-m", &calls.to_string(), "-l", &calls.to_string()])
        .args(["-r", "20", "-s", "100", "-nostdin", "-timeout", "90s"])
        .current_dir(sipp.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp")
}

/// Waits until `n` calls are up (`/healthz` active_calls).
fn wait_active(server: &Server, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let active = http_get(server.http, "/healthz")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["active_calls"].as_u64())
            .unwrap_or(0);
        if active >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{active} of {n} calls up:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A raw INVITE from `ip`; the final response's first line and headers.
fn invite(ip: std::net::IpAddr, target: std::net::SocketAddr) -> Option<String> {
    let msg = format!(
        "INVITE sip:200@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ip}:5999;rport;branch=z9hG4bK-late-1\r\n\
         From: <sip:late@{ip}>;tag=late1\r\n\
         To: <sip:200@{target}>\r\n\
         Call-ID: late-invite@{ip}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:late@{ip}:5999>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let reply = udp_exchange(ip, target, msg.as_bytes(), Duration::from_secs(3))?;
    Some(String::from_utf8_lossy(&reply).to_string())
}

#[test]
fn sigterm_during_ten_calls_finalizes_every_recording_and_commits_every_event() {
    let ip = unique_ip();
    let events = Receiver::start(ip, |_| Reply::ok());
    let grace = 3u64;
    let mut server = Server::start(ServerOptions {
        extra_args: vec![
            "--event-url".into(),
            events.url("/event"),
            "--shutdown-grace".into(),
            grace.to_string(),
        ],
        ..ServerOptions::default()
    });
    // The callers send a tone for longer than the calls last.
    let sipp = Sipp::tone_caller(1000, 20.0, 30000);
    let mut sipp_child = spawn_calls(&server, &sipp, 10);
    wait_active(&server, 10);
    std::thread::sleep(Duration::from_secs(1));

    let term_at = Instant::now();
    signal(&server, "-TERM");
    std::thread::sleep(Duration::from_millis(300));
    // A new call is refused while the others go on.
    let reply = invite(ip, server.sip).expect("an answer to the late INVITE");
    assert!(
        reply.starts_with("SIP/2.0 503"),
        "late INVITE answered {reply}"
    );
    assert!(reply.contains("Retry-After:"), "{reply}");
    let (_, health) = http_get(server.http, "/healthz").expect("still serving during grace");
    assert!(health.contains("\"active_calls\":10"), "{health}");
    let (_, metrics) = http_get(server.http, "/metrics").expect("metrics");
    assert!(metrics.contains("callmux_draining 1"), "{metrics}");

    let status = wait_exit(&mut server, Duration::from_secs(grace + 30));
    let took = term_at.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_secs(grace),
        "exited {took:?} after SIGTERM, before the {grace} s grace period"
    );
    let log = server.log_text();
    assert!(log.contains("grace period over"), "{log}");
    let _ = wait_child(&mut sipp_child, Duration::from_secs(20));

    // Every recording finalized and playable, the tone throughout, up to the hang-up.
    let recs = server.recordings();
    assert_eq!(recs.len(), 10, "{recs:?}");
    for r in &recs {
        assert_eq!(
            sidecar_state(r).as_deref(),
            Some("complete"),
            "{}",
            r.display()
        );
        let wav = hound::WavReader::open(r).expect("hound opens the recording");
        assert_eq!(wav.spec().channels, 2);
        let a = analyze(r);
        let secs = a.duration_ms as f64 / 1000.0;
        // Answered before SIGTERM (about 1 s earlier or more), hung up after the grace period.
        assert!(
            (grace as f64 + 0.5..grace as f64 + 5.0).contains(&secs),
            "{} lasts {secs} s",
            r.display()
        );
        let caller = &a.per_channel[0];
        let dom = caller.dominant_hz.expect("caller channel has a tone");
        assert!((dom - 1000.0).abs() <= 5.0, "{dom} Hz in {}", r.display());
        assert!(
            caller.voiced_ms as f64 >= a.duration_ms as f64 - 200.0,
            "tone for {} of {} ms in {}",
            caller.voiced_ms,
            a.duration_ms,
            r.display()
        );
    }

    // Every event reached the queue: a dispatcher started now delivers a record and a
    // completed event for each of the 10 calls.
    let data = server.dir.path().join("data");
    let log_path: PathBuf = server.dir.path().join("dispatch.log");
    let _dispatcher = Dispatcher::start(&["--data".into(), data.display().to_string()], &log_path);
    let reqs = events.wait_until(
        Duration::from_secs(20),
        "10 record and 10 completed events",
        |reqs| {
            let b = bodies(reqs, "/event");
            let records = b.iter().filter(|e| e["recording_url"].is_string()).count();
            let completed = b.iter().filter(|e| e["status"] == "completed").count();
            records >= 10 && completed >= 10
        },
    );
    let b = bodies(&reqs, "/event");
    let mut recorded: Vec<String> = b
        .iter()
        .filter_map(|e| e["recording_uuid"].as_str().map(str::to_string))
        .collect();
    recorded.sort();
    recorded.dedup();
    let mut on_disk: Vec<String> = recs
        .iter()
        .map(|r| r.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    on_disk.sort();
    assert_eq!(recorded, on_disk, "record events name the files on disk");
}

#[test]
fn a_second_signal_cuts_the_grace_period_short() {
    let mut server = Server::start(ServerOptions {
        extra_args: vec!["--shutdown-grace".into(), "120".into()],
        ..ServerOptions::default()
    });
    let sipp = Sipp::tone_caller(440, 20.0, 60000);
    let mut sipp_child = spawn_calls(&server, &sipp, 2);
    wait_active(&server, 2);
    signal(&server, "-TERM");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(server.alive(), "exited during the grace period");
    let second = Instant::now();
    signal(&server, "-INT");
    let status = wait_exit(&mut server, Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert!(second.elapsed() < Duration::from_secs(10));
    assert!(server.log_text().contains("second signal"));
    let _ = wait_child(&mut sipp_child, Duration::from_secs(20));
    let recs = server.recordings();
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(sidecar_state(r).as_deref(), Some("complete"));
        hound::WavReader::open(r).expect("playable");
    }
}
