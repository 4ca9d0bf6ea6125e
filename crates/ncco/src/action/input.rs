//! `input`: collect DTMF digits and submit them to the application, whose answer is a new
//! NCCO that replaces the rest of the current one.

use std::time::Duration;

use serde::Serialize;

use super::{url_array, EventMethod};
use crate::error::{NccoError, NccoErrorKind};
use crate::validate::{Obj, Spec, Validator};

/// The `input` action (DTMF only; speech recognition is not implemented).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// The enabled input types; always `["dtmf"]` here.
    #[serde(rename = "type")]
    pub input_type: Vec<InputType>,
    /// How digits are collected.
    pub dtmf: DtmfSettings,
    /// Where the result goes; `None` = the call's event URL.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "url_array::option"
    )]
    pub event_url: Option<String>,
    /// HTTP method for `event_url`.
    pub event_method: EventMethod,
}

impl Default for Input {
    /// DTMF input with the hosted API's defaults.
    fn default() -> Self {
        Self {
            input_type: vec![InputType::Dtmf],
            dtmf: DtmfSettings::default(),
            event_url: None,
            event_method: EventMethod::Post,
        }
    }
}

/// An input type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InputType {
    /// Keypad digits.
    Dtmf,
}

/// The `dtmf` settings of an `input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DtmfSettings {
    /// Digits to collect before submitting, 1–20; default 4.
    pub max_digits: u8,
    /// Seconds without a key (from the start or the last key) before submitting, 0–10;
    /// default 3.
    pub time_out: u8,
    /// `#` submits at once (and is not part of the digits); default false.
    pub submit_on_hash: bool,
}

impl Default for DtmfSettings {
    fn default() -> Self {
        Self {
            max_digits: 4,
            time_out: 3,
            submit_on_hash: false,
        }
    }
}

impl DtmfSettings {
    /// `timeOut` as a duration.
    pub fn time_out_duration(&self) -> Duration {
        Duration::from_secs(u64::from(self.time_out))
    }
}

const SPEC: Spec = Spec {
    fields: &["action", "type", "dtmf", "eventUrl", "eventMethod", "mode"],
    unsupported: &[("speech", "speech recognition needs an ASR service")],
};

const DTMF_SPEC: Spec = Spec {
    fields: &["maxDigits", "timeOut", "submitOnHash"],
    unsupported: &[],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Input, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let mut input = Input::default();

    let type_field = obj.require(v, "type")?;
    let serde_json::Value::Array(types) = type_field.value else {
        return Err(type_field.err(NccoErrorKind::WrongType {
            expected: "an array such as [\"dtmf\"]".to_owned(),
            got: crate::error::describe(type_field.value),
        }));
    };
    if types.is_empty() {
        return Err(type_field.invalid("a non-empty array such as [\"dtmf\"]"));
    }
    let mut has_dtmf = false;
    for (i, t) in types.iter().enumerate() {
        let element = type_field.element(i, t);
        match element.one_of(v, &["dtmf", "speech"])? {
            "dtmf" => has_dtmf = true,
            _ => {
                v.defer(
                    element.err(NccoErrorKind::NotImplemented {
                        what: "input type \"speech\" (speech recognition needs an ASR service)"
                            .to_owned(),
                    }),
                )
            }
        }
    }

    if let Some(f) = obj.get(v, "dtmf") {
        if !has_dtmf {
            return Err(f.err(NccoErrorKind::Conflict {
                rule: format!(
                    "dtmf settings are given but {} does not include \"dtmf\"",
                    type_field.path
                ),
            }));
        }
        let dtmf = f.object("\"dtmf\" of \"input\"".to_owned())?;
        dtmf.check_keys(v, &DTMF_SPEC)?;
        if let Some(g) = dtmf.get(v, "maxDigits") {
            input.dtmf.max_digits = u8::try_from(g.integer(1, 20)?).unwrap_or(20);
        }
        if let Some(g) = dtmf.get(v, "timeOut") {
            input.dtmf.time_out = u8::try_from(g.integer(0, 10)?).unwrap_or(10);
        }
        if let Some(g) = dtmf.get(v, "submitOnHash") {
            input.dtmf.submit_on_hash = g.boolean()?;
        }
    }
    if let Some(f) = obj.get(v, "eventUrl") {
        input.event_url = Some(f.url_array()?);
    }
    if let Some(f) = obj.get(v, "eventMethod") {
        input.event_method = EventMethod::parse(v, &f)?;
    }
    if let Some(f) = obj.get(v, "mode") {
        if f.one_of(v, &["synchronous", "asynchronous"])? == "asynchronous" {
            v.defer(f.err(NccoErrorKind::NotImplemented {
                what: "input mode \"asynchronous\" (digits sent one at a time)".to_owned(),
            }));
        }
    }
    Ok(input)
}
