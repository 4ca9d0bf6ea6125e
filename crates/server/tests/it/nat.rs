//! NAT traversal on one machine: a phone in its own network namespace behind a namespace
//! router that masquerades (nftables) registers with a private Contact, and a `connect` to
//! its user reaches it through the NAT mapping (INVITE, RTP both ways, BYE); then the user
//! calls in from behind the NAT (digest, RTP latched to the NAT's address). Needs root
//! (network namespaces) and nftables; without root the test says so and is skipped.
//!
//! ```text
//!  root namespace                 router namespace                 phone namespace
//!  callmux 10.N.0.1 ── veth ── 10.N.0.2 [masquerade] 192.168.N.1 ── veth ── 192.168.N.2
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a network setup command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces and their links, removed when dropped.
struct Topology {
    router: String,
    phone: String,
    server_ip: IpAddr,
    phone_ip: IpAddr,
    wan_ip: IpAddr,
}

impl Topology {
    fn new() -> Self {
        let n = (std::process::id() % 200 + 20) as u8;
        let router = format!("cmxnat{n}r");
        let phone = format!("cmxnat{n}p");
        let host_if = format!("cmx{n}h");
        let wan_if = format!("cmx{n}w");
        let lan_if = format!("cmx{n}l");
        let dev_if = format!("cmx{n}d");
        // Leftovers of an earlier, killed run.
        let _ = Command::new("ip").args(["netns", "del", &router]).output();
        let _ = Command::new("ip").args(["netns", "del", &phone]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        let t = Self {
            router: router.clone(),
            phone: phone.clone(),
            server_ip: IpAddr::V4(Ipv4Addr::new(10, n, 0, 1)),
            wan_ip: IpAddr::V4(Ipv4Addr::new(10, n, 0, 2)),
            phone_ip: IpAddr::V4(Ipv4Addr::new(192, 168, n, 2)),
        };
        run(&["ip", "netns", "add", &router]);
        run(&["ip", "netns", "add", &phone]);
        // Host ↔ router (the "internet" side).
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &wan_if,
        ]);
        run(&["ip", "link", "set", &wan_if, "netns", &router]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.{n}.0.1/24"),
            "dev",
            &host_if,
        ]);
        run(&["ip", "link", "set", &host_if, "up"]);
        let rexec = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", router.as_str()];
            v.extend_from_slice(args);
            run(&v);
        };
        rexec(&[
            "ip",
            "addr",
            "add",
            &format!("10.{n}.0.2/24"),
            "dev",
            &wan_if,
        ]);
        rexec(&["ip", "link", "set", &wan_if, "up"]);
        rexec(&["ip", "link", "set", "lo", "up"]);
        // Router ↔ phone (the private LAN).
        run(&[
            "ip", "link", "add", &lan_if, "netns", &router, "type", "veth", "peer", "name",
            &dev_if, "netns", &phone,
        ]);
        rexec(&[
            "ip",
            "addr",
            "add",
            &format!("192.168.{n}.1/24"),
            "dev",
            &lan_if,
        ]);
        rexec(&["ip", "link", "set", &lan_if, "up"]);
        rexec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        rexec(&["nft", "add", "table", "ip", "nat"]);
        rexec(&[
            "nft",
            "add",
            "chain",
            "ip",
            "nat",
            "post",
            "{ type nat hook postrouting priority 100 ; }",
        ]);
        rexec(&[
            "nft",
            "add",
            "rule",
            "ip",
            "nat",
            "post",
            "oifname",
            &wan_if,
            "masquerade",
        ]);
        let pexec = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", phone.as_str()];
            v.extend_from_slice(args);
            run(&v);
        };
        pexec(&[
            "ip",
            "addr",
            "add",
            &format!("192.168.{n}.2/24"),
            "dev",
            &dev_if,
        ]);
        pexec(&["ip", "link", "set", &dev_if, "up"]);
        pexec(&["ip", "link", "set", "lo", "up"]);
        pexec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("192.168.{n}.1"),
        ]);
        t
    }

    /// A command run inside the phone's namespace.
    fn in_phone(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.phone, program]);
        c
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.phone])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.router])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `callmux answer` inside the phone namespace; killed when dropped.
struct Phone {
    child: Child,
    /// Holds the log and the saved audio.
    _dir: tempfile::TempDir,
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_phone_behind_nat_registers_and_receives_a_call_with_media_both_ways() {
    if !is_root() {
        eprintln!("SKIPPED: the NAT test needs root for network namespaces (CI runs as root)");
        return;
    }
    require_tool("nft");
    require_tool("sipp");
    let net = Topology::new();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let caller = unique_ip();
    let cfg = dir.path().join("callmux.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sip]\nauth = \"required\"\nauth_algorithms = [\"MD5\"]\n\n\
             [registrar]\nkeepalive_s = 1\n\n\
             [[user]]\nname = \"alice\"\npassword = \"alice pw\"\n\n\
             [[trunk]]\nname = \"testcaller\"\nuri = \"sip:{{number}}@127.0.0.1:5999\"\nacl = [\"{caller}\"]\n"
        ),
    )
    .unwrap();
    let server = Server::start_in(
        Arc::clone(&dir),
        ServerOptions {
            extra_args: vec!["--config".into(), cfg.display().to_string()],
            ncco: Some(
                r#"[{"action":"record","split":"conversation"},{"action":"connect","endpoint":[{"type":"app","user":"alice"}]}]"#
                    .into(),
            ),
            ..Default::default()
        },
        Some(net.server_ip),
    );
    // The phone registers its private address from behind the NAT.
    let phone_sip = SocketAddr::new(net.phone_ip, 5062);
    let sipp = Sipp::prepare(
        "reg_register.xml",
        &[
            ("USER", "alice".into()),
            ("CONTACT", format!("<sip:alice@{phone_sip}>")),
            ("EXPIRES", "120".into()),
            ("STATUS", "200".into()),
        ],
    );
    let mut reg = net.in_phone("sipp");
    reg.arg(server.sip.to_string())
        .arg("-sf")
        .arg(&sipp.scenario)
        .args(["-i", &net.phone_ip.to_string(), "-p", "5062"])
        .args(["-mi", &net.phone_ip.to_string(), "-mp", "16000"])
        .args(["-m", "1", "-nostdin", "-timeout", "15s", "-timeout_error"])
        .args(["-au", "alice", "-ap", "alice pw"])
        .current_dir(sipp.dir.path())
        .stdin(Stdio::null());
    let out = output_within(reg, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "REGISTER from behind NAT failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        server.log_text()
    );
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("registration user=alice"))
        .expect("registration logged");
    assert!(
        line.contains(&format!("src={}:", net.wan_ip)),
        "the binding's source is the router's public address: {line}"
    );
    // The phone answers (inside its namespace) and streams 1000 Hz, saving what it hears.
    let phone_dir = tempfile::tempdir().unwrap();
    let heard = phone_dir.path().join("heard.wav");
    let plog = phone_dir.path().join("answer.log");
    let child = net
        .in_phone(bin())
        .args([
            "answer",
            "--bind",
            &phone_sip.to_string(),
            "--tone",
            "1000",
            "--calls",
            "1",
        ])
        .arg("--save")
        .arg(&heard)
        .env("CALLMUX_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&plog).unwrap())
        .spawn()
        .expect("start callmux answer in the phone namespace");
    let mut phone = Phone {
        child,
        _dir: phone_dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&plog)
        .unwrap_or_default()
        .contains("answering on")
    {
        assert!(Instant::now() < deadline, "callmux answer did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Keep-alive OPTIONS cross the NAT meanwhile (keepalive_s = 1); they must not disturb
    // the binding or the call.
    std::thread::sleep(Duration::from_millis(1500));
    // The call: caller 440 Hz, the NATed phone 1000 Hz.
    call_from_ok(&server, caller, &["--tone", "440", "--seconds", "3"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_mostly(&tones(&a, 0), 440.0, 15, "caller");
    let right = tones_between(&a, 1, 1000, a.duration_ms);
    assert!(
        mostly(&right, 1000.0, 10),
        "phone behind NAT (server → phone INVITE and phone → server RTP): {right:?}\n{}",
        server.log_text()
    );
    // What the phone heard: the caller (server → phone RTP through the NAT).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !heard.exists() || phone.child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        phone.child.try_wait().ok().flatten().is_some(),
        "the phone got the BYE through the NAT and exited"
    );
    let h = analyze(&heard);
    assert_mostly(&tones(&h, 0), 440.0, 10, "the phone heard the caller");
    drop(phone);

    // The other way: the user calls in from behind the NAT (digest, then media latched to
    // the NAT's address although its SDP names the private one).
    let sipp = Sipp::tone_template(&data_scenario("uac_auth_tone.xml"), 1300, 3.0, 3000, &[]);
    let mut call = net.in_phone("sipp");
    call.arg(server.sip.to_string())
        .arg("-sf")
        .arg(&sipp.scenario)
        .args(["-i", &net.phone_ip.to_string(), "-p", "5064"])
        .args(["-mi", &net.phone_ip.to_string(), "-mp", "16100"])
        .args([
            "-s",
            "100",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
        ])
        .args(["-au", "alice", "-ap", "alice pw"])
        .current_dir(sipp.dir.path())
        .stdin(Stdio::null());
    let out = output_within(call, Duration::from_secs(40));
    assert!(
        out.status.success(),
        "call from behind NAT failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        server.log_text()
    );
    let recs = server.wait_recordings(2, Duration::from_secs(15));
    let a = analyze(newest(&recs));
    assert_mostly(
        &tones_between(&a, 0, 500, 2500),
        1300.0,
        10,
        "the NATed caller's audio",
    );
}
