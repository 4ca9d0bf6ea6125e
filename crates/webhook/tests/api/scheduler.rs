//! The delivery scheduler on simulated time: scenarios, then properties against a model
//! of the queue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callmux_webhook::schedule::SchedulerStats;
use callmux_webhook::{
    DeliveryResult, DeliveryScheduler, EventId, HttpMethod, QueueAction, QueuedEvent, RetryPolicy,
};
use proptest::prelude::*;

fn wall0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn qe(call: &str, seq: u64) -> QueuedEvent {
    QueuedEvent {
        id: EventId::from_string(format!("{call}-{seq}")),
        seq,
        call_uuid: call.to_owned(),
        url: "http://127.0.0.1:9/e".into(),
        method: HttpMethod::Post,
        body: b"{}".to_vec(),
        kind: "test".into(),
        created_at: wall0(),
        attempts: 0,
        last_error: None,
    }
}

fn drain(s: &mut DeliveryScheduler, now: Instant) -> Vec<String> {
    std::iter::from_fn(|| s.poll_job(now))
        .map(|j| j.event.id.to_string())
        .collect()
}

fn fail(status: Option<u16>) -> DeliveryResult {
    DeliveryResult::Failed {
        status,
        error: "boom".into(),
    }
}

fn retry_delay(a: &QueueAction, wall: SystemTime) -> Duration {
    match a {
        QueueAction::RetryLater(t) => t.duration_since(wall).unwrap(),
        other => panic!("expected RetryLater, got {other:?}"),
    }
}

#[test]
fn one_attempt_per_call_in_seq_order() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
    s.offer(vec![qe("a", 2), qe("b", 1), qe("a", 1)], now);
    assert_eq!(drain(&mut s, now), vec!["a-1", "b-1"]);
    assert_eq!((s.in_flight(), s.waiting()), (2, 1));
    let a = s.on_result(
        &EventId::from_string("a-1"),
        DeliveryResult::Delivered(204),
        now,
        wall0(),
    );
    assert_eq!(a, QueueAction::Ack);
    assert_eq!(drain(&mut s, now), vec!["a-2"]);
    assert_eq!((s.in_flight(), s.waiting()), (2, 0));
}

#[test]
fn total_concurrency_is_bounded() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1).with_max_in_flight(3);
    assert_eq!(s.claim_limit(now), 3);
    s.offer((0..5).map(|c| qe(&format!("c{c}"), 1)).collect(), now);
    assert_eq!(drain(&mut s, now).len(), 3);
    assert_eq!(s.claim_limit(now), 0);
    assert_eq!(s.poll_timeout(), None, "no slot free: wait for results");
    s.on_result(
        &EventId::from_string("c0-1"),
        DeliveryResult::Delivered(200),
        now,
        wall0(),
    );
    assert_eq!(drain(&mut s, now), vec!["c3-1"]);
}

#[test]
fn transient_failures_back_off_exponentially_with_jitter() {
    let now = Instant::now();
    let p = RetryPolicy::default();
    for attempts in 0..15_u32 {
        let mut s = DeliveryScheduler::new(p.clone(), u64::from(attempts));
        let mut e = qe("a", 1);
        e.attempts = attempts;
        s.offer(vec![e], now);
        drain(&mut s, now);
        let a = s.on_result(&EventId::from_string("a-1"), fail(Some(503)), now, wall0());
        let d = retry_delay(&a, wall0()).as_secs_f64();
        let base = (2_f64.powi(attempts as i32)).min(600.0);
        assert!(
            d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9,
            "{attempts}: {d}"
        );
    }
}

