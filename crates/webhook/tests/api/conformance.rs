//! One conformance suite for every `EventQueue` backend (instantiated at the bottom).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use callmux_webhook::{EventId, EventQueue, HttpMethod, NewEvent, QueueDepth, QueueError};

use super::harness::{ev, ms, Fixture, RedisFixture, SqliteFixture};

const LEASE: Duration = Duration::from_secs(30);

fn depth(q: &mut dyn EventQueue) -> (u64, u64, u64) {
    let QueueDepth {
        pending,
        in_flight,
        dead,
    } = q.depth().unwrap();
    (pending, in_flight, dead)
}

fn ids(evs: &[callmux_webhook::QueuedEvent]) -> Vec<EventId> {
    evs.iter().map(|e| e.id.clone()).collect()
}

pub(crate) fn fields_round_trip(f: &dyn Fixture) {
    let mut q = f.open();
    let now = SystemTime::now();
    let body: Vec<u8> = (0..=255).collect();
    let id = q
        .enqueue(
            NewEvent {
                call_uuid: "call-ü".into(),
                url: "http://127.0.0.1:9/x?y=1".into(),
                method: HttpMethod::Get,
                body: body.clone(),
                kind: "call.answered".into(),
            },
            now,
        )
        .unwrap();
    let got = q.claim("c1", now, 10, LEASE).unwrap();
    assert_eq!(got.len(), 1);
    let e = &got[0];
    assert_eq!(e.id, id);
    assert_eq!(e.call_uuid, "call-ü");
    assert_eq!(e.url, "http://127.0.0.1:9/x?y=1");
    assert_eq!(e.method, HttpMethod::Get);
    assert_eq!(e.body, body);
    assert_eq!(e.kind, "call.answered");
    assert_eq!(e.created_at, ms(now));
    assert_eq!(e.attempts, 0);
    assert_eq!(e.last_error, None);
    assert!(q.claim("c1", now, 0, LEASE).unwrap().is_empty());
}

pub(crate) fn order_per_call(f: &dyn Fixture) {
    let mut q = f.open();
    let now = SystemTime::now();
    let mut want: HashMap<String, Vec<EventId>> = HashMap::new();
    for n in 0..4 {
        for call in ["a", "b", "c"] {
            let id = q.enqueue(ev(call, n), now).unwrap();
            want.entry(call.into()).or_default().push(id);
        }
    }
    let mut got: HashMap<String, Vec<(u64, EventId)>> = HashMap::new();
    for _round in 0..4 {
        let batch = q.claim("c1", now, 100, LEASE).unwrap();
        let calls: HashSet<&str> = batch.iter().map(|e| e.call_uuid.as_str()).collect();
        assert_eq!(
            calls.len(),
            batch.len(),
            "two events of one call in one claim"
        );
        assert_eq!(batch.len(), 3, "every call's head is claimable");
        // Nothing else of these calls while their heads are leased.
        assert!(q.claim("c2", now, 100, LEASE).unwrap().is_empty());
        for e in &batch {
            got.entry(e.call_uuid.clone())
                .or_default()
                .push((e.seq, e.id.clone()));
            q.ack(&e.id).unwrap();
        }
    }
    assert!(q.claim("c1", now, 100, LEASE).unwrap().is_empty());
    for (call, evs) in got {
        assert!(
            evs.windows(2).all(|w| w[0].0 < w[1].0),
            "seq order for {call}"
        );
        let order: Vec<EventId> = evs.into_iter().map(|(_, id)| id).collect();
        assert_eq!(order, want[&call], "delivery order for {call}");
    }
}

pub(crate) fn claim_respects_limit(f: &dyn Fixture) {
    let mut q = f.open();
    let now = SystemTime::now();
    for c in 0..10 {
        q.enqueue(ev(&format!("call{c}"), 0), now).unwrap();
    }
    assert_eq!(q.claim("c1", now, 4, LEASE).unwrap().len(), 4);
    assert_eq!(q.claim("c2", now, 4, LEASE).unwrap().len(), 4);
    assert_eq!(q.claim("c3", now, 4, LEASE).unwrap().len(), 2);
    assert_eq!(depth(&mut *q), (0, 10, 0));
}

