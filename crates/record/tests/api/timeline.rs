//! Timeline behaviour under loss, jitter, reordering, DTX, SSRC changes, wrap-around,
//! drift, late packets, mixing and routing — all on a simulated clock.

use std::time::{Duration, Instant};

use callmux_record::{ChannelLayout, LegKey, RecordingTimeline, TimelineConfig};
use proptest::prelude::*;

use super::netem::{constant, merge, Net, Packet, Sender};

fn value(k: usize) -> i16 {
    (k % 997 + 1) as i16
}

/// Drives a timeline through arrivals (draining before each push) and finishes at `end`.
fn run(
    tl: &mut RecordingTimeline,
    t0: Instant,
    arrivals: &[(Duration, u32, Packet)],
    end: Duration,
) -> Vec<i16> {
    let mut out = Vec::new();
    for (at, leg, p) in arrivals {
        tl.drain(t0 + *at, &mut out);
        tl.push_received(LegKey(*leg), p.ssrc, p.ts, p.clock_rate, t0 + *at, &p.pcm);
    }
    tl.finish(t0 + end, &mut out);
    out
}

fn pos(d: Duration) -> usize {
    (d.as_micros() * 16 / 1000) as usize
}

fn mono(layout: ChannelLayout, t0: Instant) -> RecordingTimeline {
    let mut tl = RecordingTimeline::new(layout, TimelineConfig::default(), t0);
    tl.add_leg(LegKey(1), t0);
    tl
}

/// `count` packets from `sender`, packet k holding `value(k)` throughout.
fn numbered(sender: Sender, count: usize) -> Vec<Packet> {
    sender.packets(count, |k| constant(value(k)))
}

/// `packets` less those whose index is in `gap` (a sender pausing, as in DTX).
fn without(packets: Vec<Packet>, gap: std::ops::Range<usize>) -> Vec<Packet> {
    packets
        .into_iter()
        .filter(|p| !gap.contains(&p.index))
        .collect()
}

/// Extra network delay of `ms` for the packets `which` picks, none for the rest.
fn delayed(ms: u64, which: impl Fn(usize) -> bool) -> impl Fn(usize) -> Duration {
    move |k| {
        if which(k) {
            Duration::from_millis(ms)
        } else {
            Duration::ZERO
        }
    }
}

/// A network of `delay_ms` minimum delay plus up to `jitter_ms` of seeded jitter, no loss.
fn jittered(delay_ms: u64, jitter_ms: u64, seed: u64) -> Net {
    Net {
        jitter: Duration::from_millis(jitter_ms),
        seed,
        ..Net::fixed(delay_ms)
    }
}

/// Leg 1 alone on `layout`, receiving `delivered` (see [`run`]) and finished `end_secs`
/// after the start: the timeline (for its stats) and its output.
fn run_one(
    layout: ChannelLayout,
    delivered: Vec<(Duration, Packet)>,
    end_secs: u64,
) -> (RecordingTimeline, Vec<i16>) {
    let t0 = Instant::now();
    let mut tl = mono(layout, t0);
    let out = run(
        &mut tl,
        t0,
        &merge(vec![(1, delivered)]),
        Duration::from_secs(end_secs),
    );
    (tl, out)
}

/// Checks packet k sits at `anchor + 320k` (exactly its samples) or is silent when absent.
fn check_exact(out: &[i16], anchor: usize, count: usize, present: impl Fn(usize) -> bool) {
    assert!(
        out[..anchor].iter().all(|&s| s == 0),
        "audio before the first packet"
    );
    for k in 0..count {
        let seg = &out[anchor + 320 * k..anchor + 320 * (k + 1)];
        let want = if present(k) { value(k) } else { 0 };
        assert!(
            seg.iter().all(|&s| s == want),
            "packet {k}: want {want}, got {:?}",
            &seg[..4]
        );
    }
}

