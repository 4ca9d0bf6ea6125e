//! Analysis of synthetic files: which tone is in which channel, where the silences are.

use callmux_record::analysis::FLOOR_DBFS;
use callmux_record::{analyze_file, analyze_samples};

pub(crate) fn tone(hz: f64, amp: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0).sin()) as i16)
        .collect()
}

#[test]
fn finds_440_hz_in_one_channel_and_silence_in_the_other_of_a_wav() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    // 1 s silence, 2 s of 440 Hz on the left only, 1 s silence.
    let t = tone(440.0, 12_000.0, 32_000);
    for i in 0..64_000 {
        let l = if (16_000..48_000).contains(&i) {
            t[i - 16_000]
        } else {
            0
        };
        w.write_sample(l).unwrap();
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let a = analyze_file(&path).unwrap();
    assert_eq!(
        (
            a.format.as_str(),
            a.audio.sample_rate,
            a.audio.channels,
            a.audio.duration_ms
        ),
        ("wav", 16_000, 2, 4000)
    );
    let left = &a.audio.per_channel[0];
    assert!((left.dominant_hz.unwrap() - 440.0).abs() < 5.0);
    assert_eq!((left.voiced_ms, left.silent_ms), (2000, 2000));
    let voiced: Vec<u64> = left
        .windows
        .iter()
        .filter(|w| w.dominant_hz.is_some())
        .map(|w| w.start_ms)
        .collect();
    assert_eq!(voiced.first(), Some(&1000));
    assert_eq!(voiced.last(), Some(&2900));
    let right = &a.audio.per_channel[1];
    assert_eq!(
        (right.voiced_ms, right.dominant_hz, right.rms_dbfs),
        (0, None, FLOOR_DBFS)
    );
    let json = serde_json::to_string(&a).unwrap();
    assert!(json.contains("\"per_channel\"") && json.contains("\"dominant_hz\""));
}

#[test]
fn unsupported_and_damaged_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.bin");
    std::fs::write(&p, b"hello world, not audio").unwrap();
    assert!(analyze_file(&p).is_err());
    std::fs::write(&p, b"RIFF\x10\0\0\0WAVEfmt \x02\0\0\0").unwrap();
    assert!(analyze_file(&p).is_err());
    std::fs::write(&p, b"OggS\0\x02").unwrap();
    assert!(analyze_file(&p).is_err());
    std::fs::write(&p, [0xFFu8, 0xF3, 0x48, 0xC4, 1, 2, 3]).unwrap();
    assert!(analyze_file(&p).is_err());
    assert!(analyze_file(&dir.path().join("missing.wav")).is_err());
}

#[test]
fn samples_analysis_locates_tones_in_time() {
    let mut s = vec![0i16; 16_000];
    s.extend(tone(1000.0, 8000.0, 8000));
    s.extend(vec![0; 8000]);
    let a = analyze_samples(&s, 1, 16_000);
    let c = &a.per_channel[0];
    let w: Vec<(u64, bool)> = c
        .windows
        .iter()
        .map(|w| {
            (
                w.start_ms,
                w.dominant_hz.is_some_and(|h| (h - 1000.0).abs() < 5.0),
            )
        })
        .collect();
    assert!(w
        .iter()
        .filter(|(_, t)| *t)
        .all(|(ms, _)| (1000..1500).contains(ms)));
    assert_eq!(w.iter().filter(|(_, t)| *t).count(), 5);
    assert_eq!(c.voiced_ms, 500);
}
