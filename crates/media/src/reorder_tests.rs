use super::*;

const DELAY: Duration = Duration::from_millis(60);

fn view(seq: u16, ssrc: u32, payload: &[u8]) -> RtpView<'_> {
    RtpView {
        payload_type: 0,
        marker: false,
        sequence: seq,
        timestamp: u32::from(seq).wrapping_mul(160),
        ssrc,
        csrc_count: 0,
        extension_profile: None,
        payload,
    }
}

/// What pop released, flattened for comparisons: (seq, Some(first payload byte)) or
/// (seq, None) for a loss.
fn drain(buf: &mut ReorderBuffer, now: Instant) -> Vec<(u16, Option<u8>)> {
    let mut out = Vec::new();
    while let Some(r) = buf.pop(now) {
        out.push(match r {
            Released::Packet { seq, payload, .. } => (seq, payload.first().copied()),
            Released::Lost { seq, .. } => (seq, None),
        });
    }
    out
}

#[test]
fn in_order_packets_come_out_at_once() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    for seq in 10..15u16 {
        assert_eq!(
            b.push(&view(seq, 1, &[seq as u8]), t0),
            PushOutcome::Accepted
        );
        assert_eq!(drain(&mut b, t0), vec![(seq, Some(seq as u8))]);
    }
    assert_eq!(b.stats().received, 5);
    assert_eq!(b.held(), 0);
}

#[test]
fn reordered_packets_are_sorted() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(1, 1, &[1]), t0);
    assert_eq!(drain(&mut b, t0), vec![(1, Some(1))]);
    b.push(&view(3, 1, &[3]), t0);
    b.push(&view(4, 1, &[4]), t0);
    assert_eq!(drain(&mut b, t0), vec![], "hole at 2 is held open");
    b.push(&view(2, 1, &[2]), t0 + Duration::from_millis(10));
    assert_eq!(
        drain(&mut b, t0 + Duration::from_millis(10)),
        vec![(2, Some(2)), (3, Some(3)), (4, Some(4))]
    );
    assert_eq!(b.stats().lost, 0);
}

#[test]
fn hole_is_declared_lost_after_delay() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(1, 1, &[1]), t0);
    drain(&mut b, t0);
    let t1 = t0 + Duration::from_millis(20);
    b.push(&view(3, 1, &[3]), t1);
    assert_eq!(drain(&mut b, t1 + DELAY - Duration::from_millis(1)), vec![]);
    let mut released = Vec::new();
    while let Some(r) = b.pop(t1 + DELAY) {
        released.push(match r {
            Released::Lost {
                seq,
                timestamp_estimate,
                duration_estimate,
            } => {
                assert_eq!(duration_estimate, 160);
                (seq, timestamp_estimate, true)
            }
            Released::Packet { seq, timestamp, .. } => (seq, timestamp, false),
        });
    }
    assert_eq!(released, vec![(2, 320, true), (3, 480, false)]);
    assert_eq!(b.stats().lost, 1);
    // The lost packet arriving now is too late.
    assert_eq!(b.push(&view(2, 1, &[2]), t1 + DELAY), PushOutcome::TooLate);
    assert_eq!(b.stats().late, 1);
}

#[test]
fn next_deadline_tracks_what_pop_will_do() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    assert_eq!(b.next_deadline(), None);
    b.push(&view(1, 1, &[1]), t0);
    assert_eq!(b.next_deadline(), Some(t0), "ready now");
    drain(&mut b, t0);
    assert_eq!(b.next_deadline(), None);
    let t1 = t0 + Duration::from_millis(40);
    b.push(&view(3, 1, &[3]), t1);
    assert_eq!(
        b.next_deadline(),
        Some(t1 + DELAY),
        "hole at 2 given up then"
    );
    assert_eq!(drain(&mut b, t1 + DELAY - Duration::from_millis(1)), vec![]);
    assert_eq!(drain(&mut b, t1 + DELAY), vec![(2, None), (3, Some(3))]);
    b.push(&view(5, 1, &[5]), t1);
    b.push(&view(9, 2, &[9]), t1);
    assert_eq!(b.next_deadline(), Some(t1), "a restart drains at once");
}

#[test]
fn several_holes_are_released_in_order() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(100, 1, &[0]), t0);
    drain(&mut b, t0);
    b.push(&view(104, 1, &[4]), t0);
    b.push(&view(102, 1, &[2]), t0);
    assert_eq!(
        drain(&mut b, t0 + DELAY),
        vec![(101, None), (102, Some(2)), (103, None), (104, Some(4))]
    );
    assert_eq!(b.stats().lost, 2);
}