#[test]
fn five_percent_loss_leaves_exact_silent_gaps() {
    let packets = numbered(Sender::new(11, 1234, 100), 500);
    let net = Net {
        loss: 0.05,
        seed: 7,
        ..Net::fixed(30)
    };
    let delivered = net.deliver(packets, true, |_| Duration::ZERO);
    let received: Vec<usize> = delivered.iter().map(|(_, p)| p.index).collect();
    let lost = 500 - received.len();
    assert!((10..50).contains(&lost), "emulator lost {lost}");
    let (tl, out) = run_one(ChannelLayout::Mono, delivered, 11);
    check_exact(&out, pos(Duration::from_millis(150)), 500, |k| {
        received.contains(&k)
    });
    let s = &tl.stats().legs[0];
    assert_eq!(s.frames_placed as usize, received.len());
    assert_eq!((s.late_frames, s.reanchors, s.drift_corrections), (0, 0, 0));
    let trailing_lost = (0..500).rev().take_while(|k| !received.contains(k)).count();
    assert_eq!(s.gap_samples as usize, (lost - trailing_lost) * 320);
}

#[test]
fn fifty_ms_jitter_with_reordering_places_every_packet() {
    let packets = numbered(Sender::new(5, 0, 0), 1000);
    let net = jittered(40, 50, 3);
    let delivered = net.deliver(packets, true, |_| Duration::ZERO);
    let reordered = delivered
        .windows(2)
        .filter(|w| w[1].1.index < w[0].1.index)
        .count();
    assert!(reordered > 100, "only {reordered} reorders");
    let (tl, out) = run_one(ChannelLayout::Multi(1), delivered, 21);
    check_exact(&out, pos(Duration::from_millis(60)), 1000, |_| true);
    let s = &tl.stats().legs[0];
    assert_eq!(
        (
            s.frames_placed,
            s.late_frames,
            s.drift_corrections,
            s.gap_samples
        ),
        (1000, 0, 0, 0)
    );
}

#[test]
fn a_jittered_first_packet_does_not_anchor_the_source() {
    let packets = numbered(Sender::new(5, 0, 0), 500);
    let net = jittered(40, 2, 9);
    // The anchoring packet is 18 ms late (still first); the rest arrive within 2 ms of the
    // minimum delay.
    let extra = delayed(18, |k| k == 0);
    let delivered = net.deliver(packets, true, extra);
    let (tl, out) = run_one(ChannelLayout::Multi(1), delivered, 11);
    let s = &tl.stats().legs[0];
    // The anchor is the earliest offset of the anchor window, not the first packet's: no
    // correction is needed later, so nothing is cut.
    assert_eq!(
        (s.drift_corrections, s.cut_samples, s.frames_placed),
        (0, 0, 500),
        "{s:?}"
    );
    // From the first packet on, packet k sits within 3 ms of 60 ms + 20k ms.
    for k in [0usize, 1, 200, 300, 499] {
        let at = out.iter().position(|&v| v == value(k)).unwrap();
        let want = pos(Duration::from_millis(60 + 20 * k as u64));
        assert!(at.abs_diff(want) <= 48, "packet {k} at {at}, want {want}");
    }
}

#[test]
fn dtx_pause_of_two_seconds_is_two_seconds_of_silence_not_a_jump() {
    let packets = numbered(Sender::new(1, 777, 0), 300);
    let kept = without(packets, 100..200);
    let delivered = Net::fixed(20).deliver(kept, true, |_| Duration::ZERO);
    let (tl, out) = run_one(ChannelLayout::Mono, delivered, 7);
    check_exact(&out, pos(Duration::from_millis(40)), 300, |k| {
        !(100..200).contains(&k)
    });
    let s = &tl.stats().legs[0];
    assert_eq!((s.reanchors, s.drift_corrections), (0, 0));
    assert_eq!(s.gap_samples, 32_000);
}

#[test]
fn a_one_second_gap_is_one_second_of_silence() {
    let packets = numbered(Sender::new(1, 0, 0), 150);
    let kept = without(packets, 50..100);
    let delivered = Net::fixed(20).deliver(kept, true, |_| Duration::ZERO);
    let (_, out) = run_one(ChannelLayout::Mono, delivered, 4);
    let anchor = pos(Duration::from_millis(40));
    let silent = &out[anchor + 50 * 320..anchor + 100 * 320];
    assert_eq!(silent.len(), 16_000);
    assert!(silent.iter().all(|&s| s == 0));
    assert_eq!(out[anchor + 100 * 320], value(100));
    assert_eq!(out[anchor + 50 * 320 - 1], value(49));
}

