//! A real HTTP/1.1 server for tests (std `TcpListener`, one thread per connection,
//! keep-alive): answer URLs, event URLs and stream files. Every request is kept so tests
//! can check what callmux sent, field by field. Also: a redis-server and `callmux dispatch`
//! processes started by tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl HttpRequest {
    /// A header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The event id header.
    pub fn event_id(&self) -> String {
        self.header("X-Callmux-Event-Id")
            .unwrap_or_default()
            .to_string()
    }
}

/// The events of one answered, recorded call, in the order they must arrive.
pub const CALL_EVENTS: [&str; 5] = ["started", "ringing", "answered", "record", "completed"];

impl HttpRequest {
    /// The event's name: its call status, or "record" for a record event.
    pub fn event_name(&self) -> String {
        self.json()
            .get("status")
            .and_then(|s| s.as_str())
            .map_or_else(|| "record".into(), str::to_string)
    }
}

/// The deliveries a receiver got, counted: per event id, per call (event names in arrival
/// order) and per dispatcher (`X-Callmux-Dispatcher`).
#[derive(Debug, Default)]
pub struct EventTally {
    pub per_id: BTreeMap<String, usize>,
    pub per_call: BTreeMap<String, Vec<String>>,
    pub by_dispatcher: BTreeMap<String, usize>,
}

impl EventTally {
    /// Counts `reqs` (every request is an event delivery).
    pub fn of(reqs: &[HttpRequest]) -> Self {
        let mut t = Self::default();
        for r in reqs {
            let id = r.event_id();
            assert!(!id.is_empty(), "event without X-Callmux-Event-Id");
            *t.per_id.entry(id).or_default() += 1;
            let uuid = r.json()["uuid"].as_str().unwrap_or_default().to_string();
            t.per_call.entry(uuid).or_default().push(r.event_name());
            *t.by_dispatcher
                .entry(r.header("X-Callmux-Dispatcher").unwrap_or("?").to_string())
                .or_default() += 1;
        }
        t
    }

    /// Asserts that each of `calls` calls got [`CALL_EVENTS`] in order, every event exactly
    /// once: nothing lost, nothing delivered twice.
    pub fn assert_every_event_once_in_order(&self, calls: usize) {
        assert_eq!(self.per_id.len(), calls * CALL_EVENTS.len(), "nothing lost");
        let twice: Vec<_> = self.per_id.iter().filter(|(_, &n)| n > 1).collect();
        assert!(twice.is_empty(), "nothing delivered twice: {twice:?}");
        assert_eq!(self.per_call.len(), calls, "every call has events");
        for (uuid, seq) in &self.per_call {
            assert_eq!(
                seq, &CALL_EVENTS,
                "call {uuid}: events out of order or missing"
            );
        }
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
            content_type: "text/plain".into(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            body: serde_json::to_vec(value).unwrap(),
            content_type: "application/json".into(),
            delay: Duration::ZERO,
        }
    }

    pub fn bytes(body: Vec<u8>, content_type: &str) -> Self {
        Self {
            status: 200,
            body,
            content_type: content_type.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

pub type Handler = Arc<dyn Fn(&HttpRequest) -> Reply + Send + Sync>;

/// A running HTTP receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    handler: Arc<Mutex<Handler>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts on `ip` with a free port.
    pub fn start(
        ip: IpAddr,
        handler: impl Fn(&HttpRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_at(SocketAddr::new(ip, 0), handler)
    }

    /// Starts on `addr` (to come back on the same address after [`Receiver::stop`]).
    pub fn start_at(
        addr: SocketAddr,
        handler: impl Fn(&HttpRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let h: Handler = Arc::new(handler);
        Self::start_shared(addr, Arc::new(Mutex::new(Vec::new())), h)
    }

    fn start_shared(
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<HttpRequest>>>,
        handler: Handler,
    ) -> Self {
        let listener = bind_retry(addr);
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(Mutex::new(handler));
        let (r, h, st) = (
            Arc::clone(&requests),
            Arc::clone(&handler),
            Arc::clone(&stop),
        );
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, h, st) = (Arc::clone(&r), Arc::clone(&h), Arc::clone(&st));
                std::thread::spawn(move || serve_conn(conn, &r, &h, &st));
            }
        });
        Self {
            addr,
            requests,
            handler,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://addr/path`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the answers from now on.
    pub fn set_handler(&self, handler: impl Fn(&HttpRequest) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<HttpRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `done(requests)` holds, or panics after `timeout` with `what`.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[HttpRequest]) -> bool,
    ) -> Vec<HttpRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let reqs = self.requests();
            if done(&reqs) {
                return reqs;
            }
            if Instant::now() > deadline {
                let summary: Vec<String> = reqs
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {}",
                            r.method,
                            r.path,
                            String::from_utf8_lossy(&r.body)
                        )
                    })
                    .collect();
                panic!(
                    "timed out waiting for {what}; got {} requests:\n{}",
                    reqs.len(),
                    summary.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops listening and closes every connection (the address refuses connections).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        // Connection threads notice the flag within their 100 ms read time-out.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Starts again on the same address, keeping the requests seen so far.
    pub fn restart(&mut self) {
        self.stop();
        let handler = Arc::clone(&self.handler.lock().unwrap());
        let again = Self::start_shared(self.addr, Arc::clone(&self.requests), handler);
        *self = again;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }
}

