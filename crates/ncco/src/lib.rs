//! callmux's NCCO core: the Vonage Voice API call-control language as typed values,
//! validation that names the JSON path of every problem, and the per-call runner.
//!
//! # Parsing
//! [`parse_ncco`] turns the bytes an `answer_url` returned into an [`Ncco`], checking every
//! field of every action against the hosted API's rules (types, ranges, allowed values,
//! required and unknown fields, action order) and against the [`Capabilities`] of this
//! server. The first problem comes back as an [`NccoError`] such as
//! `$[0].channels: must be an integer 1..=32, got 33`. Anything valid that the server does
//! not implement is rejected with [`NccoErrorKind::NotImplemented`], never ignored.
//!
//! # Run loop
//! One [`CallRunner`] per call, driven by the call's task:
//! ```text
//! let mut runner = CallRunner::new(ncco, now);
//! loop {
//!     while let Some(cmd) = runner.poll_command() { /* carry it out */ }
//!     if runner.is_finished() { break; }
//!     // wait for a call event or until runner.poll_timeout()
//!     runner.handle_input(event, now);   // or
//!     runner.handle_timeout(now);
//! }
//! ```
//! Drain `poll_command` after every `handle_*` call (and after `new`): commands come out in
//! the order they arose, and a finished runner may still hold its last ones
//! (`StopRecording`, `Hangup`).
//!
//! # Panic policy
//! A panic is a bug; nothing from the network panics. Every byte string and JSON value is
//! checked without `unwrap` or indexing; `fuzzing::parse` and `fuzzing::runner` are the
//! cargo-fuzz entry points.
//!
//! # What this crate never does
//! No I/O of any kind: no sockets, files, threads, sleeping or randomness, and no clock
//! reads outside [`fuzzing`] (which needs one `Instant` to start from). Time is an argument
//! (`Instant`); the server performs every HTTP request, recording and playback the runner
//! asks for.

mod action;
mod capabilities;
mod error;
mod ncco;
mod runner;
mod validate;

pub use action::{
    Action, AdvancedMachineDetection, AmdMode, AppEndpoint, ChannelLayout, Connect,
    ConnectEventType, Conversation, DtmfSettings, Endpoint, EventMethod, Input, InputType,
    MachineDetection, Notify, OnAnswer, PhoneEndpoint, Record, RecordFormat, SipEndpoint, Split,
    Stream, Talk, Wait, WebsocketEndpoint,
};
pub use capabilities::Capabilities;
pub use error::{NccoError, NccoErrorKind};
pub use ncco::{default_ncco, Ncco};
pub use runner::{
    ActionId, CallRunner, Command, ConnectOutcome, HangupReason, InputResult, PlaySource,
    RecordStopReason, RunnerInput, RunnerOptions,
};
pub use validate::{parse_ncco, validate_value};

/// Largest NCCO document accepted, in bytes.
pub const MAX_NCCO_BYTES: usize = 1024 * 1024;

/// Most actions in one NCCO.
pub const MAX_ACTIONS: usize = 100;

/// Entry points for cargo-fuzz; each takes arbitrary bytes and must never panic.
pub mod fuzzing {
    use std::time::{Duration, Instant};

    use crate::{parse_ncco, CallRunner, Capabilities, ConnectOutcome, Ncco, RunnerInput};

