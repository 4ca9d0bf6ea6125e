//! Strict, bounded RFC 4566 parser. Errors name the 1-based line and the rule broken.

use std::net::IpAddr;

use super::Direction;

/// Largest SDP body accepted, in bytes (a rich audio offer is well under 4 KiB).
pub const MAX_SDP_LEN: usize = 32 * 1024;
/// Most m= sections accepted in one description.
pub const MAX_MEDIA: usize = 16;
/// Most formats accepted on one m= line (there are only 128 RTP payload types).
pub const MAX_FORMATS: usize = 128;
/// Most attributes kept per section; more is treated as hostile.
const MAX_ATTRIBUTES: usize = 256;

/// Why an SDP body was rejected. Every variant is the peer's fault (malformed input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body had no lines at all.
    #[error("SDP body is empty")]
    Empty,
    /// The body is larger than [`MAX_SDP_LEN`].
    #[error("SDP body is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Size of the body.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not UTF-8.
    #[error("SDP body is not valid UTF-8 (at byte {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The first line is not `v=0`.
    #[error("line {line}: SDP must start with v=0")]
    MissingVersion {
        /// The offending line.
        line: usize,
    },
    /// A line is not of the form `<letter>=<value>`.
    #[error("line {line}: not a <type>=<value> line")]
    Syntax {
        /// The offending line.
        line: usize,
    },
    /// A type letter RFC 4566 does not define (RFC 4566 §5 says to reject the description).
    #[error("line {line}: unknown line type '{letter}'")]
    UnknownType {
        /// The offending line.
        line: usize,
        /// The letter.
        letter: char,
    },
    /// A line that is valid SDP but not allowed where it is, or repeated.
    #[error("line {line}: '{letter}=' is not allowed here ({reason})")]
    Misplaced {
        /// The offending line.
        line: usize,
        /// The letter.
        letter: char,
        /// What is wrong.
        reason: &'static str,
    },
    /// A required session-level line is missing.
    #[error("required '{letter}=' line is missing")]
    Missing {
        /// The missing line's letter.
        letter: char,
    },
    /// The o= line is malformed.
    #[error("line {line}: bad o= line: {reason}")]
    BadOrigin {
        /// The offending line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The c= line is malformed or names something we cannot send to.
    #[error("line {line}: bad c= line: {reason}")]
    BadConnection {
        /// The offending line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The t= line is malformed.
    #[error("line {line}: bad t= line")]
    BadTiming {
        /// The offending line.
        line: usize,
    },
    /// The m= line is malformed.
    #[error("line {line}: bad m= line: {reason}")]
    BadMedia {
        /// The offending line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The m= port is not a number in 0..=65535.
    #[error("line {line}: m= port '{value}' is out of range 0..=65535")]
    PortOutOfRange {
        /// The offending line.
        line: usize,
        /// The port text as received.
        value: String,
    },
    /// A payload type is not a number in 0..=127 or is listed twice.
    #[error("line {line}: bad payload type '{value}'")]
    BadPayloadType {
        /// The offending line.
        line: usize,
        /// The value as received.
        value: String,
    },
    /// An m= line lists more than [`MAX_FORMATS`] formats.
    #[error("line {line}: m= line lists more than {max} formats")]
    TooManyFormats {
        /// The offending line.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_MEDIA`] m= sections, or too many attributes in one section.
    #[error("line {line}: too many {what}")]
    TooMany {
        /// The offending line.
        line: usize,
        /// What there are too many of.
        what: &'static str,
    },
    /// An attribute we interpret (rtpmap, fmtp, ptime, direction, ...) is malformed.
    #[error("line {line}: bad a={name}: {reason}")]
    BadAttribute {
        /// The offending line.
        line: usize,
        /// The attribute name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The chosen audio stream has no c= line at media or session level.
    #[error("m= section {media_index} has no c= line and there is no session-level c=")]
    MissingConnection {
        /// Index of the m= section (0-based).
        media_index: usize,
    },
}

/// The o= line: who made the description and its version (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id (decimal digits, kept as text: peers use more than 64 bits).
    pub session_id: String,
    /// Session version (decimal digits, kept as text).
    pub session_version: String,
    /// Address of the originator, as text (it may be a host name).
    pub address: String,
}

/// A c= line: the address media goes to. Host names are rejected (we do not resolve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The address; unspecified (`0.0.0.0`) means RFC 2543 hold.
    pub address: IpAddr,
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channel count, when given.
    pub channels: Option<u16>,
}

/// `a=fmtp:<pt> <parameters>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Payload type.
    pub pt: u8,
    /// Parameters as written.
    pub params: String,
}

/// Any other attribute, kept for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Value after the colon, if any.
    pub value: Option<String>,
}

