//! Delivery guarantees through the real processes: events survive a receiver that is down
//! while calls happen, and a dispatcher killed with SIGKILL mid-delivery; every event
//! arrives, in order per call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::http::{
    dispatch_once, free_port, Dispatcher, HttpRequest, Receiver, Reply, CALL_EVENTS,
};
use crate::common::*;

/// The event name of a body: its `status`, or `record`.
/// Checks that each of `calls` calls got all five events, first arrivals in order, and
/// returns (distinct events, duplicate deliveries).
fn check_complete(reqs: &[HttpRequest], calls: usize) -> (usize, usize) {
    let mut first_seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut ids = BTreeSet::new();
    let mut dups = 0;
    for r in reqs.iter().filter(|r| r.path == "/events") {
        if !ids.insert(r.event_id()) {
            dups += 1;
            continue;
        }
        let uuid = r.json()["uuid"].as_str().unwrap().to_string();
        first_seen.entry(uuid).or_default().push(r.event_name());
    }
    assert_eq!(first_seen.len(), calls, "every call has events");
    for (uuid, seq) in &first_seen {
        assert_eq!(
            seq, &CALL_EVENTS,
            "call {uuid}: events out of order or missing"
        );
    }
    (ids.len(), dups)
}

fn distinct_events(reqs: &[HttpRequest]) -> usize {
    reqs.iter()
        .filter(|r| r.path == "/events")
        .map(HttpRequest::event_id)
        .collect::<BTreeSet<_>>()
        .len()
}

/// Runs `calls` short SIPp calls against `server` (several at once).
fn sipp_calls(server: &Server, calls: usize) {
    let sipp = Sipp::tone_caller(800, 1.0, 300);
    sipp.run_ok(
        server,
        &["-m", &calls.to_string(), "-r", "25", "-l", "25"],
        Duration::from_secs(120),
    );
}

fn config_file(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("callmux.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn receiver_down_during_100_calls_then_every_event_arrives_in_order() {
    let ip = unique_ip();
    let addr = SocketAddr::new(ip, free_port(ip));
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        cfg_dir.path(),
        "[dispatch]\nretry_initial_ms = 200\nretry_max_delay_ms = 2000\n",
    );
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--config".into(),
            cfg,
            "--event-url".into(),
            format!("http://{addr}/events"),
        ],
        ..ServerOptions::default()
    });
    // Nothing listens on the event URL while the calls happen.
    sipp_calls(&server, 100);
    std::thread::sleep(Duration::from_secs(2));
    let log = server.log_text();
    assert!(
        log.contains("delivery failed; will retry"),
        "the dispatcher tried and failed meanwhile:\n{log}"
    );

    let receiver = Receiver::start_at(addr, |_| Reply::ok());
    let reqs = receiver.wait_until(Duration::from_secs(90), "500 events", |reqs| {
        distinct_events(reqs) >= 500
    });
    let (distinct, dups) = check_complete(&reqs, 100);
    assert_eq!(distinct, 500);
    assert_eq!(dups, 0, "every attempt was answered 200: nothing twice");

    let data = server.dir.path().join("data");
    let out = dispatch_once(&["--dead".into(), "--data".into(), data.display().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("0 dead letter(s)"), "{text}");
}

#[test]
fn dispatcher_killed_mid_delivery_loses_nothing() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok().delayed(Duration::from_millis(150)));
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        cfg_dir.path(),
        "[dispatch]\nlease_ms = 3000\nrequest_timeout_ms = 1000\nmax_in_flight = 8\n",
    );
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--config".into(),
            cfg.clone(),
            "--event-url".into(),
            receiver.url("/events"),
            "--no-dispatcher".into(),
        ],
        ..ServerOptions::default()
    });
    assert!(!server.log_text().contains("dispatcher started"));
    sipp_calls(&server, 20);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        receiver.requests().len(),
        0,
        "no dispatcher yet: nothing sent"
    );

    let data = server.dir.path().join("data").display().to_string();
    let args = vec!["--config".to_string(), cfg, "--data".into(), data];
    let log = server.dir.path().join("dispatch.log");
    let mut first = Dispatcher::start(&args, &log);
    receiver.wait_until(Duration::from_secs(30), "some deliveries", |reqs| {
        reqs.len() >= 30
    });
    first.kill9();
    let before_restart = receiver.requests().len();
    assert!(
        before_restart < 100,
        "killed mid-delivery ({before_restart} sent)"
    );

    let _second = Dispatcher::start(&args, &log);
    let reqs = receiver.wait_until(Duration::from_secs(60), "100 events", |reqs| {
        distinct_events(reqs) >= 100
    });
    let (distinct, dups) = check_complete(&reqs, 20);
    assert_eq!(distinct, 100);
    // Only attempts in flight at the kill can arrive twice: at most max_in_flight.
    assert!(dups <= 8, "{dups} duplicates");
    // Duplicates carry the same id, so a receiver drops them.
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in &reqs {
        *per_id.entry(r.event_id()).or_default() += 1;
    }
    assert!(per_id.values().all(|&n| n <= 2));
}

