//! Test support: start the real `callmux` binary on its own loopback address, drive it with
//! `callmux call` and SIPp, find and analyse the recordings it writes.
//!
//! Every test server binds a distinct 127.x.y.z address, so tests running in parallel never
//! collide on ports (SIP 5060, HTTP 8080, RTP ranges are per address).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

mod audio;
pub mod http;
mod sipp;

pub use audio::*;
pub use sipp::*;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `callmux` binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_callmux")
}

static NEXT_IP: AtomicU32 = AtomicU32::new(1);

/// A loopback address no other test of this process uses.
pub fn unique_ip() -> IpAddr {
    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    // 127.A.B.C: A from the pid (separate test binaries), B.C from the counter.
    IpAddr::V4(Ipv4Addr::new(
        127,
        (10 + pid % 200) as u8,
        (n / 250) as u8,
        (n % 250 + 2) as u8,
    ))
}

/// A running `callmux serve`; killed when dropped, its log printed if the test failed.
pub struct Server {
    pub child: Option<Child>,
    pub ip: IpAddr,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub dir: Arc<tempfile::TempDir>,
    pub log: PathBuf,
    pub opts: ServerOptions,
}

/// Options for [`Server::start`].
#[derive(Default, Clone)]
pub struct ServerOptions {
    pub ncco: Option<String>,
    pub extra_args: Vec<String>,
    pub rtp_ports: Option<String>,
}

impl Server {
    /// Starts a server on a fresh loopback address and waits until it answers /healthz.
    pub fn start(opts: ServerOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::start_in(dir, opts, None)
    }

    /// Starts a server running `ncco` for every call.
    pub fn with_ncco(ncco: &str) -> Self {
        Self::start(ServerOptions {
            ncco: Some(ncco.to_string()),
            ..Default::default()
        })
    }

    /// Starts a server on `ip` (where the test's other parties also listen) running `ncco`
    /// for every call.
    pub fn with_ncco_at(ip: IpAddr, ncco: &str) -> Self {
        Self::start_in(
            Arc::new(tempfile::tempdir().expect("tempdir")),
            ServerOptions {
                ncco: Some(ncco.to_string()),
                ..Default::default()
            },
            Some(ip),
        )
    }

