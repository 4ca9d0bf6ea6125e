//! Hot-path benchmarks: per-packet parsing, G.711 and Opus decoding of one 20 ms frame, and
//! the reorder buffer's push + pop.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn in this bench binary"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use callmux_media::codec::{AudioDecoder, AudioEncoder};
use callmux_media::reorder::ReorderBuffer;
use callmux_media::rtp::{parse_rtp, RtpPacketizer};
use callmux_media::sdp::PayloadFormat;
use callmux_media::tone::ToneGenerator;
use criterion::{criterion_group, criterion_main, Criterion};

fn packet(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    RtpPacketizer::new(0, 1).write(payload, false, 160, &mut out);
    out
}

fn bench_parse_rtp(c: &mut Criterion) {
    let pkt = packet(&[0xd5; 160]);
    c.bench_function("parse_rtp (PCMU 20 ms)", |b| {
        b.iter(|| parse_rtp(black_box(&pkt)).map(|v| v.payload.len()))
    });
}

fn bench_ulaw_decode(c: &mut Criterion) {
    let mut tone = ToneGenerator::new(1000.0, -10.0, 16000);
    let mut frame = [0i16; 320];
    tone.fill(&mut frame);
    let mut enc = AudioEncoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut payload = Vec::new();
    enc.encode(&frame, &mut payload).unwrap();
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::with_capacity(320);
    c.bench_function("PCMU decode + upsample to 16 kHz (20 ms)", |b| {
        b.iter(|| {
            out.clear();
            dec.decode(black_box(&payload), &mut out).unwrap()
        })
    });
}

fn bench_opus_decode(c: &mut Criterion) {
    let format = PayloadFormat::opus(111);
    let mut tone = ToneGenerator::new(440.0, -10.0, 16000);
    let mut enc = AudioEncoder::new(&format).unwrap();
    // A few seconds of distinct packets, decoded round-robin so the decoder sees a stream.
    let packets: Vec<Vec<u8>> = (0..100)
        .map(|_| {
            let mut frame = [0i16; 320];
            tone.fill(&mut frame);
            let mut p = Vec::new();
            enc.encode(&frame, &mut p).unwrap();
            p
        })
        .collect();
    let mut dec = AudioDecoder::new(&format).unwrap();
    let mut out = Vec::with_capacity(1920);
    let mut i = 0;
    c.bench_function("Opus decode at 16 kHz (20 ms)", |b| {
        b.iter(|| {
            out.clear();
            i = (i + 1) % packets.len();
            dec.decode(black_box(&packets[i]), &mut out).unwrap()
        })
    });
}

fn bench_reorder(c: &mut Criterion) {
    let mut pk = RtpPacketizer::new(0, 2);
    let mut buffer = ReorderBuffer::new(Duration::from_millis(60));
    let t0 = Instant::now();
    let mut wire = Vec::new();
    let payload = [0xd5u8; 160];
    let mut n = 0u64;
    c.bench_function("reorder push + pop (in order)", |b| {
        b.iter(|| {
            pk.write(&payload, false, 160, &mut wire);
            let view = parse_rtp(&wire).unwrap();
            let now = t0 + Duration::from_millis(n * 20);
            n += 1;
            buffer.push(&view, now);
            let mut released = 0;
            while let Some(r) = buffer.pop(now) {
                black_box(r);
                released += 1;
            }
            released
        })
    });
}

criterion_group!(
    benches,
    bench_parse_rtp,
    bench_ulaw_decode,
    bench_opus_decode,
    bench_reorder
);
criterion_main!(benches);
