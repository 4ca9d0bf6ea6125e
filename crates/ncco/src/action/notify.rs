//! `notify`: send a custom payload to the application to track progress through an NCCO.

use serde::Serialize;

use super::{url_array, EventMethod};
use crate::error::NccoError;
use crate::validate::{Obj, Spec, Validator};

/// The `notify` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notify {
    /// The JSON object sent as the request body.
    pub payload: serde_json::Map<String, serde_json::Value>,
    /// Where the payload goes (required; sent as an array with one URL).
    #[serde(serialize_with = "url_array::one")]
    pub event_url: String,
    /// HTTP method for `event_url`.
    pub event_method: EventMethod,
}

const SPEC: Spec = Spec {
    fields: &["action", "payload", "eventUrl", "eventMethod"],
    unsupported: &[],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Notify, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let payload_field = obj.require(v, "payload")?;
    let serde_json::Value::Object(payload) = payload_field.value else {
        return Err(payload_field.err(crate::NccoErrorKind::WrongType {
            expected: "a JSON object".to_owned(),
            got: crate::error::describe(payload_field.value),
        }));
    };
    let event_url = obj.require(v, "eventUrl")?.url_array()?;
    let event_method = match obj.get(v, "eventMethod") {
        Some(f) => EventMethod::parse(v, &f)?,
        None => EventMethod::Post,
    };
    Ok(Notify {
        payload: payload.clone(),
        event_url,
        event_method,
    })
}
