//! A G.711 stream's last milliseconds reach the recording: when the caller's audio pauses,
//! the server flushes the decoder (the up-sampler's 1.94 ms of delay and its ringing) into
//! the recordings right after the last packet. Before, every G.711 recording lacked them:
//! 0.2 % of a 1 s call, so no 1 s recording of the load runs read ≥ 99.9 %.

use std::path::Path;
use std::time::Duration;

use callmux_media::{AudioDecoder, PayloadFormat};

use crate::common::*;

/// The tone SIPp streams.
const HZ: u32 = 1000;

/// Sum of squares of a signal.
fn energy(s: impl IntoIterator<Item = i16>) -> f64 {
    s.into_iter().map(|v| f64::from(v).powi(2)).sum()
}

/// What the caller sent, decoded as the server decodes it (20 ms packets, then the
/// decoder's tail): the energy the caller's channel should hold.
fn sent_energy(ulaw: &Path) -> f64 {
    let bytes = std::fs::read(ulaw).expect("the tone file");
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut pcm = Vec::new();
    for packet in bytes.chunks(160) {
        dec.decode(packet, &mut pcm).unwrap();
    }
    dec.flush(&mut pcm);
    energy(pcm)
}

/// Energy of channel 1 (the caller) of a split WAV.
fn caller_energy(wav: &Path) -> f64 {
    let mut r = hound::WavReader::open(wav).expect("playable WAV");
    assert_eq!(r.spec().channels, 2, "split recording");
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    energy(samples.chunks(2).map(|f| f[0]))
}

/// The load test's "audio present" (tests/load/audio.py): over the 100 ms windows of
/// channel 1 whose dominant frequency is the tone, the energy relative to the median
/// window's, in ms, against the tone's length; percent.
fn audio_present(wav: &Path, tone_ms: f64) -> f64 {
    let a = analyze(wav);
    let tol = (f64::from(HZ) * 0.02).max(5.0);
    let mut tone_w: Vec<f64> = a.per_channel[0]
        .windows
        .iter()
        .filter(|w| {
            w.dominant_hz
                .is_some_and(|d| (d - f64::from(HZ)).abs() <= tol)
        })
        .map(|w| w.rms_dbfs)
        .collect();
    assert!(!tone_w.is_empty(), "no window holds the tone");
    tone_w.sort_by(f64::total_cmp);
    let n = tone_w.len();
    let median = if n % 2 == 1 {
        tone_w[n / 2]
    } else {
        (tone_w[n / 2 - 1] + tone_w[n / 2]) / 2.0
    };
    let present: f64 = tone_w
        .iter()
        .map(|&db| 100.0 * 10f64.powf((db - median) / 10.0).min(1.0))
        .sum();
    present.min(tone_ms) / tone_ms * 100.0
}

#[test]
fn a_one_second_g711_tone_is_recorded_to_its_last_sample() {
    // A call whose packets the server itself dropped (late or cut: the test machine was
    // overloaded) says nothing about the tail; such a call is placed again, at most 3 times.
    for attempt in 1..=3 {
        let server = Server::start(ServerOptions::default());
        // One second of tone, then half a second of nothing before the BYE (like the load
        // test's calls): the caller's stream pauses well before the recording stops.
        let sipp = Sipp::tone_caller(HZ, 1.0, 1500);
        sipp.run_ok(&server, &["-m", "1", "-s", "100"], Duration::from_secs(30));
        let recs = server.wait_recordings(1, Duration::from_secs(10));
        let wav = &recs[0];
        let line = timeline_line(&server, 1);
        let lost = ["late_samples", "cut_samples", "gap_samples"]
            .iter()
            .map(|k| field(&line, k))
            .sum::<u64>();
        if lost > 0 && attempt < 3 {
            eprintln!(
                "attempt {attempt}: the server lost {lost} samples under load ({line}); again"
            );
            continue;
        }
        let sent = sent_energy(&sipp.dir.path().join(format!("tone{HZ}.ul")));
        let got = caller_energy(wav) / sent * 100.0;
        assert!(
            (99.9..=100.1).contains(&got),
            "the caller's channel holds {got:.3} % of the energy sent (the decoder's tail is \
             0.2 %); log:\n{}",
            server.log_text()
        );
        let present = audio_present(wav, 1000.0);
        eprintln!("caller channel: {got:.3} % of the energy sent; audio present {present:.3} %");
        assert!(
            present >= 99.9,
            "audio present {present:.3} % < 99.9 %; log:\n{}",
            server.log_text()
        );
        // The tail went in: 61 samples (31 of delayed audio, 30 of ringing), more if SIPp's
        // stream stalled for 120 ms somewhere (each stall flushes one; the energy above shows
        // those joints are seamless).
        assert!(field(&line, "tail_samples") >= 61, "{line}");
        return;
    }
}

/// The number after `key=` in a log line (0 when absent).
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server's `recording timeline` log line of 1-based `channel`.
fn timeline_line(server: &Server, channel: u16) -> String {
    server.wait_log("recording timeline", 1);
    let log = server.log_text();
    log.lines()
        .find(|l| l.contains("recording timeline") && l.contains(&format!("channel={channel} ")))
        .unwrap_or_else(|| panic!("no timeline line for channel {channel}:\n{log}"))
        .to_string()
}

/// A call bridged to a `callmux answer` party, recorded with a channel each; the caller
/// streams `caller_s` seconds and the party `party_s`, and whoever stops first hangs up.
fn bridged(caller_s: u32, party_s: u32) -> Server {
    let ip = unique_ip();
    let party = Answerer::tone(ip, 5081, 1000, party_s);
    let server = Server::with_ncco_at(
        ip,
        &format!(
            r#"[{{"action":"record","channels":2}},{}]"#,
            connect_ncco(&party.uri("b"))
        ),
    );
    call_ok(
        &server,
        &["--tone", "440", "--seconds", &caller_s.to_string()],
    );
    server.wait_recordings(1, Duration::from_secs(10));
    server
}

#[test]
fn both_legs_of_a_bridge_get_their_tail_whoever_hangs_up_first() {
    // The caller hangs up while the party still talks: the recording stops before the
    // party's leg ends, so its tail is flushed when the recording stops.
    let server = bridged(2, 10);
    for ch in [1, 2] {
        let line = timeline_line(&server, ch);
        assert!(
            field(&line, "tail_samples") >= 61,
            "caller hung up first, channel {ch}: {line}"
        );
    }
    // The party hangs up first: its leg's end flushes its tail; the caller's goes in when
    // the recording stops after the NCCO ran out.
    let server = bridged(5, 1);
    for ch in [1, 2] {
        let line = timeline_line(&server, ch);
        assert!(
            field(&line, "tail_samples") >= 61,
            "party hung up first, channel {ch}: {line}"
        );
    }
}
