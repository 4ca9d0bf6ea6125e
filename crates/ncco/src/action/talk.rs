//! `talk`: speak text (plain or SSML) to the caller.

use serde::Serialize;

use crate::error::{NccoError, NccoErrorKind};
use crate::validate::{Obj, Spec, Validator};

/// The `talk` action. Synchronous: the next action starts when it has been spoken
/// `loop_count` times, or at once when the caller barges in with a key (`barge_in`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Talk {
    /// Up to 1500 characters (SSML tags not counted); SSML must be wrapped in `<speak>`.
    pub text: String,
    /// A DTMF key stops the speech; an `input` must follow.
    pub barge_in: bool,
    /// Times to speak the text; 0 = until something else ends it. Default 1.
    #[serde(rename = "loop")]
    pub loop_count: u32,
    /// Volume, -1..=1; default 0.
    pub level: f64,
    /// BCP-47 language tag (`"en-US"`); `None` = the server's default voice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Vocal style index for the language; `None` = 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<u32>,
    /// Use the premium voice of the style if there is one.
    pub premium: bool,
}

impl Default for Talk {
    /// Empty text with the hosted API's defaults (fill `text` before use).
    fn default() -> Self {
        Self {
            text: String::new(),
            barge_in: false,
            loop_count: 1,
            level: 0.0,
            language: None,
            style: None,
            premium: false,
        }
    }
}

/// Most characters of `text`, SSML tags excluded.
pub(crate) const MAX_TEXT_CHARS: usize = 1500;
/// Highest `style` callmux accepts (the hosted docs give no bound; real styles are < 20).
const MAX_STYLE: i64 = 255;

const SPEC: Spec = Spec {
    fields: &[
        "action", "text", "bargeIn", "loop", "level", "language", "style", "premium",
    ],
    unsupported: &[(
        "voiceName",
        "deprecated by the hosted API; use language and style",
    )],
};

pub(super) fn parse(v: &mut Validator<'_>, obj: &Obj<'_>) -> Result<Talk, NccoError> {
    obj.check_keys(v, &SPEC)?;
    let mut t = Talk::default();
    let text_field = obj.require(v, "text")?;
    let text = text_field.non_empty_string()?;
    let spoken = spoken_chars(text);
    if spoken > MAX_TEXT_CHARS {
        return Err(text_field.err(NccoErrorKind::InvalidValue {
            expected: format!("at most {MAX_TEXT_CHARS} characters of text (SSML tags excluded)"),
            got: format!("{spoken} characters"),
        }));
    }
    t.text = text.to_owned();
    if let Some(f) = obj.get(v, "bargeIn") {
        t.barge_in = f.boolean()?;
    }
    if let Some(f) = obj.get(v, "loop") {
        t.loop_count = loop_count(&f)?;
    }
    if let Some(f) = obj.get(v, "level") {
        t.level = f.number(-1.0, 1.0)?;
    }
    if let Some(f) = obj.get(v, "language") {
        let tag = f.string()?;
        if !is_language_tag(tag) {
            return Err(f.invalid("a BCP-47 language tag such as \"en-US\""));
        }
        t.language = Some(tag.to_owned());
    }
    if let Some(f) = obj.get(v, "style") {
        t.style = u32::try_from(f.integer(0, MAX_STYLE)?).ok();
    }
    if let Some(f) = obj.get(v, "premium") {
        t.premium = f.boolean()?;
    }
    Ok(t)
}

/// `loop` for talk and stream: a non-negative integer, 0 meaning forever.
pub(super) fn loop_count(f: &crate::validate::Field<'_>) -> Result<u32, NccoError> {
    let n = f.integer_described(
        0,
        i64::from(u32::MAX),
        "a non-negative integer (0 repeats until stopped)",
    )?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Characters outside `<…>` tags: what the hosted API counts against the 1500 limit.
pub(crate) fn spoken_chars(text: &str) -> usize {
    let mut in_tag = false;
    let mut count = 0;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => count += 1,
            _ => {}
        }
    }
    count
}

/// A BCP-47-shaped tag: 2–3 letters, then `-` subtags of 1–8 letters or digits.
pub(crate) fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}
