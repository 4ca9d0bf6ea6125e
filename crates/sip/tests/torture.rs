//! RFC 4475, the SIP torture test messages, through the [`Endpoint`].
//!
//! Each message is the exact file of the RFC's Appendix A archive (`tests/rfc4475/*.dat`,
//! checked against `SHA256SUMS` so that an editor or a git setting that rewrites CRLFs fails
//! here). One table holds, per message, what the RFC asks of a user agent and what callmux
//! does, and the test feeds every message to an endpoint twice: as one UDP datagram, and as
//! TCP bytes cut by a [`StreamFramer`] (which is how the server reads streams). Where callmux
//! deliberately answers differently from the RFC's suggestion, the row says so and why.
//!
//! The endpoint plays a user agent server; the "application" in these tests answers each
//! request it is given the way `crates/server` would (200, or 488 for an INVITE without an
//! SDP offer).

use std::time::{Duration, Instant};

use callmux_sip::{
    default_reason, ConnectionId, Endpoint, EndpointConfig, Event, Framed, Message, Method, Peer,
    StreamFramer, Transmit, TransportKind,
};
use sha2::{Digest, Sha256};

/// The bytes of `tests/rfc4475/<name>.dat`.
macro_rules! dat {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!("../../../tests/rfc4475/", $name, ".dat")) as &'static [u8],
        )
    };
}

/// What the endpoint does with a message that arrives as one datagram (or one framed
/// stream message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Parsed and raised as `IncomingRequest` for this method; the application answers with
    /// the status given, and exactly that response goes out.
    App(&'static str, u16),
    /// Parsed and answered by the endpoint itself with this status; the application sees
    /// nothing.
    Auto(u16),
    /// Refused as malformed with this status and a `Warning: 399 callmux "..."`.
    Reject(u16),
    /// Refused as malformed and dropped: nothing can be routed or built, nothing is sent.
    Drop,
    /// A well-formed response that answers no transaction of ours: discarded silently.
    Stray,
}

/// What a [`StreamFramer`] makes of the same bytes on a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// One message: the whole file.
    Whole,
    /// One message of this many bytes; the rest waits to be the next message.
    First(usize),
    /// No message yet: it waits for more bytes (and the server's idle timeout closes the
    /// connection if none come).
    Waits,
    /// A framing error: the server closes the connection.
    Close,
}

struct Case {
    file: &'static str,
    section: &'static str,
    bytes: &'static [u8],
    expect: Expect,
    stream: Stream,
    /// Further checks on what was parsed and sent.
    check: Option<fn(&Run)>,
}

fn case(
    (file, bytes): (&'static str, &'static [u8]),
    section: &'static str,
    expect: Expect,
    stream: Stream,
) -> Case {
    Case {
        file,
        section,
        bytes,
        expect,
        stream,
        check: None,
    }
}

impl Case {
    fn check(mut self, f: fn(&Run)) -> Self {
        self.check = Some(f);
        self
    }
}

