//! SIGHUP reloads the ACLs (and trunks and users) from the config file for new calls,
//! without touching the call in progress; a file with a mistake is logged and the old
//! settings stay.

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

/// The status code of the final answer to a new INVITE from `ip`.
fn invite_status(ip: IpAddr, target: SocketAddr, n: u32) -> u16 {
    let msg = format!(
        "INVITE sip:200@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ip}:5999;rport;branch=z9hG4bK-reload-{n}\r\n\
         From: <sip:probe@{ip}>;tag=probe{n}\r\n\
         To: <sip:200@{target}>\r\n\
         Call-ID: reload-probe-{n}@{ip}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:probe@{ip}:5999>\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let reply = udp_exchange(ip, target, msg.as_bytes(), Duration::from_secs(3))
        .expect("an answer to the INVITE");
    let text = String::from_utf8_lossy(&reply);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {text}"))
}

#[test]
fn sighup_reloads_acls_for_new_calls_keeps_the_call_in_progress_and_survives_a_bad_file() {
    let ip = unique_ip();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = dir.path().join("callmux.toml");
    let allow_me = format!("[sip]\nacl = [\"{ip}/32\"]\n");
    std::fs::write(&cfg, &allow_me).unwrap();
    let server = Server::start_in(
        Arc::clone(&dir),
        ServerOptions {
            extra_args: vec!["--config".into(), cfg.display().to_string()],
            ..ServerOptions::default()
        },
        Some(ip),
    );

    // A call from the allowed address, 6 s of tone.
    let seconds = 6.0;
    let sipp = Sipp::tone_caller(700, seconds, 6000);
    let mut call = Command::new("sipp")
        .arg(server.sip.to_string())
        .arg("-sf")
        .arg(&sipp.scenario)
        .args(["-i", &ip.to_string(), "-p", "5070"])
        .args(["-mi", &ip.to_string(), "-mp", "16000"])
        .args(["-m", "1", "-s", "200", "-nostdin", "-timeout", "30s"])
        .current_dir(sipp.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log_text().contains("call answered") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Reload: only 10.9.9.9 may call now. New INVITEs from us get 403.
    std::fs::write(&cfg, "[sip]\nacl = [\"10.9.9.9/32\"]\n").unwrap();
    server.sighup();
    server.wait_log("configuration reloaded", 1);
    assert_eq!(invite_status(ip, server.sip, 1), 403);

    // A file with a mistake: logged, and the last good settings stay (still 403, not open).
    std::fs::write(&cfg, "[sip]\nacl = [\"10.0.0.0/33\"]\n").unwrap();
    server.sighup();
    server.wait_log("configuration reload failed", 1);
    assert!(
        server.log_text().contains("sip.acl"),
        "{}",
        server.log_text()
    );
    assert_eq!(invite_status(ip, server.sip, 2), 403);

    // The call that was up all along ends normally, recorded from start to end.
    let status = wait_child(&mut call, Duration::from_secs(30)).expect("sipp ends");
    assert!(status.success(), "the call in progress failed");
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    let voiced = a.per_channel[0].voiced_ms as f64 / 1000.0;
    assert!(
        (voiced - seconds).abs() <= 0.2,
        "{voiced} s of the caller's {seconds} s tone recorded"
    );
    let dom = a.per_channel[0].dominant_hz.expect("tone");
    assert!((dom - 700.0).abs() <= 5.0, "{dom}");

    // Back to allowing us: new INVITEs pass the ACL again.
    std::fs::write(&cfg, &allow_me).unwrap();
    server.sighup();
    server.wait_log("configuration reloaded", 2);
    assert_ne!(invite_status(ip, server.sip, 3), 403);
}

#[test]
fn sighup_adds_a_trunk_that_the_next_call_is_routed_through() {
    let ip = unique_ip();
    // The "carrier": a UAS answering with a 1000 Hz tone.
    let mut carrier = Answerer::start(ip, 5081, &["--tone", "1000", "--calls", "1"]);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = dir.path().join("callmux.toml");
    // At first no trunk carries +1…
    let no_route =
        "[[trunk]]\nname = \"other\"\nuri = \"sip:{number}@192.0.2.1:5060\"\nnumbers = [\"44*\"]\n";
    std::fs::write(&cfg, no_route).unwrap();
    let ncco = r#"[{"action":"record","split":"conversation"},{"action":"connect","endpoint":[{"type":"phone","number":"+15551234567"}]}]"#;
    let server = Server::start_in(
        Arc::clone(&dir),
        ServerOptions {
            ncco: Some(ncco.into()),
            extra_args: vec!["--config".into(), cfg.display().to_string()],
            ..ServerOptions::default()
        },
        Some(ip),
    );
    let call = || {
        let out = callmux_call(ip, &server.uri("100"), &["--tone", "440", "--seconds", "3"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    call();
    let first = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&first[0]);
    assert!(
        a.per_channel[1].dominant_hz.is_none(),
        "nothing to bridge to before the reload: {:?}",
        a.per_channel[1]
    );
    assert!(
        server.log_text().contains("no [[trunk]] carries"),
        "{}",
        server.log_text()
    );

    // … then the carrier's trunk is added and the server told.
    std::fs::write(
        &cfg,
        format!("{no_route}\n[[trunk]]\nname = \"carrier\"\nuri = \"sip:{{number}}@{ip}:5081\"\nnumbers = [\"1*\"]\n"),
    )
    .unwrap();
    server.sighup();
    server.wait_log("configuration reloaded", 1);
    assert!(
        server.log_text().contains("trunks=2"),
        "{}",
        server.log_text()
    );
    call();
    let recs = server.wait_recordings(2, Duration::from_secs(10));
    let second = recs
        .iter()
        .find(|r| **r != first[0])
        .expect("the second recording");
    let f = analyze(second).per_channel[1]
        .dominant_hz
        .expect("the carrier's tone in channel 2 after the reload");
    assert!((f - 1000.0).abs() <= 5.0, "{f}");
    assert!(
        carrier.wait(Duration::from_secs(10)),
        "{}",
        carrier.log_text()
    );
}
