//! Bad NCCOs: each must fail at exactly the given path with the given rule.

use callmux_ncco::{NccoErrorKind as K, MAX_ACTIONS, MAX_NCCO_BYTES};

use crate::parse;

type Rule = fn(&K) -> bool;

/// (NCCO, expected path, expected rule)
const CASES: &[(&str, &str, Rule)] = &[
    // Document shape
    ("{}", "$", |k| matches!(k, K::NotAnArray { .. })),
    ("\"record\"", "$", |k| matches!(k, K::NotAnArray { .. })),
    ("[]", "$", |k| matches!(k, K::Empty)),
    ("not json", "$", |k| matches!(k, K::InvalidJson { .. })),
    ("[{\"action\":\"talk\"", "$", |k| {
        matches!(k, K::InvalidJson { .. })
    }),
    ("[1]", "$[0]", |k| matches!(k, K::WrongType { .. })),
    (
        "[{}]",
        "$[0].action",
        |k| matches!(k, K::MissingField { field } if field == "action"),
    ),
    (r#"[{"action":5}]"#, "$[0].action", |k| {
        matches!(k, K::WrongType { .. })
    }),
    (
        r#"[{"action":"dance"}]"#,
        "$[0].action",
        |k| matches!(k, K::UnknownAction { name, .. } if name == "\"dance\""),
    ),
    // record
    (
        r#"[{"action":"record","channels":0}]"#,
        "$[0].channels",
        |k| matches!(k, K::OutOfRange { got, .. } if got == "0"),
    ),
    (
        r#"[{"action":"record","channels":33}]"#,
        "$[0].channels",
        |k| matches!(k, K::OutOfRange { got, .. } if got == "33"),
    ),
    (
        r#"[{"action":"record","channels":"2"}]"#,
        "$[0].channels",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"record","channels":2.5}]"#,
        "$[0].channels",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"record","endOnSilence":2}]"#,
        "$[0].endOnSilence",
        |k| matches!(k, K::OutOfRange { got, .. } if got == "2"),
    ),
    (
        r#"[{"action":"record","endOnSilence":11}]"#,
        "$[0].endOnSilence",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"record","endOnKey":"ab"}]"#,
        "$[0].endOnKey",
        |k| matches!(k, K::NotOneOf { got, allowed } if got == "\"ab\"" && allowed.len() == 12),
    ),
    (
        r#"[{"action":"record","endOnKey":5}]"#,
        "$[0].endOnKey",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"record","timeOut":8000}]"#,
        "$[0].timeOut",
        |k| matches!(k, K::OutOfRange { got, .. } if got == "8000"),
    ),
    (
        r#"[{"action":"record","timeOut":2}]"#,
        "$[0].timeOut",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"record","format":"flac"}]"#,
        "$[0].format",
        |k| matches!(k, K::NotOneOf { got, allowed } if got == "\"flac\"" && allowed == &["wav", "mp3", "ogg"]),
    ),
    (
        r#"[{"action":"record","split":"yes"}]"#,
        "$[0].split",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"record","beepStart":"true"}]"#,
        "$[0].beepStart",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"record","eventUrl":"https://example.com/r"}]"#,
        "$[0].eventUrl",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"record","eventUrl":[]}]"#,
        "$[0].eventUrl",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"record","eventUrl":["ftp://example.com/r"]}]"#,
        "$[0].eventUrl[0]",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"record","eventUrl":["https:///nohost"]}]"#,
        "$[0].eventUrl[0]",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"record","eventMethod":"PUT"}]"#,
        "$[0].eventMethod",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"record","foo":1}]"#,
        "$[0].foo",
        |k| matches!(k, K::UnknownField { field, .. } if field == "\"foo\""),
    ),
    (
        r#"[{"action":"record","my field":1}]"#,
        "$[0][\"my field\"]",
        |k| matches!(k, K::UnknownField { .. }),
    ),
    // talk
    (
        r#"[{"action":"talk"}]"#,
        "$[0].text",
        |k| matches!(k, K::MissingField { field } if field == "text"),
    ),
    (r#"[{"action":"talk","text":""}]"#, "$[0].text", |k| {
        matches!(k, K::InvalidValue { .. })
    }),
    (r#"[{"action":"talk","text":["hi"]}]"#, "$[0].text", |k| {
        matches!(k, K::WrongType { .. })
    }),
    (
        r#"[{"action":"talk","text":"hi","level":2}]"#,
        "$[0].level",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"talk","text":"hi","loop":-1}]"#,
        "$[0].loop",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"talk","text":"hi","language":"english!"}]"#,
        "$[0].language",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"talk","text":"hi","style":-1}]"#,
        "$[0].style",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"talk","text":"hi","premium":1}]"#,
        "$[0].premium",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"talk","text":"hi","bargeIn":true}]"#,
        "$[0].bargeIn",
        |k| matches!(k, K::Order { rule } if rule.contains("NCCO ends")),
    ),
    (
        r#"[{"action":"talk","text":"hi","bargeIn":true},{"action":"talk","text":"more"},{"action":"record"}]"#,
        "$[0].bargeIn",
        |k| matches!(k, K::Order { rule } if rule.contains("$[2] is \"record\"")),
    ),
    // stream
    (r#"[{"action":"stream"}]"#, "$[0].streamUrl", |k| {
        matches!(k, K::MissingField { .. })
    }),
    (
        r#"[{"action":"stream","streamUrl":["https://a.example/1.mp3","https://a.example/2.mp3"]}]"#,
        "$[0].streamUrl",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"stream","streamUrl":["https://a.example/1.mp3"],"level":-1.5}]"#,
        "$[0].level",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    // input
    (r#"[{"action":"input"}]"#, "$[0].type", |k| {
        matches!(k, K::MissingField { .. })
    }),
    (r#"[{"action":"input","type":[]}]"#, "$[0].type", |k| {
        matches!(k, K::InvalidValue { .. })
    }),
    (r#"[{"action":"input","type":"dtmf"}]"#, "$[0].type", |k| {
        matches!(k, K::WrongType { .. })
    }),
    (
        r#"[{"action":"input","type":["dtmf","fax"]}]"#,
        "$[0].type[1]",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"maxDigits":21}}]"#,
        "$[0].dtmf.maxDigits",
        |k| matches!(k, K::OutOfRange { got, .. } if got == "21"),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"maxDigits":0}}]"#,
        "$[0].dtmf.maxDigits",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"timeOut":11}}]"#,
        "$[0].dtmf.timeOut",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"submitOnHash":"yes"}}]"#,
        "$[0].dtmf.submitOnHash",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"digits":4}}]"#,
        "$[0].dtmf.digits",
        |k| matches!(k, K::UnknownField { .. }),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"dtmf":[]}]"#,
        "$[0].dtmf",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"input","type":["speech"],"dtmf":{}}]"#,
        "$[0].dtmf",
        |k| matches!(k, K::Conflict { .. }),
    ),
    (
        r#"[{"action":"input","type":["dtmf"],"mode":"later"}]"#,
        "$[0].mode",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    // notify
    (
        r#"[{"action":"notify","eventUrl":["https://e.example/n"]}]"#,
        "$[0].payload",
        |k| matches!(k, K::MissingField { .. }),
    ),
    (
        r#"[{"action":"notify","payload":"x","eventUrl":["https://e.example/n"]}]"#,
        "$[0].payload",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"notify","payload":{}}]"#,
        "$[0].eventUrl",
        |k| matches!(k, K::MissingField { .. }),
    ),
    // wait
    (
        r#"[{"action":"wait","timeout":0.05}]"#,
        "$[0].timeout",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"wait","timeout":7201}]"#,
        "$[0].timeout",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"wait","timeout":"10"}]"#,
        "$[0].timeout",
        |k| matches!(k, K::WrongType { .. }),
    ),
    // connect
    (r#"[{"action":"connect"}]"#, "$[0].endpoint", |k| {
        matches!(k, K::MissingField { .. })
    }),
    (
        r#"[{"action":"connect","endpoint":[]}]"#,
        "$[0].endpoint",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":{"type":"app","user":"a"}}]"#,
        "$[0].endpoint",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"fax"}]}]"#,
        "$[0].endpoint[0].type",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"phone","number":"abc"}]}]"#,
        "$[0].endpoint[0].number",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"phone","number":"1234567890123456"}]}]"#,
        "$[0].endpoint[0].number",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"sip","uri":"http://x.example"}]}]"#,
        "$[0].endpoint[0].uri",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"sip","uri":"sip:a@b.example","headers":{"X-Foo":"a\r\nVia: evil"}}]}]"#,
        "$[0].endpoint[0].headers.X-Foo",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"sip","uri":"sip:a@b.example","headers":{"Bad Name":"v"}}]}]"#,
        "$[0].endpoint[0].headers[\"Bad Name\"]",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"websocket","uri":"wss://w.example/s","content-type":"audio/pcm"}]}]"#,
        "$[0].endpoint[0].content-type",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app"}]}]"#,
        "$[0].endpoint[0].user",
        |k| matches!(k, K::MissingField { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a","x":1}]}]"#,
        "$[0].endpoint[0].x",
        |k| matches!(k, K::UnknownField { object, .. } if object == "endpoint type \"app\""),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"limit":7201}]"#,
        "$[0].limit",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"timeout":0}]"#,
        "$[0].timeout",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"from":"447700900000","randomFromNumber":true}]"#,
        "$[0].randomFromNumber",
        |k| matches!(k, K::Conflict { rule } if rule.contains("$[0].from")),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"eventType":"async"}]"#,
        "$[0].eventType",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"machineDetection":"maybe"}]"#,
        "$[0].machineDetection",
        |k| matches!(k, K::NotOneOf { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"advancedMachineDetection":{"beep_timeout":30}}]"#,
        "$[0].advancedMachineDetection.beep_timeout",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"a"}],"ringbackTone":"tone.wav"}]"#,
        "$[0].ringbackTone",
        |k| matches!(k, K::InvalidValue { .. }),
    ),
    // conversation
    (r#"[{"action":"conversation"}]"#, "$[0].name", |k| {
        matches!(k, K::MissingField { .. })
    }),
    (
        r#"[{"action":"conversation","name":"r","canSpeak":["a"],"mute":true}]"#,
        "$[0].mute",
        |k| matches!(k, K::Conflict { .. }),
    ),
    (
        r#"[{"action":"conversation","name":"r","canHear":[1]}]"#,
        "$[0].canHear[0]",
        |k| matches!(k, K::WrongType { .. }),
    ),
    (
        r#"[{"action":"conversation","name":"r","startOnEnter":"no"}]"#,
        "$[0].startOnEnter",
        |k| matches!(k, K::WrongType { .. }),
    ),
    // Paths point at the right action, and structural errors win over "not implemented".
    (
        r#"[{"action":"talk","text":"hi"},{"action":"record","channels":99}]"#,
        "$[1].channels",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
    (
        r#"[{"action":"transfer"},{"action":"record","channels":99}]"#,
        "$[1].channels",
        |k| matches!(k, K::OutOfRange { .. }),
    ),
];

