//! Test fixtures: a private `redis-server` per test, SQLite in a temp dir, and helpers.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callmux_webhook::queue::{RedisQueue, SqliteQueue, SqliteSync};
use callmux_webhook::{EventQueue, HttpMethod, NewEvent};

/// A `redis-server` on a free loopback port, without persistence, killed on drop.
pub(crate) struct RedisServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Start one. Fails the test (never skips it) when `redis-server` is not installed.
    pub(crate) fn start() -> Self {
        match Command::new("redis-server").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("`redis-server --version` failed: {out:?}"),
            Err(e) => panic!(
                "redis-server is not on PATH ({e}); the Redis queue tests need a real \
                 redis-server (apt-get install redis-server) and do not skip without one"
            ),
        }
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            // Owned from here on, so every path kills and reaps it.
            let mut server = Self { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && server.ping() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server on a free 127.0.0.1 port");
    }

    fn ping(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut con) = client.get_connection() {
                    // Make sure it is our server, not another test's that won the port.
                    let dir: Option<Vec<String>> = redis::cmd("CONFIG")
                        .arg("GET")
                        .arg("dir")
                        .query(&mut con)
                        .ok();
                    let ours = self.dir.path().canonicalize().ok();
                    return dir.and_then(|d| d.get(1).map(std::path::PathBuf::from)) == ours;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `redis://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Something that opens fresh handles on one queue (one per "process").
pub(crate) trait Fixture: Sync {
    fn open(&self) -> Box<dyn EventQueue>;
}

pub(crate) struct SqliteFixture {
    pub(crate) dir: tempfile::TempDir,
}

impl SqliteFixture {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

impl Fixture for SqliteFixture {
    fn open(&self) -> Box<dyn EventQueue> {
        Box::new(SqliteQueue::open(self.dir.path(), SqliteSync::Full).expect("open sqlite"))
    }
}

pub(crate) struct RedisFixture {
    pub(crate) server: RedisServer,
}

impl RedisFixture {
    pub(crate) fn new() -> Self {
        Self {
            server: RedisServer::start(),
        }
    }
}

impl Fixture for RedisFixture {
    fn open(&self) -> Box<dyn EventQueue> {
        Box::new(RedisQueue::open(&self.server.url(), "cmtest", "dispatch").expect("open redis"))
    }
}

/// An event for `call` whose body names it.
pub(crate) fn ev(call: &str, n: u32) -> NewEvent {
    NewEvent {
        call_uuid: call.to_owned(),
        url: format!("http://127.0.0.1:9/{call}"),
        method: HttpMethod::Post,
        body: format!(r#"{{"call":"{call}","n":{n}}}"#).into_bytes(),
        kind: format!("test.{n}"),
    }
}

/// `t` truncated to whole milliseconds, as the queues store it.
pub(crate) fn ms(t: SystemTime) -> SystemTime {
    let d = t.duration_since(UNIX_EPOCH).expect("after epoch");
    UNIX_EPOCH + Duration::from_millis(u64::try_from(d.as_millis()).expect("fits"))
}
