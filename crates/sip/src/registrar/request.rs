//! What a REGISTER asks for (RFC 3261 §10.2): its Call-ID and CSeq (for ordering), the
//! Expires header, and its Contacts — a list, the `*` wildcard, or none (a query).

use crate::uri::Uri;
use crate::{Method, Request};

use super::RegisterError;

/// Contacts are refused beyond this many in one REGISTER (and per AOR).
pub const MAX_CONTACTS: usize = 10;

/// One Contact of a REGISTER with its own parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEntry {
    /// The contact address.
    pub uri: Uri,
    /// Its `expires` parameter, seconds.
    pub expires: Option<u32>,
    /// Its `q` parameter in thousandths (`q=0.5` → 500).
    pub q: Option<u16>,
}

/// The Contact part of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact: the client asks which bindings exist (RFC 3261 §10.2.3).
    Query,
    /// `Contact: *` with `Expires: 0`: remove every binding of the AOR.
    Wildcard,
    /// Bindings to add, refresh or remove (`expires=0`).
    List(Vec<ContactEntry>),
}

/// A parsed REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// The user part of the To URI (the address-of-record's user).
    pub aor_user: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// The Expires header, seconds.
    pub expires: Option<u32>,
    /// What the Contacts ask.
    pub contacts: Contacts,
}

impl RegisterRequest {
    /// Reads a REGISTER. Malformed Contact, Expires or CSeq, a wildcard with other
    /// contacts or without `Expires: 0`, or a To without a user are refused (400).
    pub fn parse(request: &Request) -> Result<Self, RegisterError> {
        if request.method != Method::Register {
            return Err(RegisterError::Malformed("not a REGISTER".into()));
        }
        let to = request
            .to()
            .map_err(|e| RegisterError::Malformed(format!("To: {e}")))?;
        let aor_user = to
            .uri
            .user
            .filter(|u| !u.is_empty())
            .ok_or_else(|| RegisterError::Malformed("To has no user part".into()))?;
        let call_id = request
            .call_id()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| RegisterError::Malformed("no Call-ID".into()))?
            .to_owned();
        let cseq = request
            .cseq()
            .map_err(|e| RegisterError::Malformed(format!("CSeq: {e}")))?;
        let expires = request
            .expires()
            .map_err(|e| RegisterError::Malformed(format!("Expires: {e}")))?;
        let raw: Vec<&str> = request.headers.get_all("Contact").collect();
        let wildcard = raw.iter().any(|v| v.trim() == "*");
        let contacts = if raw.is_empty() {
            Contacts::Query
        } else if wildcard {
            // RFC 3261 §10.3 step 6: `*` alone, and only with Expires: 0.
            if raw.len() != 1 {
                return Err(RegisterError::Malformed(
                    "Contact: * must be the only contact".into(),
                ));
            }
            if expires != Some(0) {
                return Err(RegisterError::Malformed(
                    "Contact: * needs Expires: 0".into(),
                ));
            }
            Contacts::Wildcard
        } else {
            let list = request
                .headers
                .contacts()
                .map_err(|e| RegisterError::Malformed(format!("Contact: {e}")))?;
            if list.len() > MAX_CONTACTS {
                return Err(RegisterError::TooManyContacts { max: MAX_CONTACTS });
            }
            let mut entries = Vec::with_capacity(list.len());
            for c in list {
                let expires = match c.params.value("expires") {
                    None => None,
                    Some(v) => Some(v.trim().parse::<u32>().map_err(|_| {
                        RegisterError::Malformed("Contact expires is not a number".into())
                    })?),
                };
                let q = match c.params.value("q") {
                    None => None,
                    Some(v) => Some(parse_q(&v).ok_or_else(|| {
                        RegisterError::Malformed("Contact q must be 0 to 1".into())
                    })?),
                };
                entries.push(ContactEntry {
                    uri: c.uri,
                    expires,
                    q,
                });
            }
            Contacts::List(entries)
        };
        Ok(Self {
            aor_user,
            call_id,
            cseq: cseq.seq,
            expires,
            contacts,
        })
    }
}

