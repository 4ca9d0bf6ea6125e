use super::*;
use crate::resample::tests::{rms, sine, tone_amplitude};

fn tone_frames(freq: f64, frames: usize) -> Vec<i16> {
    sine(freq, 16000.0, 8000.0, 320 * frames)
}

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

fn round_trip(format: PayloadFormat, input: &[i16]) -> (Vec<i16>, Vec<u32>) {
    let mut enc = AudioEncoder::new(&format).unwrap();
    let mut dec = AudioDecoder::new(&format).unwrap();
    let mut payload = Vec::new();
    let mut pcm = Vec::new();
    let mut advances = Vec::new();
    for frame in input.chunks(320) {
        payload.clear();
        advances.push(enc.encode(frame, &mut payload).unwrap());
        let n = dec.decode(&payload, &mut pcm).unwrap();
        assert_eq!(n, 320);
    }
    (pcm, advances)
}

#[test]
fn g711_round_trip_keeps_a_1k_tone() {
    for format in [PayloadFormat::pcmu(), PayloadFormat::pcma()] {
        let input = tone_frames(1000.0, 50);
        let (pcm, advances) = round_trip(format, &input);
        assert!(advances.iter().all(|&a| a == 160), "{advances:?}");
        assert_eq!(pcm.len(), input.len());
        let level = tone_amplitude(&pcm[1600..], 1000.0, 16000.0);
        assert!(
            db(level / 8000.0).abs() < 0.5,
            "{:?}: level {level}",
            format.codec
        );
        // Everything that is not the tone (quantisation noise, images) is 30 dB down.
        let total = rms(&pcm[1600..]) * std::f64::consts::SQRT_2;
        let residual = (total * total - level * level).max(0.0).sqrt();
        assert!(
            db(residual / level) < -30.0,
            "{:?}: residual {residual}",
            format.codec
        );
    }
}

#[test]
fn g711_payload_sizes() {
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&[0xFF; 160], &mut out), Ok(320));
    assert_eq!(dec.decode(&[0xFF; 80], &mut out), Ok(160));
    assert_eq!(out.len(), 480, "decode appends");
    assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPayload));
    let mut enc = AudioEncoder::new(&PayloadFormat::pcma()).unwrap();
    let mut payload = Vec::new();
    assert_eq!(enc.encode(&[0; 320], &mut payload), Ok(160));
    assert_eq!(payload.len(), 160);
    assert!(payload.iter().all(|&b| b == 0xD5), "A-law silence");
    assert_eq!(
        enc.encode(&[0; 3], &mut payload),
        Err(CodecError::BadFrameSize { samples: 3 })
    );
}

#[test]
fn opus_round_trip_keeps_a_1k_tone() {
    let input = tone_frames(1000.0, 50);
    let (pcm, advances) = round_trip(PayloadFormat::opus(111), &input);
    assert!(
        advances.iter().all(|&a| a == 960),
        "20 ms = 960 ticks at 48 kHz"
    );
    let level = tone_amplitude(&pcm[3200..], 1000.0, 16000.0);
    assert!(db(level / 8000.0).abs() < 1.5, "level {level}");
    let other = tone_amplitude(&pcm[3200..], 3000.0, 16000.0);
    assert!(db(other / level) < -30.0, "3 kHz {other} vs 1 kHz {level}");
}

#[test]
fn opus_rejects_malformed_payloads() {
    let mut dec = AudioDecoder::new(&PayloadFormat::opus(111)).unwrap();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&[], &mut out), Err(CodecError::EmptyPayload));
    // Code 3 (arbitrary frame count) with a count of zero frames.
    assert!(matches!(
        dec.decode(&[0x03, 0x00], &mut out),
        Err(CodecError::Opus(_))
    ));
    // Code 3 with 49 frames (more than 120 ms).
    assert!(matches!(
        dec.decode(&[0x03, 49], &mut out),
        Err(CodecError::Opus(_))
    ));
    // Code 2 (two frames, explicit size) whose size byte exceeds the packet.
    assert!(matches!(
        dec.decode(&[0x02, 0xFB, 1, 2], &mut out),
        Err(CodecError::Opus(_))
    ));
    assert!(out.is_empty(), "failed decodes append nothing");
    // The decoder still works afterwards.
    let mut enc = AudioEncoder::new(&PayloadFormat::opus(111)).unwrap();
    let mut payload = Vec::new();
    enc.encode(&tone_frames(440.0, 1), &mut payload).unwrap();
    assert_eq!(dec.decode(&payload, &mut out), Ok(320));
}

