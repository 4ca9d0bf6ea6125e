//! The per-call NCCO runner: a sans-IO state machine. The server feeds it what happened
//! (`handle_input`, `handle_timeout`) and carries out what it asks (`poll_command`), waking it
//! at `poll_timeout`.
//!
//! Semantics follow the hosted API:
//! - `record` is synchronous with `endOnSilence` or `endOnKey` (the next action waits for
//!   `RecordingFinished`), else asynchronous; every recording stops at its `timeOut`, when
//!   the call ends, or when the NCCO ends (then the call is hung up).
//! - `talk`/`stream` wait for `PlayFinished`. With `bargeIn` (which stays on for the
//!   following prompts until an `input` runs) a key stops the prompt, the key is kept for the
//!   next `input`, and the remaining prompts before that input are skipped.
//! - `input` collects DTMF (`maxDigits`, `timeOut` from the start or the last key,
//!   `submitOnHash`), submits, and waits for the answer, whose NCCO replaces the rest.
//! - `notify` is sent and the runner continues at once (see [`RunnerOptions`]).
//! - `wait` is a deadline; `connect` and `conversation` wait until the leg ends or the caller
//!   leaves.
//! - When the actions run out the runner stops the remaining recordings and asks for a
//!   hang-up.

mod io;

pub use io::{
    ActionId, Command, ConnectOutcome, HangupReason, InputResult, PlaySource, RecordStopReason,
    RunnerInput,
};

use std::collections::VecDeque;
use std::time::Instant;

use crate::action::{Action, Connect, Input};
use crate::Ncco;

/// Most DTMF keys kept from a barge-in for the next `input` (more than `maxDigits` can ever
/// use; bounds memory against a flood of keys).
const MAX_PENDING_DIGITS: usize = 32;

/// Choices where callmux can follow either the hosted API or the simpler contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunnerOptions {
    /// Wait after `notify` for `InputAnswer`/`InputAnswerFailed`/`InputAnswerInvalid`, as
    /// the hosted API does (an NCCO in the answer replaces the rest). Default false: the
    /// runner continues at once.
    pub notify_waits_for_answer: bool,
}

/// Runs one call's NCCO. See the module documentation for the semantics.
///
/// ```
/// use std::time::Instant;
/// use callmux_ncco::{default_ncco, CallRunner, Command};
/// let now = Instant::now();
/// let mut runner = CallRunner::new(default_ncco(), now);
/// assert!(matches!(runner.poll_command(), Some(Command::StartRecording { .. })));
/// ```
#[derive(Debug)]
pub struct CallRunner {
    queue: VecDeque<Action>,
    current: Option<Current>,
    recordings: Vec<ActiveRecording>,
    commands: VecDeque<Command>,
    pending_digits: String,
    /// `bargeIn` seen on a prompt and no `input` since: following prompts are interruptible.
    barge_in_armed: bool,
    /// The caller barged in: skip prompts until the next `input`.
    barged: bool,
    next_id: u32,
    options: RunnerOptions,
    finished: bool,
}

/// The synchronous action the NCCO is waiting on.
#[derive(Debug)]
enum Current {
    Play { id: ActionId, barge_in: bool },
    SyncRecord { id: ActionId },
    Collect(Collect),
    AwaitAnswer { id: ActionId },
    Wait { deadline: Option<Instant> },
    Connect { id: ActionId, connect: Box<Connect> },
    Conversation { id: ActionId },
}

#[derive(Debug)]
struct Collect {
    id: ActionId,
    input: Input,
    digits: String,
    deadline: Option<Instant>,
}

/// A recording that has been started and not yet stopped by the runner.
#[derive(Debug)]
struct ActiveRecording {
    id: ActionId,
    end_on_key: Option<char>,
    end_on_silence: bool,
    deadline: Option<Instant>,
}

impl CallRunner {
    /// Starts running `ncco` at `now`: the first commands are ready at once.
    pub fn new(ncco: Ncco, now: Instant) -> Self {
        Self::with_options(ncco, now, RunnerOptions::default())
    }

