//! Queue costs: one enqueue (what the server pays per event), a batch of enqueues, and the
//! dispatcher's claim + ack throughput, for SQLite (FULL and NORMAL) and Redis.
//!
//! SQLite files go under Cargo's target tmp dir (a real disk, so fsync costs are real).
//! The Redis group starts its own `redis-server` on a free loopback port and is skipped
//! with a message when `redis-server` is not installed.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use callmux_webhook::queue::{RedisQueue, SqliteQueue, SqliteSync};
use callmux_webhook::{EventQueue, HttpMethod, NewEvent};
use criterion::{criterion_main, Criterion, Throughput};

const BATCH: usize = 100;
const LEASE: Duration = Duration::from_secs(60);

fn event(call: usize) -> NewEvent {
    NewEvent {
        call_uuid: format!("call-{call}"),
        url: "http://127.0.0.1:9/events".into(),
        method: HttpMethod::Post,
        body: br#"{"from":"447700900000","to":"442079460000","uuid":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","conversation_uuid":"CON-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","status":"answered","direction":"inbound","timestamp":"2024-05-01T12:00:00.123Z"}"#.to_vec(),
        kind: "call.answered".into(),
    }
}

struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis(dir: &std::path::Path) -> Option<Redis> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let redis = Redis {
        child,
        url: format!("redis://127.0.0.1:{port}/"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            if let Ok(q) = RedisQueue::open(&redis.url, "bench", "dispatch") {
                drop(q);
                return Some(redis);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn bench_backend(c: &mut Criterion, name: &str, open: &dyn Fn() -> Box<dyn EventQueue>) {
    let mut g = c.benchmark_group(format!("queue/{name}"));
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let mut q = open();
    let mut n = 0_usize;
    g.throughput(Throughput::Elements(1));
    g.bench_function("enqueue_one", |b| {
        b.iter(|| {
            n += 1;
            q.enqueue(event(n % 1000), SystemTime::now()).unwrap()
        })
    });

    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("enqueue_batch_100", |b| {
        b.iter(|| {
            n += 1;
            let evs = (0..BATCH).map(|i| event(n * BATCH + i)).collect();
            q.enqueue_batch(evs, SystemTime::now()).unwrap()
        })
    });

    // Drain what the enqueue benches left, then measure claim + ack of 100 call heads.
    loop {
        let got = q.claim("drain", SystemTime::now(), 1000, LEASE).unwrap();
        if got.is_empty() {
            break;
        }
        for e in got {
            q.ack(&e.id).unwrap();
        }
    }
    g.bench_function("claim_ack_100", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let evs = (0..BATCH).map(|i| event(n * BATCH + i)).collect();
                q.enqueue_batch(evs, SystemTime::now()).unwrap();
                let start = Instant::now();
                let got = q.claim("bench", SystemTime::now(), BATCH, LEASE).unwrap();
                assert_eq!(got.len(), BATCH);
                for e in &got {
                    q.ack(&e.id).unwrap();
                }
                spent += start.elapsed();
            }
            spent
        })
    });
    g.finish();
}

fn queues(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for (name, sync) in [
        ("sqlite_full", SqliteSync::Full),
        ("sqlite_normal", SqliteSync::Normal),
    ] {
        let dir = tmp.path().join(name);
        bench_backend(c, name, &|| {
            Box::new(SqliteQueue::open(&dir, sync).unwrap()) as Box<dyn EventQueue>
        });
    }
    match start_redis(tmp.path()) {
        Some(redis) => bench_backend(c, "redis", &|| {
            Box::new(RedisQueue::open(&redis.url, "bench", "dispatch").unwrap())
                as Box<dyn EventQueue>
        }),
        None => eprintln!("redis-server not available: skipping the Redis queue benches"),
    }
}

mod group {
    #![allow(
        missing_docs,
        unreachable_pub,
        reason = "criterion_group! expands to an undocumented pub fn"
    )]
    criterion::criterion_group!(benches, super::queues);
}

criterion_main!(group::benches);
