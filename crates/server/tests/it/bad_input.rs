//! Malformed SIP and SDP sent to the real server: each message is answered with the right
//! error or dropped, the server stays up, and a valid call right after is recorded
//! correctly.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;

const SDP_OK: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// A well-formed INVITE to `to`, with `edit` applied to its lines and `body` as SDP.
fn invite(to: SocketAddr, from: SocketAddr, n: usize, body: &str) -> String {
    format!(
        "INVITE sip:100@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};rport;branch=z9hG4bK-bad-{n}\r\n\
         From: <sip:tester@{from}>;tag=t{n}\r\n\
         To: <sip:100@{to}>\r\n\
         Call-ID: bad-{n}@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:tester@{from}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// What a malformed message may get back: a status code, or nothing (dropped).
#[derive(Debug)]
enum Expect {
    Status(&'static [u16]),
    StatusOrDrop(&'static [u16]),
    Drop,
}

fn status_of(reply: &[u8]) -> Option<u16> {
    std::str::from_utf8(reply)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn malformed_messages_get_errors_and_a_valid_call_still_records() {
    let server = Server::start(ServerOptions::default());
    let to = server.sip;
    let from_ip = server.ip;
    let from = SocketAddr::new(from_ip, 5999);
    let ok = |n| invite(to, from, n, SDP_OK);

    let mut cases: Vec<(&str, Vec<u8>, Expect)> = Vec::new();
    let mut add = |name, bytes: Vec<u8>, e| cases.push((name, bytes, e));

    let full = ok(1);
    add(
        "truncated mid-header",
        full.as_bytes()[..120].to_vec(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "no Via",
        ok(2)
            .replace(
                &format!("Via: SIP/2.0/UDP {from};rport;branch=z9hG4bK-bad-2\r\n"),
                "",
            )
            .into_bytes(),
        Expect::Drop,
    );
    add(
        "non-numeric CSeq",
        ok(3)
            .replace("CSeq: 1 INVITE", "CSeq: one INVITE")
            .into_bytes(),
        Expect::Status(&[400]),
    );
    add(
        "CSeq method mismatch",
        ok(4).replace("CSeq: 1 INVITE", "CSeq: 1 BYE").into_bytes(),
        Expect::Status(&[400]),
    );
    add(
        "Content-Length beyond the datagram",
        ok(5)
            .replace(
                &format!("Content-Length: {}", SDP_OK.len()),
                "Content-Length: 9999",
            )
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "Content-Length not a number",
        ok(6)
            .replace(
                &format!("Content-Length: {}", SDP_OK.len()),
                "Content-Length: lots",
            )
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "oversized header",
        ok(7)
            .replace(
                "Max-Forwards: 70",
                &format!("Max-Forwards: 70\r\nX-Big: {}", "a".repeat(20_000)),
            )
            .into_bytes(),
        Expect::StatusOrDrop(&[400, 513]),
    );
    add(
        "binary junk",
        (0..400u32).map(|i| (i * 7919 % 251) as u8).collect(),
        Expect::Drop,
    );
    add(
        "NUL bytes in headers",
        ok(9)
            .replace("Subject", "S\0ubject")
            .replace("Max-Forwards: 70", "Max-Forwards: 70\r\nX-N\0ul: \0\0")
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "request line without version",
        ok(10).replacen(" SIP/2.0\r\n", "\r\n", 1).into_bytes(),
        Expect::StatusOrDrop(&[400, 505]),
    );
    add(
        "SIP/3.0",
        ok(11)
            .replacen(" SIP/2.0\r\n", " SIP/3.0\r\n", 1)
            .into_bytes(),
        Expect::StatusOrDrop(&[400, 505]),
    );
    add("empty datagram", Vec::new(), Expect::Drop);
    add("only CRLFs", b"\r\n\r\n\r\n\r\n".to_vec(), Expect::Drop);
    add(
        "bad request URI",
        ok(14)
            .replacen(&format!("sip:100@{to}"), "sip:@@::bad uri", 1)
            .into_bytes(),
        Expect::StatusOrDrop(&[400, 416]),
    );
    add(
        "no Call-ID",
        ok(15).replace("Call-ID: bad-15@test\r\n", "").into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "no From",
        ok(16)
            .replace(&format!("From: <sip:tester@{from}>;tag=t16\r\n"), "")
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "no To",
        ok(17)
            .replace(&format!("To: <sip:100@{to}>\r\n"), "")
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "header line without colon",
        ok(18)
            .replace("Max-Forwards: 70", "Max-Forwards 70")
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "garbage SDP",
        invite(to, from, 19, "this is not sdp\r\n").into_bytes(),
        Expect::Status(&[488, 400]),
    );
    add("SDP without audio", invite(to, from, 20, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 40000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n").into_bytes(), Expect::Status(&[488]));
    add("SDP with no common codec", invite(to, from, 21, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n").into_bytes(), Expect::Status(&[488]));
    add("SDP with bad port", invite(to, from, 22, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n").into_bytes(), Expect::Status(&[488, 400]));
    add(
        "SDP without c= line",
        invite(
            to,
            from,
            23,
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
        )
        .into_bytes(),
        Expect::Status(&[488, 400]),
    );
    add(
        "Max-Forwards 0",
        ok(24)
            .replace("Max-Forwards: 70", "Max-Forwards: 0")
            .into_bytes(),
        Expect::Status(&[483]),
    );
    add(
        "unknown method",
        ok(25)
            .replacen("INVITE sip:", "FROBNICATE sip:", 1)
            .replace("CSeq: 1 INVITE", "CSeq: 1 FROBNICATE")
            .into_bytes(),
        Expect::Status(&[501, 405]),
    );
    add(
        "Via without branch host",
        ok(26)
            .replace(
                &format!("Via: SIP/2.0/UDP {from};rport;branch=z9hG4bK-bad-26"),
                "Via: SIP/2.0/UDP",
            )
            .into_bytes(),
        Expect::StatusOrDrop(&[400]),
    );
    add(
        "BYE for an unknown dialog",
        ok(27)
            .replacen("INVITE sip:", "BYE sip:", 1)
            .replace("CSeq: 1 INVITE", "CSeq: 2 BYE")
            .replace(
                &format!("To: <sip:100@{to}>"),
                &format!("To: <sip:100@{to}>;tag=nope"),
            )
            .into_bytes(),
        Expect::Status(&[481]),
    );

    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (name, bytes, expect) in &cases {
        let reply = udp_exchange(from_ip, to, bytes, Duration::from_millis(700));
        let status = reply.as_deref().and_then(status_of);
        let good = match (expect, status) {
            (Expect::Status(codes), Some(s)) | (Expect::StatusOrDrop(codes), Some(s)) => {
                codes.contains(&s)
            }
            (Expect::StatusOrDrop(_) | Expect::Drop, None) => true,
            _ => false,
        };
        if !good {
            failures.push(format!("{name}: expected {expect:?}, got {status:?}"));
        }
        if let (Some(r), Some(400)) = (&reply, status) {
            let text = String::from_utf8_lossy(r);
            assert!(
                text.contains("Warning: 399"),
                "{name}: 400 without a Warning reason:\n{text}"
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", server.log_text());

    // Still alive and answering.
    let options = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};rport;branch=z9hG4bK-opt\r\nFrom: <sip:t@{from}>;tag=o\r\nTo: <sip:{to}>\r\nCall-ID: opt@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let reply = udp_exchange(from_ip, to, options.as_bytes(), Duration::from_secs(2))
        .expect("OPTIONS answered");
    assert_eq!(status_of(&reply), Some(200));

    // A valid call right after is recorded correctly.
    call_ok(&server, &["--tone", "440", "--seconds", "2"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_split_caller_tone(&a, 440.0, "a valid call after the bad input");
}

#[test]
fn bad_config_and_bad_ncco_exit_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad_cfg = dir.path().join("bad.toml");
    std::fs::write(&bad_cfg, "[rtp]\nports = \"9-1\"\n").unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["serve", "--config"]).arg(&bad_cfg);
    let out = output_within(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rtp.ports") && err.contains("bad.toml"),
        "{err}"
    );

    let bad_ncco = dir.path().join("ncco.json");
    std::fs::write(&bad_ncco, r#"[{"action":"record","channels":33}]"#).unwrap();
    assert_exits_2_naming(
        serve_with_ncco_file(&bad_ncco),
        "$[0].channels",
        "channels 33",
    );
}
