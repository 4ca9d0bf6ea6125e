//! `conversation`: join a named conference (created by its first participant).

use serde::Serialize;

use super::url_array;
use crate::error::{NccoError, NccoErrorKind};
use crate::validate::{Obj, Spec, Validator};

/// The `conversation` action. Synchronous: the NCCO goes on when the caller leaves the
/// conversation (it ended, or the leg was moved out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// Conversation name, unique per application (required).
    pub name: String,
    /// Audio played to participants until the conversation starts.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "url_array::option"
    )]
    pub music_on_hold_url: Option<String>,
    /// This participant starts the conversation when joining; default true.
    pub start_on_enter: bool,
    /// The conversation ends when this participant leaves; default false.
    pub end_on_exit: bool,
    /// Record the whole conversation (asynchronous; starts and stops with it).
    pub record: bool,
    /// Leg uuids that can hear this participant; `None` = everyone, empty = no one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_speak: Option<Vec<String>>,
    /// Leg uuids this participant can hear; `None` = everyone, empty = no one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_hear: Option<Vec<String>>,
    /// Join muted.
    pub mute: bool,
}

impl Conversation {
    /// A conversation named `name` with the hosted API's defaults.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            music_on_hold_url: None,
            start_on_enter: true,
            end_on_exit: false,
            record: false,
            can_speak: None,
            can_hear: None,
            mute: false,
        }
    }
}

const SPEC: Spec = Spec {
    fields: &[
        "action",
        "name",
        "musicOnHoldUrl",
        "startOnEnter",
        "endOnExit",
        "record",
        "canSpeak",
        "canHear",
        "mute",
    ],
    unsupported: &[
        (
            "transcription",
            "transcribing conversations needs a speech-to-text service",
        ),
        ("eventUrl", "conversation events go to the call's event URL"),
        (
            "eventMethod",
            "conversation events go to the call's event URL",
        ),
    ],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Conversation, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let name = obj.require(v, "name")?.non_empty_string()?;
    let mut c = Conversation::named(name);
    if let Some(f) = obj.get(v, "musicOnHoldUrl") {
        c.music_on_hold_url = Some(f.url_array()?);
    }
    if let Some(f) = obj.get(v, "startOnEnter") {
        c.start_on_enter = f.boolean()?;
    }
    if let Some(f) = obj.get(v, "endOnExit") {
        c.end_on_exit = f.boolean()?;
    }
    if let Some(f) = obj.get(v, "record") {
        c.record = f.boolean()?;
    }
    let mut can_speak_path = None;
    if let Some(f) = obj.get(v, "canSpeak") {
        c.can_speak = Some(f.string_array()?);
        can_speak_path = Some(f.path);
    }
    if let Some(f) = obj.get(v, "canHear") {
        c.can_hear = Some(f.string_array()?);
    }
    if let Some(f) = obj.get(v, "mute") {
        c.mute = f.boolean()?;
        if let (true, Some(other)) = (c.mute, can_speak_path) {
            return Err(f.err(NccoErrorKind::Conflict {
                rule: format!("mute cannot be used together with {other}"),
            }));
        }
    }
    Ok(c)
}
