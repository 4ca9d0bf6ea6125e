//! SDP (RFC 4566) parsing and offer/answer (RFC 3264) for one audio stream per leg.
//!
//! [`SessionDescription::parse`] is a small strict parser: every line it relies on is checked
//! and a failure names the line number and the rule broken ([`SdpError`]); it never panics and
//! bounds the size of what it accepts. [`answer`], [`offer`] and [`accept_answer`] turn parsed
//! descriptions into a [`Negotiated`] media configuration plus the SDP text we send.

mod negotiate;
mod parse;
#[cfg(test)]
mod tests;
mod write;

use std::fmt;

pub use negotiate::{accept_answer, answer, offer, offer_with_direction, NegotiationError};
pub use parse::{
    Attribute, Connection, Fmtp, MediaDescription, Origin, RtpMap, SdpError, SessionDescription,
    MAX_FORMATS, MAX_MEDIA, MAX_SDP_LEN,
};
pub use write::{CodecPreferences, SdpOrigin};

use std::net::SocketAddr;

/// An audio codec callmux can decode and encode; the unit of codec negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0, 8 kHz.
    Pcmu,
    /// G.711 A-law, static payload type 8, 8 kHz.
    Pcma,
    /// Opus (RFC 7587), dynamic payload type, RTP clock 48 kHz, `opus/48000/2` in SDP.
    Opus,
}

impl Codec {
    /// The encoding name as written in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::Opus => "opus",
        }
    }

    /// The RTP clock rate this codec must be negotiated with.
    pub fn clock_rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Opus => 48000,
        }
    }

    /// The payload type we use when we write the offer (static for G.711, 111 for Opus).
    pub fn default_payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
            Self::Opus => 111,
        }
    }

    /// Maps an `a=rtpmap` encoding (case-insensitive name, clock rate, channel count) to a
    /// codec we support, or `None`.
    pub fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        let name = map.encoding.as_str();
        if name.eq_ignore_ascii_case("PCMU") && map.clock_rate == 8000 && mono_or_none(map) {
            Some(Self::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") && map.clock_rate == 8000 && mono_or_none(map) {
            Some(Self::Pcma)
        } else if name.eq_ignore_ascii_case("opus")
            && map.clock_rate == 48000
            && matches!(map.channels, None | Some(1) | Some(2))
        {
            Some(Self::Opus)
        } else {
            None
        }
    }

    /// The codec a static payload type stands for when no `a=rtpmap` names it.
    pub fn from_static_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            _ => None,
        }
    }
}

fn mono_or_none(map: &RtpMap) -> bool {
    matches!(map.channels, None | Some(1))
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encoding_name())
    }
}

/// The negotiated audio payload format: what the decoder and encoder are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadFormat {
    /// RTP payload type carrying this codec on this leg.
    pub pt: u8,
    /// The codec.
    pub codec: Codec,
    /// RTP clock rate (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
}

impl PayloadFormat {
    /// PCMU on its static payload type 0.
    pub fn pcmu() -> Self {
        Self::new(Codec::Pcmu, 0)
    }

    /// PCMA on its static payload type 8.
    pub fn pcma() -> Self {
        Self::new(Codec::Pcma, 8)
    }

    /// Opus on the given dynamic payload type.
    pub fn opus(pt: u8) -> Self {
        Self::new(Codec::Opus, pt)
    }

    /// A format for `codec` on payload type `pt`, with the codec's clock rate.
    pub fn new(codec: Codec, pt: u8) -> Self {
        Self {
            pt,
            codec,
            clock_rate: codec.clock_rate(),
        }
    }
}

/// The negotiated RFC 4733 telephone-event payload type, so DTMF packets can be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEventFormat {
    /// RTP payload type of telephone-event on this leg.
    pub pt: u8,
    /// Its RTP clock rate (8000, or 48000 next to Opus).
    pub clock_rate: u32,
}

/// Media direction from one side's point of view (RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive (the default when no attribute is given).
    #[default]
    SendRecv,
    /// Only send.
    SendOnly,
    /// Only receive.
    RecvOnly,
    /// Neither send nor receive.
    Inactive,
}

impl Direction {
    /// The direction the other side must answer with (`sendonly` ↔ `recvonly`).
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// This direction minus receiving: what an offer with `c=0.0.0.0` (RFC 2543 hold) means,
    /// since nothing may be sent to that address.
    pub fn without_receiving(self) -> Self {
        match self {
            Self::SendRecv | Self::SendOnly => Self::SendOnly,
            Self::RecvOnly | Self::Inactive => Self::Inactive,
        }
    }

    /// The SDP attribute name.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Parses an SDP direction attribute name.
    pub fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// The outcome of offer/answer: where to send, what codec, which DTMF payload type, and
/// what this leg may do. `direction` is from OUR point of view (`SendOnly` = we only send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Remote RTP address (RTCP is the port + 1). The IP is unspecified (`0.0.0.0`) on hold.
    pub remote: SocketAddr,
    /// The audio codec and its payload type.
    pub audio: PayloadFormat,
    /// The telephone-event payload type, if both sides use RFC 4733 DTMF.
    pub telephone_event: Option<TelephoneEventFormat>,
    /// What we may do: send only when `direction.sends()`, expect media when it receives.
    pub direction: Direction,
    /// The packetization time the remote asked for (`a=ptime`), 20 when absent.
    pub ptime_ms: u32,
}
