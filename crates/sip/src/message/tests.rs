use super::*;
use crate::headers::Headers;

pub(crate) const INVITE: &[u8] = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport\r\n\
v: SIP/2.0/TCP proxy.example:5070;branch=z9hG4bKp1, SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKp2\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
f: \"Alice A\" <sip:alice@atlanta.com>;tag=1928301774\r\n\
i: a84b4c76e66710@pc33.atlanta.com\r\n\
cseq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Subject: folded\r\n \t continuation\r\n\
X-Unknown: kept\r\n\
c: application/sdp\r\n\
l: 10\r\n\
\r\n\
v=0\r\no=- x";

#[test]
fn parses_compact_folded_multi_via_and_truncates_body() {
    let Message::Request(r) = Message::parse(INVITE).unwrap() else {
        panic!("expected a request")
    };
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.to_string(), "sip:bob@biloxi.com");
    assert_eq!(r.vias().unwrap().len(), 3);
    assert_eq!(r.headers.get("Subject"), Some("folded continuation"));
    assert_eq!(r.headers.get("x-unknown"), Some("kept"));
    assert_eq!(r.from().unwrap().display.as_deref(), Some("Alice A"));
    assert_eq!(r.cseq().unwrap().seq, 314159);
    assert_eq!(r.content_type(), Some("application/sdp"));
    assert_eq!(r.body, b"v=0\r\no=- x"[..10].to_vec());
}

#[test]
fn serialise_round_trip() {
    let m = Message::parse(INVITE).unwrap();
    let bytes = m.to_bytes();
    let again = Message::parse(&bytes).unwrap();
    assert_eq!(m, again);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\r\nl: 10\r\n"));
    assert!(text.ends_with("\r\n\r\nv=0\r\no=- x"));
    assert!(!text.contains("Content-Length"));
    let mut r = Request::new(Method::Bye, Uri::parse("sip:x").unwrap());
    r.headers.push("Content-Length", "99");
    r.headers.push("l", "98");
    r.body = b"abc".to_vec();
    let text = String::from_utf8(r.to_bytes()).unwrap();
    assert_eq!(text, "BYE sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc");
}

