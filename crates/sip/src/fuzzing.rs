//! Fuzz entry points. Each body lives here, in the library, so that API drift breaks the
//! build of the fuzz targets' callers rather than the targets silently rotting. None of them
//! may panic for any input; the cargo-fuzz targets just call them. (`endpoint_input` reads
//! `Instant::now()` once as its arbitrary starting point; nothing else in the crate does.)

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::auth::{authorize, Algorithm, Challenge, Credentials, NonceIssuer};
use crate::dialog::{Dialog, DialogId};
use crate::endpoint::{ConnectionId, Endpoint, EndpointConfig, Event, Peer, TransportKind};
use crate::framing::{Framed, StreamFramer};
use crate::message::Message;
use crate::method::Method;

/// Parses `data` as a message, exercises every typed accessor, and re-parses the
/// serialised form.
pub fn parse_message(data: &[u8]) {
    match Message::parse(data) {
        Ok(m) => {
            let h = m.headers();
            let _ = (h.vias(), h.from(), h.to(), h.cseq(), h.contacts());
            let _ = (h.record_routes(), h.routes(), h.expires(), h.max_forwards());
            let _ = Message::parse(&m.to_bytes());
            match &m {
                Message::Request(r) => {
                    let resp = r.make_response(200, "OK").with_to_tag("fuzz");
                    let _ = Message::parse(&resp.to_bytes());
                    let _ = DialogId::for_incoming(r);
                    if let Ok(mut d) = Dialog::uas(r, "fuzz", &r.uri) {
                        let _ = d.check_incoming(r);
                        let _ = d.create_request(Method::Bye).to_bytes();
                    }
                }
                Message::Response(r) => {
                    let _ = DialogId::for_response(r);
                }
            }
        }
        Err(e) => {
            let _ = (e.reason(), e.status_code(), e.response_context());
        }
    }
}

fn peer(transport: TransportKind) -> Peer {
    Peer {
        transport,
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5060),
        remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 40000),
        connection: transport.is_reliable().then_some(ConnectionId(1)),
    }
}

/// Feeds `data` to an endpoint as a UDP datagram and as TCP bytes, answers every request
/// it raises, and runs all timers to completion.
pub fn endpoint_input(data: &[u8]) {
    let mut ep = Endpoint::new(EndpointConfig::default(), 7);
    let now = Instant::now();
    ep.handle_input(now, peer(TransportKind::Udp), data);
    let mut framer = StreamFramer::with_max_size(ep.config().limits.max_message_size);
    framer.push(data);
    loop {
        match framer.pop() {
            Ok(Some(Framed::Message(m))) => ep.handle_input(now, peer(TransportKind::Tcp), &m),
            Ok(Some(Framed::Ping | Framed::Pong)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    while let Some(ev) = ep.poll_event() {
        if let Event::IncomingRequest { key, request, .. } = ev {
            let _ = ep.respond(now, &key, request.make_response(200, "OK"));
        }
    }
    // Everything the endpoint sends must itself parse.
    while let Some(t) = ep.poll_transmit() {
        let _ = Message::parse(&t.bytes);
    }
    let mut t = now;
    for _ in 0..200 {
        let Some(next) = ep.poll_timeout() else { break };
        t = next.max(t);
        ep.handle_timeout(t);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
    }
    ep.handle_timeout(t + Duration::from_secs(3600));
}

/// Pushes `data` through a stream framer in chunks whose sizes come from the data itself.
pub fn stream_framer(data: &[u8]) {
    let mut framer = StreamFramer::with_max_size(4096);
    let step = usize::from(data.first().copied().unwrap_or(1) % 17) + 1;
    for chunk in data.chunks(step) {
        framer.push(chunk);
        while let Ok(Some(f)) = framer.pop() {
            if let Framed::Message(m) = f {
                let _ = Message::parse(&m);
            }
        }
    }
}

/// Parses `data` as a digest challenge and as credentials, answers and verifies them.
pub fn digest_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(ch) = Challenge::parse(&text) {
        let _ = Challenge::parse(&ch.to_string());
        if let Ok(c) = authorize(&ch, "user", "pass", "INVITE", "sip:x", "cnonce", 1) {
            let _ = Credentials::parse(&c.to_string());
        }
    }
    if let Ok(c) = Credentials::parse(&text) {
        let _ = Credentials::parse(&c.to_string());
        let issuer = NonceIssuer::new(&c.realm, b"fuzz", Duration::from_secs(60), Algorithm::Md5);
        let _ = issuer.verify(
            &c,
            "INVITE",
            "pass",
            std::time::UNIX_EPOCH + Duration::from_secs(1_000_000),
        );
    }
}