#[test]
fn duplicates_are_dropped() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(5, 1, &[5]), t0);
    b.push(&view(7, 1, &[7]), t0);
    assert_eq!(
        b.push(&view(7, 1, &[7]), t0),
        PushOutcome::Duplicate,
        "held"
    );
    drain(&mut b, t0);
    assert_eq!(
        b.push(&view(5, 1, &[5]), t0),
        PushOutcome::Duplicate,
        "released"
    );
    assert_eq!(b.stats().duplicates, 2);
}

#[test]
fn sequence_wrap_around_is_seamless() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(65534, 1, &[0]), t0);
    b.push(&view(0, 1, &[2]), t0);
    b.push(&view(65535, 1, &[1]), t0);
    b.push(&view(1, 1, &[3]), t0);
    assert_eq!(
        drain(&mut b, t0),
        vec![
            (65534, Some(0)),
            (65535, Some(1)),
            (0, Some(2)),
            (1, Some(3))
        ]
    );
    assert_eq!(b.stats().restarts, 0);
}

#[test]
fn loss_estimate_across_timestamp_wrap() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    let mut v = view(1, 1, &[1]);
    v.timestamp = u32::MAX - 159;
    b.push(&v, t0);
    drain(&mut b, t0);
    let mut v = view(3, 1, &[3]);
    v.timestamp = 160;
    b.push(&v, t0);
    match b.pop(t0 + DELAY) {
        Some(Released::Lost {
            seq: 2,
            timestamp_estimate,
            duration_estimate,
        }) => assert_eq!((timestamp_estimate, duration_estimate), (0, 160)),
        other => panic!("expected loss of 2, got {other:?}"),
    }
}

#[test]
fn ssrc_change_releases_old_stream_first() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(1, 1, &[1]), t0);
    drain(&mut b, t0);
    b.push(&view(3, 1, &[3]), t0);
    b.push(&view(5, 1, &[5]), t0);
    assert_eq!(b.push(&view(900, 2, &[90]), t0), PushOutcome::Restarted);
    // Old packets go first without waiting (holes in a finished stream are not reported),
    // then the new stream.
    assert_eq!(
        drain(&mut b, t0),
        vec![(3, Some(3)), (5, Some(5)), (900, Some(90))]
    );
    b.push(&view(901, 2, &[91]), t0);
    assert_eq!(drain(&mut b, t0), vec![(901, Some(91))]);
    let s = b.stats();
    assert_eq!((s.restarts, s.lost, s.received), (1, 0, 5));
}

#[test]
fn large_jump_restarts() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(10, 1, &[1]), t0);
    drain(&mut b, t0);
    assert_eq!(b.push(&view(30000, 1, &[2]), t0), PushOutcome::Restarted);
    assert_eq!(drain(&mut b, t0), vec![(30000, Some(2))]);
    // A jump backwards beyond the misorder window restarts too.
    assert_eq!(b.push(&view(100, 1, &[3]), t0), PushOutcome::Restarted);
    assert_eq!(drain(&mut b, t0), vec![(100, Some(3))]);
    // Within the window it is only late.
    assert_eq!(b.push(&view(60, 1, &[4]), t0), PushOutcome::TooLate);
    assert_eq!(b.stats().restarts, 2);
}

#[test]
fn jump_just_past_the_window_restarts() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(0, 1, &[0]), t0);
    drain(&mut b, t0);
    let last_in_window = DEFAULT_SLOTS as u16; // next is 1, so 1 + 63 is the last that fits
    assert_eq!(
        b.push(&view(last_in_window, 1, &[1]), t0),
        PushOutcome::Accepted
    );
    assert_eq!(
        b.push(&view(last_in_window + 1, 1, &[2]), t0),
        PushOutcome::Restarted
    );
}

#[test]
fn push_without_drain_after_restart_drops_old_stream() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    b.push(&view(1, 1, &[1]), t0);
    b.push(&view(3, 1, &[3]), t0);
    assert_eq!(b.push(&view(50, 2, &[50]), t0), PushOutcome::Restarted);
    assert_eq!(b.push(&view(51, 2, &[51]), t0), PushOutcome::Accepted);
    assert_eq!(drain(&mut b, t0), vec![(50, Some(50)), (51, Some(51))]);
}

