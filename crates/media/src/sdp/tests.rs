use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;

const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 20000);

/// A session header plus the given media sections, CRLF-terminated.
fn sdp(media: &str) -> String {
    let mut s = String::from(
        "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n",
    );
    for line in media.lines() {
        s.push_str(line.trim());
        s.push_str("\r\n");
    }
    s
}

const G711_TE: &str = "m=audio 49170 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16";

fn answer_to(text: &str) -> Result<(Negotiated, String), NegotiationError> {
    let offer = SessionDescription::parse(text.as_bytes()).expect("offer parses");
    answer(
        &offer,
        &CodecPreferences::default(),
        LOCAL,
        &mut SdpOrigin::new(7),
    )
}

fn parse_err(text: &str) -> SdpError {
    SessionDescription::parse(text.as_bytes()).expect_err("must be rejected")
}

#[test]
fn answers_basic_g711_offer() {
    let (neg, text) = answer_to(&sdp(G711_TE)).unwrap();
    assert_eq!(neg.remote, "192.0.2.10:49170".parse().unwrap());
    assert_eq!(neg.audio, PayloadFormat::pcmu());
    assert_eq!(
        neg.telephone_event,
        Some(TelephoneEventFormat {
            pt: 101,
            clock_rate: 8000
        })
    );
    assert_eq!(neg.direction, Direction::SendRecv);
    assert_eq!(neg.ptime_ms, 20);
    let ans = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(ans.media.len(), 1);
    let m = &ans.media[0];
    assert_eq!((m.port, m.proto.as_str()), (20000, "RTP/AVP"));
    assert_eq!(m.payload_types, vec![0, 101]);
    assert_eq!(m.direction, Some(Direction::SendRecv));
    assert_eq!(ans.connection_for(0).unwrap().address, LOCAL.ip());
    assert_eq!(ans.origin.session_id, "7");
    assert!(
        text.starts_with("v=0\r\no=callmux 7 1 IN IP4 10.0.0.1\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n"));
}

#[test]
fn answer_follows_offer_order() {
    let (neg, _) = answer_to(&sdp("m=audio 4000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000")).unwrap();
    assert_eq!(neg.audio, PayloadFormat::pcma());
    assert_eq!(neg.telephone_event, None);
    // Static payload types without rtpmap, lowercase encoding names with rtpmap.
    let (neg, _) = answer_to(&sdp("m=audio 4000 RTP/AVP 18 0")).unwrap();
    assert_eq!(neg.audio, PayloadFormat::pcmu());
    let (neg, _) = answer_to(&sdp("m=audio 4000 RTP/AVP 97\r\na=rtpmap:97 pcma/8000")).unwrap();
    assert_eq!(neg.audio, PayloadFormat::new(Codec::Pcma, 97));
}

