//! What we put in the SDP we send: our codec list, our o= line, and the text builder.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::{Codec, Direction, PayloadFormat, TelephoneEventFormat};

/// Which codecs this leg accepts, in our order of preference (used for offers; answers
/// follow the offer's order among these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPreferences {
    /// Accepted codecs; an empty list accepts nothing.
    pub codecs: Vec<Codec>,
}

impl Default for CodecPreferences {
    fn default() -> Self {
        Self {
            codecs: vec![Codec::Pcmu, Codec::Pcma, Codec::Opus],
        }
    }
}

impl CodecPreferences {
    /// Whether `codec` is accepted.
    pub fn accepts(&self, codec: Codec) -> bool {
        self.codecs.contains(&codec)
    }
}

/// The o= identity of one leg: a session id fixed for the dialog and a version that
/// increments whenever the SDP we send changes (RFC 3264 §8: an unchanged re-offer keeps it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpOrigin {
    session_id: u64,
    version: u64,
    last_body: Option<String>,
}

impl SdpOrigin {
    /// A new origin; `session_id` should come from the leg's seeded RNG. It is kept below
    /// 2^63 because some stacks parse it as a signed 64-bit number.
    pub fn new(session_id: u64) -> Self {
        let session_id = session_id & (i64::MAX as u64);
        Self {
            session_id,
            version: 1,
            last_body: None,
        }
    }

    /// The session id written in o=.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version written in the last SDP produced (1 before any).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Stamps a body (everything but v= and o=): bumps the version if it differs from the
    /// previous one and returns the version to write.
    fn stamp(&mut self, body: &str) -> u64 {
        match &self.last_body {
            Some(prev) if prev == body => {}
            Some(_) => {
                self.version = self.version.wrapping_add(1);
                self.last_body = Some(body.to_owned());
            }
            None => self.last_body = Some(body.to_owned()),
        }
        self.version
    }
}

/// Address type keyword and address text for c= / o=.
fn addr_fields(ip: IpAddr) -> (&'static str, String) {
    match ip {
        IpAddr::V4(v4) => ("IP4", v4.to_string()),
        IpAddr::V6(v6) => ("IP6", v6.to_string()),
    }
}

/// Opus parameters we send: we decode and encode at 16 kHz mono and want in-band FEC.
pub(super) const OPUS_FMTP: &str =
    "minptime=10;useinbandfec=1;maxplaybackrate=16000;sprop-maxcapturerate=16000";

/// One m= section we write.
pub(super) enum MediaSection<'a> {
    /// An audio section with our payload formats.
    Audio {
        proto: &'a str,
        formats: &'a [PayloadFormat],
        events: &'a [TelephoneEventFormat],
        direction: Direction,
        port: u16,
    },
    /// A rejected section (port 0), echoing the offer's media, proto and first format.
    Rejected {
        media: &'a str,
        proto: &'a str,
        format: &'a str,
    },
}

/// Builds a complete SDP body, stamping `origin`.
pub(super) fn build(
    local: SocketAddr,
    origin: &mut SdpOrigin,
    sections: &[MediaSection<'_>],
) -> String {
    let (addr_type, addr) = addr_fields(local.ip());
    let mut body = String::with_capacity(512);
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write!(body, "s=callmux\r\nc=IN {addr_type} {addr}\r\nt=0 0\r\n");
    for section in sections {
        match section {
            MediaSection::Audio {
                proto,
                formats,
                events,
                direction,
                port,
            } => {
                let _ = write!(body, "m=audio {port} {proto}");
                for f in formats.iter() {
                    let _ = write!(body, " {}", f.pt);
                }
                for e in events.iter() {
                    let _ = write!(body, " {}", e.pt);
                }
                body.push_str("\r\n");
                for f in formats.iter() {
                    let channels = if f.codec == Codec::Opus { "/2" } else { "" };
                    let _ = write!(
                        body,
                        "a=rtpmap:{} {}/{}{}\r\n",
                        f.pt,
                        f.codec.encoding_name(),
                        f.clock_rate,
                        channels
                    );
                    if f.codec == Codec::Opus {
                        let _ = write!(body, "a=fmtp:{} {OPUS_FMTP}\r\n", f.pt);
                    }
                }
                for e in events.iter() {
                    let _ = write!(
                        body,
                        "a=rtpmap:{} telephone-event/{}\r\na=fmtp:{} 0-16\r\n",
                        e.pt, e.clock_rate, e.pt
                    );
                }
                let _ = write!(body, "a=ptime:20\r\na={}\r\n", direction.attribute());
            }
            MediaSection::Rejected {
                media,
                proto,
                format,
            } => {
                let _ = write!(body, "m={media} 0 {proto} {format}\r\n");
            }
        }
    }
    let version = origin.stamp(&body);
    let mut sdp = String::with_capacity(body.len() + 64);
    let _ = write!(
        sdp,
        "v=0\r\no=callmux {} {} IN {addr_type} {addr}\r\n",
        origin.session_id, version
    );
    sdp.push_str(&body);
    sdp
}
