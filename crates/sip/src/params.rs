//! Ordered `;name=value` parameter lists used by URIs, Via and name-addr headers.

use std::fmt;

use crate::lex;

/// One parameter. `value` is kept as written (a quoted value keeps its quotes) so that
/// re-serialising gives back what the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as written; compared case-insensitively.
    pub name: String,
    /// Value after `=`, or `None` for a flag parameter like `lr`.
    pub value: Option<String>,
}

/// An ordered parameter list with case-insensitive lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

/// Why a parameter list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad parameter {0:?}")]
pub struct ParamError(pub String);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Parses `a=b;c;d="x y"` (no leading `;`). Empty input gives an empty list.
    pub fn parse(s: &str) -> Result<Self, ParamError> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(out));
        }
        for piece in lex::split_outside(s, b';') {
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (piece, None),
            };
            if name.is_empty() || !name.bytes().all(is_param_name_char) {
                return Err(ParamError(piece.to_owned()));
            }
            if let Some(v) = value {
                let quoted = v.starts_with('"');
                if v.is_empty()
                    || (quoted && lex::unquote(v).is_none())
                    || (!quoted && !v.bytes().all(is_param_value_char))
                {
                    return Err(ParamError(piece.to_owned()));
                }
            }
            out.push(Param {
                name: name.to_owned(),
                value: value.map(str::to_owned),
            });
        }
        Ok(Self(out))
    }

    /// The parameter called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The value of `name` (unquoted), `None` when absent or valueless.
    pub fn value(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|p| p.value.as_deref())
            .and_then(lex::unquote)
    }

    /// True when `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing entry in place, or appending).
    pub fn set(&mut self, name: &str, value: Option<String>) {
        if let Some(p) = self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            p.value = value;
        } else {
            self.0.push(Param {
                name: name.to_owned(),
                value,
            });
        }
    }

    /// Removes every entry called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
        before - self.0.len()
    }

    /// Iterates in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.0.iter()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = &'a Param;
    type IntoIter = std::slice::Iter<'a, Param>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Writes `;name[=value]` for each parameter.
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            match &p.value {
                Some(v) => write!(f, ";{}={}", p.name, v)?,
                None => write!(f, ";{}", p.name)?,
            }
        }
        Ok(())
    }
}

fn is_param_name_char(b: u8) -> bool {
    lex::is_token_char(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'$')
}

fn is_param_value_char(b: u8) -> bool {
    is_param_name_char(b) || matches!(b, b'@' | b'(' | b')' | b'=' | b'?' | b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_get_set_display() {
        let mut p = Params::parse("branch=z9hG4bK1; rport ;Tag=\"a b\"").unwrap();
        assert_eq!(p.value("BRANCH").as_deref(), Some("z9hG4bK1"));
        assert!(p.contains("rport"));
        assert_eq!(p.value("rport"), None);
        assert_eq!(p.value("tag").as_deref(), Some("a b"));
        p.set("rport", Some("5060".into()));
        p.set("received", Some("10.0.0.1".into()));
        assert_eq!(
            p.to_string(),
            ";branch=z9hG4bK1;rport=5060;Tag=\"a b\";received=10.0.0.1"
        );
        assert_eq!(p.remove("tag"), 1);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn rejects_malformed() {
        assert!(Params::parse("=x").is_err());
        assert!(Params::parse("a=").is_err());
        assert!(Params::parse("a b=c").is_err());
        assert!(Params::parse("a=\"open").is_err());
        assert!(Params::parse("a;;b").is_err());
        assert!(Params::parse("").unwrap().is_empty());
    }
}
