//! Redis-only behaviour: recovery after the keys vanish, reconnection, key layout.

use std::time::{Duration, SystemTime};

use callmux_webhook::queue::RedisQueue;
use callmux_webhook::{open_queue, EventQueue, QueueSpec};

use super::harness::{ev, RedisServer};

fn admin(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

#[test]
fn survives_flushall_by_recreating_the_group() {
    let server = RedisServer::start();
    let mut q = RedisQueue::open(&server.url(), "t", "g").unwrap();
    let now = SystemTime::now();
    q.enqueue(ev("a", 1), now).unwrap();
    redis::cmd("FLUSHALL")
        .query::<()>(&mut admin(&server))
        .unwrap();
    // The stream and group are gone; the next calls recreate them.
    assert!(q
        .claim("c", now, 10, Duration::from_secs(5))
        .unwrap()
        .is_empty());
    let id = q.enqueue(ev("a", 2), now).unwrap();
    let got = q.claim("c", now, 10, Duration::from_secs(5)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
}

#[test]
fn reconnects_after_the_connection_is_killed() {
    let server = RedisServer::start();
    let mut q = RedisQueue::open(&server.url(), "t", "g").unwrap();
    let now = SystemTime::now();
    q.enqueue(ev("a", 1), now).unwrap();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query::<i64>(&mut admin(&server))
        .unwrap();
    // The first call may see the dead socket (a transient error); the next reconnects.
    if let Err(e) = q.depth() {
        assert!(e.is_transient(), "{e}");
    }
    assert_eq!(q.depth().unwrap().pending, 1);
}

#[test]
fn keys_share_one_hash_tag() {
    let server = RedisServer::start();
    let spec =
        QueueSpec::parse_url(&format!("{}?prefix=cm&group=dispatchers", server.url())).unwrap();
    let mut q = open_queue(&spec).unwrap();
    let now = SystemTime::now();
    let a = q.enqueue(ev("a", 1), now).unwrap();
    q.enqueue(ev("a", 2), now).unwrap();
    q.claim("c", now, 10, Duration::from_secs(5)).unwrap();
    q.retry_later(&a, now + Duration::from_secs(60), "HTTP 500")
        .unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut admin(&server))
        .unwrap();
    keys.sort();
    assert!(keys.iter().all(|k| k.starts_with("{cm}:")), "{keys:?}");
    for want in [
        "{cm}:ready",
        "{cm}:retry",
        "{cm}:seq",
        "{cm}:live",
        "{cm}:call:a",
    ] {
        assert!(
            keys.iter().any(|k| k == want),
            "{want} missing from {keys:?}"
        );
    }
    let groups: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("{cm}:ready")
        .query(&mut admin(&server))
        .unwrap();
    assert!(format!("{groups:?}").contains("dispatchers"), "{groups:?}");
}

#[test]
fn unreachable_server_is_a_transient_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisQueue::open(&format!("redis://127.0.0.1:{port}/"), "t", "g").unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[test]
fn ack_before_retry_time_removes_the_scheduled_retry() {
    let server = RedisServer::start();
    let mut q = RedisQueue::open(&server.url(), "t", "g").unwrap();
    let now = SystemTime::now();
    let a1 = q.enqueue(ev("a", 1), now).unwrap();
    let a2 = q.enqueue(ev("a", 2), now).unwrap();
    q.claim("c", now, 10, Duration::from_secs(5)).unwrap();
    q.retry_later(&a1, now + Duration::from_secs(60), "x")
        .unwrap();
    // A slow dispatcher's delivery succeeded after all.
    q.ack(&a1).unwrap();
    let zcard: i64 = redis::cmd("ZCARD")
        .arg("{t}:retry")
        .query(&mut admin(&server))
        .unwrap();
    assert_eq!(zcard, 0);
    let got = q.claim("c", now, 10, Duration::from_secs(5)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, a2);
}
