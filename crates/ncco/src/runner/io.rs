//! What goes into and comes out of a [`super::CallRunner`].

use std::fmt;

use crate::action::{Connect, Conversation, Input, Notify, Record, Stream, Talk};
use crate::{Ncco, NccoError};

/// Identifies one started action within a call, so the server's reports
/// ([`RunnerInput::PlayFinished`], …) reach the action they are about. Ids grow from 1 and
/// are never reused within a call, across NCCO replacements too; reports about an id that is
/// no longer current are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(pub u32);

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "action#{}", self.0)
    }
}

/// Something the server must do for the call. Drain with
/// [`super::CallRunner::poll_command`] after every `handle_*` call.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create the recording (beeping to the caller first if `record.beep_start`). The server
    /// answers with `RecordingFinished`/`RecordingFailed` once the file is final, and with
    /// `SilenceDetected` when `end_on_silence` is set and its detector fires.
    StartRecording {
        /// The record action.
        id: ActionId,
        /// Its settings.
        record: Record,
    },
    /// Stop and finalise the recording `id`, then report `RecordingFinished`.
    StopRecording {
        /// The record action.
        id: ActionId,
        /// Why it stops (goes into the record event).
        reason: RecordStopReason,
    },
    /// Play a prompt to the caller; report `PlayFinished` when it has played
    /// `loop_count` times (never, for 0 = forever, unless stopped).
    Play {
        /// The talk or stream action.
        id: ActionId,
        /// What to play.
        source: PlaySource,
    },
    /// Stop prompt `id` at once (the caller barged in). No `PlayFinished` is needed; one
    /// that comes anyway is ignored.
    StopPlay {
        /// The talk or stream action.
        id: ActionId,
    },
    /// Informational: input `id` is now collecting DTMF. The runner collects the digits
    /// itself from `Dtmf` inputs; the server need do nothing but may log or emit an event.
    CollectDigits {
        /// The input action.
        id: ActionId,
        /// Its settings.
        input: Input,
    },
    /// Send the collected digits to the input's `eventUrl` (or the call's event URL). The
    /// server answers with `InputAnswer` (the body was an NCCO: it replaces the rest),
    /// `InputAnswerFailed` (no NCCO after retries and fallback: the rest of the current NCCO
    /// runs) or `InputAnswerInvalid` (the body was an invalid NCCO: the call fails).
    SubmitInput {
        /// The input action.
        id: ActionId,
        /// Its settings (for `eventUrl`/`eventMethod`).
        input: Input,
        /// What the caller entered.
        result: InputResult,
    },
    /// Send `notify.payload` to `notify.event_url`. By default the runner continues at
    /// once; with [`super::RunnerOptions::notify_waits_for_answer`] it waits for an answer
    /// exactly as after `SubmitInput`.
    Notify {
        /// The notify action.
        id: ActionId,
        /// Its settings.
        notify: Notify,
    },
    /// Call `connect.endpoint` and bridge it; report `ConnectFinished` when the new leg
    /// ends or the attempt fails. Ringing `timeout`, call `limit` and machine detection are
    /// the server's to enforce.
    Connect {
        /// The connect action.
        id: ActionId,
        /// Its settings.
        connect: Connect,
    },
    /// A connect with `eventType: "synchronous"` failed: send the leg's status event to
    /// `connect.event_url` and answer like after `SubmitInput` (an NCCO in the body replaces
    /// the rest; none continues with it).
    SubmitConnectStatus {
        /// The connect action.
        id: ActionId,
        /// Its settings.
        connect: Connect,
        /// How the attempt ended.
        outcome: ConnectOutcome,
    },
    /// Put the caller into the named conversation; report `ConversationLeft` when the caller
    /// leaves it.
    JoinConversation {
        /// The conversation action.
        id: ActionId,
        /// Its settings.
        conversation: Conversation,
    },
    /// Hang the call up: the NCCO has ended (or failed). Always the last command.
    Hangup {
        /// Why.
        reason: HangupReason,
    },
}

/// Why a recording stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordStopReason {
    /// The caller pressed the record's `endOnKey`.
    Key(char),
    /// `endOnSilence` seconds of silence.
    Silence,
    /// The record's `timeOut` passed.
    TimeOut,
    /// The call ended (BYE, CANCEL, media timeout…).
    CallEnded,
    /// The NCCO ended and the call is being hung up.
    NccoEnded,
}

