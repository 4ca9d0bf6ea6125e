//! SQLite durability under SIGKILL: a child process enqueues batches and reports each
//! batch on stdout once `enqueue_batch` returned; the parent kills it mid-stream with
//! SIGKILL and checks that every reported event is in the queue, and that no batch is
//! half there (batches are atomic).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use callmux_webhook::queue::{SqliteQueue, SqliteSync};
use callmux_webhook::{EventQueue, NewEvent};

use super::harness::ev;

const CHILD_ENV: &str = "CALLMUX_WEBHOOK_CRASH_CHILD_DIR";
const BATCH: u32 = 25;

/// Runs only as the child of `sqlite_sigkill_loses_nothing_acknowledged` (it is ignored
/// in normal runs): enqueue batches forever, printing `OK <batch> <ids…>` after each.
#[test]
#[ignore = "child process of sqlite_sigkill_loses_nothing_acknowledged"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        // Run directly (e.g. --include-ignored): nothing to do without the parent.
        eprintln!("{CHILD_ENV} not set: this is the crash test's child process");
        return;
    };
    let mut q = SqliteQueue::open(dir.as_ref(), SqliteSync::Full).unwrap();
    let mut out = std::io::stdout().lock();
    for batch in 0.. {
        let evs: Vec<NewEvent> = (0..BATCH)
            .map(|n| ev(&format!("b{batch}-call{}", n % 5), n))
            .collect();
        let ids = q.enqueue_batch(evs, SystemTime::now()).unwrap();
        let line: Vec<String> = ids.iter().map(ToString::to_string).collect();
        writeln!(out, "OK {batch} {}", line.join(" ")).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sqlite_sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::crash_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged: HashMap<u32, Vec<String>> = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acknowledged.len() < 40 {
        assert!(std::time::Instant::now() < deadline, "child too slow");
        let Some(line) = lines.next() else {
            panic!("child exited early: {:?}", child.wait());
        };
        let line = line.unwrap();
        let mut parts = line.split_whitespace();
        if parts.next() != Some("OK") {
            continue; // libtest chatter
        }
        let batch: u32 = parts.next().unwrap().parse().unwrap();
        acknowledged.insert(batch, parts.map(str::to_owned).collect());
    }
    // SIGKILL while the child is inside another enqueue_batch (it never stops writing).
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "child should have been killed: {status:?}"
    );

    let mut q = SqliteQueue::open(dir.path(), SqliteSync::Full).unwrap();
    let now = SystemTime::now() + Duration::from_secs(1);
    let mut present: HashMap<String, usize> = HashMap::new();
    let mut seen = HashSet::new();
    loop {
        let got = q
            .claim("check", now, 1000, Duration::from_secs(60))
            .unwrap();
        if got.is_empty() {
            break;
        }
        for e in got {
            assert!(seen.insert(e.id.to_string()), "duplicate {}", e.id);
            let batch = e.call_uuid.split('-').next().unwrap().to_owned();
            *present.entry(batch).or_default() += 1;
            q.ack(&e.id).unwrap();
        }
    }
    for (batch, ids) in &acknowledged {
        for id in ids {
            assert!(
                seen.contains(id),
                "batch {batch}: acknowledged event {id} lost"
            );
        }
    }
    for (batch, n) in present {
        assert_eq!(n, BATCH as usize, "batch {batch} is partly stored");
    }
}