#[test]
fn opus_encoder_frame_sizes() {
    let mut enc = AudioEncoder::new(&PayloadFormat::opus(96)).unwrap();
    let mut out = Vec::new();
    assert_eq!(enc.encode(&[0; 160], &mut out), Ok(480));
    assert_eq!(enc.encode(&[0; 960], &mut out), Ok(2880));
    let before = out.len();
    assert_eq!(
        enc.encode(&[0; 321], &mut out),
        Err(CodecError::BadFrameSize { samples: 321 })
    );
    assert_eq!(out.len(), before);
}

#[test]
fn conceal_appends_exactly_what_is_asked() {
    for format in [
        PayloadFormat::pcmu(),
        PayloadFormat::pcma(),
        PayloadFormat::opus(111),
    ] {
        let mut dec = AudioDecoder::new(&format).unwrap();
        let mut out = Vec::new();
        for n in [320, 0, 1, 7, 960, 333] {
            out.clear();
            assert_eq!(dec.conceal(n, &mut out), n);
            assert_eq!(out.len(), n, "{:?} conceal {n}", format.codec);
        }
    }
}

#[test]
fn g711_conceal_is_silence_after_the_filter_tail() {
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::new();
    dec.decode(&[0x80; 160], &mut out).unwrap();
    out.clear();
    dec.conceal(320, &mut out);
    assert!(
        out[64..].iter().all(|&s| s == 0),
        "silence once the FIR has flushed"
    );
}

#[test]
fn opus_plc_continues_the_signal() {
    let input = tone_frames(500.0, 20);
    let format = PayloadFormat::opus(111);
    let mut enc = AudioEncoder::new(&format).unwrap();
    let mut dec = AudioDecoder::new(&format).unwrap();
    let mut payload = Vec::new();
    let mut pcm = Vec::new();
    for frame in input.chunks(320) {
        payload.clear();
        enc.encode(frame, &mut payload).unwrap();
        dec.decode(&payload, &mut pcm).unwrap();
    }
    let mut concealed = Vec::new();
    dec.conceal(320, &mut concealed);
    assert!(
        rms(&concealed) > 1000.0,
        "PLC extrapolates, rms {}",
        rms(&concealed)
    );
}

#[test]
fn opus_fec_recovers_a_lost_frame() {
    let input = tone_frames(700.0, 30);
    let format = PayloadFormat::opus(111);
    let mut enc = AudioEncoder::new(&format).unwrap();
    let mut payloads = Vec::new();
    for frame in input.chunks(320) {
        let mut p = Vec::new();
        enc.encode(frame, &mut p).unwrap();
        payloads.push(p);
    }
    let mut dec = AudioDecoder::new(&format).unwrap();
    let mut pcm = Vec::new();
    for p in &payloads[..20] {
        dec.decode(p, &mut pcm).unwrap();
    }
    // Frame 20 is lost; frame 21 carries its FEC copy.
    let mut recovered = Vec::new();
    assert_eq!(dec.recover(&payloads[21], 320, &mut recovered), 320);
    assert_eq!(recovered.len(), 320);
    let level = tone_amplitude(&recovered, 700.0, 16000.0);
    assert!(db(level / 8000.0) > -6.0, "recovered level {level}");
    assert_eq!(dec.decode(&payloads[21], &mut pcm), Ok(320));
    // An invalid size falls back to concealment with the exact count.
    let mut out = Vec::new();
    assert_eq!(dec.recover(&payloads[22], 333, &mut out), 333);
    assert_eq!(out.len(), 333);
}

#[test]
fn timestamp_conversions() {
    let g = AudioDecoder::new(&PayloadFormat::pcma()).unwrap();
    let o = AudioDecoder::new(&PayloadFormat::opus(111)).unwrap();
    assert_eq!(g.rtp_ts_to_16k(160), 320);
    assert_eq!(o.rtp_ts_to_16k(960), 320);
    assert_eq!(g.samples_16k_to_rtp_ts(320), 160);
    assert_eq!(o.samples_16k_to_rtp_ts(320), 960);
    assert!((g.samples_per_rtp_tick() - 2.0).abs() < 1e-12);
    assert!((o.samples_per_rtp_tick() - 1.0 / 3.0).abs() < 1e-12);
    // A wrapped difference still converts.
    let delta = 10u32.wrapping_sub(u32::MAX - 149);
    assert_eq!(g.rtp_ts_to_16k(delta), 320);
}

#[test]
fn rejects_wrong_clock_rate() {
    let bad = PayloadFormat {
        pt: 0,
        codec: Codec::Pcmu,
        clock_rate: 16000,
    };
    assert_eq!(
        AudioDecoder::new(&bad).err(),
        Some(CodecError::UnsupportedFormat {
            codec: Codec::Pcmu,
            clock_rate: 16000
        })
    );
    assert!(AudioEncoder::new(&bad).is_err());
}

