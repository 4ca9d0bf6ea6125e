//! Assertions on recorded audio, shared by every test that checks what a call left on disk
//! or what a party heard: which tone a channel holds, for how long, and which channels are
//! silent. Each failure names the party (`what`), the 1-based channel and the measured value,
//! so a failing end-to-end test says what it found without rerunning it.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;

use callmux_record::analysis::ChannelAnalysis;
use callmux_record::{analyze_file, AudioAnalysis};

/// How far a channel's dominant frequency may sit from the tone that was sent: the analysis'
/// resolution plus the codec's error, as every test here has always allowed.
pub const TONE_TOLERANCE_HZ: f64 = 5.0;

/// Analyses a recording.
pub fn analyze(path: &Path) -> AudioAnalysis {
    analyze_file(path)
        .unwrap_or_else(|e| panic!("analyse {}: {e}", path.display()))
        .audio
}

/// The dominant frequency of a channel's 100 ms windows between `from_ms` and `to_ms`
/// that are voiced, or None if none is.
pub fn tones_between(a: &AudioAnalysis, ch: usize, from_ms: u64, to_ms: u64) -> Vec<f64> {
    a.per_channel[ch]
        .windows
        .iter()
        .filter(|w| w.start_ms >= from_ms && w.start_ms + 100 <= to_ms && w.rms_dbfs > -45.0)
        .filter_map(|w| w.dominant_hz)
        .collect()
}

/// The dominant frequencies of a channel's voiced 100 ms windows over the whole file.
pub fn tones(a: &AudioAnalysis, ch: usize) -> Vec<f64> {
    tones_between(a, ch, 0, a.duration_ms)
}

/// Whether most (≥ 80 %) of `tones` are within 10 Hz of `hz`, and there are at least `min`.
pub fn mostly(tones: &[f64], hz: f64, min: usize) -> bool {
    let near = tones.iter().filter(|t| (*t - hz).abs() <= 10.0).count();
    near >= min && near * 5 >= tones.len() * 4
}

/// Asserts [`mostly`]`(tones, hz, min)`, failing with `what` and the tones found.
pub fn assert_mostly(tones: &[f64], hz: f64, min: usize, what: &str) {
    assert!(
        mostly(tones, hz, min),
        "{what}: expected mostly {hz} Hz (at least {min} windows), found {tones:?}"
    );
}

/// Channel `ch` (0-based), failing with `what` when the file has no such channel.
fn channel<'a>(a: &'a AudioAnalysis, ch: usize, what: &str) -> &'a ChannelAnalysis {
    a.per_channel.get(ch).unwrap_or_else(|| {
        panic!(
            "{what}: no channel {} in a {}-channel file",
            ch + 1,
            a.per_channel.len()
        )
    })
}

/// The dominant frequency of channel `ch` (0-based), failing with `what` when it holds none.
pub fn dominant(a: &AudioAnalysis, ch: usize, what: &str) -> f64 {
    channel(a, ch, what)
        .dominant_hz
        .unwrap_or_else(|| panic!("{what}: no tone in channel {}", ch + 1))
}

/// Asserts that channel `ch`'s dominant frequency is `hz` within `tolerance` Hz.
pub fn assert_tone_near(a: &AudioAnalysis, ch: usize, hz: f64, tolerance: f64, what: &str) {
    let got = dominant(a, ch, what);
    assert!(
        (got - hz).abs() <= tolerance,
        "{what}: channel {} is dominated by {got} Hz, expected {hz} ± {tolerance} Hz",
        ch + 1
    );
}

/// Asserts that channel `ch`'s dominant frequency is `hz` within [`TONE_TOLERANCE_HZ`].
pub fn assert_tone(a: &AudioAnalysis, ch: usize, hz: f64, what: &str) {
    assert_tone_near(a, ch, hz, TONE_TOLERANCE_HZ, what);
}