    /// Starts (or restarts) a server using `dir` for recordings and data.
    pub fn start_in(dir: Arc<tempfile::TempDir>, opts: ServerOptions, ip: Option<IpAddr>) -> Self {
        let ip = ip.unwrap_or_else(unique_ip);
        let sip = SocketAddr::new(ip, 5060);
        let http = SocketAddr::new(ip, 8080);
        let log = dir.path().join(format!(
            "server-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .arg("--sip")
            .arg(sip.to_string())
            .arg("--http")
            .arg(http.to_string())
            .arg("--rtp-ports")
            .arg(
                opts.rtp_ports
                    .clone()
                    .unwrap_or_else(|| "20000-21999".into()),
            )
            .arg("--recordings")
            .arg(dir.path().join("recordings"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("CALLMUX_LOG", "info");
        if let Some(ncco) = &opts.ncco {
            let p = dir.path().join("ncco.json");
            std::fs::write(&p, ncco).unwrap();
            cmd.arg("--ncco").arg(p);
        }
        cmd.args(&opts.extra_args);
        let logf = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::null()).stderr(logf);
        let child = cmd.spawn().expect("start callmux");
        let server = Self {
            child: Some(child),
            ip,
            sip,
            http,
            dir,
            log,
            opts,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(self.http, "/healthz").is_some_and(|(s, _)| s == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become ready; log:\n{}", self.log_text());
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `sip:NUMBER@ip:5060`
    pub fn uri(&self, number: &str) -> String {
        format!("sip:{number}@{}", self.sip)
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    /// All finished or unfinished recordings (media files, not sidecars), sorted.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.recordings_dir(), &mut out);
        out.retain(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("wav" | "mp3" | "ogg")
            )
        });
        out.sort();
        out
    }

    /// Waits until `n` recordings have a sidecar in a final state, or panics.
    pub fn wait_recordings(&self, n: usize, timeout: Duration) -> Vec<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            let recs = self.recordings();
            let done = recs
                .iter()
                .filter(|p| sidecar_state(p).is_some_and(|s| s != "recording"))
                .count();
            if done >= n {
                return recs;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} finished recordings, have {done} of {}; log:\n{}",
                    recs.len(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new server process on the same address and directories (after `kill9` or
    /// `stop`).
    pub fn restart(&mut self) -> Self {
        assert!(self.child.is_none(), "stop or kill the server first");
        Self::start_in(Arc::clone(&self.dir), self.opts.clone(), Some(self.ip))
    }

    /// kill -HUP: reload the config file.
    pub fn sighup(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits (at most 10 s, else panics with the log) until the log holds `n` lines
    /// containing `what`.
    pub fn wait_log(&self, what: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log_text();
            if log.matches(what).count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {n}× {what:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most 10 s) until /healthz reports no active calls and no RTP ports in use;
    /// whether it did. Every call must give back what it took.
    pub fn wait_idle(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some((200, body)) = http_get(self.http, "/healthz") {
                if body.contains("\"active_calls\":0") && body.contains("\"rtp_ports_in_use\":0") {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        reap(
            self.child.take(),
            &format!("callmux log ({})", self.log.display()),
            || self.log_text(),
        );
    }
}

/// What every test-started process does when dropped: kill it if it still runs, and when
/// the test is failing print its log under `label`.
pub fn reap(child: Option<Child>, label: &str, log: impl FnOnce() -> String) {
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
    if std::thread::panicking() {
        eprintln!("---- {label} ----\n{}", log());
    }
}

/// A `connect` action to the SIP endpoint `uri`, as NCCO JSON.
pub fn connect_ncco(uri: &str) -> String {
    format!(r#"{{"action":"connect","endpoint":[{{"type":"sip","uri":"{uri}"}}]}}"#)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The most recently modified of `files` (the recording of the last call).
pub fn newest(files: &[PathBuf]) -> &PathBuf {
    files
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .expect("at least one file")
}

/// The `state` field of a recording's sidecar.
pub fn sidecar_state(media: &Path) -> Option<String> {
    let text = std::fs::read_to_string(media.with_extension("json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("state")?.as_str().map(str::to_string)
}

/// The sidecar as JSON.
pub fn sidecar(media: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(media.with_extension("json")).expect("sidecar");
    serde_json::from_str(&text).expect("sidecar json")
}

/// A minimal HTTP/1.1 GET with short time limits (for polling); returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let (status, body) = http_get_within(
        addr,
        path,
        Duration::from_millis(200),
        Duration::from_secs(2),
    )?;
    Some((status, String::from_utf8(body).ok()?))
}

/// A minimal HTTP/1.1 GET (`Connection: close`, body read to the end): (status, body), or
/// None when the server does not connect within `connect` or answer within `read`.
pub fn http_get_within(
    addr: SocketAddr,
    path: &str,
    connect: Duration,
    read: Duration,
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, connect).ok()?;
    s.set_read_timeout(Some(read)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, resp[split + 4..].to_vec()))
}

/// Runs a command to completion, killing it (and failing the test) if it takes longer than
/// `limit`: a test must never hang.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `callmux call URI ARGS…` bound to `ip`, and returns its output.
pub fn callmux_call(ip: IpAddr, uri: &str, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("call")
        .arg(uri)
        .arg("--bind")
        .arg(format!("{ip}:0"))
        .args(args)
        .env("CALLMUX_LOG", "warn")
        .output()
        .expect("run callmux call")
}

/// `callmux call` from the server's own address to its number 100, asserting that the
/// call succeeded (failing with the caller's stderr and the server's log).
pub fn call_ok(server: &Server, args: &[&str]) -> Output {
    call_from_ok(server, server.ip, args)
}

/// `callmux call` from `from` to the server's number 100, asserting that the call
/// succeeded (failing with the caller's stderr and the server's log).
pub fn call_from_ok(server: &Server, from: IpAddr, args: &[&str]) -> Output {
    let out = callmux_call(from, &server.uri("100"), args);
    assert!(
        out.status.success(),
        "callmux call {args:?} from {from} failed ({}): {}\n--- server log\n{}",
        out.status,
        stderr_of(&out),
        server.log_text()
    );
    out
}

/// [`call_ok`] for a caller sending 440 Hz for `seconds` and the DTMF `digits` at `at`
/// seconds (RFC 4733 unless `extra` says `--dtmf-info`).
pub fn call_with_digits(
    server: &Server,
    seconds: &str,
    digits: &str,
    at: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "--tone",
        "440",
        "--seconds",
        seconds,
        "--dtmf",
        digits,
        "--dtmf-at",
        at,
    ];
    args.extend_from_slice(extra);
    call_ok(server, &args)
}

/// A process's stderr as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `callmux serve` on ephemeral loopback ports running the NCCO file `ncco`: the command
/// for tests of NCCOs the server must refuse at load.
pub fn serve_with_ncco_file(ncco: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "serve",
        "--sip",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--ncco",
    ])
    .arg(ncco);
    cmd
}

/// Runs `cmd` (a `callmux serve` that must refuse to start) bounded by 20 s, asserts that it
/// exited with code 2 and that its stderr names `key`; `what` says which case this is.
pub fn assert_exits_2_naming(cmd: Command, key: &str, what: &str) {
    let out = output_within(cmd, Duration::from_secs(20));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains(key), "{what} should name {key}: {err}");
}

/// Sends one UDP datagram to `to` from a fresh socket on `from_ip`, and returns the first
/// reply (if any arrives within `wait`).
pub fn udp_exchange(
    from_ip: IpAddr,
    to: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let s = UdpSocket::bind(SocketAddr::new(from_ip, 0)).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.send_to(bytes, to).ok()?;
    let mut buf = vec![0u8; 65_536];
    // Skip provisional responses (100 Trying) and return the first final one.
    loop {
        let (n, _) = s.recv_from(&mut buf).ok()?;
        let msg = buf[..n].to_vec();
        let status = std::str::from_utf8(&msg)
            .ok()
            .and_then(|t| t.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok());
        if status.is_some_and(|c| c < 200) {
            continue;
        }
        return Some(msg);
    }
}

/// Whether SIPp is installed (CI installs it; a test that needs it fails without it).
pub fn require_tool(name: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{name} is required for this test (apt-get install sip-tester sox; see .ci/run)"
    );
}

/// Waits at most `limit` for a child to exit; kills it and returns None on time-out.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A `callmux answer` process (a UAS that streams a tone); killed when dropped.
pub struct Answerer {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Answerer {
    /// Starts `callmux answer --bind ip:port ARGS…` and waits until it listens.
    pub fn start(ip: IpAddr, port: u16, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("answer.log");
        let addr = SocketAddr::new(ip, port);
        let child = Command::new(bin())
            .arg("answer")
            .arg("--bind")
            .arg(addr.to_string())
            .args(args)
            .env("CALLMUX_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start callmux answer");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("answering on")
        {
            assert!(Instant::now() < deadline, "callmux answer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// A callee on `ip:port` that answers one call and streams `hz` Hz for `seconds`, then
    /// hangs up.
    pub fn tone(ip: IpAddr, port: u16, hz: u32, seconds: u32) -> Self {
        Self::start(
            ip,
            port,
            &[
                "--tone",
                &hz.to_string(),
                "--seconds",
                &seconds.to_string(),
                "--calls",
                "1",
            ],
        )
    }

    /// `sip:USER@ip:port`
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit (after `--calls N`), at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Answerer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- callmux answer log ----\n{}", self.log_text());
        }
    }
}