#[test]
fn opus_with_48k_telephone_event() {
    let offer = sdp("m=audio 4000 RTP/AVP 111 0 110 101
        a=rtpmap:111 opus/48000/2
        a=fmtp:111 useinbandfec=1
        a=rtpmap:110 telephone-event/48000
        a=rtpmap:101 telephone-event/8000
        a=ptime:40");
    let (neg, text) = answer_to(&offer).unwrap();
    assert_eq!(neg.audio, PayloadFormat::opus(111));
    assert_eq!(neg.audio.clock_rate, 48000);
    assert_eq!(
        neg.telephone_event,
        Some(TelephoneEventFormat {
            pt: 110,
            clock_rate: 48000
        })
    );
    assert_eq!(neg.ptime_ms, 40);
    assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"), "{text}");
    assert!(text.contains("a=fmtp:111 "), "{text}");
    assert!(
        text.contains("a=rtpmap:110 telephone-event/48000\r\n"),
        "{text}"
    );
    assert!(
        !text.contains(" 101"),
        "only one telephone-event answered: {text}"
    );

    // Opus with only an 8 kHz telephone-event keeps that one.
    let (neg, _) = answer_to(&sdp("m=audio 4000 RTP/AVP 96 101
        a=rtpmap:96 opus/48000
        a=rtpmap:101 telephone-event/8000"))
    .unwrap();
    assert_eq!(neg.audio, PayloadFormat::opus(96));
    assert_eq!(neg.telephone_event.map(|t| t.clock_rate), Some(8000));

    // Preferences without Opus fall through to G.711 and its 8 kHz telephone-event.
    let parsed = SessionDescription::parse(offer.as_bytes()).unwrap();
    let prefs = CodecPreferences {
        codecs: vec![Codec::Pcma, Codec::Pcmu],
    };
    let (neg, _) = answer(&parsed, &prefs, LOCAL, &mut SdpOrigin::new(1)).unwrap();
    assert_eq!(neg.audio, PayloadFormat::pcmu());
    assert_eq!(neg.telephone_event.map(|t| t.pt), Some(101));
}

#[test]
fn answers_hold() {
    let cases = [
        ("a=sendonly", "192.0.2.10", Direction::RecvOnly),
        ("a=recvonly", "192.0.2.10", Direction::SendOnly),
        ("a=inactive", "192.0.2.10", Direction::Inactive),
        ("a=sendrecv", "0.0.0.0", Direction::RecvOnly),
        ("a=recvonly", "0.0.0.0", Direction::Inactive),
    ];
    for (attr, addr, ours) in cases {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n{attr}\r\n"
        );
        let (neg, answer_text) = answer_to(&text).unwrap();
        assert_eq!(neg.direction, ours, "{attr} {addr}");
        assert!(
            answer_text.contains(&format!("a={}\r\n", ours.attribute())),
            "{attr} {addr}: {answer_text}"
        );
    }
    // Session-level direction applies; media level overrides it.
    let text = sdp("a=sendonly\r\nm=audio 4000 RTP/AVP 0");
    assert_eq!(answer_to(&text).unwrap().0.direction, Direction::RecvOnly);
    let text = sdp("a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv");
    assert_eq!(answer_to(&text).unwrap().0.direction, Direction::SendRecv);
}

#[test]
fn multiple_media_lines() {
    let offer = sdp("m=video 5000 RTP/AVP 96
        a=rtpmap:96 H264/90000
        m=audio 0 RTP/AVP 0
        m=audio 6000 RTP/AVP 8
        m=application 7000 UDP/BFCP *");
    let (neg, text) = answer_to(&offer).unwrap();
    assert_eq!(neg.remote.port(), 6000);
    assert_eq!(neg.audio, PayloadFormat::pcma());
    let ans = SessionDescription::parse(text.as_bytes()).unwrap();
    let summary: Vec<(&str, u16)> = ans
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("video", 0),
            ("audio", 0),
            ("audio", 20000),
            ("application", 0)
        ]
    );
    assert_eq!(ans.media[0].formats, vec!["96"]);
    assert_eq!(ans.media[3].formats, vec!["*"]);
}

#[test]
fn srtp_only_is_unsupported_but_best_effort_falls_back() {
    let err = answer_to(&sdp("m=audio 4000 RTP/SAVP 0")).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::UnsupportedTransport("RTP/SAVP".into())
    );
    let (neg, text) = answer_to(&sdp("m=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVP 0")).unwrap();
    assert_eq!(neg.remote.port(), 4002);
    assert!(text.contains("m=audio 0 RTP/SAVP 0\r\n"), "{text}");
}

#[test]
fn negotiation_errors() {
    assert_eq!(
        answer_to(&sdp(
            "m=audio 4000 RTP/AVP 18 96\r\na=rtpmap:96 G726-32/8000"
        ))
        .unwrap_err(),
        NegotiationError::NoCommonCodec
    );
    // PCMU at the wrong rate is not PCMU.
    assert_eq!(
        answer_to(&sdp("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000")).unwrap_err(),
        NegotiationError::NoCommonCodec
    );
    // telephone-event alone is no codec.
    assert_eq!(
        answer_to(&sdp(
            "m=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000"
        ))
        .unwrap_err(),
        NegotiationError::NoCommonCodec
    );
    assert_eq!(
        answer_to(&sdp("m=video 4000 RTP/AVP 96")).unwrap_err(),
        NegotiationError::NoAudioStream
    );
    assert_eq!(
        answer_to(&sdp("m=audio 0 RTP/AVP 0")).unwrap_err(),
        NegotiationError::NoAudioStream
    );
    // No m= line at all parses (RFC 4566 allows it) but cannot be answered.
    assert_eq!(
        answer_to(&sdp("")).unwrap_err(),
        NegotiationError::NoAudioStream
    );
    let no_c = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_eq!(
        answer_to(no_c).unwrap_err(),
        NegotiationError::Malformed(SdpError::MissingConnection { media_index: 0 })
    );
    // An empty preference list accepts nothing.
    let offer = SessionDescription::parse(sdp(G711_TE).as_bytes()).unwrap();
    let none = CodecPreferences { codecs: vec![] };
    assert_eq!(
        answer(&offer, &none, LOCAL, &mut SdpOrigin::new(1)).unwrap_err(),
        NegotiationError::NoCommonCodec
    );
}

