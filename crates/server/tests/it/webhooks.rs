//! Answer URL, events and the NCCO actions talk/stream/input/notify, end to end: the real
//! binary (with its child dispatcher), `callmux call` as the caller, and real HTTP
//! receivers in the test process.

use std::time::{Duration, SystemTime};

use crate::common::http::{self, bodies, get_bytes, HttpRequest, Receiver, Reply};
use crate::common::*;
use callmux_webhook::{verify_webhook, Timestamp};
use serde_json::{json, Value};

/// A server using `receiver` for answers and events, with extra flags.
fn server_with(receiver: &Receiver, extra: &[&str]) -> Server {
    let mut args = vec![
        "--answer-url".to_string(),
        receiver.url("/answer"),
        "--event-url".to_string(),
        receiver.url("/events"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(ServerOptions {
        extra_args: args,
        ..ServerOptions::default()
    })
}

fn status_of(v: &Value) -> String {
    v.get("status")
        .and_then(Value::as_str)
        .map_or_else(|| "record".into(), str::to_string)
}

fn ts(v: &Value, field: &str) -> Timestamp {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {v}"));
    assert!(s.ends_with('Z') && s.contains('T'), "{field}: {s}");
    Timestamp::parse(s).unwrap_or_else(|e| panic!("{field}: {s}: {e}"))
}

/// The indices of the loud (above -40 dBFS) quarter-second windows among `levels`.
fn loud_windows(levels: &[f64]) -> Vec<usize> {
    levels
        .iter()
        .enumerate()
        .filter(|(_, &l)| l > -40.0)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn answer_url_get_and_post_and_call_events() {
    for method in ["GET", "POST"] {
        let ip = unique_ip();
        let receiver = Receiver::start(ip, |r: &HttpRequest| match r.path.as_str() {
            "/answer" => Reply::json(&json!([
                {"action": "record", "split": "conversation"},
                {"action": "wait", "timeout": 60}
            ])),
            _ => Reply::ok(),
        });
        let server = server_with(&receiver, &["--answer-method", method]);
        call_ok(&server, &["--tone", "440", "--seconds", "2"]);

        let answers = receiver.requests_to("/answer");
        assert_eq!(answers.len(), 1, "{method}: one answer request");
        let a = &answers[0];
        assert_eq!(a.method, method);
        let field = |k: &str| -> String {
            if method == "GET" {
                a.param(k).unwrap_or_default().to_string()
            } else {
                assert!(a
                    .header("content-type")
                    .unwrap_or_default()
                    .starts_with("application/json"));
                a.json()[k].as_str().unwrap_or_default().to_string()
            }
        };
        assert_eq!(field("to"), "100");
        assert_eq!(field("from"), "callmux");
        let uuid = field("uuid");
        let conv = field("conversation_uuid");
        assert_eq!(uuid.len(), 36, "uuid {uuid:?}");
        assert_eq!(conv.len(), 36, "conversation_uuid {conv:?}");
        assert_ne!(uuid, conv);

        let reqs = receiver.wait_until(Duration::from_secs(20), "completed", |reqs| {
            bodies(reqs, "/events")
                .iter()
                .any(|b| b["status"] == "completed")
        });
        let events = bodies(&reqs, "/events");
        let statuses: Vec<String> = events.iter().map(status_of).collect();
        assert_eq!(
            statuses,
            ["started", "ringing", "answered", "record", "completed"],
            "{method}: {events:?}"
        );
        for e in &events {
            assert_eq!(e["uuid"], uuid.as_str(), "{e}");
            assert_eq!(e["conversation_uuid"], conv.as_str(), "{e}");
            ts(e, "timestamp");
            if e.get("status").is_some() {
                assert_eq!(e["from"], "callmux");
                assert_eq!(e["to"], "100");
                assert_eq!(e["direction"], "inbound");
            }
        }
        let completed = events.last().unwrap();
        let start = ts(completed, "start_time");
        let end = ts(completed, "end_time");
        let secs: u64 = completed["duration"].as_str().unwrap().parse().unwrap();
        assert!((1..=3).contains(&secs), "duration {secs}");
        assert!(end.unix_ms() - start.unix_ms() >= 1500);
        for r in reqs.iter().filter(|r| r.path == "/events") {
            let id = r.event_id();
            assert_eq!(id.len(), 36);
            assert_eq!(r.header("Idempotency-Key"), Some(id.as_str()));
            assert!(
                r.header("Authorization").is_none(),
                "unsigned without a secret"
            );
        }
    }
}

#[test]
fn record_input_and_notify_events_field_by_field() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let (rec_url, input_url, notify_url) = (
        receiver.url("/record"),
        receiver.url("/input"),
        receiver.url("/notify"),
    );
    let notify_url2 = notify_url.clone();
    receiver.set_handler(move |r: &HttpRequest| match r.path.as_str() {
        "/answer" => Reply::json(&json!([
            {"action": "record", "split": "conversation", "eventUrl": [rec_url],
             "eventMethod": "GET"},
            {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 2, "timeOut": 5},
             "eventUrl": [input_url]},
            {"action": "notify", "payload": {"never": "sent"}, "eventUrl": [notify_url]}
        ])),
        "/input" => Reply::json(&json!([
            {"action": "notify", "payload": {"step": "after-input", "n": 1, "nested": {"a": [1, 2]}},
             "eventUrl": [notify_url2]},
            {"action": "wait", "timeout": 1}
        ])),
        _ => Reply::ok(),
    });
    let secret = "s3cret-for-tests";
    // The recordings API without tokens: this test checks the URL, tests/security the JWTs.
    let server = server_with(
        &receiver,
        &["--signature-secret", secret, "--recordings-api-open"],
    );
    let out = call_with_digits(&server, "8", "12", "1.5", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("remote hung up"),
        "the NCCO ends the call: {stdout}"
    );

    let reqs = receiver.wait_until(Duration::from_secs(20), "record and completed", |reqs| {
        reqs.iter().any(|r| r.path == "/record")
            && bodies(reqs, "/events")
                .iter()
                .any(|b| b["status"] == "completed")
    });
    let events = bodies(&reqs, "/events");
    let statuses: Vec<String> = events.iter().map(status_of).collect();
    assert_eq!(statuses, ["started", "ringing", "answered", "completed"]);
    let uuid = events[0]["uuid"].as_str().unwrap().to_string();
    let conv = events[0]["conversation_uuid"].as_str().unwrap().to_string();

    // The input event: POSTed by the server itself, its answer replaced the NCCO.
    let inputs = receiver.requests_to("/input");
    assert_eq!(inputs.len(), 1);
    let input = inputs[0].json();
    assert_eq!(input["uuid"], uuid.as_str());
    assert_eq!(input["conversation_uuid"], conv.as_str());
    assert_eq!(input["dtmf"], json!({"digits": "12", "timed_out": false}));
    assert_eq!(input["from"], "callmux");
    assert_eq!(input["to"], "100");
    ts(&input, "timestamp");
    assert_eq!(input.as_object().unwrap().len(), 6, "{input}");

    // The notify payload from the answer NCCO, as it is; the original notify never ran.
    let notifies = receiver.requests_to("/notify");
    assert_eq!(notifies.len(), 1, "only the answer NCCO's notify runs");
    assert_eq!(
        notifies[0].json(),
        json!({"step": "after-input", "n": 1, "nested": {"a": [1, 2]}})
    );

    // The record event, sent as GET query parameters (eventMethod GET).
    let recs = receiver.requests_to("/record");
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.method, "GET");
    assert!(r.body.is_empty());
    let p = |k: &str| {
        r.param(k)
            .unwrap_or_else(|| panic!("record event lacks {k}: {:?}", r.query))
    };
    let files = server.wait_recordings(1, Duration::from_secs(5));
    let file = &files[0];
    assert_eq!(
        p("recording_uuid"),
        file.file_stem().unwrap().to_str().unwrap()
    );
    assert_eq!(p("uuid"), uuid);
    assert_eq!(p("conversation_uuid"), conv);
    assert_eq!(p("channels"), "2");
    assert_eq!(p("format"), "wav");
    assert_eq!(p("state"), "complete");
    assert_eq!(p("path"), file.display().to_string());
    let size: u64 = p("size").parse().unwrap();
    assert_eq!(size, std::fs::metadata(file).unwrap().len());
    let start = Timestamp::parse(p("start_time")).unwrap();
    let end = Timestamp::parse(p("end_time")).unwrap();
    Timestamp::parse(p("timestamp")).unwrap();
    assert!(end.unix_ms() > start.unix_ms() + 1000, "{start:?} {end:?}");
    let url = p("recording_url");
    let rec_path = format!("/v1/files/{}", p("recording_uuid"));
    assert_eq!(url, format!("http://{}{rec_path}", server.http));
    let (status, bytes) = get_bytes(server.http, &rec_path).expect("recording_url answers");
    assert_eq!(status, 200);
    assert_eq!(bytes.len() as u64, size);

    // Every queued event is signed over the exact bytes sent, with an idempotency key.
    for r in reqs
        .iter()
        .filter(|r| matches!(r.path.as_str(), "/events" | "/notify" | "/record"))
    {
        let id = r.event_id();
        assert_eq!(id.len(), 36, "{} has an event id", r.path);
        assert_eq!(r.header("Idempotency-Key"), Some(id.as_str()));
        let auth = r.header("Authorization").expect("signed");
        let claims = verify_webhook(
            secret.as_bytes(),
            auth,
            &r.body,
            SystemTime::now(),
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("{}: bad signature: {e}", r.path));
        assert_eq!(claims.iss, "callmux");
        assert!(verify_webhook(
            b"wrong",
            auth,
            &r.body,
            SystemTime::now(),
            Duration::from_secs(300)
        )
        .is_err());
    }
    // Per-call order across URLs: started … answered, notify, record, completed.
    let order: Vec<&str> = reqs
        .iter()
        .filter(|r| r.path != "/answer")
        .map(|r| r.path.as_str())
        .collect();
    let pos = |p: &str| order.iter().rposition(|x| *x == p).unwrap();
    assert!(pos("/input") < pos("/notify"), "{order:?}");
    assert!(pos("/notify") < pos("/record"), "{order:?}");
    let completed = events.last().unwrap();
    let secs: u64 = completed["duration"].as_str().unwrap().parse().unwrap();
    assert!((2..=5).contains(&secs), "duration {secs}");
}

