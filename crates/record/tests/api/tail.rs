//! A paused G.711 stream's decoder tail (`push_tail`): the real decoder's last samples are
//! recorded right after the stream, a stream that goes on after the pause is seamless
//! across the joint, and a tail that comes after its positions were written is dropped and
//! counted — all on a simulated clock, against decoding the same packets offline.

use std::time::{Duration, Instant};

use callmux_media::codec::g711::linear_to_ulaw;
use callmux_media::resample::UP_RING_OUT;
use callmux_media::{AudioDecoder, PayloadFormat};
use callmux_record::{ChannelLayout, LegKey, LegStats, RecordingTimeline, TimelineConfig};

const LEG: LegKey = LegKey(1);
/// What the server waits for before it flushes the decoder (`media_leg::TAIL_AFTER`).
const TAIL_AFTER: Duration = Duration::from_millis(120);

/// One RTP packet of a µ-law stream, with its arrival (since the test's start).
#[derive(Clone)]
struct Rtp {
    at: Duration,
    ssrc: u32,
    ts: u32,
    payload: Vec<u8>,
}

/// `count` packets of a 700 Hz µ-law tone from packet `first` of the tone on, 20 ms apart
/// from `start`, timestamps from `ts0` (160 a packet).
fn tone(ssrc: u32, ts0: u32, first: usize, count: usize, start: Duration) -> Vec<Rtp> {
    (0..count)
        .map(|k| {
            let payload = (0..160)
                .map(|i| {
                    let n = ((first + k) * 160 + i) as f64;
                    let x = 12_000.0 * (2.0 * std::f64::consts::PI * 700.0 * n / 8000.0).sin();
                    linear_to_ulaw(x as i16)
                })
                .collect();
            Rtp {
                at: start + Duration::from_millis(20 * k as u64),
                ssrc,
                ts: ts0.wrapping_add(160 * k as u32),
                payload,
            }
        })
        .collect()
}

/// Decodes packets in one run (as if nothing paused), then flushes: what the leg sent.
fn offline(packets: &[Rtp]) -> Vec<i16> {
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::new();
    for p in packets {
        dec.decode(&p.payload, &mut out).unwrap();
    }
    dec.flush(&mut out);
    out
}

/// A mono timeline starting at `t0` with [`LEG`] on it.
fn mono(t0: Instant) -> RecordingTimeline {
    let mut tl = RecordingTimeline::new(ChannelLayout::Mono, TimelineConfig::default(), t0);
    tl.add_leg(LEG, t0);
    tl
}

/// Pushes `packets` without pauses or tails: each decoded by `dec` and pushed on arrival,
/// with a drain into `out` just before.
fn push_decoded(
    tl: &mut RecordingTimeline,
    t0: Instant,
    dec: &mut AudioDecoder,
    packets: &[Rtp],
    out: &mut Vec<i16>,
) {
    let mut pcm = Vec::new();
    for p in packets {
        tl.drain(t0 + p.at, out);
        pcm.clear();
        dec.decode(&p.payload, &mut pcm).unwrap();
        tl.push_received(LEG, p.ssrc, p.ts, 8000, t0 + p.at, &pcm);
    }
}

/// Drives a mono timeline the way the server's call task does: each packet decoded and
/// pushed on arrival, a drain every 10 ms and after each packet, and (when `tails`) the
/// decoder flushed into `push_tail` once no packet came for [`TAIL_AFTER`]. A new SSRC
/// gets a fresh decoder. Returns the channel and the leg's counters.
fn record(packets: &[Rtp], tails: bool, end: Duration) -> (Vec<i16>, LegStats) {
    let t0 = Instant::now();
    let mut tl = mono(t0);
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::new();
    let mut pcm = Vec::new();
    // (ssrc, next timestamp, arrival of the last packet) while the decoder holds a tail.
    let mut pending: Option<(u32, u32, Duration)> = None;
    let mut last_ssrc = None;
    let mut next = packets.iter().peekable();
    let mut now = Duration::ZERO;
    while now <= end {
        if let Some((ssrc, ts, _)) = pending.filter(|p| tails && now >= p.2 + TAIL_AFTER) {
            tl.drain(t0 + now, &mut out);
            pcm.clear();
            dec.flush(&mut pcm);
            tl.push_tail(LEG, ssrc, ts, 8000, &pcm);
            pending = None;
        }
        while let Some(p) = next.next_if(|p| p.at <= now) {
            if last_ssrc.is_some_and(|s| s != p.ssrc) {
                dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
            }
            last_ssrc = Some(p.ssrc);
            pcm.clear();
            dec.decode(&p.payload, &mut pcm).unwrap();
            tl.push_received(LEG, p.ssrc, p.ts, 8000, t0 + p.at, &pcm);
            pending = Some((p.ssrc, p.ts.wrapping_add(160), p.at));
        }
        tl.drain(t0 + now, &mut out);
        now += Duration::from_millis(1);
    }
    tl.finish(t0 + end, &mut out);
    let stats = tl.stats().legs[0].clone();
    (out, stats)
}

