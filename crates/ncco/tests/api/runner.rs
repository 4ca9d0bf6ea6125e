//! Runner scenarios on a simulated clock: records (sync and async), prompts, notify, wait,
//! connect, conversation, NCCO end and call end.

use std::time::{Duration, Instant};

use callmux_ncco::{
    default_ncco, ActionId, CallRunner, Command, ConnectOutcome, HangupReason, Ncco, PlaySource,
    RecordStopReason as Stop, RunnerInput as In, RunnerOptions,
};

use crate::parse_ok;

/// A runner plus a simulated clock; every call returns the commands it produced.
pub(crate) struct Harness {
    pub(crate) runner: CallRunner,
    t0: Instant,
    now: Instant,
    pub(crate) first: Vec<Command>,
}

impl Harness {
    pub(crate) fn new(json: &str) -> Self {
        Self::with_options(json, RunnerOptions::default())
    }

    pub(crate) fn with_options(json: &str, options: RunnerOptions) -> Self {
        Self::from_ncco(parse_ok(json), options)
    }

    pub(crate) fn from_ncco(ncco: Ncco, options: RunnerOptions) -> Self {
        let t0 = Instant::now();
        let mut runner = CallRunner::with_options(ncco, t0, options);
        let first = drain(&mut runner);
        Self {
            runner,
            t0,
            now: t0,
            first,
        }
    }

    pub(crate) fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    /// Moves the clock to `secs` (never backwards) and feeds `input`.
    pub(crate) fn input_at(&mut self, secs: f64, input: In) -> Vec<Command> {
        self.now = self.now.max(self.at(secs));
        self.runner.handle_input(input, self.now);
        drain(&mut self.runner)
    }

    /// Feeds `input` at the current time.
    pub(crate) fn input(&mut self, input: In) -> Vec<Command> {
        self.runner.handle_input(input, self.now);
        drain(&mut self.runner)
    }

    /// Moves the clock to `secs` and fires due deadlines.
    pub(crate) fn timeout_at(&mut self, secs: f64) -> Vec<Command> {
        self.now = self.now.max(self.at(secs));
        self.runner.handle_timeout(self.now);
        drain(&mut self.runner)
    }

    /// The next deadline as seconds after the start.
    pub(crate) fn deadline(&self) -> Option<f64> {
        self.runner
            .poll_timeout()
            .map(|d| d.duration_since(self.t0).as_secs_f64())
    }
}

fn drain(runner: &mut CallRunner) -> Vec<Command> {
    std::iter::from_fn(|| runner.poll_command()).collect()
}

pub(crate) fn id(n: u32) -> ActionId {
    ActionId(n)
}

pub(crate) fn hangup() -> Command {
    Command::Hangup {
        reason: HangupReason::NccoEnded,
    }
}

pub(crate) fn stop(n: u32, reason: Stop) -> Command {
    Command::StopRecording { id: id(n), reason }
}

pub(crate) fn is_play(cmd: &Command, n: u32) -> bool {
    matches!(cmd, Command::Play { id: i, .. } if *i == id(n))
}

