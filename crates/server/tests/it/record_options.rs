//! The `record` action's options end to end: layouts, formats, endOnKey (RFC 4733 and SIP
//! INFO), endOnSilence, timeOut and beepStart, checked in the recorded audio itself.

use std::process::Output;
use std::time::Duration;

use crate::common::*;

fn run_call(server: &Server, args: &[&str]) -> Output {
    let out = callmux_call(server.ip, &server.uri("100"), args);
    assert!(
        out.status.success(),
        "callmux call failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn with_ncco(ncco: &str) -> Server {
    Server::start(ServerOptions {
        ncco: Some(ncco.to_string()),
        ..Default::default()
    })
}

fn dominant(a: &callmux_record::AudioAnalysis, ch: usize) -> f64 {
    a.per_channel[ch]
        .dominant_hz
        .unwrap_or_else(|| panic!("no tone in channel {}", ch + 1))
}

#[test]
fn end_on_key_rfc4733_stops_the_recording_and_the_ncco_goes_on() {
    // Synchronous record ending on '#', then the NCCO runs out → callmux hangs up.
    let server = with_ncco(r##"[{"action":"record","split":"conversation","endOnKey":"#"}]"##);
    let out = run_call(
        &server,
        &[
            "--tone",
            "440",
            "--seconds",
            "8",
            "--dtmf",
            "#",
            "--dtmf-at",
            "2",
        ],
    );
    assert!(
        stderr(&out).contains("the other side hung up"),
        "{}",
        stderr(&out)
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!((dominant(&a, 0) - 440.0).abs() <= 5.0);
    let voiced = a.per_channel[0].voiced_ms;
    // Tone for 2 s, then the digit (no audio while it plays) ends the recording.
    assert!((1900..=2300).contains(&voiced), "voiced {voiced} ms");
    assert!(
        a.duration_ms <= 2600,
        "recording should end at the key, lasts {} ms",
        a.duration_ms
    );
}

#[test]
fn end_on_key_sip_info_stops_the_recording() {
    let server = with_ncco(r#"[{"action":"record","split":"conversation","endOnKey":"5"}]"#);
    let out = run_call(
        &server,
        &[
            "--tone",
            "440",
            "--seconds",
            "8",
            "--dtmf",
            "5",
            "--dtmf-at",
            "2",
            "--dtmf-info",
        ],
    );
    assert!(
        stderr(&out).contains("the other side hung up"),
        "{}",
        stderr(&out)
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!(
        a.duration_ms >= 1800 && a.duration_ms <= 2600,
        "{} ms",
        a.duration_ms
    );
}

#[test]
fn a_different_key_does_not_end_the_recording() {
    let server = with_ncco(r##"[{"action":"record","split":"conversation","endOnKey":"#"}]"##);
    let out = run_call(
        &server,
        &[
            "--tone",
            "440",
            "--seconds",
            "3",
            "--dtmf",
            "1",
            "--dtmf-at",
            "1",
        ],
    );
    assert!(
        !stderr(&out).contains("the other side hung up"),
        "{}",
        stderr(&out)
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!(a.duration_ms >= 2900, "{} ms", a.duration_ms);
}

#[test]
fn end_on_silence_after_tone_then_quiet_audio() {
    let dir = tempfile::tempdir().unwrap();
    require_tool("sox");
    let wav = dir.path().join("tone_then_silence.wav");
    let st = std::process::Command::new("sox")
        .args(["-n", "-r", "16000", "-b", "16", "-c", "1"])
        .arg(&wav)
        .args(["synth", "2", "sine", "600", "vol", "0.5", "pad", "0", "10"])
        .status()
        .unwrap();
    assert!(st.success());
    let server = with_ncco(r#"[{"action":"record","split":"conversation","endOnSilence":3}]"#);
    let out = run_call(
        &server,
        &["--wav", wav.to_str().unwrap(), "--seconds", "10"],
    );
    assert!(
        stderr(&out).contains("the other side hung up"),
        "{}",
        stderr(&out)
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    // 2 s of tone + 3 s of silence, then the recording ends.
    assert!(
        (4800..=5600).contains(&a.duration_ms),
        "{} ms",
        a.duration_ms
    );
    let voiced = a.per_channel[0].voiced_ms;
    assert!((1900..=2150).contains(&voiced), "voiced {voiced}");
}

#[test]
fn end_on_silence_when_the_caller_stops_sending() {
    let server = with_ncco(r#"[{"action":"record","split":"conversation","endOnSilence":3}]"#);
    // Tone for 1.5 s, then no packets at all (DTX without comfort noise).
    let out = run_call(
        &server,
        &["--tone", "440", "--seconds", "10", "--gap", "1.5,20"],
    );
    assert!(
        stderr(&out).contains("the other side hung up"),
        "{}",
        stderr(&out)
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!(
        (4300..=5100).contains(&a.duration_ms),
        "{} ms",
        a.duration_ms
    );
}

#[test]
fn time_out_ends_an_asynchronous_recording_while_the_call_goes_on() {
    let server = with_ncco(
        r#"[{"action":"record","split":"conversation","timeOut":3},{"action":"wait","timeout":30}]"#,
    );
    let out = run_call(&server, &["--tone", "440", "--seconds", "5"]);
    // The call itself was not ended by callmux.
    assert!(
        !stderr(&out).contains("the other side hung up"),
        "{}",
        stderr(&out)
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!(
        (2900..=3150).contains(&a.duration_ms),
        "{} ms",
        a.duration_ms
    );
}

#[test]
fn beep_start_is_heard_by_the_caller_before_recording() {
    let server = with_ncco(
        r#"[{"action":"record","split":"conversation","beepStart":true},{"action":"wait","timeout":30}]"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    run_call(
        &server,
        &[
            "--tone",
            "440",
            "--seconds",
            "3",
            "--save",
            heard.to_str().unwrap(),
        ],
    );
    let h = analyze(&heard);
    assert_eq!(h.per_channel.len(), 1);
    let beep = h.per_channel[0]
        .dominant_hz
        .expect("the caller heard something");
    assert!((beep - 1000.0).abs() <= 10.0, "heard {beep} Hz");
    // About 250 ms of beep, nothing else.
    let voiced = h.per_channel[0].voiced_ms;
    assert!((200..=320).contains(&voiced), "beep lasted {voiced} ms");
    let loud: Vec<u64> = h.per_channel[0]
        .windows
        .iter()
        .filter(|w| w.rms_dbfs > -40.0)
        .map(|w| w.start_ms)
        .collect();
    assert!(
        loud.iter().all(|&t| t < 600),
        "beep not at the start: {loud:?}"
    );
    // The recording starts after the beep: the caller's tone is there, the beep is not.
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!((dominant(&a, 0) - 440.0).abs() <= 5.0);
    assert_eq!(a.per_channel[1].voiced_ms, 0);
}

#[test]
fn mono_recording_has_one_channel() {
    let server = with_ncco(r#"[{"action":"record"},{"action":"wait","timeout":30}]"#);
    run_call(&server, &["--tone", "300", "--seconds", "2"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_eq!(a.per_channel.len(), 1);
    assert!((dominant(&a, 0) - 300.0).abs() <= 5.0);
    assert_eq!(sidecar(&recs[0])["layout"], "mono");
}

#[test]
fn channels_two_puts_the_caller_in_channel_one() {
    let server = with_ncco(r#"[{"action":"record","channels":2},{"action":"wait","timeout":30}]"#);
    run_call(&server, &["--tone", "800", "--seconds", "2"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_eq!(a.per_channel.len(), 2);
    assert!((dominant(&a, 0) - 800.0).abs() <= 5.0);
    assert_eq!(a.per_channel[1].voiced_ms, 0);
}

#[test]
fn mp3_and_ogg_formats_hold_the_tone() {
    for (format, ext) in [("mp3", "mp3"), ("ogg", "ogg")] {
        let server = with_ncco(&format!(
            r#"[{{"action":"record","split":"conversation","format":"{format}"}},{{"action":"wait","timeout":30}}]"#
        ));
        run_call(&server, &["--tone", "440", "--seconds", "2"]);
        let recs = server.wait_recordings(1, Duration::from_secs(10));
        assert_eq!(recs[0].extension().unwrap(), ext);
        let a = analyze(&recs[0]);
        assert_eq!(a.per_channel.len(), 2, "{format}");
        assert!((dominant(&a, 0) - 440.0).abs() <= 5.0, "{format}");
        assert!(
            a.per_channel[0].voiced_ms >= 1800,
            "{format}: {}",
            a.per_channel[0].voiced_ms
        );
        assert_eq!(a.per_channel[1].voiced_ms, 0, "{format}");
    }
}

#[test]
fn opus_caller_is_recorded() {
    let server = Server::start(ServerOptions::default());
    run_call(
        &server,
        &["--tone", "440", "--seconds", "2", "--codec", "opus"],
    );
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert!((dominant(&a, 0) - 440.0).abs() <= 5.0);
    assert!(a.per_channel[0].voiced_ms >= 1800);
}

#[test]
fn invalid_record_fields_are_rejected_at_load_with_their_path() {
    for (ncco, needle) in [
        (r#"[{"action":"record","channels":0}]"#, "$[0].channels"),
        (
            r#"[{"action":"record","endOnSilence":2}]"#,
            "$[0].endOnSilence",
        ),
        (r#"[{"action":"record","endOnKey":"ab"}]"#, "$[0].endOnKey"),
        (r#"[{"action":"record","timeOut":8000}]"#, "$[0].timeOut"),
        (r#"[{"action":"record","format":"flac"}]"#, "$[0].format"),
        (
            r#"[{"action":"connect","endpoint":[{"type":"vbc","extension":"100"}]}]"#,
            "$[0].endpoint[0].type",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.json");
        std::fs::write(&p, ncco).unwrap();
        let mut cmd = std::process::Command::new(bin());
        cmd.args([
            "serve",
            "--sip",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--ncco",
        ])
        .arg(&p);
        let out = output_within(cmd, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{ncco}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{ncco}: {err}");
    }
}