    /// Parses `data` as an NCCO with all and with reduced capabilities; a valid one must
    /// survive a serialise/parse round trip unchanged and drive a runner to its end.
    pub fn parse(data: &[u8]) {
        let reduced = Capabilities::only_actions(&["record", "talk", "input"])
            .without_value("record", "format", "mp3");
        let _ = parse_ncco(data, &reduced).map_err(|e| e.to_string());
        match parse_ncco(data, &Capabilities::all()) {
            Ok(ncco) => {
                let again = parse_ncco(&ncco.to_vec(), &Capabilities::all());
                assert_eq!(again.as_ref(), Ok(&ncco), "round trip changed the NCCO");
                drive(ncco, &[]);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }

    /// Drives a runner over a rich NCCO with a script of inputs taken from `data`.
    pub fn runner(data: &[u8]) {
        let ncco = parse_ncco(RICH_NCCO.as_bytes(), &Capabilities::all())
            .unwrap_or_else(|_| crate::default_ncco());
        drive(ncco, data);
    }

    const RICH_NCCO: &str = r##"[
        {"action":"record","eventUrl":["https://example.com/rec"]},
        {"action":"talk","text":"Press a key","bargeIn":true},
        {"action":"stream","streamUrl":["https://example.com/a.mp3"]},
        {"action":"input","type":["dtmf"],"dtmf":{"maxDigits":3,"submitOnHash":true,"timeOut":2}},
        {"action":"record","endOnKey":"#","endOnSilence":3,"timeOut":10},
        {"action":"notify","payload":{"a":1},"eventUrl":["https://example.com/n"]},
        {"action":"wait","timeout":0.5},
        {"action":"connect","eventType":"synchronous","endpoint":[{"type":"sip","uri":"sip:a@example.com"}]},
        {"action":"conversation","name":"room"}
    ]"##;

    fn drive(ncco: Ncco, script: &[u8]) {
        let start = Instant::now();
        let mut now = start;
        let mut runner = CallRunner::new(ncco.clone(), now);
        let mut steps = 0usize;
        let mut bytes = script.iter().copied();
        while !runner.is_finished() && steps < 10_000 {
            steps += 1;
            while runner.poll_command().is_some() {}
            let last = runner.current_action().unwrap_or(crate::ActionId(0));
            let input = match bytes.next() {
                None => {
                    // Script over: time passes, and prompts and legs end, until the NCCO does.
                    if let Some(t) = runner.poll_timeout() {
                        now = now.max(t);
                        runner.handle_timeout(now);
                    } else {
                        for input in finishers(last) {
                            runner.handle_input(input, now);
                        }
                    }
                    continue;
                }
                Some(b) => match b % 12 {
                    0 => RunnerInput::Dtmf {
                        digit: char::from(
                            b"0123456789*#AD"
                                .get(usize::from(b / 12) % 14)
                                .copied()
                                .unwrap_or(b'0'),
                        ),
                    },
                    1 => RunnerInput::PlayFinished { id: last },
                    2 => RunnerInput::RecordingFinished { id: last },
                    3 => RunnerInput::SilenceDetected { id: last },
                    4 => RunnerInput::InputAnswer {
                        id: last,
                        ncco: ncco.clone(),
                    },
                    5 => RunnerInput::InputAnswerFailed {
                        id: last,
                        reason: String::new(),
                    },
                    6 => RunnerInput::ConnectFinished {
                        id: last,
                        outcome: ConnectOutcome::Busy,
                    },
                    7 => RunnerInput::ConversationLeft { id: last },
                    8 => {
                        now += Duration::from_millis(u64::from(b) * 40);
                        runner.handle_timeout(now);
                        continue;
                    }
                    9 => RunnerInput::RecordingFailed {
                        id: crate::ActionId(u32::from(b / 12)),
                        reason: String::new(),
                    },
                    10 => RunnerInput::ConnectFinished {
                        id: last,
                        outcome: ConnectOutcome::AnsweredThenEnded,
                    },
                    _ => RunnerInput::CallEnded,
                },
            };
            runner.handle_input(input, now);
        }
        runner.handle_input(RunnerInput::CallEnded, now);
        while runner.poll_command().is_some() {}
        assert!(runner.is_finished(), "CallEnded must finish the runner");
    }

    /// Every report that ends a synchronous action; only the one matching `id`'s kind acts.
    fn finishers(id: crate::ActionId) -> [RunnerInput; 5] {
        [
            RunnerInput::PlayFinished { id },
            RunnerInput::RecordingFinished { id },
            RunnerInput::InputAnswerFailed {
                id,
                reason: String::new(),
            },
            RunnerInput::ConnectFinished {
                id,
                outcome: ConnectOutcome::AnsweredThenEnded,
            },
            RunnerInput::ConversationLeft { id },
        ]
    }
}