#[rustfmt::skip]
fn table() -> Vec<Case> {
    use Expect::*;
    use Stream::*;
    vec![
        // 3.1.1 Valid messages: every one parses and is answered as any request would be.
        case(dat!("wsinv"), "3.1.1.1 A Short Tortuous INVITE", App("INVITE", 200), Whole).check(|r| {
            let m = r.request();
            assert_eq!(m.max_forwards(), Ok(Some(68)));
            let cseq = m.cseq().expect("CSeq");
            assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
            assert_eq!(m.vias().expect("Vias").len(), 3);
            assert_eq!(m.body.len(), 150);
            assert_eq!(m.headers.get("NewFangledHeader"), Some("newfangled value continued newfangled value"));
            assert_eq!(m.to().expect("To").tag(), Some("1918181833n"));
        }),
        // An unknown method: 501. Its To display name carries NUL, BEL and DEL as quoted-pairs,
        // and its Request-URI's user part '?', ';' and '/', all of which RFC 3261 allows;
        // callmux refused the message for both until this test found them.
        case(dat!("intmeth"), "3.1.1.2 Wide Range of Valid Characters", Auto(501), Whole).check(|r| {
            let m = r.request();
            assert_eq!(m.method.as_str(), "!interesting-Method0123456789_*+`.%indeed'~");
            assert_eq!(m.to().expect("To").display.as_deref(), Some("BEL:\x07 NUL:\x00 DEL:\x7f"));
            assert!(r.sent_text().contains("CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~"));
        }),
        case(dat!("esc01"), "3.1.1.3 Valid Use of the % Escaping Mechanism", App("INVITE", 200), Whole).check(|r| {
            assert_eq!(r.request().uri.to_string(), "sip:sips%3Auser%40example.com@example.net");
        }),
        // REGISTER: callmux is no registrar, so 405 with Allow (the answer §3.3.7 names for
        // endpoints), after parsing the escaped NULs without harm.
        case(dat!("escnull"), "3.1.1.4 Escaped Nulls in URIs", Auto(405), Whole).check(|r| {
            assert_eq!(r.request().headers.get_all("Contact").count(), 2);
            assert!(r.sent_text().contains("\r\nAllow: "));
        }),
        // RE%47IST%45R is an unknown method, not REGISTER: 501.
        case(dat!("esc02"), "3.1.1.5 Use of % When It Is Not an Escape", Auto(501), Whole).check(|r| {
            // Two Contacts: C%6Fntact is an unknown header, not a third one.
            assert_eq!(r.request().headers.get_all("Contact").count(), 2);
        }),
        case(dat!("lwsdisp"), "3.1.1.6 Message with No LWS between Display Name and <", Auto(200), Whole).check(|r| {
            assert_eq!(r.request().from().expect("From").display.as_deref(), Some("caller"));
        }),
        case(dat!("longreq"), "3.1.1.7 Long Values in Header Fields", App("INVITE", 200), Whole).check(|r| {
            assert_eq!(r.request().vias().expect("Vias").len(), 34);
        }),
        // The REGISTER ends at Content-Length 0; the INVITE after it in the datagram is
        // ignored, so only the REGISTER is answered (405, as escnull).
        case(dat!("dblreq"), "3.1.1.8 Extra Trailing Octets in a UDP Datagram", Auto(405), First(300)).check(|r| {
            assert_eq!(r.request().method, Method::Register);
            assert!(r.sent_text().contains("CSeq: 8 REGISTER"));
        }),
        case(dat!("semiuri"), "3.1.1.9 Semicolon-Separated Parameters in URI User Part", Auto(200), Whole).check(|r| {
            assert_eq!(r.request().uri.user.as_deref(), Some("user;par=u%40example.net"));
        }),
        case(dat!("transports"), "3.1.1.10 Varied and Unknown Transport Types", Auto(200), Whole).check(|r| {
            assert_eq!(r.request().vias().expect("Vias").len(), 5);
        }),
        // MESSAGE is not a method callmux takes: 405 after framing the binary body right.
        case(dat!("mpart01"), "3.1.1.11 Multipart MIME Message", Auto(405), Whole).check(|r| {
            let m = r.request();
            assert_eq!(m.body.len(), 553);
            assert!(m.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
        }),
        case(dat!("unreason"), "3.1.1.12 Unusual Reason Phrase", Stray, Whole).check(|r| {
            let Ok(Message::Response(m)) = &r.parsed else { panic!("a response") };
            assert_eq!(m.status, 200);
            assert!(m.reason.starts_with("= 2**3 * 5**2 но сто девяносто девять"), "{}", m.reason);
            assert_eq!(m.body.len(), 154);
        }),
        case(dat!("noreason"), "3.1.1.13 Empty Reason Phrase", Stray, Whole).check(|r| {
            let Ok(Message::Response(m)) = &r.parsed else { panic!("a response") };
            assert_eq!((m.status, m.reason.as_str()), (100, ""));
        }),

        // 3.1.2 Invalid messages.
        // RFC: 400. callmux drops it: the top Via ("192.0.2.15;;,;,,") does not parse, so there
        // is no RFC 3261 §18.2.2 destination, and callmux never sends a reply to an address it
        // cannot take from a valid Via (a spoofed UDP source would make it a reflector).
        case(dat!("badinv01"), "3.1.2.1 Extraneous Header Field Separators", Drop, Whole),
        // Over UDP: 400. Over TCP the framer waits for the missing 9999 bytes, as the RFC says.
        case(dat!("clerr"), "3.1.2.2 Content Length Larger Than Message", Reject(400), Waits),
        // 400 over UDP; over TCP the framing cannot recover and the connection is closed.
        case(dat!("ncl"), "3.1.2.3 Negative Content-Length", Reject(400), Close),
        // 400 for the CSeq beyond 2^32-1 (the RFC's choice).
        case(dat!("scalar02"), "3.1.2.4 Request Scalar Fields with Overlarge Values", Reject(400), Whole),
        case(dat!("scalarlg"), "3.1.2.5 Response Scalar Fields with Overlarge Values", Drop, Whole),
        case(dat!("quotbal"), "3.1.2.6 Unterminated Quoted String in Display Name", Reject(400), Whole).check(|r| {
            // Over UDP, routed by the Via: the source address, the port of the sent-by.
            if r.transport == TransportKind::Udp {
                assert_eq!(r.sent.first().map(|t| t.peer.remote.port()), Some(5050));
            }
        }),
        case(dat!("ltgtruri"), "3.1.2.7 <> Enclosing Request-URI", Reject(400), Whole),
        case(dat!("lwsruri"), "3.1.2.8 Malformed SIP Request-URI (embedded LWS)", Reject(400), Whole),
        case(dat!("lwsstart"), "3.1.2.9 Multiple SP Separating Request-Line Elements", Reject(400), Whole),
        case(dat!("trws"), "3.1.2.10 SP Characters at End of Request-Line", Reject(400), Whole),
        // The RFC allows 400 or being liberal; callmux is liberal: the Request-URI's escaped
        // headers are kept in the URI and never acted upon (the application routes on nothing
        // but the Request-URI's user and host).
        case(dat!("escruri"), "3.1.2.11 Escaped Headers in SIP Request-URI", App("INVITE", 200), Whole),
        // Liberal, as the RFC allows: callmux never reads the Date header.
        case(dat!("baddate"), "3.1.2.12 Invalid Time Zone in Date Header Field", App("INVITE", 200), Whole),
        // REGISTER is refused (405) before its Contact would ever be read.
        case(dat!("regbadct"), "3.1.2.13 Failure to Enclose name-addr URI in <>", Auto(405), Whole),
        // Liberal, as the RFC allows: the spaces inside <...> are ignored.
        case(dat!("badaspec"), "3.1.2.14 Spaces within addr-spec", Auto(200), Whole),
        // The archived bytes end after "l: 0" with no empty line, so over UDP the message is
        // refused (400) for having no end of headers before its display names are looked at,
        // and over TCP the framer waits for the rest.
        case(dat!("baddn"), "3.1.2.15 Non-token Characters in Display Name", Reject(400), Waits),
        // RFC: 505. callmux would answer 505, but the top Via is "SIP/7.0/UDP ...", which does
        // not parse, so as for badinv01 there is no destination to answer to and it is dropped.
        case(dat!("badvers"), "3.1.2.16 Unknown Protocol Version", Drop, Whole),
        case(dat!("mismatch01"), "3.1.2.17 Start Line and CSeq Method Mismatch", Reject(400), Whole),
        // The RFC prefers 501 but accepts 400; callmux checks CSeq against the method before
        // it looks the method up.
        case(dat!("mismatch02"), "3.1.2.18 Unknown Method with CSeq Method Mismatch", Reject(400), Whole),
        case(dat!("bigcode"), "3.1.2.19 Overlarge Response Code", Drop, Whole),

        // 3.2 Transaction layer.
        // The RFC allows 400 or falling back to RFC 2543 transaction matching; callmux
        // matches it and answers the OPTIONS.
        case(dat!("badbranch"), "3.2.1 Missing Transaction Identifier", Auto(200), Whole),

        // 3.3 Application layer.
        // RFC: ideally 400. No From, To or Call-ID exist to copy into a response (RFC 3261
        // §8.2.6.2), so callmux drops it and counts it.
        case(dat!("insuf"), "3.3.1 Missing Required Header Fields", Drop, Whole),
        case(dat!("unkscm"), "3.3.2 Request-URI with Unknown Scheme", Auto(416), Whole),
        case(dat!("novelsc"), "3.3.3 Request-URI with Known but Atypical Scheme", Auto(416), Whole),
        // A registrar would answer 400; callmux is none and answers 405 (as §3.3.7 says).
        case(dat!("unksm2"), "3.3.4 Unknown URI Schemes in Header Fields", Auto(405), Whole),
        case(dat!("bext01"), "3.3.5 Proxy-Require and Require", Auto(420), Whole).check(|r| {
            // As a UAS it lists the Require tags, not the Proxy-Require ones.
            assert!(r.sent_text().contains("\r\nUnsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"), "{}", r.sent_text());
        }),
        // RFC: an endpoint answers 415. callmux-sip hands every INVITE to the application,
        // and callmux's call task answers an INVITE without an SDP offer with 488 (it supports
        // no late offer and takes no other body), which is what the application does here.
        case(dat!("invut"), "3.3.6 Unknown Content-Type", App("INVITE", 488), Whole),
        case(dat!("regaut01"), "3.3.7 Unknown Authorization Scheme", Auto(405), Whole),
        case(dat!("multi01"), "3.3.8 Multiple Values in Single Value Required Fields", Reject(400), Whole),
        // 400 over UDP; over TCP the framer refuses the conflicting lengths and the connection
        // is closed.
        case(dat!("mcl01"), "3.3.9 Multiple Content-Length Values", Reject(400), Close),
        case(dat!("bcast"), "3.3.10 200 OK Response with Broadcast Via Header Field Value", Stray, Whole),
        // RFC: an endpoint processes it as if Max-Forwards were positive (200 here). callmux
        // answers 483: it bridges calls into new outgoing legs, and refusing at zero is what
        // stops a loop through B2BUAs that each start a fresh Max-Forwards.
        case(dat!("zeromf"), "3.3.11 Max-Forwards of Zero", Auto(483), Whole),
        // 3.3.12-14 expect a registrar to store the binding; callmux is no registrar: 405.
        case(dat!("cparam01"), "3.3.12 REGISTER with a Contact Header Parameter", Auto(405), Whole),
        case(dat!("cparam02"), "3.3.13 REGISTER with a url-parameter", Auto(405), Whole),
        case(dat!("regescrt"), "3.3.14 REGISTER with a URL Escaped Header", Auto(405), Whole),
        // RFC: 406 or 400. callmux ignores Accept and answers with SDP, like most UAs; the
        // application's 200 is what goes out.
        case(dat!("sdp01"), "3.3.15 Unacceptable Accept Offering", App("INVITE", 200), Whole),

        // 3.4 Backward compatibility: accepted over UDP (no branch, no From tag, no
        // Content-Length, no Max-Forwards). A stream needs a Content-Length (RFC 3261 §18.3),
        // so over TCP the connection is closed.
        case(dat!("inv2543"), "3.4.1 INVITE with RFC 2543 Syntax", App("INVITE", 200), Close).check(|r| {
            assert_eq!(r.request().body.len(), 105);
        }),

        // In the archive but in no section of the RFC: a request line without SIP-Version,
        // no Via, no CSeq and a header line without a colon. Nothing to answer: dropped.
        case(dat!("test"), "(archive only) test.dat", Drop, Whole),
    ]
}

/// What one message did to a fresh endpoint.
struct Run {
    transport: TransportKind,
    parsed: Result<Message, callmux_sip::ParseError>,
    events: Vec<Event>,
    sent: Vec<Transmit>,
    stats: callmux_sip::EndpointStats,
}

impl Run {
    fn request(&self) -> &callmux_sip::Request {
        match &self.parsed {
            Ok(Message::Request(r)) => r,
            other => panic!("expected a parsed request, got {other:?}"),
        }
    }

    fn sent_text(&self) -> String {
        self.sent
            .iter()
            .map(|t| String::from_utf8_lossy(&t.bytes).into_owned())
            .collect()
    }
}

fn peer(transport: TransportKind) -> Peer {
    Peer {
        transport,
        local: "192.0.2.1:5060".parse().expect("address"),
        remote: "192.0.2.200:5070".parse().expect("address"),
        connection: transport.is_reliable().then_some(ConnectionId(1)),
    }
}

/// Feeds `bytes` to a fresh endpoint, answers what it raises with `app_status`, then lets
/// every timer run out.
fn run(bytes: &[u8], transport: TransportKind, app_status: u16) -> Run {
    let mut ep = Endpoint::new(EndpointConfig::default(), 4475);
    let now = Instant::now();
    ep.handle_input(now, peer(transport), bytes);
    let mut events = Vec::new();
    while let Some(e) = ep.poll_event() {
        if let Event::IncomingRequest { key, request, .. } = &e {
            let mut answer = request.make_response(app_status, default_reason(app_status));
            answer.set_to_tag("app");
            ep.respond(now, key, answer)
                .expect("the application can answer");
        }
        events.push(e);
    }
    let mut sent = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        sent.push(t);
    }
    // Nothing may go wrong later either (retransmissions, ACK timeouts).
    let mut t = now;
    for _ in 0..100 {
        let Some(next) = ep.poll_timeout() else { break };
        t = next.max(t);
        ep.handle_timeout(t);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
    }
    ep.handle_timeout(t + Duration::from_secs(3600));
    Run {
        transport,
        parsed: Message::parse(bytes),
        events,
        sent,
        stats: ep.stats(),
    }
}

