//! Per-packet work of a bridged call (`connect`), in isolation from sockets and the recorder:
//! what one 20 ms RTP packet costs on its way from one leg to the other. A bridged
//! call-second is 50 packets in each direction, so its CPU is 50 × (A→B + B→A).
//!
//! - `relay rewrite`: the relay itself — `parse_rtp` and a new header with our SSRC and the
//!   mapped sequence number and timestamp (RFC 7667 §3.2.1 translator), as
//!   `MediaLeg::relay_from` does for the same codec on both legs.
//! - `relay + record path`: what a relayed packet costs in all, since the recording still
//!   needs its audio: parse, reorder buffer push + pop, G.711 decode to 16 kHz, rewrite.
//! - `transcode X→Y`: parse, reorder push + pop, decode to 16 kHz (that PCM also feeds the
//!   recording), encode in the other leg's codec, packetize. Opus is 16 kHz mono VoIP with
//!   in-band FEC (the crate's encoder settings); G.711 is resampled 8 ↔ 16 kHz. The `50
//!   calls in turn` variants cycle through 50 codec states, as a server with 50 calls does.
//! - `opus encode … complexity N`: libopus alone at its default complexity (what the crate
//!   uses) and at lower ones, the lever on the PCMU→Opus direction.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn in this bench binary"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use callmux_media::codec::{AudioDecoder, AudioEncoder};
use callmux_media::reorder::{Released, ReorderBuffer};
use callmux_media::rtp::{parse_rtp, write_rtp_packet, RtpPacketizer};
use callmux_media::sdp::PayloadFormat;
use callmux_media::tone::ToneGenerator;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Packets in the looped input stream (2 s): codecs see varying audio, not one frame.
const STREAM: usize = 100;
/// Calls whose codec states take turns in the `in turn` benches.
const CALLS: usize = 50;

/// Two seconds of one leg's RTP stream: a tone in `format`, 20 ms per packet.
fn stream(format: &PayloadFormat, hz: f32, seed: u64) -> Vec<Vec<u8>> {
    let mut tone = ToneGenerator::new(hz, -12.0, 16_000);
    let mut enc = AudioEncoder::new(format).expect("encoder");
    let mut pk = RtpPacketizer::new(format.pt, seed);
    (0..STREAM)
        .map(|_| {
            let mut frame = [0i16; 320];
            tone.fill(&mut frame);
            let mut payload = Vec::new();
            let advance = enc.encode(&frame, &mut payload).expect("encode");
            let mut wire = Vec::new();
            pk.write(&payload, false, advance, &mut wire);
            wire
        })
        .collect()
}

/// The source leg's numbers mapped onto ours, as a relay keeps them.
struct Rewrite {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    out: Vec<u8>,
}

impl Rewrite {
    fn new() -> Self {
        Self {
            ssrc: 0x1234_5678,
            seq_offset: 4711,
            ts_offset: 0x0bad_cafe,
            out: Vec::with_capacity(1500),
        }
    }

    /// Parses `wire` and writes it again with our SSRC and mapped numbers.
    fn relay(&mut self, wire: &[u8]) -> usize {
        let Ok(rtp) = parse_rtp(wire) else { return 0 };
        write_rtp_packet(
            rtp.payload_type,
            rtp.marker,
            rtp.sequence.wrapping_add(self.seq_offset),
            rtp.timestamp.wrapping_add(self.ts_offset),
            self.ssrc,
            rtp.payload,
            &mut self.out,
        );
        self.out.len()
    }
}

/// One direction of a bridge: the receiving leg's reorder buffer and decoder, and the
/// sending leg's encoder and packetizer.
struct Direction {
    input: Vec<Vec<u8>>,
    next: usize,
    /// Sequence number and timestamp written into the next incoming packet.
    seq: u16,
    ts: u32,
    /// RTP ticks per 20 ms of the incoming codec.
    ticks: u32,
    reorder: ReorderBuffer,
    decoder: AudioDecoder,
    encoder: Option<AudioEncoder>,
    packetizer: RtpPacketizer,
    rewrite: Rewrite,
    pcm: Vec<i16>,
    payload: Vec<u8>,
    out: Vec<u8>,
    t0: Instant,
    n: u64,
}

impl Direction {
    /// `to = None`: the same codec on both legs (relay).
    fn new(from: &PayloadFormat, to: Option<&PayloadFormat>) -> Self {
        Self {
            input: stream(from, 440.0, 1),
            next: 0,
            seq: 1,
            ts: 0,
            ticks: from.clock_rate / 50,
            reorder: ReorderBuffer::new(Duration::from_millis(60)),
            decoder: AudioDecoder::new(from).expect("decoder"),
            encoder: to.map(|f| AudioEncoder::new(f).expect("encoder")),
            packetizer: RtpPacketizer::new(to.map_or(from.pt, |f| f.pt), 2),
            rewrite: Rewrite::new(),
            pcm: Vec::with_capacity(1920),
            payload: Vec::with_capacity(1500),
            out: Vec::with_capacity(1500),
            t0: Instant::now(),
            n: 0,
        }
    }

