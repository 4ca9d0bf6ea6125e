//! Client transactions through the endpoint.

use std::time::Duration;

use callmux_sip::{
    ClientTxKey, Endpoint, EndpointError, Event, Method, Peer, Request, TransportKind, Uri,
};

use crate::harness::{addr, parse_request, parse_response, Harness};

fn target(transport: TransportKind) -> Peer {
    Peer {
        transport,
        local: addr("192.0.2.1:5060"),
        remote: addr("198.51.100.7:5062"),
        connection: None,
    }
}

fn outgoing(ep: &mut Endpoint, method: Method) -> Request {
    let mut r = Request::new(
        method.clone(),
        Uri::parse("sip:bob@198.51.100.7:5062").unwrap(),
    );
    r.headers.push(
        "From",
        format!("<sip:callmux@192.0.2.1>;tag={}", ep.new_tag()),
    );
    r.headers.push("To", "<sip:bob@198.51.100.7>");
    r.headers.push("Call-ID", ep.new_call_id("192.0.2.1"));
    r.headers.push("CSeq", format!("1 {method}"));
    r.headers.push("Contact", "<sip:callmux@192.0.2.1:5060>");
    r
}

/// The peer's answer to the request we sent first.
fn answer(h: &Harness, status: u16) -> Vec<u8> {
    let sent = parse_request(&h.sent[0].1.bytes);
    sent.make_response(status, callmux_sip::default_reason(status))
        .with_to_tag("bob-tag")
        .to_bytes()
}

/// The peer's answer with `status` to the request we sent first, received over UDP.
fn receive(h: &mut Harness, status: u16) {
    let bytes = answer(h, status);
    h.input(target(TransportKind::Udp), &bytes);
}

/// A harness whose endpoint has sent one `method` request over `transport`.
fn started(method: Method, transport: TransportKind) -> (Harness, ClientTxKey) {
    let mut h = Harness::new();
    let request = outgoing(&mut h.ep, method.clone());
    let key =
        h.ep.send_request(h.now, request, target(transport))
            .unwrap_or_else(|e| panic!("sending {method} over {transport:?}: {e:?}"));
    h.drain();
    (h, key)
}

/// The only event left is the timeout of `key`.
fn assert_timed_out(h: &mut Harness, key: &ClientTxKey) {
    match &h.take_events()[..] {
        [Event::ClientTimeout { key: k }] => assert_eq!(k, key),
        other => panic!("expected one ClientTimeout for {key:?}, got {other:?}"),
    }
}

fn times(h: &Harness) -> Vec<u128> {
    h.sent.iter().map(|(d, _)| d.as_millis()).collect()
}

#[test]
fn invite_over_udp_uses_timer_a_then_times_out_on_timer_b() {
    let (mut h, key) = started(Method::Invite, TransportKind::Udp);
    let sent = parse_request(&h.sent[0].1.bytes);
    let via = sent.top_via().unwrap();
    assert!(via.branch.as_deref().unwrap().starts_with("z9hG4bK"));
    assert_eq!(via.sent_by(), "192.0.2.1:5060");
    assert_eq!(via.rport, Some(None));
    assert_eq!(sent.max_forwards().unwrap(), Some(70));
    assert!(sent.headers.get("User-Agent").is_some());
    assert_eq!(key.method(), &Method::Invite);
    h.advance(Duration::from_secs(40));
    assert_eq!(times(&h)[1..], [500, 1500, 3500, 7500, 15500, 31500]);
    assert_timed_out(&mut h, &key);
    assert_eq!(h.ep.client_transactions(), 0);
}

#[test]
fn invite_over_tcp_is_never_retransmitted() {
    let (mut h, key) = started(Method::Invite, TransportKind::Tcp);
    h.advance(Duration::from_secs(40));
    assert_eq!(times(&h), [0]);
    let sent = parse_request(&h.sent[0].1.bytes);
    assert_eq!(sent.top_via().unwrap().transport, "TCP");
    assert_timed_out(&mut h, &key);
}