#[test]
fn every_bad_ncco_fails_at_its_path_with_its_rule() {
    assert!(CASES.len() >= 40, "the table must stay large");
    for (json, path, rule) in CASES {
        let err = match parse(json) {
            Ok(ncco) => panic!("expected an error for {json}, got {ncco:?}"),
            Err(e) => e,
        };
        assert_eq!(err.path, *path, "wrong path for {json}: {err}");
        assert!(rule(&err.kind), "wrong rule for {json}: {err:?}");
        assert!(
            err.to_string().starts_with(&format!("{path}: ")),
            "display must start with the path: {err}"
        );
    }
}

#[test]
fn messages_read_as_documented() {
    let cases = [
        (
            r#"[{"action":"record","channels":33}]"#,
            "$[0].channels: must be an integer 1..=32, got 33",
        ),
        (
            r#"[{"action":"record","endOnSilence":2}]"#,
            "$[0].endOnSilence: must be an integer 3..=10, got 2",
        ),
        (
            r#"[{"action":"record","timeOut":8000}]"#,
            "$[0].timeOut: must be an integer 3..=7200, got 8000",
        ),
        (
            r#"[{"action":"record","format":"flac"}]"#,
            "$[0].format: must be one of \"wav\", \"mp3\", \"ogg\", got \"flac\"",
        ),
        (
            r#"[{"action":"input","type":["dtmf"],"dtmf":{"maxDigits":21}}]"#,
            "$[0].dtmf.maxDigits: must be an integer 1..=20, got 21",
        ),
        (
            "[]",
            "$: an NCCO must contain at least one action, got an empty array",
        ),
        (
            "{}",
            "$: an NCCO must be a JSON array of actions, got an object",
        ),
        (
            r#"[{"action":"talk"}]"#,
            "$[0].text: required field \"text\" is missing",
        ),
        (
            r#"[{"action":"wait","timeout":"10"}]"#,
            "$[0].timeout: must be a number 0.1..=7200, got \"10\"",
        ),
    ];
    for (json, message) in cases {
        let err = parse(json).expect_err(json);
        assert_eq!(err.to_string(), message);
    }
    let unknown = parse(r#"[{"action":"record","foo":1}]"#).expect_err("unknown field");
    assert_eq!(
        unknown.to_string(),
        "$[0].foo: unknown field \"foo\" for action \"record\"; allowed: format, split, channels, \
         endOnSilence, endOnKey, timeOut, beepStart, eventUrl, eventMethod"
    );
    let action = parse(r#"[{"action":"dance"}]"#).expect_err("unknown action");
    assert!(action
        .to_string()
        .starts_with("$[0].action: unknown action \"dance\"; known actions: record, talk"));
}

#[test]
fn too_many_actions_and_too_many_bytes_are_refused() {
    let one = r#"{"action":"talk","text":"hi"}"#;
    let many = format!("[{}]", vec![one; MAX_ACTIONS + 1].join(","));
    let err = parse(&many).expect_err("too many");
    assert_eq!(err.path, "$");
    assert_eq!(
        err.kind,
        callmux_ncco::NccoErrorKind::TooManyActions {
            max: MAX_ACTIONS,
            got: MAX_ACTIONS + 1
        }
    );
    let exactly = format!("[{}]", vec![one; MAX_ACTIONS].join(","));
    assert_eq!(crate::parse_ok(&exactly).actions.len(), MAX_ACTIONS);

    let huge = format!(
        r#"[{{"action":"talk","text":"{}"}}]"#,
        "a".repeat(MAX_NCCO_BYTES)
    );
    assert!(matches!(
        parse(&huge).expect_err("too large").kind,
        K::TooLarge { .. }
    ));
}

#[test]
fn long_values_are_truncated_in_messages() {
    let long = "x".repeat(500);
    let err =
        parse(&format!(r#"[{{"action":"record","format":"{long}"}}]"#)).expect_err("bad format");
    assert!(err.to_string().len() < 200, "message too long: {err}");
    let err = parse(&format!(r#"[{{"action":"record","{long}":1}}]"#)).expect_err("bad key");
    assert!(err.path.len() < 80, "path too long: {}", err.path);
}

#[test]
fn talk_text_limit_counts_spoken_characters_only() {
    let exactly = "a".repeat(1500);
    crate::parse_ok(&format!(r#"[{{"action":"talk","text":"{exactly}"}}]"#));
    let ssml = format!(
        r#"[{{"action":"talk","text":"<speak><prosody rate='slow'>{exactly}</prosody></speak>"}}]"#
    );
    crate::parse_ok(&ssml);
    let over = "a".repeat(1501);
    let err = parse(&format!(r#"[{{"action":"talk","text":"{over}"}}]"#)).expect_err("too long");
    assert_eq!(err.path, "$[0].text");
    assert!(matches!(err.kind, K::InvalidValue { ref got, .. } if got == "1501 characters"));
}

#[test]
fn integers_written_as_whole_floats_are_accepted() {
    let ncco = crate::parse_ok(r#"[{"action":"record","channels":4.0,"endOnSilence":3}]"#);
    let callmux_ncco::Action::Record(r) = &ncco.actions[0] else {
        panic!("not a record")
    };
    assert_eq!(r.channels, Some(4));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        parse(&deep).expect_err("deep").kind,
        K::InvalidJson { .. }
    ));
    let payload = format!(
        r#"[{{"action":"notify","payload":{{"a":{}1{}}},"eventUrl":["https://e.example"]}}]"#,
        "[".repeat(120),
        "]".repeat(120)
    );
    // 120 levels is within serde_json's limit: fine as a payload.
    crate::parse_ok(&payload);
}
