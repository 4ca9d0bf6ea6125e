//! Malformed input: a table of broken messages, each answered with an error response that
//! carries a Warning or dropped and counted, never a panic; plus properties over random and
//! mutated input.

use std::panic::{catch_unwind, AssertUnwindSafe};

use callmux_sip::{fuzzing, Event, Message};
use proptest::prelude::*;

use crate::harness::{addr, req, udp_peer, Harness};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// An error response with this status and a `Warning: 399 callmux "..."`.
    Answered(u16),
    /// Nothing sent; counted as malformed_dropped.
    Dropped,
    /// Nothing sent; counted as a keep-alive.
    KeepAlive,
    /// Not malformed after all: the application gets the request.
    Accepted,
}

fn valid() -> String {
    String::from_utf8(req("INVITE", "z9hG4bKbad", 1, None, "")).unwrap()
}

fn replace(from: &str, to: &str) -> Vec<u8> {
    let v = valid();
    assert!(v.contains(from), "{from:?} not in the template");
    v.replacen(from, to, 1).into_bytes()
}

fn without(line_prefix: &str) -> Vec<u8> {
    valid()
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with(line_prefix))
        .collect::<String>()
        .into_bytes()
}

/// Turns the DEL marker into a lone 0xff byte (invalid UTF-8).
fn latin1(bytes: Vec<u8>) -> Vec<u8> {
    bytes
        .into_iter()
        .map(|b| if b == 0x7f { 0xff } else { b })
        .collect()
}

