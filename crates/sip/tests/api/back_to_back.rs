//! Two endpoints wired back to back: whole calls, loss, determinism.

use std::time::Duration;

use callmux_sip::{Dialog, Endpoint, Event, Method, Request, Response, TransportKind, Uri};

use crate::harness::Pair;

fn invite_from_a(ep: &mut Endpoint) -> Request {
    let mut r = Request::new(Method::Invite, Uri::parse("sip:callmux@10.0.0.2").unwrap());
    r.headers
        .push("From", format!("<sip:alice@10.0.0.1>;tag={}", ep.new_tag()));
    r.headers.push("To", "<sip:callmux@10.0.0.2>");
    r.headers.push("Call-ID", ep.new_call_id("10.0.0.1"));
    r.headers.push("CSeq", "1 INVITE");
    r.headers.push("Contact", "<sip:alice@10.0.0.1:5060>");
    r.set_body("application/sdp", b"v=0\r\n".to_vec());
    r
}

fn take_responses(events: &mut Vec<Event>) -> Vec<Response> {
    let mut out = Vec::new();
    events.retain(|e| match e {
        Event::ResponseReceived { response, .. } => {
            out.push(response.clone());
            false
        }
        _ => true,
    });
    out
}

/// A full call: INVITE (first two copies lost), 180, 200, ACK (first one lost), BYE.
/// Returns the pair's message log so callers can compare runs.
fn call(transport: TransportKind, lossy: bool) -> Vec<(Duration, bool, String, bool)> {
    let mut p = Pair::new(transport);
    if lossy {
        let mut invites = 0;
        let mut acks = 0;
        p.drop = Box::new(move |from_a, t| {
            let text = String::from_utf8_lossy(&t.bytes);
            if from_a && text.starts_with("INVITE ") {
                invites += 1;
                return invites <= 2;
            }
            if from_a && text.starts_with("ACK ") {
                acks += 1;
                return acks == 1;
            }
            false
        });
    }
    let invite = invite_from_a(&mut p.a);
    let peer = p.a_to_b();
    let sent_invite = invite.clone();
    p.a.send_request(p.now, invite, peer).unwrap();
    p.drive_for(Duration::from_secs(3));
    let (b_key, b_invite) = match p.b_events.as_slice() {
        [Event::IncomingRequest { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    p.b_events.clear();
    assert_eq!(b_invite.body, b"v=0\r\n");

    // b rings, then answers
    let contact = Uri::parse("sip:callmux@10.0.0.2:5060").unwrap();
    let b_tag = p.b.new_tag();
    let mut b_dialog = Dialog::uas(&b_invite, &b_tag, &contact).unwrap();
    let ringing = b_invite.make_response(180, "Ringing").with_to_tag(&b_tag);
    p.b.respond(p.now, &b_key, ringing).unwrap();
    p.settle();
    let mut ok = b_invite.make_response(200, "OK").with_to_tag(&b_tag);
    ok.headers.push("Contact", format!("<{contact}>"));
    ok.set_body("application/sdp", b"v=0\r\n".to_vec());
    p.b.respond(p.now, &b_key, ok).unwrap();
    p.settle();

    // a ACKs every 2xx it sees (the first ACK may be lost; b retransmits the 200)
    let mut a_dialog = None;
    for _ in 0..10 {
        for resp in take_responses(&mut p.a_events) {
            if resp.is_success() {
                let d = a_dialog.get_or_insert_with(|| Dialog::uac(&sent_invite, &resp).unwrap());
                let ack = d.ack_for_2xx(&sent_invite, &resp);
                let peer = p.a_to_b();
                p.a.send_stateless(ack, peer);
            }
        }
        p.settle();
        if p.b_events
            .iter()
            .any(|e| matches!(e, Event::AckReceived { .. }))
        {
            break;
        }
        p.progress();
    }
    assert!(
        matches!(p.b_events.as_slice(), [Event::AckReceived { .. }]),
        "{:?}",
        p.b_events
    );
    p.b_events.clear();
    let mut a_dialog = a_dialog.expect("a saw the 200");
    assert_eq!(a_dialog.id.remote_tag, b_tag);

    // a hangs up
    let bye = a_dialog.create_request(Method::Bye);
    let peer = p.a_to_b();
    p.a.send_request(p.now, bye, peer).unwrap();
    p.settle();
    let (bye_key, bye) = match p.b_events.as_slice() {
        [Event::IncomingRequest { key, request, .. }] => (key.clone(), request.clone()),
        other => panic!("{other:?}"),
    };
    p.b_events.clear();
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(b_dialog.check_incoming(&bye), Ok(()));
    p.b.respond(p.now, &bye_key, bye.make_response(200, "OK"))
        .unwrap();
    p.settle();
    let finals: Vec<u16> = take_responses(&mut p.a_events)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(finals.last(), Some(&200));
    assert!(p.a_events.is_empty(), "{:?}", p.a_events);

    // let every timer run out: nothing leaks, nobody times out
    p.drive_for(Duration::from_secs(120));
    assert!(
        p.a_events.is_empty() && p.b_events.is_empty(),
        "{:?} {:?}",
        p.a_events,
        p.b_events
    );
    assert_eq!(p.a.client_transactions() + p.a.server_transactions(), 0);
    assert_eq!(p.b.client_transactions() + p.b.server_transactions(), 0);
    p.log
}

#[test]
fn call_over_udp_with_loss_recovers_by_retransmission() {
    let log = call(TransportKind::Udp, true);
    let invites: Vec<_> = log
        .iter()
        .filter(|(_, a, l, _)| *a && l.starts_with("INVITE"))
        .collect();
    assert_eq!(
        invites.len(),
        3,
        "two lost, the third (at 1.5 s) gets through"
    );
    assert_eq!(invites[2].0, Duration::from_millis(1500));
    let oks = log
        .iter()
        .filter(|(_, a, l, _)| !*a && l.starts_with("SIP/2.0 200"))
        .count();
    assert!(
        oks >= 3,
        "200 to INVITE retransmitted until the second ACK, plus 200 to BYE"
    );
}

#[test]
fn call_over_tcp_has_no_request_retransmissions() {
    let log = call(TransportKind::Tcp, false);
    let invites = log
        .iter()
        .filter(|(_, _, l, _)| l.starts_with("INVITE"))
        .count();
    assert_eq!(invites, 1);
    let byes = log
        .iter()
        .filter(|(_, _, l, _)| l.starts_with("BYE"))
        .count();
    assert_eq!(byes, 1);
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut p = Pair::new(TransportKind::Udp);
        let invite = invite_from_a(&mut p.a);
        let peer = p.a_to_b();
        p.a.send_request(p.now, invite, peer).unwrap();
        p.drive_for(Duration::from_secs(1));
        let mut out = Vec::new();
        for e in &p.b_events {
            if let Event::IncomingRequest { key, request, .. } = e {
                let resp = request.make_response(486, "Busy Here");
                p.b.respond(p.now, key, resp).unwrap();
                out.push(request.to_bytes());
            }
        }
        p.drive_for(Duration::from_secs(60));
        (out, p.log, p.a.stats(), p.b.stats())
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert!(!a.0.is_empty());
}