#[test]
fn media_level_connection_and_ipv6() {
    let text = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 2001:db8::5\r\n";
    let (neg, _) = answer_to(text).unwrap();
    assert_eq!(neg.remote, "[2001:db8::5]:4000".parse().unwrap());
    let local6: SocketAddr = "[2001:db8::1]:30000".parse().unwrap();
    let offer = SessionDescription::parse(text.as_bytes()).unwrap();
    let (_, ans) = answer(
        &offer,
        &CodecPreferences::default(),
        local6,
        &mut SdpOrigin::new(1),
    )
    .unwrap();
    assert!(ans.contains("c=IN IP6 2001:db8::1\r\n"), "{ans}");
    assert!(ans.contains("m=audio 30000 "), "{ans}");
}

#[test]
fn origin_version_increments_only_on_change() {
    let offer = SessionDescription::parse(sdp(G711_TE).as_bytes()).unwrap();
    let hold =
        SessionDescription::parse(sdp(&format!("{G711_TE}\na=sendonly")).as_bytes()).unwrap();
    let prefs = CodecPreferences::default();
    let mut origin = SdpOrigin::new(u64::MAX);
    assert_eq!(origin.session_id(), i64::MAX as u64);
    let version_of = |text: &str| {
        SessionDescription::parse(text.as_bytes())
            .unwrap()
            .origin
            .session_version
    };
    let (_, a1) = answer(&offer, &prefs, LOCAL, &mut origin).unwrap();
    let (_, a2) = answer(&offer, &prefs, LOCAL, &mut origin).unwrap();
    let (_, a3) = answer(&hold, &prefs, LOCAL, &mut origin).unwrap();
    let (_, a4) = answer(&offer, &prefs, LOCAL, &mut origin).unwrap();
    assert_eq!(version_of(&a1), "1");
    assert_eq!(
        version_of(&a2),
        "1",
        "unchanged re-answer keeps the version"
    );
    assert_eq!(version_of(&a3), "2");
    assert_eq!(version_of(&a4), "3");
    assert_eq!(origin.version(), 3);
}

