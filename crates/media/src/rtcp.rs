//! RTCP (RFC 3550 §6) reading for statistics: sender reports, receiver reports and BYE,
//! parsed through the webrtc-rs `rtcp` crate. RTCP arrives a few times a second per leg, so
//! the allocations that crate makes are acceptable here; RTP itself never comes this way.
//!
//! The compound datagram is split here (every sub-packet's length checked against what is
//! left) and only SR, RR and BYE are handed to the crate, each as an exactly sized slice.
//! `rtcp::packet::unmarshal` on the whole datagram is not used: its feedback parsers panic on
//! short input (a 12-byte PSFB/FIR packet ends in `advance out of bounds` inside `bytes`,
//! found by this crate's proptest), and nothing from the network may panic here.

use rtcp::goodbye::Goodbye;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use webrtc_util::marshal::Unmarshal;

/// Largest RTCP datagram accepted (compound packets are well under an MTU).
pub const MAX_RTCP_LEN: usize = 2048;

/// Why an RTCP datagram could not be read. Malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Nothing to parse.
    #[error("empty RTCP datagram")]
    Empty,
    /// Larger than [`MAX_RTCP_LEN`].
    #[error("RTCP datagram of {0} bytes is too large")]
    TooLarge(usize),
    /// Version is not 2 or the payload type is outside RTCP's range.
    #[error("not an RTCP packet")]
    NotRtcp,
    /// The `rtcp` crate rejected it; the text is its reason.
    #[error("malformed RTCP: {0}")]
    Malformed(String),
}

/// One reception report block: how a remote receiver sees one of our streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptionBlock {
    /// The SSRC being reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit).
    pub total_lost: u32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    pub last_sender_report: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sender_report: u32,
}

impl From<&ReceptionReport> for ReceptionBlock {
    fn from(r: &ReceptionReport) -> Self {
        Self {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            total_lost: r.total_lost,
            highest_sequence: r.last_sequence_number,
            jitter: r.jitter,
            last_sender_report: r.last_sender_report,
            delay_since_last_sender_report: r.delay,
        }
    }
}

/// One RTCP packet of a compound datagram, reduced to what callmux records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpReport {
    /// A sender report (SR).
    SenderReport {
        /// Sender's SSRC.
        ssrc: u32,
        /// 64-bit NTP timestamp of the report.
        ntp_time: u64,
        /// RTP timestamp corresponding to `ntp_time`.
        rtp_time: u32,
        /// Packets sent so far.
        packet_count: u32,
        /// Payload octets sent so far.
        octet_count: u32,
        /// Reception report blocks.
        reports: Vec<ReceptionBlock>,
    },
    /// A receiver report (RR).
    ReceiverReport {
        /// Reporter's SSRC.
        ssrc: u32,
        /// Reception report blocks.
        reports: Vec<ReceptionBlock>,
    },
    /// A BYE: these sources are leaving.
    Goodbye {
        /// SSRCs leaving.
        sources: Vec<u32>,
        /// Optional reason text (lossy UTF-8).
        reason: String,
    },
    /// Any other RTCP packet type (SDES, APP, feedback, XR), not interpreted.
    Other {
        /// The RTCP packet type (200..=207 and beyond).
        packet_type: u8,
    },
}

/// Parses a (compound) RTCP datagram into its reports.
pub fn parse_rtcp(buf: &[u8]) -> Result<Vec<RtcpReport>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    if buf.len() > MAX_RTCP_LEN {
        return Err(RtcpError::TooLarge(buf.len()));
    }
    if !crate::rtp::is_rtcp(buf) {
        return Err(RtcpError::NotRtcp);
    }
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let (Some(&b0), Some(&packet_type), Some(&l0), Some(&l1)) =
            (rest.first(), rest.get(1), rest.get(2), rest.get(3))
        else {
            return Err(RtcpError::Malformed("truncated RTCP header".into()));
        };
        if b0 >> 6 != 2 {
            return Err(RtcpError::Malformed("RTCP version is not 2".into()));
        }
        let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let Some((packet, tail)) = rest.split_at_checked(len) else {
            return Err(RtcpError::Malformed(format!(
                "RTCP packet type {packet_type} claims {len} bytes, {} left",
                rest.len()
            )));
        };
        rest = tail;
        out.push(parse_one(packet_type, packet)?);
    }
    Ok(out)
}

fn malformed(e: webrtc_util::Error) -> RtcpError {
    RtcpError::Malformed(e.to_string())
}

