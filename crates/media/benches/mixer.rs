//! Conference mixer cost per 20 ms tick for 3, 10 and 32 participants, everyone talking.
//! Throughput is in participants, so criterion's "elem/s" reads as participant-ticks per
//! second (per-participant cost = 1 / that).
//!
//! - `mixer tick`: the tick alone (the pushes that keep every FIFO fed are not timed).
//! - `mixer push+tick`: one 320-sample push per participant, then the tick — the whole
//!   per-tick work of a conference.
//! - `mixer tick restricted/32`: a quarter of the listeners with a 4-leg `canHear` and a
//!   quarter of the speakers with an 8-leg `canSpeak`, which take the per-listener path.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn in this bench binary"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use callmux_media::mixer::{
    ConferenceMixer, MixerConfig, ParticipantId, ParticipantOptions, FRAME_SAMPLES,
};
use callmux_media::tone::ToneGenerator;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [u32; 3] = [3, 10, 32];

/// One second (50 frames) of a distinct tone per participant.
struct Talkers {
    audio: Vec<Vec<i16>>,
    frame: usize,
}

impl Talkers {
    fn new(n: u32) -> Self {
        let audio = (0..n)
            .map(|i| {
                let mut s = vec![0i16; 16000];
                ToneGenerator::new(300.0 + 50.0 * i as f32, -20.0, 16000).fill(&mut s);
                s
            })
            .collect();
        Self { audio, frame: 0 }
    }

    /// Pushes everyone's next frame.
    fn push(&mut self, m: &mut ConferenceMixer) {
        let at = (self.frame % 50) * FRAME_SAMPLES;
        for (i, s) in self.audio.iter().enumerate() {
            m.push(ParticipantId(i as u32), &s[at..at + FRAME_SAMPLES]);
        }
        self.frame += 1;
    }
}

fn conference(n: u32, restricted: bool) -> (ConferenceMixer, Talkers) {
    let mut m = ConferenceMixer::new(MixerConfig::default());
    for i in 0..n {
        let ids = |from: u32, len: u32| {
            Some(
                (from..from + len)
                    .map(|k| ParticipantId(k % n))
                    .collect::<Vec<_>>(),
            )
        };
        let opts = match i % 4 {
            1 if restricted => ParticipantOptions {
                can_hear: ids(i + 1, 4),
                ..ParticipantOptions::default()
            },
            2 if restricted => ParticipantOptions {
                can_speak_to: ids(i + 1, 8),
                ..ParticipantOptions::default()
            },
            _ => ParticipantOptions::default(),
        };
        m.add(ParticipantId(i), opts).unwrap();
    }
    let mut talkers = Talkers::new(n);
    // Past prefill, so every tick mixes real audio.
    for _ in 0..5 {
        talkers.push(&mut m);
        m.tick();
    }
    (m, talkers)
}

fn bench_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer tick");
    for n in SIZES {
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (mut m, mut talkers) = conference(n, false);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    talkers.push(&mut m);
                    let start = Instant::now();
                    black_box(m.tick());
                    total += start.elapsed();
                }
                total
            });
            assert_eq!(m.stats(ParticipantId(0)).unwrap().underruns, 0);
        });
    }
    group.finish();
}

fn bench_push_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer push+tick");
    for n in SIZES {
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (mut m, mut talkers) = conference(n, false);
            b.iter(|| {
                talkers.push(&mut m);
                black_box(m.tick())
            });
        });
    }
    group.finish();
}

fn bench_restricted(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer tick restricted");
    let n = 32;
    group.throughput(Throughput::Elements(u64::from(n)));
    group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
        let (mut m, mut talkers) = conference(n, true);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                talkers.push(&mut m);
                let start = Instant::now();
                black_box(m.tick());
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench_tick, bench_push_tick, bench_restricted);
criterion_main!(benches);
