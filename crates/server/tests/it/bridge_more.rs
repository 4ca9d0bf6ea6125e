//! More of bridging: the outbound leg's events at the event URL, RFC 4733 DTMF passed
//! through the bridge, trunks with digest authentication, and hold/resume by re-INVITE.

use std::time::Duration;

use crate::common::http::{HttpRequest, Receiver, Reply};
use crate::common::*;
use serde_json::Value;

fn events(receiver: &Receiver) -> Vec<Value> {
    receiver
        .requests_to("/events")
        .iter()
        .map(HttpRequest::json)
        .collect()
}

fn statuses_of(evs: &[Value], uuid: &str) -> Vec<String> {
    evs.iter()
        .filter(|e| e["uuid"] == uuid && e.get("status").is_some())
        .map(|e| e["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn outbound_leg_events_and_dtmf_pass_through_the_bridge() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_r: &HttpRequest| Reply::ok());
    let b = Answerer::tone(ip, 5081, 1000, 3);
    let busy = Answerer::start(ip, 5082, &["--reject", "486", "--calls", "1"]);
    let ncco = format!(
        r#"[{{"action":"connect","endpoint":[{{"type":"sip","uri":"{}"}}]}},{{"action":"connect","from":"15550001","endpoint":[{{"type":"sip","uri":"{}"}}]}}]"#,
        b.uri("bob"),
        busy.uri("busy")
    );
    let server = Server::start_in(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        ServerOptions {
            ncco: Some(ncco),
            extra_args: vec!["--event-url".into(), receiver.url("/events")],
            ..Default::default()
        },
        Some(ip),
    );
    call_with_digits(&server, "20", "7", "1", &[]);
    // The digit reached the callee through the bridge as RFC 4733.
    let mut b = b;
    assert!(b.wait(Duration::from_secs(10)));
    assert!(b.log_text().contains("received DTMF 7"), "{}", b.log_text());
    // Events: the caller's, then each outbound leg's, with direction outbound and the
    // caller's conversation.
    let evs = receiver.wait_until(Duration::from_secs(20), "call events", |reqs| {
        reqs.iter().filter(|r| r.path == "/events").any(|r| {
            let v = r.json();
            v["status"] == "completed" && v["direction"] == "inbound"
        })
    });
    let evs: Vec<Value> = evs
        .iter()
        .filter(|r| r.path == "/events")
        .map(HttpRequest::json)
        .collect();
    let caller = evs
        .iter()
        .find(|e| e["direction"] == "inbound")
        .expect("caller events");
    let conv = caller["conversation_uuid"].clone();
    let outbound: Vec<&Value> = evs
        .iter()
        .filter(|e| e["direction"] == "outbound")
        .collect();
    let bob = outbound
        .iter()
        .find(|e| e["to"] == "bob")
        .expect("bob's events")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let busy_leg = outbound
        .iter()
        .find(|e| e["to"] == "busy")
        .expect("busy leg's events")["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        statuses_of(&evs, &bob),
        ["started", "answered", "completed"],
        "{evs:#?}"
    );
    assert_eq!(
        statuses_of(&evs, &busy_leg),
        ["started", "ringing", "busy"],
        "{evs:#?}"
    );
    for e in &outbound {
        assert_eq!(e["conversation_uuid"], conv);
    }
    let completed = outbound
        .iter()
        .find(|e| e["uuid"] == bob.as_str() && e["status"] == "completed")
        .unwrap();
    let d: f64 = completed["duration"].as_str().unwrap().parse().unwrap();
    assert!((2.0..=4.0).contains(&d), "duration {d}");
    let busy_started = outbound
        .iter()
        .find(|e| e["uuid"] == busy_leg.as_str())
        .unwrap();
    assert_eq!(busy_started["from"], "15550001");
    drop(events(&receiver));
}

fn trunk_server(ip: std::net::IpAddr, password: &str, number_ncco: &str) -> Server {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let cfg = dir.path().join("callmux.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[trunk]]\nname = \"carrier\"\nuri = \"sip:{{number}}@{ip}:5090\"\nnumbers = [\"1*\"]\nfrom = \"15550000\"\nusername = \"callmux\"\npassword = \"{password}\"\n"
        ),
    )
    .unwrap();
    Server::start_in(
        dir,
        ServerOptions {
            ncco: Some(number_ncco.to_string()),
            extra_args: vec!["--config".into(), cfg.display().to_string()],
            ..Default::default()
        },
        Some(ip),
    )
}

#[test]
fn phone_numbers_go_through_a_trunk_with_digest_authentication() {
    let ncco = r#"[{"action":"record","split":"conversation"},{"action":"connect","endpoint":[{"type":"phone","number":"+15551234567"}]}]"#;
    for (password, expect_bridge) in [("s3cret", true), ("wrong", false)] {
        let ip = unique_ip();
        let dir = tempfile::tempdir().unwrap();
        let tone = ulaw_tone(dir.path(), 1700, 6.0);
        let uas = Sipp::prepare(
            "uas_auth.xml",
            &[
                ("TONE", tone.display().to_string()),
                ("USER", "callmux".into()),
                ("PASSWORD", "s3cret".into()),
            ],
        );
        let mut sipp = uas.spawn_uas(ip, 5090, 17000, &["-m", "1"]);
        std::thread::sleep(Duration::from_millis(300));
        let server = trunk_server(ip, password, ncco);
        call_ok(&server, &["--tone", "440", "--seconds", "3"]);
        let recs = server.wait_recordings(1, Duration::from_secs(10));
        let a = analyze(&recs[0]);
        if expect_bridge {
            assert_tone(&a, 1, 1700.0, "the trunk");
            assert!(wait_child(&mut sipp, Duration::from_secs(10)).is_some_and(|s| s.success()));
        } else {
            // 403 after the retry: the leg failed, nothing bridged, the NCCO went on.
            assert!(
                a.per_channel[1]
                    .dominant_hz
                    .is_none_or(|f| (f - 1700.0).abs() > 50.0),
                "wrong password must not bridge"
            );
            assert!(
                server.log_text().contains("outcome=\"rejected\""),
                "{}",
                server.log_text()
            );
            let _ = wait_child(&mut sipp, Duration::from_secs(5));
        }
    }
}

#[test]
fn hold_and_resume_keep_time_in_the_recording() {
    let ip = unique_ip();
    let b = Answerer::start(ip, 5081, &["--tone", "1000", "--calls", "1"]);
    let server = Server::with_ncco_at(
        ip,
        &format!(
            r#"[{{"action":"record","split":"conversation"}},{}]"#,
            connect_ncco(&b.uri("b"))
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let tone = ulaw_tone(dir.path(), 440, 10.0);
    let sipp = Sipp::prepare(
        "uac_hold.xml",
        &[
            ("TONE", tone.display().to_string()),
            ("TALK_MS", "1500".into()),
            ("HOLD_MS", "1500".into()),
        ],
    );
    sipp.run_ok(&server, &["-m", "1", "-s", "100"], Duration::from_secs(30));
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    // 1.5 s talk + 1.5 s hold + 1.5 s talk: the hold is silence in the caller's channel,
    // kept in the timeline (not collapsed).
    assert_duration(&a, 4300..=4900, "talk, hold, talk");
    assert_mostly(
        &tones_between(&a, 0, 200, 1300),
        440.0,
        8,
        "caller before hold",
    );
    assert!(
        tones_between(&a, 0, 1800, 2800).is_empty(),
        "caller's channel during hold: {:?}",
        tones_between(&a, 0, 1800, 2800)
    );
    assert_mostly(
        &tones_between(&a, 0, 3300, 4300),
        440.0,
        8,
        "caller after resume",
    );
    assert!(server.log_text().contains("re-INVITE"));
    assert!(server.wait_idle(), "call or ports left over");
}