fn assert_outcome(c: &Case, bytes: &[u8], transport: TransportKind) {
    let Case { file, section, .. } = c;
    let ctx = format!("{file} ({section}) over {transport:?}");
    let app_status = match c.expect {
        Expect::App(_, status) => status,
        _ => 200,
    };
    let r = run(bytes, transport, app_status);
    let status_of = |t: &Transmit| -> Option<u16> {
        let text = String::from_utf8_lossy(&t.bytes);
        text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    };
    match c.expect {
        Expect::App(method, status) => {
            assert!(r.parsed.is_ok(), "{ctx}: {:?}", r.parsed);
            assert!(
                matches!(&r.events[..], [Event::IncomingRequest { request, .. }] if request.method.as_str() == method),
                "{ctx}: {:?}",
                r.events
            );
            assert_eq!(r.sent.len(), 1, "{ctx}: {}", r.sent_text());
            assert_eq!(r.sent.first().and_then(status_of), Some(status), "{ctx}");
        }
        Expect::Auto(status) => {
            assert!(r.parsed.is_ok(), "{ctx}: {:?}", r.parsed);
            assert!(r.events.is_empty(), "{ctx}: {:?}", r.events);
            assert_eq!(r.sent.len(), 1, "{ctx}: {}", r.sent_text());
            let t = r.sent.first().expect("one response");
            assert_eq!(status_of(t), Some(status), "{ctx}: {}", r.sent_text());
            assert!(Message::parse(&t.bytes).is_ok(), "{ctx}: own answer parses");
        }
        Expect::Reject(status) => {
            assert!(r.parsed.is_err(), "{ctx}: parsed, but must be refused");
            assert!(
                matches!(&r.events[..], [Event::Malformed { answered: true, .. }]),
                "{ctx}: {:?}",
                r.events
            );
            assert_eq!(r.sent.len(), 1, "{ctx}");
            assert_eq!(r.sent.first().and_then(status_of), Some(status), "{ctx}");
            assert!(
                r.sent_text().contains("\r\nWarning: 399 callmux \""),
                "{ctx}: {}",
                r.sent_text()
            );
            assert_eq!(r.stats.malformed_answered, 1, "{ctx}");
        }
        Expect::Drop => {
            assert!(r.parsed.is_err(), "{ctx}: parsed, but must be refused");
            assert!(
                matches!(
                    &r.events[..],
                    [Event::Malformed {
                        answered: false,
                        ..
                    }]
                ),
                "{ctx}: {:?}",
                r.events
            );
            assert!(r.sent.is_empty(), "{ctx}: {}", r.sent_text());
            assert_eq!(r.stats.malformed_dropped, 1, "{ctx}");
        }
        Expect::Stray => {
            assert!(
                matches!(r.parsed, Ok(Message::Response(_))),
                "{ctx}: {:?}",
                r.parsed
            );
            assert!(
                r.events.is_empty() && r.sent.is_empty(),
                "{ctx}: {:?}",
                r.events
            );
            assert_eq!(r.stats.stray_responses, 1, "{ctx}");
        }
    }
    if let Some(check) = c.check {
        check(&r);
    }
}

