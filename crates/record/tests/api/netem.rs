//! A small seeded network emulator for RTP-like packet streams: sender clock drift, base
//! delay, uniform jitter (which reorders), loss, and per-packet overrides.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One packet as the sender produced it.
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    pub(crate) index: usize,
    pub(crate) ssrc: u32,
    pub(crate) ts: u32,
    pub(crate) clock_rate: u32,
    pub(crate) pcm: Vec<i16>,
    /// Real time (since the test's start) the packet left the sender.
    pub(crate) sent: Duration,
}

/// How a sender behaves.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub(crate) ssrc: u32,
    pub(crate) ts0: u32,
    pub(crate) clock_rate: u32,
    /// Real time the first packet's first sample is captured.
    pub(crate) start: Duration,
    /// Sender clock speed relative to real time (1.001 = 0.1 % fast).
    pub(crate) speed: f64,
}

impl Sender {
    pub(crate) fn new(ssrc: u32, ts0: u32, start_ms: u64) -> Self {
        Self {
            ssrc,
            ts0,
            clock_rate: 8000,
            start: Duration::from_millis(start_ms),
            speed: 1.0,
        }
    }

    /// `count` packets of 20 ms; `audio(k)` gives packet k's 320 samples (16 kHz).
    pub(crate) fn packets(
        &self,
        count: usize,
        mut audio: impl FnMut(usize) -> Vec<i16>,
    ) -> Vec<Packet> {
        let step = self.clock_rate / 50;
        (0..count)
            .map(|k| {
                let captured_end = (k + 1) as f64 * 0.020 / self.speed;
                Packet {
                    index: k,
                    ssrc: self.ssrc,
                    ts: self.ts0.wrapping_add(step.wrapping_mul(k as u32)),
                    clock_rate: self.clock_rate,
                    pcm: audio(k),
                    sent: self.start + Duration::from_secs_f64(captured_end),
                }
            })
            .collect()
    }
}

/// Network behaviour.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub(crate) delay: Duration,
    pub(crate) jitter: Duration,
    pub(crate) loss: f64,
    pub(crate) seed: u64,
}

impl Net {
    pub(crate) fn fixed(delay_ms: u64) -> Self {
        Self {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::ZERO,
            loss: 0.0,
            seed: 1,
        }
    }

    /// Arrival time of each packet that is not lost, sorted by arrival. `extra(k)` adds delay
    /// to packet k; the first packet is never lost and has zero jitter when `calm_first`.
    pub(crate) fn deliver(
        &self,
        packets: Vec<Packet>,
        calm_first: bool,
        extra: impl Fn(usize) -> Duration,
    ) -> Vec<(Duration, Packet)> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut out = Vec::new();
        for p in packets {
            let lost = rng.random::<f64>() < self.loss;
            let j = self.jitter.as_secs_f64() * rng.random::<f64>();
            if p.index == 0 && calm_first {
                out.push((p.sent + self.delay + extra(0), p));
                continue;
            }
            if lost && p.index != 0 {
                continue;
            }
            out.push((
                p.sent + self.delay + Duration::from_secs_f64(j) + extra(p.index),
                p,
            ));
        }
        out.sort_by_key(|(at, _)| *at);
        out
    }
}

/// Merges several legs' deliveries into one arrival-ordered list of (arrival, leg, packet).
pub(crate) fn merge(legs: Vec<(u32, Vec<(Duration, Packet)>)>) -> Vec<(Duration, u32, Packet)> {
    let mut all: Vec<(Duration, u32, Packet)> = legs
        .into_iter()
        .flat_map(|(leg, v)| v.into_iter().map(move |(at, p)| (at, leg, p)))
        .collect();
    all.sort_by_key(|(at, leg, _)| (*at, *leg));
    all
}

/// 320 samples of a constant.
pub(crate) fn constant(v: i16) -> Vec<i16> {
    vec![v; 320]
}
