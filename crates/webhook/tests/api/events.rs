//! Golden JSON of every event body: exact bytes, so a field rename or reorder is caught.

use std::time::Duration;

use callmux_webhook::event::duration_string;
use callmux_webhook::{
    CallEvent, CallStatus, Direction, Dtmf, HttpMethod, InputEvent, NewEvent, NotifyEvent,
    RecordEvent, RecordFailedEvent, RecordFailedStatus, RecordState, Timestamp, WebhookPayload,
};
use proptest::prelude::*;

const T0: i64 = 1_714_564_800_123; // 2024-05-01T12:00:00.123Z

fn ts(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(T0 + offset_ms)
}

fn golden<T>(value: &T, want: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let got = serde_json::to_string(value).unwrap();
    assert_eq!(got, want);
    let back: T = serde_json::from_str(&got).unwrap();
    assert_eq!(&back, value);
}

#[test]
fn call_event_minimal() {
    let ev = CallEvent::new(
        "aaaa-1",
        "CON-1",
        "447700900000",
        "442079460000",
        Direction::Inbound,
        CallStatus::Started,
        ts(0),
    );
    golden(
        &ev,
        r#"{"from":"447700900000","to":"442079460000","uuid":"aaaa-1","conversation_uuid":"CON-1","status":"started","direction":"inbound","timestamp":"2024-05-01T12:00:00.123Z"}"#,
    );
    assert_eq!(ev.kind(), "call.started");
}

#[test]
fn call_event_completed() {
    let mut ev = CallEvent::new(
        "aaaa-1",
        "CON-1",
        "alice",
        "bob",
        Direction::Outbound,
        CallStatus::Completed,
        ts(65_000),
    );
    ev.start_time = Some(ts(2_000));
    ev.end_time = Some(ts(64_900));
    ev.duration = Some(duration_string(Duration::from_millis(62_900)));
    ev.network = Some("trunk-a".into());
    golden(
        &ev,
        r#"{"from":"alice","to":"bob","uuid":"aaaa-1","conversation_uuid":"CON-1","status":"completed","direction":"outbound","timestamp":"2024-05-01T12:01:05.123Z","start_time":"2024-05-01T12:00:02.123Z","end_time":"2024-05-01T12:01:05.023Z","duration":"62","network":"trunk-a"}"#,
    );
}

#[test]
fn call_event_failed_with_reason() {
    let mut ev = CallEvent::new(
        "u",
        "c",
        "a",
        "b",
        Direction::Outbound,
        CallStatus::Failed,
        ts(0),
    );
    ev.reason = Some("trunk answered 503 Service Unavailable".into());
    ev.detail = Some("unavailable".into());
    ev.sip_code = Some(503);
    golden(
        &ev,
        r#"{"from":"a","to":"b","uuid":"u","conversation_uuid":"c","status":"failed","direction":"outbound","timestamp":"2024-05-01T12:00:00.123Z","reason":"trunk answered 503 Service Unavailable","detail":"unavailable","sip_code":503}"#,
    );
}

