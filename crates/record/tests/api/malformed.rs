//! Malformed input: every fuzz entry point and the on-disk repair take arbitrary bytes
//! without panicking.

use std::fs;
use std::time::SystemTime;

use callmux_record::{fuzzing, recover_unfinished, RecordFormat};
use proptest::prelude::*;

fn wav_header(channels: u16) -> Vec<u8> {
    let mut h = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0".to_vec();
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&16_000u32.to_le_bytes());
    h.extend_from_slice(&(32_000 * u32::from(channels)).to_le_bytes());
    h.extend_from_slice(&(2 * channels).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data\0\0\0\0");
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fuzz_entry_points_take_any_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::wav_recover(&data);
        fuzzing::sidecar(&data);
        fuzzing::mp3_scan(&data);
        fuzzing::ogg_scan(&data);
        fuzzing::opus_packet(&data);
    }

    #[test]
    fn mutated_wav_headers_never_panic(pos in 0usize..44, byte in any::<u8>(), extra in 0usize..100, ch in 1u16..40) {
        let mut d = wav_header(ch);
        d[pos] = byte;
        d.extend(std::iter::repeat_n(7u8, extra));
        fuzzing::wav_recover(&d);
    }

    #[test]
    fn mutated_sidecars_never_panic(cut in 0usize..400, pos in 0usize..400, byte in any::<u8>()) {
        let mut s = SIDECAR.as_bytes().to_vec();
        if pos < s.len() { s[pos] = byte; }
        s.truncate(cut.max(1));
        fuzzing::sidecar(&s);
    }
}

const SIDECAR: &str = r#"{"version":1,"recording_uuid":"r1","call_uuid":"c","conversation_uuid":"v","format":"wav","sample_rate":16000,"channels":2,"layout":"split","state":"recording","start_time":"2024-05-01T12:00:00.000Z","file":"r1.wav","channel_map":[{"channel":1,"content":"caller_sent","legs":[{"leg_uuid":"a","from":"x","to":"y","role":"caller","joined_ms":0}]}]}"#;

#[test]
fn the_sidecar_example_is_valid() {
    assert!(callmux_record::Sidecar::from_json(SIDECAR.as_bytes()).is_ok());
}

/// Garbage media files behind valid sidecars are marked failed, never panic.
#[test]
fn recovery_of_garbage_files_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("2024/05/01");
    fs::create_dir_all(&day).unwrap();
    for (i, format) in [RecordFormat::Wav, RecordFormat::Mp3, RecordFormat::Ogg]
        .into_iter()
        .enumerate()
    {
        let uuid = format!("g{i}");
        let side = SIDECAR
            .replace("\"r1\"", &format!("\"{uuid}\""))
            .replace("\"wav\"", &format!("\"{}\"", format.extension()));
        fs::write(day.join(format!("{uuid}.json")), side).unwrap();
        fs::write(
            day.join(format!("{uuid}.{}", format.extension())),
            b"RIFF garbage OggS \xff\xf3 junk",
        )
        .unwrap();
    }
    let results = recover_unfinished(dir.path(), SystemTime::now());
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Result::is_err), "{results:?}");
}
