//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), parsed by hand so that IPv6 hosts,
//! escaped user parts and unknown schemes survive (rsip 0.4 rejects or mangles all three).

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::params::Params;

/// URI scheme. Other schemes are kept so the endpoint can answer 416 instead of 400.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (TLS end to end).
    Sips,
    /// `tel:` (RFC 3966); the number is in `Uri::user`.
    Tel,
    /// Any other absolute URI scheme, lowercased; the rest is in `Uri::user`.
    Other(String),
}

impl Scheme {
    /// The scheme name without the colon.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sip => "sip",
            Self::Sips => "sips",
            Self::Tel => "tel",
            Self::Other(s) => s,
        }
    }
}

/// A parsed URI. For `sip`/`sips` every field is meaningful; for `tel` and other schemes
/// `user` holds everything between the colon and the parameters, and `host` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// User part (still %-escaped as received), or the tel number / opaque part.
    pub user: Option<String>,
    /// Password part of the userinfo (deprecated but legal).
    pub password: Option<String>,
    /// Host name or IP address; IPv6 without brackets.
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// Raw header part after `?`, if any.
    pub headers: Option<String>,
}

/// Why a URI was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad URI {uri:?}: {reason}")]
pub struct UriError {
    /// The offending text (truncated to 80 characters).
    pub uri: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn err(uri: &str, reason: &'static str) -> UriError {
    UriError {
        uri: uri.chars().take(80).collect(),
        reason,
    }
}

impl Uri {
    /// A `sip:` URI with the given user and host and nothing else.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port,
            params: Params::new(),
            headers: None,
        }
    }

    /// Parses a URI (no surrounding `<>`).
    pub fn parse(s: &str) -> Result<Self, UriError> {
        if s.is_empty() {
            return Err(err(s, "empty"));
        }
        if s.bytes().any(|b| {
            b.is_ascii_whitespace() || b.is_ascii_control() || matches!(b, b'<' | b'>' | b'"')
        }) {
            return Err(err(
                s,
                "contains whitespace, control or delimiter characters",
            ));
        }
        if !s.is_ascii() {
            return Err(err(s, "contains non-ASCII characters"));
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(err(s, "missing scheme"));
        };
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(err(s, "bad scheme"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            other => Scheme::Other(other.to_owned()),
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(s, scheme, rest),
            Scheme::Tel => {
                let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
                if number.is_empty() || number.bytes().any(|b| matches!(b, b'?' | b'@')) {
                    return Err(err(s, "bad telephone number"));
                }
                Ok(Self {
                    scheme,
                    user: Some(number.to_owned()),
                    password: None,
                    host: String::new(),
                    port: None,
                    params: Params::parse(params).map_err(|_| err(s, "bad parameter"))?,
                    headers: None,
                })
            }
            Scheme::Other(_) => {
                if rest.is_empty() {
                    return Err(err(s, "empty opaque part"));
                }
                Ok(Self {
                    scheme,
                    user: Some(rest.to_owned()),
                    password: None,
                    host: String::new(),
                    port: None,
                    params: Params::new(),
                    headers: None,
                })
            }
        }
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// `host[:port]` with IPv6 brackets, as it would appear in a Via or a URI.
    pub fn host_port(&self) -> String {
        let host = bracket_host(&self.host);
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// The `transport` parameter, lowercased.
    pub fn transport(&self) -> Option<String> {
        self.params
            .value("transport")
            .map(|t| t.to_ascii_lowercase())
    }
}

/// Adds brackets to an IPv6 literal so that it can be followed by `:port`.
pub(crate) fn bracket_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Parses `host[:port]` as found in URIs and Via sent-by. Returns host without brackets.
pub(crate) fn parse_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        inner.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (inner, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    if !s.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(p.parse::<u16>().ok()?)
        }
    };
    Some((host.to_owned(), port))
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn is_user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'%'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b';'
                | b'?'
                | b'/'
        )
}