#[test]
fn ssrc_change_reanchors_without_a_seam() {
    let a = numbered(Sender::new(1, 5000, 0), 100);
    let mut b = numbered(Sender::new(2, 3_000_000_000, 0), 200);
    b.drain(..100);
    let delivered =
        Net::fixed(30).deliver(a.into_iter().chain(b).collect(), true, |_| Duration::ZERO);
    let (tl, out) = run_one(ChannelLayout::Mono, delivered, 5);
    check_exact(&out, pos(Duration::from_millis(50)), 200, |_| true);
    let s = &tl.stats().legs[0];
    assert_eq!((s.ssrc_changes, s.reanchors), (1, 1));
}

#[test]
fn rtp_timestamp_wraps_around_seamlessly() {
    let mut sender = Sender::new(9, u32::MAX - 160 * 50 + 7, 0);
    sender.clock_rate = 8000;
    let packets = numbered(sender, 200);
    assert!(packets[100].ts < packets[0].ts);
    let net = jittered(10, 30, 5);
    let delivered = net.deliver(packets, true, |_| Duration::ZERO);
    let (tl, out) = run_one(ChannelLayout::Mono, delivered, 5);
    check_exact(&out, pos(Duration::from_millis(30)), 200, |_| true);
    assert_eq!(tl.stats().legs[0].reanchors, 0);
}

#[test]
fn late_packet_is_dropped_and_counted() {
    let packets = numbered(Sender::new(1, 0, 0), 200);
    let extra = delayed(200, |k| k == 50);
    let delivered = Net::fixed(20).deliver(packets, true, extra);
    let (tl, out) = run_one(ChannelLayout::Mono, delivered, 5);
    check_exact(&out, pos(Duration::from_millis(40)), 200, |k| k != 50);
    let s = &tl.stats().legs[0];
    assert_eq!((s.late_frames, s.late_samples, s.late_resyncs), (1, 320, 0));
}

#[test]
fn a_step_up_in_network_delay_resyncs_after_three_late_packets() {
    let packets = numbered(Sender::new(1, 0, 0), 300);
    let extra = delayed(300, |k| k >= 100);
    let delivered = Net::fixed(20).deliver(packets, true, extra);
    let (tl, out) = run_one(ChannelLayout::Mono, delivered, 8);
    let s = &tl.stats().legs[0];
    assert_eq!((s.late_frames, s.late_resyncs), (2, 1), "{s:?}");
    // From the third late packet on, audio follows the new delay: packet k at 340 + 20k ms.
    for k in [102usize, 150, 299] {
        let at = out.iter().position(|&v| v == value(k)).unwrap();
        assert_eq!(
            at,
            pos(Duration::from_millis(340 + 20 * k as u64)),
            "packet {k}"
        );
    }
}

/// Ten minutes, two legs, leg 2's clock 0.1 % fast, 20 ms jitter: markers stay within 20 ms.
#[test]
fn ten_minutes_with_sender_drift_stays_within_one_frame() {
    ten_minutes_with_drift(1.001);
}

/// The same with leg 2's clock 0.1 % slow: the (10 s) minimum window lags a slowing source,
/// yet its markers stay within 20 ms.
#[test]
fn ten_minutes_with_a_slow_sender_clock_stays_within_one_frame() {
    ten_minutes_with_drift(0.999);
}