/// `q` (RFC 3261 §20.10: `0` to `1` with up to three decimals) in thousandths.
fn parse_q(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        let digit = u16::from(b - b'0');
        thousandths += digit * [100, 10, 1].get(i).copied().unwrap_or(0);
    }
    let q = whole * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

/// A key under which two contact URIs are the same binding: scheme, user, host
/// (case-insensitive), port and transport. A simplification of RFC 3261 §19.1.4 that
/// ignores other URI parameters, which phones do not vary between refreshes.
pub fn contact_key(uri: &Uri) -> String {
    let transport = uri
        .params
        .value("transport")
        .map(|t| t.to_ascii_lowercase())
        .unwrap_or_default();
    format!(
        "{}:{}@{}:{};{transport}",
        uri.scheme.as_str(),
        uri.user.as_deref().unwrap_or_default(),
        uri.host.to_ascii_lowercase(),
        uri.port.map_or_else(String::new, |p| p.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(contacts: &[&str], expires: Option<&str>) -> Request {
        let mut r = Request::new(Method::Register, "sip:callmux".parse().unwrap());
        r.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK1;rport");
        r.headers.push("From", "<sip:alice@callmux>;tag=1");
        r.headers.push("To", "<sip:alice@callmux>");
        r.headers.push("Call-ID", "reg-1");
        r.headers.push("CSeq", "7 REGISTER");
        for c in contacts {
            r.headers.push("Contact", *c);
        }
        if let Some(e) = expires {
            r.headers.push("Expires", e);
        }
        r
    }

    #[test]
    fn contacts_query_wildcard_and_params() {
        let r = RegisterRequest::parse(&register(
            &["<sip:alice@10.0.0.2:5062>;expires=60;q=0.7, <sip:alice@10.0.0.3>"],
            Some("120"),
        ))
        .unwrap();
        assert_eq!(r.aor_user, "alice");
        assert_eq!(
            (r.call_id.as_str(), r.cseq, r.expires),
            ("reg-1", 7, Some(120))
        );
        let Contacts::List(list) = r.contacts else {
            panic!("{:?}", r.contacts)
        };
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].expires, list[0].q), (Some(60), Some(700)));
        assert_eq!((list[1].expires, list[1].q), (None, None));
        let q = RegisterRequest::parse(&register(&[], None)).unwrap();
        assert_eq!(q.contacts, Contacts::Query);
        let w = RegisterRequest::parse(&register(&["*"], Some("0"))).unwrap();
        assert_eq!(w.contacts, Contacts::Wildcard);
    }

    #[test]
    fn malformed_registers_are_refused() {
        let bad = [
            register(&["*"], None),
            register(&["*"], Some("60")),
            register(&["*", "<sip:a@b>"], Some("0")),
            register(&["<sip:a@b>;expires=soon"], None),
            register(&["<sip:a@b>;q=1.5"], None),
            register(&["<sip:a@b>;q=0.1234"], None),
            register(&["<nonsense"], None),
            register(&["<sip:a@b>"], Some("-1")),
        ];
        for r in &bad {
            assert!(
                matches!(RegisterRequest::parse(r), Err(RegisterError::Malformed(_))),
                "{r:?}"
            );
        }
        let mut no_user = register(&[], None);
        no_user.headers.set("To", "<sip:callmux>");
        assert!(RegisterRequest::parse(&no_user).is_err());
        let many: Vec<String> = (0..=MAX_CONTACTS)
            .map(|i| format!("<sip:a@10.0.0.{i}>"))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            RegisterRequest::parse(&register(&refs, None)),
            Err(RegisterError::TooManyContacts { max: MAX_CONTACTS })
        );
    }

    #[test]
    fn q_values_and_contact_keys() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
        assert_eq!(parse_q("0.05"), Some(50));
        assert_eq!(parse_q("0."), Some(0));
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q(".5"), None);
        let a: Uri = "sip:alice@EXAMPLE.com:5062;transport=UDP".parse().unwrap();
        let b: Uri = "sip:alice@example.com:5062;transport=udp;ob"
            .parse()
            .unwrap();
        let c: Uri = "sip:alice@example.com:5063;transport=udp".parse().unwrap();
        assert_eq!(contact_key(&a), contact_key(&b));
        assert_ne!(contact_key(&a), contact_key(&c));
    }
}
