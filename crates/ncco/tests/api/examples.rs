//! NCCOs from the hosted API's documentation and code snippets: all must parse, and
//! serialising the result and parsing it again must give the same NCCO.

use callmux_ncco::{
    default_ncco, Action, AmdMode, ChannelLayout, ConnectEventType, Endpoint, EventMethod,
    MachineDetection, RecordFormat, Split,
};

use crate::parse_ok;

const EXAMPLES: &[&str] = &[
    // NCCO reference, record
    r#"[
      {"action": "record", "eventUrl": ["https://example.com/recordings"]},
      {"action": "connect", "eventUrl": ["https://example.com/events"], "from": "447700900000",
       "endpoint": [{"type": "phone", "number": "447700900001"}]}
    ]"#,
    // Voicemail
    r##"[
      {"action": "talk", "text": "Please leave a message after the tone, then press #."},
      {"action": "record", "eventUrl": ["https://example.com/recordings"], "endOnSilence": 3,
       "endOnKey": "#", "beepStart": true},
      {"action": "talk", "text": "Thank you for your message. Goodbye"}
    ]"##,
    // Split and multi-channel recording
    r#"[{"action": "record", "split": "conversation", "channels": 2, "format": "wav",
         "eventUrl": ["https://example.com/recordings"], "eventMethod": "POST"}]"#,
    // IVR
    r#"[
      {"action": "talk", "text": "Please enter a digit"},
      {"action": "input", "type": ["dtmf"], "eventUrl": ["https://example.com/ivr"],
       "dtmf": {"maxDigits": 1}}
    ]"#,
    // bargeIn
    r#"[
      {"action": "talk", "text": "Please enter a digit", "bargeIn": true},
      {"action": "input", "type": ["dtmf"], "eventUrl": ["https://example.com/ivr"],
       "dtmf": {"maxDigits": 1, "timeOut": 10, "submitOnHash": true}}
    ]"#,
    // Notify
    r#"[{"action": "notify", "payload": {"foo": "bar"},
         "eventUrl": ["https://example.com/webhooks/event"], "eventMethod": "POST"}]"#,
    // Track NCCO progress snippet
    r#"[
      {"action": "talk", "text": "Thanks for calling the notification line"},
      {"action": "notify", "payload": {"foo": "bar"},
       "eventUrl": ["https://example.com/webhooks/notification"]},
      {"action": "talk", "text": "You will never hear me as the notification URL will return an NCCO "}
    ]"#,
    // Conversation, attendee and moderator
    r#"[
      {"action": "talk", "text": "Welcome to a Vonage moderated conference. We will connect you when an agent is available"},
      {"action": "conversation", "name": "nexmo-conference-moderated", "startOnEnter": false,
       "musicOnHoldUrl": ["https://nexmo-community.github.io/ncco-examples/assets/voice_api_audio_streaming.mp3"]}
    ]"#,
    r#"[{"action": "conversation", "name": "nexmo-conference-moderated", "record": true,
         "endOnExit": true, "canHear": ["6a4d6af0-55a6-4667-be90-8614e4c8e83c"], "canSpeak": []}]"#,
    // Stream
    r#"[{"action": "stream", "streamUrl": ["https://acme.com/streams/music.mp3"], "level": 0.5,
         "loop": 0}]"#,
    // Connect with fallback NCCO
    r#"[{"action": "connect", "from": "447700900000", "timeout": 5, "eventType": "synchronous",
         "eventUrl": ["https://example.com/event-fallback"],
         "endpoint": [{"type": "phone", "number": "447700900001"}]}]"#,
    // Connect to SIP with headers
    r#"[{"action": "connect", "endpoint": [{"type": "sip", "uri": "sip:rebekka@sip.example.com",
         "headers": {"location": "New York City", "occupation": "developer"}}]}]"#,
    // Connect to a WebSocket
    r#"[{"action": "connect", "endpoint": [{"type": "websocket", "uri": "wss://example.com/socket",
         "content-type": "audio/l16;rate=16000",
         "headers": {"name": "J Doe", "age": 40, "address": {"line_1": "Apartment 14"}}}]}]"#,
    // Connect to an app user
    r#"[{"action": "connect", "from": "447700900000", "endpoint": [{"type": "app", "user": "jamie"}]}]"#,
    // Phone endpoint with dtmfAnswer and onAnswer; machine detection
    r#"[{"action": "connect", "ringbackTone": "http://example.com/ringbackTone.wav",
         "machineDetection": "continue", "limit": 600,
         "advancedMachineDetection": {"behavior": "hangup", "mode": "detect_beep", "beep_timeout": 45},
         "endpoint": [{"type": "phone", "number": "+447700900001", "dtmfAnswer": "2p02p",
           "onAnswer": {"url": "https://example.com/answer.json",
                        "ringbackTone": "http://example.com/ringbackTone.wav"}}]}]"#,
    // Wait
    r#"[
      {"action": "talk", "text": "Hello"},
      {"action": "wait", "timeout": 0.5},
      {"action": "talk", "text": "World"},
      {"action": "wait"}
    ]"#,
    // Talk options
    r#"[{"action": "talk", "text": "<speak>Hello <break time='1s'/> there</speak>",
         "language": "en-GB", "style": 1, "premium": true, "level": -0.4, "loop": 2}]"#,
];

#[test]
fn documentation_examples_parse_and_round_trip() {
    for json in EXAMPLES {
        let ncco = parse_ok(json);
        let again = parse_ok(&String::from_utf8(ncco.to_vec()).expect("utf-8"));
        assert_eq!(again, ncco, "round trip changed {json}");
    }
}

