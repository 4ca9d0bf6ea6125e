//! Non-INVITE requests, CANCEL and the endpoint's automatic answers.

use std::time::Duration;

use callmux_sip::{
    Dialog, DialogError, EndpointConfig, EndpointError, Event, Method, Response, Uri,
};

use crate::harness::{
    addr, invited, parse_response, req, req_with_cseq_method, tcp_peer, udp_peer, Harness,
};

fn last_response(h: &Harness) -> Response {
    parse_response(&h.sent.last().expect("something was sent").1.bytes)
}

/// `req(method, branch, 1, None, "")` with the text `from` replaced by `to`.
fn edited_req(method: &str, branch: &str, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(req(method, branch, 1, None, "")).expect("req is UTF-8");
    assert!(text.contains(from), "{from:?} is not in {text:?}");
    text.replace(from, to).into_bytes()
}

#[test]
fn cancel_before_final_gives_200_487_and_an_event() {
    let (mut h, key, invite) = invited(udp_peer());
    h.respond(&key, invite.make_response(180, "Ringing"))
        .unwrap();
    h.take_sent();
    h.input(udp_peer(), &req("CANCEL", "z9hG4bKinv1", 1, None, ""));
    let sent: Vec<Response> = h
        .take_sent()
        .iter()
        .map(|(_, t)| parse_response(&t.bytes))
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].status, sent[0].cseq().unwrap().method),
        (200, Method::Cancel)
    );
    assert_eq!(
        (sent[1].status, sent[1].cseq().unwrap().method),
        (487, Method::Invite)
    );
    assert_eq!(sent[0].to().unwrap().tag(), sent[1].to().unwrap().tag());
    let events = h.take_events();
    match &events[..] {
        [Event::InviteCancelled { key: k, cancel }] => {
            assert_eq!(k, &key);
            assert_eq!(cancel.method, Method::Cancel);
        }
        other => panic!("{other:?}"),
    }
    let late = h.respond(&key, invite.make_response(200, "OK"));
    assert!(matches!(late, Err(EndpointError::Transaction(_))));
    // the UAC ACKs the 487 on the INVITE's branch
    let tag = sent[1].to().unwrap().tag().unwrap().to_owned();
    h.input(udp_peer(), &req("ACK", "z9hG4bKinv1", 1, Some(&tag), ""));
    assert!(h.take_events().is_empty());
    // a retransmitted CANCEL gets the same 200 again
    h.input(udp_peer(), &req("CANCEL", "z9hG4bKinv1", 1, None, ""));
    assert_eq!(h.sent_statuses(), [200]);
    h.advance(Duration::from_secs(40));
    assert_eq!(h.ep.server_transactions(), 0);
}

#[test]
fn cancel_after_200_only_answers_the_cancel() {
    let (mut h, key, invite) = invited(udp_peer());
    h.respond(&key, invite.make_response(200, "OK")).unwrap();
    h.take_sent();
    h.input(udp_peer(), &req("CANCEL", "z9hG4bKinv1", 1, None, ""));
    assert_eq!(h.sent_statuses(), [200]);
    assert_eq!(last_response(&h).cseq().unwrap().method, Method::Cancel);
    assert!(h.take_events().is_empty());
}

#[test]
fn unmatched_cancel_gets_481() {
    let mut h = Harness::new();
    h.input(udp_peer(), &req("CANCEL", "z9hG4bKnothing", 1, None, ""));
    assert_eq!(h.sent_statuses(), [481]);
    assert!(h.take_events().is_empty());
}

