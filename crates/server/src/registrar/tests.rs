//! REGISTER handling end to end through digest, the table and the store (no sockets).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callmux_sip::auth::{authorize, Algorithm, Challenge};
use callmux_sip::registrar::ExpiryLimits;

use super::*;

fn settings() -> RegistrarSettings {
    RegistrarSettings {
        limits: ExpiryLimits {
            min: 30,
            max: 600,
            default: 300,
        },
        keepalive: Some(Duration::from_secs(20)),
    }
}

fn digest() -> DigestSettings {
    let mut users = HashMap::new();
    users.insert("alice".to_string(), "pw-a".to_string());
    users.insert("bob".to_string(), "pw-b".to_string());
    DigestSettings {
        realm: "callmux".into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        users,
        nonce_ttl: Duration::from_secs(300),
        fail_burst: 100,
        fail_per_minute: 100.0,
    }
}

fn peer() -> Peer {
    Peer {
        transport: TransportKind::Udp,
        local: "192.0.2.1:5060".parse().unwrap(),
        remote: "203.0.113.9:40000".parse().unwrap(),
        connection: None,
    }
}

fn register(aor: &str, cseq: u32, contact: Option<&str>, expires: Option<u32>) -> Request {
    let mut r = Request::new(Method::Register, "sip:192.0.2.1:5060".parse().unwrap());
    r.headers.push(
        "Via",
        "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKr;rport=40000;received=203.0.113.9",
    );
    r.headers
        .push("From", format!("<sip:{aor}@192.0.2.1>;tag=f"));
    r.headers.push("To", format!("<sip:{aor}@192.0.2.1>"));
    r.headers.push("Call-ID", format!("reg-{aor}"));
    r.headers.push("CSeq", format!("{cseq} REGISTER"));
    if let Some(c) = contact {
        r.headers.push("Contact", c);
    }
    if let Some(e) = expires {
        r.headers.push("Expires", e.to_string());
    }
    r
}

/// Sends `req`, answers the 401 with `user`/`password` (`alg`), returns the final response.
fn with_auth(
    reg: &mut Registrar,
    mut req: Request,
    user: &str,
    password: &str,
    alg: Algorithm,
    nc: u32,
) -> Response {
    let now = Instant::now();
    let first = reg.handle(&req, &peer(), now, SystemTime::now());
    assert_eq!(first.status, 401);
    let challenges: Vec<Challenge> = first
        .headers
        .get_all("WWW-Authenticate")
        .map(|v| Challenge::parse(v).unwrap())
        .collect();
    assert_eq!(
        challenges.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
        vec![Algorithm::Sha256, Algorithm::Md5]
    );
    let ch = challenges.iter().find(|c| c.algorithm == alg).unwrap();
    let creds = authorize(
        ch,
        user,
        password,
        "REGISTER",
        &req.uri.to_string(),
        "cn",
        nc,
    )
    .unwrap();
    req.headers.push("Authorization", creds.to_string());
    reg.handle(&req, &peer(), now, SystemTime::now())
}

/// alice (MD5, her right password) sends this REGISTER with CSeq `cseq` (and nonce count
/// `cseq`: one per request, as a phone counts), answering the challenge.
fn alice(reg: &mut Registrar, cseq: u32, contact: Option<&str>, expires: Option<u32>) -> Response {
    with_auth(
        reg,
        register("alice", cseq, contact, expires),
        "alice",
        "pw-a",
        Algorithm::Md5,
        cseq,
    )
}

fn open(dir: &std::path::Path) -> Registrar {
    let mut acls = HashMap::new();
    acls.insert(
        "bob".to_string(),
        Acl::parse(&["203.0.113.0/24".to_string()]).unwrap(),
    );
    Registrar::open(settings(), digest(), acls, b"secret", dir).unwrap()
}

