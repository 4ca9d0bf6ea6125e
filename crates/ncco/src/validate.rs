//! NCCO validation on `serde_json::Value`, so that every error carries the JSON path of the
//! offending value. Structural errors (wrong type, range, unknown field, …) win over
//! "not implemented" ones: the first structural error in document order is returned; only a
//! structurally valid NCCO is reported as using something this server lacks.

use serde_json::{Map, Value};

use crate::action::{self, Action, ACTION_NAMES, UNSUPPORTED_ACTIONS};
use crate::error::{describe, quote_truncated, type_name, NccoError, NccoErrorKind};
use crate::{Capabilities, Ncco, MAX_ACTIONS, MAX_NCCO_BYTES};

/// Parses and validates NCCO bytes (a JSON array of actions) against what `caps` implements.
pub fn parse_ncco(json: &[u8], caps: &Capabilities) -> Result<Ncco, NccoError> {
    if json.len() > MAX_NCCO_BYTES {
        return Err(NccoError::new(
            "$",
            NccoErrorKind::TooLarge {
                max: MAX_NCCO_BYTES,
                got: json.len(),
            },
        ));
    }
    let value: Value = serde_json::from_slice(json).map_err(|e| {
        NccoError::new(
            "$",
            NccoErrorKind::InvalidJson {
                message: e.to_string(),
            },
        )
    })?;
    validate_value(&value, caps)
}

/// Validates an already-parsed JSON value as an NCCO (for NCCOs embedded in other JSON, such
/// as a REST request body).
pub fn validate_value(value: &Value, caps: &Capabilities) -> Result<Ncco, NccoError> {
    let Value::Array(items) = value else {
        return Err(NccoError::new(
            "$",
            NccoErrorKind::NotAnArray {
                got: type_name(value).to_owned(),
            },
        ));
    };
    if items.is_empty() {
        return Err(NccoError::new("$", NccoErrorKind::Empty));
    }
    if items.len() > MAX_ACTIONS {
        return Err(NccoError::new(
            "$",
            NccoErrorKind::TooManyActions {
                max: MAX_ACTIONS,
                got: items.len(),
            },
        ));
    }
    let mut v = Validator {
        caps,
        deferred: None,
    };
    let mut parsed: Vec<Option<Action>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        parsed.push(parse_action(&mut v, i, item)?);
    }
    action::check_order(&parsed)?;
    if let Some(err) = v.deferred {
        return Err(err);
    }
    Ok(Ncco {
        actions: parsed.into_iter().flatten().collect(),
    })
}

/// Parses one array element. `Ok(None)` means a known Vonage action this crate does not model
/// (its NotImplemented error is deferred).
fn parse_action(
    v: &mut Validator<'_>,
    index: usize,
    item: &Value,
) -> Result<Option<Action>, NccoError> {
    let path = format!("$[{index}]");
    let Value::Object(map) = item else {
        return Err(NccoError::new(
            path,
            NccoErrorKind::WrongType {
                expected: "an action object such as {\"action\": \"talk\", …}".to_owned(),
                got: type_name(item).to_owned(),
            },
        ));
    };
    let action_path = child_path(&path, "action");
    let name_value = map.get("action").ok_or_else(|| {
        NccoError::new(
            action_path.clone(),
            NccoErrorKind::MissingField {
                field: "action".to_owned(),
            },
        )
    })?;
    let Value::String(name) = name_value else {
        return Err(NccoError::new(
            action_path,
            NccoErrorKind::WrongType {
                expected: "an action name string".to_owned(),
                got: describe(name_value),
            },
        ));
    };
    let Some(&name) = ACTION_NAMES.iter().find(|n| **n == name.as_str()) else {
        if let Some(&(known, why)) = UNSUPPORTED_ACTIONS
            .iter()
            .find(|(n, _)| *n == name.as_str())
        {
            v.defer(NccoError::new(
                action_path,
                NccoErrorKind::NotImplemented {
                    what: format!("\"{known}\" ({why})"),
                },
            ));
            return Ok(None);
        }
        return Err(NccoError::new(
            action_path,
            NccoErrorKind::UnknownAction {
                name: quote_truncated(name),
                known: ACTION_NAMES.to_vec(),
            },
        ));
    };
    let obj = Obj {
        map,
        path,
        action: name,
        key_prefix: String::new(),
        object: format!("action \"{name}\""),
    };
    let action = action::parse(v, &obj)?;
    if !v.caps.allows_action(name) {
        v.defer(NccoError::new(
            action_path,
            NccoErrorKind::NotImplemented {
                what: format!("\"{name}\""),
            },
        ));
    }
    Ok(Some(action))
}