/// Ten minutes, leg 2's clock running at `speed` × real time, 20 ms jitter on both legs.
fn ten_minutes_with_drift(speed: f64) {
    let t0 = Instant::now();
    let minutes = 10usize;
    let count = minutes * 60 * 50;
    let marker_at = |m: usize| 30.0 + 60.0 * m as f64; // true seconds
    let audio = |speed: f64| {
        move |k: usize| -> Vec<i16> {
            (0..320)
                .map(|i| {
                    let n = (k * 320 + i) as f64; // sender sample index
                    let t = n / (16_000.0 * speed); // true time of capture
                    let hit = (0..minutes).any(|m| (marker_at(m)..marker_at(m) + 0.1).contains(&t));
                    if hit {
                        if i % 8 < 4 {
                            8000
                        } else {
                            -8000
                        }
                    } else {
                        0
                    }
                })
                .collect()
        }
    };
    let a = Sender::new(1, 0, 0).packets(count, audio(1.0));
    let drifting = Sender {
        speed,
        ..Sender::new(2, 99, 0)
    };
    let b = drifting.packets(count, audio(speed));
    let net_a = jittered(40, 20, 11);
    let net_b = jittered(40, 20, 12);
    let arrivals = merge(vec![
        (1, net_a.deliver(a, false, |_| Duration::ZERO)),
        (2, net_b.deliver(b, false, |_| Duration::ZERO)),
    ]);
    let mut tl = RecordingTimeline::new(ChannelLayout::Multi(2), TimelineConfig::default(), t0);
    tl.add_leg(LegKey(1), t0);
    tl.add_leg(LegKey(2), t0);
    let out = run(&mut tl, t0, &arrivals, Duration::from_secs(601));
    for m in 0..minutes {
        // A sample captured at t lands at t + 20 ms (packetisation) + 40 ms (minimum delay).
        let truth = pos(Duration::from_secs_f64(marker_at(m) + 0.060));
        for ch in 0..2 {
            let from = truth - 16_000;
            let at = (from..truth + 16_000)
                .find(|&i| out[2 * i + ch].abs() > 1000)
                .unwrap();
            let err_ms = at.abs_diff(truth) as f64 / 16.0;
            assert!(
                err_ms <= 20.0,
                "marker {m} channel {ch}: off by {err_ms} ms"
            );
        }
    }
    let s = tl.stats();
    assert!(s.legs[1].drift_corrections >= 40, "{:?}", s.legs[1]);
    assert_eq!(s.legs[0].late_frames + s.legs[1].late_frames, 0);
    assert_eq!(s.legs[1].reanchors, 0);
}

#[test]
fn mono_mix_saturates_instead_of_wrapping() {
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(ChannelLayout::Mono, TimelineConfig::default(), t0);
    tl.add_leg(LegKey(1), t0);
    tl.add_leg(LegKey(2), t0);
    for k in 0..20u32 {
        let at = t0 + Duration::from_millis(100 + 20 * u64::from(k));
        let v = if k < 10 { i16::MAX } else { i16::MIN };
        tl.push_received(LegKey(1), 1, 160 * k, 8000, at, &constant(v));
        tl.push_received(LegKey(2), 2, 160 * k, 8000, at, &constant(v));
    }
    let mut out = Vec::new();
    tl.finish(t0 + Duration::from_secs(1), &mut out);
    let base = pos(Duration::from_millis(100));
    assert!(out[base..base + 3200].iter().all(|&s| s == i16::MAX));
    assert!(out[base + 3200..base + 6400].iter().all(|&s| s == i16::MIN));
    assert_eq!(tl.stats().channels[0].clipped_samples, 6400);
}

#[test]
fn multi_three_with_four_legs_mixes_the_third_and_fourth() {
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(ChannelLayout::Multi(3), TimelineConfig::default(), t0);
    let chans: Vec<u16> = (1..=4).map(|l| tl.add_leg(LegKey(l), t0)).collect();
    assert_eq!(chans, [0, 1, 2, 2]);
    for k in 0..10u32 {
        let at = t0 + Duration::from_millis(100 + 20 * u64::from(k));
        for l in 1..=4u32 {
            tl.push_received(LegKey(l), l, 160 * k, 8000, at, &constant(100 * l as i16));
        }
        tl.push_played(LegKey(1), at, &constant(7));
    }
    let mut out = Vec::new();
    tl.finish(t0 + Duration::from_millis(400), &mut out);
    let f = pos(Duration::from_millis(150));
    assert_eq!(&out[3 * f..3 * f + 3], &[100, 200, 700]);
    assert_eq!(
        tl.stats().legs[0].played_frames,
        0,
        "played audio is not recorded in Multi"
    );
}

#[test]
fn split_routes_caller_voice_left_and_what_the_caller_heard_right() {
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(ChannelLayout::Split, TimelineConfig::default(), t0);
    assert_eq!(tl.add_leg(LegKey(1), t0), 0);
    assert_eq!(tl.add_leg(LegKey(2), t0), 1);
    for k in 0..10u32 {
        let at = t0 + Duration::from_millis(100 + 20 * u64::from(k));
        tl.push_received(LegKey(1), 1, 160 * k, 8000, at, &constant(100));
        tl.push_received(LegKey(2), 2, 160 * k, 8000, at, &constant(200));
        tl.push_played(LegKey(1), at, &constant(7));
        tl.push_played(LegKey(2), at, &constant(9));
    }
    let mut out = Vec::new();
    tl.finish(t0 + Duration::from_millis(400), &mut out);
    let f = pos(Duration::from_millis(150));
    assert_eq!(&out[2 * f..2 * f + 2], &[100, 207]);
    let stats = tl.stats();
    assert_eq!(
        (stats.legs[0].played_frames, stats.legs[1].played_frames),
        (10, 0)
    );
}

