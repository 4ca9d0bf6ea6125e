//! Runner scenarios for `input` (each end condition, answers) and `bargeIn`.

use callmux_ncco::{Command, HangupReason, InputResult, RunnerInput as In};

use crate::parse_ok;
use crate::runner::{hangup, id, is_play, Harness};

fn submitted(cmds: &[Command]) -> Option<InputResult> {
    cmds.iter().find_map(|c| match c {
        Command::SubmitInput { result, .. } => Some(result.clone()),
        _ => None,
    })
}

fn result(dtmf: &str, timed_out: bool) -> Option<InputResult> {
    Some(InputResult {
        dtmf: dtmf.to_owned(),
        timed_out,
    })
}

const IVR: &str = r#"[{"action":"input","type":["dtmf"],"eventUrl":["https://e.example/ivr"]},
                      {"action":"talk","text":"rest"}]"#;

#[test]
fn input_submits_when_max_digits_are_reached() {
    let mut h = Harness::new(IVR);
    assert!(matches!(&h.first[..], [Command::CollectDigits { id: i, .. }] if *i == id(1)));
    for d in ['1', '2', '3'] {
        assert!(h.input(In::Dtmf { digit: d }).is_empty());
    }
    let cmds = h.input(In::Dtmf { digit: '4' });
    assert!(
        matches!(&cmds[..], [Command::SubmitInput { id: i, input, .. }] if *i == id(1)
        && input.event_url.as_deref() == Some("https://e.example/ivr"))
    );
    assert_eq!(submitted(&cmds), result("1234", false));
    assert_eq!(h.deadline(), None, "waiting for the answer has no deadline");
    assert!(
        h.input(In::Dtmf { digit: '5' }).is_empty(),
        "keys after submitting are dropped"
    );
}

#[test]
fn input_times_out_at_start_without_keys() {
    let mut h = Harness::new(IVR);
    assert_eq!(h.deadline(), Some(3.0));
    assert!(h.timeout_at(2.9).is_empty());
    assert_eq!(submitted(&h.timeout_at(3.0)), result("", true));
}

