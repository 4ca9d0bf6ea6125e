//! The wire parser: start line, header section (with folding and compact forms), body by
//! Content-Length (RFC 3261 §7, §18.3). Written by hand because rsip 0.4 rejects unknown
//! methods, folded headers and IPv6 URIs; nothing here indexes untrusted input unchecked.

use super::error::{ParseError, ParseErrorKind};
use super::{Message, Request, Response};
use crate::headers::{HeaderError, Headers};
use crate::lex;
use crate::method::Method;
use crate::uri::Uri;

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest whole message accepted (default 64 KiB).
    pub max_message_size: usize,
    /// Longest header line accepted, after unfolding (default 8 KiB).
    pub max_header_line: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            max_header_line: 8 * 1024,
        }
    }
}

/// Parses one complete message (a datagram, or one message cut out by the stream framer).
pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<Message, ParseError> {
    parse_inner(bytes, limits).map_err(|kind| ParseError::new(kind, bytes, limits.max_header_line))
}

/// Splits at the first empty line: (header section without the final line break, body).
fn split_head(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while let Some(off) = data.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let after = data.get(nl + 1..)?;
        if after.starts_with(b"\r\n") {
            return Some((data.get(..nl)?, after.get(2..)?));
        }
        if after.starts_with(b"\n") {
            return Some((data.get(..nl)?, after.get(1..)?));
        }
        i = nl + 1;
    }
    None
}

/// True when the header section holds a control character (other than HTAB, or CR/LF as
/// line ends) anywhere but as the escaped character of a quoted-pair inside a quoted string:
/// RFC 3261 §25.1 allows `quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)`, and RFC 4475
/// §3.1.1.2 (intmeth) sends NUL, BEL and DEL that way in a valid request. The quote state
/// starts afresh on every header line that is not a continuation.
fn has_bare_control(head: &str) -> bool {
    let mut in_quote = false;
    for line in head.split('\n') {
        if !line.starts_with([' ', '\t']) {
            in_quote = false;
        }
        let mut escaped = false;
        for b in line.bytes() {
            if escaped {
                escaped = false;
                continue;
            }
            if (b < 0x20 && b != b'\t' && b != b'\r') || b == 0x7f {
                return true;
            }
            if in_quote && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = !in_quote;
            }
        }
    }
    false
}

fn parse_inner(bytes: &[u8], limits: &ParseLimits) -> Result<Message, ParseErrorKind> {
    if bytes.len() > limits.max_message_size {
        return Err(ParseErrorKind::TooLarge {
            size: bytes.len(),
            max: limits.max_message_size,
        });
    }
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseErrorKind::Empty)?;
    let data = bytes.get(start..).ok_or(ParseErrorKind::Empty)?;
    let (head, body) = split_head(data).ok_or(ParseErrorKind::Truncated)?;
    let head = std::str::from_utf8(head).map_err(|_| ParseErrorKind::NonUtf8)?;
    if has_bare_control(head) {
        return Err(ParseErrorKind::ControlCharacter);
    }
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().ok_or(ParseErrorKind::Empty)?;
    let mut headers = Headers::new();
    for line in std::iter::once(start_line).chain(lines.clone()) {
        if line.contains('\r') {
            return Err(ParseErrorKind::ControlCharacter);
        }
        if line.len() > limits.max_header_line {
            return Err(ParseErrorKind::HeaderLineTooLong {
                len: line.len(),
                max: limits.max_header_line,
            });
        }
    }
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let len = headers
                .append_to_last(line.trim())
                .ok_or(ParseErrorKind::BadHeaderLine(
                    "continuation line before the first header",
                ))?;
            if len > limits.max_header_line {
                return Err(ParseErrorKind::HeaderLineTooLong {
                    len,
                    max: limits.max_header_line,
                });
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ParseErrorKind::BadHeaderLine("missing colon"))?;
        let name = name.trim_end();
        if !lex::is_token(name) {
            return Err(ParseErrorKind::BadHeaderLine("bad header name"));
        }
        headers.push(name, value.trim());
    }
    let mut message = parse_start_line(start_line, headers)?;
    validate(&message)?;
    let cl = match &message {
        Message::Request(r) => r.headers.content_length(),
        Message::Response(r) => r.headers.content_length(),
    }
    .map_err(ParseErrorKind::Header)?;
    let body = match cl {
        Some(n) if n > body.len() => {
            return Err(ParseErrorKind::ContentLengthTooLarge {
                declared: n,
                available: body.len(),
            })
        }
        Some(n) => body.get(..n).unwrap_or(body),
        None => body,
    };
    match &mut message {
        Message::Request(r) => r.body = body.to_vec(),
        Message::Response(r) => r.body = body.to_vec(),
    }
    Ok(message)
}

fn is_sip_version(s: &str) -> bool {
    s.eq_ignore_ascii_case("SIP/2.0")
}

fn looks_like_version(s: &str) -> bool {
    s.len() > 4 && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
}

fn parse_start_line(line: &str, headers: Headers) -> Result<Message, ParseErrorKind> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts
            .next()
            .ok_or(ParseErrorKind::BadStartLine("missing status code"))?;
        let reason = parts.next().unwrap_or("");
        if !is_sip_version(version) {
            return Err(ParseErrorKind::VersionNotSupported(version.to_owned()));
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::BadStartLine("bad status code"));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| ParseErrorKind::BadStartLine("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(ParseErrorKind::BadStartLine("status code out of range"));
        }
        return Ok(Message::Response(Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }));
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(ParseErrorKind::BadStartLine(
            "request line must be METHOD SP Request-URI SP SIP/2.0",
        ));
    };
    let method = Method::parse(method).ok_or(ParseErrorKind::BadStartLine("bad method"))?;
    if !is_sip_version(version) {
        if looks_like_version(version) {
            return Err(ParseErrorKind::VersionNotSupported((*version).to_owned()));
        }
        return Err(ParseErrorKind::BadStartLine("bad SIP version"));
    }
    let uri = Uri::parse(uri).map_err(ParseErrorKind::BadUri)?;
    Ok(Message::Request(Request {
        method,
        uri,
        headers,
        body: Vec::new(),
    }))
}

/// Checks the headers every message must carry (RFC 3261 §8.1.1) and their consistency.
fn validate(message: &Message) -> Result<(), ParseErrorKind> {
    let h = message.headers();
    for name in ["From", "To", "Call-ID", "CSeq", "Max-Forwards"] {
        if h.get_all(name).nth(1).is_some() {
            return Err(ParseErrorKind::DuplicateHeader(name));
        }
    }
    let mut lengths = h.get_all("Content-Length").map(str::trim);
    if let Some(first) = lengths.next() {
        if lengths.any(|l| l != first) {
            return Err(ParseErrorKind::DuplicateHeader("Content-Length"));
        }
    }
    h.vias().map_err(ParseErrorKind::Header)?;
    h.from().map_err(ParseErrorKind::Header)?;
    h.to().map_err(ParseErrorKind::Header)?;
    h.call_id()
        .ok_or(ParseErrorKind::Header(HeaderError::Missing("Call-ID")))?;
    let cseq = h.cseq().map_err(ParseErrorKind::Header)?;
    h.max_forwards().map_err(ParseErrorKind::Header)?;
    if let Message::Request(r) = message {
        if cseq.method != r.method {
            return Err(ParseErrorKind::CSeqMethodMismatch {
                method: r.method.to_string(),
                cseq: cseq.method.to_string(),
            });
        }
    }
    Ok(())
}