/// Reads a mono 16 kHz WAV.
fn read_wav(path: &std::path::Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap();
    r.samples::<i16>().map(Result::unwrap).collect()
}

/// RMS level in dBFS of each 250 ms window.
fn window_levels(pcm: &[i16]) -> Vec<f64> {
    pcm.chunks(4000)
        .map(|w| {
            let e: f64 =
                w.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / w.len() as f64;
            20.0 * (e.sqrt() / 32768.0 + 1e-9).log10()
        })
        .collect()
}

#[test]
fn talk_is_heard_by_the_caller_and_recorded_in_channel_two() {
    require_tool("espeak-ng");
    let server = Server::start(ServerOptions {
        ncco: Some(
            json!([
                {"action": "record", "split": "conversation"},
                {"action": "talk", "text": "Hello from callmux, this is a test.", "language": "en-GB"},
                {"action": "wait", "timeout": 30}
            ])
            .to_string(),
        ),
        ..ServerOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    call_ok(
        &server,
        &["--seconds", "6", "--save", heard.to_str().unwrap()],
    );

    let pcm = read_wav(&heard);
    let levels = window_levels(&pcm);
    let loud = loud_windows(&levels);
    assert!(
        loud.len() >= 6,
        "at least 1.5 s of speech heard; levels {levels:?}"
    );
    let first = loud[0] as f64 * 0.25;
    let last = *loud.last().unwrap() as f64 * 0.25;
    assert!(
        first < 2.0,
        "speech starts soon after the answer ({first} s); {levels:?}"
    );
    assert!(
        last < 5.0,
        "then it ends: silence after the prompt ({last} s); {levels:?}"
    );
    let a = analyze(&heard);
    let heard_voiced = a.per_channel[0].voiced_ms;

    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let rec = analyze(&recs[0]);
    assert_channels(&rec, 2, "split");
    assert_silent(&rec, 0, "the caller sent silence");
    let ch2 = rec.per_channel[1].voiced_ms;
    assert!(
        ch2 > 1000 && (ch2 as i64 - heard_voiced as i64).abs() < 600,
        "channel 2 holds the speech the caller heard: {ch2} ms vs {heard_voiced} ms heard"
    );
}

#[test]
fn stream_of_a_wav_is_heard_and_recorded_and_cached() {
    let ip = unique_ip();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    // 22.05 kHz, 1.5 s of 1000 Hz: resampled to 16 kHz, played twice.
    http::tone_wav(&wav, 22_050, 1000.0, 1.5);
    let wav_bytes = std::fs::read(&wav).unwrap();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let tone_url = receiver.url("/tone.wav");
    receiver.set_handler(move |r: &HttpRequest| match r.path.as_str() {
        "/answer" => Reply::json(&json!([
            {"action": "record", "split": "conversation"},
            {"action": "stream", "streamUrl": [tone_url], "loop": 2},
            {"action": "wait", "timeout": 30}
        ])),
        "/tone.wav" => Reply::bytes(wav_bytes.clone(), "audio/wav"),
        _ => Reply::ok(),
    });
    let server = server_with(&receiver, &[]);
    let heard = dir.path().join("heard.wav");
    call_ok(
        &server,
        &["--seconds", "5", "--save", heard.to_str().unwrap()],
    );

    let a = analyze(&heard);
    let ch = &a.per_channel[0];
    let hz = ch.dominant_hz.expect("a tone was heard");
    assert!((hz - 1000.0).abs() < 15.0, "heard {hz} Hz");
    assert_voiced(&a, 0, 2700..=3200, "the stream, heard twice (3 s)");
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let rec = analyze(&recs[0]);
    let ch2 = &rec.per_channel[1];
    assert!((ch2.dominant_hz.unwrap() - 1000.0).abs() < 15.0);
    assert_voiced(&rec, 1, 2700..=3200, "the stream, recorded");
    assert_silent(&rec, 0, "the caller sent silence");

    // Cached on disk by URL hash: a second call plays it without fetching again.
    let cache = server.dir.path().join("data").join("stream-cache");
    let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1, "{cache:?}");
    call_ok(&server, &["--seconds", "2"]);
    assert_eq!(receiver.requests_to("/tone.wav").len(), 1, "fetched once");
}

#[test]
fn recording_cut_by_a_crash_is_announced_as_recovered() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let mut server = Server::start(ServerOptions {
        extra_args: vec!["--event-url".into(), receiver.url("/events")],
        ..ServerOptions::default()
    });
    let (cip, uri) = (server.ip, server.uri("100"));
    let caller =
        std::thread::spawn(move || callmux_call(cip, &uri, &["--tone", "500", "--seconds", "4"]));
    let reqs = receiver.wait_until(Duration::from_secs(10), "answered", |reqs| {
        bodies(reqs, "/events")
            .iter()
            .any(|b| b["status"] == "answered")
    });
    let uuid = bodies(&reqs, "/events")[0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill9();
    let _ = caller.join();

    let server2 = server.restart();
    let reqs = receiver.wait_until(
        Duration::from_secs(20),
        "the recovered record event",
        |reqs| {
            bodies(reqs, "/events")
                .iter()
                .any(|b| b["state"] == "recovered")
        },
    );
    let events = bodies(&reqs, "/events");
    let rec = events.iter().find(|b| b["state"] == "recovered").unwrap();
    assert_eq!(rec["uuid"], uuid.as_str());
    let files = server2.recordings();
    assert_eq!(files.len(), 1);
    assert_eq!(
        rec["recording_uuid"],
        files[0].file_stem().unwrap().to_str().unwrap()
    );
    assert_eq!(
        rec["size"].as_u64().unwrap(),
        std::fs::metadata(&files[0]).unwrap().len()
    );
    assert_eq!(rec["channels"], 2);
    assert!(rec["recording_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("http://{}/v1/files/", server2.http)));
    ts(rec, "start_time");
    ts(rec, "end_time");
}

#[test]
fn barge_in_stops_a_looping_prompt_and_the_key_goes_to_the_input() {
    require_tool("espeak-ng");
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let input_url = receiver.url("/input");
    receiver.set_handler(move |r: &HttpRequest| match r.path.as_str() {
        "/answer" => Reply::json(&json!([
            {"action": "record", "split": "conversation"},
            {"action": "talk", "text": "Press a key.", "loop": 0, "bargeIn": true},
            {"action": "input", "type": ["dtmf"], "dtmf": {"maxDigits": 1},
             "eventUrl": [input_url]},
            {"action": "wait", "timeout": 1}
        ])),
        // No NCCO in the answer: the rest of the NCCO (the wait) runs, then it ends.
        _ => Reply::ok(),
    });
    let server = server_with(&receiver, &[]);
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let out = call_ok(
        &server,
        &[
            "--seconds",
            "8",
            "--dtmf",
            "5",
            "--dtmf-at",
            "3",
            "--save",
            heard.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("remote hung up"));
    let inputs = receiver.requests_to("/input");
    assert_eq!(inputs.len(), 1);
    assert_eq!(
        inputs[0].json()["dtmf"],
        json!({"digits": "5", "timed_out": false})
    );

    // The prompt repeated until the key at 3 s, then stopped.
    let levels = window_levels(&read_wav(&heard));
    let loud = loud_windows(&levels);
    let last = *loud.last().expect("speech heard") as f64 * 0.25;
    assert!(loud.len() >= 6, "looped speech before the key: {levels:?}");
    assert!(
        (2.0..=4.25).contains(&last),
        "speech stops at the key (3 s), last at {last} s: {levels:?}"
    );
}
