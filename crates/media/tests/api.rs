//! Integration tests through the public API: real captures (the RFC 4733 and G.711 pcaps
//! that sip-tester ships), a full send/receive pipeline per codec, and property tests that
//! random input never panics a parser.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callmux_media::codec::{AudioDecoder, AudioEncoder};
use callmux_media::dtmf::{DtmfDetector, TelephoneEvent};
use callmux_media::reorder::{PushOutcome, Released, ReorderBuffer};
use callmux_media::rtp::{parse_rtp, RtpPacketizer};
use callmux_media::sdp::{self, Codec, CodecPreferences, SdpOrigin, SessionDescription};
use callmux_media::tone::ToneGenerator;
use callmux_media::{fuzzing, rtcp};
use proptest::prelude::*;

const PCAP_DIR: &str = "/usr/share/sip-tester";

/// UDP payloads of a libpcap file (Ethernet, optional 802.1Q, IPv4, UDP), minimal and strict:
/// anything else is a test failure.
fn pcap_udp_payloads(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(
        u32_at(&data, 0),
        0xa1b2_c3d4,
        "little-endian microsecond pcap"
    );
    assert_eq!(u32_at(&data, 20), 1, "Ethernet link type");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32_at(&data, off + 8) as usize;
        let frame = &data[off + 16..off + 16 + incl];
        off += 16 + incl;
        let mut l3 = 14;
        let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if ethertype == 0x8100 {
            ethertype = u16::from_be_bytes([frame[16], frame[17]]);
            l3 = 18;
        }
        assert_eq!(ethertype, 0x0800, "IPv4");
        let ip = &frame[l3..];
        assert_eq!(ip[9], 17, "UDP");
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let udp = &ip[ihl..];
        let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
        out.push(udp[8..udp_len].to_vec());
    }
    out
}

fn dtmf_pcaps() -> Vec<(char, String)> {
    let mut files: Vec<(char, String)> = ('0'..='9')
        .map(|d| (d, format!("{PCAP_DIR}/dtmf_2833_{d}.pcap")))
        .collect();
    files.push(('#', format!("{PCAP_DIR}/dtmf_2833_pound.pcap")));
    files.push(('*', format!("{PCAP_DIR}/dtmf_2833_star.pcap")));
    files
}

#[test]
fn sip_tester_rfc4733_captures_give_each_digit_once() {
    for (digit, path) in dtmf_pcaps() {
        let mut detector = DtmfDetector::new();
        let mut keys = Vec::new();
        let mut packets = 0;
        for datagram in pcap_udp_payloads(&path) {
            let rtp = parse_rtp(&datagram).expect("capture holds valid RTP");
            assert_eq!(rtp.payload_type, 101, "{path}");
            TelephoneEvent::parse(rtp.payload).expect("valid telephone-event");
            packets += 1;
            keys.extend(detector.push(rtp.timestamp, rtp.payload));
        }
        assert_eq!(packets, 10, "{path}: start, 6 continuations, 3 end packets");
        assert_eq!(keys, vec![digit], "{path}");
        assert_eq!(detector.flush(), None, "{path}: nothing left pending");
    }
}

#[test]
fn sip_tester_captures_as_one_stream() {
    // All twelve presses in one stream, timestamps moved forward as a real sender would;
    // the first press also loses its end packets (reported when the next one starts).
    let mut detector = DtmfDetector::new();
    let mut keys = String::new();
    for (i, (_, path)) in dtmf_pcaps().into_iter().enumerate() {
        for datagram in pcap_udp_payloads(&path) {
            let rtp = parse_rtp(&datagram).unwrap();
            let event = TelephoneEvent::parse(rtp.payload).unwrap();
            if i == 0 && event.end {
                continue;
            }
            let ts = rtp.timestamp.wrapping_add(i as u32 * 2_000_000);
            keys.extend(detector.push(ts, rtp.payload));
        }
    }
    assert_eq!(keys, "0123456789#*");
}

