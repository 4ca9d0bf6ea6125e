//! Scale-out, natively on one machine (docs/scale-out.md): Kamailio's dispatcher module
//! (tests/scaleout/kamailio.cfg, round-robin) in front of two `callmux serve` hosts on two
//! loopback addresses that share one Redis Streams queue and one recordings directory; two
//! `callmux dispatch` consumers deliver the events; SIPp places 20 calls through Kamailio.
//!
//! Kamailio record-routes the INVITE, so it stays in the signalling path for the whole dialog
//! (the ACKs and BYEs are checked to go through it); RTP goes straight to each host.
//!
//! Asserts: both hosts took calls; every call is recorded, complete, with the caller's tone
//! in channel 1; every event reached the receiver exactly once per event id, in order per
//! call, and both dispatchers delivered some. Needs `kamailio`, `redis-server`, `sipp` and
//! `sox` (CI installs them: .ci/run).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::http::{dispatch_once, Dispatcher, EventTally, Receiver, Redis, Reply};
use crate::common::*;

const CALLS: usize = 20;
const TONE_HZ: u32 = 600;

/// tests/scaleout in the repository.
fn scaleout_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scaleout")
}

/// tests/scaleout/uac_tone_rr.xml (a caller that honours Record-Route, as behind a proxy)
/// streaming [`TONE_HZ`] for `seconds` and hanging up `pause_ms` after the answer.
fn rr_caller(seconds: f64, pause_ms: u64) -> Sipp {
    Sipp::tone_template(
        &scaleout_dir().join("uac_tone_rr.xml"),
        TONE_HZ,
        seconds,
        pause_ms,
        &[],
    )
}

/// A `callmux serve` host with its own data directory and a shared recordings directory.
struct Host {
    child: Option<Child>,
    sip: SocketAddr,
    http: SocketAddr,
    log: PathBuf,
}

