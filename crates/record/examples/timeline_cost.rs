//! Instruction-count driver for the recorder's per-packet work (split layout, the caller
//! sending 20 ms packets: `push_received` + `drain` + WAV write, as `Recording::poll` does),
//! for `valgrind --tool=callgrind`:
//!
//! ```sh
//! cargo build --profile bench -p callmux-record --example timeline_cost
//! valgrind --tool=callgrind target/release/examples/timeline_cost 1000
//! valgrind --tool=callgrind target/release/examples/timeline_cost 2000
//! ```
//! (difference of the totals) / 1000 = instructions per 20 ms frame.
#![allow(missing_docs, reason = "example binary")]

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use callmux_record::sink::{Sink, WavSink};
use callmux_record::{ChannelLayout, LegKey, RecordingTimeline, TimelineConfig};

fn main() {
    let packets: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(ChannelLayout::Split, TimelineConfig::default(), t0);
    tl.add_leg(LegKey(0), t0);
    let pcm: Vec<i16> = (0..320)
        .map(|i| {
            (9000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 16_000.0).sin()) as i16
        })
        .collect();
    let mut sink = WavSink::new(Cursor::new(Vec::with_capacity(16 << 20)), 2).unwrap();
    let mut out = Vec::with_capacity(2 * 16_000);
    for k in 0..packets {
        let now = t0 + Duration::from_millis(20 * u64::from(k) + 5);
        tl.push_received(
            LegKey(0),
            7,
            k.wrapping_mul(160),
            8000,
            now,
            black_box(&pcm),
        );
        out.clear();
        tl.drain(now, &mut out);
        sink.write(&out).unwrap();
    }
    println!("{packets} packets, {} frames written", sink.frames());
}
