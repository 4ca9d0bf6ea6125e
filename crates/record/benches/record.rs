//! Recorder benchmarks: timeline cost per 20 ms frame per leg, drain + WAV write per second
//! of audio, MP3 and Ogg Opus encoding per call-second.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use callmux_record::sink::{Mp3Sink, OggOpusSink, Sink, WavSink};
use callmux_record::{ChannelLayout, LegKey, RecordingTimeline, TimelineConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn tone(hz: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (9000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0).sin()) as i16)
        .collect()
}

/// One 20 ms tick: every leg pushes a packet, then the final frames are drained.
fn timeline_bench(c: &mut Criterion, name: &str, layout: ChannelLayout, legs: u32) {
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(layout, TimelineConfig::default(), t0);
    for l in 0..legs {
        tl.add_leg(LegKey(l), t0);
    }
    let pcm = tone(440.0, 320);
    let mut out = Vec::with_capacity(320 * 40);
    let mut k: u32 = 0;
    let mut g = c.benchmark_group("timeline");
    g.throughput(Throughput::Elements(u64::from(legs)));
    g.bench_function(name, |b| {
        b.iter(|| {
            // 7.3 ms past the timeline's start, as in a call: packets do not start on the
            // ring's 64-sample words, so the mixing ring's word fast paths meet partly
            // covered words at every packet edge.
            let now = t0 + Duration::from_micros(20_000 * u64::from(k) + 7_300);
            for l in 0..legs {
                tl.push_received(
                    LegKey(l),
                    l,
                    k.wrapping_mul(160),
                    8000,
                    now,
                    black_box(&pcm),
                );
            }
            out.clear();
            tl.drain(now, &mut out);
            black_box(&out);
            k += 1;
        });
    });
    g.finish();
}

/// The copy alone, the baseline the recorder's cost is measured against ("beyond the copy"):
/// every leg's 20 ms frame interleaved into an output buffer of the layout's channel count.
fn copy_bench(c: &mut Criterion, name: &str, channels: usize, legs: usize) {
    let pcm = tone(440.0, 320);
    let mut out = vec![0i16; 320 * channels];
    let mut g = c.benchmark_group("timeline");
    g.throughput(Throughput::Elements(legs as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            out.fill(0);
            for l in 0..legs {
                let ch = l.min(channels - 1);
                for (frame, &s) in out.chunks_exact_mut(channels).zip(black_box(&pcm)) {
                    if let Some(o) = frame.get_mut(ch) {
                        *o = o.saturating_add(s);
                    }
                }
            }
            black_box(&out);
        });
    });
    g.finish();
}

fn timeline(c: &mut Criterion) {
    copy_bench(c, "copy_per_leg/split_2_legs", 2, 2);
    copy_bench(c, "copy_per_leg/multi32_32_legs", 32, 32);
    timeline_bench(c, "frame_per_leg/split_2_legs", ChannelLayout::Split, 2);
    timeline_bench(
        c,
        "frame_per_leg/multi32_32_legs",
        ChannelLayout::Multi(32),
        32,
    );
}

fn drain_and_wav(c: &mut Criterion) {
    let mut g = c.benchmark_group("wav");
    g.throughput(Throughput::Elements(1));
    for (name, layout) in [
        ("drain_write_1s/split", ChannelLayout::Split),
        ("drain_write_1s/multi32", ChannelLayout::Multi(32)),
    ] {
        let ch = layout.channels();
        g.bench_function(name, |b| {
            let t0 = Instant::now();
            let mut tl = RecordingTimeline::new(layout, TimelineConfig::default(), t0);
            let mut sink = WavSink::new(Cursor::new(Vec::with_capacity(8 << 20)), ch).unwrap();
            let mut out = Vec::with_capacity(16_000 * usize::from(ch));
            let mut s: u64 = 0;
            b.iter(|| {
                // 1 s of audio, drained and written in 20 ms polls.
                for _ in 0..50 {
                    s += 1;
                    out.clear();
                    tl.drain(t0 + Duration::from_millis(20 * s), &mut out);
                    sink.write(&out).unwrap();
                }
                if s.is_multiple_of(5000) {
                    sink = WavSink::new(Cursor::new(Vec::with_capacity(8 << 20)), ch).unwrap();
                }
            });
        });
    }
    g.finish();
}

fn encoders(c: &mut Criterion) {
    let left = tone(440.0, 16_000);
    let right = tone(1000.0, 16_000);
    let stereo: Vec<i16> = left
        .iter()
        .zip(&right)
        .flat_map(|(&l, &r)| [l, r])
        .collect();
    let mut g = c.benchmark_group("encode_call_second");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mp3_stereo_32k", |b| {
        let mut sink = Mp3Sink::new(Cursor::new(Vec::new()), 2).unwrap();
        b.iter(|| sink.write(black_box(&stereo)).unwrap());
    });
    g.bench_function("mp3_mono_32k", |b| {
        let mut sink = Mp3Sink::new(Cursor::new(Vec::new()), 1).unwrap();
        b.iter(|| sink.write(black_box(&left)).unwrap());
    });
    g.bench_function("ogg_opus_stereo", |b| {
        let mut sink = OggOpusSink::new(Cursor::new(Vec::new()), 2, 1, &[]).unwrap();
        b.iter(|| sink.write(black_box(&stereo)).unwrap());
    });
    let eight: Vec<i16> = left.iter().flat_map(|&l| [l; 8]).collect();
    g.bench_function("ogg_opus_8ch", |b| {
        let mut sink = OggOpusSink::new(Cursor::new(Vec::new()), 8, 1, &[]).unwrap();
        b.iter(|| sink.write(black_box(&eight)).unwrap());
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = timeline, drain_and_wav, encoders
}
criterion_main!(benches);
