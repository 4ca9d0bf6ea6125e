//! Conference mixer through its public API: mix-minus checked by tone energy (Goertzel) and
//! sample for sample, mute, canSpeak/canHear, saturation, prefill/underrun, clock drift over
//! ten minutes of ticks, membership changes mid-stream, and a property test against a naive
//! per-listener mix.

use callmux_media::mixer::{
    ConferenceMixer, MixerConfig, MixerError, ParticipantId, ParticipantOptions, FRAME_SAMPLES,
};
use callmux_media::tone::ToneGenerator;
use proptest::prelude::*;

const A: ParticipantId = ParticipantId(1);
const B: ParticipantId = ParticipantId(2);
const C: ParticipantId = ParticipantId(3);
const D: ParticipantId = ParticipantId(4);

/// Peak level of each test tone: -10 dBFS.
const LEVEL_DBFS: f32 = -10.0;

fn expected_amplitude() -> f64 {
    32767.0 * 10f64.powf(f64::from(LEVEL_DBFS) / 20.0)
}

/// Amplitude of the `freq` component of `x` (Goertzel; exact for whole cycles in `x`).
fn goertzel(x: &[i16], freq: f64, rate: f64) -> f64 {
    let coeff = 2.0 * (std::f64::consts::TAU * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / x.len() as f64
}

fn everyone() -> ParticipantOptions {
    ParticipantOptions::default()
}

fn tone(hz: f32) -> ToneGenerator {
    ToneGenerator::new(hz, LEVEL_DBFS, 16000)
}

fn tone_frame(t: &mut ToneGenerator) -> [i16; FRAME_SAMPLES] {
    let mut f = [0i16; FRAME_SAMPLES];
    t.fill(&mut f);
    f
}

fn clamp16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// The mix a listener should get, from the speakers' `spoken` frames and their options,
/// computed the slow, obvious way.
fn naive_mix(m: &ConferenceMixer, listener: ParticipantId) -> Vec<i16> {
    let lopts = m.options(listener).unwrap();
    let mut acc = [0i32; FRAME_SAMPLES];
    for s in m.participants() {
        if s == listener {
            continue;
        }
        let sopts = m.options(s).unwrap();
        let speaks = sopts
            .can_speak_to
            .as_ref()
            .is_none_or(|v| v.contains(&listener));
        let hears = lopts.can_hear.as_ref().is_none_or(|v| v.contains(&s));
        if speaks && hears {
            for (a, &x) in acc.iter_mut().zip(m.spoken(s).unwrap()) {
                *a += i32::from(x);
            }
        }
    }
    acc.iter().map(|&a| clamp16(a)).collect()
}

fn assert_matches_naive(m: &ConferenceMixer) {
    for id in m.participants() {
        assert_eq!(m.frame_for(id).unwrap(), &naive_mix(m, id)[..], "{id:?}");
    }
}

/// A conference whose talkers each push one frame of their own tone before every tick.
struct Room {
    mixer: ConferenceMixer,
    talkers: Vec<(ParticipantId, ToneGenerator)>,
}

impl Room {
    fn new(talkers: &[(ParticipantId, f32)]) -> Self {
        let mut mixer = ConferenceMixer::default();
        for &(id, _) in talkers {
            mixer.add(id, everyone()).unwrap();
        }
        Self {
            mixer,
            talkers: talkers.iter().map(|&(id, hz)| (id, tone(hz))).collect(),
        }
    }

    /// Runs `ticks` ticks and returns what each listener in `listen` heard.
    fn run(&mut self, ticks: usize, listen: &[ParticipantId]) -> Vec<Vec<i16>> {
        let mut heard = vec![Vec::new(); listen.len()];
        for _ in 0..ticks {
            for (id, t) in &mut self.talkers {
                let f = tone_frame(t);
                assert!(self.mixer.push(*id, &f));
            }
            self.mixer.tick();
            assert_matches_naive(&self.mixer);
            for (h, &id) in heard.iter_mut().zip(listen) {
                h.extend_from_slice(self.mixer.frame_for(id).unwrap());
            }
        }
        heard
    }
}

const TONES: [(ParticipantId, f32); 3] = [(A, 440.0), (B, 1000.0), (C, 1700.0)];

fn amplitudes(x: &[i16]) -> [f64; 3] {
    TONES.map(|(_, hz)| goertzel(x, f64::from(hz), 16000.0))
}

/// Asserts that `heard` carries the tones of `present` (at full test level) and none of
/// the others.
fn assert_hears(heard: &[i16], present: &[ParticipantId], who: &str) {
    let amps = amplitudes(heard);
    let full = expected_amplitude();
    for ((id, hz), amp) in TONES.iter().zip(amps) {
        if present.contains(id) {
            assert!(
                (amp - full).abs() / full < 0.02,
                "{who} should hear {hz} Hz at {full:.0}, got {amp:.1} ({amps:?})"
            );
        } else {
            assert!(
                amp < full * 1e-3,
                "{who} should not hear {hz} Hz, got {amp:.1} ({amps:?})"
            );
        }
    }
}

#[test]
fn each_hears_the_other_two_and_not_itself() {
    let mut room = Room::new(&TONES);
    room.run(3, &[]); // prefill
    let heard = room.run(50, &[A, B, C]); // one second: whole cycles of every tone
    assert_hears(&heard[0], &[B, C], "A");
    assert_hears(&heard[1], &[A, C], "B");
    assert_hears(&heard[2], &[A, B], "C");

    // Sample for sample: A hears exactly B + C.
    let m = &room.mixer;
    let sum: Vec<i16> = m
        .spoken(B)
        .unwrap()
        .iter()
        .zip(m.spoken(C).unwrap())
        .map(|(&b, &c)| b + c)
        .collect();
    assert_eq!(m.frame_for(A).unwrap(), &sum[..]);
    for id in [A, B, C] {
        assert_eq!(m.frame_for(id).unwrap().len(), FRAME_SAMPLES);
        let s = m.stats(id).unwrap();
        assert_eq!((s.underruns, s.overflows), (0, 0));
        assert_eq!(s.frames_in, 53);
        assert_eq!(s.frames_played, 51);
        assert_eq!(s.silent_frames, 2);
    }
}

#[test]
fn spoken_is_what_the_speaker_sent_in_order() {
    let mut room = Room::new(&TONES);
    let mut reference = tone(1000.0);
    let mut sent = Vec::new();
    let mut got = Vec::new();
    for _ in 0..20 {
        sent.extend(tone_frame(&mut reference));
        room.run(1, &[]);
        got.extend_from_slice(room.mixer.spoken(B).unwrap());
    }
    // Two ticks of prefill silence, then B's audio unchanged.
    assert!(got[..2 * FRAME_SAMPLES].iter().all(|&s| s == 0));
    assert_eq!(
        &got[2 * FRAME_SAMPLES..],
        &sent[..sent.len() - 2 * FRAME_SAMPLES]
    );
}

#[test]
fn muted_participant_sends_nothing_but_still_hears() {
    let mut room = Room::new(&TONES);
    room.run(3, &[]);
    assert!(room.mixer.set_muted(B, true));
    let heard = room.run(50, &[A, B, C]);
    assert_hears(&heard[0], &[C], "A");
    assert_hears(&heard[1], &[A, C], "B (muted)");
    assert_hears(&heard[2], &[A], "C");
    assert!(room.mixer.spoken(B).unwrap().iter().all(|&s| s == 0));
    // Its audio kept being consumed: no backlog, no overflow, and it is back at once.
    let s = room.mixer.stats(B).unwrap();
    assert_eq!(s.overflows, 0);
    assert!(s.buffered_samples <= 3 * FRAME_SAMPLES);
    assert!(room.mixer.set_muted(B, false));
    let heard = room.run(50, &[A]);
    assert_hears(&heard[0], &[B, C], "A after unmute");
    assert!(!room.mixer.set_muted(D, true), "unknown participant");
}

#[test]
fn can_hear_and_can_speak_restrictions() {
    let mut room = Room::new(&TONES);
    // A hears only B; C speaks only to B.
    room.mixer.set_options(
        A,
        ParticipantOptions {
            can_hear: Some(vec![B]),
            ..everyone()
        },
    );
    room.mixer.set_options(
        C,
        ParticipantOptions {
            can_speak_to: Some(vec![B]),
            ..everyone()
        },
    );
    room.run(3, &[]);
    let heard = room.run(50, &[A, B, C]);
    assert_hears(&heard[0], &[B], "A (canHear B)");
    assert_hears(&heard[1], &[A, C], "B");
    assert_hears(&heard[2], &[A, B], "C (canSpeak B) still hears everyone");

    // canHear naming oneself and an absent leg, canSpeak naming a leg that joins later.
    room.mixer.set_options(
        A,
        ParticipantOptions {
            can_hear: Some(vec![A, C, D]),
            ..everyone()
        },
    );
    room.mixer.set_options(
        C,
        ParticipantOptions {
            can_speak_to: Some(vec![A, D]),
            ..everyone()
        },
    );
    let heard = room.run(50, &[A, B]);
    assert_hears(&heard[0], &[C], "A (canHear A, C, D)");
    assert_hears(&heard[1], &[A], "B (C speaks to A and D only)");
    room.mixer.add(D, everyone()).unwrap();
    let mut d_heard = Vec::new();
    for _ in 0..50 {
        room.run(1, &[]);
        d_heard.extend_from_slice(room.mixer.frame_for(D).unwrap());
    }
    assert_hears(
        &d_heard,
        &[A, B, C],
        "D, who joined later and is in C's canSpeak",
    );

    // Back to everyone.
    room.mixer.set_options(A, everyone());
    room.mixer.set_options(C, everyone());
    let heard = room.run(50, &[A, B]);
    assert_hears(&heard[0], &[B, C], "A");
    assert_hears(&heard[1], &[A, C], "B");
}

#[test]
fn full_scale_inputs_saturate_and_never_wrap() {
    let mut m = ConferenceMixer::new(MixerConfig {
        target_depth_frames: 1,
        ..MixerConfig::default()
    });
    let frames = [(A, i16::MAX), (B, i16::MAX), (C, i16::MIN)];
    for (id, _) in frames {
        m.add(id, everyone()).unwrap();
    }
    let push_all = |m: &mut ConferenceMixer, frames: &[(ParticipantId, i16)]| {
        for &(id, v) in frames {
            m.push(id, &[v; FRAME_SAMPLES]);
        }
        m.tick();
    };
    push_all(&mut m, &frames);
    // The shared sum is 32766; each own contribution comes off before clamping.
    assert!(m.frame_for(A).unwrap().iter().all(|&s| s == -1));
    assert!(m.frame_for(B).unwrap().iter().all(|&s| s == -1));
    assert!(m.frame_for(C).unwrap().iter().all(|&s| s == i16::MAX));

    let frames4 = [frames[0], frames[1], frames[2], (D, i16::MAX)];
    m.add(D, everyone()).unwrap();
    push_all(&mut m, &frames4);
    assert!(m.frame_for(A).unwrap().iter().all(|&s| s == 32766));
    assert!(m.frame_for(C).unwrap().iter().all(|&s| s == i16::MAX));
    assert!(m.frame_for(D).unwrap().iter().all(|&s| s == 32766));

    // Same through the per-listener path.
    m.set_options(
        C,
        ParticipantOptions {
            can_hear: Some(vec![A, B, D]),
            ..everyone()
        },
    );
    m.set_options(
        A,
        ParticipantOptions {
            can_speak_to: Some(vec![B, C, D]),
            ..everyone()
        },
    );
    push_all(&mut m, &frames4);
    assert_matches_naive(&m);
    assert!(m.frame_for(C).unwrap().iter().all(|&s| s == i16::MAX));
    assert!(m.frame_for(B).unwrap().iter().all(|&s| s == 32766));

    // Full-scale sines in phase: the mix follows the sign of the true sum everywhere.
    let mut gens: Vec<_> = (0..3)
        .map(|_| ToneGenerator::new(300.0, 0.0, 16000))
        .collect();
    let mut m = ConferenceMixer::new(MixerConfig {
        target_depth_frames: 1,
        ..MixerConfig::default()
    });
    for id in [A, B, C] {
        m.add(id, everyone()).unwrap();
    }
    for _ in 0..20 {
        for (id, g) in [A, B, C].into_iter().zip(&mut gens) {
            m.push(id, &tone_frame(g));
        }
        m.tick();
        let (b, c) = (m.spoken(B).unwrap(), m.spoken(C).unwrap());
        for ((&out, &b), &c) in m.frame_for(A).unwrap().iter().zip(b).zip(c) {
            assert_eq!(out, clamp16(i32::from(b) + i32::from(c)));
            assert_eq!(out.signum(), (i32::from(b) + i32::from(c)).signum() as i16);
        }
    }
}

#[test]
fn prefill_underrun_and_refill() {
    let mut m = ConferenceMixer::default(); // prefill 3 frames
    m.add(A, everyone()).unwrap();
    m.add(B, everyone()).unwrap();
    let frame = |v: i16| [v; FRAME_SAMPLES];
    let a_said = |m: &ConferenceMixer| m.spoken(A).unwrap()[0];
    let b_heard = |m: &ConferenceMixer| m.frame_for(B).unwrap()[0];

    // Before any tick everything is silence of the right length.
    assert_eq!(m.frame_for(B).unwrap(), &[0; FRAME_SAMPLES][..]);
    assert_eq!(m.spoken(A).unwrap(), &[0; FRAME_SAMPLES][..]);

    m.push(A, &frame(1));
    assert_eq!(m.tick(), 0);
    assert_eq!(b_heard(&m), 0);
    m.push(A, &frame(2));
    assert_eq!(m.tick(), 0);
    m.push(A, &frame(3));
    assert_eq!(m.tick(), 1, "three frames held: A starts");
    assert_eq!((a_said(&m), b_heard(&m)), (1, 1));
    assert_eq!(m.stats(A).unwrap().buffered_samples, 2 * FRAME_SAMPLES);
    // A stops sending: the jitter buffer plays out, then runs dry.
    m.tick();
    m.tick();
    assert_eq!(b_heard(&m), 3);
    assert_eq!(m.stats(A).unwrap().underruns, 0);
    assert_eq!(m.tick(), 0);
    assert_eq!(b_heard(&m), 0);
    let s = m.stats(A).unwrap();
    assert_eq!((s.underruns, s.silent_frames, s.frames_played), (1, 3, 3));
    // It has to prefill again: one frame is not enough.
    m.push(A, &frame(4));
    m.tick();
    assert_eq!(b_heard(&m), 0);
    m.push(A, &frame(5));
    m.tick();
    m.push(A, &frame(6));
    m.tick();
    assert_eq!(b_heard(&m), 4);
    assert_eq!(
        m.stats(A).unwrap().underruns,
        1,
        "silence while refilling is one underrun"
    );

    // Odd lengths are buffered as samples; a short tail is padded and counts as an underrun.
    let mut m = ConferenceMixer::new(MixerConfig {
        target_depth_frames: 1,
        ..MixerConfig::default()
    });
    m.add(A, everyone()).unwrap();
    m.add(B, everyone()).unwrap();
    let ramp: Vec<i16> = (0..480).map(|i| i as i16 + 1).collect();
    m.push(A, &ramp[..100]);
    m.tick();
    assert_eq!(
        b_heard(&m),
        0,
        "100 samples are less than the one-frame prefill"
    );
    m.push(A, &ramp[100..]);
    m.tick();
    assert_eq!(m.frame_for(B).unwrap(), &ramp[..320]);
    m.tick();
    let out = m.frame_for(B).unwrap();
    assert_eq!(&out[..160], &ramp[320..]);
    assert!(out[160..].iter().all(|&s| s == 0));
    let s = m.stats(A).unwrap();
    assert_eq!((s.frames_in, s.samples_in, s.underruns), (2, 480, 1));
    assert_eq!(s.frames_played, 2);
}

/// Pushes whole frames at `rate` × the tick rate (in parts per thousand) for `ticks` ticks;
/// two more speakers run at the nominal rate. Returns the drifting speaker's largest FIFO
/// depth seen, and the conference.
fn drift(rate_permille: u64, ticks: u64) -> (usize, ConferenceMixer) {
    // One second of each tone, looped: whole cycles, so the loop is seamless.
    let second = |hz: f32| {
        let mut s = vec![0i16; 16000];
        tone(hz).fill(&mut s);
        s
    };
    let (sa, sb, sc) = (second(440.0), second(1000.0), second(1700.0));
    let mut m = Room::new(&TONES).mixer;
    let (mut pushed_a, mut max_depth) = (0u64, 0usize);
    let mut b_heard_a = 0usize;
    let at = |s: &[i16], k: u64| {
        let o = (k as usize % 50) * FRAME_SAMPLES;
        s[o..o + FRAME_SAMPLES].to_vec()
    };
    for t in 0..ticks {
        while pushed_a * 1000 < (t + 1) * rate_permille {
            m.push(A, &at(&sa, pushed_a));
            pushed_a += 1;
        }
        m.push(B, &at(&sb, t));
        m.push(C, &at(&sc, t));
        m.tick();
        let s = m.stats(A).unwrap();
        max_depth = max_depth.max(s.buffered_samples);
        if t % 500 == 250 {
            // B hears A (one frame is 8.8 cycles of 440 Hz: enough to see it).
            let heard = m.frame_for(B).unwrap();
            if goertzel(heard, 440.0, 16000.0) > expected_amplitude() * 0.3 {
                b_heard_a += 1;
            }
        }
    }
    let checks = (ticks / 500) as usize;
    assert!(
        b_heard_a + 1 >= checks,
        "B heard A in {b_heard_a} of {checks} checks"
    );
    (max_depth, m)
}

const TEN_MINUTES: u64 = 10 * 60 * 50;

#[test]
fn fast_speaker_stays_bounded_for_ten_minutes() {
    let (max_depth, m) = drift(1005, TEN_MINUTES);
    let cap = m.config().max_depth_frames * FRAME_SAMPLES;
    assert!(max_depth <= cap, "{max_depth} > {cap}");
    let s = m.stats(A).unwrap();
    // 0.5 % of 30 000 frames = 150 frames too many, all dropped (in whole frames).
    assert_eq!(s.samples_in, 30_150 * FRAME_SAMPLES as u64);
    assert_eq!(s.underruns, 0);
    assert_eq!(
        s.samples_in,
        s.frames_played * FRAME_SAMPLES as u64 + s.dropped_samples + s.buffered_samples as u64
    );
    assert_eq!(s.dropped_samples % FRAME_SAMPLES as u64, 0);
    let dropped_frames = s.dropped_samples / FRAME_SAMPLES as u64;
    assert!(
        (140..=150).contains(&dropped_frames),
        "{dropped_frames} frames dropped"
    );
    assert_eq!(s.overflows, dropped_frames, "one frame at a time");
    for id in [B, C] {
        let s = m.stats(id).unwrap();
        assert_eq!((s.underruns, s.overflows), (0, 0));
    }
}

#[test]
fn slow_speaker_underruns_and_recovers_for_ten_minutes() {
    let (max_depth, m) = drift(995, TEN_MINUTES);
    assert!(max_depth <= m.config().max_depth_frames * FRAME_SAMPLES);
    let s = m.stats(A).unwrap();
    assert_eq!(s.overflows, 0);
    // 150 frames never came: 150 ticks of silence (plus the first prefill), in a few
    // underruns each followed by a three-frame refill.
    assert_eq!(s.frames_played + s.silent_frames, TEN_MINUTES);
    assert!(
        (150..=155).contains(&s.silent_frames),
        "{} silent",
        s.silent_frames
    );
    assert!(
        (40..=60).contains(&s.underruns),
        "{} underruns",
        s.underruns
    );
}

#[test]
fn add_and_remove_mid_stream() {
    let mut room = Room::new(&TONES);
    room.run(10, &[]);
    let stats = room.mixer.remove(B).expect("B was there");
    assert_eq!(stats.frames_in, 10);
    assert!(room.mixer.remove(B).is_none());
    room.talkers.retain(|(id, _)| *id != B);
    assert!(!room.mixer.push(B, &[0; FRAME_SAMPLES]), "B is gone");
    assert!(room.mixer.frame_for(B).is_none());
    assert!(room.mixer.spoken(B).is_none());
    assert!(room.mixer.stats(B).is_none());

    // The very next tick no longer carries B.
    let heard = room.run(50, &[A, C]);
    assert_hears(&heard[0], &[C], "A after B left");
    assert_hears(&heard[1], &[A], "C after B left");

    // B comes back as a new participant (last in joining order) and prefills again.
    room.mixer.add(B, everyone()).unwrap();
    room.talkers.push((B, tone(1000.0)));
    assert_eq!(room.mixer.participants().collect::<Vec<_>>(), vec![A, C, B]);
    room.run(1, &[]);
    assert_eq!(room.mixer.stats(B).unwrap().silent_frames, 1);
    room.run(2, &[]);
    let heard = room.run(50, &[A, B, C]);
    assert_hears(&heard[0], &[B, C], "A");
    assert_hears(&heard[1], &[A, C], "B back");
    assert_hears(&heard[2], &[A, B], "C");

    // Removing the first participant keeps the others' buffers and frames straight.
    room.mixer.remove(A).unwrap();
    room.talkers.retain(|(id, _)| *id != A);
    let heard = room.run(50, &[B, C]);
    assert_hears(&heard[0], &[C], "B");
    assert_hears(&heard[1], &[B], "C");
    assert_eq!(room.mixer.len(), 2);
}

#[test]
fn add_refuses_duplicates_and_overfull_conferences() {
    let mut m = ConferenceMixer::new(MixerConfig {
        max_participants: 2,
        ..MixerConfig::default()
    });
    m.add(A, everyone()).unwrap();
    assert_eq!(m.add(A, everyone()), Err(MixerError::AlreadyPresent(A)));
    m.add(B, everyone()).unwrap();
    assert_eq!(m.add(C, everyone()), Err(MixerError::Full { max: 2 }));
    assert_eq!(
        MixerError::Full { max: 2 }.to_string(),
        "the conference is full (2 participants)"
    );
    assert_eq!(
        MixerError::AlreadyPresent(A).to_string(),
        "participant 1 is already in the conference"
    );
    m.remove(A);
    m.add(C, everyone()).unwrap();
    assert!(!m.set_options(A, everyone()));
    assert!(m.push(C, &[]));
    assert_eq!(m.stats(C).unwrap().frames_in, 0);
}

#[test]
fn config_is_brought_into_range() {
    let m = ConferenceMixer::new(MixerConfig {
        target_depth_frames: 0,
        max_depth_frames: 0,
        max_participants: usize::MAX,
    });
    let c = m.config();
    assert_eq!((c.target_depth_frames, c.max_depth_frames), (1, 1));
    assert_eq!(c.max_participants, callmux_media::mixer::MAX_PARTICIPANTS);
    let d = MixerConfig::default();
    assert_eq!((d.target_depth_frames, d.max_depth_frames), (3, 8));
}

#[derive(Debug, Clone)]
enum Op {
    Add(u32, ParticipantOptions),
    Remove(u32),
    Push(u32, Vec<i16>),
    Tick,
    Mute(u32, bool),
    SetOptions(u32, ParticipantOptions),
}

fn id_list() -> impl Strategy<Value = Option<Vec<ParticipantId>>> {
    prop::option::of(prop::collection::vec(
        (0u32..6).prop_map(ParticipantId),
        0..4,
    ))
}

fn options() -> impl Strategy<Value = ParticipantOptions> {
    (id_list(), id_list(), prop::bool::weighted(0.2)).prop_map(|(s, h, muted)| ParticipantOptions {
        can_speak_to: s,
        can_hear: h,
        muted,
    })
}

fn samples() -> impl Strategy<Value = Vec<i16>> {
    prop_oneof![
        prop::collection::vec(any::<i16>(), 0..700),
        (0usize..4, any::<bool>())
            .prop_map(|(n, hi)| vec![if hi { i16::MAX } else { i16::MIN }; n * FRAME_SAMPLES]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u32..6, options()).prop_map(|(id, o)| Op::Add(id, o)),
        1 => (0u32..6).prop_map(Op::Remove),
        6 => (0u32..7, samples()).prop_map(|(id, s)| Op::Push(id, s)),
        5 => Just(Op::Tick),
        1 => (0u32..6, any::<bool>()).prop_map(|(id, m)| Op::Mute(id, m)),
        1 => (0u32..6, options()).prop_map(|(id, o)| Op::SetOptions(id, o)),
    ]
}

proptest! {
    #[test]
    fn random_sequences_never_panic_and_match_the_naive_mix(
        target in 0usize..5,
        max in 0usize..10,
        max_participants in 0usize..7,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        let mut m = ConferenceMixer::new(MixerConfig {
            target_depth_frames: target,
            max_depth_frames: max,
            max_participants,
        });
        let cap = m.config().max_depth_frames * FRAME_SAMPLES;
        let mut order: Vec<ParticipantId> = Vec::new();
        for op in ops {
            match op {
                Op::Add(id, o) => {
                    let id = ParticipantId(id);
                    let r = m.add(id, o);
                    if order.contains(&id) {
                        prop_assert_eq!(r, Err(MixerError::AlreadyPresent(id)));
                    } else if order.len() >= m.config().max_participants {
                        prop_assert_eq!(r, Err(MixerError::Full { max: m.config().max_participants }));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        order.push(id);
                    }
                }
                Op::Remove(id) => {
                    let id = ParticipantId(id);
                    prop_assert_eq!(m.remove(id).is_some(), order.contains(&id));
                    order.retain(|&p| p != id);
                }
                Op::Push(id, s) => {
                    let id = ParticipantId(id);
                    prop_assert_eq!(m.push(id, &s), order.contains(&id));
                }
                Op::Tick => {
                    let active = m.tick();
                    prop_assert!(active <= order.len());
                    assert_matches_naive(&m);
                }
                Op::Mute(id, muted) => {
                    let id = ParticipantId(id);
                    prop_assert_eq!(m.set_muted(id, muted), order.contains(&id));
                }
                Op::SetOptions(id, o) => {
                    let id = ParticipantId(id);
                    prop_assert_eq!(m.set_options(id, o), order.contains(&id));
                }
            }
            prop_assert_eq!(m.participants().collect::<Vec<_>>(), order.clone());
            for &id in &order {
                prop_assert_eq!(m.frame_for(id).map(<[i16]>::len), Some(FRAME_SAMPLES));
                prop_assert_eq!(m.spoken(id).map(<[i16]>::len), Some(FRAME_SAMPLES));
                prop_assert!(m.stats(id).unwrap().buffered_samples <= cap);
            }
        }
    }
}
