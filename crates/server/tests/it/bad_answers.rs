//! Answer URLs that fail: not JSON, 404, too slow, an unknown action, a bad field. Each
//! call is refused with a SIP error whose Warning names the reason, a `failed` event says
//! the same, and the server stays up for the next call. The fallback answer URL rescues a
//! failing answer URL.

use std::time::{Duration, Instant};

use crate::common::http::{bodies, HttpRequest, Receiver, Reply};
use crate::common::*;
use serde_json::json;

#[test]
fn bad_answers_reject_the_call_with_a_reason_and_the_server_stays_up() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--answer-url".into(),
            receiver.url("/answer"),
            "--event-url".into(),
            receiver.url("/events"),
        ],
        ..ServerOptions::default()
    });

    // (name, answer, SIP status, words the reason must contain)
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        (
            "not JSON",
            Reply::bytes(b"<html>hello</html>".to_vec(), "text/html"),
            500,
            "invalid NCCO: $: ",
        ),
        ("404", Reply::status(404), 503, "HTTP 404"),
        (
            "slow",
            Reply::json(&json!([{"action": "wait"}])).delayed(Duration::from_secs(7)),
            503,
            "no answer within 5 s",
        ),
        (
            "unknown action",
            Reply::json(&json!([{"action": "wait"}, {"action": "dance"}])),
            500,
            "$[1].action",
        ),
        (
            "bad field",
            Reply::json(&json!([{"action": "record", "channels": 33}])),
            500,
            "$[0].channels: must be an integer 1..=32, got 33",
        ),
        (
            "not implemented",
            Reply::json(
                &json!([{"action": "connect", "endpoint": [{"type": "vbc", "extension": "100"}]}]),
            ),
            500,
            "$[0].endpoint[0].type",
        ),
    ];
    let mut failed_seen = 0;
    for (name, reply, status, words) in cases {
        receiver.set_handler(move |r: &HttpRequest| {
            if r.path == "/answer" {
                reply.clone()
            } else {
                Reply::ok()
            }
        });
        let started = Instant::now();
        let out = callmux_call(server.ip, &server.uri("100"), &["--seconds", "1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: the call must fail: {stderr}"
        );
        assert!(
            stderr.contains(&format!("call failed: {status} ")),
            "{name}: expected SIP {status}: {stderr}"
        );
        assert!(
            stderr.contains("399 callmux") && stderr.contains(words),
            "{name}: the Warning names the reason ({words}): {stderr}"
        );
        assert!(
            stderr.contains("180 Ringing"),
            "{name}: rang first: {stderr}"
        );
        if name == "slow" {
            let t = started.elapsed();
            assert!(
                t >= Duration::from_secs(5) && t < Duration::from_secs(9),
                "the 5 s time-out rejects the call: {t:?}"
            );
        }
        failed_seen += 1;
        let reqs = receiver.wait_until(Duration::from_secs(15), "the failed event", |reqs| {
            bodies(reqs, "/events")
                .iter()
                .filter(|b| b["status"] == "failed")
                .count()
                >= failed_seen
        });
        let events = bodies(&reqs, "/events");
        let failed = events
            .iter()
            .filter(|b| b["status"] == "failed")
            .nth(failed_seen - 1)
            .unwrap();
        let reason = failed["reason"].as_str().unwrap();
        assert!(reason.contains(words), "{name}: reason {reason:?}");
        assert!(reason.starts_with("answer_url http://"), "{reason}");
        assert_eq!(failed["sip_code"], status);
        assert_eq!(failed["direction"], "inbound");
        let uuid = failed["uuid"].as_str().unwrap();
        let statuses: Vec<&str> = events
            .iter()
            .filter(|b| b["uuid"] == uuid)
            .map(|b| b["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["started", "ringing", "failed"], "{name}");
    }

    // Still serving: a good answer is taken.
    receiver.set_handler(|r: &HttpRequest| match r.path.as_str() {
        "/answer" => Reply::json(&json!([{"action": "wait", "timeout": 30}])),
        _ => Reply::ok(),
    });
    let out = callmux_call(server.ip, &server.uri("100"), &["--seconds", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(http_get(server.http, "/healthz").map(|x| x.0), Some(200));
}

#[test]
fn fallback_answer_url_is_used_when_the_answer_url_fails() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |r: &HttpRequest| match r.path.as_str() {
        "/answer" => Reply::status(500),
        "/fallback" => Reply::json(&json!([{"action": "wait", "timeout": 30}])),
        _ => Reply::ok(),
    });
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--answer-url".into(),
            receiver.url("/answer"),
            "--fallback-answer-url".into(),
            receiver.url("/fallback"),
            "--answer-method".into(),
            "POST".into(),
        ],
        ..ServerOptions::default()
    });
    let out = callmux_call(server.ip, &server.uri("200"), &["--seconds", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fb = receiver.requests_to("/fallback");
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0].method, "POST");
    assert_eq!(fb[0].json()["to"], "200");
    assert_eq!(receiver.requests_to("/answer").len(), 1);

    // Both failing: the reason names both.
    receiver.set_handler(|_| Reply::status(502));
    let out = callmux_call(server.ip, &server.uri("200"), &["--seconds", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("HTTP 502") && stderr.contains("fallback"),
        "{stderr}"
    );
}
