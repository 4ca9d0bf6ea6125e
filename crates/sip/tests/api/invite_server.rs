//! INVITE server transactions through the endpoint.

use std::time::Duration;

use callmux_sip::{Event, TransportKind};

use crate::harness::{addr, invited, parse_response, req, tcp_peer, udp_peer, Harness};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Send times (ms) of every transmitted response with `status`.
fn times_of(h: &Harness, status: u16) -> Vec<u128> {
    h.sent
        .iter()
        .filter(|(_, t)| parse_response(&t.bytes).status == status)
        .map(|(d, _)| d.as_millis())
        .collect()
}

#[test]
fn trying_is_sent_after_200ms_to_the_rport_address() {
    let (mut h, _, invite) = invited(udp_peer());
    let top = invite.top_via().unwrap();
    assert_eq!(top.received.as_deref(), Some("198.51.100.7"));
    assert_eq!(top.rport, Some(Some(40000)));
    h.advance(ms(199));
    assert!(h.sent.is_empty());
    h.advance(ms(1));
    assert_eq!(h.sent.len(), 1);
    let (at, t) = &h.sent[0];
    assert_eq!(*at, ms(200));
    assert_eq!(t.peer.remote, addr("198.51.100.7:40000"));
    assert_eq!(t.peer.transport, TransportKind::Udp);
    let trying = parse_response(&t.bytes);
    assert_eq!((trying.status, trying.reason.as_str()), (100, "Trying"));
    assert_eq!(trying.to().unwrap().tag(), None, "100 carries no To tag");
    assert_eq!(trying.top_via().unwrap().rport, Some(Some(40000)));
}

#[test]
fn no_trying_when_the_application_answers_quickly() {
    let (mut h, key, invite) = invited(udp_peer());
    h.advance(ms(50));
    h.respond(&key, invite.make_response(180, "Ringing"))
        .unwrap();
    h.advance(Duration::from_secs(2));
    assert_eq!(h.sent_statuses(), [180]);
    let ringing = parse_response(&h.sent[0].1.bytes);
    assert!(
        ringing.to().unwrap().tag().is_some(),
        "endpoint adds the To tag"
    );
}

#[test]
fn zero_trying_delay_sends_trying_at_once() {
    let config = callmux_sip::EndpointConfig {
        trying_delay: Duration::ZERO,
        ..Default::default()
    };
    let mut h = Harness::with_config(config);
    h.input(udp_peer(), &req("INVITE", "z9hG4bKinv1", 1, None, ""));
    assert_eq!(h.sent_statuses(), [100]);
    assert_eq!(h.events.len(), 1);
}

#[test]
fn non_2xx_is_retransmitted_on_timer_g_until_timer_h() {
    let (mut h, key, invite) = invited(udp_peer());
    h.respond(&key, invite.make_response(486, "Busy Here"))
        .unwrap();
    h.advance(Duration::from_secs(40));
    assert_eq!(
        times_of(&h, 486),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(h.ep.server_transactions(), 0, "Timer H ended it at 32 s");
    assert!(h.events.is_empty());
    assert_eq!(h.ep.stats().retransmissions_sent, 10);
}

#[test]
fn ack_for_non_2xx_stops_timer_g_and_is_absorbed() {
    let (mut h, key, invite) = invited(udp_peer());
    h.respond(&key, invite.make_response(404, "Not Found"))
        .unwrap();
    let tag = parse_response(&h.sent[0].1.bytes)
        .to()
        .unwrap()
        .tag()
        .unwrap()
        .to_owned();
    h.advance(ms(600));
    assert_eq!(times_of(&h, 404), [0, 500]);
    let ack = req("ACK", "z9hG4bKinv1", 1, Some(&tag), "");
    h.input(udp_peer(), &ack);
    h.input(udp_peer(), &ack);
    assert!(h.take_events().is_empty(), "ACK for a non-2xx is absorbed");
    h.advance(Duration::from_secs(40));
    assert_eq!(times_of(&h, 404), [0, 500]);
    assert_eq!(h.ep.server_transactions(), 0, "Timer I ended it");
}

#[test]
fn ok_is_retransmitted_until_the_ack_arrives() {
    let (mut h, key, invite) = invited(udp_peer());
    let ok = invite.make_response(200, "OK").with_to_tag("uas-tag");
    h.respond(&key, ok).unwrap();
    h.advance(ms(2000));
    assert_eq!(times_of(&h, 200), [0, 500, 1500]);
    // the ACK for a 2xx is its own transaction: new branch, same Call-ID/CSeq/To tag
    let wrong_tag = req("ACK", "z9hG4bKack1", 1, Some("other"), "");
    h.input(udp_peer(), &wrong_tag);
    assert!(h.take_events().is_empty());
    let ack = req("ACK", "z9hG4bKack1", 1, Some("uas-tag"), "");
    h.input(udp_peer(), &ack);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::AckReceived { .. }]),
        "{events:?}"
    );
    h.input(
        udp_peer(),
        &req("ACK", "z9hG4bKack2", 1, Some("uas-tag"), ""),
    );
    assert!(h.take_events().is_empty(), "repeated ACK absorbed");
    h.advance(Duration::from_secs(40));
    assert_eq!(times_of(&h, 200), [0, 500, 1500]);
    assert_eq!(h.ep.server_transactions(), 0);
    assert_eq!(h.ep.stats().stray_acks, 1);
}