fn bind_retry(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr) {
            Ok(l) => return l,
            Err(e) if Instant::now() > deadline => panic!("bind {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn serve_conn(
    conn: TcpStream,
    requests: &Mutex<Vec<HttpRequest>>,
    handler: &Mutex<Handler>,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let Some(req) = read_request(&mut reader, stop) else {
            return;
        };
        let h = Arc::clone(&handler.lock().unwrap());
        let reply = h(&req);
        requests.lock().unwrap().push(req);
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\nContent-Type: {}\r\n\r\n",
            reply.status,
            reply.body.len(),
            reply.content_type
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&reply.body).is_err() {
            return;
        }
    }
}

/// Reads one request; `None` on EOF, error or stop.
fn read_request(reader: &mut BufReader<TcpStream>, stop: &AtomicBool) -> Option<HttpRequest> {
    let mut line = String::new();
    // Wait for the request line, checking the stop flag between read time-outs.
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if !line.is_empty() {
                    continue;
                }
            }
            Err(_) => return None,
        }
    }
    let at = Instant::now();
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return None,
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got < len {
        match reader.read(&mut body[got..]) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() > deadline {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target, Vec::new()),
    };
    Some(HttpRequest {
        method,
        path,
        query,
        headers,
        body,
        at,
    })
}

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A free TCP port on `ip` (bound and released).
pub fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server on 127.0.0.1 and a free port, without persistence; killed when dropped.
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        super::require_tool("redis-server");
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = free_port(ip);
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if redis_ping(port) {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}/0?prefix={prefix}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// A `callmux dispatch` process started by a test; killed when dropped.
pub struct Dispatcher {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Dispatcher {
    pub fn start(args: &[String], log: &Path) -> Self {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(super::bin())
            .arg("dispatch")
            .args(args)
            .env("CALLMUX_LOG", "info")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start callmux dispatch");
        Self {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `callmux dispatch ARGS` to completion (for `--dead`, `--requeue`).
pub fn dispatch_once(args: &[String]) -> std::process::Output {
    Command::new(super::bin())
        .arg("dispatch")
        .args(args)
        .env("CALLMUX_LOG", "warn")
        .output()
        .expect("run callmux dispatch")
}

/// Writes a 16-bit mono WAV of a sine tone.
pub fn tone_wav(path: &Path, rate: u32, freq: f64, seconds: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (f64::from(rate) * seconds) as usize;
    for i in 0..n {
        let v = 12_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin();
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Events (JSON bodies) posted to `path`, in arrival order.
pub fn bodies(reqs: &[HttpRequest], path: &str) -> Vec<serde_json::Value> {
    reqs.iter()
        .filter(|r| r.path == path && r.method == "POST")
        .map(HttpRequest::json)
        .collect()
}

/// A minimal HTTP/1.1 GET returning (status, body bytes), with room for large bodies.
pub fn get_bytes(addr: SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    super::http_get_within(
        addr,
        path,
        Duration::from_millis(500),
        Duration::from_secs(5),
    )
}