/// Walk state: the capabilities to check against and the first NotImplemented error, kept
/// until the whole document has passed the structural checks.
pub(crate) struct Validator<'c> {
    pub(crate) caps: &'c Capabilities,
    deferred: Option<NccoError>,
}

impl Validator<'_> {
    /// Remembers a NotImplemented error; the first one in document order is reported.
    pub(crate) fn defer(&mut self, err: NccoError) {
        if self.deferred.is_none() {
            self.deferred = Some(err);
        }
    }
}

/// The fields an object may have: those the crate models, and those the hosted API has but
/// callmux does not implement (with a short reason).
pub(crate) struct Spec {
    pub(crate) fields: &'static [&'static str],
    pub(crate) unsupported: &'static [(&'static str, &'static str)],
}

/// A JSON object being read as an action or as a settings object nested in one.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) path: String,
    pub(crate) action: &'static str,
    /// Capability key prefix: `""` at action level, `"dtmf."` inside `dtmf`.
    pub(crate) key_prefix: String,
    /// How error messages name this object: `action "record"`, `"dtmf" of "input"`.
    pub(crate) object: String,
}

impl<'a> Obj<'a> {
    /// Rejects unknown fields at once and defers known-but-unsupported ones.
    pub(crate) fn check_keys(&self, v: &mut Validator<'_>, spec: &Spec) -> Result<(), NccoError> {
        for key in self.map.keys() {
            if spec.fields.contains(&key.as_str()) {
                continue;
            }
            let path = child_path(&self.path, key);
            if let Some((_, why)) = spec.unsupported.iter().find(|(f, _)| *f == key.as_str()) {
                v.defer(NccoError::new(
                    path,
                    NccoErrorKind::NotImplemented {
                        what: format!("field \"{key}\" of {} ({why})", self.object),
                    },
                ));
                continue;
            }
            return Err(NccoError::new(
                path,
                NccoErrorKind::UnknownField {
                    field: quote_truncated(key),
                    object: self.object.clone(),
                    allowed: spec
                        .fields
                        .iter()
                        .copied()
                        .filter(|f| *f != "action")
                        .collect(),
                },
            ));
        }
        Ok(())
    }

    /// The field if present; defers NotImplemented when the capabilities exclude it.
    pub(crate) fn get(&self, v: &mut Validator<'_>, key: &str) -> Option<Field<'a>> {
        let value = self.map.get(key)?;
        let field = Field {
            value,
            path: child_path(&self.path, key),
            action: self.action,
            key: format!("{}{key}", self.key_prefix),
        };
        if !v.caps.allows_field(self.action, &field.key) {
            v.defer(NccoError::new(
                field.path.clone(),
                NccoErrorKind::NotImplemented {
                    what: format!("field \"{}\" of \"{}\"", field.key, self.action),
                },
            ));
        }
        Some(field)
    }

    /// The field, or a MissingField error naming it.
    pub(crate) fn require(&self, v: &mut Validator<'_>, key: &str) -> Result<Field<'a>, NccoError> {
        self.get(v, key).ok_or_else(|| {
            NccoError::new(
                child_path(&self.path, key),
                NccoErrorKind::MissingField {
                    field: key.to_owned(),
                },
            )
        })
    }
}

/// One field's value with its path and capability key.
pub(crate) struct Field<'a> {
    pub(crate) value: &'a Value,
    pub(crate) path: String,
    pub(crate) action: &'static str,
    pub(crate) key: String,
}

impl<'a> Field<'a> {
    /// An error at this field.
    pub(crate) fn err(&self, kind: NccoErrorKind) -> NccoError {
        NccoError::new(self.path.clone(), kind)
    }

