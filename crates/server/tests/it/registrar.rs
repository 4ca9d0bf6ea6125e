//! Phones as users, end to end against the real binary: REGISTER with digest (SIPp with
//! MD5; a raw client with SHA-256), expiry, un-register, 423, bindings kept across a
//! restart, and `connect` to `{"type":"app","user":…}`: the registered phone rings and
//! answers (first of several wins, the others are cancelled), or the NCCO goes on when the
//! user is not registered.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use crate::reg_client::{self, RegClient};
use callmux_sip::auth::Algorithm;

/// A config with auth required, users alice and bob, short registrar limits, and (if
/// `caller`) a trusted trunk address for unauthenticated test callers.
fn config(dir: &Path, algorithms: &str, caller: Option<IpAddr>) -> Vec<String> {
    let trunk = caller.map_or_else(String::new, |ip| {
        format!("\n[[trunk]]\nname = \"testcaller\"\nuri = \"sip:{{number}}@127.0.0.1:5999\"\nacl = [\"{ip}\"]\n")
    });
    let text = format!(
        "[sip]\nauth = \"required\"\nauth_algorithms = {algorithms}\n\n\
         [registrar]\nmin_expires_s = 2\ndefault_expires_s = 60\nkeepalive_s = 0\n\n\
         [[user]]\nname = \"alice\"\npassword = \"alice pw\"\n\n\
         [[user]]\nname = \"bob\"\npassword = \"bob pw\"\n\n\
         [[user]]\nname = \"carol\"\npassword = \"carol pw\"\nallow = [\"10.0.0.0/8\"]\n{trunk}"
    );
    let p = dir.join("callmux.toml");
    std::fs::write(&p, text).unwrap();
    vec!["--config".into(), p.display().to_string()]
}

/// A server on `ip` with [`config`]'s users (MD5 only, no trunk) and its data in `dir` (kept
/// across restarts).
fn md5_server(dir: &Arc<tempfile::TempDir>, ip: IpAddr) -> Server {
    Server::start_in(
        Arc::clone(dir),
        ServerOptions {
            extra_args: config(dir.path(), "[\"MD5\"]", None),
            ..Default::default()
        },
        Some(ip),
    )
}

