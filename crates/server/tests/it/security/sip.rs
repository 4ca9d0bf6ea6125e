//! SIP security end to end: source ACLs and trusted trunks, digest authentication (SIPp
//! with MD5; a raw UAC with SHA-256 and MD5; wrong passwords, unknown users, replays), the
//! concurrent call limit, the per-source INVITE rate limit, and RTP latching against a
//! second sender.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use callmux_sip::auth::Algorithm;

use super::uac::{stream_ulaw, RtpSender, Uac};
use super::*;
use crate::common::*;

fn healthz(server: &Server) -> serde_json::Value {
    let (status, body) = http_get(server.http, "/healthz").expect("healthz");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

fn gate_stat(server: &Server, key: &str) -> u64 {
    healthz(server)["sip_security"][key].as_u64().unwrap()
}

/// A SIPp scenario from tests/data/sipp, placeholders filled.
pub(crate) fn sipp_scenario(name: &str, vars: &[(&str, String)]) -> Sipp {
    Sipp::from_template(&data_scenario(name), vars)
}

/// A SIPp call with digest credentials streaming a 1000 Hz tone; asserts it succeeded.
pub(crate) fn sipp_auth_call(server: &Server, from: IpAddr, user: &str, password: &str) {
    Sipp::tone_template(&data_scenario("uac_auth_tone.xml"), 1000, 3.0, 3000, &[]).run_ok_from(
        server,
        from,
        server.sip,
        &["-m", "1", "-s", "100", "-au", user, "-ap", password],
        Duration::from_secs(30),
    );
}

/// Asserts that the newest finished recording holds the 1000 Hz tone in channel 1.
pub(crate) fn assert_tone_recorded(server: &Server, n: usize) {
    let files = server.wait_recordings(n, Duration::from_secs(10));
    let newest = newest(&files);
    let a = analyze(newest);
    assert_mostly(
        &tones_between(&a, 0, 500, 2500),
        1000.0,
        10,
        &format!("{}", newest.display()),
    );
}

fn auth_config(dir: &Path, extra: &str) -> Vec<String> {
    config_args(
        dir,
        &format!(
            "[sip]\nauth = \"required\"\n{extra}\n[[user]]\nname = \"alice\"\npassword = \"correct horse\"\n"
        ),
    )
}

#[test]
fn acl_admits_listed_sources_and_trusted_trunks_only() {
    let dir = tempfile::tempdir().unwrap();
    let (allowed, trunk, stranger) = (unique_ip(), unique_ip(), unique_ip());
    let server = Server::start(ServerOptions {
        extra_args: config_args(
            dir.path(),
            &format!(
                "[sip]\nacl = [\"{allowed}/32\"]\n\n[[trunk]]\nname = \"carrier\"\n\
                 uri = \"sip:{{number}}@127.0.0.1:5999\"\nacl = [\"{trunk}\"]\n"
            ),
        ),
        ..Default::default()
    });
    // A stranger: 403, and the reason.
    let mut uac = Uac::new(stranger, server.sip, "100");
    let r = uac.invite(None, Duration::from_secs(5)).expect("an answer");
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r
        .header("Warning")
        .unwrap()
        .contains("source address not allowed"));
    assert_eq!(gate_stat(&server, "acl_rejected"), 1);
    assert!(server.recordings().is_empty());
    // The listed source and the trunk's address get calls through.
    for (n, from) in [allowed, trunk].into_iter().enumerate() {
        call_from_ok(&server, from, &["--tone", "440", "--seconds", "2"]);
        server.wait_recordings(n + 1, Duration::from_secs(10));
    }
    assert_eq!(gate_stat(&server, "acl_rejected"), 1);
}