#[test]
fn bye_in_and_out_of_dialog() {
    let (mut h, key, invite) = invited(udp_peer());
    let contact = Uri::parse("sip:callmux@192.0.2.1:5060").unwrap();
    let mut dialog = Dialog::uas(&invite, "uas1", &contact).unwrap();
    let mut ok = invite.make_response(200, "OK").with_to_tag("uas1");
    ok.headers.push("Contact", format!("<{contact}>"));
    h.respond(&key, ok).unwrap();
    h.input(udp_peer(), &req("ACK", "z9hG4bKack1", 1, Some("uas1"), ""));
    assert!(matches!(h.take_events()[..], [Event::AckReceived { .. }]));

    h.input(udp_peer(), &req("BYE", "z9hG4bKbye1", 2, Some("uas1"), ""));
    let (bye_key, bye) = h.expect_request();
    assert_eq!(dialog.check_incoming(&bye), Ok(()));
    h.respond(&bye_key, bye.make_response(200, "OK")).unwrap();
    assert_eq!(last_response(&h).status, 200);

    // out of dialog: the endpoint still passes it up, the dialog layer says 481
    h.input(
        udp_peer(),
        &req("BYE", "z9hG4bKbye2", 3, Some("unknown"), ""),
    );
    let (stray_key, stray) = h.expect_request();
    let err = dialog.check_incoming(&stray).unwrap_err();
    assert_eq!(err, DialogError::NoMatch);
    let resp = stray.make_response(err.status_code(), "Call/Transaction Does Not Exist");
    h.respond(&stray_key, resp).unwrap();
    assert_eq!(last_response(&h).status, 481);

    // a retransmitted BYE is answered from the transaction
    h.take_sent();
    h.input(udp_peer(), &req("BYE", "z9hG4bKbye1", 2, Some("uas1"), ""));
    assert_eq!(h.sent_statuses(), [200]);
    assert!(h.take_events().is_empty());
}

#[test]
fn non_invite_transactions_linger_for_timer_j_on_udp_only() {
    let mut h = Harness::new();
    h.input(udp_peer(), &req("BYE", "z9hG4bKbye1", 2, Some("x"), ""));
    let (key, bye) = h.expect_request();
    h.respond(&key, bye.make_response(200, "OK")).unwrap();
    assert_eq!(h.ep.server_transactions(), 1);
    h.advance(Duration::from_secs(31));
    assert_eq!(h.ep.server_transactions(), 1);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.ep.server_transactions(), 0);

    h.input(tcp_peer(), &req("BYE", "z9hG4bKbye2", 3, Some("x"), ""));
    let (key, bye) = h.expect_request();
    h.respond(&key, bye.make_response(200, "OK")).unwrap();
    assert_eq!(h.ep.server_transactions(), 0, "Timer J is zero on TCP");
}

#[test]
fn options_is_answered_automatically_unless_disabled() {
    let mut h = Harness::new();
    h.input(udp_peer(), &req("OPTIONS", "z9hG4bKopt1", 1, None, ""));
    assert!(h.take_events().is_empty());
    let r = last_response(&h);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get("Allow"),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
    );
    assert_eq!(r.headers.get("Accept"), Some("application/sdp"));
    assert!(r.to().unwrap().tag().is_some());
    assert!(r
        .headers
        .get("Server")
        .is_some_and(|s| s.starts_with("callmux/")));

    let config = EndpointConfig {
        auto_options: false,
        ..EndpointConfig::default()
    };
    let mut h = Harness::with_config(config);
    h.input(udp_peer(), &req("OPTIONS", "z9hG4bKopt1", 1, None, ""));
    let (_, r) = h.expect_request();
    assert_eq!(r.method, Method::Options);
    assert!(h.sent.is_empty());
}

#[test]
fn unknown_method_gets_501_and_known_unsupported_405() {
    let mut h = Harness::new();
    h.input(udp_peer(), &req("FOO", "z9hG4bKfoo1", 1, None, ""));
    let r = last_response(&h);
    assert_eq!(r.status, 501);
    assert!(r.headers.get("Allow").is_some());
    h.input(udp_peer(), &req("SUBSCRIBE", "z9hG4bKsub1", 1, None, ""));
    let r = last_response(&h);
    assert_eq!(r.status, 405);
    assert!(r.headers.get("Allow").is_some_and(|a| a.contains("INVITE")));
    h.input(udp_peer(), &req("invite", "z9hG4bKlow1", 1, None, ""));
    assert_eq!(last_response(&h).status, 501, "methods are case-sensitive");
    assert!(h.take_events().is_empty());
}

