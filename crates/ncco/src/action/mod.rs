//! The NCCO actions as typed values (one file per action), the shared field types, and the
//! rules about the order of actions.

mod connect;
mod conversation;
mod input;
mod notify;
mod record;
mod stream;
mod talk;
mod wait;

pub use connect::{
    AdvancedMachineDetection, AmdMode, AppEndpoint, Connect, ConnectEventType, Endpoint,
    MachineDetection, OnAnswer, PhoneEndpoint, SipEndpoint, WebsocketEndpoint,
};
pub use conversation::Conversation;
pub use input::{DtmfSettings, Input, InputType};
pub use notify::Notify;
pub use record::{ChannelLayout, Record, RecordFormat, Split};
pub use stream::Stream;
pub use talk::Talk;
pub use wait::Wait;

use serde::Serialize;

use crate::error::{NccoError, NccoErrorKind};
use crate::validate::{Field, Obj, Validator};

/// One NCCO action. Serialises back to the hosted API's JSON shape (`{"action": "talk", …}`)
/// with every default made explicit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Record the call (asynchronous unless `endOnSilence`/`endOnKey` is set).
    Record(Record),
    /// Speak text to the caller.
    Talk(Talk),
    /// Play an audio file to the caller.
    Stream(Stream),
    /// Collect DTMF digits and submit them to the application.
    Input(Input),
    /// Send a custom payload to the application.
    Notify(Notify),
    /// Pause the NCCO.
    Wait(Wait),
    /// Call another endpoint and bridge it to this call.
    Connect(Connect),
    /// Join a named conference.
    Conversation(Conversation),
}

impl Action {
    /// The action's NCCO name (`"record"`, `"talk"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Record(_) => "record",
            Self::Talk(_) => "talk",
            Self::Stream(_) => "stream",
            Self::Input(_) => "input",
            Self::Notify(_) => "notify",
            Self::Wait(_) => "wait",
            Self::Connect(_) => "connect",
            Self::Conversation(_) => "conversation",
        }
    }

    /// `talk` or `stream`: the prompts that `bargeIn` applies to.
    pub fn is_prompt(&self) -> bool {
        matches!(self, Self::Talk(_) | Self::Stream(_))
    }

    /// The `bargeIn` flag of a prompt; `false` for every other action.
    pub fn barge_in(&self) -> bool {
        match self {
            Self::Talk(t) => t.barge_in,
            Self::Stream(s) => s.barge_in,
            _ => false,
        }
    }
}

/// The action names this crate models, in the order the docs list them.
pub(crate) const ACTION_NAMES: &[&str] = &[
    "record",
    "talk",
    "stream",
    "input",
    "notify",
    "wait",
    "connect",
    "conversation",
];

/// Hosted-API actions that callmux does not implement, with the reason given in the error.
pub(crate) const UNSUPPORTED_ACTIONS: &[(&str, &str)] = &[
    (
        "transfer",
        "moving legs between conversations needs the REST call-control API",
    ),
    ("pay", "card payment capture needs a PCI payment processor"),
];

/// HTTP method for an action's `eventUrl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum EventMethod {
    /// `POST` with a JSON body (the default).
    #[default]
    #[serde(rename = "POST")]
    Post,
    /// `GET` with the fields as query parameters.
    #[serde(rename = "GET")]
    Get,
}

impl EventMethod {
    /// `"POST"` or `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }

    /// Reads `eventMethod` (ASCII case-insensitive, as the hosted API accepts).
    pub(crate) fn parse(v: &mut Validator<'_>, field: &Field<'_>) -> Result<Self, NccoError> {
        Ok(match field.one_of_ignore_case(v, &["POST", "GET"])? {
            "GET" => Self::Get,
            _ => Self::Post,
        })
    }
}

/// Reads one action object (its name already checked) into its typed form.
pub(crate) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Action, NccoError> {
    Ok(match obj.action {
        "record" => Action::Record(record::parse(v, obj)?),
        "talk" => Action::Talk(talk::parse(v, obj)?),
        "stream" => Action::Stream(stream::parse(v, obj)?),
        "input" => Action::Input(input::parse(v, obj)?),
        "notify" => Action::Notify(notify::parse(v, obj)?),
        "wait" => Action::Wait(wait::parse(v, obj)?),
        "connect" => Action::Connect(connect::parse(v, obj)?),
        "conversation" => Action::Conversation(conversation::parse(v, obj)?),
        other => {
            return Err(NccoError::new(
                format!("{}.action", obj.path),
                NccoErrorKind::UnknownAction {
                    name: format!("\"{other}\""),
                    known: ACTION_NAMES.to_vec(),
                },
            ))
        }
    })
}

/// The hosted API's ordering rule for `bargeIn`: "if you set bargeIn to true the next
/// non-talk action in the NCCO stack must be an input action" (and the same for stream).
/// callmux reads it as: after a prompt with `bargeIn`, the next action that is neither
/// `talk` nor `stream` must be `input`. Entries that are `None` are hosted-API actions this
/// crate does not model; they count as "not input".
pub(crate) fn check_order(actions: &[Option<Action>]) -> Result<(), NccoError> {
    for (i, action) in actions.iter().enumerate() {
        let Some(action) = action else { continue };
        if !action.barge_in() {
            continue;
        }
        let next = actions
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, a)| !a.as_ref().is_some_and(Action::is_prompt));
        let rule = match next {
            Some((_, Some(Action::Input(_)))) => continue,
            Some((j, Some(other))) => format!(
                "bargeIn is true, so the next action that is not talk or stream must be input, but $[{j}] is \"{}\"",
                other.name()
            ),
            Some((j, None)) => format!(
                "bargeIn is true, so the next action that is not talk or stream must be input, but $[{j}] is not"
            ),
            None => "bargeIn is true, so an input action must follow, but the NCCO ends".to_owned(),
        };
        return Err(NccoError::new(
            format!("$[{i}].bargeIn"),
            NccoErrorKind::Order { rule },
        ));
    }
    Ok(())
}

/// Serialises URLs the way the hosted API wants them: an array with one element.
pub(crate) mod url_array {
    use serde::{Serialize, Serializer};

    /// `"u"` → `["u"]`.
    pub(crate) fn one<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
        [url].serialize(s)
    }

    /// `Some("u")` → `["u"]`; `None` is skipped by the field attribute.
    pub(crate) fn option<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match url {
            Some(u) => [u].serialize(s),
            None => s.serialize_none(),
        }
    }
}

/// DTMF keys a caller can press (RFC 4733 events 0–11).
pub(crate) const DTMF_KEYS: &[&str] = &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"];
