//! Typed accessors over [`Headers`]: each decodes its header on demand and says precisely
//! what is wrong, so the endpoint can put the reason in a `Warning`.

use super::{CSeq, Headers, NameAddr, Via};
use crate::lex;

/// A header is missing or its value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header is required here but absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The header is present but malformed.
    #[error("bad {name} header: {reason}")]
    Invalid {
        /// Header name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(name: &'static str, reason: impl ToString) -> HeaderError {
    HeaderError::Invalid {
        name,
        reason: reason.to_string(),
    }
}

fn number(name: &'static str, value: &str) -> Result<u32, HeaderError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(name, "not a number"));
    }
    v.parse::<u32>()
        .map_err(|_| invalid(name, "number too large"))
}

fn name_addr_list(headers: &Headers, name: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
    let mut out = Vec::new();
    for line in headers.get_all(name) {
        for item in lex::split_list(line) {
            out.push(NameAddr::parse(item).map_err(|e| invalid(name, e))?);
        }
    }
    Ok(out)
}

impl Headers {
    /// The Call-ID (`i`).
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID").filter(|v| !v.is_empty())
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        let v = self.get("CSeq").ok_or(HeaderError::Missing("CSeq"))?;
        CSeq::parse(v).map_err(|e| invalid("CSeq", e))
    }

    /// The From header (`f`).
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        let v = self.get("From").ok_or(HeaderError::Missing("From"))?;
        NameAddr::parse(v).map_err(|e| invalid("From", e))
    }

    /// The To header (`t`).
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        let v = self.get("To").ok_or(HeaderError::Missing("To"))?;
        NameAddr::parse(v).map_err(|e| invalid("To", e))
    }

    /// Every Via element, top first, across lines and comma-separated values.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for line in self.get_all("Via") {
            for item in lex::split_list(line) {
                out.push(Via::parse(item).map_err(|e| invalid("Via", e))?);
            }
        }
        if out.is_empty() {
            return Err(HeaderError::Missing("Via"));
        }
        Ok(out)
    }

    /// The topmost Via element.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let line = self.get("Via").ok_or(HeaderError::Missing("Via"))?;
        let first = lex::split_list(line)
            .into_iter()
            .next()
            .ok_or_else(|| invalid("Via", "empty"))?;
        Via::parse(first).map_err(|e| invalid("Via", e))
    }

    /// Every Contact (`m`); `*` (REGISTER wildcard) is reported as invalid here.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
        name_addr_list(self, "Contact")
    }

    /// The first Contact, if any.
    pub fn contact(&self) -> Result<Option<NameAddr>, HeaderError> {
        Ok(self.contacts()?.into_iter().next())
    }

    /// The Content-Type (`c`) value as written.
    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }

    /// The Content-Length (`l`).
    pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
        self.get("Content-Length")
            .map(|v| number("Content-Length", v).map(|n| n as usize))
            .transpose()
    }

    /// Max-Forwards; `None` when absent (callers treat that as 70).
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        self.get("Max-Forwards")
            .map(|v| number("Max-Forwards", v))
            .transpose()
    }

    /// Record-Route entries in header order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        name_addr_list(self, "Record-Route")
    }

    /// Route entries in header order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        name_addr_list(self, "Route")
    }

    /// The Expires header in seconds.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.get("Expires")
            .map(|v| number("Expires", v))
            .transpose()
    }

    /// Option tags of every `name` header (Require, Supported, Proxy-Require, ...).
    pub fn option_tags(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .flat_map(lex::split_list)
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::Method;

    #[test]
    fn accessors() {
        let mut h = Headers::new();
        h.push(
            "v",
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5070;branch=z9hG4bK2",
        );
        h.push("Via", "SIP/2.0/UDP c");
        h.push("f", "<sip:a@x>;tag=1");
        h.push("t", "sip:b@y");
        h.push("i", "cid");
        h.push("CSeq", "7 BYE");
        h.push("m", "<sip:a@1.2.3.4>, <sip:a@5.6.7.8>");
        h.push("l", "12");
        h.push("Max-Forwards", "69");
        h.push("Record-Route", "<sip:p1;lr>, <sip:p2;lr>");
        h.push("Record-Route", "<sip:p3;lr>");
        h.push("Expires", "60");
        h.push("Require", "timer, 100rel");
        let vias = h.vias().unwrap();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[1].port, Some(5070));
        assert_eq!(h.top_via().unwrap().branch.as_deref(), Some("z9hG4bK1"));
        assert_eq!(h.from().unwrap().tag(), Some("1"));
        assert_eq!(h.to().unwrap().tag(), None);
        assert_eq!(h.call_id(), Some("cid"));
        assert_eq!(h.cseq().unwrap().method, Method::Bye);
        assert_eq!(h.contacts().unwrap().len(), 2);
        assert_eq!(h.contact().unwrap().unwrap().uri.host, "1.2.3.4");
        assert_eq!(h.content_length().unwrap(), Some(12));
        assert_eq!(h.max_forwards().unwrap(), Some(69));
        assert_eq!(h.record_routes().unwrap().len(), 3);
        assert!(h.routes().unwrap().is_empty());
        assert_eq!(h.expires().unwrap(), Some(60));
        assert_eq!(h.option_tags("Require"), ["timer", "100rel"]);
    }

    #[test]
    fn errors() {
        let mut h = Headers::new();
        assert_eq!(h.cseq(), Err(HeaderError::Missing("CSeq")));
        assert_eq!(h.vias(), Err(HeaderError::Missing("Via")));
        assert!(h.from().is_err());
        h.push("Content-Length", "-1");
        h.push("Max-Forwards", "99999999999");
        h.push("Contact", "*");
        assert!(h.content_length().is_err());
        assert!(h.max_forwards().is_err());
        assert!(h.contact().is_err());
    }
}
