//! Validation errors: where in the NCCO (a JSON path such as `$[2].dtmf.maxDigits`) and
//! which rule was broken, so the call-failed event can tell the application exactly what
//! to fix.

/// One NCCO validation failure: the JSON path of the offending value and the rule broken.
///
/// `Display` renders `"$[0].channels: must be an integer 1..=32, got 33"`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct NccoError {
    /// JSONPath-like location: `$` is the whole document, `$[1]` the second action,
    /// `$[1].endpoint[0].uri` a nested field. Keys that are not plain identifiers are written
    /// `["content-type"]`.
    pub path: String,
    /// The rule that was broken.
    pub kind: NccoErrorKind,
}

impl NccoError {
    /// Builds an error at `path`.
    pub fn new(path: impl Into<String>, kind: NccoErrorKind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }

    /// True when the NCCO is valid Vonage NCCO but uses something this server does not
    /// implement (yet): the application did nothing wrong by the hosted API's rules.
    pub fn is_not_implemented(&self) -> bool {
        matches!(self.kind, NccoErrorKind::NotImplemented { .. })
    }
}

/// The rule an NCCO broke. `expected`/`got` strings are human-readable and bounded in
/// length (values taken from the document are truncated).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NccoErrorKind {
    /// The bytes are not JSON at all.
    #[error("not valid JSON: {message}")]
    InvalidJson {
        /// serde_json's description, with line and column.
        message: String,
    },
    /// The document is larger than [`crate::MAX_NCCO_BYTES`].
    #[error("NCCO is {got} bytes, more than the {max} allowed")]
    TooLarge {
        /// The limit.
        max: usize,
        /// The size received.
        got: usize,
    },
    /// The top level is not a JSON array.
    #[error("an NCCO must be a JSON array of actions, got {got}")]
    NotAnArray {
        /// What was found instead.
        got: String,
    },
    /// The array has no actions.
    #[error("an NCCO must contain at least one action, got an empty array")]
    Empty,
    /// More actions than [`crate::MAX_ACTIONS`].
    #[error("an NCCO may contain at most {max} actions, got {got}")]
    TooManyActions {
        /// The limit.
        max: usize,
        /// The number received.
        got: usize,
    },
    /// A required field is absent; the path names the missing field.
    #[error("required field \"{field}\" is missing")]
    MissingField {
        /// The missing field's name.
        field: String,
    },
    /// A field that neither the hosted API nor callmux knows for this object.
    #[error("unknown field {field} for {object}; allowed: {}", allowed.join(", "))]
    UnknownField {
        /// The field name as sent, JSON-quoted (truncated if very long).
        field: String,
        /// What object it was found in, e.g. `action "record"`.
        object: String,
        /// The field names that are allowed there.
        allowed: Vec<&'static str>,
    },
    /// An `action` value that is not an NCCO action.
    #[error("unknown action {name}; known actions: {}", known.join(", "))]
    UnknownAction {
        /// The action name as sent, JSON-quoted.
        name: String,
        /// The action names that exist.
        known: Vec<&'static str>,
    },
    /// The JSON type is wrong (a string where a number belongs, …).
    #[error("must be {expected}, got {got}")]
    WrongType {
        /// What the field must be, e.g. `an integer 1..=32`.
        expected: String,
        /// What was sent.
        got: String,
    },
    /// A number outside its allowed range.
    #[error("must be {expected}, got {got}")]
    OutOfRange {
        /// The allowed range, e.g. `an integer 1..=32`.
        expected: String,
        /// The value sent.
        got: String,
    },
    /// A string that is not one of a fixed set of values.
    #[error("must be one of {}, got {got}", quote_list(allowed))]
    NotOneOf {
        /// The allowed values.
        allowed: Vec<&'static str>,
        /// The value sent.
        got: String,
    },
    /// A string of the right type but the wrong form (not a URL of the required scheme, not a
    /// phone number, too long, …).
    #[error("must be {expected}, got {got}")]
    InvalidValue {
        /// The form required, e.g. `an http or https URL`.
        expected: String,
        /// The value sent.
        got: String,
    },
    /// Two fields that cannot be used together, or a field that requires another.
    #[error("{rule}")]
    Conflict {
        /// The rule, naming the other field by path.
        rule: String,
    },
    /// A rule about the order of actions (e.g. `bargeIn` requires a following `input`).
    #[error("{rule}")]
    Order {
        /// The rule, naming the actions involved by path.
        rule: String,
    },
    /// Valid by the hosted API's rules, but not implemented by this server (yet).
    #[error("{what} is not implemented by this server yet")]
    NotImplemented {
        /// What is not implemented, e.g. `"connect"` or `field "beepStart" of "record"`.
        what: String,
    },
}

fn quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    quoted.join(", ")
}

/// Most characters of a string value that an error message repeats back.
const MAX_ECHO_CHARS: usize = 40;

/// Renders a JSON value for an error message: numbers and booleans as themselves, strings
/// JSON-quoted and truncated, containers by kind only (they can be arbitrarily large).
pub(crate) fn describe(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_truncated(s),
        Value::Array(a) if a.is_empty() => "an empty array".to_owned(),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// JSON-quotes `s` (escaping control characters and quotes), keeping at most
/// [`MAX_ECHO_CHARS`] characters of it.
pub(crate) fn quote_truncated(s: &str) -> String {
    let mut shown: String = s.chars().take(MAX_ECHO_CHARS).collect();
    let truncated = shown.len() < s.len();
    if truncated {
        shown.push('…');
    }
    // Serialising a &str cannot fail; fall back to a plain rendering all the same.
    serde_json::to_string(&shown).unwrap_or_else(|_| format!("\"{shown}\""))
}

/// A `got` description that names only the JSON type, for messages about containers.
pub(crate) fn type_name(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
