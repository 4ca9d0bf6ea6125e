//! RTP (RFC 3550) header parsing without allocation, the RFC 5761 RTP/RTCP demultiplexing
//! test, and a packetizer that writes packets into a reused buffer.
//!
//! The fixed header is parsed here rather than with `rtp::header::Header::unmarshal`
//! (webrtc-rs `rtp` 0.17.2), measured with a counting global allocator:
//! - it allocates whenever a packet carries CSRCs or a header extension (3 allocations for
//!   2 CSRCs plus a one-byte extension: the CSRC `Vec`, the extension `Vec` and a `Bytes` per
//!   element), and `rtp::packet::Packet::unmarshal` wants the datagram as owned `Bytes` (one
//!   more copy per packet); `parse_rtp` allocates nothing in either case;
//! - it panics on hostile input: an RFC 8285 one-byte element whose length runs past the end
//!   of the datagram reaches `Buf::copy_to_bytes` unchecked (`advance out of bounds`), where
//!   `parse_rtp` only checks the extension block's overall length and never walks elements.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// RTP version carried in every packet we accept.
pub const RTP_VERSION: u8 = 2;
/// Size of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not an RTP packet we can read. All variants are malformed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet of {len} bytes is shorter than the 12-byte header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// Version field is not 2.
    #[error("RTP version {0} is not 2")]
    BadVersion(u8),
    /// The CSRC list runs past the end of the datagram.
    #[error("CSRC count {count} runs past the end of the packet")]
    CsrcPastEnd {
        /// The CSRC count from the header.
        count: u8,
    },
    /// The header extension (or its length word) runs past the end of the datagram.
    #[error("header extension runs past the end of the packet")]
    ExtensionPastEnd,
    /// The padding count is zero or larger than the payload.
    #[error("padding count {count} is invalid for a payload of {payload_len} bytes")]
    BadPadding {
        /// The padding count (last byte).
        count: u8,
        /// Bytes between the header and the end of the datagram.
        payload_len: usize,
    },
}

/// A borrowed view of one RTP packet: the header fields callmux uses and the payload with
/// CSRCs, header extension and padding removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit (start of talkspurt for audio, start of event for RFC 4733).
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Number of CSRCs that were skipped.
    pub csrc_count: u8,
    /// Profile of the header extension, if one was present (0xBEDE for RFC 8285 one-byte).
    pub extension_profile: Option<u16>,
    /// The payload.
    pub payload: &'a [u8],
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = b.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// Parses an RTP packet without allocating.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpView<'_>, RtpError> {
    let too_short = RtpError::TooShort { len: buf.len() };
    let (&b0, &b1) = match (buf.first(), buf.get(1)) {
        (Some(a), Some(b)) if buf.len() >= RTP_HEADER_LEN => (a, b),
        _ => return Err(too_short),
    };
    let version = b0 >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion(version));
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0f;
    let sequence = be16(buf, 2).ok_or(too_short)?;
    let timestamp = be32(buf, 4).ok_or(too_short)?;
    let ssrc = be32(buf, 8).ok_or(too_short)?;

    let mut offset = RTP_HEADER_LEN + 4 * usize::from(csrc_count);
    if offset > buf.len() {
        return Err(RtpError::CsrcPastEnd { count: csrc_count });
    }
    let mut extension_profile = None;
    if has_extension {
        let profile = be16(buf, offset).ok_or(RtpError::ExtensionPastEnd)?;
        let words = be16(buf, offset + 2).ok_or(RtpError::ExtensionPastEnd)?;
        offset += 4 + 4 * usize::from(words);
        if offset > buf.len() {
            return Err(RtpError::ExtensionPastEnd);
        }
        extension_profile = Some(profile);
    }
    let mut end = buf.len();
    if has_padding {
        let payload_len = end - offset;
        let count = *buf.last().ok_or(too_short)?;
        if count == 0 || usize::from(count) > payload_len {
            return Err(RtpError::BadPadding { count, payload_len });
        }
        end -= usize::from(count);
    }
    let payload = buf.get(offset..end).ok_or(too_short)?;
    Ok(RtpView {
        payload_type: b1 & 0x7f,
        marker: b1 & 0x80 != 0,
        sequence,
        timestamp,
        ssrc,
        csrc_count,
        extension_profile,
        payload,
    })
}