    fn wrong_type(&self, expected: impl Into<String>) -> NccoError {
        self.err(NccoErrorKind::WrongType {
            expected: expected.into(),
            got: describe(self.value),
        })
    }

    /// An error saying the string value does not have the required form.
    pub(crate) fn invalid(&self, expected: impl Into<String>) -> NccoError {
        self.err(NccoErrorKind::InvalidValue {
            expected: expected.into(),
            got: describe(self.value),
        })
    }

    /// An integer in `lo..=hi`. Numbers written with a zero fraction (`5.0`) count as
    /// integers; strings never do.
    pub(crate) fn integer(&self, lo: i64, hi: i64) -> Result<i64, NccoError> {
        let expected = format!("an integer {lo}..={hi}");
        self.integer_described(lo, hi, &expected)
    }

    /// Like [`Self::integer`] with a custom description of the allowed values.
    pub(crate) fn integer_described(
        &self,
        lo: i64,
        hi: i64,
        expected: &str,
    ) -> Result<i64, NccoError> {
        let Value::Number(n) = self.value else {
            return Err(self.wrong_type(expected));
        };
        let as_int = if let Some(i) = n.as_i64() {
            Some(i)
        } else if n.as_u64().is_some() {
            None // larger than i64: out of any range we use
        } else {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() || f.fract() != 0.0 {
                return Err(self.wrong_type(expected));
            }
            if f.abs() < 9.0e15 {
                // Exactly representable: the cast is lossless.
                Some(f as i64)
            } else {
                None
            }
        };
        match as_int {
            Some(i) if (lo..=hi).contains(&i) => Ok(i),
            _ => Err(self.err(NccoErrorKind::OutOfRange {
                expected: expected.to_owned(),
                got: describe(self.value),
            })),
        }
    }

