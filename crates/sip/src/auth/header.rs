//! WWW-Authenticate / Proxy-Authenticate challenges and Authorization /
//! Proxy-Authorization credentials (RFC 7616 §3.3–3.4, RFC 3261 §25.1 grammar).

use std::fmt;

use super::{Algorithm, AuthError};
use crate::lex;

/// A Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Hash algorithm (MD5 when absent).
    pub algorithm: Algorithm,
    /// Offered qop values (empty: legacy RFC 2069 mode).
    pub qop: Vec<String>,
    /// Opaque value to echo back.
    pub opaque: Option<String>,
    /// The previous nonce was merely stale: retry with the same password.
    pub stale: bool,
    /// Domain parameter, if any.
    pub domain: Option<String>,
}

/// Digest credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Realm from the challenge.
    pub realm: String,
    /// Nonce from the challenge.
    pub nonce: String,
    /// digest-uri (the Request-URI).
    pub uri: String,
    /// Hex response.
    pub response: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Client nonce (with qop).
    pub cnonce: Option<String>,
    /// Nonce count (with qop).
    pub nc: Option<u32>,
    /// Chosen qop.
    pub qop: Option<String>,
    /// Opaque echoed from the challenge.
    pub opaque: Option<String>,
}

/// Splits `Digest a=b, c="d"` into lowercase names and unquoted values.
fn parse_params(value: &str) -> Result<Vec<(String, String)>, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    let mut out = Vec::new();
    for item in lex::split_list(rest) {
        let (name, v) = item
            .split_once('=')
            .ok_or(AuthError::Syntax("parameter without ="))?;
        let name = name.trim();
        if !lex::is_token(name) {
            return Err(AuthError::Syntax("bad parameter name"));
        }
        let v = lex::unquote(v.trim()).ok_or(AuthError::Syntax("bad quoted string"))?;
        out.push((name.to_ascii_lowercase(), v));
    }
    Ok(out)
}

fn take(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn algorithm(params: &[(String, String)]) -> Result<Algorithm, AuthError> {
    take(params, "algorithm").map_or(Ok(Algorithm::Md5), |a| Algorithm::parse(&a))
}

impl Challenge {
    /// Parses a WWW-Authenticate / Proxy-Authenticate value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = parse_params(value)?;
        Ok(Self {
            realm: take(&p, "realm").ok_or(AuthError::Missing("realm"))?,
            nonce: take(&p, "nonce").ok_or(AuthError::Missing("nonce"))?,
            algorithm: algorithm(&p)?,
            qop: take(&p, "qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            opaque: take(&p, "opaque"),
            stale: take(&p, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            domain: take(&p, "domain"),
        })
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm={}, nonce={}, algorithm={}",
            lex::quote(&self.realm),
            lex::quote(&self.nonce),
            self.algorithm
        )?;
        if !self.qop.is_empty() {
            write!(f, ", qop={}", lex::quote(&self.qop.join(",")))?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", lex::quote(o))?;
        }
        if let Some(d) = &self.domain {
            write!(f, ", domain={}", lex::quote(d))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

impl Credentials {
    /// Parses an Authorization / Proxy-Authorization value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let p = parse_params(value)?;
        let nc = match take(&p, "nc") {
            None => None,
            Some(n) => {
                if n.len() != 8 {
                    return Err(AuthError::Syntax("nc must be 8 hex digits"));
                }
                Some(
                    u32::from_str_radix(&n, 16)
                        .map_err(|_| AuthError::Syntax("nc must be 8 hex digits"))?,
                )
            }
        };
        Ok(Self {
            username: take(&p, "username").ok_or(AuthError::Missing("username"))?,
            realm: take(&p, "realm").ok_or(AuthError::Missing("realm"))?,
            nonce: take(&p, "nonce").ok_or(AuthError::Missing("nonce"))?,
            uri: take(&p, "uri").ok_or(AuthError::Missing("uri"))?,
            response: take(&p, "response").ok_or(AuthError::Missing("response"))?,
            algorithm: algorithm(&p)?,
            cnonce: take(&p, "cnonce"),
            nc,
            qop: take(&p, "qop"),
            opaque: take(&p, "opaque"),
        })
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            lex::quote(&self.username),
            lex::quote(&self.realm),
            lex::quote(&self.nonce),
            lex::quote(&self.uri),
            lex::quote(&self.response),
            self.algorithm
        )?;
        if let Some(c) = &self.cnonce {
            write!(f, ", cnonce={}", lex::quote(c))?;
        }
        if let Some(q) = &self.qop {
            write!(f, ", qop={q}")?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        if let Some(o) = &self.opaque {
            write!(f, ", opaque={}", lex::quote(o))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_round_trip() {
        let v = r#"Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5"#;
        let c = Challenge::parse(v).unwrap();
        assert_eq!(c.realm, "atlanta.com");
        assert_eq!(c.qop, ["auth", "auth-int"]);
        assert_eq!(c.opaque.as_deref(), Some(""));
        assert!(!c.stale);
        assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
        let s = Challenge::parse("digest realm=r,nonce=n,stale=true,algorithm=sha-256").unwrap();
        assert!(s.stale);
        assert_eq!(s.algorithm, Algorithm::Sha256);
    }

    #[test]
    fn credentials_round_trip() {
        let v = r#"Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com", qop=auth, nc=0000000a, cnonce="0a4f113b", response="6629fae4", opaque="5ccc""#;
        let c = Credentials::parse(v).unwrap();
        assert_eq!(c.nc, Some(10));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(Credentials::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn malformed() {
        assert_eq!(Challenge::parse("Basic realm=x"), Err(AuthError::NotDigest));
        assert_eq!(
            Challenge::parse("Digest nonce=x"),
            Err(AuthError::Missing("realm"))
        );
        assert!(Challenge::parse("Digest realm").is_err());
        assert!(Challenge::parse("Digest realm=\"x, nonce=y").is_err());
        assert!(Challenge::parse("Digest realm=x, nonce=y, algorithm=SHA-1").is_err());
        assert!(
            Credentials::parse("Digest username=u, realm=r, nonce=n, uri=u, response=r, nc=1")
                .is_err()
        );
        assert!(Credentials::parse(
            "Digest username=u, realm=r, nonce=n, uri=u, response=r, nc=zzzzzzzz"
        )
        .is_err());
        assert!(Credentials::parse("Digest username=u").is_err());
        assert!(Credentials::parse("").is_err());
    }
}
