//! `GET /metrics`: scraped before and after a known SIPp call, parsed as Prometheus text,
//! and every counter checked against what the call really did (packets SIPp sent, the
//! WAV on disk, the events in the queue, the answer URL's delay).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::http::{Receiver, Reply};
use crate::common::*;

/// One scrape: `name{labels}` → value.
type Scrape = BTreeMap<String, f64>;

/// Parses the Prometheus text format (comments skipped; every sample line is
/// `series value`).
fn parse(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(series.to_string(), v);
    }
    out
}

fn scrape(http: SocketAddr) -> (Scrape, String) {
    let (status, body) = http_get(http, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    (parse(&body), body)
}

fn get(s: &Scrape, series: &str) -> f64 {
    s.get(series).copied().unwrap_or(0.0)
}

#[test]
fn metrics_move_by_what_a_known_call_did() {
    let ip = unique_ip();
    // The answer URL answers after 150 ms with the built-in NCCO (record split, wait).
    let app = Receiver::start(ip, |_| {
        Reply::json(&serde_json::json!([
            {"action": "record", "split": "conversation"},
            {"action": "wait", "timeout": 60}
        ]))
        .delayed(Duration::from_millis(150))
    });
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--answer-url".into(),
            app.url("/answer"),
            "--event-url".into(),
            app.url("/event"),
            // Nothing delivers: every event of the call stays pending in the queue.
            "--no-dispatcher".into(),
        ],
        ..ServerOptions::default()
    });
    let (before, text) = scrape(server.http);
    // Every metric is described, even before it has a value.
    assert!(text.contains("# HELP callmux_active_calls"), "{text}");
    assert_eq!(get(&before, "callmux_active_calls"), 0.0, "{text}");
    assert_eq!(
        get(&before, "callmux_event_queue_events{state=\"pending\"}"),
        0.0,
        "{text}"
    );
    assert_eq!(
        get(&before, "callmux_event_queue_read_error"),
        0.0,
        "{text}"
    );

    let seconds = 3.0;
    let sipp = Sipp::tone_caller(1000, seconds, 3500);
    sipp.run_ok_from(
        &server,
        ip,
        server.sip,
        &["-m", "1", "-s", "200"],
        Duration::from_secs(30),
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));

    // The call's last event (completed) is committed after the recording is final: wait
    // for the call to be counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (after, text) = loop {
        let (s, t) = scrape(server.http);
        if get(&s, "callmux_calls_total{result=\"answered\"}") >= 1.0
            && get(&s, "callmux_active_calls") == 0.0
        {
            break (s, t);
        }
        assert!(Instant::now() < deadline, "call never counted:\n{t}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // Calls: exactly one, answered; nothing else.
    assert_eq!(
        get(&after, "callmux_calls_total{result=\"answered\"}"),
        1.0,
        "{text}"
    );
    for other in ["failed", "rejected", "busy", "cancelled", "overloaded"] {
        assert_eq!(
            get(
                &after,
                &format!("callmux_calls_total{{result=\"{other}\"}}")
            ),
            0.0,
            "{other}: {text}"
        );
    }
    assert_eq!(get(&after, "callmux_active_recordings"), 0.0, "{text}");

    // RTP: SIPp sent 3 s of 20 ms PCMU packets (150); ±5 %.
    let sent = seconds * 50.0;
    let received = get(&after, "callmux_rtp_packets_received_total{codec=\"PCMU\"}");
    assert!(
        (received - sent).abs() <= sent * 0.05,
        "received {received} packets, SIPp sent {sent}: {text}"
    );
    let lost = get(&after, "callmux_rtp_packets_lost_total{codec=\"PCMU\"}");
    let late = get(&after, "callmux_rtp_packets_late_total{codec=\"PCMU\"}");
    assert!(
        lost + late <= sent * 0.05,
        "lost {lost}, late {late}: {text}"
    );
    // Jitter: a sample per second of media; on loopback far below 100 ms even when the
    // machine is busy (this catches units or timestamps gone wrong, not network quality).
    let jitter_n = get(&after, "callmux_rtp_jitter_seconds_count{codec=\"PCMU\"}");
    let jitter_sum = get(&after, "callmux_rtp_jitter_seconds_sum{codec=\"PCMU\"}");
    assert!(jitter_n >= 2.0, "jitter samples {jitter_n}: {text}");
    assert!(
        jitter_sum / jitter_n < 0.100,
        "mean jitter {} s on loopback: {text}",
        jitter_sum / jitter_n
    );

    // Bytes recorded: the file's size, and its audio data within 1 s of audio.
    let size = std::fs::metadata(&recs[0]).unwrap().len() as f64;
    let recorded = get(&after, "callmux_recorded_bytes_total");
    assert_eq!(recorded, size, "{text}");
    let wav = hound::WavReader::open(&recs[0]).expect("playable WAV");
    let spec = wav.spec();
    let data = f64::from(wav.len()) * f64::from(spec.bits_per_sample / 8);
    let one_second = f64::from(spec.sample_rate)
        * f64::from(spec.channels)
        * f64::from(spec.bits_per_sample / 8);
    assert!(
        (recorded - data).abs() <= one_second,
        "recorded {recorded} B, WAV data {data} B: {text}"
    );
    assert_eq!(
        get(&after, "callmux_recordings_total{result=\"complete\"}"),
        1.0,
        "{text}"
    );

    // Queue: started, ringing, answered, record, completed: five events waiting.
    assert_eq!(
        get(&after, "callmux_event_queue_events{state=\"pending\"}"),
        5.0,
        "{text}"
    );
    assert_eq!(
        get(&after, "callmux_event_queue_events{state=\"in_flight\"}"),
        0.0,
        "{text}"
    );

    // Answer URL: one fetch, which took at least the 150 ms the receiver waited.
    assert_eq!(
        get(
            &after,
            "callmux_answer_url_duration_seconds_count{result=\"ok\"}"
        ),
        1.0,
        "{text}"
    );
    let sum = get(
        &after,
        "callmux_answer_url_duration_seconds_sum{result=\"ok\"}",
    );
    assert!(
        (0.15..2.0).contains(&sum),
        "answer_url took {sum} s: {text}"
    );
    assert_eq!(
        get(
            &after,
            "callmux_answer_url_duration_seconds_bucket{result=\"ok\",le=\"0.1\"}"
        ),
        0.0,
        "{text}"
    );
    assert_eq!(
        get(
            &after,
            "callmux_answer_url_duration_seconds_bucket{result=\"ok\",le=\"0.25\"}"
        ),
        1.0,
        "{text}"
    );
}
