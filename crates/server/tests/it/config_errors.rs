//! Bad configuration: one file per kind of mistake, each given to `callmux serve --config`.
//! Every one must stop the server before it serves, with exit code 2 and a message on
//! stderr that names the file and the key (so an operator knows where to look).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// One kind of mistake: a name, the file's text (`{dir}` is the test's directory) and the
/// key the message must name.
struct Case {
    kind: &'static str,
    text: &'static str,
    key: &'static str,
}

const CASES: &[Case] = &[
    Case {
        kind: "unknown key",
        text: "[sip]\nlisten_address = \"127.0.0.1:5060\"\n",
        key: "sip.listen_address",
    },
    Case {
        kind: "unknown section",
        text: "[sipp]\nlisten = \"127.0.0.1:5060\"\n",
        key: "sipp",
    },
    Case {
        kind: "wrong type",
        text: "[sip]\nmax_calls = \"many\"\n",
        key: "sip.max_calls",
    },
    Case {
        kind: "negative number",
        text: "[rtp]\nreorder_delay_ms = -5\n",
        key: "rtp.reorder_delay_ms",
    },
    Case {
        kind: "TOML syntax error",
        text: "[http]\nlisten = \"127.0.0.1:8080\n",
        key: "http.listen",
    },
    Case {
        kind: "bad address",
        text: "[sip]\nlisten = \"nowhere:5060\"\n",
        key: "sip.listen",
    },
    Case {
        kind: "bad media address",
        text: "[rtp]\nmedia_ip = \"10.0.0.300\"\n",
        key: "rtp.media_ip",
    },
    Case {
        kind: "port range reversed",
        text: "[rtp]\nports = \"30000-20000\"\n",
        key: "rtp.ports",
    },
    Case {
        kind: "value out of range",
        text: "[recording]\ncheckpoint_ms = 5000\n",
        key: "recording.checkpoint_ms",
    },
    Case {
        kind: "bad CIDR",
        text: "[sip]\nacl = [\"10.0.0.0/33\"]\n",
        key: "sip.acl",
    },
    Case {
        kind: "bad URL",
        text: "[ncco]\nanswer_url = \"answers.example.com/answer\"\n",
        key: "ncco.answer_url",
    },
    Case {
        kind: "bad event URL scheme",
        text: "[ncco]\nevent_url = \"ftp://events.example.com/\"\n",
        key: "ncco.event_url",
    },
    Case {
        kind: "bad enum value (method)",
        text: "[ncco]\nanswer_url = \"http://127.0.0.1:9/answer\"\nanswer_method = \"PUT\"\n",
        key: "ncco.answer_method",
    },
    Case {
        kind: "bad enum value (auth)",
        text: "[sip]\nauth = \"sometimes\"\n",
        key: "sip.auth",
    },
    Case {
        kind: "bad queue URL",
        text: "[dispatch]\nqueue = \"mysql://db/events\"\n",
        key: "dispatch.queue",
    },
    Case {
        kind: "missing NCCO file",
        text: "[ncco]\nfile = \"{dir}/no-such-ncco.json\"\n",
        key: "ncco.file",
    },
    Case {
        kind: "trunk without host",
        text: "[[trunk]]\nname = \"carrier\"\nuri = \"sip:{number}@\"\n",
        key: "trunk[0].uri",
    },
    Case {
        kind: "trunk without uri",
        text: "[[trunk]]\nname = \"carrier\"\n",
        key: "trunk[0].uri",
    },
    Case {
        kind: "duplicate user",
        text: "[[user]]\nname = \"alice\"\npassword = \"a1\"\n\n[[user]]\nname = \"alice\"\npassword = \"a2\"\n",
        key: "user[1]",
    },
    Case {
        kind: "unreadable TLS certificate",
        text: "[sip]\ntls_listen = \"127.0.0.1:5061\"\ntls_cert = \"{dir}/no-cert.pem\"\ntls_key = \"{dir}/no-key.pem\"\n",
        key: "sip.tls_cert",
    },
    Case {
        kind: "TLS without a key",
        text: "[sip]\ntls_listen = \"127.0.0.1:5061\"\n",
        key: "sip.tls",
    },
    Case {
        kind: "unreadable application key",
        text: "[http]\napplication_id = \"app\"\napplication_key = \"{dir}/no-key.pem\"\n",
        key: "http.application_key",
    },
    Case {
        kind: "application key that is not a key",
        text: "[http]\napplication_id = \"app\"\napplication_key = \"{dir}/not-a-key.pem\"\n",
        key: "http.application_key",
    },
];

/// Runs `callmux serve --config file` on a fresh address (unless the file sets the
/// address itself); (exit code, stderr). A server still running after 10 s (the mistake
/// was not caught) is killed and reported as exit code None.
fn serve_with(file: &Path, text: &str, ip: std::net::IpAddr, dir: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(file)
        .env("CALLMUX_RECORDINGS", dir.join("recordings"))
        .env("CALLMUX_DATA", dir.join("data"))
        .env("CALLMUX_NO_DISPATCHER", "true")
        .env("CALLMUX_LOG", "callmux=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !text.contains("[sip]\nlisten") {
        cmd.env("CALLMUX_SIP", format!("{ip}:5060"));
    }
    if !text.contains("[http]\nlisten") {
        cmd.env("CALLMUX_HTTP", format!("{ip}:8080"));
    }
    let mut child = cmd.spawn().expect("start callmux");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("stderr");
    (code, String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn each_kind_of_mistake_exits_2_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-key.pem"), "hello\n").unwrap();
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let file = dir.path().join(format!("case-{i}.toml"));
        let text = case
            .text
            .replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&file, &text).unwrap();
        let (code, stderr) = serve_with(&file, &text, unique_ip(), dir.path());
        let names_file = stderr.contains(&file.display().to_string());
        let names_key = stderr.contains(&format!("`{}", case.key));
        if code != Some(2) || !names_file || !names_key {
            failures.push(format!(
                "{}: exit {code:?}, names file {names_file}, names key `{}` {names_key}\n  \
                 file:\n{text}\n  stderr: {stderr}",
                case.kind, case.key
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} kinds wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn a_missing_config_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("absent.toml");
    let (code, stderr) = serve_with(&file, "", unique_ip(), dir.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "[sip]\nmax_calls = 10\n").unwrap();
    let ip = unique_ip();
    let mut cmd = Command::new(bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(&file)
        .env("CALLMUX_SIP", format!("{ip}:5060"))
        .env("CALLMUX_HTTP", format!("{ip}:8080"))
        .env("CALLMUX_RTP_PORTS", "9000-8000")
        .env("CALLMUX_RECORDINGS", dir.path().join("recordings"))
        .env("CALLMUX_DATA", dir.path().join("data"));
    let out = output_within(cmd, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rtp.ports"), "{stderr}");
    assert!(!stderr.contains("ok.toml"), "{stderr}");
}
