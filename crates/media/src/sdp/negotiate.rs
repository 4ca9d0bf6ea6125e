//! RFC 3264 offer/answer for one audio stream.

use std::net::{IpAddr, SocketAddr};

use super::parse::MediaDescription;
use super::write::{build, MediaSection};
use super::{
    Codec, CodecPreferences, Direction, Negotiated, PayloadFormat, SdpError, SdpOrigin,
    SessionDescription, TelephoneEventFormat,
};

/// Why offer/answer failed. `NoCommonCodec` and `UnsupportedTransport` map to SIP 488,
/// `NoAudioStream` to 488 as well (nothing we can carry), `Malformed` to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The audio stream offers no codec in our preferences.
    #[error("no common codec")]
    NoCommonCodec,
    /// There is no audio m= line with a non-zero port.
    #[error("no audio stream")]
    NoAudioStream,
    /// Audio streams exist but only over transports we do not carry (e.g. RTP/SAVP).
    #[error("unsupported audio transport '{0}'")]
    UnsupportedTransport(String),
    /// The description is unusable (e.g. no c= for the audio stream).
    #[error("malformed SDP: {0}")]
    Malformed(#[from] SdpError),
}

/// Payload type we offer for telephone-event at 8 kHz.
const TE_PT_8K: u8 = 101;
/// Payload type we offer for telephone-event at 48 kHz (next to Opus).
const TE_PT_48K: u8 = 110;

/// Answers a remote offer: picks the first codec in the OFFER's order that `prefs` accepts,
/// telephone-event if offered, mirrors hold, rejects every other m= line with port 0, and
/// returns the result with the answer text (o= stamped from `origin`).
pub fn answer(
    offer: &SessionDescription,
    prefs: &CodecPreferences,
    local: SocketAddr,
    origin: &mut SdpOrigin,
) -> Result<(Negotiated, String), NegotiationError> {
    let (index, media) = pick_audio(offer)?;
    let remote = remote_addr(offer, index, media)?;
    let audio = choose_codec(media, prefs)?;
    let telephone_event = choose_telephone_event(media, audio.codec);

    let mut offered = offer.direction_for(index);
    if remote.ip().is_unspecified() {
        offered = offered.without_receiving();
    }
    let direction = offered.reversed();
    let ptime_ms = media.ptime.or(offer.ptime).unwrap_or(20);

    let formats = [audio];
    let events: Vec<TelephoneEventFormat> = telephone_event.into_iter().collect();
    let sections: Vec<MediaSection<'_>> = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                MediaSection::Audio {
                    proto: &m.proto,
                    formats: &formats,
                    events: &events,
                    direction,
                    port: local.port(),
                }
            } else {
                MediaSection::Rejected {
                    media: &m.media,
                    proto: &m.proto,
                    format: m.formats.first().map_or("0", String::as_str),
                }
            }
        })
        .collect();
    let text = build(local, origin, &sections);
    Ok((
        Negotiated {
            remote,
            audio,
            telephone_event,
            direction,
            ptime_ms,
        },
        text,
    ))
}

/// Builds an offer for an outbound leg: our codecs in preference order plus telephone-event
/// (8 kHz, and 48 kHz when Opus is offered), `sendrecv`.
pub fn offer(prefs: &CodecPreferences, local: SocketAddr, origin: &mut SdpOrigin) -> String {
    offer_with_direction(prefs, local, origin, Direction::SendRecv)
}

/// Like [`offer`] with an explicit direction (`SendOnly` to put the remote on hold,
/// `Inactive` to stop media both ways).
pub fn offer_with_direction(
    prefs: &CodecPreferences,
    local: SocketAddr,
    origin: &mut SdpOrigin,
    direction: Direction,
) -> String {
    let mut formats: Vec<PayloadFormat> = Vec::with_capacity(prefs.codecs.len());
    for codec in &prefs.codecs {
        if !formats.iter().any(|f| f.codec == *codec) {
            formats.push(PayloadFormat::new(*codec, codec.default_payload_type()));
        }
    }
    let mut events = Vec::with_capacity(2);
    if !formats.is_empty() {
        events.push(TelephoneEventFormat {
            pt: TE_PT_8K,
            clock_rate: 8000,
        });
    }
    if prefs.accepts(Codec::Opus) {
        events.push(TelephoneEventFormat {
            pt: TE_PT_48K,
            clock_rate: 48000,
        });
    }
    let section = MediaSection::Audio {
        proto: "RTP/AVP",
        formats: &formats,
        events: &events,
        direction,
        port: local.port(),
    };
    build(local, origin, &[section])
}

/// Reads the remote answer to our [`offer`]: the first codec in the answer that we accept,
/// its telephone-event, and our resulting direction.
pub fn accept_answer(
    prefs: &CodecPreferences,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    let (index, media) = pick_audio(answer)?;
    let remote = remote_addr(answer, index, media)?;
    let audio = choose_codec(media, prefs)?;
    let telephone_event = choose_telephone_event(media, audio.codec);
    let mut answered = answer.direction_for(index);
    if remote.ip().is_unspecified() {
        answered = answered.without_receiving();
    }
    Ok(Negotiated {
        remote,
        audio,
        telephone_event,
        direction: answered.reversed(),
        ptime_ms: media.ptime.or(answer.ptime).unwrap_or(20),
    })
}

/// The first audio m= line with a non-zero port over plain RTP.
fn pick_audio(sdp: &SessionDescription) -> Result<(usize, &MediaDescription), NegotiationError> {
    let mut unsupported: Option<&str> = None;
    for (i, m) in sdp.media.iter().enumerate() {
        if m.media != "audio" || m.port == 0 {
            continue;
        }
        if m.is_plain_rtp() {
            return Ok((i, m));
        }
        unsupported.get_or_insert(&m.proto);
    }
    match unsupported {
        Some(proto) => Err(NegotiationError::UnsupportedTransport(proto.to_owned())),
        None => Err(NegotiationError::NoAudioStream),
    }
}

fn remote_addr(
    sdp: &SessionDescription,
    index: usize,
    media: &MediaDescription,
) -> Result<SocketAddr, NegotiationError> {
    let conn = sdp
        .connection_for(index)
        .ok_or(SdpError::MissingConnection { media_index: index })?;
    let ip: IpAddr = conn.address;
    Ok(SocketAddr::new(ip, media.port))
}

fn choose_codec(
    media: &MediaDescription,
    prefs: &CodecPreferences,
) -> Result<PayloadFormat, NegotiationError> {
    media
        .payload_types
        .iter()
        .find_map(|&pt| {
            let codec = match media.rtpmap(pt) {
                Some(map) => Codec::from_rtpmap(map)?,
                None => Codec::from_static_payload_type(pt)?,
            };
            prefs.accepts(codec).then(|| PayloadFormat::new(codec, pt))
        })
        .ok_or(NegotiationError::NoCommonCodec)
}

/// telephone-event at the audio clock rate; next to Opus, 48 kHz if offered, else 8 kHz.
fn choose_telephone_event(media: &MediaDescription, codec: Codec) -> Option<TelephoneEventFormat> {
    let find = |rate: u32| {
        media.payload_types.iter().find_map(|&pt| {
            let map = media.rtpmap(pt)?;
            (map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == rate)
                .then_some(TelephoneEventFormat {
                    pt,
                    clock_rate: rate,
                })
        })
    };
    match codec {
        Codec::Pcmu | Codec::Pcma => find(8000),
        Codec::Opus => find(48000).or_else(|| find(8000)),
    }
}