#[test]
fn sip_tester_g711a_capture_decodes_through_reorder_buffer() {
    let datagrams = pcap_udp_payloads(&format!("{PCAP_DIR}/g711a.pcap"));
    assert_eq!(datagrams.len(), 236);
    // Deliver 20 ms apart with every 7th pair swapped (the first packet stays first: it
    // defines the start of the stream, and anything older would be too late).
    let mut order: Vec<usize> = (0..datagrams.len()).collect();
    for i in (1..order.len() - 1).step_by(7) {
        order.swap(i, i + 1);
    }
    let format = sdp::PayloadFormat::pcma();
    let mut decoder = AudioDecoder::new(&format).unwrap();
    let mut buffer = ReorderBuffer::new(Duration::from_millis(60));
    let t0 = Instant::now();
    let mut pcm = Vec::new();
    let mut seqs = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let now = t0 + Duration::from_millis(20 * k as u64);
        let rtp = parse_rtp(&datagrams[i]).unwrap();
        assert_eq!(rtp.payload_type, 8);
        assert_eq!(buffer.push(&rtp, now), PushOutcome::Accepted);
        while let Some(released) = buffer.pop(now) {
            match released {
                Released::Packet { seq, payload, .. } => {
                    seqs.push(seq);
                    decoder.decode(payload, &mut pcm).unwrap();
                }
                Released::Lost { seq, .. } => panic!("nothing is lost, yet {seq} was"),
            }
        }
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "in order"
    );
    assert_eq!(pcm.len(), 236 * 240 * 2);
    // CPython's audioop decodes this capture to an RMS of 1906 at 8 kHz; interpolation to
    // 16 kHz keeps the level (speech has little energy near 4 kHz).
    let rms = (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    assert!((20.0 * (rms / 1906.0).log10()).abs() < 0.5, "rms {rms}");
}

fn goertzel(x: &[i16], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2).sqrt() / x.len() as f64
}

/// Offer/answer, then a tone through encoder → packetizer → parse → reorder (with one loss)
/// → decoder, for every codec.
#[test]
fn full_pipeline_per_codec() {
    for codec in [Codec::Pcmu, Codec::Pcma, Codec::Opus] {
        let prefs = CodecPreferences {
            codecs: vec![codec],
        };
        let caller: SocketAddr = "192.0.2.1:30000".parse().unwrap();
        let us: SocketAddr = "192.0.2.2:20000".parse().unwrap();
        let offer_text = sdp::offer(&prefs, caller, &mut SdpOrigin::new(1));
        let offer = SessionDescription::parse(offer_text.as_bytes()).unwrap();
        let (ours, answer_text) = sdp::answer(
            &offer,
            &CodecPreferences::default(),
            us,
            &mut SdpOrigin::new(2),
        )
        .unwrap();
        let answer = SessionDescription::parse(answer_text.as_bytes()).unwrap();
        let theirs = sdp::accept_answer(&prefs, &answer).unwrap();
        assert_eq!(ours.audio, theirs.audio);
        assert_eq!(ours.audio.codec, codec);
        assert_eq!(ours.remote, caller);
        assert_eq!(theirs.remote, us);

        let mut tone = ToneGenerator::new(600.0, -12.0, 16000);
        let mut encoder = AudioEncoder::new(&theirs.audio).unwrap();
        let mut packetizer = RtpPacketizer::new(theirs.audio.pt, 99);
        let mut decoder = AudioDecoder::new(&ours.audio).unwrap();
        let mut buffer = ReorderBuffer::new(Duration::from_millis(40));
        let t0 = Instant::now();
        let (mut frame, mut payload, mut packet, mut pcm) =
            ([0i16; 320], Vec::new(), Vec::new(), Vec::new());
        let mut losses = 0;
        for n in 0..100u64 {
            tone.fill(&mut frame);
            payload.clear();
            let advance = encoder.encode(&frame, &mut payload).unwrap();
            packetizer.write(&payload, n == 0, advance, &mut packet);
            let now = t0 + Duration::from_millis(20 * n);
            if n != 50 {
                let rtp = parse_rtp(&packet).unwrap();
                buffer.push(&rtp, now);
            }
            while let Some(r) = buffer.pop(now) {
                match r {
                    Released::Packet { payload, .. } => {
                        decoder.decode(payload, &mut pcm).unwrap();
                    }
                    Released::Lost {
                        duration_estimate, ..
                    } => {
                        losses += 1;
                        let samples = decoder.rtp_ts_to_16k(duration_estimate) as usize;
                        assert_eq!(samples, 320, "{codec}: one 20 ms frame lost");
                        decoder.conceal(samples, &mut pcm);
                    }
                }
            }
        }
        assert_eq!(losses, 1, "{codec}");
        assert_eq!(buffer.stats().lost, 1);
        // Everything but the last two frames (still inside the reorder delay window).
        assert!(pcm.len() >= 97 * 320, "{codec}: {}", pcm.len());
        let expected = 32767.0 * 10f64.powf(-12.0 / 20.0);
        let level = goertzel(&pcm[3200..9600], 600.0, 16000.0);
        assert!(
            (20.0 * (level / expected).log10()).abs() < 1.5,
            "{codec}: level {level} vs {expected}"
        );
    }
}