#[test]
fn played_audio_pushed_in_one_burst_is_kept_whole_and_pauses_stay_pauses() {
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(ChannelLayout::Mono, TimelineConfig::default(), t0);
    tl.add_leg(LegKey(1), t0);
    // A 400 ms beep pushed at once at 1 s, then a 20 ms frame at 3 s (draining at least
    // every 100 ms, as `Recording::poll` is driven).
    let mut out = Vec::new();
    for ms in (0..=1000).step_by(100) {
        tl.drain(t0 + Duration::from_millis(ms), &mut out);
    }
    tl.push_played(LegKey(1), t0 + Duration::from_secs(1), &vec![5; 6400]);
    for ms in (1100..=3000).step_by(100) {
        tl.drain(t0 + Duration::from_millis(ms), &mut out);
    }
    tl.push_played(LegKey(1), t0 + Duration::from_secs(3), &constant(6));
    tl.finish(t0 + Duration::from_secs(4), &mut out);
    assert_eq!(out.iter().filter(|&&s| s == 5).count(), 6400);
    assert_eq!(out.iter().position(|&s| s == 5), Some(16_000));
    assert_eq!(out.iter().position(|&s| s == 6), Some(48_000));
}

#[test]
fn legs_leaving_and_unknown_legs_are_ignored() {
    let t0 = Instant::now();
    let mut tl = mono(ChannelLayout::Mono, t0);
    tl.push_received(LegKey(9), 1, 0, 8000, t0, &constant(1));
    tl.remove_leg(LegKey(1), t0);
    tl.push_received(LegKey(1), 1, 0, 8000, t0, &constant(1));
    tl.push_received(LegKey(1), 1, 0, 0, t0, &constant(1));
    let mut out = Vec::new();
    tl.finish(t0 + Duration::from_millis(100), &mut out);
    assert!(out.iter().all(|&s| s == 0));
    let s = tl.stats();
    assert_eq!((s.unknown_leg_frames, s.legs[0].ignored_frames), (1, 2));
    assert_eq!(tl.add_leg(LegKey(1), t0), 0);
}

#[test]
fn memory_is_bounded_and_drain_output_matches_elapsed_time() {
    let t0 = Instant::now();
    let mut tl = RecordingTimeline::new(ChannelLayout::Multi(32), TimelineConfig::default(), t0);
    assert!(tl.ring_capacity() <= 65_536);
    let mut out = Vec::new();
    let n = tl.drain(t0 + Duration::from_secs(3), &mut out);
    assert_eq!(n, 48_000 - 960);
    assert_eq!(out.len(), n * 32);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary packets (any SSRC, timestamp, clock rate, arrival order) never panic, and the
    /// output is always exactly the elapsed frames.
    #[test]
    fn arbitrary_packets_never_panic(
        ops in prop::collection::vec((0u32..4, any::<u32>(), any::<u32>(), prop::sample::select(vec![0u32, 1, 8000, 16000, 48000, u32::MAX]), 0u64..30_000, 0usize..2000), 1..200),
        layout in prop::sample::select(vec![ChannelLayout::Mono, ChannelLayout::Split, ChannelLayout::Multi(3)]),
    ) {
        let t0 = Instant::now();
        let mut tl = RecordingTimeline::new(layout, TimelineConfig::default(), t0);
        tl.add_leg(LegKey(0), t0);
        tl.add_leg(LegKey(1), t0);
        let mut out = Vec::new();
        let mut last = Duration::ZERO;
        for (leg, ssrc, ts, rate, at_ms, len) in ops {
            let at = Duration::from_millis(at_ms);
            last = last.max(at);
            tl.push_received(LegKey(leg), ssrc, ts, rate, t0 + at, &vec![1000; len]);
            tl.push_played(LegKey(leg), t0 + at, &vec![-1000; len / 3]);
            tl.drain(t0 + at, &mut out);
        }
        let end = last + Duration::from_millis(100);
        tl.finish(t0 + end, &mut out);
        prop_assert_eq!(out.len(), pos(end) * usize::from(tl.channels()));
    }
}

