//! Bridging end to end: `connect` to SIP endpoints (callmux answer UAS processes streaming
//! their own tones), every leg recorded in its own channel, transcoding, busy/no-answer/
//! cancel, and conferences with mix-minus.

use std::time::Duration;

use crate::common::*;

/// A server on `ip` recording split, then connecting to `uri`.
fn split_then_connect(ip: std::net::IpAddr, uri: &str) -> Server {
    Server::with_ncco_at(
        ip,
        &format!(
            r#"[{{"action":"record","split":"conversation"}},{}]"#,
            connect_ncco(uri)
        ),
    )
}

/// The seed's example: record with channels 3, then connects to parties at 1000, 1700 and
/// (optionally) 2500 Hz, each talking 2 s then hanging up. Each tone is only in its own
/// channel at the right time; a fourth party shares channel 3 with the third.
fn seed_example(fourth: bool) {
    let ip = unique_ip();
    let b = Answerer::tone(ip, 5081, 1000, 2);
    let c = Answerer::tone(ip, 5082, 1700, 2);
    let d = fourth.then(|| Answerer::tone(ip, 5083, 2500, 2));
    let mut actions = vec![
        r#"{"action":"record","split":"conversation","channels":3}"#.to_string(),
        connect_ncco(&b.uri("b")),
        connect_ncco(&c.uri("c")),
    ];
    if let Some(d) = &d {
        actions.push(connect_ncco(&d.uri("d")));
    }
    let server = Server::with_ncco_at(ip, &format!("[{}]", actions.join(",")));
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let save = heard.to_str().unwrap();
    let err = stderr_of(&call_ok(
        &server,
        &["--tone", "440", "--seconds", "20", "--save", save],
    ));
    assert!(
        err.contains("the other side hung up"),
        "the NCCO ends → callmux hangs up: {err}"
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_channels(&a, 3, "channels 3");
    // Channel 1: the caller throughout.
    assert_mostly(&tones(&a, 0), 440.0, 30, "ch1");
    // Channel 2: the first callee during its 2 s, silent afterwards.
    assert_mostly(&tones_between(&a, 1, 300, 1700), 1000.0, 10, "ch2");
    assert!(
        tones_between(&a, 1, 2400, a.duration_ms).is_empty(),
        "ch2 after B hung up"
    );
    // Channel 3: nothing before C, then C, then (with a fourth party) D in the same channel.
    assert!(tones_between(&a, 2, 0, 1900).is_empty(), "ch3 before C");
    assert_mostly(&tones_between(&a, 2, 2500, 3900), 1700.0, 10, "ch3 (C)");
    if fourth {
        assert_mostly(&tones_between(&a, 2, 4700, 6000), 2500.0, 10, "ch3 (D)");
    }
    // The sidecar names the legs in joining order.
    let sc = sidecar(&recs[0]);
    let map = sc["channel_map"].as_array().unwrap();
    assert_eq!(map[0]["legs"].as_array().unwrap().len(), 1, "{sc}");
    assert_eq!(map[1]["legs"][0]["to"], "b", "{sc}");
    assert_eq!(map[2]["legs"][0]["to"], "c", "{sc}");
    if fourth {
        assert_eq!(map[2]["legs"][1]["to"], "d", "{sc}");
    }
    // What the caller heard: B, then C.
    let h = analyze(&heard);
    assert_mostly(
        &tones_between(&h, 0, 300, 1700),
        1000.0,
        10,
        "caller heard B",
    );
    assert_mostly(
        &tones_between(&h, 0, 2500, 3900),
        1700.0,
        10,
        "caller heard C",
    );
}

#[test]
fn seed_example_three_channels() {
    seed_example(false);
}

#[test]
fn seed_example_fourth_party_shares_channel_three() {
    seed_example(true);
}

#[test]
fn split_in_a_bridged_call_puts_the_callee_right() {
    let ip = unique_ip();
    let b = Answerer::start(ip, 5081, &["--tone", "1000", "--calls", "1"]);
    let server = split_then_connect(ip, &b.uri("b"));
    call_ok(&server, &["--tone", "440", "--seconds", "3"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_channels(&a, 2, "split");
    assert_tone(&a, 0, 440.0, "caller");
    assert_tone_for(&a, 1, 1000.0, 2500, "callee");
}

#[test]
fn transcoding_pcmu_caller_to_pcma_and_opus_callees() {
    for codec in ["pcma", "opus"] {
        let ip = unique_ip();
        let dir = tempfile::tempdir().unwrap();
        let callee_heard = dir.path().join("callee-{n}.wav");
        let b = Answerer::start(
            ip,
            5081,
            &[
                "--tone",
                "1000",
                "--codec",
                codec,
                "--calls",
                "1",
                "--save",
                callee_heard.to_str().unwrap(),
            ],
        );
        let server = split_then_connect(ip, &b.uri("b"));
        let heard = dir.path().join("caller.wav");
        let save = heard.to_str().unwrap();
        let args = [
            "--tone",
            "440",
            "--seconds",
            "3",
            "--codec",
            "pcmu",
            "--save",
            save,
        ];
        call_ok(&server, &args);
        let recs = server.wait_recordings(1, Duration::from_secs(10));
        let a = analyze(&recs[0]);
        assert_tone(&a, 0, 440.0, &format!("{codec}: caller"));
        assert_tone(&a, 1, 1000.0, &format!("{codec}: callee"));
        // Each side heard the other's tone through the transcoder.
        let h = analyze(&heard);
        assert_tone_for(&h, 0, 1000.0, 2400, &format!("{codec}: caller heard"));
        let mut b = b;
        assert!(b.wait(Duration::from_secs(10)), "callee did not finish");
        let ch = analyze(&dir.path().join("callee-1.wav"));
        assert_tone(&ch, 0, 440.0, &format!("{codec}: callee heard"));
        assert!(
            b.log_text().contains(&format!(
                "with {}",
                if codec == "opus" { "Opus" } else { "Pcma" }
            )),
            "{}",
            b.log_text()
        );
    }
}

#[test]
fn busy_and_no_answer_let_the_ncco_continue() {
    let ip = unique_ip();
    let busy = Answerer::start(
        ip,
        5081,
        &["--reject", "486", "--ring-ms", "200", "--calls", "1"],
    );
    let silent = Answerer::start(ip, 5082, &["--ring-ms", "60000", "--calls", "1"]);
    let ok = Answerer::tone(ip, 5083, 1700, 1);
    let server = Server::with_ncco_at(
        ip,
        &format!(
            r#"[{{"action":"record","split":"conversation"}},{},{{"action":"connect","timeout":2,"endpoint":[{{"type":"sip","uri":"{}"}}]}},{}]"#,
            connect_ncco(&busy.uri("busy")),
            silent.uri("silent"),
            connect_ncco(&ok.uri("ok"))
        ),
    );
    let err = stderr_of(&call_ok(&server, &["--tone", "440", "--seconds", "20"]));
    assert!(err.contains("the other side hung up"), "{err}");
    let log = server.log_text();
    assert!(log.contains("outcome=\"busy\""), "{log}");
    assert!(log.contains("outcome=\"timeout\""), "{log}");
    assert!(
        silent.log_text().contains("cancelled while ringing"),
        "{}",
        silent.log_text()
    );
    // The third party was reached after the other two.
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_tone(&a, 1, 1700.0, "the third party");
}

#[test]
fn caller_hanging_up_while_ringing_cancels_the_callee() {
    let ip = unique_ip();
    let slow = Answerer::start(ip, 5081, &["--ring-ms", "60000", "--calls", "1"]);
    let server = Server::with_ncco_at(ip, &format!("[{}]", connect_ncco(&slow.uri("slow"))));
    call_ok(&server, &["--tone", "440", "--seconds", "2"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !slow.log_text().contains("cancelled while ringing") {
        assert!(
            std::time::Instant::now() < deadline,
            "callee not cancelled: {}\n{}",
            slow.log_text(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn callee_hangs_up_or_caller_hangs_up_and_both_legs_end() {
    // Caller hangs up first: the callee gets BYE.
    let ip = unique_ip();
    let b = Answerer::start(ip, 5081, &["--tone", "1000", "--calls", "1"]);
    let server = Server::with_ncco_at(ip, &format!("[{}]", connect_ncco(&b.uri("b"))));
    call_ok(&server, &["--tone", "440", "--seconds", "2"]);
    let mut b = b;
    assert!(
        b.wait(Duration::from_secs(10)),
        "callee still up: {}",
        b.log_text()
    );
    assert!(b.log_text().contains("RemoteHungUp"), "{}", b.log_text());
    assert!(
        server.wait_idle(),
        "calls still active:\n{}",
        server.log_text()
    );
}

#[test]
fn conference_of_three_is_mix_minus_and_recorded_per_participant() {
    let server = Server::with_ncco(r#"[{"action":"conversation","name":"room","record":true}]"#);
    let dir = tempfile::tempdir().unwrap();
    let tones = [440u32, 1000, 1700];
    let mut callers = Vec::new();
    for (i, hz) in tones.iter().enumerate() {
        let ip = server.ip;
        let uri = server.uri("100");
        let save = dir.path().join(format!("p{i}.wav"));
        let hz = hz.to_string();
        callers.push(std::thread::spawn(move || {
            // Staggered joins; everyone is in for at least 2 s together.
            std::thread::sleep(Duration::from_millis(300 * i as u64));
            callmux_call(
                ip,
                &uri,
                &[
                    "--tone",
                    &hz,
                    "--seconds",
                    &format!("{}", 4.0 - 0.3 * i as f64),
                    "--save",
                    save.to_str().unwrap(),
                ],
            )
        }));
    }
    for c in callers {
        let out = c.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (i, own) in tones.iter().enumerate() {
        let h = analyze(&dir.path().join(format!("p{i}.wav")));
        let heard = tones_between(&h, 0, 1000, 3000);
        let others: Vec<u32> = tones.iter().copied().filter(|t| t != own).collect();
        // Two tones mixed: the dominant is one of the others, never the participant's own.
        assert!(!heard.is_empty(), "participant {i} heard nothing");
        assert!(
            heard
                .iter()
                .all(|f| others.iter().any(|o| (f - f64::from(*o)).abs() <= 10.0)),
            "participant {i} ({own} Hz) heard {heard:?}"
        );
    }
    assert!(server.wait_idle(), "calls still active");
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    for (i, hz) in tones.iter().enumerate() {
        assert_mostly(
            &tones_between(&a, i, 1200, 2600),
            f64::from(*hz),
            8,
            &format!("conference channel {}", i + 1),
        );
    }
}