fn valid_sdp() -> &'static str {
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
     m=audio 4000 RTP/AVP 111 0 8 101\r\na=rtpmap:111 opus/48000/2\r\n\
     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
}

proptest! {
    #[test]
    fn parse_rtp_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = parse_rtp(&data) {
            prop_assert!(v.payload.len() + 12 <= data.len());
        }
        fuzzing::rtp(&data);
    }

    #[test]
    fn rtp_header_round_trip(pt in 0u8..128, seed in any::<u64>(), marker in any::<bool>(),
                             payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut p = RtpPacketizer::new(pt, seed);
        let (seq, ts, ssrc) = (p.seq, p.timestamp, p.ssrc);
        let mut out = Vec::new();
        p.write(&payload, marker, 160, &mut out);
        let v = parse_rtp(&out).unwrap();
        prop_assert_eq!((v.payload_type, v.marker, v.sequence, v.timestamp, v.ssrc),
                        (pt, marker, seq, ts, ssrc));
        prop_assert_eq!(v.payload, &payload[..]);
    }

    #[test]
    fn sdp_parse_never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::sdp(&data);
    }

    #[test]
    fn sdp_parse_never_panics_on_mutations(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut data = valid_sdp().as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        fuzzing::sdp(&data);
    }

    #[test]
    fn sdp_parse_never_panics_on_line_soup(
        lines in proptest::collection::vec(
            prop::sample::select(vec![
                "v=0", "o=- 1 1 IN IP4 1.2.3.4", "s=-", "c=IN IP4 0.0.0.0", "c=IN IP6 ::1",
                "t=0 0", "m=audio 1 RTP/AVP 0 8 101", "m=audio 0 RTP/AVP 0", "m=video 2 RTP/AVP 96",
                "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/48000", "a=sendonly",
                "a=inactive", "a=ptime:30", "a=rtpmap:96 opus/48000/2", "m=audio 3 RTP/SAVP 0",
                "b=AS:64", "a=fmtp:96 x", "", "x", "a=recvonly",
            ]),
            0..30)
    ) {
        fuzzing::sdp(lines.join("\r\n").as_bytes());
    }

    #[test]
    fn telephone_event_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
        match TelephoneEvent::parse(&data) {
            Ok(e) => prop_assert_eq!(&e.to_bytes()[..], &{
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[..4]);
                b[1] &= 0xbf; // the R bit is not kept
                b
            }[..]),
            Err(_) => prop_assert!(data.len() < 4),
        }
        fuzzing::telephone_event(&data);
    }

    #[test]
    fn rtcp_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = rtcp::parse_rtcp(&data);
        // Also with a plausible RTCP first header, so the rtcp crate's parsers are reached.
        let mut framed = vec![0x80 | (data.first().copied().unwrap_or(0) & 0x1f),
                              200 + data.get(1).copied().unwrap_or(0) % 8];
        let words = (data.len() / 4) as u16;
        framed.extend_from_slice(&words.to_be_bytes());
        framed.extend_from_slice(&data);
        fuzzing::rtcp(&framed);
    }

    #[test]
    fn opus_decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::opus_decode(&data);
    }

    /// Random arrival orders, duplicates, SSRC switches and times: no panic, payloads match
    /// their sequence numbers, and between restarts releases (packets and losses) are
    /// strictly consecutive.
    #[test]
    fn reorder_buffer_invariants(
        events in proptest::collection::vec((0u16..200, 0u32..2, 0u64..30), 1..300)
    ) {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(Duration::from_millis(60));
        let mut now = t0;
        let mut expected: Option<u16> = None;
        let mut released = 0u64;
        for (seq, ssrc, dt) in events {
            now += Duration::from_millis(dt);
            let payload = [seq as u8];
            let view = callmux_media::RtpView {
                payload_type: 0, marker: false, sequence: seq,
                timestamp: u32::from(seq) * 160, ssrc, csrc_count: 0,
                extension_profile: None, payload: &payload,
            };
            let outcome = b.push(&view, now);
            while let Some(r) = b.pop(now) {
                let s = match r {
                    Released::Packet { seq, payload, .. } => {
                        prop_assert_eq!(payload, &[seq as u8][..]);
                        released += 1;
                        seq
                    }
                    Released::Lost { seq, .. } => seq,
                };
                if outcome != PushOutcome::Restarted {
                    if let Some(e) = expected {
                        prop_assert_eq!(s, e);
                    }
                }
                expected = Some(s.wrapping_add(1));
            }
        }
        let st = b.stats();
        prop_assert!(released <= st.received);
        prop_assert!(b.held() as u64 <= st.received - released);
    }
}

