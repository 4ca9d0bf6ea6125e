//! `record`: record all or part of the call.

use std::time::Duration;

use serde::Serialize;

use super::{url_array, EventMethod, DTMF_KEYS};
use crate::error::NccoError;
use crate::validate::{Obj, Spec, Validator};

/// The `record` action. Synchronous (the NCCO waits for it) when `end_on_silence` or
/// `end_on_key` is set; otherwise asynchronous (the next action starts at once and the
/// recording runs until its `time_out`, the call's end, or the NCCO's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// File format. Hosted default is mp3; callmux's default is wav.
    pub format: RecordFormat,
    /// `split: "conversation"`: channel 1 = what the caller sent, channel 2 = what it heard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// 1–32: one channel per leg in joining order; legs past the last share it. Implies split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    /// 3–10 seconds of silence end the recording (makes it synchronous).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_on_silence: Option<u8>,
    /// This DTMF key (0-9, `*`, `#`) ends the recording (makes it synchronous).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_on_key: Option<char>,
    /// Hard limit in seconds, 3–7200; default 7200.
    pub time_out: u32,
    /// Play a beep to the caller when recording starts.
    pub beep_start: bool,
    /// Where the record event goes; `None` = the call's event URL.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "url_array::option"
    )]
    pub event_url: Option<String>,
    /// HTTP method for `event_url`.
    pub event_method: EventMethod,
}

impl Default for Record {
    /// An asynchronous mono wav recording with the hosted API's defaults.
    fn default() -> Self {
        Self {
            format: RecordFormat::Wav,
            split: None,
            channels: None,
            end_on_silence: None,
            end_on_key: None,
            time_out: DEFAULT_TIME_OUT,
            beep_start: false,
            event_url: None,
            event_method: EventMethod::Post,
        }
    }
}

/// Default and maximum `timeOut` in seconds.
const DEFAULT_TIME_OUT: u32 = 7200;

impl Record {
    /// True when the NCCO waits for this recording to end before the next action.
    pub fn is_synchronous(&self) -> bool {
        self.end_on_silence.is_some() || self.end_on_key.is_some()
    }

    /// `timeOut` as a duration.
    pub fn time_out_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.time_out))
    }

    /// `endOnSilence` as a duration, for the server's silence detector.
    pub fn end_on_silence_duration(&self) -> Option<Duration> {
        self.end_on_silence
            .map(|s| Duration::from_secs(u64::from(s)))
    }

    /// How legs map to channels: `channels` wins, then `split`, else mono.
    pub fn channel_layout(&self) -> ChannelLayout {
        match (self.channels, self.split) {
            (Some(n), _) => ChannelLayout::Multi(n.max(1)),
            (None, Some(Split::Conversation)) => ChannelLayout::Split,
            (None, None) => ChannelLayout::Mono,
        }
    }
}

/// Recording file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// 16 kHz 16-bit PCM WAV.
    Wav,
    /// MP3 (hosted default).
    Mp3,
    /// Ogg.
    Ogg,
}

impl RecordFormat {
    /// The NCCO spelling and file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
        }
    }
}

/// The only `split` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Caller-sent audio left, caller-heard audio right.
    Conversation,
}

/// Channel layout derived from `split`/`channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelLayout {
    /// Everything mixed into one channel.
    Mono,
    /// Channel 1 = what the caller sent, channel 2 = everything the caller heard.
    Split,
    /// One channel per leg in joining order; legs past `n` mixed into channel `n`.
    Multi(u8),
}

const SPEC: Spec = Spec {
    fields: &[
        "action",
        "format",
        "split",
        "channels",
        "endOnSilence",
        "endOnKey",
        "timeOut",
        "beepStart",
        "eventUrl",
        "eventMethod",
    ],
    unsupported: &[(
        "transcription",
        "transcribing recordings needs a speech-to-text service",
    )],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Record, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let mut r = Record::default();
    if let Some(f) = obj.get(v, "format") {
        r.format = match f.one_of(v, &["wav", "mp3", "ogg"])? {
            "mp3" => RecordFormat::Mp3,
            "ogg" => RecordFormat::Ogg,
            _ => RecordFormat::Wav,
        };
    }
    if let Some(f) = obj.get(v, "split") {
        f.one_of(v, &["conversation"])?;
        r.split = Some(Split::Conversation);
    }
    if let Some(f) = obj.get(v, "channels") {
        r.channels = Some(narrow(f.integer(1, 32)?));
    }
    if let Some(f) = obj.get(v, "endOnSilence") {
        r.end_on_silence = Some(narrow(f.integer(3, 10)?));
    }
    if let Some(f) = obj.get(v, "endOnKey") {
        r.end_on_key = f.one_of(v, DTMF_KEYS)?.chars().next();
    }
    if let Some(f) = obj.get(v, "timeOut") {
        r.time_out =
            u32::try_from(f.integer(3, i64::from(DEFAULT_TIME_OUT))?).unwrap_or(DEFAULT_TIME_OUT);
    }
    if let Some(f) = obj.get(v, "beepStart") {
        r.beep_start = f.boolean()?;
    }
    if let Some(f) = obj.get(v, "eventUrl") {
        r.event_url = Some(f.url_array()?);
    }
    if let Some(f) = obj.get(v, "eventMethod") {
        r.event_method = EventMethod::parse(v, &f)?;
    }
    Ok(r)
}

/// Range-checked values fit in a u8; saturate rather than panic all the same.
fn narrow(i: i64) -> u8 {
    u8::try_from(i).unwrap_or(u8::MAX)
}
