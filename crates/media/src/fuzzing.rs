//! cargo-fuzz entry points. Each feeds arbitrary bytes to a parser the network reaches and
//! must never panic; the bodies live here so that API drift breaks the build, not the fuzzer.

use crate::codec::AudioDecoder;
use crate::sdp::{self, CodecPreferences, PayloadFormat, SdpOrigin, SessionDescription};

/// SDP parse, then answer and accept_answer on whatever parsed.
pub fn sdp(data: &[u8]) {
    if let Ok(desc) = SessionDescription::parse(data) {
        let prefs = CodecPreferences::default();
        let mut origin = SdpOrigin::new(1);
        let local = std::net::SocketAddr::from(([127, 0, 0, 1], 20000));
        if let Ok((_, text)) = sdp::answer(&desc, &prefs, local, &mut origin) {
            // Our own answer must always parse.
            let reparsed = SessionDescription::parse(text.as_bytes());
            assert!(reparsed.is_ok(), "own answer does not parse: {reparsed:?}");
        }
        let _ = sdp::accept_answer(&prefs, &desc);
    }
}

/// RTP parse and the RTP/RTCP demultiplexing test. (The reorder buffer needs an `Instant`,
/// which this crate never reads from the clock; it is covered by proptests instead.)
pub fn rtp(data: &[u8]) {
    if let Ok(view) = crate::rtp::parse_rtp(data) {
        assert!(view.payload.len() + crate::rtp::RTP_HEADER_LEN <= data.len());
    }
    let _ = crate::rtp::is_rtcp(data);
}

/// RTCP parse.
pub fn rtcp(data: &[u8]) {
    let _ = crate::rtcp::parse_rtcp(data);
}

/// RFC 4733 payload parse and detector.
pub fn telephone_event(data: &[u8]) {
    let _ = crate::dtmf::TelephoneEvent::parse(data);
    let mut detector = crate::dtmf::DtmfDetector::new();
    for chunk in data.chunks(8) {
        let (ts, payload) = chunk.split_at(chunk.len().min(4));
        let mut ts_bytes = [0u8; 4];
        for (d, s) in ts_bytes.iter_mut().zip(ts) {
            *d = *s;
        }
        let _ = detector.push(u32::from_be_bytes(ts_bytes), payload);
    }
    let _ = crate::dtmf::parse_dtmf_info("application/dtmf-relay", data);
    let _ = crate::dtmf::parse_dtmf_info("application/dtmf", data);
}

/// Opus decode of arbitrary payloads (first byte chooses FEC recovery or plain decode).
pub fn opus_decode(data: &[u8]) {
    let Ok(mut decoder) = AudioDecoder::new(&PayloadFormat::opus(111)) else {
        return;
    };
    let mut out = Vec::new();
    match data.split_first() {
        Some((&flag, rest)) if flag & 1 == 1 => {
            let samples = usize::from(flag >> 1) * 40;
            let _ = decoder.recover(rest, samples, &mut out);
        }
        _ => {
            let _ = decoder.decode(data, &mut out);
        }
    }
}