#[test]
fn dead_letters_are_listed_and_requeued() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::status(410));
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = config_file(
        cfg_dir.path(),
        "[dispatch]\nretry_initial_ms = 100\nretry_max_delay_ms = 400\n",
    );
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--config".into(),
            cfg,
            "--event-url".into(),
            receiver.url("/events"),
        ],
        ..ServerOptions::default()
    });
    let out = callmux_call(server.ip, &server.uri("100"), &["--seconds", "1"]);
    assert!(out.status.success());
    // 5 events, each tried 3 times (410 will not change), then dead.
    receiver.wait_until(Duration::from_secs(30), "15 attempts", |reqs| {
        reqs.len() >= 15
    });
    let data = server.dir.path().join("data").display().to_string();
    let dead_args = vec!["--dead".to_string(), "--data".into(), data.clone()];
    let mut listed = String::new();
    for _ in 0..50 {
        listed = String::from_utf8_lossy(&dispatch_once(&dead_args).stdout).to_string();
        if listed.starts_with("5 dead letter(s)") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(listed.starts_with("5 dead letter(s)"), "{listed}");
    assert!(
        listed.contains("permanent failure after 3 attempts: HTTP 410"),
        "{listed}"
    );
    assert!(listed.contains("kind=call.started") && listed.contains("kind=record"));

    // Fixed: requeue one by id, then all; every event arrives once more, in order.
    receiver.set_handler(|_| Reply::ok());
    let first_id = listed.lines().nth(1).unwrap().split('\t').next().unwrap();
    let out = dispatch_once(&[
        "--requeue".into(),
        first_id.into(),
        "--data".into(),
        data.clone(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("requeued 1 event(s)"));
    let out = dispatch_once(&[
        "--requeue".into(),
        "all".into(),
        "--data".into(),
        data.clone(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("requeued 4 event(s)"));
    let out = dispatch_once(&[
        "--requeue".into(),
        "no-such-id".into(),
        "--data".into(),
        data,
    ]);
    assert!(!out.status.success());
    let reqs = receiver.wait_until(Duration::from_secs(20), "redelivery", |reqs| {
        reqs.len() >= 20
    });
    let delivered: Vec<String> = reqs[15..].iter().map(HttpRequest::event_name).collect();
    assert_eq!(delivered, CALL_EVENTS);
    // The same ids as before: the receiver can tell they are the same events.
    let before: BTreeSet<String> = reqs[..15].iter().map(HttpRequest::event_id).collect();
    let after: BTreeSet<String> = reqs[15..].iter().map(HttpRequest::event_id).collect();
    assert_eq!(before, after);
}

#[test]
fn serve_restarts_its_dispatcher_child_when_it_dies() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let server = Server::start(ServerOptions {
        extra_args: vec!["--event-url".into(), receiver.url("/events")],
        ..ServerOptions::default()
    });
    let pid_of = |log: &str, nth: usize| -> Option<u32> {
        log.lines()
            .filter(|l| l.contains("dispatcher started"))
            .nth(nth)
            .and_then(|l| l.split("pid=").nth(1))
            .and_then(|p| p.trim().parse().ok())
    };
    let mut pid = None;
    for _ in 0..100 {
        pid = pid_of(&server.log_text(), 0);
        if pid.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = pid.expect("the child dispatcher started");
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = callmux_call(server.ip, &server.uri("100"), &["--seconds", "1"]);
    assert!(out.status.success());
    let reqs = receiver.wait_until(Duration::from_secs(20), "the call's events", |reqs| {
        reqs.len() >= 5
    });
    check_complete(&reqs, 1);
    let log = server.log_text();
    assert!(log.contains("dispatcher exited; restarting"), "{log}");
    assert_ne!(pid_of(&log, 1), Some(pid));
    assert!(pid_of(&log, 1).is_some());
}