fn parse_sip(whole: &str, scheme: Scheme, rest: &str) -> Result<Uri, UriError> {
    // The first '@' ends the userinfo: the host, parameters and headers cannot hold one,
    // while the user part may hold '?', ';' and '/' (RFC 3261 §25.1 user-unreserved, as in
    // RFC 4475 §3.1.1.2), so the headers are split off only after it.
    let (userinfo, after) = match rest.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (hostpart, headers) = match after.split_once('?') {
        Some((m, h)) => (m, Some(h)),
        None => (after, None),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pw) = match u.split_once(':') {
                Some((user, pw)) => (user, Some(pw)),
                None => (u, None),
            };
            if user.is_empty() || !user.bytes().all(is_user_char) || !valid_escapes(user) {
                return Err(err(whole, "bad user part"));
            }
            if let Some(pw) = pw {
                if !pw.bytes().all(is_user_char) || !valid_escapes(pw) {
                    return Err(err(whole, "bad password"));
                }
            }
            (Some(user.to_owned()), pw.map(str::to_owned))
        }
    };
    let host_end = if hostpart.starts_with('[') {
        hostpart
            .find(']')
            .map(|i| hostpart[i..].find(';').map_or(hostpart.len(), |j| i + j))
            .ok_or_else(|| err(whole, "unterminated IPv6 reference"))?
    } else {
        hostpart.find(';').unwrap_or(hostpart.len())
    };
    let (hostport, params) = hostpart.split_at(host_end);
    let (host, port) = parse_host_port(hostport).ok_or_else(|| err(whole, "bad host or port"))?;
    let params = Params::parse(params.strip_prefix(';').unwrap_or(params))
        .map_err(|_| err(whole, "bad parameter"))?;
    if let Some(h) = headers {
        if h.is_empty() || !valid_escapes(h) {
            return Err(err(whole, "bad header part"));
        }
    }
    Ok(Uri {
        scheme,
        user,
        password,
        host,
        port,
        params,
        headers: headers.map(str::to_owned),
    })
}

impl FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if self.is_sip() {
            if let Some(user) = &self.user {
                f.write_str(user)?;
                if let Some(pw) = &self.password {
                    write!(f, ":{pw}")?;
                }
                f.write_str("@")?;
            }
            f.write_str(&self.host_port())?;
        } else if let Some(user) = &self.user {
            f.write_str(user)?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "sip:alice@atlanta.com",
            "sip:alice:secret@atlanta.com;transport=tcp",
            "sips:[2001:db8::1]:5061;lr",
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            "sip:user;par=u%40example.net@example.com",
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            "sip:192.0.2.4:5070",
            "tel:+1-201-555-0123;phone-context=example.com",
            "mailto:alice@example.com",
        ] {
            let uri = Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(uri.to_string(), s);
        }
    }

    #[test]
    fn fields() {
        let u = Uri::parse("SIP:bob@[::1]:5080;transport=TCP").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, Some(5080));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert_eq!(u.host_port(), "[::1]:5080");
        let t = Uri::parse("tel:+123").unwrap();
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.user.as_deref(), Some("+123"));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "sip:",
            "nocolon",
            "1sip:x",
            "sip:a@",
            "sip:@host",
            "sip:host:",
            "sip:host:99999",
            "sip:host:12a",
            "sip:[::1",
            "sip:[zz::1]",
            "sip:ho st",
            "sip:host;=x",
            "sip:us%zzer@host",
            "sip:a@b@c",
            "sip:<host>",
            "sip:h\u{e9}st",
            "tel:",
            "sip:host?",
        ] {
            assert!(Uri::parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    /// RFC 4475 §3.1.1.2 (intmeth): '?', ';' and '/' belong to the user part when they come
    /// before the '@'; headers start at the first '?' after it.
    #[test]
    fn user_part_may_hold_question_marks() {
        let u = Uri::parse(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        )
        .unwrap();
        assert_eq!(
            u.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password.as_deref(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!((u.host.as_str(), u.headers), ("example.com", None));
        let h = Uri::parse("sip:user@example.com;lr?Route=%3Csip:a%3E").unwrap();
        assert_eq!(h.user.as_deref(), Some("user"));
        assert_eq!(h.headers.as_deref(), Some("Route=%3Csip:a%3E"));
        assert_eq!(h.to_string(), "sip:user@example.com;lr?Route=%3Csip:a%3E");
    }
}