#[test]
fn rfc4475_messages_through_the_endpoint() {
    let table = table();
    for c in &table {
        // As one UDP datagram.
        assert_outcome(c, c.bytes, TransportKind::Udp);

        // As bytes on a TCP connection, framed the way the server frames them.
        let mut framer =
            StreamFramer::with_max_size(EndpointConfig::default().limits.max_message_size);
        framer.push(c.bytes);
        let framed = framer.pop();
        let ctx = format!("{} ({}) framed", c.file, c.section);
        match (c.stream, framed) {
            (Stream::Whole, Ok(Some(Framed::Message(m)))) => {
                assert_eq!(m, c.bytes, "{ctx}");
                assert_outcome(c, &m, TransportKind::Tcp);
            }
            (Stream::First(len), Ok(Some(Framed::Message(m)))) => {
                assert_eq!(m.len(), len, "{ctx}");
                assert_eq!(Some(&m[..]), c.bytes.get(..len), "{ctx}");
                assert_outcome(c, &m, TransportKind::Tcp);
            }
            (Stream::Waits, Ok(None)) | (Stream::Close, Err(_)) => {}
            (expected, got) => panic!("{ctx}: expected {expected:?}, got {got:?}"),
        }
    }
}

/// The files are the RFC's bytes, and the table leaves none of them out.
#[test]
fn rfc4475_files_are_the_archive_bytes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/rfc4475");
    let sums = std::fs::read_to_string(format!("{dir}/SHA256SUMS")).expect("SHA256SUMS");
    let mut listed: Vec<&str> = Vec::new();
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(format!("{dir}/{name}")).expect("listed file");
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            sum,
            "{name} is not the RFC's bytes (line endings rewritten?)"
        );
        listed.push(name.strip_suffix(".dat").expect(".dat file"));
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("tests/rfc4475")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".dat")?.to_owned())
        })
        .collect();
    on_disk.sort();
    listed.sort_unstable();
    assert_eq!(on_disk, listed, "SHA256SUMS lists every .dat file");
    assert_eq!(listed.len(), 50, "the archive holds 50 messages");
    let mut in_table: Vec<&str> = table().iter().map(|c| c.file).collect();
    in_table.sort_unstable();
    assert_eq!(in_table, listed, "every message has a row");
    for c in table() {
        let file = std::fs::read(format!("{dir}/{}.dat", c.file)).expect("file");
        assert_eq!(file, c.bytes, "{}", c.file);
    }
}
