//! The Via header (RFC 3261 §20.42) with RFC 3581 `rport`.

use std::fmt;

use crate::lex;
use crate::params::Params;
use crate::uri::{bracket_host, parse_host_port};

/// RFC 3261 magic cookie that marks a branch as globally unique.
pub(crate) const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via element (`SIP/2.0/UDP host:port;branch=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, uppercased (`UDP`, `TCP`, `TLS`, `WS`, ...).
    pub transport: String,
    /// Sent-by host (IPv6 without brackets).
    pub host: String,
    /// Sent-by port, if given.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Option<String>,
    /// `received` parameter (the source IP seen by the next hop).
    pub received: Option<String>,
    /// `rport`: `None` absent, `Some(None)` requested, `Some(Some(p))` filled in.
    pub rport: Option<Option<u16>>,
    /// Every other parameter, in order.
    pub params: Params,
}

/// Why a Via value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad Via: {0}")]
pub struct ViaError(pub &'static str);

impl Via {
    /// A Via for a request we send.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Self {
        Self {
            transport: transport.to_ascii_uppercase(),
            host: host.to_owned(),
            port,
            branch: Some(branch.to_owned()),
            received: None,
            rport: None,
            params: Params::new(),
        }
    }

    /// Parses a single Via element (split a multi-value line first).
    pub fn parse(s: &str) -> Result<Self, ViaError> {
        let (name, rest) = s.split_once('/').ok_or(ViaError("missing protocol"))?;
        if !name.trim().eq_ignore_ascii_case("SIP") {
            return Err(ViaError("protocol is not SIP"));
        }
        let (version, rest) = rest.split_once('/').ok_or(ViaError("missing version"))?;
        if version.trim() != "2.0" {
            return Err(ViaError("version is not 2.0"));
        }
        let rest = rest.trim_start();
        let tend = rest
            .find(|c: char| c.is_ascii_whitespace())
            .ok_or(ViaError("missing sent-by"))?;
        let (transport, rest) = rest.split_at(tend);
        if !lex::is_token(transport) {
            return Err(ViaError("bad transport"));
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.split_once(';') {
            Some((h, p)) => (h.trim(), p),
            None => (rest.trim(), ""),
        };
        let (host, port) = parse_host_port(sent_by).ok_or(ViaError("bad sent-by"))?;
        let mut params = Params::parse(params).map_err(|_| ViaError("bad parameter"))?;
        let branch = params.value("branch");
        if params.contains("branch") && branch.as_deref().is_none_or(str::is_empty) {
            return Err(ViaError("empty branch"));
        }
        let received = params.value("received");
        let rport = match params.get("rport") {
            None => None,
            Some(p) => match &p.value {
                None => Some(None),
                Some(v) => Some(Some(v.parse::<u16>().map_err(|_| ViaError("bad rport"))?)),
            },
        };
        for name in ["branch", "received", "rport"] {
            params.remove(name);
        }
        Ok(Self {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            branch,
            received,
            rport,
            params,
        })
    }

    /// `host[:port]` as written in the sent-by.
    pub fn sent_by(&self) -> String {
        let host = bracket_host(&self.host);
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// True when the branch carries the RFC 3261 magic cookie.
    pub fn has_magic_cookie(&self) -> bool {
        self.branch
            .as_deref()
            .is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }

    /// True for connection-oriented transports (no retransmissions; timers I/J/K/D are zero).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        if let Some(b) = &self.branch {
            write!(f, ";branch={b}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(r) = &self.received {
            write!(f, ";received={r}")?;
        }
        match self.rport {
            None => {}
            Some(None) => f.write_str(";rport")?,
            Some(Some(p)) => write!(f, ";rport={p}")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_lws() {
        let v = Via::parse("SIP / 2.0 / udp  [2001:db8::9]:5070 ; branch=z9hG4bKabc;rport;ttl=1")
            .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "2001:db8::9");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKabc"));
        assert_eq!(v.rport, Some(None));
        assert!(v.has_magic_cookie());
        assert_eq!(v.params.value("ttl").as_deref(), Some("1"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKabc;ttl=1;rport"
        );
        let v = Via::parse("SIP/2.0/TCP h;received=1.2.3.4;rport=9").unwrap();
        assert_eq!(v.rport, Some(Some(9)));
        assert_eq!(v.received.as_deref(), Some("1.2.3.4"));
        assert!(v.is_reliable());
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "SIP/3.0/UDP h",
            "HTTP/2.0/UDP h",
            "SIP/2.0/U@P h",
            "SIP/2.0/UDP h:port",
            "SIP/2.0/UDP h;branch=",
            "SIP/2.0/UDP h;rport=x",
            "SIP/2.0/UDP h;;",
        ] {
            assert!(Via::parse(s).is_err(), "{s:?}");
        }
    }
}