/// What the call task does, on a simulated clock: packet k (20 ms, RTP ts 160k, leg 1) is
/// due at `15 + 20k` ms and processed `delay(due)` later (never before the previous one: a
/// task reads its socket in order), stamped with the processing instant as the server
/// stamps it, pushed, then drained (`Recording::poll` after each packet). The call task's
/// timer drains every 100 ms are delayed the same way, and when due at the same instant as
/// a packet run first (the worst case: `tokio::select!` may pick the timer first after a
/// stall). Returns channel 0 and the leg's stats.
fn serve(
    packets: usize,
    delay: impl Fn(f64) -> f64,
    pcm: impl Fn(usize) -> Vec<i16>,
) -> (Vec<i16>, callmux_record::LegStats) {
    let t0 = Instant::now();
    let at = |ms: f64| t0 + Duration::from_micros((ms * 1000.0).round() as u64);
    let mut events: Vec<(f64, u8, usize)> = Vec::new();
    let mut last = 0.0f64;
    for k in 0..packets {
        let due = 15.0 + 20.0 * k as f64;
        last = (due + delay(due)).max(last);
        events.push((last, 1, k));
    }
    let end = last + 1000.0;
    let mut tick = 100.0;
    while tick < end {
        events.push((tick + delay(tick), 0, 0));
        tick += 100.0;
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut tl = RecordingTimeline::new(ChannelLayout::Split, TimelineConfig::default(), t0);
    tl.add_leg(LegKey(1), t0);
    let mut out = Vec::new();
    for (t, kind, k) in events {
        if kind == 1 {
            tl.push_received(LegKey(1), 7, 160 * k as u32, 8000, at(t), &pcm(k));
        }
        tl.drain(at(t), &mut out);
    }
    tl.finish(at(end), &mut out);
    let ch0 = out.iter().step_by(2).copied().collect();
    (ch0, tl.stats().legs[0].clone())
}

/// Share of the 320 × `packets` samples present.
fn kept(ch0: &[i16], packets: usize) -> f64 {
    ch0.iter().filter(|&&s| s != 0).count() as f64 / (320 * packets) as f64
}

/// docs/performance.md, cause A: the first packet of a leg is often processed 10–35 ms late
/// (it waited behind the recording's file creation); the drift filter used to correct that
/// about a second later by cutting 10–35 ms of audio.
#[test]
fn a_late_first_packet_costs_no_audio() {
    for late in [10.0, 15.0, 25.0, 35.0, 55.0] {
        let (ch0, s) = serve(
            1500,
            |due| if due < 20.0 { late } else { 0.0 },
            |_| constant(1000),
        );
        assert_eq!(kept(&ch0, 1500), 1.0, "{late} ms late: {s:?}");
        assert_eq!(
            (s.cut_samples, s.late_samples, s.drift_corrections),
            (0, 0, 0),
            "{late} ms late"
        );
        // Anchored on time: audio starts at the first packet's due instant.
        let first = ch0.iter().position(|&v| v != 0).unwrap();
        assert_eq!(first, pos(Duration::from_millis(15)), "{late} ms late");
    }
    // A first batch processed late together (the task was blocked 45 ms at the start).
    let (ch0, s) = serve(
        1500,
        |due| if due < 45.0 { 45.0 - due } else { 0.0 },
        |_| constant(1000),
    );
    assert_eq!(kept(&ch0, 1500), 1.0, "{s:?}");
    // Processing jitter of 0–20 ms on every packet (a busy 2-core box): nothing is lost.
    let mut seed = 7u64;
    let jitter: Vec<f64> = (0..400)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 40) as f64 / (1u64 << 24) as f64 * 20.0
        })
        .collect();
    let (ch0, s) = serve(
        1500,
        |due| jitter[(due as usize / 7) % jitter.len()],
        |_| constant(1000),
    );
    assert!(kept(&ch0, 1500) >= 0.999, "{s:?}");
    assert_eq!(s.late_samples, 0, "{s:?}");
}