    /// Like [`Self::new`] with explicit options.
    pub fn with_options(ncco: Ncco, now: Instant, options: RunnerOptions) -> Self {
        let mut runner = Self {
            queue: ncco.actions.into(),
            current: None,
            recordings: Vec::new(),
            commands: VecDeque::new(),
            pending_digits: String::new(),
            barge_in_armed: false,
            barged: false,
            next_id: 0,
            options,
            finished: false,
        };
        runner.advance(now);
        runner
    }

    /// The options this runner was made with.
    pub fn options(&self) -> RunnerOptions {
        self.options
    }

    /// Feeds one thing that happened to the call. Reports about actions that are no longer
    /// current are ignored, as is everything after the runner finished.
    pub fn handle_input(&mut self, input: RunnerInput, now: Instant) {
        if self.finished {
            return;
        }
        match input {
            RunnerInput::PlayFinished { id } => {
                if matches!(self.current, Some(Current::Play { id: cur, .. }) if cur == id) {
                    self.complete_current(now);
                }
            }
            RunnerInput::RecordingFinished { id } | RunnerInput::RecordingFailed { id, .. } => {
                self.recordings.retain(|r| r.id != id);
                if matches!(self.current, Some(Current::SyncRecord { id: cur }) if cur == id) {
                    self.complete_current(now);
                }
            }
            RunnerInput::SilenceDetected { id } => {
                if self
                    .recordings
                    .iter()
                    .any(|r| r.id == id && r.end_on_silence)
                {
                    self.stop_recording(id, RecordStopReason::Silence);
                }
            }
            RunnerInput::Dtmf { digit } => self.on_dtmf(digit, now),
            RunnerInput::InputAnswer { id, ncco } => {
                if self.awaiting_answer(id) {
                    self.queue = ncco.actions.into();
                    self.barge_in_armed = false;
                    self.barged = false;
                    self.pending_digits.clear();
                    self.complete_current(now);
                }
            }
            RunnerInput::InputAnswerFailed { id, .. } => {
                if self.awaiting_answer(id) {
                    self.complete_current(now);
                }
            }
            RunnerInput::InputAnswerInvalid { id, error } => {
                if self.awaiting_answer(id) {
                    self.end_ncco(HangupReason::InvalidNcco(error));
                }
            }
            RunnerInput::ConnectFinished { id, outcome } => {
                self.on_connect_finished(id, outcome, now)
            }
            RunnerInput::ConversationLeft { id } => {
                if matches!(self.current, Some(Current::Conversation { id: cur }) if cur == id) {
                    self.complete_current(now);
                }
            }
            RunnerInput::CallEnded => {
                for rec in std::mem::take(&mut self.recordings) {
                    self.commands.push_back(Command::StopRecording {
                        id: rec.id,
                        reason: RecordStopReason::CallEnded,
                    });
                }
                self.finish();
            }
        }
    }