pub(crate) fn lease_expiry_redelivers(f: &dyn Fixture) {
    let mut q1 = f.open();
    let mut q2 = f.open();
    let lease = Duration::from_millis(1000);
    let t0 = SystemTime::now();
    let a1 = q1.enqueue(ev("a", 1), t0).unwrap();
    let a2 = q1.enqueue(ev("a", 2), t0).unwrap();
    let first = q1.claim("dead-dispatcher", t0, 10, lease).unwrap();
    assert_eq!(ids(&first), vec![a1.clone()]);
    assert!(q2
        .claim("d2", SystemTime::now(), 10, lease)
        .unwrap()
        .is_empty());
    std::thread::sleep(Duration::from_millis(1300));
    let again = q2.claim("d2", SystemTime::now(), 10, lease).unwrap();
    assert_eq!(
        ids(&again),
        vec![a1.clone()],
        "expired lease is claimable again"
    );
    assert_eq!(again[0].attempts, 0);
    // A late ack from the first dispatcher and the second's ack are both fine.
    q1.ack(&a1).unwrap();
    q2.ack(&a1).unwrap();
    let next = q2.claim("d2", SystemTime::now(), 10, lease).unwrap();
    assert_eq!(ids(&next), vec![a2]);
}

pub(crate) fn ack_is_idempotent(f: &dyn Fixture) {
    let mut q = f.open();
    let now = SystemTime::now();
    let a1 = q.enqueue(ev("a", 1), now).unwrap();
    q.claim("c", now, 10, LEASE).unwrap();
    q.ack(&a1).unwrap();
    q.ack(&a1).unwrap();
    let ghost = EventId::from_string("no-such-event");
    q.ack(&ghost).unwrap();
    assert!(matches!(
        q.retry_later(&ghost, now, "x"),
        Err(QueueError::NotFound(_))
    ));
    assert!(matches!(
        q.dead_letter(&ghost, "x"),
        Err(QueueError::NotFound(_))
    ));
    assert_eq!(q.requeue_dead_at(Some(&ghost), now).unwrap(), 0);
    assert_eq!(depth(&mut *q), (0, 0, 0));
}

pub(crate) fn retry_later_not_before(f: &dyn Fixture) {
    let mut q = f.open();
    let t0 = SystemTime::now();
    let a1 = q.enqueue(ev("a", 1), t0).unwrap();
    let a2 = q.enqueue(ev("a", 2), t0).unwrap();
    let b1 = q.enqueue(ev("b", 1), t0).unwrap();
    let got = q.claim("c", t0, 10, LEASE).unwrap();
    assert_eq!(got.len(), 2);
    q.ack(&b1).unwrap();
    let at = t0 + Duration::from_secs(10);
    q.retry_later(&a1, at, "HTTP 503").unwrap();
    assert_eq!(depth(&mut *q), (2, 0, 0));
    for t in [t0, t0 + Duration::from_millis(9_990)] {
        let early = q.claim("c", t, 10, LEASE).unwrap();
        assert!(early.is_empty(), "claimed {early:?} before not_before");
    }
    let late = q.claim("c", at, 10, LEASE).unwrap();
    assert_eq!(ids(&late), vec![a1.clone()]);
    assert_eq!(late[0].attempts, 1);
    assert_eq!(late[0].last_error.as_deref(), Some("HTTP 503"));
    q.retry_later(&a1, at, "timeout").unwrap();
    let again = q.claim("c", at, 10, LEASE).unwrap();
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("timeout"));
    q.ack(&a1).unwrap();
    assert_eq!(ids(&q.claim("c", at, 10, LEASE).unwrap()), vec![a2]);
}