#[test]
fn digest_md5_with_sipp_good_then_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    // SIPp 3.6 reads only the first challenge and knows only MD5: offer MD5 alone.
    let server = Server::start(ServerOptions {
        extra_args: auth_config(dir.path(), "auth_algorithms = [\"MD5\"]"),
        ..Default::default()
    });
    sipp_auth_call(&server, server.ip, "alice", "correct horse");
    assert_tone_recorded(&server, 1);
    assert_eq!(gate_stat(&server, "authenticated"), 1);

    // Wrong password: 401, then 403 for the retry (the scenario expects exactly that).
    let sipp = sipp_scenario("uac_auth_refused.xml", &[]);
    let out = sipp.run(
        server.ip,
        server.sip,
        &[
            "-m",
            "1",
            "-s",
            "100",
            "-au",
            "alice",
            "-ap",
            "battery staple",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "the wrong password was not refused with 403: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(gate_stat(&server, "auth_failed"), 1);
    assert_eq!(
        server.recordings().len(),
        1,
        "no call for the wrong password"
    );
}

#[test]
fn digest_sha256_and_md5_with_a_raw_uac() {
    let dir = tempfile::tempdir().unwrap();
    let trunk = unique_ip();
    let server = Server::start(ServerOptions {
        extra_args: {
            // The trunk is trusted by address: never challenged.
            let mut a = config_args(
                dir.path(),
                &format!(
                    "[sip]\nauth = \"required\"\n\n[[user]]\nname = \"alice\"\n\
                     password = \"correct horse\"\n\n[[trunk]]\nname = \"carrier\"\n\
                     uri = \"sip:{{number}}@127.0.0.1:5999\"\nacl = [\"{trunk}\"]\n"
                ),
            );
            // A second user from the command line.
            a.extend(["--user".into(), "bob:hunter2".into()]);
            a
        },
        ..Default::default()
    });
    let ip = unique_ip();

    // No credentials: 401 with both algorithms, SHA-256 first (RFC 8760).
    let mut uac = Uac::new(ip, server.sip, "100");
    let r = uac.invite(None, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 401);
    let challenges = r.headers("WWW-Authenticate");
    assert_eq!(challenges.len(), 2, "{}", r.text);
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{challenges:?}"
    );
    assert!(challenges[1].contains("algorithm=MD5"), "{challenges:?}");
    assert!(challenges[0].contains("qop=\"auth\""));

    // Good credentials, each algorithm, each user (file and --user): the call is answered.
    for (alg, user, pw) in [
        (Algorithm::Sha256, "alice", "correct horse"),
        (Algorithm::Md5, "alice", "correct horse"),
        (Algorithm::Sha256, "bob", "hunter2"),
    ] {
        let mut uac = Uac::new(ip, server.sip, "100");
        let ok = uac.invite_with_auth(alg, user, pw);
        assert_eq!(ok.status, 200, "{alg} {user}: {}", ok.text);
        uac.ack(&ok, true);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(uac.bye(&ok), Some(200));
    }
    assert_eq!(gate_stat(&server, "authenticated"), 3);

    // Wrong password and unknown user: 403 after the retry, the same answer for both.
    for (user, pw) in [("alice", "wrong"), ("mallory", "correct horse")] {
        let mut uac = Uac::new(ip, server.sip, "100");
        let r = uac.invite_with_auth(Algorithm::Sha256, user, pw);
        assert_eq!(r.status, 403, "{user}: {}", r.text);
        assert!(
            r.header("Warning").unwrap().contains("bad credentials"),
            "{}",
            r.text
        );
    }

    // The same credentials sent again (a captured INVITE replayed): 403.
    let mut uac = Uac::new(unique_ip(), server.sip, "100");
    let first = uac.invite(None, Duration::from_secs(5)).unwrap();
    let ch = first.challenge(Algorithm::Md5);
    let creds = callmux_sip::auth::authorize(
        &ch,
        "alice",
        "correct horse",
        "INVITE",
        &uac.request_uri(),
        "fixed-cnonce",
        1,
    )
    .unwrap()
    .to_string();
    let ok = uac.invite(Some(&creds), Duration::from_secs(5)).unwrap();
    assert_eq!(ok.status, 200);
    uac.ack(&ok, true);
    uac.bye(&ok);
    let mut replay = Uac::new(unique_ip(), server.sip, "100");
    let r = replay.invite(Some(&creds), Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.header("Warning").unwrap().contains("replayed"));

    // A trusted trunk calls without credentials.
    call_from_ok(&server, trunk, &["--tone", "440", "--seconds", "1"]);
    // A plain caller without credentials is refused (callmux call does not authenticate).
    let out = callmux_call(ip, &server.uri("100"), &["--tone", "440", "--seconds", "1"]);
    assert!(!out.status.success());
}

#[test]
fn guessing_passwords_is_throttled_per_source() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerOptions {
        extra_args: auth_config(dir.path(), "auth_fail_burst = 3\nauth_fail_per_minute = 1"),
        ..Default::default()
    });
    let guesser = unique_ip();
    for i in 0..3 {
        let mut uac = Uac::new(guesser, server.sip, "100");
        let r = uac.invite_with_auth(Algorithm::Md5, "alice", &format!("guess{i}"));
        assert!(
            r.header("Warning").unwrap().contains("bad credentials"),
            "{}",
            r.text
        );
    }
    // Out of attempts: even the right password is refused, without being checked.
    let mut uac = Uac::new(guesser, server.sip, "100");
    let r = uac.invite_with_auth(Algorithm::Md5, "alice", "correct horse");
    assert_eq!(r.status, 403);
    assert!(
        r.header("Warning")
            .unwrap()
            .contains("too many failed attempts"),
        "{}",
        r.text
    );
    // Other sources are not affected.
    let mut uac = Uac::new(unique_ip(), server.sip, "100");
    let ok = uac.invite_with_auth(Algorithm::Md5, "alice", "correct horse");
    assert_eq!(ok.status, 200, "{}", ok.text);
    uac.ack(&ok, true);
    uac.bye(&ok);
}

