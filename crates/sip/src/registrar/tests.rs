//! Binding table rules on a simulated clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn src(port: u16) -> Source {
    Source {
        transport: TransportKind::Udp,
        addr: SocketAddr::from(([203, 0, 113, 7], port)),
    }
}

fn entry(uri: &str, expires: Option<u32>) -> ContactEntry {
    ContactEntry {
        uri: uri.parse().unwrap(),
        expires,
        q: None,
    }
}

fn req(call_id: &str, cseq: u32, expires: Option<u32>, contacts: Contacts) -> RegisterRequest {
    RegisterRequest {
        aor_user: "alice".into(),
        call_id: call_id.into(),
        cseq,
        expires,
        contacts,
    }
}

fn table() -> BindingTable {
    BindingTable::new(ExpiryLimits {
        min: 30,
        max: 600,
        default: 300,
    })
}

#[test]
fn register_refresh_expire() {
    let mut t = table();
    let r = req(
        "c1",
        1,
        Some(120),
        Contacts::List(vec![entry("sip:alice@10.0.0.2:5062", None)]),
    );
    let a = t.apply("alice", &r, src(40000), at(0)).unwrap();
    assert_eq!((a.added, a.refreshed, a.removed), (1, 0, 0));
    let b = t.lookup("alice", at(10));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].remaining(at(10)), 110);
    assert_eq!(b[0].source.addr.port(), 40000);
    // A refresh from a new NAT port moves the binding there.
    let r = req(
        "c1",
        2,
        Some(120),
        Contacts::List(vec![entry("sip:alice@10.0.0.2:5062", None)]),
    );
    let a = t.apply("alice", &r, src(40001), at(100)).unwrap();
    assert_eq!(a.refreshed, 1);
    assert_eq!(t.lookup("alice", at(100))[0].source.addr.port(), 40001);
    assert_eq!(t.next_expiry(), Some(at(220)));
    // Still there just before, gone after.
    assert_eq!(t.lookup("alice", at(219)).len(), 1);
    assert!(t.lookup("alice", at(220)).is_empty());
    assert!(t.expire(at(219)).is_empty());
    assert_eq!(t.expire(at(221)), vec!["alice".to_string()]);
    assert!(t.is_empty());
}

#[test]
fn expiry_sources_limits_and_423() {
    let mut t = table();
    // Contact param beats the header; the header beats the default; max clamps.
    let r = req(
        "c1",
        1,
        Some(100),
        Contacts::List(vec![
            entry("sip:a@10.0.0.1", Some(40)),
            entry("sip:a@10.0.0.2", None),
            entry("sip:a@10.0.0.3", Some(5000)),
        ]),
    );
    t.apply("alice", &r, src(1), at(0)).unwrap();
    let mut left: Vec<u32> = t
        .lookup("alice", at(0))
        .iter()
        .map(|b| b.remaining(at(0)))
        .collect();
    left.sort_unstable();
    assert_eq!(left, vec![40, 100, 600]);
    let r = req(
        "c2",
        1,
        None,
        Contacts::List(vec![entry("sip:a@10.0.0.4", None)]),
    );
    t.apply("alice", &r, src(1), at(0)).unwrap();
    assert!(t
        .lookup("alice", at(0))
        .iter()
        .any(|b| b.remaining(at(0)) == 300));
    // Too brief: the whole request is refused, nothing changes.
    let before = t.lookup("alice", at(0));
    let r = req(
        "c3",
        1,
        Some(100),
        Contacts::List(vec![
            entry("sip:a@10.0.0.5", None),
            entry("sip:a@10.0.0.6", Some(10)),
        ]),
    );
    assert_eq!(
        t.apply("alice", &r, src(1), at(0)),
        Err(RegisterError::IntervalTooBrief { min_expires: 30 })
    );
    assert_eq!(t.lookup("alice", at(0)), before);
    assert_eq!(
        RegisterError::IntervalTooBrief { min_expires: 30 }.status(),
        423
    );
}