#[test]
fn output_buffer_is_reused() {
    for format in [PayloadFormat::pcmu(), PayloadFormat::opus(111)] {
        let mut enc = AudioEncoder::new(&format).unwrap();
        let mut dec = AudioDecoder::new(&format).unwrap();
        let mut payload = Vec::with_capacity(1500);
        let mut pcm = Vec::with_capacity(640);
        let (pp, pc) = (payload.as_ptr(), pcm.as_ptr());
        for frame in tone_frames(300.0, 10).chunks(320) {
            payload.clear();
            pcm.clear();
            enc.encode(frame, &mut payload).unwrap();
            dec.decode(&payload, &mut pcm).unwrap();
        }
        assert_eq!(payload.as_ptr(), pp, "payload buffer not reallocated");
        assert_eq!(pcm.as_ptr(), pc, "pcm buffer not reallocated");
    }
}

/// docs/performance.md, cause C: a G.711 leg of N packets decodes to N × 20 ms of audio
/// once the decoder's tail is taken (it used to lose the up-sampler's last 1.94 ms).
#[test]
fn g711_stream_of_n_packets_is_n_times_20_ms_of_audio_with_its_tail() {
    for format in [PayloadFormat::pcmu(), PayloadFormat::pcma()] {
        // 1 s of a 1 kHz tone at 8 kHz, the way a SIPp µ-law file is made.
        let x8 = sine(1000.0, 8000.0, 9000.0, 8000);
        let mut dec = AudioDecoder::new(&format).unwrap();
        let mut pcm = Vec::new();
        let mut reference = Vec::new();
        for chunk in x8.chunks(160) {
            let payload: Vec<u8> = chunk
                .iter()
                .map(|&s| match format.codec {
                    Codec::Pcma => g711::linear_to_alaw(s),
                    _ => g711::linear_to_ulaw(s),
                })
                .collect();
            reference.extend(payload.iter().map(|&c| match format.codec {
                Codec::Pcma => g711::alaw_to_linear(c),
                _ => g711::ulaw_to_linear(c),
            }));
            assert_eq!(dec.decode(&payload, &mut pcm), Ok(320));
        }
        assert_eq!(dec.delay(), 31);
        let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        let want = 2.0 * energy(&reference);
        let short = energy(&pcm) / want;
        assert!(
            short < 0.9985,
            "{:?}: without the tail {short}",
            format.codec
        );
        assert_eq!(dec.tail(&mut pcm), 31);
        let whole = energy(&pcm) / want;
        assert!(
            (whole - 1.0).abs() < 3e-4,
            "{:?}: with the tail {whole}",
            format.codec
        );
        // The output is the input delayed by `delay()`: 16 kHz sample 2n + 1 is 8 kHz
        // input n - 15, i.e. input sample n (at 16 kHz index 2n) comes out at 2n + 31.
        for n in 15..8000 {
            assert_eq!(
                pcm[2 * n + 1],
                reference[n - 15],
                "{:?} at {n}",
                format.codec
            );
        }
    }
    let opus = AudioDecoder::new(&PayloadFormat::opus(111)).unwrap();
    assert_eq!(opus.delay(), 0);
    assert_eq!(opus.tail(&mut Vec::new()), 0);
}

#[test]
fn a_flushed_g711_decoder_goes_on_as_if_unbroken() {
    // A stream decoded in one run, and the same stream flushed after packet 10: the flush
    // placed right after packet 10 plus the packets that follow equals the unbroken decode.
    let x8 = sine(700.0, 8000.0, 14000.0, 160 * 20);
    let packets: Vec<Vec<u8>> = x8
        .chunks(160)
        .map(|c| c.iter().map(|&s| g711::linear_to_ulaw(s)).collect())
        .collect();
    let mut unbroken = Vec::new();
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    for p in &packets {
        dec.decode(p, &mut unbroken).unwrap();
    }
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut split = vec![0i32; unbroken.len() + 100];
    let mut pcm = Vec::new();
    for p in &packets[..10] {
        dec.decode(p, &mut pcm).unwrap();
    }
    assert_eq!(dec.flush(&mut pcm), crate::resample::UP_RING_OUT);
    let mut rest = Vec::new();
    for p in &packets[10..] {
        dec.decode(p, &mut rest).unwrap();
    }
    for (k, &s) in pcm.iter().enumerate() {
        split[k] += i32::from(s);
    }
    for (k, &s) in rest.iter().enumerate() {
        split[3200 + k] += i32::from(s);
    }
    for (k, &want) in unbroken.iter().enumerate() {
        assert!(
            (split[k] - i32::from(want)).abs() <= 1,
            "sample {k}: {} vs {want}",
            split[k]
        );
    }
    // Opus keeps its state and has nothing to flush.
    let mut opus = AudioDecoder::new(&PayloadFormat::opus(111)).unwrap();
    assert_eq!(opus.flush(&mut Vec::new()), 0);
}