#[test]
fn register_query_unregister_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(dir.path());
    let r = alice(
        &mut reg,
        1,
        Some("<sip:alice@10.0.0.2:5062>;expires=120"),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let contact = r.headers.get("Contact").unwrap();
    assert!(
        contact.starts_with("<sip:alice@10.0.0.2:5062>;expires="),
        "{contact}"
    );
    assert!(r.headers.get("Date").unwrap().ends_with(" GMT"));
    let b = reg.table.contacts("alice");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].source.addr, peer().remote);
    assert!(is_natted(&b[0]));
    // Reopening the store (a restart) brings the binding back.
    let reg2 = open(dir.path());
    assert_eq!(reg2.table.contacts("alice").len(), 1);
    // A query lists it; a wildcard removes it, on disk too.
    let q = with_auth(
        &mut reg,
        register("alice", 2, None, None),
        "alice",
        "pw-a",
        Algorithm::Sha256,
        2,
    );
    assert_eq!(q.status, 200);
    assert_eq!(q.headers.get_all("Contact").count(), 1);
    let u = alice(&mut reg, 3, Some("*"), Some(0));
    assert_eq!(u.status, 200);
    assert_eq!(u.headers.get_all("Contact").count(), 0);
    assert!(reg.table.contacts("alice").is_empty());
    assert!(open(dir.path()).table.contacts("alice").is_empty());
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(dir.path());
    let c = Some("<sip:alice@10.0.0.2:5062>");
    // Wrong password and unknown user: 403 alike.
    for (user, pw) in [("alice", "nope"), ("mallory", "pw-a")] {
        let r = with_auth(
            &mut reg,
            register(user, 1, c, None),
            user,
            pw,
            Algorithm::Md5,
            1,
        );
        assert_eq!(r.status, 403, "{user}");
    }
    // Bob may register from 203.0.113.0/24 only (the test peer is 203.0.113.9).
    assert!(reg.source_allowed("bob", "203.0.113.200".parse().unwrap()));
    assert!(!reg.source_allowed("bob", "198.51.100.1".parse().unwrap()));
    assert!(reg.source_allowed("alice", "198.51.100.1".parse().unwrap()));
    // Bob's credentials cannot register Alice.
    let r = with_auth(
        &mut reg,
        register("alice", 1, c, None),
        "bob",
        "pw-b",
        Algorithm::Md5,
        1,
    );
    assert_eq!(r.status, 403);
    assert!(r.headers.get("Warning").unwrap().contains("To user"));
    // Too brief: 423 with Min-Expires.
    let r = alice(&mut reg, 1, c, Some(5));
    assert_eq!(r.status, 423);
    assert_eq!(r.headers.get("Min-Expires"), Some("30"));
    // Wildcard without Expires: 0 → 400.
    let r = alice(&mut reg, 2, Some("*"), None);
    assert_eq!(r.status, 400);
    assert!(reg.table.contacts("alice").is_empty());
}

#[test]
fn keepalives_go_to_natted_sources_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(dir.path());
    let r = alice(
        &mut reg,
        1,
        Some("<sip:alice@10.0.0.2:5062>, <sip:alice@203.0.113.9:40000>"),
        None,
    );
    assert_eq!(r.status, 200);
    let local = "192.0.2.1:5060".parse().unwrap();
    let now = Instant::now();
    assert!(reg.tick(now, local).is_empty(), "not due yet");
    let due = reg.tick(now + Duration::from_secs(21), local);
    assert_eq!(due.len(), 1);
    let (req, p) = &due[0];
    assert_eq!(req.method, Method::Options);
    assert_eq!(req.uri.host, "10.0.0.2");
    assert_eq!(p.remote, peer().remote);
    assert!(reg.tick(now + Duration::from_secs(22), local).is_empty());
    assert!(reg.deadline().is_some());
}

#[test]
fn http_dates() {
    assert_eq!(httpdate(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        httpdate(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert_eq!(
        httpdate(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
}

#[test]
fn an_old_nonce_with_the_right_password_is_rechallenged_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(dir.path());
    let mut req = register("alice", 1, Some("<sip:alice@10.0.0.2:5062>"), None);
    // A challenge issued ten minutes ago (nonce_ttl is five).
    let old = SystemTime::now() - Duration::from_secs(600);
    let first = reg.auth.challenge_response(&req, false, old);
    let ch = first
        .headers
        .get_all("WWW-Authenticate")
        .map(|v| Challenge::parse(v).unwrap())
        .find(|c| c.algorithm == Algorithm::Md5)
        .unwrap();
    let creds = authorize(
        &ch,
        "alice",
        "pw-a",
        "REGISTER",
        &req.uri.to_string(),
        "c",
        1,
    )
    .unwrap();
    req.headers.push("Authorization", creds.to_string());
    let r = reg.handle(&req, &peer(), Instant::now(), SystemTime::now());
    assert_eq!(r.status, 401);
    let fresh: Vec<Challenge> = r
        .headers
        .get_all("WWW-Authenticate")
        .map(|v| Challenge::parse(v).unwrap())
        .collect();
    assert!(fresh.iter().all(|c| c.stale), "{fresh:?}");
    assert!(reg.table.contacts("alice").is_empty());
}