#[test]
fn max_forwards_zero_gets_483() {
    let mut h = Harness::new();
    h.input(
        udp_peer(),
        &edited_req(
            "INVITE",
            "z9hG4bKmf0",
            "Max-Forwards: 70",
            "Max-Forwards: 0",
        ),
    );
    assert_eq!(h.sent_statuses(), [483]);
    assert!(h.take_events().is_empty());
    // missing Max-Forwards is fine (treated as 70)
    h.input(
        udp_peer(),
        &edited_req("INVITE", "z9hG4bKmf1", "Max-Forwards: 70\r\n", ""),
    );
    assert_eq!(h.take_events().len(), 1);
}

#[test]
fn unsupported_require_gets_420_and_unsupported_scheme_416() {
    let mut h = Harness::new();
    h.input(
        udp_peer(),
        &req("INVITE", "z9hG4bKreq1", 1, None, "Require: 100rel, foo\r\n"),
    );
    let r = last_response(&h);
    assert_eq!(r.status, 420);
    assert_eq!(r.headers.get("Unsupported"), Some("100rel, foo"));

    let config = EndpointConfig {
        supported_extensions: vec!["100rel".into(), "foo".into()],
        ..EndpointConfig::default()
    };
    let mut h = Harness::with_config(config);
    h.input(
        udp_peer(),
        &req("INVITE", "z9hG4bKreq1", 1, None, "Require: 100rel, foo\r\n"),
    );
    assert_eq!(h.take_events().len(), 1);

    let mut h = Harness::new();
    h.input(
        udp_peer(),
        &edited_req(
            "INVITE",
            "z9hG4bKuri1",
            "INVITE sip:callmux@192.0.2.1",
            "INVITE mailto:callmux@example.com",
        ),
    );
    assert_eq!(h.sent_statuses(), [416]);
}

#[test]
fn responses_follow_received_and_via_port_without_rport() {
    let mut h = Harness::new();
    h.input(udp_peer(), &edited_req("OPTIONS", "z9hG4bKo", ";rport", ""));
    let (_, t) = &h.sent[0];
    assert_eq!(
        t.peer.remote,
        addr("198.51.100.7:5062"),
        "Via port, not the source port"
    );
    let r = parse_response(&t.bytes);
    let via = r.top_via().unwrap();
    assert_eq!(via.received, None, "sent-by IP equals the source IP");
    assert_eq!(via.rport, None);

    h.input(
        udp_peer(),
        &edited_req(
            "OPTIONS",
            "z9hG4bKo2",
            "198.51.100.7:5062;branch=z9hG4bKo2;rport",
            "pc.example.com;branch=z9hG4bKo2",
        ),
    );
    let (_, t) = h.sent.last().unwrap();
    assert_eq!(
        t.peer.remote,
        addr("198.51.100.7:5060"),
        "received IP, default port"
    );
    assert_eq!(
        parse_response(&t.bytes)
            .top_via()
            .unwrap()
            .received
            .as_deref(),
        Some("198.51.100.7")
    );
}

#[test]
fn cseq_method_mismatch_gets_400() {
    let mut h = Harness::new();
    h.input(
        udp_peer(),
        &req_with_cseq_method("BYE", "INVITE", "z9hG4bKm", 1, Some("t"), ""),
    );
    let r = last_response(&h);
    assert_eq!(r.status, 400);
    assert!(r.headers.get("Warning").unwrap().contains("CSeq method"));
    assert!(matches!(
        h.take_events()[..],
        [Event::Malformed { answered: true, .. }]
    ));
}