impl Host {
    fn start(ip: IpAddr, recordings: &Path, data: &Path, queue: &str, event_url: &str) -> Self {
        let sip = SocketAddr::new(ip, 5060);
        let http = SocketAddr::new(ip, 8080);
        let log = data.with_extension("log");
        let child = Command::new(bin())
            .arg("serve")
            .arg("--sip")
            .arg(sip.to_string())
            .arg("--http")
            .arg(http.to_string())
            .args(["--rtp-ports", "20000-20999"])
            .arg("--recordings")
            .arg(recordings)
            .arg("--data")
            .arg(data)
            .args([
                "--queue",
                queue,
                "--no-dispatcher",
                "--event-url",
                event_url,
            ])
            .env("CALLMUX_LOG", "info,callmux=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start callmux serve");
        let host = Self {
            child: Some(child),
            sip,
            http,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(http, "/healthz").is_none_or(|(s, _)| s != 200) {
            assert!(
                Instant::now() < deadline,
                "callmux on {ip} did not become ready:\n{}",
                host.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        host
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        reap(
            self.child.take(),
            &format!("callmux {} log", self.sip),
            || tail(&self.log_text(), 200),
        );
    }
}

/// Kamailio in the foreground (`-DD`) with its worker processes, in a process group of its
/// own so that all of them are stopped together.
struct Kamailio {
    child: Option<Child>,
    addr: SocketAddr,
    log: PathBuf,
}

impl Kamailio {
    fn start(dir: &Path, addr: SocketAddr, hosts: [SocketAddr; 2]) -> Self {
        require_tool("kamailio");
        let list = dir.join("dispatcher.list");
        std::fs::write(
            &list,
            fill_template(
                &scaleout_dir().join("dispatcher.list"),
                &[
                    ("HOST_A", hosts[0].to_string()),
                    ("HOST_B", hosts[1].to_string()),
                ],
            ),
        )
        .unwrap();
        let cfg = dir.join("kamailio.cfg");
        std::fs::write(
            &cfg,
            fill_template(
                &scaleout_dir().join("kamailio.cfg"),
                &[
                    ("LISTEN", addr.to_string()),
                    ("DSLIST", list.display().to_string()),
                    ("ALG", "4".into()),
                ],
            ),
        )
        .unwrap();
        // The configuration must parse before we rely on it.
        let check = output_within(
            {
                let mut c = Command::new("kamailio");
                c.arg("-c").arg("-f").arg(&cfg);
                c
            },
            Duration::from_secs(20),
        );
        assert!(
            check.status.success(),
            "kamailio -c: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let log = dir.join("kamailio.log");
        let child = Command::new("kamailio")
            .arg("-DD")
            .arg("-E")
            .arg("-f")
            .arg(&cfg)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .args(["-m", "64", "-M", "8", "-n", "2"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start kamailio");
        let k = Self {
            child: Some(child),
            addr,
            log,
        };
        // Ready when it answers an OPTIONS addressed to itself.
        let deadline = Instant::now() + Duration::from_secs(20);
        for n in 0.. {
            let options = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:5999;rport;branch=z9hG4bK-ready{n}\r\n\
                 From: <sip:test@{ip}>;tag=1\r\nTo: <sip:{addr}>\r\nCall-ID: ready-{n}@test\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                ip = addr.ip(),
            );
            let reply = udp_exchange(
                addr.ip(),
                addr,
                options.as_bytes(),
                Duration::from_millis(300),
            );
            if reply.is_some_and(|r| r.starts_with(b"SIP/2.0 200")) {
                return k;
            }
            assert!(
                Instant::now() < deadline,
                "kamailio did not answer OPTIONS:\n{}",
                k.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        unreachable!()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Its process group: the main process and the workers it forked.
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        if wait_child(&mut child, Duration::from_secs(5)).is_none() {
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!("---- kamailio log ----\n{}", tail(&self.log_text(), 200));
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The dispatcher destination in each "dispatch INVITE <call-id> to sip:IP:PORT" line.
fn dispatched(log: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in log.lines() {
        if let Some(rest) = line.split("dispatch INVITE ").nth(1) {
            if let Some(dst) = rest.split(" to sip:").nth(1) {
                let host = dst.split(';').next().unwrap_or(dst).trim().to_string();
                *out.entry(host).or_default() += 1;
            }
        }
    }
    out
}

#[test]
fn two_hosts_behind_kamailio_share_one_queue_and_one_recordings_directory() {
    require_tool("sipp");
    require_tool("kamailio");
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let queue = redis.url("scaleout");
    let receiver_ip = unique_ip();
    let receiver = Receiver::start(receiver_ip, |_| Reply::ok());
    let event_url = receiver.url("/events");

    let recordings = dir.path().join("recordings");
    let (ip_a, ip_b, ip_k, ip_sipp) = (unique_ip(), unique_ip(), unique_ip(), unique_ip());
    let a = Host::start(
        ip_a,
        &recordings,
        &dir.path().join("data-a"),
        &queue,
        &event_url,
    );
    let b = Host::start(
        ip_b,
        &recordings,
        &dir.path().join("data-b"),
        &queue,
        &event_url,
    );
    let kamailio = Kamailio::start(dir.path(), SocketAddr::new(ip_k, 5060), [a.sip, b.sip]);

    let dlog = dir.path().join("dispatch.log");
    let dispatch_args = |name: &str| {
        vec![
            "--queue".to_string(),
            queue.clone(),
            "--consumer".into(),
            name.into(),
        ]
    };
    let _d1 = Dispatcher::start(&dispatch_args("dispatch-1"), &dlog);
    let _d2 = Dispatcher::start(&dispatch_args("dispatch-2"), &dlog);

    // SIPp → Kamailio → callmux: the record-route-aware scenario in tests/scaleout.
    let sipp = rr_caller(2.5, 2500);
    let out = sipp.run(
        ip_sipp,
        kamailio.addr,
        &[
            "-m",
            &CALLS.to_string(),
            "-r",
            "5",
            "-l",
            &CALLS.to_string(),
            "-trace_err",
        ],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "sipp through kamailio failed:\n{}\n{}\nSIPp errors:\n{}\nkamailio:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sipp_errors(sipp.dir.path()),
        tail(&kamailio.log_text(), 60)
    );

    // Kamailio spread the INVITEs over both hosts, round-robin, and stayed in each dialog.
    let klog = kamailio.log_text();
    let per_host = dispatched(&klog);
    assert_eq!(
        per_host.values().sum::<usize>(),
        CALLS,
        "one dispatch per call: {per_host:?}"
    );
    for host in [a.sip, b.sip] {
        let n = per_host.get(&host.to_string()).copied().unwrap_or(0);
        assert!(
            n >= CALLS / 4,
            "host {host} took {n} of {CALLS} calls: {per_host:?}"
        );
    }
    for method in ["ACK", "BYE"] {
        let n = klog
            .lines()
            .filter(|l| l.contains(&format!("in-dialog {method} ")))
            .count();
        assert_eq!(
            n, CALLS,
            "every {method} went through kamailio (record-route)"
        );
    }

    // Every call recorded, in the one shared directory, with the caller's tone.
    let recs = wait_recordings(&recordings, CALLS, Duration::from_secs(30));
    assert_eq!(recs.len(), CALLS, "{recs:?}");
    let mut calls_recorded = std::collections::BTreeSet::new();
    for rec in &recs {
        let sc = sidecar(rec);
        assert_eq!(sc["state"], "complete", "{}: {sc}", rec.display());
        calls_recorded.insert(sc["call_uuid"].as_str().unwrap().to_string());
        let an = analyze(rec);
        let what = format!("{}", rec.display());
        assert_tone_near(&an, 0, f64::from(TONE_HZ), 10.0, &what);
        assert_voiced(&an, 0, 1800.., &what);
    }
    assert_eq!(calls_recorded.len(), CALLS, "one recording per call");

    // Every event exactly once per event id, in order per call, from both dispatchers.
    let expected = CALLS * 5;
    receiver.wait_until(Duration::from_secs(60), "every event", |r| {
        r.len() >= expected
    });
    std::thread::sleep(Duration::from_secs(1)); // anything delivered twice would show now
    let reqs = receiver.requests();
    assert!(reqs.len() >= expected, "{}", reqs.len());
    let tally = EventTally::of(&reqs);
    tally.assert_every_event_once_in_order(CALLS);
    for uuid in tally.per_call.keys() {
        assert!(calls_recorded.contains(uuid), "call {uuid} has a recording");
    }
    // recording_url names the host that recorded it (http://{--http}/v1/recordings/…).
    let mut record_hosts: BTreeMap<String, usize> = BTreeMap::new();
    for r in reqs.iter().filter(|r| r.event_name() == "record") {
        let v = r.json();
        let url = v["recording_url"].as_str().unwrap_or_default();
        let host = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        *record_hosts.entry(host).or_default() += 1;
    }
    assert_eq!(
        record_hosts.keys().cloned().collect::<Vec<_>>(),
        {
            let mut v = vec![a.http.to_string(), b.http.to_string()];
            v.sort();
            v
        },
        "record events came from both hosts: {record_hosts:?}"
    );
    assert_eq!(
        tally.by_dispatcher.len(),
        2,
        "both dispatchers delivered: {:?}",
        tally.by_dispatcher
    );
    let out = dispatch_once(&["--dead".into(), "--queue".into(), queue]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("0 dead letter(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "scale-out: calls per host {per_host:?}, events per dispatcher {:?}, {} recordings",
        tally.by_dispatcher,
        recs.len()
    );
}

/// Known issue (docs/scale-out.md, "Recordings"): start-up crash recovery scans the whole
/// recordings directory, so a host that starts while another host sharing the directory is
/// recording "recovers" that live recording and sends a `recovered` record event for it
/// (then the recording host finishes it and sends `complete`). Until recovery skips files
/// that are still being written, give each host its own subdirectory of the shared storage,
/// as docker/compose.scaleout.yaml does. Run with `--ignored` to see it.
#[test]
fn a_host_starting_leaves_the_live_recordings_of_another_host_alone() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start();
    let queue = redis.url("sharedrec");
    let receiver = Receiver::start(unique_ip(), |_| Reply::ok());
    let event_url = receiver.url("/events");
    let recordings = dir.path().join("recordings");
    let (ip_a, ip_b) = (unique_ip(), unique_ip());
    let a = Host::start(
        ip_a,
        &recordings,
        &dir.path().join("data-a"),
        &queue,
        &event_url,
    );
    let log = dir.path().join("dispatch.log");
    let _d = Dispatcher::start(&["--queue".to_string(), queue.clone()], &log);
    let uri = format!("sip:100@{}", a.sip);
    let call =
        std::thread::spawn(move || callmux_call(ip_a, &uri, &["--tone", "440", "--seconds", "5"]));
    std::thread::sleep(Duration::from_millis(2500));
    let _b = Host::start(
        ip_b,
        &recordings,
        &dir.path().join("data-b"),
        &queue,
        &event_url,
    );
    assert!(call.join().unwrap().status.success());
    let reqs = receiver.wait_until(Duration::from_secs(20), "completed", |r| {
        r.iter().any(|q| q.json()["status"] == "completed")
    });
    let records: Vec<serde_json::Value> = reqs
        .iter()
        .map(|r| r.json())
        .filter(|v| v.get("recording_uuid").is_some())
        .collect();
    assert_eq!(
        records.len(),
        1,
        "one record event for the one recording, not a `recovered` one as well: {records:?}"
    );
    assert_eq!(records[0]["state"], "complete");
}

/// What SIPp's -trace_err wrote in `dir`.
fn sipp_errors(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with("_errors.log") {
            out += &std::fs::read_to_string(e.path()).unwrap_or_default();
        }
    }
    out
}

/// The flake this directory once had: behind a loaded proxy a 100/180 of the INVITE can
/// arrive after the 200 (Kamailio answers an INVITE retransmission with its last
/// provisional while another process relays the 200). The UAS fixture sends exactly that;
/// the UAC scenario must ignore the late provisionals (transactions) instead of aborting
/// the call at index 6 and sending an automatic BYE without the Route set.
#[test]
fn the_proxied_uac_scenario_ignores_provisional_answers_that_come_after_the_200() {
    require_tool("sipp");
    let (ip_uas, ip_uac) = (unique_ip(), unique_ip());
    let uas_dir = tempfile::tempdir().unwrap();
    let uas_scenario = uas_dir.path().join("uas_late_provisional.xml");
    std::fs::copy(
        scaleout_dir().join("uas_late_provisional.xml"),
        &uas_scenario,
    )
    .unwrap();
    let uas = Sipp {
        scenario: uas_scenario,
        dir: uas_dir,
    };
    let mut uas_child = uas.spawn_uas(ip_uas, 5060, 17000, &["-m", "5"]);
    std::thread::sleep(Duration::from_millis(300));

    let uac = rr_caller(0.5, 500);
    let out = uac.run(
        ip_uac,
        SocketAddr::new(ip_uas, 5060),
        &["-m", "5", "-r", "10", "-trace_err"],
        Duration::from_secs(30),
    );
    let errors = sipp_errors(uac.dir.path());
    assert!(
        out.status.success() && errors.is_empty(),
        "late provisional answers aborted calls:\n{errors}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let uas_status = wait_child(&mut uas_child, Duration::from_secs(20));
    assert!(
        uas_status.is_some_and(|s| s.success()),
        "the UAS saw a call fail: {uas_status:?}"
    );
}

/// Waits until `n` recordings under `root` have a final sidecar.
fn wait_recordings(root: &Path, n: usize, timeout: Duration) -> Vec<PathBuf> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut recs = Vec::new();
        collect_media(root, &mut recs);
        recs.sort();
        let done = recs
            .iter()
            .filter(|p| sidecar_state(p).is_some_and(|s| s != "recording"))
            .count();
        if done >= n || Instant::now() > deadline {
            assert!(done >= n, "{done} of {n} recordings finished: {recs:?}");
            return recs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collect_media(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_media(&p, out);
        } else if p.extension().is_some_and(|x| x == "wav") {
            out.push(p);
        }
    }
}