impl RecordStopReason {
    /// A short stable name for events and logs: `key`, `silence`, `timeout`, `call-ended`,
    /// `ncco-ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key(_) => "key",
            Self::Silence => "silence",
            Self::TimeOut => "timeout",
            Self::CallEnded => "call-ended",
            Self::NccoEnded => "ncco-ended",
        }
    }
}

/// What a `Play` command plays.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaySource {
    /// Text to speech.
    Talk(Talk),
    /// An audio file.
    Stream(Stream),
}

/// What an `input` collected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputResult {
    /// The digits in order (without a submitting `#`); may be empty.
    pub dtmf: String,
    /// True when the input ended because `timeOut` passed without a key.
    pub timed_out: bool,
}

/// How a `connect` attempt or leg ended, with the hosted API's status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectOutcome {
    /// The endpoint answered and the leg later ended (`completed`).
    AnsweredThenEnded,
    /// Busy (`busy`).
    Busy,
    /// Rang for `timeout` seconds (`timeout`).
    Timeout,
    /// Could not be placed (`failed`).
    Failed,
    /// Refused (`rejected`).
    Rejected,
    /// Not answered (`unanswered`).
    Unanswered,
    /// Cancelled before answer (`cancelled`).
    Cancelled,
}

impl ConnectOutcome {
    /// True when the endpoint answered.
    pub fn is_answered(self) -> bool {
        self == Self::AnsweredThenEnded
    }

    /// The hosted API's event `status` for this outcome.
    pub fn status(self) -> &'static str {
        match self {
            Self::AnsweredThenEnded => "completed",
            Self::Busy => "busy",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Unanswered => "unanswered",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Why the runner asks for a hang-up.
#[derive(Debug, Clone, PartialEq)]
pub enum HangupReason {
    /// The actions ran out (the normal end of an NCCO).
    NccoEnded,
    /// The application answered an input/notify/connect event with an invalid NCCO.
    InvalidNcco(NccoError),
}

/// What the server tells the runner.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerInput {
    /// Prompt `id` finished playing.
    PlayFinished {
        /// The talk or stream action.
        id: ActionId,
    },
    /// Recording `id` is final on disk (after `StopRecording`, or ended on its own).
    RecordingFinished {
        /// The record action.
        id: ActionId,
    },
    /// Recording `id` could not be made or written; the NCCO continues as if it had ended.
    RecordingFailed {
        /// The record action.
        id: ActionId,
        /// What went wrong (for logs and events).
        reason: String,
    },
    /// The silence detector of recording `id` (one with `endOnSilence`) fired.
    SilenceDetected {
        /// The record action.
        id: ActionId,
    },
    /// The caller pressed a key (0-9, `*`, `#`, A-D; anything else is ignored).
    Dtmf {
        /// The key.
        digit: char,
    },
    /// The answer to `SubmitInput`/`SubmitConnectStatus` (or a waiting `Notify`) was a
    /// valid NCCO: it replaces the rest of the current one.
    InputAnswer {
        /// The action that asked.
        id: ActionId,
        /// The new NCCO.
        ncco: Ncco,
    },
    /// The answer brought no NCCO (failed after retries and fallback, or empty): the rest of
    /// the current NCCO runs.
    InputAnswerFailed {
        /// The action that asked.
        id: ActionId,
        /// What happened (for logs and events).
        reason: String,
    },
    /// The answer was an NCCO that failed validation: the call is hung up.
    InputAnswerInvalid {
        /// The action that asked.
        id: ActionId,
        /// The validation error (goes into the hang-up reason).
        error: NccoError,
    },
    /// The connect `id` ended.
    ConnectFinished {
        /// The connect action.
        id: ActionId,
        /// How.
        outcome: ConnectOutcome,
    },
    /// The caller left conversation `id`.
    ConversationLeft {
        /// The conversation action.
        id: ActionId,
    },
    /// The call is over (BYE, CANCEL, timeouts): active recordings are stopped and the
    /// runner finishes without a `Hangup`.
    CallEnded,
}
