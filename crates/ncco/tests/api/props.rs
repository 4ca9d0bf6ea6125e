//! Property tests: no input, however malformed, makes the parser or the runner panic, and
//! whatever parses survives a serialise/parse round trip.

use callmux_ncco::{fuzzing, validate_value, Capabilities};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Map, Value};

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const ACTIONS: &[&str] = &[
    "record",
    "talk",
    "stream",
    "input",
    "notify",
    "wait",
    "connect",
    "conversation",
    "transfer",
    "pay",
    "dance",
];

const FIELDS: &[&str] = &[
    "format",
    "split",
    "channels",
    "endOnSilence",
    "endOnKey",
    "timeOut",
    "beepStart",
    "eventUrl",
    "eventMethod",
    "text",
    "bargeIn",
    "loop",
    "level",
    "language",
    "style",
    "premium",
    "streamUrl",
    "type",
    "dtmf",
    "mode",
    "speech",
    "payload",
    "timeout",
    "endpoint",
    "from",
    "randomFromNumber",
    "eventType",
    "limit",
    "machineDetection",
    "advancedMachineDetection",
    "ringbackTone",
    "name",
    "musicOnHoldUrl",
    "startOnEnter",
    "endOnExit",
    "record",
    "canSpeak",
    "canHear",
    "mute",
];

/// Values that are often close to valid, so the walk gets deep into each action.
fn near_valid_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..8000).prop_map(|i| json!(i)),
        (-2.0f64..8000.0).prop_map(|f| json!(f)),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![
            json!("conversation"),
            json!("wav"),
            json!("mp3"),
            json!("#"),
            json!("POST"),
            json!("synchronous"),
            json!(["https://e.example/x"]),
            json!(["dtmf"]),
            json!(["speech"]),
            json!({"maxDigits": 3, "timeOut": 2, "submitOnHash": true}),
            json!([{"type": "phone", "number": "447700900001"}]),
            json!([{"type": "sip", "uri": "sip:a@b.example", "headers": {"X-A": "b"}}]),
            json!([{"type": "websocket", "uri": "wss://w.example", "content-type": "audio/l16;rate=8000"}]),
            json!([{"type": "app", "user": "u"}]),
            json!([{"type": "vbc", "extension": "1"}]),
            json!({"behavior": "hangup", "mode": "detect", "beep_timeout": 60}),
            json!({"a": 1}),
            json!("en-US"),
            json!("hello"),
            json!([]),
            json!({}),
        ]),
        any_json(),
    ]
}

/// The fields an action may carry, so that generated actions are often valid.
fn fields_of(action: &str) -> &'static [&'static str] {
    match action {
        "record" => &FIELDS[..9],
        "talk" => &FIELDS[9..16],
        "stream" => &["streamUrl", "level", "bargeIn", "loop"],
        "input" => &["type", "dtmf", "eventUrl", "eventMethod", "mode"],
        "notify" => &["payload", "eventUrl", "eventMethod"],
        "wait" => &["timeout"],
        "connect" => &[
            "endpoint",
            "from",
            "randomFromNumber",
            "eventType",
            "timeout",
            "limit",
            "machineDetection",
            "advancedMachineDetection",
            "eventUrl",
            "eventMethod",
            "ringbackTone",
        ],
        "conversation" => &FIELDS[31..],
        _ => FIELDS,
    }
}

/// A minimal valid object for `action` (unknown names get just the action field).
fn base_of(action: &str) -> Map<String, Value> {
    let base = match action {
        "talk" => json!({"text": "hi"}),
        "stream" => json!({"streamUrl": ["https://s.example/a.wav"]}),
        "input" => json!({"type": ["dtmf"]}),
        "notify" => json!({"payload": {}, "eventUrl": ["https://e.example/n"]}),
        "connect" => json!({"endpoint": [{"type": "app", "user": "u"}]}),
        "conversation" => json!({"name": "room"}),
        _ => json!({}),
    };
    let mut map = match base {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    map.insert("action".into(), json!(action));
    map
}

fn near_valid_action() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(ACTIONS),
        prop::collection::vec((any::<prop::sample::Index>(), near_valid_value()), 0..4),
        any::<bool>(),
    )
        .prop_map(|(action, fields, any_field)| {
            let mut map = base_of(action);
            let names = if any_field { FIELDS } else { fields_of(action) };
            for (k, v) in fields {
                map.insert(k.get(names).to_string(), v);
            }
            Value::Object(map)
        })
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=N for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::parse(&data);
    }

    #[test]
    fn random_json_never_panics(value in any_json()) {
        if let Err(e) = validate_value(&value, &Capabilities::all()) {
            let prefix = format!("{}: ", e.path);
            prop_assert!(e.to_string().starts_with(&prefix), "display without path: {}", e);
        }
        fuzzing::parse(value.to_string().as_bytes());
    }

    #[test]
    fn near_valid_nccos_never_panic_and_round_trip(actions in prop::collection::vec(near_valid_action(), 1..5)) {
        let doc = Value::Array(actions);
        // fuzzing::parse asserts the round trip and drives a runner over any valid NCCO.
        fuzzing::parse(doc.to_string().as_bytes());
        match validate_value(&doc, &Capabilities::all()) {
            Ok(ncco) => {
                prop_assert_eq!(validate_value(&ncco.to_json(), &Capabilities::all()), Ok(ncco));
            }
            Err(e) => prop_assert!(e.path.starts_with('$')),
        }
    }

    #[test]
    fn random_runner_scripts_never_panic(script in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::runner(&script);
    }
}

#[test]
fn the_near_valid_generator_produces_valid_nccos() {
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(near_valid_action(), 1..3);
    let mut valid = 0;
    for _ in 0..2000 {
        let doc = Value::Array(strategy.new_tree(&mut runner).expect("tree").current());
        if validate_value(&doc, &Capabilities::all()).is_ok() {
            valid += 1;
        }
    }
    eprintln!("{valid} of 2000 generated NCCOs were valid");
    assert!(
        valid >= 100,
        "only {valid} of 2000 generated NCCOs were valid"
    );
}
