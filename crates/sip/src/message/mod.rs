//! SIP requests and responses behind crate-owned types: parse, inspect, build, serialise.

mod error;
mod parse;

pub use error::{ParseError, ParseErrorKind, ResponseContext};
pub use parse::ParseLimits;

use crate::headers::{same_name, CSeq, HeaderError, Headers, NameAddr, Via};
use crate::method::Method;
use crate::uri::Uri;

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// Headers in order.
    pub headers: Headers,
    /// Body bytes (exactly Content-Length of them when parsed).
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order.
    pub headers: Headers,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// Either kind of message, as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// The usual reason phrase for a status code (RFC 3261 §21 and friends).
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => match status / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Writes the headers, the blank line and the body. The first Content-Length header keeps
/// its name and position but always carries the real body length; further ones are dropped;
/// one is appended when there was none.
fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    let mut wrote_length = false;
    for h in headers {
        let value = if same_name(&h.name, "Content-Length") {
            if wrote_length {
                continue;
            }
            wrote_length = true;
            std::borrow::Cow::Owned(body.len().to_string())
        } else {
            std::borrow::Cow::Borrowed(h.value.as_str())
        };
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Typed header accessors shared by requests and responses (they delegate to [`Headers`]).
macro_rules! header_accessors {
    ($ty:ty) => {
        impl $ty {
            /// The Call-ID.
            pub fn call_id(&self) -> Option<&str> {
                self.headers.call_id()
            }
            /// The CSeq header.
            pub fn cseq(&self) -> Result<CSeq, HeaderError> {
                self.headers.cseq()
            }
            /// The From header.
            pub fn from(&self) -> Result<NameAddr, HeaderError> {
                self.headers.from()
            }
            /// The To header.
            pub fn to(&self) -> Result<NameAddr, HeaderError> {
                self.headers.to()
            }
            /// All Via elements, top first.
            pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
                self.headers.vias()
            }
            /// The top Via element.
            pub fn top_via(&self) -> Result<Via, HeaderError> {
                self.headers.top_via()
            }
            /// The first Contact.
            pub fn contact(&self) -> Result<Option<NameAddr>, HeaderError> {
                self.headers.contact()
            }
            /// The Content-Type value.
            pub fn content_type(&self) -> Option<&str> {
                self.headers.content_type()
            }
            /// The Content-Length header (serialisation always writes the body length).
            pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
                self.headers.content_length()
            }
            /// Max-Forwards, `None` when absent.
            pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
                self.headers.max_forwards()
            }
            /// Record-Route entries in order.
            pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
                self.headers.record_routes()
            }
            /// Route entries in order.
            pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
                self.headers.routes()
            }
            /// Expires in seconds.
            pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
                self.headers.expires()
            }
            /// Replaces the body and its Content-Type.
            pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
                self.headers.set("Content-Type", content_type);
                self.body = body;
            }
        }
    };
}

header_accessors!(Request);
header_accessors!(Response);

impl Request {
    /// An empty request; add headers with `headers.push`.
    pub fn new(method: Method, uri: Uri) -> Self {
        Self {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Serialises with a Content-Length equal to the body length (any Content-Length
    /// header present is replaced).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    /// A response to this request: copies every Via, From, To, Call-ID and CSeq (RFC 3261
    /// §8.2.6.2), and Record-Route for 101–299 answers to dialog-creating requests
    /// (§12.1.1). A 100 also copies Timestamp (§8.2.6.1).
    pub fn make_response(&self, status: u16, reason: &str) -> Response {
        let mut headers = Headers::new();
        for h in &self.headers {
            let copy = ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|n| same_name(&h.name, n))
                || (status == 100 && same_name(&h.name, "Timestamp"))
                || ((101..300).contains(&status)
                    && matches!(
                        self.method,
                        Method::Invite | Method::Subscribe | Method::Refer
                    )
                    && same_name(&h.name, "Record-Route"));
            if copy {
                headers.push(h.name.clone(), h.value.clone());
            }
        }
        Response {
            status,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

impl Response {
    /// A response with no headers (normally use [`Request::make_response`]).
    pub fn new(status: u16, reason: &str) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Adds `;tag=` to To unless it already has a tag (UAS dialog identification).
    pub fn with_to_tag(mut self, tag: &str) -> Self {
        self.set_to_tag(tag);
        self
    }

    /// In-place form of [`Response::with_to_tag`]; returns true when a tag was added.
    pub fn set_to_tag(&mut self, tag: &str) -> bool {
        let has_tag = self.headers.to().map(|t| t.tag().is_some()).unwrap_or(true);
        if has_tag {
            return false;
        }
        match self.headers.get_mut("To") {
            Some(v) => {
                v.push_str(";tag=");
                v.push_str(tag);
                true
            }
            None => false,
        }
    }

    /// 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Serialises with a Content-Length equal to the body length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

impl Message {
    /// Parses one datagram or framed stream message with the default limits.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        parse::parse(bytes, &ParseLimits::default())
    }

    /// Parses with explicit size limits.
    pub fn parse_with_limits(bytes: &[u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        parse::parse(bytes, limits)
    }

    /// Serialises the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Request(r) => r.to_bytes(),
            Self::Response(r) => r.to_bytes(),
        }
    }

    /// The headers of either kind.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }

    /// Mutable headers of either kind.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Self::Request(r) => &mut r.headers,
            Self::Response(r) => &mut r.headers,
        }
    }

    /// The body of either kind.
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Request(r) => &r.body,
            Self::Response(r) => &r.body,
        }
    }
}

#[cfg(test)]
mod tests;