/// Runs tests/sipp/reg_register.xml from `local` with these credentials and asserts that
/// SIPp saw the expected final `status` (failing with SIPp's output).
fn sipp_register(
    server: &Server,
    local: SocketAddr,
    user: &str,
    password: &str,
    contact: &str,
    expires: u32,
    status: u16,
) {
    let sipp = Sipp::prepare(
        "reg_register.xml",
        &[
            ("USER", user.to_string()),
            ("CONTACT", contact.to_string()),
            ("EXPIRES", expires.to_string()),
            ("STATUS", status.to_string()),
        ],
    );
    let out = output_within(
        {
            let mut c = Command::new("sipp");
            c.arg(server.sip.to_string())
                .arg("-sf")
                .arg(&sipp.scenario)
                .arg("-i")
                .arg(local.ip().to_string())
                .arg("-p")
                .arg(local.port().to_string())
                .args(["-m", "1", "-nostdin", "-timeout", "15s", "-timeout_error"])
                .args(["-au", user, "-ap", password])
                .current_dir(sipp.dir.path())
                .stdin(Stdio::null());
            c
        },
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "SIPp REGISTER ({user}, expecting {status}) failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A SIPp call with digest credentials (tests/data/sipp/uac_auth_tone.xml); its output.
fn sipp_invite_as(server: &Server, user: &str, password: &str) -> std::process::Output {
    let sipp = Sipp::tone_template(&data_scenario("uac_auth_tone.xml"), 1000, 1.0, 500, &[]);
    sipp.run(
        server.ip,
        server.sip,
        &["-m", "1", "-s", "100", "-au", user, "-ap", password],
        Duration::from_secs(10),
    )
}

fn hosts_ports(contacts: &[String]) -> Vec<String> {
    let mut v: Vec<String> = contacts
        .iter()
        .map(|c| {
            c.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn sipp_registers_good_bad_expiry_unregister_and_restart_keeps_bindings() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let ip = unique_ip();
    let mut server = md5_server(&dir, ip);
    // Carol may call only from 10.0.0.0/8: refused from loopback, good password or not.
    assert!(!sipp_invite_as(&server, "carol", "carol pw")
        .status
        .success());
    assert!(server
        .log_text()
        .contains("INVITE refused: source not allowed for this user"));
    assert!(server.recordings().is_empty());
    // Alice (no allow list) calls in from the same address with her password.
    let out = sipp_invite_as(&server, "alice", "alice pw");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.wait_recordings(1, Duration::from_secs(10));
    let phone1 = SocketAddr::new(ip, 5071);
    let phone2 = SocketAddr::new(ip, 5072);
    // Good credentials: bound.
    let c1 = format!("<sip:alice@{phone1}>");
    sipp_register(&server, phone1, "alice", "alice pw", &c1, 60, 200);
    // Wrong password and unknown user: 403, nothing bound.
    sipp_register(
        &server,
        phone2,
        "alice",
        "wrong",
        "<sip:alice@10.9.9.9>",
        60,
        403,
    );
    sipp_register(
        &server,
        phone2,
        "mallory",
        "alice pw",
        "<sip:mallory@10.9.9.9>",
        60,
        403,
    );
    // Too brief for min_expires_s = 2? 1 s is: 423.
    sipp_register(
        &server,
        phone2,
        "alice",
        "alice pw",
        "<sip:alice@10.9.9.8>",
        1,
        423,
    );
    let mut q = RegClient::new(SocketAddr::new(ip, 5079), server.sip, "alice", "alice pw");
    assert_eq!(hosts_ports(&q.query()), vec![format!("sip:alice@{phone1}")]);
    // A second contact for 2 s: both listed, then the short one expires on its own.
    let c2 = format!("<sip:alice@{phone2}>");
    sipp_register(&server, phone2, "alice", "alice pw", &c2, 2, 200);
    assert_eq!(q.query().len(), 2);
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(hosts_ports(&q.query()), vec![format!("sip:alice@{phone1}")]);
    assert!(
        server.log_text().contains("registration expired"),
        "the lapsed binding is removed, not just hidden"
    );
    // Bob registers too; a restart keeps both users' bindings.
    let bob_phone = SocketAddr::new(ip, 5073);
    sipp_register(
        &server,
        bob_phone,
        "bob",
        "bob pw",
        &format!("<sip:bob@{bob_phone}>"),
        60,
        200,
    );
    server.stop();
    let mut server = md5_server(&dir, ip);
    assert!(server.log_text().contains("registrations reloaded"));
    let mut q = RegClient::new(SocketAddr::new(ip, 5078), server.sip, "alice", "alice pw");
    assert_eq!(hosts_ports(&q.query()), vec![format!("sip:alice@{phone1}")]);
    let mut qb = RegClient::new(SocketAddr::new(ip, 5077), server.sip, "bob", "bob pw");
    assert_eq!(qb.query().len(), 1);
    // Un-register everything with `*`.
    sipp_register(&server, phone1, "alice", "alice pw", "*", 0, 200);
    assert!(q.query().is_empty());
    assert_eq!(qb.query().len(), 1, "bob's binding is his own");
    server.stop();
}

#[test]
fn sha256_expires_rules_and_wrong_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerOptions {
        extra_args: config(dir.path(), "[\"SHA-256\", \"MD5\"]", None),
        ..Default::default()
    });
    let mut c = RegClient::new(
        SocketAddr::new(server.ip, 5071),
        server.sip,
        "alice",
        "alice pw",
    );
    // Both algorithms offered, SHA-256 first.
    let contact = format!("<sip:alice@{}>;expires=30", c.local());
    let r = c.register_as(Some(&contact), Some(120), Algorithm::Sha256, "alice pw");
    assert_eq!(r.status, 200, "{r:?}");
    let listed = reg_client::contacts(&r);
    assert_eq!(listed.len(), 1);
    let expires: u32 = listed[0]
        .rsplit("expires=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (28..=30).contains(&expires),
        "contact expires wins: {expires}"
    );
    assert!(r.headers.get("Date").is_some());
    // Above the maximum (3600 by default): shortened.
    let r = c.register(Some(&format!("<sip:alice@{}>", c.local())), Some(99_999));
    let e: u32 = reg_client::contacts(&r)[0]
        .rsplit("expires=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&e), "{e}");
    // Below the minimum: 423 with Min-Expires.
    let r = c.register(Some("<sip:alice@10.1.1.1>"), Some(1));
    assert_eq!(r.status, 423);
    assert_eq!(r.headers.get("Min-Expires"), Some("2"));
    // Wrong password with SHA-256: 403.
    let r = c.register_as(
        Some("<sip:alice@10.1.1.1>"),
        None,
        Algorithm::Sha256,
        "nope",
    );
    assert_eq!(r.status, 403);
    // Carol may register only from 10.0.0.0/8: 403 from loopback, good password or not.
    let mut carol = RegClient::new(
        SocketAddr::new(server.ip, 5073),
        server.sip,
        "carol",
        "carol pw",
    );
    let r = carol.register(Some("<sip:carol@10.1.1.3>"), None);
    assert_eq!(r.status, 403);
    assert!(r
        .headers
        .get("Warning")
        .unwrap()
        .contains("not allowed for this user"));
    // Wildcard without Expires: 0 → 400.
    let r = c.register(Some("*"), None);
    assert_eq!(r.status, 400);
    assert_eq!(c.query().len(), 1);
}

/// Record split, then connect to the registered user alice.
const RECORD_THEN_ALICE: &str = r#"[{"action":"record","split":"conversation"},{"action":"connect","endpoint":[{"type":"app","user":"alice"}]}]"#;

/// A server on `ip` with [`config`]'s users (MD5) that trusts calls from `caller` and runs
/// `ncco`.
fn user_server(ip: IpAddr, caller: IpAddr, ncco: &str, rtp_ports: Option<&str>) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let opts = ServerOptions {
        extra_args: config(dir.path(), "[\"MD5\"]", Some(caller)),
        ncco: Some(ncco.into()),
        rtp_ports: rtp_ports.map(str::to_string),
    };
    Server::start_in(dir, opts, Some(ip))
}

/// Registers `user` from `phone` (so calls come back to that address), then starts a
/// `callmux answer` there streaming `tone` Hz.
fn phone(server: &Server, phone: SocketAddr, user: &str, pw: &str, args: &[&str]) -> Answerer {
    sipp_register(
        server,
        phone,
        user,
        pw,
        &format!("<sip:{user}@{phone}>"),
        60,
        200,
    );
    Answerer::start(phone.ip(), phone.port(), args)
}

#[test]
fn connect_to_a_registered_user_records_caller_left_and_phone_right() {
    let ip = unique_ip();
    let caller = unique_ip();
    let server = user_server(ip, caller, RECORD_THEN_ALICE, Some("22000-22999"));
    let _alice = phone(
        &server,
        SocketAddr::new(ip, 5081),
        "alice",
        "alice pw",
        &["--tone", "1000", "--calls", "1"],
    );
    call_from_ok(&server, caller, &["--tone", "440", "--seconds", "3"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_channels(&a, 2, "split");
    assert_mostly(&tones(&a, 0), 440.0, 20, "caller left");
    assert_mostly(&tones(&a, 1), 1000.0, 20, "phone right");
}

#[test]
fn connect_forks_to_every_contact_first_answer_wins_others_cancelled() {
    let ip = unique_ip();
    let caller = unique_ip();
    let server = user_server(ip, caller, RECORD_THEN_ALICE, None);
    // Desk phone rings for ever; softphone answers after 1 s with 1700 Hz.
    let desk = phone(
        &server,
        SocketAddr::new(ip, 5081),
        "alice",
        "alice pw",
        &["--ring-ms", "60000", "--calls", "1"],
    );
    let soft = phone(
        &server,
        SocketAddr::new(ip, 5082),
        "alice",
        "alice pw",
        &["--tone", "1700", "--ring-ms", "1000", "--calls", "1"],
    );
    call_from_ok(&server, caller, &["--tone", "440", "--seconds", "4"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    // Channel 2 is what the caller heard: ringback while both phones rang, then the
    // softphone.
    assert_mostly(
        &tones_between(&a, 1, 1500, a.duration_ms),
        1700.0,
        15,
        "the softphone answered",
    );
    assert!(
        desk.log_text().contains("cancelled while ringing"),
        "desk phone: {}",
        desk.log_text()
    );
    drop(soft);
}

#[test]
fn connect_to_an_unregistered_user_fails_with_a_reason_and_the_ncco_goes_on() {
    let ip = unique_ip();
    let caller = unique_ip();
    let server = user_server(
        ip,
        caller,
        r#"[{"action":"connect","endpoint":[{"type":"app","user":"bob"}]},{"action":"record","split":"conversation"},{"action":"wait","timeout":30}]"#,
        None,
    );
    call_from_ok(&server, caller, &["--tone", "440", "--seconds", "2"]);
    let log = server.log_text();
    assert!(log.contains("user bob is not registered"), "{log}");
    // The record after the failed connect ran: the caller's tone is on disk.
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_mostly(
        &tones(&a, 0),
        440.0,
        10,
        "the caller, recorded after the failed connect",
    );
}

/// SIGHUP replaces the registrar's users: a changed password applies to the next REGISTER.
#[test]
fn sighup_changes_a_users_password_for_the_next_register() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let ip = unique_ip();
    let server = md5_server(&dir, ip);
    let phone = SocketAddr::new(ip, 5073);
    let contact = format!("<sip:alice@{phone}>");
    sipp_register(&server, phone, "alice", "alice pw", &contact, 60, 200);
    // The same file with alice's password changed, then SIGHUP.
    let file = dir.path().join("callmux.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"alice pw\"", "\"alice new pw\"")).unwrap();
    server.sighup();
    server.wait_log("configuration reloaded", 1);
    sipp_register(&server, phone, "alice", "alice pw", &contact, 60, 403);
    sipp_register(&server, phone, "alice", "alice new pw", &contact, 60, 200);
}

/// A server started without users answers REGISTER with 405; SIGHUP with the first users
/// starts the registrar (no restart needed), and SIGHUP without users refuses REGISTER again.
#[test]
fn sighup_starts_the_registrar_with_the_first_users_and_forgets_them_with_the_last() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let ip = unique_ip();
    let file = dir.path().join("callmux.toml");
    let no_users = "[registrar]\nmin_expires_s = 2\nkeepalive_s = 0\n";
    std::fs::write(&file, no_users).unwrap();
    let server = Server::start_in(
        Arc::clone(&dir),
        ServerOptions {
            extra_args: vec!["--config".into(), file.display().to_string()],
            ..Default::default()
        },
        Some(ip),
    );
    let mut phone = RegClient::new(SocketAddr::new(ip, 5074), server.sip, "alice", "alice pw");
    let contact = format!("<sip:alice@{}>", phone.local());
    assert_eq!(phone.register(Some(&contact), Some(60)).status, 405);

    config(dir.path(), "[\"MD5\"]", None); // rewrites callmux.toml with alice, bob, carol
    server.sighup();
    server.wait_log("registrar started", 1);
    let r = phone.register(Some(&contact), Some(60));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(reg_client::contacts(&r).len(), 1);

    std::fs::write(&file, no_users).unwrap();
    server.sighup();
    server.wait_log("configuration reloaded", 2);
    let r = phone.register(Some(&contact), Some(60));
    assert_eq!(r.status, 403, "every user is gone: {r:?}");
}
