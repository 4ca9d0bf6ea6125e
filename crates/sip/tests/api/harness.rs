//! Test harness: one endpoint on a simulated clock, a back-to-back pair, message builders.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callmux_sip::{
    ConnectionId, Endpoint, EndpointConfig, Event, Message, Peer, Request, Response, Transmit,
    TransportKind,
};

pub(crate) const SEED: u64 = 42;

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// The far end as the server sees it: Via says 5062, NAT maps it to 40000.
pub(crate) fn udp_peer() -> Peer {
    Peer {
        transport: TransportKind::Udp,
        local: addr("192.0.2.1:5060"),
        remote: addr("198.51.100.7:40000"),
        connection: None,
    }
}

pub(crate) fn tcp_peer() -> Peer {
    Peer {
        transport: TransportKind::Tcp,
        local: addr("192.0.2.1:5060"),
        remote: addr("198.51.100.7:40001"),
        connection: Some(ConnectionId(7)),
    }
}

/// Raw request text from a UAC at 198.51.100.7 (Via sent-by port 5062, rport requested).
pub(crate) fn req(
    method: &str,
    branch: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
) -> Vec<u8> {
    req_with_cseq_method(method, method, branch, cseq, to_tag, extra)
}

pub(crate) fn req_with_cseq_method(
    method: &str,
    cseq_method: &str,
    branch: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:callmux@192.0.2.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5062;branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=ft\r\n\
         To: <sip:callmux@192.0.2.1>{to_tag}\r\n\
         Call-ID: call-1@example.com\r\n\
         CSeq: {cseq} {cseq_method}\r\n\
         Contact: <sip:alice@198.51.100.7:5062>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub(crate) fn parse_request(bytes: &[u8]) -> Request {
    match Message::parse(bytes).expect("endpoint output parses") {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

pub(crate) fn parse_response(bytes: &[u8]) -> Response {
    match Message::parse(bytes).expect("endpoint output parses") {
        Message::Response(r) => r,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// A single endpoint on simulated time.
pub(crate) struct Harness {
    pub(crate) ep: Endpoint,
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    pub(crate) sent: Vec<(Duration, Transmit)>,
    pub(crate) events: Vec<Event>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_config(EndpointConfig::default())
    }

    pub(crate) fn with_config(config: EndpointConfig) -> Self {
        let start = Instant::now();
        Self {
            ep: Endpoint::new(config, SEED),
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Collects transmits and events queued by direct calls on `ep`.
    pub(crate) fn drain(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            self.sent.push((self.now - self.start, t));
        }
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
    }

    pub(crate) fn input(&mut self, peer: Peer, bytes: &[u8]) {
        self.ep.handle_input(self.now, peer, bytes);
        self.drain();
    }

    /// The application's answer, sent now.
    pub(crate) fn respond(
        &mut self,
        key: &callmux_sip::ServerTxKey,
        response: Response,
    ) -> Result<(), callmux_sip::EndpointError> {
        let r = self.ep.respond(self.now, key, response);
        self.drain();
        r
    }

    /// Fires every deadline up to `at` (in order), then sets the clock to `at`.
    pub(crate) fn advance_to(&mut self, at: Instant) {
        while let Some(d) = self.ep.poll_timeout() {
            if d > at {
                break;
            }
            self.now = self.now.max(d);
            self.ep.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(at);
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    pub(crate) fn take_sent(&mut self) -> Vec<(Duration, Transmit)> {
        std::mem::take(&mut self.sent)
    }

    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Status codes of everything sent so far that is a response.
    pub(crate) fn sent_statuses(&self) -> Vec<u16> {
        self.sent
            .iter()
            .filter_map(|(_, t)| match Message::parse(&t.bytes) {
                Ok(Message::Response(r)) => Some(r.status),
                _ => None,
            })
            .collect()
    }

    /// The single IncomingRequest event (panics otherwise).
    pub(crate) fn expect_request(&mut self) -> (callmux_sip::ServerTxKey, Request) {
        let mut events = self.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        match events.pop() {
            Some(Event::IncomingRequest { key, request, .. }) => (key, request),
            other => panic!("expected IncomingRequest, got {other:?}"),
        }
    }
}

/// A fresh harness that has received INVITE (branch `z9hG4bKinv1`, CSeq 1) from `peer`
/// and raised it as the single IncomingRequest: (harness, its key, the INVITE).
pub(crate) fn invited(peer: Peer) -> (Harness, callmux_sip::ServerTxKey, Request) {
    let mut h = Harness::new();
    h.input(peer, &req("INVITE", "z9hG4bKinv1", 1, None, ""));
    let (key, invite) = h.expect_request();
    (h, key, invite)
}

/// Decides whether a message in flight is lost (`true` = it travels from a to b).
pub(crate) type DropFilter = Box<dyn FnMut(bool, &Transmit) -> bool>;

/// Two endpoints wired back to back. `a` is at 10.0.0.1:5060, `b` at 10.0.0.2:5060.
pub(crate) struct Pair {
    pub(crate) a: Endpoint,
    pub(crate) b: Endpoint,
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    pub(crate) a_events: Vec<Event>,
    pub(crate) b_events: Vec<Event>,
    pub(crate) transport: TransportKind,
    /// Return true to drop a message in flight (`true` = from a to b).
    pub(crate) drop: DropFilter,
    /// (time, from a?, first line) of every message delivered or dropped.
    pub(crate) log: Vec<(Duration, bool, String, bool)>,
    pending: Vec<(bool, Transmit)>,
}

impl Pair {
    pub(crate) fn new(transport: TransportKind) -> Self {
        let start = Instant::now();
        Self {
            a: Endpoint::new(EndpointConfig::default(), 1),
            b: Endpoint::new(EndpointConfig::default(), 2),
            start,
            now: start,
            a_events: Vec::new(),
            b_events: Vec::new(),
            transport,
            drop: Box::new(|_, _| false),
            log: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Peer as seen from a, pointing at b.
    pub(crate) fn a_to_b(&self) -> Peer {
        Peer {
            transport: self.transport,
            local: addr("10.0.0.1:5060"),
            remote: addr("10.0.0.2:5060"),
            connection: self.transport.is_reliable().then_some(ConnectionId(1)),
        }
    }

    /// Peer as seen from b, pointing at a.
    pub(crate) fn b_to_a(&self) -> Peer {
        Peer {
            transport: self.transport,
            local: addr("10.0.0.2:5060"),
            remote: addr("10.0.0.1:5060"),
            connection: self.transport.is_reliable().then_some(ConnectionId(1)),
        }
    }

    fn collect(&mut self) {
        while let Some(t) = self.a.poll_transmit() {
            self.pending.push((true, t));
        }
        while let Some(t) = self.b.poll_transmit() {
            self.pending.push((false, t));
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    /// Delivers everything in flight; true if anything moved.
    pub(crate) fn step(&mut self) -> bool {
        self.collect();
        if self.pending.is_empty() {
            return false;
        }
        for (from_a, t) in std::mem::take(&mut self.pending) {
            let line = String::from_utf8_lossy(&t.bytes)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let dropped = (self.drop)(from_a, &t);
            self.log
                .push((self.now - self.start, from_a, line, dropped));
            if dropped {
                continue;
            }
            if from_a {
                assert_eq!(t.peer.remote, addr("10.0.0.2:5060"), "a sends to b");
                let p = self.b_to_a();
                self.b.handle_input(self.now, p, &t.bytes);
            } else {
                assert_eq!(t.peer.remote, addr("10.0.0.1:5060"), "b sends to a");
                let p = self.a_to_b();
                self.a.handle_input(self.now, p, &t.bytes);
            }
        }
        self.collect();
        true
    }

    /// Delivers what is in flight, or else jumps to the next deadline. False when idle.
    pub(crate) fn progress(&mut self) -> bool {
        if self.step() {
            return true;
        }
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.collect();
        true
    }

    /// Runs until idle or until `limit` of simulated time (from the start) has passed.
    pub(crate) fn drive_for(&mut self, limit: Duration) {
        let end = self.start + limit;
        for _ in 0..100_000 {
            if self.step() {
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(n) if n <= end => {
                    self.progress();
                }
                _ => return,
            }
        }
    }

    /// Delivers messages in flight until nothing moves (no time passes).
    pub(crate) fn settle(&mut self) {
        for _ in 0..1000 {
            if !self.step() {
                return;
            }
        }
        panic!("messages keep flowing without time passing");
    }
}