/// RFC 5761 §4: a version-2 datagram whose second byte is 192..=223 is RTCP (RTP payload
/// types 64..=95 with the marker set would collide, which is why RFC 5761 forbids them).
pub fn is_rtcp(buf: &[u8]) -> bool {
    match (buf.first(), buf.get(1)) {
        (Some(b0), Some(b1)) => b0 >> 6 == RTP_VERSION && (192..=223).contains(b1),
        _ => false,
    }
}

/// Writes the RTP packets one leg sends: sequence numbers, timestamps and SSRC start from a
/// caller-given seed so tests are exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacketizer {
    /// Our SSRC.
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
    /// RTP timestamp of the next audio packet.
    pub timestamp: u32,
    /// Audio payload type.
    pub pt: u8,
}

impl RtpPacketizer {
    /// A packetizer for payload type `pt` with random initial SSRC, sequence and timestamp
    /// drawn from `seed` (RFC 3550 §5.1 asks for random starting values).
    pub fn new(pt: u8, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self {
            ssrc: rng.random(),
            seq: rng.random(),
            timestamp: rng.random(),
            pt: pt & 0x7f,
        }
    }

    /// Writes one audio packet into `out` (cleared first; its capacity is reused), then
    /// advances the sequence number by one and the timestamp by `ts_advance`.
    pub fn write(&mut self, payload: &[u8], marker: bool, ts_advance: u32, out: &mut Vec<u8>) {
        write_rtp_packet(
            self.pt,
            marker,
            self.seq,
            self.timestamp,
            self.ssrc,
            payload,
            out,
        );
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(ts_advance);
    }

    /// Writes one RFC 4733 telephone-event packet with payload type `event_pt`. All packets
    /// of one event carry the timestamp the event started at (the current audio timestamp);
    /// after the last packet of the event (`packet.last`) the timestamp moves on by the
    /// media time the event took (`packet.elapsed`) so audio resumes in step. Sequence
    /// numbers are shared with audio.
    pub fn write_event(
        &mut self,
        event_pt: u8,
        packet: &crate::dtmf::DtmfPacket,
        out: &mut Vec<u8>,
    ) {
        let payload = packet.event.to_bytes();
        write_rtp_packet(
            event_pt & 0x7f,
            packet.marker,
            self.seq,
            self.timestamp,
            self.ssrc,
            &payload,
            out,
        );
        self.seq = self.seq.wrapping_add(1);
        if packet.last {
            self.timestamp = self.timestamp.wrapping_add(packet.elapsed);
        }
    }
}

