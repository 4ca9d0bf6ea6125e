//! Stream framing feeding the endpoint, and properties over arbitrary chunking.

use callmux_sip::{Event, Framed, FramingError, StreamFramer};
use proptest::prelude::*;

use crate::harness::{req, tcp_peer, Harness};

fn stream_of(n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stream = Vec::new();
    let mut messages = Vec::new();
    for i in 0..n {
        if i % 2 == 0 {
            stream.extend_from_slice(b"\r\n\r\n");
        }
        let mut m = String::from_utf8(req(
            "MESSAGE",
            &format!("z9hG4bKm{i}"),
            i as u32 + 1,
            Some("t"),
            "",
        ))
        .unwrap()
        .replace("Content-Length: 0\r\n\r\n", "");
        let body = "x".repeat(i * 3);
        m.push_str(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        stream.extend_from_slice(m.as_bytes());
        messages.push(m.into_bytes());
    }
    (stream, messages)
}

fn frame(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, usize) {
    let mut f = StreamFramer::new();
    let mut out = Vec::new();
    let mut pings = 0;
    for c in chunks {
        f.push(c);
        while let Some(x) = f.pop().unwrap() {
            match x {
                Framed::Message(m) => out.push(m),
                Framed::Ping => pings += 1,
                Framed::Pong => {}
            }
        }
    }
    (out, pings)
}

#[test]
fn pipelined_messages_with_keepalives_reach_the_endpoint() {
    let (stream, messages) = stream_of(4);
    let (framed, pings) = frame(&[&stream]);
    assert_eq!(framed, messages);
    assert_eq!(pings, 2);
    let config = callmux_sip::EndpointConfig {
        allowed_methods: vec![callmux_sip::Method::Message],
        ..Default::default()
    };
    let mut h = Harness::with_config(config);
    for m in &framed {
        h.input(tcp_peer(), m);
    }
    let bodies: Vec<usize> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::IncomingRequest { request, .. } => request.body.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies, [0, 3, 6, 9]);
}

#[test]
fn stream_without_content_length_is_an_error() {
    let mut f = StreamFramer::new();
    f.push(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n");
    assert_eq!(f.pop(), Err(FramingError::MissingContentLength));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_chunking_gives_the_same_messages(cuts in proptest::collection::vec(0usize..2000, 0..12)) {
        let (stream, messages) = stream_of(5);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts {
            chunks.push(&stream[prev..c]);
            prev = c;
        }
        chunks.push(&stream[prev..]);
        let (framed, pings) = frame(&chunks);
        prop_assert_eq!(framed, messages);
        prop_assert_eq!(pings, 3);
    }
}