/// docs/performance.md, "late drops after stalls": the call task stalls (worker blocked,
/// process waiting for a CPU) and then reads the backlog; the first packet read used to
/// make the rest final, and they were dropped as late.
#[test]
fn stalls_of_100_ms_every_second_keep_the_audio() {
    let stall = |every: f64, len: f64| {
        move |t: f64| {
            let phase = t % every;
            if phase < len {
                len - phase
            } else {
                0.0
            }
        }
    };
    for (every, len) in [
        (1000.0, 100.0),
        (500.0, 100.0),
        (250.0, 100.0),
        (1000.0, 200.0),
    ] {
        let (ch0, s) = serve(1500, stall(every, len), |k| constant(value(k)));
        let share = kept(&ch0, 1500);
        assert!(
            share >= 0.999,
            "{len} ms every {every} ms: kept {share}, {s:?}"
        );
        assert_eq!(s.late_samples, 0, "{len} ms every {every} ms: {s:?}");
        // And in place: packet 900 (due 18.015 s, maybe read late) starts at its due time.
        let at = ch0.iter().position(|&v| v == value(900)).unwrap();
        assert_eq!(at, pos(Duration::from_micros(18_015_000)), "{every}/{len}");
    }
}

/// A sender whose timestamps leap a second ahead of real time is re-anchored (its audio
/// stays where it is heard), instead of being placed a second early with a gap before it
/// that a later correction would have to cut away.
#[test]
fn a_timestamp_leap_ahead_reanchors() {
    let t0 = Instant::now();
    let mut tl = mono(ChannelLayout::Mono, t0);
    for k in 0..100u32 {
        let ts = if k < 50 { 160 * k } else { 160 * k + 8000 };
        let at = t0 + Duration::from_millis(100 + 20 * u64::from(k));
        tl.push_received(LegKey(1), 3, ts, 8000, at, &constant(value(k as usize)));
        let mut sink = Vec::new();
        tl.drain(at, &mut sink);
    }
    let mut out = Vec::new();
    tl.finish(t0 + Duration::from_secs(5), &mut out);
    let s = &tl.stats().legs[0];
    assert_eq!((s.reanchors, s.frames_placed, s.cut_samples), (1, 100, 0));
}

/// docs/recording.md, "a sender that is usually late": SIPp's `rtp_stream` (measured on
/// loopback, docs/performance.md) sends most packets about 20 ms after their schedule and
/// only some on time, the first on-time one 60–260 ms into the stream. Anchored on the
/// first 100 ms alone, the source sat 20 ms late and the drift filter moved it back about a
/// second later, cutting 20 ms of audio (one packet in most 5 s smoke-test recordings).
#[test]
fn a_sender_usually_twenty_ms_late_costs_no_audio() {
    for (first_on_time, every) in [(3usize, 5usize), (9, 5), (13, 20), (20, 7)] {
        let due_k = |due: f64| ((due - 15.0) / 20.0).round() as usize;
        let (ch0, s) = serve(
            1500,
            |due| {
                let k = due_k(due);
                if k >= first_on_time && (k - first_on_time) % every == 0 {
                    0.0
                } else {
                    20.0
                }
            },
            |_| constant(1000),
        );
        let case = format!("first on time {first_on_time}, every {every}: {s:?}");
        assert_eq!(kept(&ch0, 1500), 1.0, "{case}");
        assert_eq!((s.cut_samples, s.late_samples), (0, 0), "{case}");
        // Placed on the on-time packets' schedule: audio starts at the first due instant.
        let first = ch0.iter().position(|&v| v != 0).unwrap();
        assert_eq!(first, pos(Duration::from_millis(15)), "{case}");
    }
}

/// The same sender over a whole call: its on-time packets come in stretches, with 2–4 s
/// between them (measured on loopback). A 2 s drift window saw its minimum jump 20 ms
/// later and back, and each correction inserted or cut 10–16 ms (four per 30 s call).
#[test]
fn a_sender_on_time_only_in_stretches_costs_no_audio() {
    let (ch0, s) = serve(
        1500,
        |due| {
            let k = ((due - 15.0) / 20.0).round() as usize;
            if k % 200 < 50 && k.is_multiple_of(5) {
                0.0
            } else {
                20.0
            }
        },
        |_| constant(1000),
    );
    assert_eq!(kept(&ch0, 1500), 1.0, "{s:?}");
    assert_eq!(
        (
            s.cut_samples,
            s.gap_samples,
            s.late_samples,
            s.drift_corrections
        ),
        (0, 0, 0, 0),
        "{s:?}"
    );
}
