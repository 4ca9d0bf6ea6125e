//! Where responses go (RFC 3261 §18.2.2, RFC 3581) and how we stamp incoming Vias.

use std::net::{IpAddr, SocketAddr};

use super::{Peer, ServerTxKey};
use crate::headers::{Headers, Via};
use crate::lex;
use crate::message::Request;
use crate::method::Method;

/// Adds `received` when the source IP differs from the sent-by (RFC 3261 §18.2.1), and fills
/// in a requested `rport` with the source port, which also requires `received`
/// (RFC 3581 §4). Returns true when the Via changed.
pub(crate) fn stamp_via(via: &mut Via, peer: &Peer) -> bool {
    let src = peer.remote.ip();
    if via.rport == Some(None) {
        via.rport = Some(Some(peer.remote.port()));
        via.received = Some(src.to_string());
        return true;
    }
    let sent_by_ip = via.host.parse::<IpAddr>().ok();
    if sent_by_ip != Some(src) && via.received.as_deref() != Some(&src.to_string()) {
        via.received = Some(src.to_string());
        return true;
    }
    false
}

/// Destination for responses to a request whose (stamped) top Via is `via`. Streams reply
/// on the same connection. UDP replies to `received` (or the sent-by IP), at `rport` when
/// present, else the sent-by port, else 5060.
pub(crate) fn response_destination(via: &Via, peer: &Peer) -> Peer {
    if peer.transport.is_reliable() {
        return peer.clone();
    }
    let ip = via
        .received
        .as_deref()
        .and_then(|r| r.parse::<IpAddr>().ok())
        .or_else(|| via.host.parse::<IpAddr>().ok())
        .unwrap_or(peer.remote.ip());
    let port = match via.rport {
        Some(Some(p)) => p,
        _ => via.port.unwrap_or(5060),
    };
    Peer {
        transport: peer.transport,
        local: peer.local,
        remote: SocketAddr::new(ip, port),
        connection: None,
    }
}

/// Rewrites the first element of the first Via line.
pub(crate) fn replace_top_via(headers: &mut Headers, via: &Via) {
    if let Some(line) = headers.get_mut("Via") {
        let mut new = via.to_string();
        for rest in lex::split_list(line).into_iter().skip(1) {
            new.push_str(", ");
            new.push_str(rest);
        }
        *line = new;
    }
}

/// The server transaction key of a request (RFC 3261 §17.2.3). ACK maps to its INVITE.
/// Without the magic cookie (RFC 2543 peers) the key is built from Call-ID, CSeq number,
/// From tag and Request-URI, which an ACK for a non-2xx shares with its INVITE.
pub(crate) fn server_key(request: &Request, via: &Via) -> ServerTxKey {
    let method = match request.method {
        Method::Ack => Method::Invite,
        ref m => m.clone(),
    };
    let sent_by = via.sent_by().to_ascii_lowercase();
    let branch = match &via.branch {
        Some(b) if via.has_magic_cookie() => b.clone(),
        _ => format!(
            "rfc2543:{}:{}:{}:{}",
            request.call_id().unwrap_or(""),
            request.cseq().map(|c| c.seq).unwrap_or(0),
            request
                .from()
                .ok()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default(),
            request.uri
        ),
    };
    ServerTxKey {
        branch,
        sent_by,
        method,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::TransportKind;

    fn peer(transport: TransportKind, remote: &str) -> Peer {
        Peer {
            transport,
            local: "192.0.2.1:5060".parse().unwrap(),
            remote: remote.parse().unwrap(),
            connection: None,
        }
    }

    #[test]
    fn received_and_rport() {
        let p = peer(TransportKind::Udp, "203.0.113.7:40000");
        let mut v = Via::parse("SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK1").unwrap();
        assert!(stamp_via(&mut v, &p));
        assert_eq!(v.received.as_deref(), Some("203.0.113.7"));
        assert_eq!(
            response_destination(&v, &p).remote,
            "203.0.113.7:5062".parse().unwrap()
        );

        let mut v = Via::parse("SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK1;rport").unwrap();
        stamp_via(&mut v, &p);
        assert_eq!(v.rport, Some(Some(40000)));
        assert_eq!(
            response_destination(&v, &p).remote,
            "203.0.113.7:40000".parse().unwrap()
        );

        let mut v = Via::parse("SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK1").unwrap();
        assert!(!stamp_via(&mut v, &p));
        assert_eq!(
            response_destination(&v, &p).remote,
            "203.0.113.7:5060".parse().unwrap()
        );

        let mut v = Via::parse("SIP/2.0/UDP [2001:db8::5]:5070;rport").unwrap();
        let p6 = peer(TransportKind::Udp, "[2001:db8::9]:1234");
        stamp_via(&mut v, &p6);
        assert_eq!(
            response_destination(&v, &p6).remote,
            "[2001:db8::9]:1234".parse().unwrap()
        );
    }

    #[test]
    fn streams_reply_on_the_connection() {
        let mut p = peer(TransportKind::Tcp, "203.0.113.7:40000");
        p.connection = Some(crate::endpoint::ConnectionId(9));
        let v = Via::parse("SIP/2.0/TCP elsewhere.example:5060;branch=z9hG4bK1").unwrap();
        assert_eq!(response_destination(&v, &p), p);
    }

    #[test]
    fn top_via_is_replaced_in_place() {
        let mut h = Headers::new();
        h.push(
            "Via",
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        );
        h.push("Via", "SIP/2.0/UDP c;branch=z9hG4bK3");
        let mut v = h.top_via().unwrap();
        v.received = Some("1.2.3.4".into());
        replace_top_via(&mut h, &v);
        let all: Vec<_> = h.get_all("Via").collect();
        assert_eq!(
            all,
            [
                "SIP/2.0/UDP a;branch=z9hG4bK1;received=1.2.3.4, SIP/2.0/UDP b;branch=z9hG4bK2",
                "SIP/2.0/UDP c;branch=z9hG4bK3"
            ]
        );
    }
}
