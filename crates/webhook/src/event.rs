//! Event bodies posted to the application's `event_url`, with Vonage field names so that
//! existing applications work unchanged; callmux additions are marked as such.
//!
//! Every type serialises to the JSON body the dispatcher sends and deserialises from it
//! (receivers and tests parse bodies; unknown fields are ignored so receivers keep working
//! when callmux adds fields).

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// Something that can be queued as a webhook body. `kind` names it for logs, metrics and
/// `callmux dispatch --dead`; it is not part of the body.
pub trait WebhookPayload: Serialize {
    /// Short, stable name of the event kind (`call.answered`, `record`, `record_failed`,
    /// `input`, `notify`).
    fn kind(&self) -> String;
}

/// Call progress as Vonage reports it in the `status` field of call events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// The call was created (inbound INVITE accepted for processing, or outbound dialled).
    Started,
    /// The far end is ringing.
    Ringing,
    /// The call was answered.
    Answered,
    /// The far end was busy.
    Busy,
    /// The caller hung up before the call was answered.
    Cancelled,
    /// Nobody answered before the ringing timeout.
    Unanswered,
    /// The leg was disconnected from the conversation (the call may go on).
    Disconnected,
    /// The call was rejected (see `reason`, `sip_code`).
    Rejected,
    /// The call failed (see `reason`, `sip_code`).
    Failed,
    /// A time limit was reached.
    Timeout,
    /// The call ended.
    Completed,
    /// Machine detection: a machine answered.
    Machine,
    /// Machine detection: a human answered.
    Human,
}

impl CallStatus {
    /// The wire value (`"answered"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::Cancelled => "cancelled",
            Self::Unanswered => "unanswered",
            Self::Disconnected => "disconnected",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Completed => "completed",
            Self::Machine => "machine",
            Self::Human => "human",
        }
    }
}

/// Which side set the call up, as Vonage writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The call came in to callmux.
    Inbound,
    /// callmux placed the call (connect, outbound API).
    Outbound,
}

/// A call status event (`started`, `answered`, `completed`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    /// Caller (number or SIP user).
    pub from: String,
    /// Callee.
    pub to: String,
    /// The leg (call) uuid.
    pub uuid: String,
    /// The conversation the leg belongs to.
    pub conversation_uuid: String,
    /// What happened.
    pub status: CallStatus,
    /// Inbound or outbound.
    pub direction: Direction,
    /// When it happened.
    pub timestamp: Timestamp,
    /// When the call was answered (on `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// When the call ended (on `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    /// Call length in whole seconds, as a string (Vonage's type), on `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Network or trunk the call went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// callmux addition: why the call failed or was rejected, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Vonage's machine-readable sub-status (`no_answer`, `declined`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The SIP final response code behind the status, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
}

impl CallEvent {
    /// An event with the required fields set and every optional field empty.
    pub fn new(
        uuid: impl Into<String>,
        conversation_uuid: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
        direction: Direction,
        status: CallStatus,
        timestamp: Timestamp,
    ) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            uuid: uuid.into(),
            conversation_uuid: conversation_uuid.into(),
            status,
            direction,
            timestamp,
            start_time: None,
            end_time: None,
            duration: None,
            network: None,
            reason: None,
            detail: None,
            sip_code: None,
        }
    }
}

/// Vonage's `duration` value: whole seconds as a decimal string.
pub fn duration_string(d: std::time::Duration) -> String {
    d.as_secs().to_string()
}

impl WebhookPayload for CallEvent {
    fn kind(&self) -> String {
        format!("call.{}", self.status.as_str())
    }
}

/// How a recording file came to be final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Finalised normally when the recording ended.
    Complete,
    /// Repaired at start-up after a crash cut it (the audio up to the crash is kept).
    Recovered,
}