fn cases() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    use Outcome::*;
    let v = valid();
    let with_body = |cl: &str, body: &str| {
        replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: {cl}\r\n\r\n{body}"),
        )
    };
    let mut binary = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..300 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        binary.push((x >> 16) as u8);
    }
    vec![
        ("empty datagram", Vec::new(), Dropped),
        ("only CRLFs", b"\r\n\r\n\r\n".to_vec(), KeepAlive),
        ("truncated after the headers we need", v.as_bytes()[..v.find("Contact").unwrap() + 10].to_vec(), Answered(400)),
        ("truncated inside the Via", v.as_bytes()[..40].to_vec(), Dropped),
        ("no Via", without("Via:"), Dropped),
        ("no From", without("From:"), Dropped),
        ("no To", without("To:"), Dropped),
        ("no Call-ID", without("Call-ID:"), Dropped),
        ("no CSeq", without("CSeq:"), Dropped),
        ("non-numeric CSeq", replace("CSeq: 1 INVITE", "CSeq: abc INVITE"), Answered(400)),
        ("CSeq over 32 bits", replace("CSeq: 1 INVITE", "CSeq: 99999999999 INVITE"), Answered(400)),
        ("CSeq without method", replace("CSeq: 1 INVITE", "CSeq: 1"), Answered(400)),
        ("CSeq method mismatch", replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), Answered(400)),
        ("Content-Length larger than the datagram", with_body("50", "v=0\r\n"), Answered(400)),
        ("Content-Length smaller than the body (truncated, accepted)", with_body("3", "v=0\r\n"), Accepted),
        ("Content-Length not a number", with_body("five", ""), Answered(400)),
        ("Content-Length negative", with_body("-1", ""), Answered(400)),
        ("two different Content-Lengths", replace("Content-Length: 0", "Content-Length: 0\r\nl: 4"), Answered(400)),
        ("header line over 8 KiB", replace("Contact:", &format!("X-Big: {}\r\nContact:", "a".repeat(9000))), Answered(400)),
        ("message over 64 KiB", with_body("70000", &"b".repeat(70000)), Answered(513)),
        ("binary junk", binary, Dropped),
        ("NUL byte in a header", replace("Contact: <sip:alice", "Contact: <sip:al\0ice"), Answered(400)),
        ("non-UTF-8 Contact", latin1(replace("<sip:alice@198", "\"Al\u{7f}ice\" <sip:alice@198")), Answered(400)),
        ("non-UTF-8 From (cannot be echoed)", latin1(replace("\"Alice\"", "\"Al\u{7f}ice\"")), Dropped),
        ("bare CR inside a header", replace("Contact: <sip:", "Contact: \r<sip:"), Answered(400)),
        ("request line with extra token", replace("SIP/2.0\r\n", "SIP/2.0 extra\r\n"), Answered(400)),
        ("request line with two spaces", replace("INVITE sip:", "INVITE  sip:"), Answered(400)),
        ("request line without version", replace(" SIP/2.0\r\nVia", "\r\nVia"), Answered(400)),
        ("bad method token", replace("INVITE sip:", "INV@TE sip:"), Answered(400)),
        ("SIP version 3.0", replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"), Answered(505)),
        ("not SIP at all", replace("SIP/2.0\r\nVia", "HTTP/1.1\r\nVia"), Answered(400)),
        ("Request-URI without host", replace("INVITE sip:callmux@192.0.2.1", "INVITE sip:"), Answered(400)),
        ("Request-URI port out of range", replace("INVITE sip:callmux@192.0.2.1", "INVITE sip:callmux@192.0.2.1:99999"), Answered(400)),
        ("Request-URI with bad escape", replace("INVITE sip:callmux@", "INVITE sip:call%zzmux@"), Answered(400)),
        ("Request-URI IPv6 unterminated", replace("INVITE sip:callmux@192.0.2.1", "INVITE sip:[2001:db8::1"), Answered(400)),
        ("top Via without sent-by", replace("SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKbad;rport", "SIP/2.0/UDP"), Dropped),
        ("top Via with bad rport", replace(";rport", ";rport=abc"), Dropped),
        ("From unterminated", replace("<sip:alice@example.com>", "<sip:alice@example.com"), Answered(400)),
        ("To with junk after >", replace("To: <sip:callmux@192.0.2.1>", "To: <sip:callmux@192.0.2.1> junk"), Answered(400)),
        ("two From headers", replace("Call-ID:", "From: <sip:eve@example.com>;tag=2\r\nCall-ID:"), Answered(400)),
        ("two Call-IDs", replace("CSeq:", "Call-ID: other\r\nCSeq:"), Answered(400)),
        ("header without colon", replace("Contact:", "NoColonHere\r\nContact:"), Answered(400)),
        ("header name with a space", replace("Contact:", "Bad Name: x\r\nContact:"), Answered(400)),
        ("continuation before any header", replace("SIP/2.0\r\nVia", "SIP/2.0\r\n folded\r\nVia"), Answered(400)),
        ("Max-Forwards not a number", replace("Max-Forwards: 70", "Max-Forwards: many"), Answered(400)),
        ("malformed response", b"SIP/2.0 99 Odd\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n".to_vec(), Dropped),
        ("response missing Call-ID", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCSeq: 1 INVITE\r\n\r\n".to_vec(), Dropped),
        ("malformed ACK is never answered", String::from_utf8(req("ACK", "z9hG4bKa", 1, Some("t"), "")).unwrap().replace("CSeq: 1 ACK", "CSeq: x ACK").into_bytes(), Dropped),
        ("request line only", b"INVITE sip:a@b SIP/2.0\r\n\r\n".to_vec(), Dropped),
        ("headers only, no start line", v.as_bytes()[v.find("Via").unwrap()..].to_vec(), Dropped),
    ]
}

fn raw_header(text: &str, name: &str) -> Option<String> {
    text.split("\r\n")
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .map(str::to_owned)
}