#[test]
fn offer_and_accept_answer() {
    let prefs = CodecPreferences::default();
    let mut origin = SdpOrigin::new(42);
    let text = offer(&prefs, LOCAL, &mut origin);
    let ours = SessionDescription::parse(text.as_bytes()).unwrap();
    let m = &ours.media[0];
    assert_eq!(m.payload_types, vec![0, 8, 111, 101, 110]);
    assert_eq!(m.port, 20000);
    assert_eq!(
        Codec::from_rtpmap(m.rtpmap(111).unwrap()),
        Some(Codec::Opus)
    );

    // The remote answers PCMA with telephone-event, on hold.
    let remote = sdp("m=audio 5004 RTP/AVP 8 101
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=recvonly");
    let ans = SessionDescription::parse(remote.as_bytes()).unwrap();
    let neg = accept_answer(&prefs, &ans).unwrap();
    assert_eq!(neg.audio, PayloadFormat::pcma());
    assert_eq!(neg.telephone_event.map(|t| t.pt), Some(101));
    assert_eq!(neg.direction, Direction::SendOnly);
    assert_eq!(neg.remote, "192.0.2.10:5004".parse().unwrap());

    // Our own offer answered by our own answerer round-trips.
    let (neg, back) = answer(
        &ours,
        &prefs,
        "10.0.0.2:30000".parse().unwrap(),
        &mut SdpOrigin::new(9),
    )
    .unwrap();
    assert_eq!(neg.audio, PayloadFormat::pcmu());
    let back = SessionDescription::parse(back.as_bytes()).unwrap();
    assert_eq!(
        accept_answer(&prefs, &back).unwrap().audio,
        PayloadFormat::pcmu()
    );

    // A rejected answer.
    let rejected = SessionDescription::parse(sdp("m=audio 0 RTP/AVP 0").as_bytes()).unwrap();
    assert_eq!(
        accept_answer(&prefs, &rejected),
        Err(NegotiationError::NoAudioStream)
    );

    // Hold offer.
    let hold = offer_with_direction(&prefs, LOCAL, &mut origin, Direction::SendOnly);
    assert!(hold.contains("a=sendonly\r\n"));
    assert!(
        hold.contains("o=callmux 42 2 "),
        "changed SDP bumps the version: {hold}"
    );
    let opus_less = offer(
        &CodecPreferences {
            codecs: vec![Codec::Pcma],
        },
        LOCAL,
        &mut origin,
    );
    assert!(
        opus_less.contains("m=audio 20000 RTP/AVP 8 101\r\n"),
        "{opus_less}"
    );
}

#[test]
fn lenient_where_harmless() {
    // LF line endings, no t=, blank trailing lines, ptime "20.0", unknown attributes.
    let text = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 0\na=ptime:20.0\na=x-foo:bar\na=rtcp-mux\n\n\n";
    let desc = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(desc.media[0].ptime, Some(20));
    assert_eq!(desc.media[0].attributes.len(), 2);
    assert_eq!(answer_to(text).unwrap().0.audio, PayloadFormat::pcmu());
    // Multicast c= with TTL parses.
    let m = sdp("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127");
    assert!(SessionDescription::parse(m.as_bytes()).is_ok());
}

// ---- malformed input: each must be a clean error naming the problem ----

#[test]
fn malformed_empty_and_encoding() {
    assert_eq!(parse_err(""), SdpError::Empty);
    assert_eq!(parse_err("\r\n\r\n"), SdpError::Empty);
    let mut bytes = sdp(G711_TE).into_bytes();
    bytes.extend_from_slice(b"s=\xff\xfe\r\n");
    assert!(matches!(
        SessionDescription::parse(&bytes),
        Err(SdpError::NotUtf8 { .. })
    ));
    let huge = format!("{}{}", sdp(G711_TE), "a=x\r\n".repeat(MAX_SDP_LEN / 5));
    assert!(matches!(parse_err(&huge), SdpError::TooLarge { .. }));
}

#[test]
fn malformed_version_and_syntax() {
    assert_eq!(
        parse_err("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n"),
        SdpError::MissingVersion { line: 1 }
    );
    assert_eq!(parse_err("v=1\r\n"), SdpError::MissingVersion { line: 1 });
    assert_eq!(parse_err("v = 0\r\n"), SdpError::Syntax { line: 1 });
    assert_eq!(parse_err(&sdp("garbage")), SdpError::Syntax { line: 6 });
    assert_eq!(parse_err(&sdp("=foo")), SdpError::Syntax { line: 6 });
    assert_eq!(parse_err(&sdp("A=foo")), SdpError::Syntax { line: 6 });
    assert_eq!(
        parse_err(&sdp("x=foo")),
        SdpError::UnknownType {
            line: 6,
            letter: 'x'
        }
    );
    assert!(matches!(
        parse_err(&sdp("v=0")),
        SdpError::Misplaced { letter: 'v', .. }
    ));
}

#[test]
fn malformed_session_lines() {
    assert_eq!(
        parse_err("v=0\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"),
        SdpError::Missing { letter: 'o' }
    );
    assert_eq!(
        parse_err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n"),
        SdpError::Missing { letter: 's' }
    );
    assert_eq!(
        parse_err("v=0\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n"),
        SdpError::Missing { letter: 'o' }
    );
    assert!(matches!(
        parse_err(&sdp("o=- 1 1 IN IP4 1.2.3.4")),
        SdpError::Misplaced { letter: 'o', .. }
    ));
    assert!(matches!(
        parse_err(&sdp("m=audio 1 RTP/AVP 0\r\nt=0 0")),
        SdpError::Misplaced { letter: 't', .. }
    ));
    for bad in [
        "o=- 1 1 IN IP4",
        "o=- abc 1 IN IP4 1.2.3.4",
        "o=- 1 -1 IN IP4 1.2.3.4",
        "o=- 1 1 XX IP4 1.2.3.4",
        "o=- 1 1 IN IPX 1.2.3.4",
        "o=- 1 1 IN IP4 1.2.3.4 extra",
    ] {
        let text = format!("v=0\r\n{bad}\r\ns=-\r\n");
        assert!(
            matches!(parse_err(&text), SdpError::BadOrigin { line: 2, .. }),
            "{bad}"
        );
    }
    assert_eq!(
        parse_err("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=now\r\n"),
        SdpError::BadTiming { line: 4 }
    );
}

#[test]
fn malformed_connection() {
    for bad in [
        "c=IN IP4 not-an-ip",
        "c=IN IP4 pbx.example.com",
        "c=IN IP4 2001:db8::1",
        "c=IN IP6 192.0.2.1",
        "c=IN IP4",
        "c=XX IP4 1.2.3.4",
        "c=IN IPX 1.2.3.4",
        "c=IN IP4 1.2.3.4 extra",
        "c=IN IP4 1.2.3.4/abc",
        "c=IN IP4 999.2.3.4",
    ] {
        let text = format!("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n{bad}\r\n");
        assert!(
            matches!(parse_err(&text), SdpError::BadConnection { line: 4, .. }),
            "{bad}"
        );
    }
    // Two c= lines in one section.
    assert!(matches!(
        parse_err(&sdp("c=IN IP4 1.2.3.4")),
        SdpError::Misplaced { letter: 'c', .. }
    ));
}

#[test]
fn malformed_media_lines() {
    for port in ["70000", "-1", "abc", "65536", "", "99999999999999999999"] {
        let text = sdp(&format!("m=audio {port} RTP/AVP 0"));
        let err = parse_err(&text);
        assert!(
            matches!(
                err,
                SdpError::PortOutOfRange { line: 6, .. } | SdpError::BadMedia { .. }
            ),
            "port {port:?}: {err:?}"
        );
    }
    assert!(matches!(
        parse_err(&sdp("m=audio 4000/0 RTP/AVP 0")),
        SdpError::BadMedia { .. }
    ));
    assert!(matches!(
        parse_err(&sdp("m=audio 4000 RTP/AVP")),
        SdpError::BadMedia { .. }
    ));
    assert!(matches!(
        parse_err(&sdp("m=audio")),
        SdpError::BadMedia { .. }
    ));
    assert!(matches!(
        parse_err(&sdp("m=audio 4000 RTP/AVP 128")),
        SdpError::BadPayloadType { .. }
    ));
    assert!(matches!(
        parse_err(&sdp("m=audio 4000 RTP/AVP 0 x")),
        SdpError::BadPayloadType { .. }
    ));
    assert!(matches!(
        parse_err(&sdp("m=audio 4000 RTP/AVP 0 0")),
        SdpError::BadPayloadType { .. }
    ));
    // Huge payload list.
    let list: Vec<String> = (0..300).map(|i| (i % 128).to_string()).collect();
    let text = sdp(&format!("m=audio 4000 RTP/AVP {}", list.join(" ")));
    assert!(matches!(
        parse_err(&text),
        SdpError::TooManyFormats { line: 6, max: 128 }
    ));
    let list: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    let text = sdp(&format!("m=application 4000 UDP/X {}", list.join(" ")));
    assert!(matches!(parse_err(&text), SdpError::TooManyFormats { .. }));
    // Too many m= sections.
    let many = "m=audio 0 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1);
    assert!(matches!(parse_err(&sdp(&many)), SdpError::TooMany { .. }));
}

#[test]
fn malformed_attributes() {
    for bad in [
        "a=rtpmap:0",
        "a=rtpmap:abc PCMU/8000",
        "a=rtpmap:0 PCMU",
        "a=rtpmap:0 PCMU/abc",
        "a=rtpmap:0 PCMU/0",
        "a=rtpmap:200 PCMU/8000",
        "a=rtpmap:0 PCMU/8000/0",
        "a=rtpmap:0 PCMU/8000/1/2",
        "a=rtpmap:0 /8000",
        "a=rtpmap:0 PCMU/99999999999",
        "a=fmtp:abc 0-16",
        "a=fmtp",
        "a=ptime:abc",
        "a=ptime:0",
        "a=ptime:20.5",
        "a=ptime",
        "a=sendonly:yes",
        "a=",
        "a=:value",
    ] {
        let text = sdp(&format!("m=audio 4000 RTP/AVP 0\r\n{bad}"));
        assert!(
            matches!(parse_err(&text), SdpError::BadAttribute { line: 7, .. }),
            "{bad}: {:?}",
            parse_err(&text)
        );
    }
    let text = sdp("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:0 PCMA/8000");
    assert!(matches!(parse_err(&text), SdpError::BadAttribute { .. }));
    let text = sdp("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\na=recvonly");
    assert!(matches!(parse_err(&text), SdpError::BadAttribute { .. }));
    let many = "a=x\r\n".repeat(300);
    let text = sdp(&format!("m=audio 4000 RTP/AVP 0\r\n{many}"));
    assert!(matches!(parse_err(&text), SdpError::TooMany { .. }));
}

#[test]
fn errors_read_well() {
    let err = parse_err(&sdp("m=audio 70000 RTP/AVP 0"));
    assert_eq!(
        err.to_string(),
        "line 6: m= port '70000' is out of range 0..=65535"
    );
    let err = parse_err(&sdp("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU"));
    assert_eq!(
        err.to_string(),
        "line 7: bad a=rtpmap: clock rate is not a positive number"
    );
}
