//! sipvicious (Debian package `sipvicious`) against the server: svmap finds it, svwar
//! enumerates extensions with INVITEs, svcrack guesses passwords. The server stays up, and a
//! valid authenticated call right after is recorded correctly.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use super::sip::{assert_tone_recorded, sipp_auth_call};
use super::*;
use crate::common::*;

fn require_sipvicious() {
    for tool in ["svmap", "svwar", "svcrack"] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{tool} is required for this test: apt-get install sipvicious (the Debian package; \
             .ci/run installs it)"
        );
    }
}

/// Runs a sipvicious tool bound to `from`, with its session files in `home`.
fn run(tool: &str, from: IpAddr, home: &Path, args: &[String]) -> Output {
    let mut cmd = Command::new(tool);
    cmd.arg("-b")
        .arg(from.to_string())
        .args(args)
        .env("HOME", home)
        .current_dir(home)
        .stdin(std::process::Stdio::null());
    output_within(cmd, Duration::from_secs(120))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn sipvicious_scans_leave_the_server_up_and_recording() {
    require_sipvicious();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(ServerOptions {
        extra_args: config_args(
            dir.path(),
            "[sip]\nauth = \"required\"\nauth_algorithms = [\"MD5\"]\n\n\
             [[user]]\nname = \"100\"\npassword = \"a long and unguessable one\"\n",
        ),
        ..Default::default()
    });
    let home = tempfile::tempdir().unwrap();
    let scanner = unique_ip();
    let target = server.ip.to_string();

    // svmap: OPTIONS sweep; it identifies the server by its User-Agent.
    let out = run(
        "svmap",
        scanner,
        home.path(),
        &["-p".into(), "5060".into(), target.clone()],
    );
    let svmap = text(&out);
    assert!(
        svmap.contains("callmux"),
        "svmap did not find the server:\n{svmap}"
    );

    // svwar: extension enumeration with INVITEs. Every extension, existing or not, is
    // answered with the same 401 challenge, so svwar gives up at once …
    let svwar_args = |force: bool| {
        let mut a: Vec<String> = vec!["-m".into(), "INVITE".into(), "-e".into(), "100-300".into()];
        if force {
            a.push("--force".into());
        }
        a.push(format!("udp://{target}:5060"));
        a
    };
    let out = run("svwar", scanner, home.path(), &svwar_args(false));
    let svwar = text(&out);
    assert!(
        svwar.contains("authentication request for an unknown extension"),
        "svwar could tell extensions apart:\n{svwar}"
    );
    // … and forced, it floods: challenged, rate limited, then ignored.
    let out = run("svwar", scanner, home.path(), &svwar_args(true));
    let svwar = text(&out);
    assert!(server.alive(), "server died under svwar:\n{svwar}");
    assert!(
        !svwar.contains("| 100 "),
        "svwar found extension 100 (a real user):\n{svwar}"
    );

    // svcrack: password guessing (REGISTER, which this server does not serve) from another
    // address, since the first one is banned by now.
    let cracker = unique_ip();
    let out = run(
        "svcrack",
        cracker,
        home.path(),
        &[
            "-u".into(),
            "100".into(),
            "-r".into(),
            "1-300".into(),
            format!("udp://{target}:5060"),
        ],
    );
    let svcrack = text(&out);
    assert!(
        !svcrack.contains("a long and unguessable one"),
        "svcrack found the password:\n{svcrack}"
    );

    // Still up, still answering, and a real caller gets through and is recorded.
    assert!(server.alive(), "the server exited during the scans");
    let (status, body) = http_get(server.http, "/healthz").expect("healthz answers");
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["active_calls"], 0, "{h}");
    assert!(
        h["sip_security"]["auth_challenged"].as_u64().unwrap() >= 2,
        "svwar's INVITEs were challenged: {h}\nsvwar:\n{svwar}"
    );
    eprintln!("svmap:\n{svmap}\nsvwar --force:\n{svwar}\nsvcrack:\n{svcrack}\nhealthz: {h}");
    sipp_auth_call(&server, server.ip, "100", "a long and unguessable one");
    assert_tone_recorded(&server, 1);
    assert_eq!(
        server.recordings().len(),
        1,
        "the scans created no recording"
    );
    assert!(server.alive());
    server.stop();
}