#[test]
fn call_limit_answers_503_with_retry_after() {
    let server = Server::start(ServerOptions {
        extra_args: vec!["--max-calls".into(), "1".into()],
        ..Default::default()
    });
    let (ip, uri) = (server.ip, server.uri("100"));
    let caller =
        std::thread::spawn(move || callmux_call(ip, &uri, &["--tone", "440", "--seconds", "4"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while healthz(&server)["active_calls"] != 1 {
        assert!(Instant::now() < deadline, "the first call did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut uac = Uac::new(unique_ip(), server.sip, "100");
    let r = uac.invite(None, Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 503, "{}", r.text);
    let retry: u64 = r
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(r
        .header("Warning")
        .unwrap()
        .contains("concurrent call limit"));
    assert!(caller.join().unwrap().status.success());
    server.wait_recordings(1, Duration::from_secs(10));
    // Room again.
    call_ok(&server, &["--tone", "440", "--seconds", "1"]);
}

#[test]
fn invite_flood_gets_503_then_silence_while_others_get_through() {
    let dir = tempfile::tempdir().unwrap();
    // Authentication on, so that admitted INVITEs are answered 401 at once (no call).
    let server = Server::start(ServerOptions {
        extra_args: auth_config(
            dir.path(),
            "invite_rate = 2\ninvite_burst = 3\ninvite_ban_s = 30",
        ),
        ..Default::default()
    });
    let flooder = unique_ip();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let mut uac = Uac::new(flooder, server.sip, "100");
        let r = uac.invite(None, Duration::from_millis(700));
        if let Some(r) = &r {
            if r.status == 503 {
                let retry: u64 = r
                    .header("Retry-After")
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                assert!(retry >= 1, "{}", r.text);
                assert!(r.header("Warning").unwrap().contains("rate limit"));
            }
        }
        statuses.push(r.map(|r| r.status));
    }
    assert_eq!(statuses[..3], [Some(401); 3], "{statuses:?}");
    assert!(statuses[3..].contains(&Some(503)), "{statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&None),
        "an abusive source is dropped: {statuses:?}"
    );
    assert!(gate_stat(&server, "bans") >= 1);
    assert!(gate_stat(&server, "dropped_datagrams") >= 1);
    assert!(server.log_text().contains("dropping everything it sends"));
    // Another source is not affected.
    let mut uac = Uac::new(unique_ip(), server.sip, "100");
    assert_eq!(
        uac.invite(None, Duration::from_secs(5)).unwrap().status,
        401
    );
    // And the server answers OPTIONS as ever.
    assert!(server_answers_options(server.ip, server.sip));
}

fn server_answers_options(from: IpAddr, to: SocketAddr) -> bool {
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from}:5999;rport;branch=z9hG4bK-opt-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{from}>;tag=p\r\nTo: <sip:{to}>\r\n\
         Call-ID: opt-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        n = uuid::Uuid::new_v4().simple()
    );
    udp_exchange(from, to, msg.as_bytes(), Duration::from_secs(3))
        .is_some_and(|r| r.starts_with(b"SIP/2.0 200"))
}

#[test]
fn rtp_from_a_second_source_is_ignored() {
    let server = Server::start(ServerOptions::default());
    let tones = tempfile::tempdir().unwrap();
    let caller_audio = std::fs::read(ulaw_tone(tones.path(), 1000, 4.0)).unwrap();
    let intruder_audio = std::fs::read(ulaw_tone(tones.path(), 440, 3.0)).unwrap();
    let ip = unique_ip();
    let mut uac = Uac::new(ip, server.sip, "100");
    let ok = uac.invite(None, Duration::from_secs(5)).expect("answer");
    assert_eq!(ok.status, 200, "{}", ok.text);
    uac.ack(&ok, true);
    let media = ok.sdp_audio();
    let caller_sock = uac.rtp.try_clone().unwrap();
    let caller =
        std::thread::spawn(move || stream_ulaw(&caller_sock, media, &caller_audio, 0x1111_1111));
    // Once the caller's stream is latched, a second socket (another address) sends another
    // tone to the same RTP port, louder and at the same pace.
    std::thread::sleep(Duration::from_millis(400));
    let intruder_sock = UdpSocket::bind(SocketAddr::new(unique_ip(), 0)).unwrap();
    let intruder = std::thread::spawn(move || {
        stream_ulaw(&intruder_sock, media, &intruder_audio, 0x2222_2222)
    });
    // And from the caller's own address but another port.
    let same_host = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let mut s = RtpSender::new(0x3333_3333);
    for _ in 0..50 {
        let _ = same_host.send_to(&s.packet(&[0x10; 160]), media);
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.join().unwrap();
    intruder.join().unwrap();
    assert_eq!(uac.bye(&ok), Some(200));
    let file = server.wait_recordings(1, Duration::from_secs(10))[0].clone();
    let a = analyze(&file);
    let heard = tones_between(&a, 0, 300, 3800);
    assert!(
        mostly(&heard, 1000.0, 20),
        "the caller's tone is not what was recorded: {heard:?}"
    );
    assert!(
        !heard.iter().any(|t| (t - 440.0).abs() < 15.0),
        "the intruder's 440 Hz got into the recording: {heard:?}"
    );
}
