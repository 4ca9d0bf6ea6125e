//! The `record` action's options end to end: layouts, formats, endOnKey (RFC 4733 and SIP
//! INFO), endOnSilence, timeOut and beepStart, checked in the recorded audio itself.

use std::process::Output;
use std::time::Duration;

use callmux_record::AudioAnalysis;

use crate::common::*;

/// Asserts whether callmux ended the call (`callmux call` reports "the other side hung up"):
/// a recording option that ends the NCCO hangs up, one that ends only the recording does not.
fn assert_hung_up(out: &Output, expected: bool) {
    let err = stderr_of(out);
    assert_eq!(
        err.contains("the other side hung up"),
        expected,
        "callmux should{} have hung up: {err}",
        if expected { "" } else { " not" }
    );
}

/// The analysis of the server's one recording, once it is final.
fn the_recording(server: &Server) -> AudioAnalysis {
    analyze(&server.wait_recordings(1, Duration::from_secs(10))[0])
}

#[test]
fn end_on_key_rfc4733_stops_the_recording_and_the_ncco_goes_on() {
    // Synchronous record ending on '#', then the NCCO runs out → callmux hangs up.
    let server =
        Server::with_ncco(r##"[{"action":"record","split":"conversation","endOnKey":"#"}]"##);
    let out = call_with_digits(&server, "8", "#", "2", &[]);
    assert_hung_up(&out, true);
    let a = the_recording(&server);
    assert_tone(&a, 0, 440.0, "caller");
    // Tone for 2 s, then the digit (no audio while it plays) ends the recording.
    assert_voiced(&a, 0, 1900..=2300, "caller until the key");
    assert_duration(&a, ..=2600, "recording should end at the key");
}

#[test]
fn end_on_key_sip_info_stops_the_recording() {
    let server =
        Server::with_ncco(r#"[{"action":"record","split":"conversation","endOnKey":"5"}]"#);
    let out = call_with_digits(&server, "8", "5", "2", &["--dtmf-info"]);
    assert_hung_up(&out, true);
    let a = the_recording(&server);
    assert_duration(&a, 1800..=2600, "recording ended by the INFO key");
}

#[test]
fn a_different_key_does_not_end_the_recording() {
    let server =
        Server::with_ncco(r##"[{"action":"record","split":"conversation","endOnKey":"#"}]"##);
    let out = call_with_digits(&server, "3", "1", "1", &[]);
    assert_hung_up(&out, false);
    let a = the_recording(&server);
    assert_duration(&a, 2900.., "recording not ended by another key");
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
    let server =
        Server::with_ncco(r#"[{"action":"record","split":"conversation","endOnSilence":3}]"#);
    let out = call_ok(
        &server,
        &["--wav", wav.to_str().unwrap(), "--seconds", "10"],
    );
    assert_hung_up(&out, true);
    let a = the_recording(&server);
    // 2 s of tone + 3 s of silence, then the recording ends.
    assert_duration(&a, 4800..=5600, "2 s of tone, then 3 s of silence");
    assert_voiced(&a, 0, 1900..=2150, "2 s of tone");
}

#[test]
fn end_on_silence_when_the_caller_stops_sending() {
    let server =
        Server::with_ncco(r#"[{"action":"record","split":"conversation","endOnSilence":3}]"#);
    // Tone for 1.5 s, then no packets at all (DTX without comfort noise).
    let out = call_ok(
        &server,
        &["--tone", "440", "--seconds", "10", "--gap", "1.5,20"],
    );
    assert_hung_up(&out, true);
    let a = the_recording(&server);
    assert_duration(&a, 4300..=5100, "1.5 s of tone, then 3 s without packets");
}

#[test]
fn time_out_ends_an_asynchronous_recording_while_the_call_goes_on() {
    let server = Server::with_ncco(
        r#"[{"action":"record","split":"conversation","timeOut":3},{"action":"wait","timeout":30}]"#,
    );
    let out = call_ok(&server, &["--tone", "440", "--seconds", "5"]);
    // The call itself was not ended by callmux.
    assert_hung_up(&out, false);
    let a = the_recording(&server);
    assert_duration(&a, 2900..=3150, "recording with timeOut 3");
}

#[test]
fn beep_start_is_heard_by_the_caller_before_recording() {
    let server = Server::with_ncco(
        r#"[{"action":"record","split":"conversation","beepStart":true},{"action":"wait","timeout":30}]"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let save = heard.to_str().unwrap();
    call_ok(
        &server,
        &["--tone", "440", "--seconds", "3", "--save", save],
    );
    let h = analyze(&heard);
    assert_channels(&h, 1, "what the caller heard");
    assert_tone_near(&h, 0, 1000.0, 10.0, "the beep the caller heard");
    // About 250 ms of beep, nothing else.
    assert_voiced(&h, 0, 200..=320, "the beep the caller heard");
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
    let a = the_recording(&server);
    assert_tone(&a, 0, 440.0, "caller after the beep");
    assert_silent(&a, 1, "no beep in the recording");
}

#[test]
fn mono_recording_has_one_channel() {
    let server = Server::with_ncco(r#"[{"action":"record"},{"action":"wait","timeout":30}]"#);
    call_ok(&server, &["--tone", "300", "--seconds", "2"]);
    let recs = server.wait_recordings(1, Duration::from_secs(10));
    let a = analyze(&recs[0]);
    assert_channels(&a, 1, "mono");
    assert_tone(&a, 0, 300.0, "caller");
    assert_eq!(sidecar(&recs[0])["layout"], "mono");
}

#[test]
fn channels_two_puts_the_caller_in_channel_one() {
    let server =
        Server::with_ncco(r#"[{"action":"record","channels":2},{"action":"wait","timeout":30}]"#);
    call_ok(&server, &["--tone", "800", "--seconds", "2"]);
    let a = the_recording(&server);
    assert_split_caller_tone(&a, 800.0, "channels 2");
}

#[test]
fn mp3_and_ogg_formats_hold_the_tone() {
    for (format, ext) in [("mp3", "mp3"), ("ogg", "ogg")] {
        let server = Server::with_ncco(&format!(
            r#"[{{"action":"record","split":"conversation","format":"{format}"}},{{"action":"wait","timeout":30}}]"#
        ));
        call_ok(&server, &["--tone", "440", "--seconds", "2"]);
        let recs = server.wait_recordings(1, Duration::from_secs(10));
        assert_eq!(recs[0].extension().unwrap(), ext);
        let a = analyze(&recs[0]);
        assert_split_caller_tone(&a, 440.0, format);
        assert_voiced(&a, 0, 1800.., format);
    }
}

#[test]
fn opus_caller_is_recorded() {
    let server = Server::start(ServerOptions::default());
    call_ok(
        &server,
        &["--tone", "440", "--seconds", "2", "--codec", "opus"],
    );
    let a = the_recording(&server);
    assert_tone_for(&a, 0, 440.0, 1800, "Opus caller");
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
        assert_exits_2_naming(serve_with_ncco_file(&p), needle, ncco);
    }
}
