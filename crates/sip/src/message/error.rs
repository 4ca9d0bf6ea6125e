//! Parse errors that carry enough of a broken request to answer it (RFC 3261 §8.2 / §21.4.1).

use crate::headers::HeaderError;
use crate::lex;
use crate::uri::UriError;

/// What exactly is wrong with a message. The text is what goes into
/// `Warning: 399 callmux "<reason>"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Zero bytes, or only CR/LF.
    #[error("empty message")]
    Empty,
    /// Larger than the configured maximum message size.
    #[error("message of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size received.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// No blank line ends the header section.
    #[error("no empty line after the headers (truncated message)")]
    Truncated,
    /// Header section is not UTF-8.
    #[error("headers are not valid UTF-8")]
    NonUtf8,
    /// NUL or another control character in the header section.
    #[error("control character in the headers")]
    ControlCharacter,
    /// One header line is longer than allowed.
    #[error("header line of {len} bytes exceeds the {max}-byte limit")]
    HeaderLineTooLong {
        /// Length of the line.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// Request or status line malformed.
    #[error("bad start line: {0}")]
    BadStartLine(&'static str),
    /// A SIP version other than 2.0 (answered with 505).
    #[error("unsupported SIP version {0}")]
    VersionNotSupported(String),
    /// Request-URI does not parse.
    #[error("bad Request-URI: {0}")]
    BadUri(UriError),
    /// A header line without a colon, a bad name, or a stray continuation.
    #[error("bad header line: {0}")]
    BadHeaderLine(&'static str),
    /// A mandatory header is missing or malformed.
    #[error(transparent)]
    Header(HeaderError),
    /// A single-valued header appears more than once.
    #[error("more than one {0} header")]
    DuplicateHeader(&'static str),
    /// CSeq method differs from the request method.
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch {
        /// Method on the request line.
        method: String,
        /// Method in CSeq.
        cseq: String,
    },
    /// Content-Length promises more bytes than arrived.
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    ContentLengthTooLarge {
        /// Declared length.
        declared: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// The parser itself failed unexpectedly (caught panic); always a bug.
    #[error("internal parser failure")]
    Internal,
}

/// The raw header values of a malformed request that a reply needs: every Via line, From,
/// To, Call-ID and CSeq, copied verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseContext {
    /// Via lines, top first.
    pub vias: Vec<String>,
    /// From value.
    pub from: String,
    /// To value.
    pub to: String,
    /// Call-ID value.
    pub call_id: String,
    /// CSeq value.
    pub cseq: String,
}

/// A message that could not be parsed, with what went wrong and, for requests whose raw
/// text still has the headers a reply needs, those headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    kind: ParseErrorKind,
    context: Option<Box<ResponseContext>>,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, raw: &[u8], max_line: usize) -> Self {
        Self {
            kind,
            context: extract_context(raw, max_line).map(Box::new),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Headers to build an error reply from; `None` for responses, ACKs and text too broken.
    pub fn response_context(&self) -> Option<&ResponseContext> {
        self.context.as_deref()
    }

    /// The reason as safe text for a Warning header (printable ASCII, no quotes, bounded).
    pub fn reason(&self) -> String {
        lex::sanitize_warning(&self.kind.to_string(), 200)
    }

    /// Status code for the reply: 505 for a wrong version, 513 for an oversized message,
    /// 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self.kind {
            ParseErrorKind::VersionNotSupported(_) => 505,
            ParseErrorKind::TooLarge { .. } => 513,
            _ => 400,
        }
    }
}

/// Scans raw bytes leniently for the headers a reply needs. Only clean lines (UTF-8, no
/// control characters, within the line limit) are used.
fn extract_context(raw: &[u8], max_line: usize) -> Option<ResponseContext> {
    let start = raw.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let data = raw.get(start..)?;
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    if first.len() >= 4 && first.get(..4)?.eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    if first.starts_with(b"ACK ") {
        return None;
    }
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.len() > max_line
            || line.starts_with(b" ")
            || line.starts_with(b"\t")
            || line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if value.is_empty() {
            continue;
        }
        let slot = if crate::headers::same_name(name, "Via") {
            vias.push(value.to_owned());
            continue;
        } else if crate::headers::same_name(name, "From") {
            &mut from
        } else if crate::headers::same_name(name, "To") {
            &mut to
        } else if crate::headers::same_name(name, "Call-ID") {
            &mut call_id
        } else if crate::headers::same_name(name, "CSeq") {
            &mut cseq
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(value.to_owned());
        }
    }
    let cseq: String = cseq?;
    if cseq
        .split_ascii_whitespace()
        .nth(1)
        .is_some_and(|m| m == "ACK")
    {
        return None;
    }
    if vias.is_empty() {
        return None;
    }
    Some(ResponseContext {
        vias,
        from: from?,
        to: to?,
        call_id: call_id?,
        cseq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_from_broken_request() {
        let raw = b"\r\nINVITE sip:x SIP/2.0 junk\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP p\r\nf: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\ni: cid\r\nCSeq: 1 INVITE\r\nX: \x00\r\n\r\n";
        let e = ParseError::new(ParseErrorKind::BadStartLine("x"), raw, 8192);
        let c = e.response_context().unwrap();
        assert_eq!(c.vias.len(), 2);
        assert_eq!(c.call_id, "cid");
        assert_eq!(c.to, "<sip:c@d>");
        assert_eq!(e.status_code(), 400);
    }

    #[test]
    fn no_context_for_responses_acks_and_missing_headers() {
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
        assert!(ParseError::new(ParseErrorKind::Truncated, resp, 8192)
            .response_context()
            .is_none());
        let ack = b"ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
        assert!(ParseError::new(ParseErrorKind::Truncated, ack, 8192)
            .response_context()
            .is_none());
        let ack2 = b"XACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
        assert!(ParseError::new(ParseErrorKind::Truncated, ack2, 8192)
            .response_context()
            .is_none());
        let novia = b"BYE sip:x SIP/2.0\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n";
        assert!(ParseError::new(ParseErrorKind::Truncated, novia, 8192)
            .response_context()
            .is_none());
        assert!(ParseError::new(ParseErrorKind::Empty, b"", 8192)
            .response_context()
            .is_none());
    }

    #[test]
    fn reason_is_sanitized() {
        let e = ParseError::new(
            ParseErrorKind::VersionNotSupported("SIP/\"7\"".into()),
            b"",
            10,
        );
        assert_eq!(e.reason(), "unsupported SIP version SIP/?7?");
        assert_eq!(e.status_code(), 505);
    }
}
