//! The CSeq header (RFC 3261 §20.16).

use std::fmt;

use crate::method::Method;

/// Sequence number and method of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// Sequence number (RFC 3261: below 2^31 when we pick it; any u32 is accepted).
    pub seq: u32,
    /// The request method this CSeq belongs to.
    pub method: Method,
}

/// Why a CSeq value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad CSeq: {0}")]
pub struct CSeqError(pub &'static str);

impl CSeq {
    /// Parses `314159 INVITE`.
    pub fn parse(s: &str) -> Result<Self, CSeqError> {
        let mut parts = s.split_ascii_whitespace();
        let seq = parts.next().ok_or(CSeqError("empty"))?;
        let method = parts.next().ok_or(CSeqError("missing method"))?;
        if parts.next().is_some() {
            return Err(CSeqError("trailing text"));
        }
        if seq.len() > 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CSeqError("sequence number is not a 32-bit number"));
        }
        let seq = seq
            .parse::<u32>()
            .map_err(|_| CSeqError("sequence number is not a 32-bit number"))?;
        let method = Method::parse(method).ok_or(CSeqError("bad method"))?;
        Ok(Self { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_reject() {
        assert_eq!(
            CSeq::parse(" 314159   INVITE ").unwrap(),
            CSeq {
                seq: 314159,
                method: Method::Invite
            }
        );
        assert_eq!(
            CSeq::parse("1 FOO").unwrap().method,
            Method::Other("FOO".into())
        );
        for s in [
            "",
            "1",
            "x INVITE",
            "-1 INVITE",
            "4294967296 INVITE",
            "1 INVITE x",
            "1 IN@V",
        ] {
            assert!(CSeq::parse(s).is_err(), "{s:?}");
        }
    }
}