/// Timeline position (16 kHz) of a time since the start.
fn pos(d: Duration) -> usize {
    (d.as_micros() * 16 / 1000) as usize
}

#[test]
fn a_stream_that_pauses_is_recorded_whole() {
    // One second of tone, then nothing: the recording holds every sample the decoder makes
    // of it, the last 1.94 ms of delayed audio and the filter's ringing included.
    let packets = tone(7, 1000, 0, 50, Duration::from_millis(40));
    let want = offline(&packets);
    assert_eq!(want.len(), 16_000 + UP_RING_OUT);
    let (out, stats) = record(&packets, true, Duration::from_secs(2));
    let at = pos(Duration::from_millis(40));
    assert!(
        out[..at].iter().all(|&s| s == 0),
        "nothing before the stream"
    );
    assert_eq!(&out[at..at + want.len()], &want[..], "the stream, exactly");
    assert!(
        out[at + want.len()..].iter().all(|&s| s == 0),
        "nothing after"
    );
    assert_eq!(stats.tail_samples, UP_RING_OUT as u64);
    assert_eq!(stats.dropped_tail_samples, 0);
    assert_eq!((stats.late_samples, stats.duplicate_frames), (0, 0));

    // Without the tail the recording lacks the end of the stream: what this fixes.
    let (without, _) = record(&packets, false, Duration::from_secs(2));
    assert_eq!(&without[at..at + 16_000], &want[..16_000]);
    let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let missing = energy(&want[16_000..]) / energy(&want);
    assert!(missing > 0.001, "the tail holds {missing} of the energy");
    assert!(without[at + 16_000..].iter().all(|&s| s == 0));
}

#[test]
fn a_stream_that_goes_on_after_a_pause_is_seamless() {
    // 500 ms of tone; then 150 ms without packets (the tail is flushed after 120 ms); then
    // the rest of the tone with contiguous timestamps: what was held up arrives in a burst,
    // then the packets come on time again. The tail and the fresh decoder's start add up
    // to the unbroken decode across the joint.
    let mut packets = tone(7, 1000, 0, 50, Duration::from_millis(40));
    for p in &mut packets[25..33] {
        p.at = Duration::from_millis(690);
    }
    let want = offline(&packets);
    let end = Duration::from_secs(2);
    let (with, stats) = record(&packets, true, end);
    let (without, _) = record(&packets, false, end);
    assert_eq!(
        stats.tail_samples,
        2 * UP_RING_OUT as u64,
        "the tails after the pause and at the end were placed"
    );
    assert_eq!(
        (stats.duplicate_frames, stats.late_frames, stats.reanchors),
        (0, 0, 0),
        "the packet after the pause is neither a duplicate, late nor a jump"
    );
    let at = pos(Duration::from_millis(40));
    let joint = at + 25 * 320;
    // Up to the end of the stream (after it, only `with` has the final tail).
    let end_of_stream = at + 50 * 320;
    for (k, (&a, &b)) in with[..end_of_stream]
        .iter()
        .zip(&without[..end_of_stream])
        .enumerate()
    {
        assert!(
            (i32::from(a) - i32::from(b)).abs() <= 1,
            "sample {k} ({} from the joint): {a} with the tail, {b} without",
            k as i64 - joint as i64
        );
    }
    for (k, &w) in want.iter().enumerate() {
        let got = i32::from(with[at + k]);
        assert!((got - i32::from(w)).abs() <= 1, "sample {k}: {got} vs {w}");
    }
    assert!(with[at + want.len()..].iter().all(|&s| s == 0));
}