#[test]
fn response_parse_and_builders() {
    let Message::Request(r) = Message::parse(INVITE).unwrap() else {
        panic!()
    };
    let mut resp = r.make_response(200, "OK").with_to_tag("abc");
    resp.set_body("application/sdp", b"v=0\r\n".to_vec());
    assert_eq!(resp.to().unwrap().tag(), Some("abc"));
    assert_eq!(resp.vias().unwrap().len(), 3);
    assert_eq!(resp.call_id(), r.call_id());
    // a second tag is never added
    let resp = resp.with_to_tag("other");
    assert_eq!(resp.to().unwrap().tag(), Some("abc"));
    let Message::Response(back) = Message::parse(&resp.to_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(back.status, 200);
    assert_eq!(back.reason, "OK");
    assert_eq!(back.body, b"v=0\r\n");
    assert!(back.is_success() && !back.is_provisional());
    assert!(!back.headers.contains("Contact"));
}

#[test]
fn record_route_copied_only_for_dialog_creating_answers() {
    let mut r = Request::new(Method::Invite, Uri::parse("sip:x@y").unwrap());
    r.headers = Headers::new();
    r.headers.push("Via", "SIP/2.0/UDP h;branch=z9hG4bK1");
    r.headers.push("Record-Route", "<sip:p;lr>");
    r.headers.push("Timestamp", "54");
    assert!(r
        .make_response(180, "Ringing")
        .headers
        .contains("Record-Route"));
    assert!(!r
        .make_response(486, "Busy")
        .headers
        .contains("Record-Route"));
    assert!(r.make_response(100, "Trying").headers.contains("Timestamp"));
    r.method = Method::Bye;
    assert!(!r.make_response(200, "OK").headers.contains("Record-Route"));
}

#[test]
fn lenient_about_bare_lf_leading_crlf_and_missing_max_forwards() {
    let m = b"\r\n\r\nOPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:x>\nCall-ID: c\nCSeq: 2 OPTIONS\n\n";
    let Message::Request(r) = Message::parse(m).unwrap() else {
        panic!()
    };
    assert_eq!(r.max_forwards().unwrap(), None);
    assert!(r.body.is_empty());
}

fn kind(bytes: &[u8]) -> ParseErrorKind {
    Message::parse(bytes).unwrap_err().kind().clone()
}

const HEAD: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\n";

#[test]
fn error_kinds() {
    let msg = |start: &str, extra: &str| format!("{start}\r\n{HEAD}{extra}\r\n").into_bytes();
    assert_eq!(kind(b""), ParseErrorKind::Empty);
    assert_eq!(kind(b"\r\n\r\n"), ParseErrorKind::Empty);
    assert_eq!(
        kind(&msg("BYE sip:x@y SIP/2.0", "CSeq: 1 INVITE\r\n")),
        ParseErrorKind::CSeqMethodMismatch {
            method: "BYE".into(),
            cseq: "INVITE".into()
        }
    );
    assert!(matches!(
        kind(&msg(
            "BYE sip:x@y SIP/2.0",
            "CSeq: 1 BYE\r\nContent-Length: 5\r\n"
        )),
        ParseErrorKind::ContentLengthTooLarge {
            declared: 5,
            available: 0
        }
    ));
    assert!(matches!(
        kind(&msg("BYE sip:x@y SIP/3.0", "CSeq: 1 BYE\r\n")),
        ParseErrorKind::VersionNotSupported(_)
    ));
    assert!(matches!(
        kind(&msg("BYE  sip:x@y SIP/2.0", "CSeq: 1 BYE\r\n")),
        ParseErrorKind::BadStartLine(_)
    ));
    assert!(matches!(
        kind(&msg("BYE sip:x@y SIP/2.0", "CSeq: 1 BYE\r\nCall-ID: d\r\n")),
        ParseErrorKind::DuplicateHeader("Call-ID")
    ));
    assert!(matches!(
        kind(&msg("SIP/2.0 2000 OK", "CSeq: 1 BYE\r\n")),
        ParseErrorKind::BadStartLine(_)
    ));
    let big = format!("X: {}\r\n", "a".repeat(9000));
    assert!(matches!(
        kind(&msg(
            "BYE sip:x@y SIP/2.0",
            &format!("CSeq: 1 BYE\r\n{big}")
        )),
        ParseErrorKind::HeaderLineTooLong { .. }
    ));
    let e = Message::parse(&msg("BYE sip:x@y SIP/2.0", "CSeq: x BYE\r\n")).unwrap_err();
    assert!(e.reason().contains("CSeq"), "{}", e.reason());
    assert!(e.response_context().is_some());
}

/// RFC 4475 §3.1.1.2 (intmeth): NUL, BEL and DEL are valid as quoted-pairs in a display name;
/// the same bytes anywhere else in the header section are still refused.
#[test]
fn control_characters_only_as_quoted_pairs() {
    let with_to = |to: &str| {
        format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\n\
             To: {to}\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n"
        )
        .into_bytes()
    };
    let Message::Request(r) =
        Message::parse(&with_to("\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:x@y>")).unwrap()
    else {
        panic!("expected a request")
    };
    assert_eq!(
        r.to().unwrap().display.as_deref(),
        Some("BEL:\x07 NUL:\x00 DEL:\x7f")
    );
    for bad in [
        "<sip:x\x00@y>",
        "\"NUL:\x00\" <sip:x@y>",
        "\\\x00 <sip:x@y>",
        "\"a\" \\\x00 <sip:x@y>",
    ] {
        assert_eq!(
            kind(&with_to(bad)),
            ParseErrorKind::ControlCharacter,
            "{bad:?}"
        );
    }
}