#[test]
fn fields_land_where_they_belong() {
    let ncco = parse_ok(EXAMPLES[1]);
    let Action::Record(r) = &ncco.actions[1] else {
        panic!("expected record")
    };
    assert_eq!(r.end_on_silence, Some(3));
    assert_eq!(r.end_on_key, Some('#'));
    assert!(r.beep_start && r.is_synchronous());
    assert_eq!(
        r.event_url.as_deref(),
        Some("https://example.com/recordings")
    );
    assert_eq!(r.format, RecordFormat::Wav, "callmux defaults to wav");
    assert_eq!(r.time_out, 7200);

    let ncco = parse_ok(EXAMPLES[2]);
    let Action::Record(r) = &ncco.actions[0] else {
        panic!("expected record")
    };
    assert_eq!(r.channel_layout(), ChannelLayout::Multi(2));
    assert_eq!(r.split, Some(Split::Conversation));
    assert!(!r.is_synchronous());

    let ncco = parse_ok(EXAMPLES[4]);
    let Action::Input(i) = &ncco.actions[1] else {
        panic!("expected input")
    };
    assert_eq!(
        (i.dtmf.max_digits, i.dtmf.time_out, i.dtmf.submit_on_hash),
        (1, 10, true)
    );

    let ncco = parse_ok(EXAMPLES[10]);
    let Action::Connect(c) = &ncco.actions[0] else {
        panic!("expected connect")
    };
    assert_eq!(c.event_type, Some(ConnectEventType::Synchronous));
    assert_eq!((c.timeout, c.limit), (5, 7200));
    assert!(matches!(&c.endpoint, Endpoint::Phone(p) if p.number == "447700900001"));

    let ncco = parse_ok(EXAMPLES[14]);
    let Action::Connect(c) = &ncco.actions[0] else {
        panic!("expected connect")
    };
    let amd = c.advanced_machine_detection.expect("amd");
    assert_eq!(
        (amd.behavior, amd.mode, amd.beep_timeout),
        (MachineDetection::Hangup, AmdMode::DetectBeep, 45)
    );
    let Endpoint::Phone(p) = &c.endpoint else {
        panic!("expected phone")
    };
    assert_eq!(p.dtmf_answer.as_deref(), Some("2p02p"));
    assert_eq!(
        p.on_answer
            .as_ref()
            .and_then(|o| o.ringback_tone.as_deref()),
        Some("http://example.com/ringbackTone.wav")
    );

    let ncco = parse_ok(EXAMPLES[15]);
    let waits: Vec<f64> = ncco
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Wait(w) => Some(w.timeout),
            _ => None,
        })
        .collect();
    assert_eq!(waits, vec![0.5, 10.0]);
}

#[test]
fn defaults_are_the_hosted_apis() {
    let ncco = parse_ok(
        r#"[{"action":"talk","text":"t"},{"action":"stream","streamUrl":["https://s.example/a.wav"]},
            {"action":"input","type":["dtmf"]},{"action":"conversation","name":"c"},
            {"action":"connect","endpoint":[{"type":"app","user":"u"}]},
            {"action":"record","eventMethod":"get"}]"#,
    );
    let [Action::Talk(t), Action::Stream(s), Action::Input(i), Action::Conversation(c), Action::Connect(k), Action::Record(r)] =
        ncco.actions.as_slice()
    else {
        panic!("unexpected actions {ncco:?}")
    };
    assert_eq!(
        (t.loop_count, t.level, t.barge_in, t.premium),
        (1, 0.0, false, false)
    );
    assert_eq!((s.loop_count, s.level, s.barge_in), (1, 0.0, false));
    assert_eq!(
        (i.dtmf.max_digits, i.dtmf.time_out, i.dtmf.submit_on_hash),
        (4, 3, false)
    );
    assert_eq!(i.event_method, EventMethod::Post);
    assert!(c.start_on_enter && !c.end_on_exit && !c.record && !c.mute);
    assert_eq!(
        (k.timeout, k.limit, k.random_from_number),
        (60, 7200, false)
    );
    assert_eq!(
        r.event_method,
        EventMethod::Get,
        "eventMethod is case-insensitive"
    );
    assert_eq!(r.channel_layout(), ChannelLayout::Mono);
}

#[test]
fn default_ncco_records_split_until_the_caller_hangs_up() {
    let ncco = default_ncco();
    let json = ncco.to_json();
    assert_eq!(json[0]["action"], "record");
    assert_eq!(json[0]["split"], "conversation");
    assert_eq!(json[0]["format"], "wav");
    assert_eq!(json[1]["action"], "wait");
    assert_eq!(parse_ok(&json.to_string()), ncco);
    let Action::Record(r) = &ncco.actions[0] else {
        panic!("expected record")
    };
    assert!(!r.is_synchronous());
    assert_eq!(r.channel_layout(), ChannelLayout::Split);
}

#[test]
fn serialised_form_uses_hosted_field_names() {
    let ncco = parse_ok(EXAMPLES[12]);
    let json = ncco.to_json();
    assert_eq!(json[0]["endpoint"][0]["type"], "websocket");
    assert_eq!(
        json[0]["endpoint"][0]["content-type"],
        "audio/l16;rate=16000"
    );
    let ncco = parse_ok(EXAMPLES[1]);
    let json = ncco.to_json();
    assert_eq!(json[1]["endOnKey"], "#");
    assert_eq!(json[1]["eventUrl"][0], "https://example.com/recordings");
    assert_eq!(json[1]["timeOut"], 7200);
    let ncco = parse_ok(EXAMPLES[9]);
    assert_eq!(ncco.to_json()[0]["loop"], 0);
}
