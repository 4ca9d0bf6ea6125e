//! Cutting a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3) and spotting RFC 5626
//! keep-alives.
//!
//! The driver pushes whatever the socket gave and pops until `Ok(None)`. A `Ping` (CRLFCRLF
//! between messages) must be answered with a single CRLF; a lone CRLF (a pong) is skipped
//! silently. Any error means the stream can no longer be framed: the driver closes the
//! connection (the framer keeps returning the same error).

use crate::headers::same_name;

/// One unit cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A complete message (headers and exactly Content-Length body bytes), ready for
    /// `Endpoint::handle_input`.
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive ping; answer with `b"\r\n"`.
    Ping,
    /// A lone CRLF between messages (a keep-alive pong, RFC 5626 §4.4.1); nothing to do.
    Pong,
}

/// Why the stream cannot be framed any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// Stream messages must carry Content-Length (RFC 3261 §18.3).
    #[error("message on a stream transport has no Content-Length")]
    MissingContentLength,
    /// Content-Length is not a number, or two disagree.
    #[error("bad Content-Length on a stream transport")]
    BadContentLength,
    /// Header section or whole message larger than the limit.
    #[error("message larger than {max} bytes on a stream transport")]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

/// Incremental framer for one connection.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_message: usize,
    scanned: usize,
    failed: Option<FramingError>,
}

const PING: &[u8] = b"\r\n\r\n";

impl Default for StreamFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamFramer {
    /// A framer with the default 64 KiB message limit.
    pub fn new() -> Self {
        Self::with_max_size(crate::message::ParseLimits::default().max_message_size)
    }

    /// A framer that rejects messages larger than `max_message_size` bytes.
    pub fn with_max_size(max_message_size: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_message: max_message_size,
            scanned: 0,
            failed: None,
        }
    }

    /// Appends bytes read from the connection (ignored once the framer has failed).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete unit, `Ok(None)` when more bytes are needed.
    pub fn pop(&mut self) -> Result<Option<Framed>, FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.pop_inner() {
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = Vec::new();
                Err(e)
            }
            ok => ok,
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.scanned = 0;
    }

    fn pop_inner(&mut self) -> Result<Option<Framed>, FramingError> {
        loop {
            if self.buf.starts_with(PING) {
                self.consume(PING.len());
                return Ok(Some(Framed::Ping));
            }
            if self.buf.is_empty() || PING.starts_with(&self.buf) {
                return Ok(None);
            }
            if self.buf.starts_with(b"\r\n") {
                self.consume(2);
                return Ok(Some(Framed::Pong));
            } else if self.buf.starts_with(b"\n") || self.buf.starts_with(b"\r") {
                self.consume(1);
            } else {
                break;
            }
        }
        let Some((head_len, body_start)) = self.find_head_end() else {
            if self.buf.len() > self.max_message {
                return Err(FramingError::TooLarge {
                    max: self.max_message,
                });
            }
            return Ok(None);
        };
        let head = self.buf.get(..head_len).unwrap_or_default();
        let length = content_length(head)?;
        let total = body_start
            .checked_add(length)
            .ok_or(FramingError::BadContentLength)?;
        if total > self.max_message {
            return Err(FramingError::TooLarge {
                max: self.max_message,
            });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let message: Vec<u8> = self.buf.drain(..total).collect();
        self.scanned = 0;
        Ok(Some(Framed::Message(message)))
    }

    /// (end of the header lines, start of the body) once a blank line has arrived.
    fn find_head_end(&mut self) -> Option<(usize, usize)> {
        let from = self.scanned.saturating_sub(3);
        let hay = self.buf.get(from..)?;
        for (i, w) in hay.windows(2).enumerate() {
            let at = from + i;
            if w == b"\n\n" {
                return Some((at + 1, at + 2));
            }
            if w == b"\n\r" && self.buf.get(at + 2) == Some(&b'\n') {
                return Some((at + 1, at + 3));
            }
        }
        self.scanned = self.buf.len();
        None
    }
}

fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !same_name(name.trim(), "Content-Length") {
            continue;
        }
        let v = value.trim();
        if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FramingError::BadContentLength);
        }
        let n: usize = v.parse().map_err(|_| FramingError::BadContentLength)?;
        if found.is_some_and(|f| f != n) {
            return Err(FramingError::BadContentLength);
        }
        found = Some(n);
    }
    found.ok_or(FramingError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> Vec<u8> {
        format!(
            "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn drain(f: &mut StreamFramer) -> Vec<Framed> {
        let mut out = Vec::new();
        while let Some(x) = f.pop().unwrap() {
            out.push(x);
        }
        out
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend(msg("hello"));
        stream.extend(b"\r\n");
        stream.extend(msg(""));
        stream.extend(msg("x\r\n\r\ny"));
        let expected = vec![
            Framed::Ping,
            Framed::Message(msg("hello")),
            Framed::Pong,
            Framed::Message(msg("")),
            Framed::Message(msg("x\r\n\r\ny")),
        ];
        for cut in 0..stream.len() {
            for cut2 in [cut, (cut + 7).min(stream.len())] {
                let mut f = StreamFramer::new();
                let mut got = Vec::new();
                let (a, rest) = stream.split_at(cut);
                let (b, c) = rest.split_at(cut2 - cut);
                for part in [a, b, c] {
                    f.push(part);
                    got.extend(drain(&mut f));
                }
                assert_eq!(got, expected, "cut at {cut}/{cut2}");
                assert_eq!(f.buffered(), 0);
            }
        }
    }

    #[test]
    fn byte_by_byte_and_pipelined() {
        let mut stream = Vec::new();
        for i in 0..5 {
            stream.extend(msg(&"b".repeat(i)));
        }
        let mut f = StreamFramer::new();
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            got.extend(drain(&mut f));
        }
        assert_eq!(got.len(), 5);
        let mut f = StreamFramer::new();
        f.push(&stream);
        assert_eq!(drain(&mut f).len(), 5);
    }

    #[test]
    fn errors_are_sticky() {
        let mut f = StreamFramer::new();
        f.push(b"BYE sip:x SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.pop(), Err(FramingError::MissingContentLength));
        f.push(&msg("a"));
        assert_eq!(f.pop(), Err(FramingError::MissingContentLength));

        let mut f = StreamFramer::new();
        f.push(b"BYE sip:x SIP/2.0\r\nContent-Length: abc\r\n\r\n");
        assert_eq!(f.pop(), Err(FramingError::BadContentLength));

        let mut f = StreamFramer::with_max_size(100);
        f.push(b"BYE sip:x SIP/2.0\r\nContent-Length: 500\r\n\r\n");
        assert_eq!(f.pop(), Err(FramingError::TooLarge { max: 100 }));

        let mut f = StreamFramer::with_max_size(100);
        f.push(&[b'A'; 101]);
        assert_eq!(f.pop(), Err(FramingError::TooLarge { max: 100 }));
        let mut f = StreamFramer::with_max_size(100);
        f.push(&[b'A'; 99]);
        assert_eq!(f.pop(), Ok(None));
    }
}