/// Parses one exactly sized RTCP packet.
fn parse_one(packet_type: u8, mut packet: &[u8]) -> Result<RtcpReport, RtcpError> {
    Ok(match packet_type {
        200 => {
            let sr = SenderReport::unmarshal(&mut packet).map_err(malformed)?;
            RtcpReport::SenderReport {
                ssrc: sr.ssrc,
                ntp_time: sr.ntp_time,
                rtp_time: sr.rtp_time,
                packet_count: sr.packet_count,
                octet_count: sr.octet_count,
                reports: sr.reports.iter().map(ReceptionBlock::from).collect(),
            }
        }
        201 => {
            let rr = ReceiverReport::unmarshal(&mut packet).map_err(malformed)?;
            RtcpReport::ReceiverReport {
                ssrc: rr.ssrc,
                reports: rr.reports.iter().map(ReceptionBlock::from).collect(),
            }
        }
        203 => {
            let bye = Goodbye::unmarshal(&mut packet).map_err(malformed)?;
            RtcpReport::Goodbye {
                sources: bye.sources,
                reason: String::from_utf8_lossy(&bye.reason).into_owned(),
            }
        }
        other => RtcpReport::Other { packet_type: other },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RR_SDES_BYE: &[u8] = &[
        // RR, 1 report block
        0x81, 0xc9, 0x00, 0x07, 0x90, 0x2f, 0x9e, 0x2e, 0xbc, 0x5e, 0x9a, 0x40, 0x01, 0x00, 0x00,
        0x05, 0x00, 0x00, 0x46, 0xe1, 0x00, 0x00, 0x01, 0x11, 0x09, 0xf3, 0x64, 0x32, 0x00, 0x02,
        0x4a, 0x79, // SDES with CNAME "ab", END, padding
        0x81, 0xca, 0x00, 0x03, 0x90, 0x2f, 0x9e, 0x2e, 0x01, 0x02, b'a', b'b', 0, 0, 0, 0,
        // BYE with one source
        0x81, 0xcb, 0x00, 0x01, 0x90, 0x2f, 0x9e, 0x2e,
    ];

    #[test]
    fn parses_rr_sdes_bye() {
        let reports = parse_rtcp(RR_SDES_BYE).unwrap();
        assert_eq!(reports.len(), 3);
        let RtcpReport::ReceiverReport {
            ssrc,
            reports: blocks,
        } = &reports[0]
        else {
            panic!("expected RR, got {:?}", reports[0]);
        };
        assert_eq!(*ssrc, 0x902f_9e2e);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].ssrc, 0xbc5e_9a40);
        assert_eq!(blocks[0].fraction_lost, 1);
        assert_eq!(blocks[0].total_lost, 5);
        assert_eq!(blocks[0].highest_sequence, 0x46e1);
        assert_eq!(blocks[0].jitter, 273);
        assert_eq!(reports[1], RtcpReport::Other { packet_type: 202 });
        assert_eq!(
            reports[2],
            RtcpReport::Goodbye {
                sources: vec![0x902f_9e2e],
                reason: String::new()
            }
        );
    }

    #[test]
    fn parses_sender_report() {
        let sr: &[u8] = &[
            0x80, 0xc8, 0x00, 0x06, // SR, no blocks, length 6
            0x00, 0x00, 0x00, 0x2a, // ssrc 42
            0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, // ntp
            0x00, 0x00, 0x03, 0xe8, // rtp ts 1000
            0x00, 0x00, 0x00, 0x0a, // packets 10
            0x00, 0x00, 0x06, 0x40, // octets 1600
        ];
        let reports = parse_rtcp(sr).unwrap();
        assert_eq!(
            reports,
            vec![RtcpReport::SenderReport {
                ssrc: 42,
                ntp_time: 0x1_8000_0000,
                rtp_time: 1000,
                packet_count: 10,
                octet_count: 1600,
                reports: vec![]
            }]
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_rtcp(&[]), Err(RtcpError::Empty));
        assert_eq!(parse_rtcp(&[0x80, 0x00, 0, 0]), Err(RtcpError::NotRtcp));
        assert_eq!(parse_rtcp(&[0x40, 0xc8, 0, 0]), Err(RtcpError::NotRtcp));
        assert!(matches!(
            parse_rtcp(&vec![0x80; MAX_RTCP_LEN + 1]),
            Err(RtcpError::TooLarge(_))
        ));
        // Length field claims more than is there.
        assert!(matches!(
            parse_rtcp(&[0x81, 0xc9, 0x00, 0x07, 0, 0, 0, 1]),
            Err(RtcpError::Malformed(_))
        ));
        // Truncated header.
        assert!(matches!(
            parse_rtcp(&[0x81, 0xc9, 0x00]),
            Err(RtcpError::Malformed(_))
        ));
        // A PSFB/FIR packet too short for its FCI: `rtcp::packet::unmarshal` panics on this;
        // here it is simply not interpreted.
        assert_eq!(
            parse_rtcp(&[0x84, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]),
            Ok(vec![RtcpReport::Other { packet_type: 206 }])
        );
        // A second packet in the compound with a bad version.
        assert!(matches!(
            parse_rtcp(&[0x80, 0xcb, 0, 0, 0x40, 0xcb, 0, 0]),
            Err(RtcpError::Malformed(_))
        ));
        // BYE claiming two sources with room for one.
        assert!(matches!(
            parse_rtcp(&[0x82, 0xcb, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Malformed(_))
        ));
        // RR claiming a report block it does not carry.
        assert!(matches!(
            parse_rtcp(&[0x81, 0xc9, 0x00, 0x01, 0, 0, 0, 1]),
            Err(RtcpError::Malformed(_))
        ));
    }
}
