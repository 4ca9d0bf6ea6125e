//! name-addr / addr-spec headers: From, To, Contact, Route, Record-Route (RFC 3261 §20.10).

use std::fmt;

use crate::lex;
use crate::params::Params;
use crate::uri::{Uri, UriError};

/// `"Display" <uri>;params`. In the addr-spec form (no angle brackets) everything after the
/// first `;` is a header parameter, as RFC 3261 §20 requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, `lr` on Route is a URI param, not here).
    pub params: Params,
}

/// Why a name-addr was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameAddrError {
    /// The structure around the URI is wrong.
    #[error("bad name-addr: {0}")]
    Syntax(&'static str),
    /// The URI itself is wrong.
    #[error(transparent)]
    Uri(#[from] UriError),
}

impl NameAddr {
    /// A name-addr with no display name or parameters.
    pub fn new(uri: Uri) -> Self {
        Self {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    /// The `tag` parameter (dialog identification). Tags are tokens, so the raw value is
    /// returned without unquoting.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").and_then(|p| p.value.as_deref())
    }

    /// Sets (or replaces) the `tag` parameter.
    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag.to_owned()));
    }

    /// Parses one element (split multi-value headers first).
    pub fn parse(s: &str) -> Result<Self, NameAddrError> {
        let s = s.trim();
        let (display, after) = if s.starts_with('"') {
            let close = lex::find_unquoted(s, b'<')
                .ok_or(NameAddrError::Syntax("missing <uri> after display name"))?;
            let (quoted, after) = s.split_at(close);
            let display =
                lex::unquote(quoted).ok_or(NameAddrError::Syntax("bad quoted display name"))?;
            (Some(display), after)
        } else if let Some(lt) = s.find('<') {
            let (d, after) = s.split_at(lt);
            let d = d.trim();
            if !d
                .split_ascii_whitespace()
                .all(|w| w.bytes().all(lex::is_token_char))
            {
                return Err(NameAddrError::Syntax("bad display name"));
            }
            ((!d.is_empty()).then(|| d.to_owned()), after)
        } else {
            let (uri, params) = s.split_once(';').unwrap_or((s, ""));
            return Ok(Self {
                display: None,
                uri: Uri::parse(uri.trim())?,
                params: Params::parse(params)
                    .map_err(|_| NameAddrError::Syntax("bad parameter"))?,
            });
        };
        let inner = after
            .strip_prefix('<')
            .ok_or(NameAddrError::Syntax("missing <"))?;
        let (uri, rest) = inner
            .split_once('>')
            .ok_or(NameAddrError::Syntax("missing >"))?;
        let rest = rest.trim_start();
        let params = if rest.is_empty() {
            Params::new()
        } else {
            let p = rest
                .strip_prefix(';')
                .ok_or(NameAddrError::Syntax("junk after >"))?;
            Params::parse(p).map_err(|_| NameAddrError::Syntax("bad parameter"))?
        };
        Ok(Self {
            display,
            uri: Uri::parse(uri.trim())?,
            params,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", lex::quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a =
            NameAddr::parse(r#""Alice \"A\" <x>" <sip:alice@atlanta.com;lr>;tag=1928"#).unwrap();
        assert_eq!(a.display.as_deref(), Some(r#"Alice "A" <x>"#));
        assert_eq!(a.tag(), Some("1928"));
        assert!(a.uri.params.contains("lr"));
        let b = NameAddr::parse("Bob Smith <sip:bob@biloxi.com>").unwrap();
        assert_eq!(b.display.as_deref(), Some("Bob Smith"));
        assert_eq!(b.tag(), None);
        let c = NameAddr::parse("sip:carol@chicago.com;tag=887s").unwrap();
        assert_eq!(c.tag(), Some("887s"));
        assert!(c.uri.params.is_empty());
        let mut d = NameAddr::parse("<sip:d@x>").unwrap();
        d.set_tag("t1");
        assert_eq!(d.to_string(), "<sip:d@x>;tag=t1");
        assert_eq!(
            a.to_string(),
            r#""Alice \"A\" <x>" <sip:alice@atlanta.com;lr>;tag=1928"#
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "<sip:a@b",
            "\"unterminated <sip:a@b>",
            "Bad@Name <sip:a@b>",
            "<sip:a@b> junk",
            "<sip:a@b>;=",
            "<>",
            "sip:a@b;tag",
            "\"x\" sip:a@b",
        ] {
            let r = NameAddr::parse(s);
            if s == "sip:a@b;tag" {
                assert!(r.is_ok(), "valueless tag param is syntactically fine");
                continue;
            }
            assert!(r.is_err(), "{s:?}");
        }
    }
}