#[test]
fn unacknowledged_ok_gives_ack_timeout_after_32s() {
    let (mut h, key, invite) = invited(udp_peer());
    h.respond(&key, invite.make_response(200, "OK")).unwrap();
    h.advance(Duration::from_secs(31));
    assert!(h.events.is_empty());
    h.advance(Duration::from_secs(10));
    assert_eq!(
        times_of(&h, 200),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let events = h.take_events();
    match &events[..] {
        [Event::AckTimeout { key: k, call_id }] => {
            assert_eq!(k, &key);
            assert_eq!(call_id, "call-1@example.com");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.elapsed(), Duration::from_secs(41));
    assert_eq!(h.ep.server_transactions(), 0);
}

#[test]
fn duplicate_invite_is_absorbed_and_answered_with_the_last_response() {
    let mut h = Harness::new();
    let invite_bytes = req("INVITE", "z9hG4bKinv1", 1, None, "");
    h.input(udp_peer(), &invite_bytes);
    let (key, invite) = h.expect_request();
    h.input(udp_peer(), &invite_bytes);
    assert_eq!(h.sent_statuses(), [100], "nothing sent yet: 100 at once");
    h.respond(&key, invite.make_response(180, "Ringing"))
        .unwrap();
    h.input(udp_peer(), &invite_bytes);
    assert_eq!(h.sent_statuses(), [100, 180, 180]);
    h.respond(&key, invite.make_response(603, "Decline"))
        .unwrap();
    h.input(udp_peer(), &invite_bytes);
    assert_eq!(h.sent_statuses(), [100, 180, 180, 603, 603]);
    assert!(h.take_events().is_empty(), "exactly one IncomingRequest");
    assert_eq!(h.ep.stats().retransmissions_absorbed, 3);
    assert_eq!(h.ep.stats().requests, 4);
}

#[test]
fn over_tcp_non_2xx_is_not_retransmitted_but_2xx_is() {
    let (mut h, key, invite) = invited(tcp_peer());
    h.respond(&key, invite.make_response(486, "Busy")).unwrap();
    h.advance(Duration::from_secs(40));
    assert_eq!(times_of(&h, 486), [0]);
    assert_eq!(h.sent[0].1.peer, tcp_peer(), "reply on the same connection");

    let (mut h, key, invite) = invited(tcp_peer());
    h.respond(&key, invite.make_response(200, "OK")).unwrap();
    h.advance(Duration::from_secs(2));
    // RFC 3261 §13.3.1.4: the 2xx is retransmitted even on reliable transports.
    assert_eq!(times_of(&h, 200), [0, 500, 1500]);
}

#[test]
fn respond_errors_are_reported_not_sent() {
    let (mut h, key, invite) = invited(udp_peer());
    h.respond(&key, invite.make_response(200, "OK")).unwrap();
    let again = h.respond(&key, invite.make_response(486, "Busy"));
    assert!(
        matches!(again, Err(callmux_sip::EndpointError::Transaction(_))),
        "{again:?}"
    );
    let bad = h.respond(&key, callmux_sip::Response::new(200, "OK"));
    assert!(bad.is_err());
    h.advance(Duration::from_secs(40));
    let gone = h.respond(&key, invite.make_response(200, "OK"));
    assert_eq!(gone, Err(callmux_sip::EndpointError::UnknownTransaction));
}
