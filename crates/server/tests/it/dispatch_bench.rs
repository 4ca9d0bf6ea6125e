//! Benchmark (ignored by default): events per second from the queue into a local HTTP
//! receiver through `callmux dispatch`, for SQLite and for Redis Streams.
//!
//! ```sh
//! cargo test --release -p callmux-server --test it dispatch_bench:: -- --ignored --nocapture
//! ```
//! Prints enqueue and delivery rates; the test itself only checks that every event
//! arrived.

use std::time::{Duration, Instant, SystemTime};

use crate::common::http::{Dispatcher, Receiver, Redis, Reply};
use crate::common::*;
use callmux_webhook::{open_queue, HttpMethod, NewEvent, QueueSpec};

const CALLS: usize = 2_000;
const PER_CALL: usize = 5;

fn fill(spec: &QueueSpec, url: &str) -> f64 {
    let mut q = open_queue(spec).unwrap();
    let body = br#"{"from":"447700900000","to":"442079460000","uuid":"u","conversation_uuid":"c","status":"answered","direction":"inbound","timestamp":"2024-05-01T12:00:00.123Z"}"#;
    let start = Instant::now();
    // The server's writer commits what is waiting in one batch; 500 at a time here.
    let mut batch = Vec::new();
    for i in 0..PER_CALL {
        for c in 0..CALLS {
            batch.push(NewEvent {
                call_uuid: format!("call-{c}"),
                url: url.to_string(),
                method: HttpMethod::Post,
                body: body.to_vec(),
                kind: format!("bench.{i}"),
            });
            if batch.len() == 500 {
                q.enqueue_batch(std::mem::take(&mut batch), SystemTime::now())
                    .unwrap();
            }
        }
    }
    if !batch.is_empty() {
        q.enqueue_batch(batch, SystemTime::now()).unwrap();
    }
    (CALLS * PER_CALL) as f64 / start.elapsed().as_secs_f64()
}

fn drain(receiver: &Receiver, args: &[String], log: &std::path::Path) -> f64 {
    let start = Instant::now();
    let _d = Dispatcher::start(args, log);
    let total = CALLS * PER_CALL;
    receiver.wait_until(Duration::from_secs(600), "every event", |r| {
        r.len() >= total
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn config(dir: &std::path::Path) -> String {
    let p = dir.join("bench.toml");
    std::fs::write(&p, "[dispatch]\nmax_in_flight = 64\n").unwrap();
    p.display().to_string()
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture (release build)"]
fn events_per_second_sqlite_and_redis() {
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok());
    let url = receiver.url("/events");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let log = dir.path().join("dispatch.log");

    let data = dir.path().join("data");
    let enq = fill(&QueueSpec::sqlite(&data), &url);
    let rate = drain(
        &receiver,
        &[
            "--config".into(),
            cfg.clone(),
            "--data".into(),
            data.display().to_string(),
        ],
        &log,
    );
    println!(
        "SQLite (FULL): enqueue {enq:.0} events/s (batches of 500); delivered {rate:.0} events/s \
         ({CALLS} calls x {PER_CALL} events, 64 in flight)"
    );

    let redis = Redis::start();
    let qurl = redis.url("bench");
    let receiver2 = Receiver::start(ip, |_| Reply::ok());
    let enq = fill(
        &QueueSpec::parse_url(&qurl).unwrap(),
        &receiver2.url("/events"),
    );
    let rate = drain(
        &receiver2,
        &["--config".into(), cfg, "--queue".into(), qurl],
        &log,
    );
    println!(
        "Redis Streams: enqueue {enq:.0} events/s (batches of 500); delivered {rate:.0} events/s \
         ({CALLS} calls x {PER_CALL} events, 64 in flight)"
    );
}
