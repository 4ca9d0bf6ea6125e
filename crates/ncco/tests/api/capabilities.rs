//! Capability gating: valid but unimplemented actions, fields and values are rejected with
//! NotImplemented at their path, never ignored.

use callmux_ncco::{parse_ncco, Capabilities, NccoErrorKind};

use crate::parse;

fn parse_with(
    json: &str,
    caps: &Capabilities,
) -> Result<callmux_ncco::Ncco, callmux_ncco::NccoError> {
    parse_ncco(json.as_bytes(), caps)
}

#[test]
fn an_action_outside_the_capabilities_is_not_implemented() {
    let caps = Capabilities::only_actions(&["record", "talk"]);
    let json = r#"[{"action":"talk","text":"hi"},{"action":"connect","endpoint":[{"type":"app","user":"a"}]}]"#;
    let err = parse_with(json, &caps).expect_err("connect is off");
    assert_eq!(
        err.to_string(),
        "$[1].action: \"connect\" is not implemented by this server yet"
    );
    assert!(err.is_not_implemented());
    assert!(parse(json).is_ok(), "all capabilities accept it");

    let caps = Capabilities::all().without_action("talk");
    let err = parse_with(json, &caps).expect_err("talk is off");
    assert_eq!(err.path, "$[0].action");
}

#[test]
fn a_field_outside_the_capabilities_is_not_implemented_even_at_its_default() {
    let caps = Capabilities::all().without_field("record", "beepStart");
    let err = parse_with(r#"[{"action":"record","beepStart":false}]"#, &caps)
        .expect_err("beepStart is off");
    assert_eq!(err.path, "$[0].beepStart");
    assert!(
        matches!(&err.kind, NccoErrorKind::NotImplemented { what } if what.contains("beepStart"))
    );
    assert!(parse_with(r#"[{"action":"record"}]"#, &caps).is_ok());

    let caps = Capabilities::all().without_field("input", "dtmf.submitOnHash");
    let err = parse_with(
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"submitOnHash":true}}]"#,
        &caps,
    )
    .expect_err("nested field is off");
    assert_eq!(err.path, "$[0].dtmf.submitOnHash");
    assert!(err.is_not_implemented());
}

#[test]
fn a_value_outside_the_capabilities_is_not_implemented() {
    let caps = Capabilities::all()
        .without_value("record", "format", "mp3")
        .without_value("connect", "endpoint.type", "websocket");
    let err = parse_with(r#"[{"action":"record","format":"mp3"}]"#, &caps).expect_err("mp3 is off");
    assert_eq!(err.path, "$[0].format");
    assert!(err.is_not_implemented());
    assert!(parse_with(r#"[{"action":"record","format":"wav"}]"#, &caps).is_ok());

    let ws = r#"[{"action":"connect","endpoint":[{"type":"websocket","uri":"ws://w.example","content-type":"audio/l16;rate=8000"}]}]"#;
    let err = parse_with(ws, &caps).expect_err("websocket is off");
    assert_eq!(err.path, "$[0].endpoint[0].type");
    assert!(err.is_not_implemented());
}

#[test]
fn hosted_features_the_crate_does_not_model_are_not_implemented() {
    let cases = [
        (
            r#"[{"action":"transfer","conversation_id":"c"}]"#,
            "$[0].action",
        ),
        (r#"[{"action":"pay","amount":1}]"#, "$[0].action"),
        (r#"[{"action":"input","type":["speech"]}]"#, "$[0].type[0]"),
        (
            r#"[{"action":"input","type":["dtmf"],"speech":{"uuid":["u"]}}]"#,
            "$[0].speech",
        ),
        (
            r#"[{"action":"input","type":["dtmf"],"mode":"asynchronous"}]"#,
            "$[0].mode",
        ),
        (
            r#"[{"action":"talk","text":"hi","voiceName":"Amy"}]"#,
            "$[0].voiceName",
        ),
        (
            r#"[{"action":"connect","endpoint":[{"type":"vbc","extension":"123"}]}]"#,
            "$[0].endpoint[0].type",
        ),
        (
            r#"[{"action":"conversation","name":"c","transcription":{}}]"#,
            "$[0].transcription",
        ),
        (
            r#"[{"action":"record","transcription":{}}]"#,
            "$[0].transcription",
        ),
    ];
    for (json, path) in cases {
        let err = parse(json).expect_err(json);
        assert_eq!(err.path, path, "{json}: {err}");
        assert!(err.is_not_implemented(), "{json}: {err}");
        assert!(
            err.to_string()
                .ends_with("is not implemented by this server yet"),
            "{err}"
        );
    }
}

#[test]
fn the_first_not_implemented_in_document_order_is_reported() {
    let caps = Capabilities::only_actions(&["talk"]);
    let json = r#"[{"action":"talk","text":"a"},{"action":"wait"},{"action":"notify","payload":{},"eventUrl":["https://e.example"]}]"#;
    assert_eq!(
        parse_with(json, &caps).expect_err("off").path,
        "$[1].action"
    );
}

#[test]
fn capability_sets_compose() {
    let caps = Capabilities::only_actions(&["record", "no-such-action"]);
    assert_eq!(caps.actions().collect::<Vec<_>>(), vec!["record"]);
    assert!(caps.allows_action("record") && !caps.allows_action("talk"));
    let caps = Capabilities::all()
        .without_field("talk", "premium")
        .without_value("talk", "x", "y");
    assert!(!caps.allows_field("talk", "premium") && caps.allows_field("talk", "level"));
    assert!(!caps.allows_value("talk", "x", "y") && caps.allows_value("talk", "x", "z"));
    assert_eq!(Capabilities::default(), Capabilities::all());
}