#[test]
fn a_tail_after_its_positions_were_written_is_dropped_and_counted() {
    let packets = tone(7, 1000, 0, 25, Duration::from_millis(40));
    let t0 = Instant::now();
    let mut tl = mono(t0);
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::new();
    push_decoded(&mut tl, t0, &mut dec, &packets, &mut out);
    // The stream ended at 540 ms; 400 ms later (past `stall_hold`) its end is written.
    let late = Duration::from_millis(940);
    tl.drain(t0 + late, &mut out);
    let end_of_stream = pos(Duration::from_millis(40)) + 25 * 320;
    assert!(out.len() > end_of_stream + UP_RING_OUT);
    let mut pcm = Vec::new();
    dec.flush(&mut pcm);
    tl.push_tail(LEG, 7, 1000 + 25 * 160, 8000, &pcm);
    tl.finish(t0 + Duration::from_secs(2), &mut out);
    let s = &tl.stats().legs[0];
    assert_eq!(s.tail_samples, 0);
    assert_eq!(s.dropped_tail_samples, UP_RING_OUT as u64);
    assert!(
        out[end_of_stream..].iter().all(|&v| v == 0),
        "the late tail went nowhere"
    );

    // A tail that does not follow the stream's newest packet (wrong SSRC, or a timestamp
    // that is not right after it) is dropped and counted too, never placed.
    let mut tl = mono(t0);
    let mut out = Vec::new();
    for p in &packets {
        tl.drain(t0 + p.at, &mut out);
        tl.push_received(LEG, p.ssrc, p.ts, 8000, t0 + p.at, &[100; 320]);
    }
    tl.push_tail(LEG, 8, 1000 + 25 * 160, 8000, &pcm);
    tl.push_tail(LEG, 7, 1000 + 24 * 160, 8000, &pcm);
    tl.push_tail(LEG, 7, 1000 + 200 * 160, 8000, &pcm);
    tl.finish(t0 + Duration::from_secs(2), &mut out);
    let s = &tl.stats().legs[0];
    assert_eq!(s.dropped_tail_samples, 3 * UP_RING_OUT as u64);
    assert!(out[end_of_stream..].iter().all(|&v| v == 0));
}

#[test]
fn a_new_stream_after_a_pause_leaves_the_tail_after_the_old_one() {
    // 500 ms of tone, a pause (the tail is flushed), then a new SSRC with unrelated
    // timestamps: the old stream is whole, tail included, and the new one is anchored at
    // its own arrival.
    let old = tone(7, 1000, 0, 25, Duration::from_millis(40));
    let new = tone(9, 555_555, 0, 25, Duration::from_millis(800));
    let mut packets = old.clone();
    packets.extend(new.iter().cloned());
    let (out, stats) = record(&packets, true, Duration::from_secs(3));
    let want_old = offline(&old);
    let want_new = offline(&new);
    let a = pos(Duration::from_millis(40));
    let b = pos(Duration::from_millis(800));
    assert_eq!(&out[a..a + want_old.len()], &want_old[..]);
    assert!(out[a + want_old.len()..b].iter().all(|&s| s == 0));
    assert_eq!(&out[b..b + want_new.len()], &want_new[..]);
    assert_eq!(stats.tail_samples, 2 * UP_RING_OUT as u64);
    assert_eq!(stats.ssrc_changes, 1);

    // The same with the old stream's tail pushed only after the new SSRC began (its
    // anchor still being chosen): placed after the old stream, not relative to the new.
    let t0 = Instant::now();
    let mut tl = mono(t0);
    let mut dec = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut out = Vec::new();
    push_decoded(&mut tl, t0, &mut dec, &old, &mut out);
    let mut tail = Vec::new();
    dec.flush(&mut tail);
    let first_new = &new[0];
    let at = Duration::from_millis(560);
    let mut fresh = AudioDecoder::new(&PayloadFormat::pcmu()).unwrap();
    let mut pcm = Vec::new();
    fresh.decode(&first_new.payload, &mut pcm).unwrap();
    tl.drain(t0 + at, &mut out);
    tl.push_received(LEG, 9, first_new.ts, 8000, t0 + at, &pcm);
    tl.push_tail(LEG, 7, 1000 + 25 * 160, 8000, &tail);
    tl.finish(t0 + Duration::from_secs(2), &mut out);
    assert_eq!(&out[a..a + want_old.len()], &want_old[..]);
    assert_eq!(tl.stats().legs[0].tail_samples, UP_RING_OUT as u64);
}