#[test]
fn malformed_table() {
    let table = cases();
    assert!(table.len() >= 25);
    for (name, bytes, expected) in table {
        let mut h = Harness::new();
        let result = catch_unwind(AssertUnwindSafe(|| h.input(udp_peer(), &bytes)));
        assert!(result.is_ok(), "{name}: panicked");
        let stats = h.ep.stats();
        let events = h.take_events();
        match expected {
            Outcome::Answered(status) => {
                assert_eq!(h.sent.len(), 1, "{name}: one response expected");
                let t = &h.sent[0].1;
                assert_eq!(
                    t.peer.remote,
                    addr("198.51.100.7:40000"),
                    "{name}: routed by rport"
                );
                // Raw header values are echoed as received, so the reply may not parse
                // strictly (e.g. a bad CSeq); check it as text.
                let text = String::from_utf8(t.bytes.clone()).expect("replies are UTF-8");
                assert!(
                    text.starts_with(&format!("SIP/2.0 {status} ")),
                    "{name}: {text}"
                );
                let warning = raw_header(&text, "Warning").unwrap_or_default();
                assert!(warning.starts_with("399 callmux \""), "{name}: {warning}");
                assert!(
                    raw_header(&text, "To").is_some_and(|t| t.contains(";tag=")),
                    "{name}: To tag"
                );
                assert_eq!(
                    raw_header(&text, "Call-ID").as_deref(),
                    Some("call-1@example.com"),
                    "{name}"
                );
                assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{name}");
                if let Ok(Message::Response(r)) = Message::parse(&t.bytes) {
                    assert_eq!(r.status, status, "{name}");
                }
                assert_eq!(stats.malformed_answered, 1, "{name}");
                assert!(
                    matches!(&events[..], [Event::Malformed { answered: true, reason, .. }] if warning.contains(reason.as_str())),
                    "{name}: {events:?}"
                );
            }
            Outcome::Dropped => {
                assert!(
                    h.sent.is_empty(),
                    "{name}: nothing may be sent, got {:?}",
                    h.sent
                );
                assert_eq!(stats.malformed_dropped, 1, "{name}");
                assert!(
                    matches!(
                        &events[..],
                        [Event::Malformed {
                            answered: false,
                            ..
                        }]
                    ),
                    "{name}: {events:?}"
                );
            }
            Outcome::KeepAlive => {
                assert!(h.sent.is_empty() && events.is_empty(), "{name}");
                assert_eq!(stats.keepalives, 1, "{name}");
            }
            Outcome::Accepted => {
                assert!(
                    matches!(&events[..], [Event::IncomingRequest { .. }]),
                    "{name}: {events:?}"
                );
            }
        }
    }
}

#[test]
fn shorter_content_length_truncates_the_body() {
    let bytes = replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Length: 3\r\n\r\nv=0\r\n",
    );
    let Message::Request(r) = Message::parse(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(r.body, b"v=0");
}

#[test]
fn fuzz_entry_points_survive_the_table() {
    for (_, bytes, _) in cases() {
        fuzzing::parse_message(&bytes);
        fuzzing::endpoint_input(&bytes);
        fuzzing::stream_framer(&bytes);
        fuzzing::digest_header(&bytes);
    }
    fuzzing::endpoint_input(&valid().into_bytes());
    fuzzing::digest_header(br#"Digest realm="r", nonce="n", qop="auth""#);
    fuzzing::digest_header(
        br#"Digest username="u", realm="r", nonce="1.x", uri="sip:x", response="00""#,
    );
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            proptest::collection::vec(
                prop_oneof![
                    Just(b'\r'),
                    Just(b'\n'),
                    Just(b':'),
                    Just(b';'),
                    Just(b','),
                    Just(b'<'),
                    Just(b'"'),
                    Just(0u8),
                    any::<u8>()
                ],
                1..8
            )
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 0usize..200).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = data.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !data.is_empty() {
                    data[i % len] = *b;
                }
            }
            Mutation::Delete(i, n) => {
                let start = (i % len).min(data.len());
                let end = (start + n).min(data.len());
                data.drain(start..end);
            }
            Mutation::Insert(i, v) => {
                let at = (i % len).min(data.len());
                data.splice(at..at, v.iter().copied());
            }
            Mutation::Duplicate(i, n) => {
                let start = (i % len).min(data.len());
                let end = (start + n).min(data.len());
                let copy = data[start..end].to_vec();
                data.splice(end..end, copy);
            }
            Mutation::Truncate(i) => data.truncate(i % len),
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::parse_message(&data);
        fuzzing::endpoint_input(&data);
        fuzzing::stream_framer(&data);
        fuzzing::digest_header(&data);
    }

    #[test]
    fn mutated_valid_messages_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let bodyful = replace("Content-Length: 0\r\n\r\n", "Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n");
        for base in [valid().into_bytes(), bodyful] {
            let data = apply(base, &mutations);
            fuzzing::parse_message(&data);
            fuzzing::endpoint_input(&data);
            fuzzing::stream_framer(&data);
        }
    }

    #[test]
    fn mutated_digest_headers_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let base = br#"Digest username="bob", realm="biloxi.com", nonce="5f5e100.abc", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae4", opaque="5ccc", algorithm=SHA-256"#.to_vec();
        fuzzing::digest_header(&apply(base, &mutations));
    }
}