    /// One packet through the bridge; returns the bytes sent to the other leg.
    fn packet(&mut self) -> usize {
        // The payloads loop; the header numbers keep going, as a live stream's do (two
        // stores of a few bytes), and time moves 20 ms per packet: the reorder buffer
        // releases each packet at once, in order, as on a clean network.
        let wire = &mut self.input[self.next];
        self.next = (self.next + 1) % STREAM;
        wire[2..4].copy_from_slice(&self.seq.to_be_bytes());
        wire[4..8].copy_from_slice(&self.ts.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.ticks);
        let wire = &*wire;
        let now = self.t0 + Duration::from_millis(self.n * 20);
        self.n += 1;
        let Ok(view) = parse_rtp(wire) else { return 0 };
        self.reorder.push(&view, now);
        let mut sent = 0;
        while let Some(rel) = self.reorder.pop(now) {
            let Released::Packet { payload, .. } = rel else {
                continue;
            };
            self.pcm.clear();
            if self.decoder.decode(payload, &mut self.pcm).is_err() {
                continue;
            }
            match self.encoder.as_mut() {
                // Relay: the decoded audio only feeds the recording; the packet goes on.
                None => sent += self.rewrite.relay(wire),
                Some(enc) => {
                    self.payload.clear();
                    let Ok(advance) = enc.encode(&self.pcm, &mut self.payload) else {
                        continue;
                    };
                    self.packetizer
                        .write(&self.payload, false, advance, &mut self.out);
                    sent += self.out.len();
                }
            }
        }
        black_box(&self.pcm);
        sent
    }
}

fn bench_relay(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge packet");
    g.throughput(Throughput::Elements(1));
    let input = stream(&PayloadFormat::pcmu(), 440.0, 1);
    let mut rw = Rewrite::new();
    let mut i = 0;
    g.bench_function("relay rewrite (PCMU)", |b| {
        b.iter(|| {
            i = (i + 1) % STREAM;
            rw.relay(black_box(&input[i]))
        })
    });
    let mut d = Direction::new(&PayloadFormat::pcmu(), None);
    assert!(d.packet() > 0, "relay: nothing sent");
    g.bench_function("relay + record path (PCMU)", |b| b.iter(|| d.packet()));
    g.finish();
}

fn bench_transcode(c: &mut Criterion) {
    let pcmu = PayloadFormat::pcmu();
    let pcma = PayloadFormat::pcma();
    let opus = PayloadFormat::opus(111);
    let mut g = c.benchmark_group("bridge packet");
    g.throughput(Throughput::Elements(1));
    for (name, from, to) in [
        ("transcode PCMU->PCMA", &pcmu, &pcma),
        ("transcode PCMA->PCMU", &pcma, &pcmu),
        ("transcode PCMU->Opus", &pcmu, &opus),
        ("transcode Opus->PCMU", &opus, &pcmu),
    ] {
        let mut d = Direction::new(from, Some(to));
        assert!(d.packet() > 0, "{name}: nothing sent");
        g.bench_function(name, |b| b.iter(|| d.packet()));
    }
    // A server runs one codec state per call: 50 calls taking turns, so each packet finds its
    // encoder's state cold, as in the load test, unlike one call's hot loop above.
    for (name, from, to) in [
        ("transcode PCMU->Opus, 50 calls in turn", &pcmu, &opus),
        ("transcode Opus->PCMU, 50 calls in turn", &opus, &pcmu),
    ] {
        let mut calls: Vec<Direction> =
            (0..CALLS).map(|_| Direction::new(from, Some(to))).collect();
        assert!(
            calls.iter_mut().all(|d| d.packet() > 0),
            "{name}: nothing sent"
        );
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % CALLS;
                calls[i].packet()
            })
        });
    }
    g.finish();
}

/// What the Opus encoder costs at other complexities (libopus directly, with the crate's
/// settings otherwise: 16 kHz mono VoIP, in-band FEC, 10 % expected loss): the lever on the
/// PCMU→Opus direction, which dominates a transcoded bridge.
fn bench_opus_complexity(c: &mut Criterion) {
    use audiopus::coder::Encoder;
    use audiopus::{Application, Channels, SampleRate};
    let mut tone = ToneGenerator::new(440.0, -12.0, 16_000);
    let frames: Vec<[i16; 320]> = (0..STREAM)
        .map(|_| {
            let mut f = [0i16; 320];
            tone.fill(&mut f);
            f
        })
        .collect();
    let mut g = c.benchmark_group("opus encode 20 ms at 16 kHz");
    g.throughput(Throughput::Elements(1));
    let probe = Encoder::new(SampleRate::Hz16000, Channels::Mono, Application::Voip).expect("opus");
    let default = probe.complexity().expect("complexity");
    for complexity in [default, 5, 1] {
        let mut enc =
            Encoder::new(SampleRate::Hz16000, Channels::Mono, Application::Voip).expect("opus");
        enc.set_inband_fec(true).expect("fec");
        enc.set_packet_loss_perc(10).expect("loss");
        enc.set_complexity(complexity).expect("complexity");
        let mut out = [0u8; 1500];
        let mut i = 0;
        let name = if complexity == default {
            format!("complexity {complexity} (libopus default, as callmux encodes)")
        } else {
            format!("complexity {complexity}")
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % STREAM;
                enc.encode(black_box(&frames[i]), &mut out).expect("encode")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_relay, bench_transcode, bench_opus_complexity);
criterion_main!(benches);
