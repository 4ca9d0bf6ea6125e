//! The Redis Streams queue with two dispatchers: a real redis-server started by the test,
//! `callmux serve --queue redis://…`, and two `callmux dispatch` processes sharing the
//! work. Nothing is lost, nothing is delivered twice (every attempt is answered 200, so
//! there are no retries), and each call's events arrive in order.

use std::time::Duration;

use crate::common::http::{dispatch_once, Dispatcher, EventTally, Receiver, Redis, Reply};
use crate::common::*;

#[test]
fn two_dispatchers_share_a_redis_queue() {
    let redis = Redis::start();
    let queue = redis.url("cmtest");
    let ip = unique_ip();
    let receiver = Receiver::start(ip, |_| Reply::ok().delayed(Duration::from_millis(20)));
    let server = Server::start(ServerOptions {
        extra_args: vec![
            "--queue".into(),
            queue.clone(),
            "--event-url".into(),
            receiver.url("/events"),
            "--no-dispatcher".into(),
        ],
        ..ServerOptions::default()
    });
    let log = server.dir.path().join("dispatch.log");
    let args = |consumer: &str| {
        vec![
            "--queue".to_string(),
            queue.clone(),
            "--consumer".into(),
            consumer.into(),
        ]
    };
    let _a = Dispatcher::start(&args("dispatcher-a"), &log);
    let _b = Dispatcher::start(&args("dispatcher-b"), &log);

    let sipp = Sipp::tone_caller(600, 1.0, 300);
    let calls = 40;
    sipp.run_ok(
        &server,
        &["-m", &calls.to_string(), "-r", "20", "-l", "20"],
        Duration::from_secs(120),
    );

    let expected = calls * 5;
    let reqs = receiver.wait_until(Duration::from_secs(60), "every event", |reqs| {
        reqs.len() >= expected
    });
    // A little longer: anything delivered twice would show now.
    std::thread::sleep(Duration::from_secs(1));
    let reqs = if receiver.requests().len() > reqs.len() {
        receiver.requests()
    } else {
        reqs
    };
    let tally = EventTally::of(&reqs);
    tally.assert_every_event_once_in_order(calls);
    let by_dispatcher = &tally.by_dispatcher;
    assert_eq!(
        by_dispatcher.len(),
        2,
        "both dispatchers worked: {by_dispatcher:?}"
    );
    assert!(
        by_dispatcher.values().all(|&n| n >= 5),
        "work shared: {by_dispatcher:?}"
    );

    let out = dispatch_once(&["--dead".into(), "--queue".into(), queue]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 dead letter(s)"));
}