#[test]
fn call_id_and_cseq_ordering() {
    let mut t = table();
    let c = || Contacts::List(vec![entry("sip:alice@10.0.0.2", None)]);
    t.apply("alice", &req("c1", 5, None, c()), src(1), at(0))
        .unwrap();
    // Same Call-ID, CSeq not higher: out of order (a delayed retransmission or replay).
    for cseq in [5, 4] {
        assert_eq!(
            t.apply("alice", &req("c1", cseq, Some(0), c()), src(1), at(1)),
            Err(RegisterError::OutOfOrder)
        );
    }
    assert_eq!(t.lookup("alice", at(1)).len(), 1);
    // Another Call-ID (the phone rebooted) replaces it whatever the CSeq.
    let a = t
        .apply("alice", &req("c2", 1, None, c()), src(2), at(2))
        .unwrap();
    assert_eq!(a.refreshed, 1);
    let b = t.lookup("alice", at(2));
    assert_eq!((b[0].call_id.as_str(), b[0].cseq), ("c2", 1));
    // Wildcard obeys the same rule, then removes all.
    assert_eq!(
        t.apply(
            "alice",
            &req("c2", 1, Some(0), Contacts::Wildcard),
            src(2),
            at(3)
        ),
        Err(RegisterError::OutOfOrder)
    );
    let a = t
        .apply(
            "alice",
            &req("c2", 2, Some(0), Contacts::Wildcard),
            src(2),
            at(3),
        )
        .unwrap();
    assert_eq!(a.removed, 1);
    assert!(t.lookup("alice", at(3)).is_empty());
    // Ordering constraints die with the binding: an old CSeq may register anew later.
    t.apply("alice", &req("c1", 1, Some(60), c()), src(1), at(4))
        .unwrap();
    t.expire(at(100));
    t.apply("alice", &req("c1", 1, Some(60), c()), src(1), at(100))
        .unwrap();
}

#[test]
fn several_contacts_unregister_one_query_and_preference() {
    let mut t = table();
    let mut e1 = entry("sip:alice@10.0.0.1", None);
    e1.q = Some(300);
    let e2 = entry("sip:alice@10.0.0.2", None);
    let mut e3 = entry("sip:alice@10.0.0.3", None);
    e3.q = Some(900);
    t.apply(
        "alice",
        &req("c1", 1, None, Contacts::List(vec![e1, e2, e3])),
        src(1),
        at(0),
    )
    .unwrap();
    let hosts: Vec<String> = t
        .lookup("alice", at(0))
        .iter()
        .map(|b| b.contact.host.clone())
        .collect();
    assert_eq!(hosts, ["10.0.0.2", "10.0.0.3", "10.0.0.1"]);
    // A query changes nothing.
    let a = t
        .apply("alice", &req("c9", 1, None, Contacts::Query), src(1), at(1))
        .unwrap();
    assert!(!a.changed());
    // expires=0 on one contact removes only that one; unknown contacts with 0 are ignored.
    let a = t
        .apply(
            "alice",
            &req(
                "c1",
                2,
                None,
                Contacts::List(vec![
                    entry("sip:alice@10.0.0.2", Some(0)),
                    entry("sip:alice@10.0.0.99", Some(0)),
                ]),
            ),
            src(1),
            at(2),
        )
        .unwrap();
    assert_eq!((a.added, a.removed), (0, 1));
    assert_eq!(t.lookup("alice", at(2)).len(), 2);
    assert!(t.lookup("bob", at(2)).is_empty());
    assert_eq!(t.len(), 2);
}

#[test]
fn per_aor_contact_limit_and_restore() {
    let mut t = table();
    for i in 0..MAX_CONTACTS {
        let r = req(
            &format!("c{i}"),
            1,
            None,
            Contacts::List(vec![entry(&format!("sip:a@10.0.1.{i}"), None)]),
        );
        t.apply("alice", &r, src(1), at(0)).unwrap();
    }
    let r = req(
        "cx",
        1,
        None,
        Contacts::List(vec![entry("sip:a@10.0.2.1", None)]),
    );
    assert_eq!(
        t.apply("alice", &r, src(1), at(0)),
        Err(RegisterError::TooManyContacts { max: MAX_CONTACTS })
    );
    // Restore keeps live bindings only and replaces the same contact.
    let mut u = table();
    let live = t.lookup("alice", at(0))[0].clone();
    let mut lapsed = live.clone();
    lapsed.contact = "sip:a@10.9.9.9".parse().unwrap();
    lapsed.expires_at = at(0);
    u.restore("alice", live.clone(), at(1));
    u.restore("alice", live.clone(), at(1));
    u.restore("alice", lapsed, at(1));
    assert_eq!(u.lookup("alice", at(1)), vec![live]);
}