/// The record event: a recording is final on disk. Never sent for a file that is not
/// finalised, so `recording_url` is never empty and `size` never 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEvent {
    /// When recording started.
    pub start_time: Timestamp,
    /// When recording ended.
    pub end_time: Timestamp,
    /// Where the file can be downloaded.
    pub recording_url: String,
    /// The recording's id (also its file name).
    pub recording_uuid: String,
    /// File size in bytes.
    pub size: u64,
    /// The conversation recorded.
    pub conversation_uuid: String,
    /// When the event was emitted.
    pub timestamp: Timestamp,
    /// callmux addition: the uuid of the call that ran the record action.
    pub uuid: String,
    /// callmux addition: number of channels in the file.
    pub channels: u32,
    /// callmux addition: file format (`wav`, later `mp3`, `ogg`).
    pub format: String,
    /// callmux addition: the file's path on the callmux host.
    pub path: String,
    /// callmux addition: `complete`, or `recovered` after a crash.
    pub state: RecordState,
}

impl WebhookPayload for RecordEvent {
    fn kind(&self) -> String {
        "record".to_owned()
    }
}

/// The constant `status` of a [`RecordFailedEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordFailedStatus {
    /// `"record_failed"`.
    #[serde(rename = "record_failed")]
    RecordFailed,
}

/// callmux addition: a recording could not be produced (disk full, unwritable directory,
/// file lost). Sent to the record action's event URL instead of a record event, so a
/// receiver waiting for the recording hears about the failure instead of nothing.
///
/// ```json
/// {"status":"record_failed","uuid":"…","conversation_uuid":"…","recording_uuid":"…",
///  "timestamp":"2024-05-01T12:00:00.000Z","reason":"disk full","start_time":"…","path":"…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFailedEvent {
    /// Always `record_failed`, so receivers switching on `status` can tell it apart.
    pub status: RecordFailedStatus,
    /// The call that ran the record action.
    pub uuid: String,
    /// The conversation that was being recorded.
    pub conversation_uuid: String,
    /// The id the recording would have had.
    pub recording_uuid: String,
    /// When the failure was noticed.
    pub timestamp: Timestamp,
    /// What went wrong, in words.
    pub reason: String,
    /// When recording started, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// The path of the partial file, if one is left on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl WebhookPayload for RecordFailedEvent {
    fn kind(&self) -> String {
        "record_failed".to_owned()
    }
}

/// The keys collected by an `input` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dtmf {
    /// The digits pressed, in order (may be empty).
    pub digits: String,
    /// True when input ended because the time-out passed.
    pub timed_out: bool,
}

/// The event of an `input` action; its answer may be a new NCCO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEvent {
    /// The call.
    pub uuid: String,
    /// The call's conversation.
    pub conversation_uuid: String,
    /// When input ended.
    pub timestamp: Timestamp,
    /// The digits collected.
    pub dtmf: Dtmf,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
}

impl WebhookPayload for InputEvent {
    fn kind(&self) -> String {
        "input".to_owned()
    }
}

/// The event of a `notify` action: the action's `payload` object, sent as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotifyEvent(pub serde_json::Value);

impl WebhookPayload for NotifyEvent {
    fn kind(&self) -> String {
        "notify".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    #[test]
    fn status_strings_match_serde() {
        for s in [
            CallStatus::Started,
            CallStatus::Ringing,
            CallStatus::Answered,
            CallStatus::Busy,
            CallStatus::Cancelled,
            CallStatus::Unanswered,
            CallStatus::Disconnected,
            CallStatus::Rejected,
            CallStatus::Failed,
            CallStatus::Timeout,
            CallStatus::Completed,
            CallStatus::Machine,
            CallStatus::Human,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<CallStatus>(&json).unwrap(), s);
        }
    }

    #[test]
    fn kinds() {
        let mut ev = CallEvent::new(
            "u",
            "c",
            "a",
            "b",
            Direction::Inbound,
            CallStatus::Answered,
            ts(0),
        );
        assert_eq!(ev.kind(), "call.answered");
        ev.status = CallStatus::Completed;
        assert_eq!(ev.kind(), "call.completed");
        assert_eq!(NotifyEvent(serde_json::json!({})).kind(), "notify");
    }

    #[test]
    fn duration_is_whole_seconds() {
        assert_eq!(
            duration_string(std::time::Duration::from_millis(12_999)),
            "12"
        );
    }
}