#[test]
fn async_record_runs_alongside_the_next_action_and_stops_when_the_ncco_ends() {
    let mut h = Harness::new(r#"[{"action":"record"},{"action":"talk","text":"hi"}]"#);
    assert!(matches!(&h.first[0], Command::StartRecording { id: i, .. } if *i == id(1)));
    assert!(
        matches!(&h.first[1], Command::Play { id: i, source: PlaySource::Talk(t) } if *i == id(2) && t.text == "hi")
    );
    assert_eq!(h.first.len(), 2);
    assert_eq!(
        h.runner.active_recordings().collect::<Vec<_>>(),
        vec![id(1)]
    );
    assert_eq!(
        h.input_at(4.0, In::PlayFinished { id: id(2) }),
        vec![stop(1, Stop::NccoEnded), hangup()]
    );
    assert!(h.runner.is_finished());
    assert_eq!(h.runner.poll_timeout(), None);
}

#[test]
fn sync_record_with_end_on_key_waits_for_the_key_and_the_finished_file() {
    let mut h =
        Harness::new(r##"[{"action":"record","endOnKey":"#"},{"action":"talk","text":"thanks"}]"##);
    assert_eq!(h.first.len(), 1, "the talk must wait: {:?}", h.first);
    assert!(
        h.input(In::Dtmf { digit: '5' }).is_empty(),
        "other keys do nothing"
    );
    assert_eq!(
        h.input_at(2.0, In::Dtmf { digit: '#' }),
        vec![stop(1, Stop::Key('#'))]
    );
    assert!(
        h.input(In::Dtmf { digit: '#' }).is_empty(),
        "stopping twice is not asked"
    );
    let next = h.input(In::RecordingFinished { id: id(1) });
    assert_eq!(next.len(), 1);
    assert!(is_play(&next[0], 2));
}

#[test]
fn sync_record_with_end_on_silence_stops_on_the_detector() {
    let mut h =
        Harness::new(r#"[{"action":"record","endOnSilence":3},{"action":"wait","timeout":1}]"#);
    assert!(
        matches!(&h.first[..], [Command::StartRecording { record, .. }] if record.is_synchronous())
    );
    assert_eq!(
        h.input_at(9.0, In::SilenceDetected { id: id(1) }),
        vec![stop(1, Stop::Silence)]
    );
    assert!(h.input(In::SilenceDetected { id: id(1) }).is_empty());
    assert!(
        h.input(In::RecordingFinished { id: id(1) }).is_empty(),
        "now waiting"
    );
    assert_eq!(h.deadline(), Some(10.0));
    assert_eq!(h.timeout_at(10.0), vec![hangup()]);
}

#[test]
fn silence_is_ignored_for_a_recording_without_end_on_silence() {
    let mut h = Harness::new(r#"[{"action":"record"},{"action":"wait"}]"#);
    assert!(h.input(In::SilenceDetected { id: id(1) }).is_empty());
    assert_eq!(h.runner.active_recordings().count(), 1);
}

#[test]
fn record_time_out_is_enforced_by_the_runner() {
    let mut h = Harness::new(r#"[{"action":"record","timeOut":3},{"action":"wait","timeout":10}]"#);
    assert_eq!(h.deadline(), Some(3.0));
    assert!(h.timeout_at(2.9).is_empty());
    assert_eq!(h.timeout_at(3.0), vec![stop(1, Stop::TimeOut)]);
    assert_eq!(Stop::TimeOut.as_str(), "timeout");
    assert_eq!(Stop::Key('#').as_str(), "key");
    assert_eq!(h.deadline(), Some(10.0));
    assert_eq!(
        h.timeout_at(10.0),
        vec![hangup()],
        "a stopped recording is not stopped again"
    );
}

#[test]
fn sync_record_time_out_then_finished_file_moves_on() {
    let mut h = Harness::new(
        r#"[{"action":"record","endOnKey":"1","timeOut":5},{"action":"talk","text":"t"}]"#,
    );
    assert_eq!(h.timeout_at(5.0), vec![stop(1, Stop::TimeOut)]);
    assert_eq!(h.deadline(), None);
    let next = h.input(In::RecordingFinished { id: id(1) });
    assert!(is_play(&next[0], 2));
}

#[test]
fn a_failed_sync_recording_lets_the_ncco_go_on() {
    let mut h =
        Harness::new(r#"[{"action":"record","endOnSilence":5},{"action":"talk","text":"t"}]"#);
    let next = h.input(In::RecordingFailed {
        id: id(1),
        reason: "disk full".into(),
    });
    assert!(is_play(&next[0], 2));
    assert_eq!(h.runner.active_recordings().count(), 0);
}

#[test]
fn every_active_recording_stops_in_start_order_when_the_ncco_ends() {
    let h = Harness::new(r#"[{"action":"record"},{"action":"record","split":"conversation"}]"#);
    assert_eq!(h.first.len(), 5);
    assert_eq!(
        &h.first[2..],
        &[stop(1, Stop::NccoEnded), stop(2, Stop::NccoEnded), hangup()]
    );
    let mut h =
        Harness::new(r#"[{"action":"record"},{"action":"record"},{"action":"wait","timeout":1}]"#);
    assert_eq!(
        h.timeout_at(1.0),
        vec![stop(1, Stop::NccoEnded), stop(2, Stop::NccoEnded), hangup()]
    );
}

#[test]
fn talk_and_stream_wait_for_play_finished_and_stale_reports_are_ignored() {
    let mut h = Harness::new(
        r#"[{"action":"talk","text":"a"},{"action":"stream","streamUrl":["https://s.example/x.mp3"]}]"#,
    );
    assert!(is_play(&h.first[0], 1));
    assert!(
        h.input(In::PlayFinished { id: id(7) }).is_empty(),
        "unknown id"
    );
    let next = h.input(In::PlayFinished { id: id(1) });
    assert!(
        matches!(&next[..], [Command::Play { id: i, source: PlaySource::Stream(_) }] if *i == id(2))
    );
    assert!(
        h.input(In::PlayFinished { id: id(1) }).is_empty(),
        "stale id"
    );
    assert_eq!(h.input(In::PlayFinished { id: id(2) }), vec![hangup()]);
}

#[test]
fn notify_is_sent_and_the_runner_continues_at_once() {
    let h = Harness::new(
        r#"[{"action":"notify","payload":{"step":1},"eventUrl":["https://e.example/n"]},{"action":"talk","text":"t"}]"#,
    );
    assert!(
        matches!(&h.first[0], Command::Notify { id: i, notify } if *i == id(1) && notify.payload["step"] == 1)
    );
    assert!(is_play(&h.first[1], 2));
}

#[test]
fn notify_can_wait_for_an_answer_that_replaces_the_ncco() {
    let options = RunnerOptions {
        notify_waits_for_answer: true,
    };
    let json = r#"[{"action":"notify","payload":{},"eventUrl":["https://e.example/n"]},{"action":"talk","text":"never"}]"#;
    let mut h = Harness::with_options(json, options);
    assert_eq!(h.first.len(), 1);
    let next = h.input(In::InputAnswer {
        id: id(1),
        ncco: parse_ok(r#"[{"action":"talk","text":"received"}]"#),
    });
    assert!(
        matches!(&next[..], [Command::Play { source: PlaySource::Talk(t), .. }] if t.text == "received")
    );

    let mut h = Harness::with_options(json, options);
    let next = h.input(In::InputAnswerFailed {
        id: id(1),
        reason: "empty body".into(),
    });
    assert!(
        matches!(&next[..], [Command::Play { source: PlaySource::Talk(t), .. }] if t.text == "never")
    );
}

#[test]
fn wait_is_a_deadline() {
    let mut h = Harness::new(r#"[{"action":"wait","timeout":2.5},{"action":"talk","text":"t"}]"#);
    assert!(h.first.is_empty());
    assert_eq!(h.deadline(), Some(2.5));
    assert!(h.timeout_at(2.0).is_empty());
    let next = h.timeout_at(2.5);
    assert!(is_play(&next[0], 2));
    assert_eq!(h.deadline(), None);
}

#[test]
fn connect_waits_for_the_leg_and_continues_after_it() {
    let json = r#"[{"action":"connect","endpoint":[{"type":"phone","number":"447700900001"}]},{"action":"talk","text":"bye"}]"#;
    let mut h = Harness::new(json);
    assert!(
        matches!(&h.first[..], [Command::Connect { id: i, connect }] if *i == id(1) && connect.timeout == 60)
    );
    assert!(h
        .input(In::ConnectFinished {
            id: id(9),
            outcome: ConnectOutcome::Busy
        })
        .is_empty());
    let next = h.input_at(
        30.0,
        In::ConnectFinished {
            id: id(1),
            outcome: ConnectOutcome::AnsweredThenEnded,
        },
    );
    assert!(is_play(&next[0], 2));

    let mut h = Harness::new(json);
    let next = h.input(In::ConnectFinished {
        id: id(1),
        outcome: ConnectOutcome::Busy,
    });
    assert!(
        is_play(&next[0], 2),
        "a failed plain connect goes on with the NCCO"
    );
}

#[test]
fn synchronous_connect_failure_asks_the_application_for_an_ncco() {
    let json = r#"[{"action":"connect","eventType":"synchronous","eventUrl":["https://e.example/fallback"],
                   "endpoint":[{"type":"app","user":"agent"}]},{"action":"talk","text":"default"}]"#;
    let mut h = Harness::new(json);
    let next = h.input(In::ConnectFinished {
        id: id(1),
        outcome: ConnectOutcome::Unanswered,
    });
    assert!(
        matches!(&next[..], [Command::SubmitConnectStatus { id: i, outcome: ConnectOutcome::Unanswered, .. }] if *i == id(1))
    );
    let next = h.input(In::InputAnswer {
        id: id(1),
        ncco: parse_ok(r#"[{"action":"talk","text":"fallback"}]"#),
    });
    assert!(
        matches!(&next[..], [Command::Play { id: i, source: PlaySource::Talk(t) }] if *i == id(2) && t.text == "fallback")
    );

    let mut h = Harness::new(json);
    let next = h.input(In::ConnectFinished {
        id: id(1),
        outcome: ConnectOutcome::AnsweredThenEnded,
    });
    assert!(is_play(&next[0], 2), "an answered leg needs no fallback");
}

#[test]
fn conversation_lasts_until_the_caller_leaves() {
    let mut h = Harness::new(r#"[{"action":"conversation","name":"room","record":true}]"#);
    assert!(
        matches!(&h.first[..], [Command::JoinConversation { conversation, .. }] if conversation.name == "room" && conversation.record)
    );
    assert_eq!(h.deadline(), None);
    assert_eq!(
        h.input_at(600.0, In::ConversationLeft { id: id(1) }),
        vec![hangup()]
    );
}

#[test]
fn call_ended_mid_action_stops_recordings_and_finishes_without_hangup() {
    let mut h = Harness::new(
        r#"[{"action":"record"},{"action":"record","endOnKey":"*"},{"action":"talk","text":"t"}]"#,
    );
    assert_eq!(h.first.len(), 2);
    assert_eq!(
        h.input_at(12.0, In::CallEnded),
        vec![stop(1, Stop::CallEnded), stop(2, Stop::CallEnded)]
    );
    assert!(h.runner.is_finished());
    assert_eq!(h.runner.poll_timeout(), None);
    assert!(h.input(In::RecordingFinished { id: id(2) }).is_empty());
    assert!(h.input(In::Dtmf { digit: '*' }).is_empty());
    assert!(h.timeout_at(9000.0).is_empty());
}

#[test]
fn call_ended_during_connect_and_wait() {
    let mut h = Harness::new(r#"[{"action":"connect","endpoint":[{"type":"app","user":"u"}]}]"#);
    assert!(h.input(In::CallEnded).is_empty());
    assert!(h.runner.is_finished());
    let mut h = Harness::new(r#"[{"action":"wait","timeout":100}]"#);
    assert!(h.input_at(1.0, In::CallEnded).is_empty());
    assert_eq!(h.deadline(), None);
}

#[test]
fn default_ncco_records_until_the_call_ends() {
    let mut h = Harness::from_ncco(default_ncco(), RunnerOptions::default());
    assert!(
        matches!(&h.first[..], [Command::StartRecording { record, .. }] if record.split.is_some())
    );
    assert_eq!(h.deadline(), Some(7200.0));
    assert_eq!(
        h.input_at(65.0, In::CallEnded),
        vec![stop(1, Stop::CallEnded)]
    );
}

#[test]
fn an_empty_hand_built_ncco_hangs_up_at_once() {
    let h = Harness::from_ncco(Ncco { actions: vec![] }, RunnerOptions::default());
    assert_eq!(h.first, vec![hangup()]);
    assert!(h.runner.is_finished());
}

#[test]
fn hand_built_extreme_values_do_not_panic() {
    use callmux_ncco::{Action, Record, Wait};
    let ncco = Ncco {
        actions: vec![
            Action::Record(Record {
                time_out: u32::MAX,
                ..Record::default()
            }),
            Action::Wait(Wait { timeout: f64::NAN }),
            Action::Wait(Wait { timeout: -5.0 }),
            Action::Wait(Wait {
                timeout: f64::INFINITY,
            }),
        ],
    };
    let mut h = Harness::from_ncco(ncco, RunnerOptions::default());
    let close = |d: Option<f64>, want: f64| d.is_some_and(|d| (d - want).abs() < 1e-6);
    assert!(close(h.deadline(), 10.0), "NaN falls back to the default");
    assert!(h.timeout_at(10.0).is_empty());
    assert!(close(h.deadline(), 10.1), "negative clamps to 0.1 s");
    assert!(h.timeout_at(10.2).is_empty());
    assert!(close(h.deadline(), 7210.2), "infinity clamps to 7200 s");
}

#[test]
fn runs_are_deterministic() {
    let json = r#"[{"action":"record","timeOut":5},{"action":"talk","text":"t","bargeIn":true},
                   {"action":"input","type":["dtmf"]},{"action":"wait","timeout":1}]"#;
    let run = || {
        let mut h = Harness::new(json);
        let mut all = h.first.clone();
        all.extend(h.input_at(1.0, In::Dtmf { digit: '4' }));
        all.extend(h.timeout_at(4.0));
        all.extend(h.timeout_at(5.0));
        all.extend(h.input(In::InputAnswerFailed {
            id: id(3),
            reason: String::new(),
        }));
        all.extend(h.timeout_at(6.0));
        all
    };
    let first = run();
    assert_eq!(first, run());
    assert_eq!(first.last(), Some(&hangup()));
}