/// One m= section with the attributes we interpret pulled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, `application`, ...).
    pub media: String,
    /// Transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// Port count after a slash, if given.
    pub port_count: Option<u16>,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...).
    pub proto: String,
    /// Formats as written (payload type numbers for RTP protocols).
    pub formats: Vec<String>,
    /// Payload types in offer order, for RTP protocols (empty for others).
    pub payload_types: Vec<u8>,
    /// Media-level c=, overriding the session one.
    pub connection: Option<Connection>,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` lines.
    pub fmtps: Vec<Fmtp>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// `a=maxptime` in milliseconds.
    pub maxptime: Option<u32>,
    /// Direction attribute of this section.
    pub direction: Option<Direction>,
    /// Other attributes.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// The rtpmap for a payload type, if the section has one.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.pt == pt)
    }

    /// Whether the transport is plain RTP we can carry (`RTP/AVP` or `RTP/AVPF`, no SRTP).
    pub fn is_plain_rtp(&self) -> bool {
        self.proto == "RTP/AVP" || self.proto == "RTP/AVPF"
    }
}

/// A parsed SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The o= line.
    pub origin: Origin,
    /// The s= line.
    pub session_name: String,
    /// Session-level c=.
    pub connection: Option<Connection>,
    /// Session-level direction attribute (applies to sections without their own).
    pub direction: Option<Direction>,
    /// Session-level `a=ptime` (non-standard placement, honoured when a section has none).
    pub ptime: Option<u32>,
    /// Other session-level attributes.
    pub attributes: Vec<Attribute>,
    /// m= sections in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body. Lines may end in CRLF or LF; blank lines are skipped.
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        if bytes.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge {
                len: bytes.len(),
                max: MAX_SDP_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| SdpError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Parser::default().run(text)
    }

    /// The effective c= address of m= section `index` (media level, else session level).
    pub fn connection_for(&self, index: usize) -> Option<Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection)
            .or(self.connection)
    }

    /// The effective direction of m= section `index` (media, session, then `sendrecv`).
    pub fn direction_for(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(|m| m.direction)
            .or(self.direction)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Parser {
    origin: Option<Origin>,
    session_name: Option<String>,
    connection: Option<Connection>,
    direction: Option<Direction>,
    ptime: Option<u32>,
    attributes: Vec<Attribute>,
    media: Vec<MediaDescription>,
}

impl Parser {
    fn run(mut self, text: &str) -> Result<SessionDescription, SdpError> {
        let mut seen_version = false;
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let (letter, value) = split_line(line).ok_or(SdpError::Syntax { line: line_no })?;
            if !seen_version {
                if letter != 'v' || value != "0" {
                    return Err(SdpError::MissingVersion { line: line_no });
                }
                seen_version = true;
                continue;
            }
            self.line(line_no, letter, value)?;
        }
        if !seen_version {
            return Err(SdpError::Empty);
        }
        let origin = self.origin.ok_or(SdpError::Missing { letter: 'o' })?;
        let session_name = self.session_name.ok_or(SdpError::Missing { letter: 's' })?;
        // t= is required by RFC 4566 but some phones omit it; its absence harms nothing here,
        // so only its syntax is checked when present.
        Ok(SessionDescription {
            origin,
            session_name,
            connection: self.connection,
            direction: self.direction,
            ptime: self.ptime,
            attributes: self.attributes,
            media: self.media,
        })
    }

    fn line(&mut self, line: usize, letter: char, value: &str) -> Result<(), SdpError> {
        let in_media = !self.media.is_empty();
        match letter {
            'v' => Err(misplaced(line, 'v', "repeated")),
            'o' if in_media => Err(misplaced(line, 'o', "inside a media section")),
            'o' if self.origin.is_some() => Err(misplaced(line, 'o', "repeated")),
            'o' => {
                self.origin = Some(parse_origin(line, value)?);
                Ok(())
            }
            's' if in_media => Err(misplaced(line, 's', "inside a media section")),
            's' if self.session_name.is_some() => Err(misplaced(line, 's', "repeated")),
            's' => {
                self.session_name = Some(value.to_owned());
                Ok(())
            }
            't' | 'r' | 'z' | 'u' | 'e' | 'p' if in_media => {
                Err(misplaced(line, letter, "inside a media section"))
            }
            't' => {
                let mut fields = value.split_ascii_whitespace();
                let ok = matches!(
                    (fields.next(), fields.next(), fields.next()),
                    (Some(a), Some(b), None) if is_digits(a) && is_digits(b)
                );
                if !ok {
                    return Err(SdpError::BadTiming { line });
                }
                Ok(())
            }
            'i' | 'u' | 'e' | 'p' | 'b' | 'k' | 'r' | 'z' => Ok(()),
            'c' => {
                let conn = parse_connection(line, value)?;
                let slot = match self.media.last_mut() {
                    Some(m) => &mut m.connection,
                    None => &mut self.connection,
                };
                if slot.is_some() {
                    return Err(misplaced(line, 'c', "repeated in one section"));
                }
                *slot = Some(conn);
                Ok(())
            }
            'm' => {
                if self.origin.is_none() {
                    return Err(SdpError::Missing { letter: 'o' });
                }
                if self.media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooMany {
                        line,
                        what: "m= sections",
                    });
                }
                let media = parse_media(line, value)?;
                self.media.push(media);
                Ok(())
            }
            'a' => self.attribute(line, value),
            other => Err(SdpError::UnknownType {
                line,
                letter: other,
            }),
        }
    }

    fn attribute(&mut self, line: usize, value: &str) -> Result<(), SdpError> {
        let (name, arg) = match value.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (value, None),
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(bad_attr(line, name, "attribute name is not a token"));
        }
        if let Some(direction) = Direction::from_attribute(name) {
            let slot = match self.media.last_mut() {
                Some(m) => &mut m.direction,
                None => &mut self.direction,
            };
            if arg.is_some() {
                return Err(bad_attr(line, name, "direction takes no value"));
            }
            if slot.is_some_and(|d| d != direction) {
                return Err(bad_attr(line, name, "conflicting direction attributes"));
            }
            *slot = Some(direction);
            return Ok(());
        }
        let Some(media) = self.media.last_mut() else {
            return match name {
                "ptime" => {
                    self.ptime = Some(parse_ptime(line, name, arg)?);
                    Ok(())
                }
                _ => push_attribute(&mut self.attributes, line, name, arg),
            };
        };
        match name {
            "rtpmap" => {
                let map = parse_rtpmap(line, arg)?;
                if media.rtpmaps.iter().any(|m| m.pt == map.pt) {
                    return Err(bad_attr(line, name, "payload type mapped twice"));
                }
                if media.rtpmaps.len() >= MAX_FORMATS {
                    return Err(SdpError::TooMany {
                        line,
                        what: "rtpmap attributes",
                    });
                }
                media.rtpmaps.push(map);
                Ok(())
            }
            "fmtp" => {
                let arg = arg.ok_or_else(|| bad_attr(line, name, "missing value"))?;
                let (pt, params) = arg.split_once(' ').unwrap_or((arg, ""));
                let pt = parse_pt(pt).ok_or_else(|| bad_attr(line, name, "bad payload type"))?;
                if media.fmtps.len() >= MAX_FORMATS {
                    return Err(SdpError::TooMany {
                        line,
                        what: "fmtp attributes",
                    });
                }
                media.fmtps.push(Fmtp {
                    pt,
                    params: params.trim().to_owned(),
                });
                Ok(())
            }
            "ptime" => {
                media.ptime = Some(parse_ptime(line, name, arg)?);
                Ok(())
            }
            "maxptime" => {
                media.maxptime = Some(parse_ptime(line, name, arg)?);
                Ok(())
            }
            _ => push_attribute(&mut media.attributes, line, name, arg),
        }
    }
}

fn push_attribute(
    list: &mut Vec<Attribute>,
    line: usize,
    name: &str,
    arg: Option<&str>,
) -> Result<(), SdpError> {
    if list.len() >= MAX_ATTRIBUTES {
        return Err(SdpError::TooMany {
            line,
            what: "attributes in one section",
        });
    }
    list.push(Attribute {
        name: name.to_owned(),
        value: arg.map(str::to_owned),
    });
    Ok(())
}

fn misplaced(line: usize, letter: char, reason: &'static str) -> SdpError {
    SdpError::Misplaced {
        line,
        letter,
        reason,
    }
}

fn bad_attr(line: usize, name: &str, reason: &'static str) -> SdpError {
    SdpError::BadAttribute {
        line,
        name: name.chars().take(64).collect(),
        reason,
    }
}

/// Splits `x=value`: one ASCII lowercase letter, `=`, then the value (RFC 4566 allows no
/// whitespace around `=`).
fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let letter = chars.next()?;
    if !letter.is_ascii_lowercase() || chars.next()? != '=' {
        return None;
    }
    line.get(2..).map(|v| (letter, v))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 4566 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}

fn parse_pt(s: &str) -> Option<u8> {
    if !is_digits(s) || s.len() > 3 {
        return None;
    }
    s.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

fn parse_origin(line: usize, value: &str) -> Result<Origin, SdpError> {
    let fields: Vec<&str> = value.split_ascii_whitespace().take(7).collect();
    let [username, id, version, net, addr_type, address] = fields[..] else {
        return Err(SdpError::BadOrigin {
            line,
            reason: "expected 6 fields",
        });
    };
    if !is_digits(id) || id.len() > 32 {
        return Err(SdpError::BadOrigin {
            line,
            reason: "session id is not a decimal number",
        });
    }
    if !is_digits(version) || version.len() > 32 {
        return Err(SdpError::BadOrigin {
            line,
            reason: "session version is not a decimal number",
        });
    }
    if net != "IN" {
        return Err(SdpError::BadOrigin {
            line,
            reason: "network type is not IN",
        });
    }
    if addr_type != "IP4" && addr_type != "IP6" {
        return Err(SdpError::BadOrigin {
            line,
            reason: "address type is not IP4 or IP6",
        });
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: id.to_owned(),
        session_version: version.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_connection(line: usize, value: &str) -> Result<Connection, SdpError> {
    let bad = |reason| SdpError::BadConnection { line, reason };
    let mut fields = value.split_ascii_whitespace();
    let (Some(net), Some(addr_type), Some(addr), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad("expected 'IN IP4|IP6 <address>'"));
    };
    if net != "IN" {
        return Err(bad("network type is not IN"));
    }
    // A multicast address may carry /ttl[/count]; we take the address and check the rest.
    let (addr, suffix) = addr.split_once('/').unwrap_or((addr, ""));
    if !suffix.is_empty() && !suffix.split('/').all(is_digits) {
        return Err(bad("bad /ttl or /count suffix"));
    }
    let address: IpAddr = match addr_type {
        "IP4" => addr
            .parse::<std::net::Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| bad("not an IPv4 address (host names are not supported)"))?,
        "IP6" => addr
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| bad("not an IPv6 address (host names are not supported)"))?,
        _ => return Err(bad("address type is not IP4 or IP6")),
    };
    Ok(Connection { address })
}

fn parse_media(line: usize, value: &str) -> Result<MediaDescription, SdpError> {
    let bad = |reason| SdpError::BadMedia { line, reason };
    let mut fields = value.split_ascii_whitespace();
    let media = fields.next().ok_or_else(|| bad("missing media type"))?;
    if !media.bytes().all(is_token_byte) {
        return Err(bad("media type is not a token"));
    }
    let port_text = fields.next().ok_or_else(|| bad("missing port"))?;
    let (port_part, count_part) = match port_text.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_text, None),
    };
    let port = if is_digits(port_part) && port_part.len() <= 5 {
        port_part.parse::<u16>().ok()
    } else {
        None
    };
    let Some(port) = port else {
        return Err(SdpError::PortOutOfRange {
            line,
            value: port_text.chars().take(32).collect(),
        });
    };
    let port_count = match count_part {
        None => None,
        Some(c) => match c.parse::<u16>() {
            Ok(n) if n > 0 && is_digits(c) => Some(n),
            _ => return Err(bad("bad port count")),
        },
    };
    let proto = fields
        .next()
        .ok_or_else(|| bad("missing transport protocol"))?;
    if !proto.bytes().all(|b| is_token_byte(b) || b == b'/') {
        return Err(bad("transport protocol is not a token"));
    }
    let is_rtp = proto.split('/').any(|p| p == "RTP");
    let mut formats = Vec::new();
    let mut payload_types = Vec::new();
    for fmt in fields {
        if formats.len() >= MAX_FORMATS {
            return Err(SdpError::TooManyFormats {
                line,
                max: MAX_FORMATS,
            });
        }
        if is_rtp {
            let pt = parse_pt(fmt).ok_or_else(|| SdpError::BadPayloadType {
                line,
                value: fmt.chars().take(32).collect(),
            })?;
            if payload_types.contains(&pt) {
                return Err(SdpError::BadPayloadType {
                    line,
                    value: fmt.to_owned(),
                });
            }
            payload_types.push(pt);
        }
        formats.push(fmt.to_owned());
    }
    if formats.is_empty() {
        return Err(bad("no formats"));
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        payload_types,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        maxptime: None,
        direction: None,
        attributes: Vec::new(),
    })
}

fn parse_rtpmap(line: usize, arg: Option<&str>) -> Result<RtpMap, SdpError> {
    let bad = |reason| bad_attr(line, "rtpmap", reason);
    let arg = arg.ok_or_else(|| bad("missing value"))?;
    let (pt, encoding) = arg
        .split_once(' ')
        .ok_or_else(|| bad("expected '<pt> <encoding>/<clock>'"))?;
    let pt = parse_pt(pt).ok_or_else(|| bad("payload type is not 0..=127"))?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(bad("encoding name is not a token"));
    }
    let clock_rate = parts
        .next()
        .filter(|c| is_digits(c) && c.len() <= 9)
        .and_then(|c| c.parse::<u32>().ok())
        .filter(|c| *c > 0)
        .ok_or_else(|| bad("clock rate is not a positive number"))?;
    let channels = match parts.next() {
        None => None,
        Some(c) => Some(
            c.parse::<u16>()
                .ok()
                .filter(|n| *n > 0 && is_digits(c))
                .ok_or_else(|| bad("channel count is not a positive number"))?,
        ),
    };
    if parts.next().is_some() {
        return Err(bad("too many '/' fields"));
    }
    Ok(RtpMap {
        pt,
        encoding: name.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_ptime(line: usize, name: &str, arg: Option<&str>) -> Result<u32, SdpError> {
    let arg = arg
        .ok_or_else(|| bad_attr(line, name, "missing value"))?
        .trim();
    // Some stacks write "20.0"; accept a zero fraction, nothing else.
    let whole = match arg.split_once('.') {
        Some((w, f)) if f.bytes().all(|b| b == b'0') => w,
        Some(_) => return Err(bad_attr(line, name, "not a whole number of ms")),
        None => arg,
    };
    whole
        .parse::<u32>()
        .ok()
        .filter(|ms| is_digits(whole) && (1..=1000).contains(ms))
        .ok_or_else(|| bad_attr(line, name, "not a number of ms in 1..=1000"))
}
