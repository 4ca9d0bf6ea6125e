//! Parsing a typical INVITE with SDP, and one endpoint transaction step (INVITE in, event
//! out, 200 OK answered and serialised).

use std::hint::black_box;
use std::time::Instant;

use callmux_sip::{Endpoint, EndpointConfig, Event, Message, Peer, TransportKind};
use criterion::{criterion_main, BatchSize, Criterion};

const INVITE: &[u8] = b"INVITE sip:callmux@192.0.2.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:callmux@192.0.2.1>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@198.51.100.7:5062>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, INFO\r\n\
Supported: replaces, timer\r\n\
User-Agent: bench/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 232\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 111 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

fn peer() -> Peer {
    Peer {
        transport: TransportKind::Udp,
        local: "192.0.2.1:5060".parse().expect("address"),
        remote: "198.51.100.7:40000".parse().expect("address"),
        connection: None,
    }
}

fn parse(c: &mut Criterion) {
    assert!(Message::parse(INVITE).is_ok());
    c.bench_function("parse INVITE with SDP", |b| {
        b.iter(|| Message::parse(black_box(INVITE)))
    });
}

fn transaction_step(c: &mut Criterion) {
    let now = Instant::now();
    c.bench_function("endpoint: INVITE in, 200 OK out", |b| {
        b.iter_batched(
            || Endpoint::new(EndpointConfig::default(), 1),
            |mut ep| {
                ep.handle_input(now, peer(), black_box(INVITE));
                if let Some(Event::IncomingRequest { key, request, .. }) = ep.poll_event() {
                    let ok = request.make_response(200, "OK");
                    ep.respond(now, &key, ok).expect("respond");
                }
                while let Some(t) = ep.poll_transmit() {
                    black_box(t);
                }
                ep
            },
            BatchSize::SmallInput,
        )
    });
}

#[allow(
    missing_docs,
    unreachable_pub,
    reason = "criterion_group! expands to an undocumented pub fn"
)]
mod group {
    use super::{parse, transaction_step};
    use criterion::criterion_group;
    criterion_group!(benches, parse, transaction_step);
}

criterion_main!(group::benches);