    /// Fires every deadline at or before `now` (recording time-outs first, in start order,
    /// then the current action's).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished {
            return;
        }
        let expired: Vec<ActionId> = self
            .recordings
            .iter()
            .filter(|r| r.deadline.is_some_and(|d| d <= now))
            .map(|r| r.id)
            .collect();
        for id in expired {
            self.stop_recording(id, RecordStopReason::TimeOut);
        }
        match &self.current {
            Some(Current::Collect(c)) if c.deadline.is_some_and(|d| d <= now) => {
                self.submit_input(true);
            }
            Some(Current::Wait { deadline }) if deadline.is_some_and(|d| d <= now) => {
                self.complete_current(now);
            }
            _ => {}
        }
    }

    /// The earliest deadline, if any: call [`Self::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let current = match &self.current {
            Some(Current::Collect(c)) => c.deadline,
            Some(Current::Wait { deadline }) => *deadline,
            _ => None,
        };
        self.recordings
            .iter()
            .filter_map(|r| r.deadline)
            .chain(current)
            .min()
    }

    /// The next command for the server, in the order they arose.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// True once the NCCO has ended (a `Hangup` was queued) or the call ended. Drain
    /// [`Self::poll_command`] before dropping the runner: the last commands may still wait.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The synchronous action the NCCO is waiting on, if any (for logs and status pages).
    pub fn current_action(&self) -> Option<ActionId> {
        match self.current.as_ref()? {
            Current::Play { id, .. }
            | Current::SyncRecord { id }
            | Current::AwaitAnswer { id }
            | Current::Connect { id, .. }
            | Current::Conversation { id } => Some(*id),
            Current::Collect(c) => Some(c.id),
            Current::Wait { .. } => None,
        }
    }

    /// Recordings started and not yet stopped by the runner, in start order.
    pub fn active_recordings(&self) -> impl Iterator<Item = ActionId> + '_ {
        self.recordings.iter().map(|r| r.id)
    }

    fn awaiting_answer(&self, id: ActionId) -> bool {
        matches!(self.current, Some(Current::AwaitAnswer { id: cur }) if cur == id)
    }

    fn allocate_id(&mut self) -> ActionId {
        self.next_id = self.next_id.saturating_add(1);
        ActionId(self.next_id)
    }

    /// The current action is done: run the next ones.
    fn complete_current(&mut self, now: Instant) {
        self.current = None;
        self.advance(now);
    }

    /// Starts actions until one is synchronous or the NCCO ends.
    fn advance(&mut self, now: Instant) {
        while !self.finished && self.current.is_none() {
            let Some(action) = self.queue.pop_front() else {
                self.end_ncco(HangupReason::NccoEnded);
                return;
            };
            self.start(action, now);
        }
    }

    fn start(&mut self, action: Action, now: Instant) {
        if action.is_prompt() && self.barged {
            return; // the caller already barged in: skip to the input
        }
        if !action.is_prompt() && !matches!(action, Action::Input(_)) {
            // bargeIn only carries over prompts into an input.
            self.barge_in_armed = false;
            self.barged = false;
            self.pending_digits.clear();
        }
        let id = self.allocate_id();
        match action {
            Action::Record(record) => {
                self.recordings.push(ActiveRecording {
                    id,
                    end_on_key: record.end_on_key,
                    end_on_silence: record.end_on_silence.is_some(),
                    deadline: now.checked_add(record.time_out_duration()),
                });
                let synchronous = record.is_synchronous();
                self.commands
                    .push_back(Command::StartRecording { id, record });
                if synchronous {
                    self.current = Some(Current::SyncRecord { id });
                }
            }
            Action::Talk(talk) => {
                self.barge_in_armed |= talk.barge_in;
                self.current = Some(Current::Play {
                    id,
                    barge_in: self.barge_in_armed,
                });
                self.commands.push_back(Command::Play {
                    id,
                    source: PlaySource::Talk(talk),
                });
            }
            Action::Stream(stream) => {
                self.barge_in_armed |= stream.barge_in;
                self.current = Some(Current::Play {
                    id,
                    barge_in: self.barge_in_armed,
                });
                self.commands.push_back(Command::Play {
                    id,
                    source: PlaySource::Stream(stream),
                });
            }
            Action::Input(input) => {
                self.barge_in_armed = false;
                self.barged = false;
                self.commands.push_back(Command::CollectDigits {
                    id,
                    input: input.clone(),
                });
                let deadline = now.checked_add(input.dtmf.time_out_duration());
                self.current = Some(Current::Collect(Collect {
                    id,
                    input,
                    digits: String::new(),
                    deadline,
                }));
                for digit in std::mem::take(&mut self.pending_digits).chars() {
                    if !matches!(self.current, Some(Current::Collect(_))) {
                        break;
                    }
                    self.collect_digit(digit, now);
                }
            }
            Action::Notify(notify) => {
                self.commands.push_back(Command::Notify { id, notify });
                if self.options.notify_waits_for_answer {
                    self.current = Some(Current::AwaitAnswer { id });
                }
            }
            Action::Wait(wait) => {
                self.current = Some(Current::Wait {
                    deadline: now.checked_add(wait.duration()),
                });
            }
            Action::Connect(connect) => {
                self.commands.push_back(Command::Connect {
                    id,
                    connect: connect.clone(),
                });
                self.current = Some(Current::Connect {
                    id,
                    connect: Box::new(connect),
                });
            }
            Action::Conversation(conversation) => {
                self.commands
                    .push_back(Command::JoinConversation { id, conversation });
                self.current = Some(Current::Conversation { id });
            }
        }
    }

    fn on_dtmf(&mut self, digit: char, now: Instant) {
        let digit = digit.to_ascii_uppercase();
        if !(digit.is_ascii_digit() || matches!(digit, '*' | '#' | 'A'..='D')) {
            return;
        }
        match &self.current {
            Some(Current::SyncRecord { id }) => {
                let id = *id;
                if self
                    .recordings
                    .iter()
                    .any(|r| r.id == id && r.end_on_key == Some(digit))
                {
                    self.stop_recording(id, RecordStopReason::Key(digit));
                }
            }
            Some(Current::Play { id, barge_in: true }) => {
                let id = *id;
                self.commands.push_back(Command::StopPlay { id });
                if self.pending_digits.len() < MAX_PENDING_DIGITS {
                    self.pending_digits.push(digit);
                }
                self.barged = true;
                self.complete_current(now);
            }
            Some(Current::Collect(_)) => self.collect_digit(digit, now),
            _ => {} // keys pressed outside an input or barge-in prompt are not kept
        }
    }

    fn collect_digit(&mut self, digit: char, now: Instant) {
        let Some(Current::Collect(c)) = &mut self.current else {
            return;
        };
        if digit == '#' && c.input.dtmf.submit_on_hash {
            self.submit_input(false);
            return;
        }
        c.digits.push(digit);
        if c.digits.len() >= usize::from(c.input.dtmf.max_digits.clamp(1, 20)) {
            self.submit_input(false);
        } else {
            c.deadline = now.checked_add(c.input.dtmf.time_out_duration());
        }
    }

    fn submit_input(&mut self, timed_out: bool) {
        let Some(Current::Collect(c)) = self.current.take() else {
            return;
        };
        self.commands.push_back(Command::SubmitInput {
            id: c.id,
            input: c.input,
            result: InputResult {
                dtmf: c.digits,
                timed_out,
            },
        });
        self.current = Some(Current::AwaitAnswer { id: c.id });
    }

    fn on_connect_finished(&mut self, id: ActionId, outcome: ConnectOutcome, now: Instant) {
        let Some(Current::Connect { id: cur, connect }) = &self.current else {
            return;
        };
        if *cur != id {
            return;
        }
        if connect.is_synchronous_event() && !outcome.is_answered() {
            let connect = (**connect).clone();
            self.commands.push_back(Command::SubmitConnectStatus {
                id,
                connect,
                outcome,
            });
            self.current = Some(Current::AwaitAnswer { id });
        } else {
            self.complete_current(now);
        }
    }

    fn stop_recording(&mut self, id: ActionId, reason: RecordStopReason) {
        let before = self.recordings.len();
        self.recordings.retain(|r| r.id != id);
        if self.recordings.len() != before {
            self.commands
                .push_back(Command::StopRecording { id, reason });
        }
    }

    /// The NCCO is over: stop what still records, then ask for the hang-up.
    fn end_ncco(&mut self, reason: HangupReason) {
        for rec in std::mem::take(&mut self.recordings) {
            self.commands.push_back(Command::StopRecording {
                id: rec.id,
                reason: RecordStopReason::NccoEnded,
            });
        }
        self.commands.push_back(Command::Hangup { reason });
        self.finish();
    }

    fn finish(&mut self) {
        self.finished = true;
        self.current = None;
        self.queue.clear();
        self.pending_digits.clear();
    }
}