#[test]
fn input_time_out_restarts_after_each_key() {
    let mut h =
        Harness::new(r#"[{"action":"input","type":["dtmf"],"dtmf":{"timeOut":5,"maxDigits":10}}]"#);
    assert!(h.input_at(2.0, In::Dtmf { digit: '7' }).is_empty());
    assert_eq!(h.deadline(), Some(7.0));
    assert!(h.timeout_at(6.0).is_empty());
    assert!(h.input_at(6.0, In::Dtmf { digit: '8' }).is_empty());
    assert!(h.timeout_at(10.0).is_empty());
    assert_eq!(submitted(&h.timeout_at(11.0)), result("78", true));
}

#[test]
fn input_time_out_zero_submits_immediately() {
    let mut h = Harness::new(r#"[{"action":"input","type":["dtmf"],"dtmf":{"timeOut":0}}]"#);
    assert_eq!(h.deadline(), Some(0.0));
    assert_eq!(submitted(&h.timeout_at(0.0)), result("", true));
}

#[test]
fn hash_submits_with_submit_on_hash_and_is_a_digit_without_it() {
    let mut h = Harness::new(
        r#"[{"action":"input","type":["dtmf"],"dtmf":{"submitOnHash":true,"maxDigits":10}}]"#,
    );
    h.input(In::Dtmf { digit: '1' });
    h.input(In::Dtmf { digit: '*' });
    assert_eq!(
        submitted(&h.input(In::Dtmf { digit: '#' })),
        result("1*", false)
    );

    let mut h = Harness::new(r#"[{"action":"input","type":["dtmf"],"dtmf":{"maxDigits":2}}]"#);
    h.input(In::Dtmf { digit: '#' });
    assert_eq!(
        submitted(&h.input(In::Dtmf { digit: '1' })),
        result("#1", false)
    );

    let mut h =
        Harness::new(r#"[{"action":"input","type":["dtmf"],"dtmf":{"submitOnHash":true}}]"#);
    assert_eq!(
        submitted(&h.input(In::Dtmf { digit: '#' })),
        result("", false),
        "# alone submits nothing"
    );
}

#[test]
fn invalid_keys_are_ignored_and_letters_are_normalised() {
    let mut h = Harness::new(r#"[{"action":"input","type":["dtmf"],"dtmf":{"maxDigits":2}}]"#);
    assert!(h.input(In::Dtmf { digit: 'x' }).is_empty());
    assert!(h.input(In::Dtmf { digit: '\u{0}' }).is_empty());
    assert!(h.input(In::Dtmf { digit: 'a' }).is_empty());
    assert_eq!(
        submitted(&h.input(In::Dtmf { digit: 'D' })),
        result("AD", false)
    );
}

#[test]
fn the_answer_ncco_replaces_the_rest_and_ids_keep_growing() {
    let mut h = Harness::new(IVR);
    h.input(In::Dtmf { digit: '1' });
    let cmds = h.timeout_at(3.5);
    assert_eq!(submitted(&cmds), result("1", true));
    assert!(
        h.input(In::InputAnswer {
            id: id(9),
            ncco: parse_ok(r#"[{"action":"wait"}]"#)
        })
        .is_empty(),
        "wrong id"
    );
    let next = h.input(In::InputAnswer {
        id: id(1),
        ncco: parse_ok(r#"[{"action":"talk","text":"sales"},{"action":"talk","text":"bye"}]"#),
    });
    assert!(
        matches!(&next[..], [Command::Play { id: i, source: callmux_ncco::PlaySource::Talk(t) }] if *i == id(2) && t.text == "sales")
    );
    let next = h.input(In::PlayFinished { id: id(2) });
    assert!(is_play(&next[0], 3));
    assert_eq!(
        h.input(In::PlayFinished { id: id(3) }),
        vec![hangup()],
        "the old rest never runs"
    );
}

#[test]
fn a_failed_answer_continues_with_the_rest_of_the_ncco() {
    let mut h = Harness::new(IVR);
    h.timeout_at(3.0);
    let next = h.input(In::InputAnswerFailed {
        id: id(1),
        reason: "HTTP 500 after retries".into(),
    });
    assert!(is_play(&next[0], 2));
}

#[test]
fn an_invalid_answer_fails_the_call() {
    let mut h = Harness::new(
        r#"[{"action":"record"},{"action":"input","type":["dtmf"]},{"action":"talk","text":"t"}]"#,
    );
    h.timeout_at(3.0);
    let error = crate::parse(r#"[{"action":"record","channels":33}]"#).expect_err("invalid");
    let cmds = h.input(In::InputAnswerInvalid {
        id: id(2),
        error: error.clone(),
    });
    assert_eq!(
        cmds,
        vec![
            Command::StopRecording {
                id: id(1),
                reason: callmux_ncco::RecordStopReason::NccoEnded
            },
            Command::Hangup {
                reason: HangupReason::InvalidNcco(error)
            }
        ]
    );
    assert!(h.runner.is_finished());
}

#[test]
fn an_async_recording_survives_ncco_replacement() {
    let mut h = Harness::new(
        r#"[{"action":"record"},{"action":"input","type":["dtmf"],"dtmf":{"maxDigits":1}}]"#,
    );
    h.input(In::Dtmf { digit: '2' });
    let next = h.input(In::InputAnswer {
        id: id(2),
        ncco: parse_ok(r#"[{"action":"talk","text":"t"}]"#),
    });
    assert!(is_play(&next[0], 3));
    assert_eq!(
        h.runner.active_recordings().collect::<Vec<_>>(),
        vec![id(1)]
    );
    assert_eq!(
        h.input(In::PlayFinished { id: id(3) }),
        vec![
            crate::runner::stop(1, callmux_ncco::RecordStopReason::NccoEnded),
            hangup()
        ]
    );
}

#[test]
fn call_ended_during_input_submits_nothing() {
    let mut h = Harness::new(IVR);
    h.input(In::Dtmf { digit: '1' });
    assert!(h.input(In::CallEnded).is_empty());
    assert!(h.timeout_at(100.0).is_empty());
}

#[test]
fn barge_in_stops_the_prompt_and_the_key_goes_to_the_input() {
    let mut h = Harness::new(
        r#"[{"action":"talk","text":"Press 1 for sales","bargeIn":true},
            {"action":"input","type":["dtmf"],"dtmf":{"maxDigits":2}}]"#,
    );
    assert!(is_play(&h.first[0], 1));
    let cmds = h.input_at(0.7, In::Dtmf { digit: '1' });
    assert!(
        matches!(&cmds[..], [Command::StopPlay { id: a }, Command::CollectDigits { id: b, .. }] if *a == id(1) && *b == id(2))
    );
    assert!(
        h.input(In::PlayFinished { id: id(1) }).is_empty(),
        "a late PlayFinished is ignored"
    );
    assert_eq!(
        submitted(&h.input(In::Dtmf { digit: '2' })),
        result("12", false)
    );
}

#[test]
fn barge_in_key_can_complete_the_input_at_once() {
    let mut h = Harness::new(
        r#"[{"action":"stream","streamUrl":["https://s.example/menu.mp3"],"bargeIn":true},
            {"action":"input","type":["dtmf"],"dtmf":{"maxDigits":1}}]"#,
    );
    let cmds = h.input(In::Dtmf { digit: '9' });
    assert!(matches!(&cmds[0], Command::StopPlay { .. }));
    assert!(matches!(&cmds[1], Command::CollectDigits { .. }));
    assert_eq!(submitted(&cmds), result("9", false));
}

#[test]
fn barge_in_stays_on_for_following_prompts_and_skips_them_once_used() {
    let json = r#"[{"action":"talk","text":"one","bargeIn":true},{"action":"talk","text":"two"},
                   {"action":"stream","streamUrl":["https://s.example/three.mp3"]},
                   {"action":"input","type":["dtmf"],"dtmf":{"maxDigits":3}}]"#;
    let mut h = Harness::new(json);
    let next = h.input(In::PlayFinished { id: id(1) });
    assert!(is_play(&next[0], 2));
    let cmds = h.input(In::Dtmf { digit: '5' });
    assert!(
        matches!(&cmds[..], [Command::StopPlay { id: a }, Command::CollectDigits { id: b, .. }] if *a == id(2) && *b == id(3)),
        "talk two is interruptible (sticky bargeIn) and the stream is skipped: {cmds:?}"
    );
}

#[test]
fn keys_during_a_prompt_without_barge_in_are_not_kept() {
    let mut h =
        Harness::new(r#"[{"action":"talk","text":"menu"},{"action":"input","type":["dtmf"]}]"#);
    assert!(h.input(In::Dtmf { digit: '1' }).is_empty());
    let next = h.input_at(2.0, In::PlayFinished { id: id(1) });
    assert!(matches!(&next[..], [Command::CollectDigits { .. }]));
    assert_eq!(submitted(&h.timeout_at(5.0)), result("", true));
}

#[test]
fn barge_in_keys_are_dropped_when_no_input_follows() {
    use callmux_ncco::{Action, Ncco, Talk, Wait};
    // Validation forbids this order; a hand-built NCCO must still behave.
    let ncco = Ncco {
        actions: vec![
            Action::Talk(Talk {
                text: "x".into(),
                barge_in: true,
                ..Talk::default()
            }),
            Action::Wait(Wait { timeout: 1.0 }),
            Action::Input(callmux_ncco::Input::default()),
        ],
    };
    let mut h = Harness::from_ncco(ncco, callmux_ncco::RunnerOptions::default());
    h.input(In::Dtmf { digit: '3' });
    let cmds = h.timeout_at(1.0);
    assert!(matches!(&cmds[..], [Command::CollectDigits { .. }]));
    assert_eq!(submitted(&h.timeout_at(4.0)), result("", true));
}