pub(crate) fn dead_letter_and_requeue(f: &dyn Fixture) {
    let mut q = f.open();
    let t0 = SystemTime::now();
    let a1 = q.enqueue(ev("a", 1), t0).unwrap();
    let a2 = q.enqueue(ev("a", 2), t0).unwrap();
    let b1 = q.enqueue(ev("b", 1), t0).unwrap();
    q.claim("c", t0, 10, LEASE).unwrap();
    q.dead_letter(&a1, "permanent failure after 3 attempts: HTTP 410")
        .unwrap();
    assert!(matches!(
        q.dead_letter(&a1, "again"),
        Err(QueueError::NotFound(_))
    ));
    let dead = q.list_dead(10).unwrap();
    assert_eq!(ids(&dead), vec![a1.clone()]);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("permanent failure after 3 attempts: HTTP 410")
    );
    assert_eq!(dead[0].body, ev("a", 1).body);
    assert_eq!(depth(&mut *q), (1, 1, 1));
    // The dead head lets the call go on.
    let next = q.claim("c", t0, 10, LEASE).unwrap();
    assert_eq!(ids(&next), vec![a2.clone()]);
    // Requeued: same id, attempts reset, at the end of its call (behind a2).
    let t1 = t0 + Duration::from_secs(10); // within b1's lease
    assert_eq!(q.requeue_dead_at(Some(&a1), t1).unwrap(), 1);
    assert!(q.list_dead(10).unwrap().is_empty());
    assert!(q.claim("c", t1, 10, LEASE).unwrap().is_empty());
    q.ack(&a2).unwrap();
    let back = q.claim("c", t1, 10, LEASE).unwrap();
    assert_eq!(ids(&back), vec![a1.clone()]);
    assert_eq!(back[0].attempts, 0);
    assert_eq!(back[0].created_at, ms(t1));
    assert!(back[0].seq > next[0].seq);
    // Requeue all.
    q.dead_letter(&a1, "r1").unwrap();
    q.dead_letter(&b1, "r2").unwrap();
    assert_eq!(q.list_dead(1).unwrap().len(), 1);
    assert_eq!(q.list_dead(0).unwrap().len(), 0);
    assert_eq!(ids(&q.list_dead(10).unwrap()), vec![a1.clone(), b1.clone()]);
    assert_eq!(q.requeue_dead(None).unwrap(), 2);
    assert_eq!(q.requeue_dead(None).unwrap(), 0);
    assert_eq!(depth(&mut *q), (2, 0, 0));
    let mut both = ids(&q.claim("c", SystemTime::now(), 10, LEASE).unwrap());
    both.sort();
    let mut want = vec![a1, b1];
    want.sort();
    assert_eq!(both, want);
}

pub(crate) fn depth_counts(f: &dyn Fixture) {
    let mut q = f.open();
    let t0 = SystemTime::now();
    assert_eq!(depth(&mut *q), (0, 0, 0));
    let evs: Vec<NewEvent> = (0..5).map(|n| ev(&format!("k{}", n % 3), n)).collect();
    let ids = q.enqueue_batch(evs, t0).unwrap();
    assert_eq!(depth(&mut *q), (5, 0, 0));
    let got = q.claim("c", t0, 2, LEASE).unwrap();
    assert_eq!(depth(&mut *q), (3, 2, 0));
    q.ack(&got[0].id).unwrap();
    assert_eq!(depth(&mut *q), (3, 1, 0));
    q.retry_later(&got[1].id, t0 + LEASE, "503").unwrap();
    assert_eq!(depth(&mut *q), (4, 0, 0));
    q.dead_letter(&got[1].id, "gone").unwrap();
    assert_eq!(depth(&mut *q), (3, 0, 1));
    assert_eq!(ids.len(), 5);
}

pub(crate) fn batch_keeps_order_and_unique_ids(f: &dyn Fixture) {
    let mut q = f.open();
    let now = SystemTime::now();
    let evs: Vec<NewEvent> = (0..60).map(|n| ev(&format!("c{}", n % 3), n)).collect();
    let ids = q.enqueue_batch(evs, now).unwrap();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 60);
    assert!(q.enqueue_batch(Vec::new(), now).unwrap().is_empty());
    let mut order: HashMap<String, Vec<u32>> = HashMap::new();
    loop {
        let got = q.claim("c", now, 100, LEASE).unwrap();
        if got.is_empty() {
            break;
        }
        for e in got {
            let n: u32 = e.kind.trim_start_matches("test.").parse().unwrap();
            order.entry(e.call_uuid.clone()).or_default().push(n);
            q.ack(&e.id).unwrap();
        }
    }
    for (call, ns) in &order {
        assert_eq!(ns.len(), 20, "{call}");
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "{call}: {ns:?}");
    }
}