/// Writes a plain RTP packet (no CSRC, no extension) into `out`, replacing its contents.
/// Used by the packetizer and by relays that map another stream's numbers onto ours.
pub fn write_rtp_packet(
    pt: u8,
    marker: bool,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(RTP_HEADER_LEN + payload.len());
    out.push(RTP_VERSION << 6);
    out.push(pt | if marker { 0x80 } else { 0 });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(b0: u8, extra: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            b0,
            0x80 | 96,
            0x12,
            0x34,
            0,
            0,
            0x01,
            0x00,
            0xde,
            0xad,
            0xbe,
            0xef,
        ];
        p.extend_from_slice(extra);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_fixed_header() {
        let p = packet(0x80, &[], &[1, 2, 3]);
        let v = parse_rtp(&p).unwrap();
        assert_eq!(v.payload_type, 96);
        assert!(v.marker);
        assert_eq!(v.sequence, 0x1234);
        assert_eq!(v.timestamp, 256);
        assert_eq!(v.ssrc, 0xdead_beef);
        assert_eq!(v.payload, &[1, 2, 3]);
        assert_eq!(v.csrc_count, 0);
        assert_eq!(v.extension_profile, None);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        // 2 CSRCs, extension of 1 word, padding of 3 bytes.
        let mut extra = vec![0, 0, 0, 1, 0, 0, 0, 2];
        extra.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
        let mut p = packet(0x80 | 0x20 | 0x10 | 2, &extra, &[9, 8, 7]);
        p.extend_from_slice(&[0, 0, 3]);
        let v = parse_rtp(&p).unwrap();
        assert_eq!(v.csrc_count, 2);
        assert_eq!(v.extension_profile, Some(0xBEDE));
        assert_eq!(v.payload, &[9, 8, 7]);
    }

    #[test]
    fn empty_payload_is_fine() {
        let p = packet(0x80, &[], &[]);
        assert_eq!(parse_rtp(&p).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_rtp(&[]), Err(RtpError::TooShort { len: 0 }));
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        assert_eq!(
            parse_rtp(&packet(0x40, &[], &[1])),
            Err(RtpError::BadVersion(1))
        );
        assert_eq!(
            parse_rtp(&packet(0x00, &[], &[1])),
            Err(RtpError::BadVersion(0))
        );
        // 15 CSRCs claimed, 1 present.
        assert_eq!(
            parse_rtp(&packet(0x8f, &[0, 0, 0, 1], &[])),
            Err(RtpError::CsrcPastEnd { count: 15 })
        );
        // Extension bit but no extension header.
        assert_eq!(
            parse_rtp(&packet(0x90, &[], &[0xBE])),
            Err(RtpError::ExtensionPastEnd)
        );
        // Extension length of 2 words, 1 present.
        assert_eq!(
            parse_rtp(&packet(0x90, &[0xBE, 0xDE, 0, 2, 1, 2, 3, 4], &[])),
            Err(RtpError::ExtensionPastEnd)
        );
        // Padding larger than the payload.
        assert_eq!(
            parse_rtp(&packet(0xA0, &[], &[1, 2, 9])),
            Err(RtpError::BadPadding {
                count: 9,
                payload_len: 3
            })
        );
        // Padding count of zero.
        assert_eq!(
            parse_rtp(&packet(0xA0, &[], &[1, 0])),
            Err(RtpError::BadPadding {
                count: 0,
                payload_len: 2
            })
        );
        // Padding bit with no payload at all.
        assert!(matches!(
            parse_rtp(&packet(0xA0, &[], &[])),
            Err(RtpError::BadPadding { .. })
        ));
    }

    #[test]
    fn padding_may_consume_whole_payload() {
        let p = packet(0xA0, &[], &[0, 0, 3]);
        assert!(parse_rtp(&p).unwrap().payload.is_empty());
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201]));
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80, 0x80 | 8]));
        assert!(!is_rtcp(&[0x40, 200]));
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }

    #[test]
    fn packetizer_round_trip_and_advance() {
        let mut p = RtpPacketizer::new(8, 42);
        let again = RtpPacketizer::new(8, 42);
        assert_eq!(p, again, "same seed, same start");
        assert_ne!(p, RtpPacketizer::new(8, 43));
        let (seq0, ts0, ssrc) = (p.seq, p.timestamp, p.ssrc);
        let mut out = Vec::new();
        p.write(&[1, 2, 3, 4], true, 160, &mut out);
        let v = parse_rtp(&out).unwrap();
        assert_eq!((v.payload_type, v.marker), (8, true));
        assert_eq!((v.sequence, v.timestamp, v.ssrc), (seq0, ts0, ssrc));
        assert_eq!(v.payload, &[1, 2, 3, 4]);
        p.write(&[5], false, 160, &mut out);
        let v = parse_rtp(&out).unwrap();
        assert_eq!(v.sequence, seq0.wrapping_add(1));
        assert_eq!(v.timestamp, ts0.wrapping_add(160));
        assert!(!v.marker);
        assert_eq!(out.len(), 13, "buffer is cleared, not appended");
    }

    #[test]
    fn packetizer_wraps() {
        let mut p = RtpPacketizer {
            ssrc: 1,
            seq: u16::MAX,
            timestamp: u32::MAX - 10,
            pt: 0,
        };
        let mut out = Vec::new();
        p.write(&[0], false, 160, &mut out);
        assert_eq!(p.seq, 0);
        assert_eq!(p.timestamp, 149);
    }
}