#[test]
fn same_seed_same_schedule() {
    let run = |seed| {
        let now = Instant::now();
        let mut s = DeliveryScheduler::new(RetryPolicy::default(), seed);
        (0..20)
            .map(|n| {
                let mut e = qe("a", n);
                e.attempts = 3;
                s.offer(vec![e], now);
                drain(&mut s, now);
                s.on_result(
                    &EventId::from_string(format!("a-{n}")),
                    fail(None),
                    now,
                    wall0(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn permanent_failures_dead_letter_after_a_few_tries() {
    let now = Instant::now();
    for status in [400, 401, 403, 404, 410, 301] {
        let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
        let mut actions = Vec::new();
        for attempts in 0..3 {
            let mut e = qe("a", 1);
            e.attempts = attempts;
            s.offer(vec![e], now);
            drain(&mut s, now);
            actions.push(s.on_result(
                &EventId::from_string("a-1"),
                DeliveryResult::from_status(status),
                now,
                wall0(),
            ));
        }
        assert!(matches!(actions[0], QueueAction::RetryLater(_)), "{status}");
        assert!(matches!(actions[1], QueueAction::RetryLater(_)), "{status}");
        match &actions[2] {
            QueueAction::DeadLetter(r) => {
                assert!(r.contains(&format!("HTTP {status}")), "{r}");
                assert!(r.contains("3 attempts"), "{r}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    // 408 and 429 are not permanent.
    for status in [408, 429] {
        let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
        let mut e = qe("a", 1);
        e.attempts = 10;
        s.offer(vec![e], now);
        drain(&mut s, now);
        let a = s.on_result(
            &EventId::from_string("a-1"),
            DeliveryResult::from_status(status),
            now,
            wall0(),
        );
        assert!(matches!(a, QueueAction::RetryLater(_)), "{status}: {a:?}");
    }
}

#[test]
fn delivered_with_non_2xx_status_is_a_failure() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
    s.offer(vec![qe("a", 1)], now);
    drain(&mut s, now);
    let a = s.on_result(
        &EventId::from_string("a-1"),
        DeliveryResult::Delivered(500),
        now,
        wall0(),
    );
    assert!(matches!(a, QueueAction::RetryLater(_)));
}

#[test]
fn too_old_is_dead_lettered() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
    s.offer(vec![qe("a", 1)], now);
    drain(&mut s, now);
    let wall = wall0() + Duration::from_secs(24 * 3600);
    match s.on_result(&EventId::from_string("a-1"), fail(None), now, wall) {
        QueueAction::DeadLetter(r) => assert!(r.contains("gave up"), "{r}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.stats().dead, 1);
}

#[test]
fn retry_holds_back_the_rest_of_the_call() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
    s.offer(vec![qe("a", 1), qe("a", 2), qe("a", 3), qe("b", 1)], now);
    assert_eq!(drain(&mut s, now), vec!["a-1", "b-1"]);
    let a = s.on_result(&EventId::from_string("a-1"), fail(Some(502)), now, wall0());
    assert!(matches!(a, QueueAction::RetryLater(_)));
    assert!(drain(&mut s, now).is_empty(), "a-2 must not overtake a-1");
    assert_eq!(s.stats().dropped, 2);
    assert_eq!(s.waiting(), 0);
    // The queue hands them out again later, in order.
    s.offer(vec![qe("a", 2), qe("a", 3)], now);
    assert_eq!(drain(&mut s, now), vec!["a-2"]);
}

#[test]
fn dead_letter_lets_the_call_go_on() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(
        RetryPolicy {
            permanent_failure_attempts: 1,
            ..RetryPolicy::default()
        },
        1,
    );
    s.offer(vec![qe("a", 1), qe("a", 2)], now);
    drain(&mut s, now);
    let a = s.on_result(&EventId::from_string("a-1"), fail(Some(410)), now, wall0());
    assert!(matches!(a, QueueAction::DeadLetter(_)));
    assert_eq!(drain(&mut s, now), vec!["a-2"]);
}

#[test]
fn events_not_started_within_half_a_lease_are_dropped() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1)
        .with_max_in_flight(1)
        .with_lease(Duration::from_secs(10));
    s.offer(vec![qe("a", 1), qe("b", 1), qe("b", 2)], now);
    assert_eq!(drain(&mut s, now), vec!["a-1"]);
    let later = now + Duration::from_secs(5);
    s.on_result(
        &EventId::from_string("a-1"),
        DeliveryResult::Delivered(200),
        later,
        wall0(),
    );
    assert!(drain(&mut s, later).is_empty());
    assert_eq!(s.stats().dropped, 2);
    assert_eq!(s.waiting(), 0);
}

#[test]
fn duplicates_are_ignored() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
    s.offer(vec![qe("a", 1), qe("a", 2)], now);
    assert_eq!(drain(&mut s, now), vec!["a-1"]);
    s.offer(vec![qe("a", 1), qe("a", 2)], now);
    assert_eq!(s.stats().duplicates, 2);
    assert!(drain(&mut s, now).is_empty());
}

#[test]
fn unknown_result_changes_nothing() {
    let now = Instant::now();
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1);
    let ghost = EventId::from_string("ghost");
    assert_eq!(
        s.on_result(&ghost, DeliveryResult::Delivered(200), now, wall0()),
        QueueAction::Ack
    );
    assert_eq!(
        s.on_result(&ghost, fail(None), now, wall0()),
        QueueAction::RetryLater(wall0() + Duration::from_secs(1))
    );
    assert_eq!(s.stats(), SchedulerStats::default());
}

#[test]
fn idle_claims_back_off_and_reset() {
    let t = Instant::now();
    let ms = Duration::from_millis;
    let mut s = DeliveryScheduler::new(RetryPolicy::default(), 1).with_idle_poll(ms(100), ms(350));
    assert!(s.claim_limit(t) > 0);
    assert_eq!(s.poll_timeout(), None);
    s.offer(Vec::new(), t);
    assert_eq!(s.claim_limit(t + ms(99)), 0);
    assert_eq!(s.poll_timeout(), Some(t + ms(100)));
    s.offer(Vec::new(), t + ms(100));
    assert_eq!(s.poll_timeout(), Some(t + ms(300)));
    s.offer(Vec::new(), t + ms(300));
    assert_eq!(s.poll_timeout(), Some(t + ms(650)), "capped at 350 ms");
    assert_eq!(s.claim_limit(t + ms(649)), 0);
    assert!(s.claim_limit(t + ms(650)) > 0);
    s.offer(vec![qe("a", 1)], t + ms(650));
    assert!(
        s.claim_limit(t + ms(650)) > 0,
        "work found: claim again at once"
    );
    assert_eq!(s.poll_timeout(), Some(t + ms(650)), "claim due now");
    s.offer(Vec::new(), t + ms(650));
    assert_eq!(
        s.poll_timeout(),
        Some(t + ms(750)),
        "wait restarts at the minimum"
    );
}

/// A model of the queue contract: live events per call in seq order.
struct Model {
    live: BTreeMap<String, Vec<QueuedEvent>>,
    in_flight: HashMap<EventId, QueuedEvent>,
    terminal: HashSet<EventId>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Status(u16),
    NoAnswer,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Ok),
        1 => prop::sample::select(vec![404_u16, 410, 400, 408, 429, 500, 503, 302]).prop_map(Outcome::Status),
        1 => Just(Outcome::NoAnswer),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn order_concurrency_and_single_outcome(
        per_call in prop::collection::vec(1_u64..6, 1..6),
        outcomes in prop::collection::vec((any::<prop::sample::Index>(), outcome(), 0_u64..7200), 1..300),
        max_in_flight in 1_usize..5,
        seed in any::<u64>(),
    ) {
        let policy = RetryPolicy::default();
        let mut s = DeliveryScheduler::new(policy.clone(), seed)
            .with_max_in_flight(max_in_flight)
            .with_lease(Duration::from_secs(3600));
        let mut m = Model { live: BTreeMap::new(), in_flight: HashMap::new(), terminal: HashSet::new() };
        let mut seq = 0;
        for (c, n) in per_call.iter().enumerate() {
            let evs = (0..*n).map(|_| { seq += 1; qe(&format!("call{c}"), seq) }).collect();
            m.live.insert(format!("call{c}"), evs);
        }
        let now = Instant::now();
        let mut wall = wall0();
        for (pick, out, advance) in outcomes {
            // Offer every live event not in flight (a superset of what a queue hands
            // out), each call in seq order, calls in a seed-dependent order.
            let mut offer: Vec<QueuedEvent> = m.live.values().flatten()
                .filter(|e| !m.in_flight.contains_key(&e.id)).cloned().collect();
            offer.sort_by_key(|e| (e.seq.wrapping_mul(seed | 1) % 7, e.seq));
            s.offer(offer, now);
            while let Some(job) = s.poll_job(now) {
                let e = job.event;
                prop_assert!(!m.terminal.contains(&e.id), "{} started after it ended", e.id);
                let call = &m.live[&e.call_uuid];
                prop_assert_eq!(&call[0].id, &e.id, "not the head of its call");
                prop_assert!(m.in_flight.values().all(|f| f.call_uuid != e.call_uuid),
                    "two attempts in flight for {}", e.call_uuid);
                m.in_flight.insert(e.id.clone(), e);
                prop_assert!(m.in_flight.len() <= max_in_flight);
            }
            prop_assert_eq!(s.in_flight(), m.in_flight.len());
            if m.in_flight.is_empty() {
                prop_assert!(m.live.is_empty(), "stalled with live events");
                break;
            }
            let mut keys: Vec<EventId> = m.in_flight.keys().cloned().collect();
            keys.sort();
            let id = pick.get(&keys).clone();
            let e = m.in_flight.remove(&id).unwrap();
            let result = match out {
                Outcome::Ok => DeliveryResult::Delivered(200),
                Outcome::Status(st) => DeliveryResult::from_status(st),
                Outcome::NoAnswer => DeliveryResult::Failed { status: None, error: "timeout".into() },
            };
            wall += Duration::from_secs(advance);
            let action = s.on_result(&id, result, now, wall);
            let call = m.live.get_mut(&e.call_uuid).unwrap();
            match action {
                QueueAction::Ack | QueueAction::DeadLetter(_) => {
                    prop_assert!(m.terminal.insert(id.clone()), "{} ended twice", id);
                    call.remove(0);
                    if call.is_empty() {
                        m.live.remove(&e.call_uuid);
                    }
                }
                QueueAction::RetryLater(t) => {
                    let d = t.duration_since(wall).unwrap();
                    let ceiling = policy.max_delay.as_secs_f64() * (1.0 + policy.jitter);
                    prop_assert!(d.as_secs_f64() <= ceiling + 1e-9, "delay {:?}", d);
                    call[0].attempts += 1;
                }
            }
        }
    }

    #[test]
    fn delay_never_exceeds_max_delay_plus_jitter(
        initial_ms in 1_u64..20_000,
        max_ms in 1_u64..4_000_000,
        multiplier in 1.0_f64..8.0,
        jitter in 0.0_f64..=1.0,
        attempts in 0_u32..200,
        seed in any::<u64>(),
    ) {
        let policy = RetryPolicy {
            initial: Duration::from_millis(initial_ms.min(max_ms)),
            multiplier,
            max_delay: Duration::from_millis(max_ms),
            jitter,
            max_age: Duration::MAX,
            permanent_failure_attempts: 3,
        };
        prop_assert!(policy.validate().is_ok());
        let now = Instant::now();
        let mut s = DeliveryScheduler::new(policy.clone(), seed);
        let mut e = qe("a", 1);
        e.attempts = attempts;
        s.offer(vec![e], now);
        prop_assert!(s.poll_job(now).is_some());
        let a = s.on_result(&EventId::from_string("a-1"), fail(Some(503)), now, wall0());
        let d = retry_delay(&a, wall0()).as_secs_f64();
        prop_assert!(d <= policy.max_delay.as_secs_f64() * (1.0 + jitter) + 1e-9);
        let floor = policy.initial.as_secs_f64().min(policy.max_delay.as_secs_f64()) * (1.0 - jitter);
        prop_assert!(d >= floor - 1e-6, "{} < {}", d, floor);
    }
}
