//! Instruction-count driver for the G.711 receive path (decode + 8→16 kHz up-sampling), for
//! `valgrind --tool=callgrind` (criterion's own machinery would dominate the counts):
//!
//! ```sh
//! cargo build --profile bench -p callmux-media --example decode_cost
//! valgrind --tool=callgrind target/release/examples/decode_cost 1000
//! valgrind --tool=callgrind target/release/examples/decode_cost 2000
//! ```
//! (difference of the totals) / 1000 = instructions per 20 ms packet.
#![allow(missing_docs, reason = "example binary")]

use std::hint::black_box;

use callmux_media::codec::{AudioDecoder, AudioEncoder};
use callmux_media::sdp::PayloadFormat;
use callmux_media::tone::ToneGenerator;

fn main() {
    let packets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let mut tone = ToneGenerator::new(1000.0, -10.0, 16000);
    let mut enc = AudioEncoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut payloads = Vec::new();
    for _ in 0..50 {
        let mut frame = [0i16; 320];
        tone.fill(&mut frame);
        let mut p = Vec::new();
        enc.encode(&frame, &mut p).unwrap();
        payloads.push(p);
    }
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::with_capacity(320);
    let mut sum = 0i64;
    for k in 0..packets {
        out.clear();
        dec.decode(black_box(&payloads[k % payloads.len()]), &mut out)
            .unwrap();
        sum += i64::from(out[k % 320]);
    }
    println!("{packets} packets decoded ({sum})");
}