    /// A number (integer or not) in `lo..=hi`.
    pub(crate) fn number(&self, lo: f64, hi: f64) -> Result<f64, NccoError> {
        let expected = format!("a number {lo}..={hi}");
        let Value::Number(n) = self.value else {
            return Err(self.wrong_type(expected));
        };
        match n.as_f64() {
            Some(f) if f.is_finite() && f >= lo && f <= hi => Ok(f),
            _ => Err(self.err(NccoErrorKind::OutOfRange {
                expected,
                got: describe(self.value),
            })),
        }
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&self) -> Result<bool, NccoError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.wrong_type("true or false"))
    }

    /// Any string, possibly empty.
    pub(crate) fn string(&self) -> Result<&'a str, NccoError> {
        self.value
            .as_str()
            .ok_or_else(|| self.wrong_type("a string"))
    }

    /// A string with at least one non-whitespace character.
    pub(crate) fn non_empty_string(&self) -> Result<&'a str, NccoError> {
        let s = self
            .value
            .as_str()
            .ok_or_else(|| self.wrong_type("a non-empty string"))?;
        if s.trim().is_empty() {
            return Err(self.invalid("a non-empty string"));
        }
        Ok(s)
    }

    /// One of `allowed` (exact match); values the capabilities exclude are deferred as
    /// NotImplemented.
    pub(crate) fn one_of(
        &self,
        v: &mut Validator<'_>,
        allowed: &'static [&'static str],
    ) -> Result<&'static str, NccoError> {
        self.one_of_impl(v, allowed, false)
    }

    /// Like [`Self::one_of`] but ASCII case-insensitive (HTTP methods).
    pub(crate) fn one_of_ignore_case(
        &self,
        v: &mut Validator<'_>,
        allowed: &'static [&'static str],
    ) -> Result<&'static str, NccoError> {
        self.one_of_impl(v, allowed, true)
    }

    fn one_of_impl(
        &self,
        v: &mut Validator<'_>,
        allowed: &'static [&'static str],
        ignore_case: bool,
    ) -> Result<&'static str, NccoError> {
        let not_one_of = || {
            self.err(NccoErrorKind::NotOneOf {
                allowed: allowed.to_vec(),
                got: describe(self.value),
            })
        };
        let Some(s) = self.value.as_str() else {
            return Err(not_one_of());
        };
        let found = allowed.iter().copied().find(|a| {
            if ignore_case {
                a.eq_ignore_ascii_case(s)
            } else {
                *a == s
            }
        });
        let Some(value) = found else {
            return Err(not_one_of());
        };
        self.check_value_capability(v, value);
        Ok(value)
    }

    /// Defers NotImplemented when the capabilities exclude `value` for this field.
    pub(crate) fn check_value_capability(&self, v: &mut Validator<'_>, value: &str) {
        if !v.caps.allows_value(self.action, &self.key, value) {
            v.defer(self.err(NccoErrorKind::NotImplemented {
                what: format!("\"{value}\" for \"{}\" of \"{}\"", self.key, self.action),
            }));
        }
    }

    /// An absolute `http://` or `https://` URL.
    pub(crate) fn http_url(&self) -> Result<String, NccoError> {
        let s = self
            .value
            .as_str()
            .ok_or_else(|| self.wrong_type("an http or https URL string"))?;
        if !is_url_with_scheme(s, &["http://", "https://"]) {
            return Err(self.err(NccoErrorKind::InvalidValue {
                expected: "an http or https URL".to_owned(),
                got: describe(self.value),
            }));
        }
        Ok(s.to_owned())
    }

    /// An array holding exactly one http(s) URL, as the hosted API requires for `eventUrl`,
    /// `streamUrl` and `musicOnHoldUrl`.
    pub(crate) fn url_array(&self) -> Result<String, NccoError> {
        const EXPECTED: &str = "an array with exactly one http or https URL";
        let Value::Array(items) = self.value else {
            return Err(self.wrong_type(EXPECTED));
        };
        let [only] = items.as_slice() else {
            return Err(self.invalid(EXPECTED));
        };
        self.element(0, only).http_url()
    }

    /// A nested object, read with its own spec.
    pub(crate) fn object(&self, object: String) -> Result<Obj<'a>, NccoError> {
        let Value::Object(map) = self.value else {
            return Err(self.wrong_type("an object"));
        };
        Ok(Obj {
            map,
            path: self.path.clone(),
            action: self.action,
            key_prefix: format!("{}.", self.key),
            object,
        })
    }

    /// An array of strings (each may be anything, including empty).
    pub(crate) fn string_array(&self) -> Result<Vec<String>, NccoError> {
        let Value::Array(items) = self.value else {
            return Err(self.wrong_type("an array of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    NccoError::new(
                        format!("{}[{i}]", self.path),
                        NccoErrorKind::WrongType {
                            expected: "a string".to_owned(),
                            got: describe(item),
                        },
                    )
                })
            })
            .collect()
    }

    /// The element at `index` of an array value, as a field of its own (same capability key).
    pub(crate) fn element(&self, index: usize, value: &'a Value) -> Self {
        Self {
            value,
            path: format!("{}[{index}]", self.path),
            action: self.action,
            key: self.key.clone(),
        }
    }
}

/// `base.key`, or `base["key"]` when the key is not a plain identifier (or is long).
pub(crate) fn child_path(base: &str, key: &str) -> String {
    let plain = key.len() <= 64
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{base}.{key}")
    } else {
        format!("{base}[{}]", quote_truncated(key))
    }
}

/// Longest URL accepted anywhere in an NCCO.
const MAX_URL_LEN: usize = 2048;

/// True when `s` starts with one of `schemes` (ASCII case-insensitive), has a non-empty host
/// and contains no whitespace or control characters.
pub(crate) fn is_url_with_scheme(s: &str, schemes: &[&str]) -> bool {
    if s.len() > MAX_URL_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let rest = schemes.iter().find_map(|scheme| {
        let head = s.get(..scheme.len())?;
        if head.eq_ignore_ascii_case(scheme) {
            s.get(scheme.len()..)
        } else {
            None
        }
    });
    let Some(rest) = rest else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        // IPv6 literal: [::1]:8080
        host_port
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    !host.is_empty()
}