/// Asserts that channel `ch` is voiced for a number of milliseconds within `ms`.
pub fn assert_voiced<R: RangeBounds<u64> + Debug>(a: &AudioAnalysis, ch: usize, ms: R, what: &str) {
    let voiced = channel(a, ch, what).voiced_ms;
    assert!(
        ms.contains(&voiced),
        "{what}: channel {} is voiced for {voiced} ms, expected {ms:?} ms",
        ch + 1
    );
}

/// Asserts that channel `ch` holds tone `hz` for at least `min_ms`.
pub fn assert_tone_for(a: &AudioAnalysis, ch: usize, hz: f64, min_ms: u64, what: &str) {
    assert_tone(a, ch, hz, what);
    assert_voiced(a, ch, min_ms.., what);
}

/// Asserts that channel `ch` holds no voiced audio at all.
pub fn assert_silent(a: &AudioAnalysis, ch: usize, what: &str) {
    assert_voiced(a, ch, 0..=0, what);
}

/// Asserts that the file lasts a number of milliseconds within `ms`.
pub fn assert_duration<R: RangeBounds<u64> + Debug>(a: &AudioAnalysis, ms: R, what: &str) {
    assert!(
        ms.contains(&a.duration_ms),
        "{what}: the file lasts {} ms, expected {ms:?} ms",
        a.duration_ms
    );
}

/// Asserts that the file has `n` channels.
pub fn assert_channels(a: &AudioAnalysis, n: usize, what: &str) {
    assert_eq!(a.per_channel.len(), n, "{what}: channel count");
}

/// Asserts the split layout of a call whose caller sent `hz` and heard nothing: two
/// channels, the caller's tone in the first, silence in the second.
pub fn assert_split_caller_tone(a: &AudioAnalysis, hz: f64, what: &str) {
    assert_channels(a, 2, what);
    assert_tone(a, 0, hz, what);
    assert_silent(a, 1, what);
}

/// The helpers themselves, on audio made here: each passes on the audio it describes and
/// fails on other audio, so a shared assertion can never pass vacuously.
mod checks {
    use std::panic::{catch_unwind, UnwindSafe};

    use callmux_record::analyze_samples;

    use super::*;

    /// 2 s of 16 kHz stereo: `hz` at half scale left, digital silence right.
    fn tone_left(hz: f64) -> AudioAnalysis {
        let rate = 16_000u32;
        let mut samples = Vec::new();
        for n in 0..2 * rate {
            let phase = f64::from(n) * hz * std::f64::consts::TAU / f64::from(rate);
            samples.push((phase.sin() * 16_000.0) as i16);
            samples.push(0);
        }
        analyze_samples(&samples, 2, rate)
    }

    fn fails(f: impl FnOnce() + UnwindSafe) -> bool {
        catch_unwind(f).is_err()
    }

    #[test]
    fn tone_assertions_pass_on_their_tone_and_fail_on_another() {
        let a = tone_left(440.0);
        assert_split_caller_tone(&a, 440.0, "440 Hz left");
        assert_tone_for(&a, 0, 440.0, 1900, "440 Hz left");
        assert_duration(&a, 1990..=2010, "2 s");
        assert_mostly(&tones(&a, 0), 440.0, 15, "440 Hz left");
        assert!(fails(|| assert_tone(&a, 0, 450.0, "another tone")));
        assert!(fails(|| assert_tone(&a, 1, 440.0, "the silent channel")));
        assert!(fails(|| assert_silent(&a, 0, "the voiced channel")));
        assert!(fails(|| assert_voiced(&a, 0, ..1000, "too short")));
        assert!(fails(|| assert_duration(&a, 3000.., "too long")));
        assert!(fails(|| assert_channels(&a, 3, "channel count")));
        assert!(fails(|| assert_mostly(
            &tones(&a, 0),
            1000.0,
            1,
            "another tone"
        )));
        assert!(fails(|| {
            dominant(&a, 2, "no such channel");
        }));
    }
}