#[test]
fn non_2xx_is_acked_by_the_transaction_and_absorbed_after() {
    let (mut h, key) = started(Method::Invite, TransportKind::Udp);
    receive(&mut h, 100);
    receive(&mut h, 486);
    let events = h.take_events();
    let statuses: Vec<u16> = events
        .iter()
        .map(|e| match e {
            Event::ResponseReceived {
                key: k, response, ..
            } => {
                assert_eq!(k, &key);
                response.status
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(statuses, [100, 486]);
    let invite = parse_request(&h.sent[0].1.bytes);
    let ack = parse_request(&h.sent[1].1.bytes);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.top_via().unwrap().branch,
        invite.top_via().unwrap().branch
    );
    assert_eq!(ack.to().unwrap().tag(), Some("bob-tag"));
    assert_eq!(h.sent[1].1.peer, target(TransportKind::Udp));
    receive(&mut h, 486);
    assert!(h.take_events().is_empty(), "retransmitted 486 absorbed");
    assert_eq!(h.sent.len(), 3, "and ACKed again");
    h.advance(Duration::from_secs(40));
    assert_eq!(h.sent.len(), 3, "no Timer A after a response");
    assert_eq!(h.ep.client_transactions(), 0);
}

#[test]
fn every_2xx_is_passed_up_and_nothing_is_acked_by_the_endpoint() {
    let (mut h, _key) = started(Method::Invite, TransportKind::Udp);
    receive(&mut h, 200);
    receive(&mut h, 200);
    assert_eq!(h.take_events().len(), 2);
    assert_eq!(h.sent.len(), 1);
    // the UAC core ACKs with send_stateless: new branch
    let invite = parse_request(&h.sent[0].1.bytes);
    let ok = parse_response(&answer(&h, 200));
    let dialog = callmux_sip::Dialog::uac(&invite, &ok).unwrap();
    let ack = dialog.ack_for_2xx(&invite, &ok);
    h.ep.send_stateless(ack, target(TransportKind::Udp));
    let ack = parse_request(&h.ep.poll_transmit().unwrap().bytes);
    assert_eq!(ack.method, Method::Ack);
    assert_ne!(
        ack.top_via().unwrap().branch,
        invite.top_via().unwrap().branch
    );
    assert_eq!(ack.cseq().unwrap().seq, 1);
}

#[test]
fn non_invite_timer_e_doubles_from_t1_to_t2() {
    let (mut h, key) = started(Method::Options, TransportKind::Udp);
    h.advance(Duration::from_secs(40));
    let t = times(&h);
    assert_eq!(t[..6], [0, 500, 1500, 3500, 7500, 11500]);
    assert!(t.windows(2).skip(4).all(|w| w[1] - w[0] == 4000), "{t:?}");
    assert_timed_out(&mut h, &key);
}

#[test]
fn non_invite_final_stops_timer_e() {
    let (mut h, _key) = started(Method::Bye, TransportKind::Udp);
    h.advance(Duration::from_millis(600));
    receive(&mut h, 200);
    receive(&mut h, 200);
    assert_eq!(h.take_events().len(), 1);
    h.advance(Duration::from_secs(40));
    assert_eq!(times(&h), [0, 500]);
    assert_eq!(h.ep.client_transactions(), 0, "Timer K ended it");
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let (mut h, key) = started(Method::Invite, TransportKind::Udp);
    h.ep.cancel(h.now, &key).unwrap();
    h.advance(Duration::from_millis(100));
    assert_eq!(h.sent.len(), 1, "CANCEL deferred");
    receive(&mut h, 180);
    let invite = parse_request(&h.sent[0].1.bytes);
    let cancel = parse_request(&h.sent[1].1.bytes);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(
        cancel.top_via().unwrap().branch,
        invite.top_via().unwrap().branch
    );
    assert_eq!(cancel.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    assert_eq!(cancel.cseq().unwrap().method, Method::Cancel);
    assert_eq!(cancel.to().unwrap().tag(), None);
    // 200 to the CANCEL is absorbed, 487 to the INVITE reported and ACKed
    let ok = cancel
        .make_response(200, "OK")
        .with_to_tag("bob-tag")
        .to_bytes();
    h.input(target(TransportKind::Udp), &ok);
    receive(&mut h, 487);
    let statuses: Vec<u16> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ResponseReceived { response, .. } => Some(response.status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [180, 487]);
    assert_eq!(parse_request(&h.sent[2].1.bytes).method, Method::Ack);
    assert_eq!(h.ep.cancel(h.now, &key), Err(EndpointError::CannotCancel));
}

#[test]
fn cancelled_invite_without_answer_times_out_64_t1_after_the_cancel() {
    let (mut h, key) = started(Method::Invite, TransportKind::Udp);
    receive(&mut h, 180);
    h.advance(Duration::from_secs(10));
    h.ep.cancel(h.now, &key).unwrap();
    h.ep.cancel(h.now, &key).unwrap();
    h.take_events();
    h.advance(Duration::from_secs(31));
    assert!(h.events.is_empty());
    h.advance(Duration::from_secs(1));
    assert_timed_out(&mut h, &key);
}

#[test]
fn misuse_and_strays() {
    let mut h = Harness::new();
    let ack = outgoing(&mut h.ep, Method::Ack);
    assert!(h
        .ep
        .send_request(h.now, ack, target(TransportKind::Udp))
        .is_err());
    let mut bye = outgoing(&mut h.ep, Method::Bye);
    bye.headers.set("CSeq", "1 INVITE");
    assert!(matches!(
        h.ep.send_request(h.now, bye, target(TransportKind::Udp)),
        Err(EndpointError::InvalidRequest(_))
    ));
    let bye = outgoing(&mut h.ep, Method::Bye);
    let key =
        h.ep.send_request(h.now, bye, target(TransportKind::Udp))
            .unwrap();
    assert_eq!(h.ep.cancel(h.now, &key), Err(EndpointError::CannotCancel));
    // a response nobody asked for
    let stray = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnope\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    h.input(target(TransportKind::Udp), stray);
    assert_eq!(h.ep.stats().stray_responses, 1);
    assert!(h.take_events().is_empty());
}