#[test]
fn record_event() {
    let ev = RecordEvent {
        start_time: ts(0),
        end_time: ts(30_000),
        recording_url: "http://127.0.0.1:8080/v1/recordings/rec-1".into(),
        recording_uuid: "rec-1".into(),
        size: 960_044,
        conversation_uuid: "CON-1".into(),
        timestamp: ts(30_010),
        uuid: "aaaa-1".into(),
        channels: 2,
        format: "wav".into(),
        path: "/var/lib/callmux/recordings/2024/05/01/rec-1.wav".into(),
        state: RecordState::Complete,
    };
    golden(
        &ev,
        r#"{"start_time":"2024-05-01T12:00:00.123Z","end_time":"2024-05-01T12:00:30.123Z","recording_url":"http://127.0.0.1:8080/v1/recordings/rec-1","recording_uuid":"rec-1","size":960044,"conversation_uuid":"CON-1","timestamp":"2024-05-01T12:00:30.133Z","uuid":"aaaa-1","channels":2,"format":"wav","path":"/var/lib/callmux/recordings/2024/05/01/rec-1.wav","state":"complete"}"#,
    );
    assert_eq!(ev.kind(), "record");
    let recovered = RecordEvent {
        state: RecordState::Recovered,
        ..ev
    };
    assert!(serde_json::to_string(&recovered)
        .unwrap()
        .ends_with(r#""state":"recovered"}"#));
}

#[test]
fn record_failed_event() {
    let ev = RecordFailedEvent {
        status: RecordFailedStatus::RecordFailed,
        uuid: "aaaa-1".into(),
        conversation_uuid: "CON-1".into(),
        recording_uuid: "rec-1".into(),
        timestamp: ts(5),
        reason: "disk full".into(),
        start_time: Some(ts(0)),
        path: None,
    };
    golden(
        &ev,
        r#"{"status":"record_failed","uuid":"aaaa-1","conversation_uuid":"CON-1","recording_uuid":"rec-1","timestamp":"2024-05-01T12:00:00.128Z","reason":"disk full","start_time":"2024-05-01T12:00:00.123Z"}"#,
    );
    assert_eq!(ev.kind(), "record_failed");
    let other = r#"{"status":"completed","uuid":"u","conversation_uuid":"c","recording_uuid":"r","timestamp":"2024-05-01T12:00:00.128Z","reason":"x"}"#;
    assert!(serde_json::from_str::<RecordFailedEvent>(other).is_err());
}

#[test]
fn input_event() {
    let ev = InputEvent {
        uuid: "aaaa-1".into(),
        conversation_uuid: "CON-1".into(),
        timestamp: ts(0),
        dtmf: Dtmf {
            digits: "1234#".into(),
            timed_out: false,
        },
        from: "alice".into(),
        to: "ivr".into(),
    };
    golden(
        &ev,
        r#"{"uuid":"aaaa-1","conversation_uuid":"CON-1","timestamp":"2024-05-01T12:00:00.123Z","dtmf":{"digits":"1234#","timed_out":false},"from":"alice","to":"ivr"}"#,
    );
    assert_eq!(ev.kind(), "input");
}

#[test]
fn notify_event_is_the_payload_as_is() {
    let payload = serde_json::json!({"foo": "bar", "n": [1, 2, {"x": null}]});
    let ev = NotifyEvent(payload.clone());
    assert_eq!(
        serde_json::to_string(&ev).unwrap(),
        serde_json::to_string(&payload).unwrap()
    );
    assert_eq!(ev.kind(), "notify");
}

#[test]
fn new_event_from_payload_carries_body_and_kind() {
    let ev = CallEvent::new(
        "u",
        "c",
        "a",
        "b",
        Direction::Inbound,
        CallStatus::Answered,
        ts(0),
    );
    let ne = NewEvent::from_payload("u", "http://h/e", HttpMethod::Post, &ev).unwrap();
    assert_eq!(ne.kind, "call.answered");
    assert_eq!(ne.call_uuid, "u");
    assert_eq!(ne.body, serde_json::to_vec(&ev).unwrap());
}

#[test]
fn receivers_ignore_unknown_fields() {
    let with_extra = r#"{"from":"a","to":"b","uuid":"u","conversation_uuid":"c","status":"ringing","direction":"inbound","timestamp":"2024-05-01T12:00:00.123Z","rate":"0.01","price":"0"}"#;
    let ev: CallEvent = serde_json::from_str(with_extra).unwrap();
    assert_eq!(ev.status, CallStatus::Ringing);
}

#[test]
fn malformed_bodies_are_errors() {
    for bad in [
        "",
        "{",
        "[]",
        "null",
        r#"{"from":"a"}"#,
        r#"{"from":"a","to":"b","uuid":"u","conversation_uuid":"c","status":"exploded","direction":"inbound","timestamp":"2024-05-01T12:00:00.123Z"}"#,
        r#"{"from":"a","to":"b","uuid":"u","conversation_uuid":"c","status":"started","direction":"sideways","timestamp":"2024-05-01T12:00:00.123Z"}"#,
        r#"{"from":"a","to":"b","uuid":"u","conversation_uuid":"c","status":"started","direction":"inbound","timestamp":"noon"}"#,
        r#"{"from":"a","to":"b","uuid":"u","conversation_uuid":"c","status":"started","direction":"inbound","timestamp":"2024-05-01T12:00:00.123Z","sip_code":70000}"#,
    ] {
        assert!(serde_json::from_str::<CallEvent>(bad).is_err(), "{bad}");
        callmux_webhook::fuzzing::event_json(bad.as_bytes());
    }
    assert!(serde_json::from_str::<InputEvent>(r#"{"dtmf":{"digits":5}}"#).is_err());
}

proptest! {
    #[test]
    fn event_json_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        callmux_webhook::fuzzing::event_json(&data);
    }

    #[test]
    fn event_json_never_panics_on_jsonish_text(s in r#"[{}\[\]":,a-z0-9.\-TZ+ ]{0,200}"#) {
        callmux_webhook::fuzzing::event_json(s.as_bytes());
    }

    #[test]
    fn timestamps_round_trip(ms in -62_167_219_200_000_i64..253_402_300_799_999) {
        let t = Timestamp::from_unix_ms(ms);
        let json = serde_json::to_string(&t).unwrap();
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, t);
    }
}