pub(crate) fn durable_across_reopen(f: &dyn Fixture) {
    let t0 = SystemTime::now();
    let (a1, a2, b1, c1);
    {
        let mut q = f.open();
        a1 = q.enqueue(ev("a", 1), t0).unwrap();
        a2 = q.enqueue(ev("a", 2), t0).unwrap();
        b1 = q.enqueue(ev("b", 1), t0).unwrap();
        c1 = q.enqueue(ev("c", 1), t0).unwrap();
        q.claim("c", t0, 10, LEASE).unwrap();
        q.retry_later(&a1, t0 + Duration::from_secs(5), "HTTP 500")
            .unwrap();
        q.dead_letter(&b1, "gone").unwrap();
    }
    let mut q = f.open();
    assert_eq!(depth(&mut *q), (2, 1, 1));
    assert_eq!(ids(&q.list_dead(10).unwrap()), vec![b1]);
    // c1 is still leased; a1 waits for its retry time and holds a2 back.
    assert!(q.claim("c", t0, 10, LEASE).unwrap().is_empty());
    let later = t0 + Duration::from_secs(5);
    let got = q.claim("c", later, 10, LEASE).unwrap();
    assert_eq!(ids(&got), vec![a1.clone()]);
    assert_eq!(got[0].attempts, 1);
    assert_eq!(got[0].body, ev("a", 1).body);
    q.ack(&a1).unwrap();
    assert_eq!(ids(&q.claim("c", later, 10, LEASE).unwrap()), vec![a2]);
    q.ack(&c1).unwrap();
}

/// Two dispatchers (separate handles, separate threads) drain the queue together: every
/// event is delivered once, never two of one call at a time, always in order.
pub(crate) fn two_dispatchers_share_the_work(f: &dyn Fixture) {
    const CALLS: u32 = 12;
    const PER_CALL: u32 = 8;
    let t0 = SystemTime::now();
    let mut want: HashMap<String, Vec<EventId>> = HashMap::new();
    {
        let mut q = f.open();
        for n in 0..PER_CALL {
            let batch: Vec<NewEvent> = (0..CALLS).map(|c| ev(&format!("call{c}"), n)).collect();
            let ids = q.enqueue_batch(batch, t0).unwrap();
            for (c, id) in ids.into_iter().enumerate() {
                want.entry(format!("call{c}")).or_default().push(id);
            }
        }
    }
    let busy: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let delivered: Mutex<HashMap<String, Vec<EventId>>> = Mutex::new(HashMap::new());
    let total = (CALLS * PER_CALL) as usize;
    std::thread::scope(|s| {
        for name in ["d1", "d2"] {
            let (busy, delivered) = (&busy, &delivered);
            s.spawn(move || {
                let mut q = f.open();
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                loop {
                    let done: usize = delivered.lock().unwrap().values().map(Vec::len).sum();
                    if done >= total {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "stalled at {done}");
                    let got = q.claim(name, SystemTime::now(), 5, LEASE).unwrap();
                    for e in &got {
                        assert!(
                            busy.lock().unwrap().insert(e.call_uuid.clone()),
                            "{name}: {} claimed while another event of its call is in flight",
                            e.call_uuid
                        );
                    }
                    for e in got {
                        delivered
                            .lock()
                            .unwrap()
                            .entry(e.call_uuid.clone())
                            .or_default()
                            .push(e.id.clone());
                        busy.lock().unwrap().remove(&e.call_uuid);
                        q.ack(&e.id).unwrap();
                    }
                }
            });
        }
    });
    // `busy` is released before the ack, so a claim can only see the next event after
    // the ack: per-call order must hold exactly.
    assert_eq!(delivered.into_inner().unwrap(), want);
}

macro_rules! conformance {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn fields_round_trip() {
                super::fields_round_trip(&$fixture);
            }
            #[test]
            fn order_per_call() {
                super::order_per_call(&$fixture);
            }
            #[test]
            fn claim_respects_limit() {
                super::claim_respects_limit(&$fixture);
            }
            #[test]
            fn lease_expiry_redelivers() {
                super::lease_expiry_redelivers(&$fixture);
            }
            #[test]
            fn ack_is_idempotent() {
                super::ack_is_idempotent(&$fixture);
            }
            #[test]
            fn retry_later_not_before() {
                super::retry_later_not_before(&$fixture);
            }
            #[test]
            fn dead_letter_and_requeue() {
                super::dead_letter_and_requeue(&$fixture);
            }
            #[test]
            fn depth_counts() {
                super::depth_counts(&$fixture);
            }
            #[test]
            fn batch_keeps_order_and_unique_ids() {
                super::batch_keeps_order_and_unique_ids(&$fixture);
            }
            #[test]
            fn durable_across_reopen() {
                super::durable_across_reopen(&$fixture);
            }
            #[test]
            fn two_dispatchers_share_the_work() {
                super::two_dispatchers_share_the_work(&$fixture);
            }
        }
    };
}

conformance!(sqlite, SqliteFixture::new());
conformance!(redis, RedisFixture::new());