/// Interop with the webrtc-rs `rtp` crate: what we write it reads, and what it writes (with
/// CSRCs, a header extension and padding) we read the same way.
#[test]
fn rtp_interop_with_webrtc_rs() {
    use rtp::header::Header;
    use rtp::packet::Packet;
    use webrtc_util::marshal::{Marshal, Unmarshal};

    let mut ours = RtpPacketizer::new(8, 5);
    let mut wire = Vec::new();
    ours.write(&[1, 2, 3, 4], true, 160, &mut wire);
    let theirs = Packet::unmarshal(&mut bytes::Bytes::copy_from_slice(&wire)).unwrap();
    assert_eq!(theirs.header.payload_type, 8);
    assert!(theirs.header.marker);
    assert_eq!(theirs.header.ssrc, ours.ssrc);
    assert_eq!(&theirs.payload[..], &[1, 2, 3, 4]);

    let mut header = Header {
        version: 2,
        padding: true,
        marker: false,
        payload_type: 111,
        sequence_number: 65535,
        timestamp: 0xdead_beef,
        ssrc: 0x0102_0304,
        csrc: vec![7, 8, 9],
        extension: true,
        extension_profile: 0xBEDE,
        ..Default::default()
    };
    header
        .set_extension(1, bytes::Bytes::from_static(&[0xAA, 0xBB]))
        .unwrap();
    let packet = Packet {
        header,
        payload: bytes::Bytes::from_static(&[9, 8, 7, 6, 5]),
    };
    let wire = packet.marshal().unwrap().to_vec();
    assert_eq!(
        wire.last(),
        Some(&3),
        "webrtc-rs padded the 5-byte payload with 3 bytes"
    );
    let v = parse_rtp(&wire).unwrap();
    assert_eq!(
        (
            v.payload_type,
            v.marker,
            v.sequence,
            v.timestamp,
            v.ssrc,
            v.csrc_count
        ),
        (111, false, 65535, 0xdead_beef, 0x0102_0304, 3)
    );
    assert_eq!(v.extension_profile, Some(0xBEDE));
    assert_eq!(v.payload, &[9, 8, 7, 6, 5]);
}