#[test]
fn oversized_payload_is_refused() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    let big = vec![0u8; MAX_PAYLOAD + 1];
    assert_eq!(b.push(&view(1, 1, &big), t0), PushOutcome::Oversized);
    let max = vec![7u8; MAX_PAYLOAD];
    assert_eq!(b.push(&view(1, 1, &max), t0), PushOutcome::Accepted);
    match b.pop(t0) {
        Some(Released::Packet { payload, .. }) => assert_eq!(payload, &max[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.stats().oversized, 1);
}

#[test]
fn released_packet_carries_header_fields() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    let v = RtpView {
        payload_type: 8,
        marker: true,
        sequence: 77,
        timestamp: 12345,
        ssrc: 99,
        csrc_count: 0,
        extension_profile: None,
        payload: &[1, 2, 3],
    };
    b.push(&v, t0);
    assert_eq!(
        b.pop(t0 + Duration::from_millis(1)),
        Some(Released::Packet {
            seq: 77,
            timestamp: 12345,
            ssrc: 99,
            payload_type: 8,
            marker: true,
            arrival: t0,
            payload: &[1, 2, 3],
        })
    );
}

/// A long run with a seeded shuffle of arrival order, drops and duplicates: every sequence
/// number comes out exactly once, in order, as a packet or a loss.
#[test]
fn seeded_network_emulation() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(7);
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    let start: u16 = 65000;
    let total = 3000u32;
    // (arrival ms, seq)
    let mut arrivals: Vec<(u64, u16)> = Vec::new();
    let mut dropped = 0;
    for i in 0..total {
        let seq = start.wrapping_add(i as u16);
        if i > 0 && rng.random_bool(0.05) {
            dropped += 1;
            continue;
        }
        let jitter = rng.random_range(0..40);
        arrivals.push((u64::from(i) * 20 + jitter, seq));
        if rng.random_bool(0.02) {
            arrivals.push((u64::from(i) * 20 + jitter + 5, seq));
        }
    }
    arrivals.sort();
    let mut out = Vec::new();
    for (ms, seq) in arrivals {
        let now = t0 + Duration::from_millis(ms);
        let payload = [seq as u8];
        b.push(&view(seq, 1, &payload), now);
        out.extend(drain(&mut b, now));
    }
    out.extend(drain(&mut b, t0 + Duration::from_secs(3600)));
    let seqs: Vec<u16> = out.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u16> = (0..seqs.len() as u32)
        .map(|i| start.wrapping_add(i as u16))
        .collect();
    assert_eq!(seqs, expected);
    let lost = out.iter().filter(|(_, p)| p.is_none()).count();
    // The tail drop (if any) cannot be declared lost since nothing follows it.
    assert!(
        lost <= dropped && lost + 2 >= dropped,
        "lost {lost}, dropped {dropped}"
    );
    assert_eq!(b.stats().lost as usize, lost);
    assert_eq!(b.stats().restarts, 0);
    assert!(b.stats().duplicates > 0);
}

#[test]
fn slots_are_sized_to_the_payloads_seen_and_growing_keeps_held_packets() {
    let t0 = Instant::now();
    let mut b = ReorderBuffer::new(DELAY);
    assert_eq!(b.payload_capacity(), 0, "nothing before the first packet");
    // A G.711 leg: 160-byte payloads take 64 × 160 bytes, not 64 × MAX_PAYLOAD.
    for seq in 0..100u16 {
        b.push(&view(seq, 1, &[seq as u8; 160]), t0);
        drain(&mut b, t0);
    }
    assert_eq!(b.payload_capacity(), DEFAULT_SLOTS * 160);
    // Hold 101..=103 behind a hole at 100, then a bigger packet grows every slot.
    for seq in 101..104u16 {
        b.push(&view(seq, 1, &[seq as u8; 160]), t0);
    }
    b.push(&view(104, 1, &[104; 700]), t0);
    b.push(&view(100, 1, &[100; 20]), t0);
    let mut got = Vec::new();
    while let Some(r) = b.pop(t0) {
        if let Released::Packet { seq, payload, .. } = r {
            assert!(payload.iter().all(|&x| x == seq as u8), "payload of {seq}");
            got.push((seq, payload.len()));
        }
    }
    assert_eq!(
        got,
        [(100, 20), (101, 160), (102, 160), (103, 160), (104, 700)]
    );
    assert_eq!(b.payload_capacity(), DEFAULT_SLOTS * 704);
}
