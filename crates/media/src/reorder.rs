//! Per-leg RTP reorder buffer: puts packets back in sequence order, holds a hole open for at
//! most `delay` and then declares it lost, drops duplicates and packets that come too late.
//!
//! Fixed capacity ([`DEFAULT_SLOTS`] packets of up to [`MAX_PAYLOAD`] bytes): `push` copies
//! the payload into a slot, `pop` lends it back. Slots are sized to the largest payload seen
//! so far (rounded up to 32 bytes, at least doubling), so a G.711 leg holds 64 × 160 bytes,
//! not 64 × 1500: the arena is reallocated only when a larger payload than ever before
//! arrives (once or twice per stream), never per packet. Time is an argument.
//!
//! Drive it like this after every received packet and on every tick:
//! `buffer.push(&view, now); while let Some(r) = buffer.pop(now) { ... }`.
//!
//! The first packet of a stream defines where it starts and is released at once; a packet
//! older than it arriving afterwards is [`PushOutcome::TooLate`]. A packet more than the
//! window ([`DEFAULT_SLOTS`]) ahead, more than 100 behind, or from a new SSRC restarts the
//! stream; holes left in the old stream are then skipped, not reported as lost.

use std::time::{Duration, Instant};

use crate::rtp::RtpView;

/// Slots per buffer (a power of two so `seq % SLOTS` is continuous across wrap-around).
/// 64 packets of 20 ms is 1.28 s, more than any sane reorder delay.
pub const DEFAULT_SLOTS: usize = 64;
/// Largest payload stored; larger packets are refused ([`PushOutcome::Oversized`]). This is
/// one Ethernet MTU, more than any audio frame we negotiate.
pub const MAX_PAYLOAD: usize = 1500;
/// How far behind the next expected sequence number a packet may be and still count as late
/// (rather than as a sequence restart).
const MAX_MISORDER: u16 = 100;

/// What [`ReorderBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// Stored; it will be released in order.
    Accepted,
    /// Already held or already released.
    Duplicate,
    /// Its turn has passed (released past it or declared it lost); dropped.
    TooLate,
    /// It starts a new stream (SSRC change or sequence jump). Everything held
    /// from the old stream is released first, then this packet.
    Restarted,
    /// Payload larger than [`MAX_PAYLOAD`]; dropped.
    Oversized,
}

/// What [`ReorderBuffer::pop`] hands back, in sequence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released<'a> {
    /// The next packet.
    Packet {
        /// Sequence number.
        seq: u16,
        /// RTP timestamp.
        timestamp: u32,
        /// SSRC.
        ssrc: u32,
        /// Payload type.
        payload_type: u8,
        /// Marker bit.
        marker: bool,
        /// When it was pushed.
        arrival: Instant,
        /// The payload (borrowed from the buffer's slot).
        payload: &'a [u8],
    },
    /// A packet that never came, given up on after `delay`.
    Lost {
        /// Its sequence number.
        seq: u16,
        /// Its timestamp, interpolated between the packets around it.
        timestamp_estimate: u32,
        /// Its length in RTP ticks, estimated from the packets around it (0 if unknown), so
        /// the decoder can conceal the right amount:
        /// `decoder.conceal(decoder.rtp_ts_to_16k(duration_estimate) as usize, out)`.
        duration_estimate: u32,
    },
}

/// Counters for one leg, for RTCP and call quality events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReorderStats {
    /// Packets accepted (including the first of each restarted stream).
    pub received: u64,
    /// Holes declared lost.
    pub lost: u64,
    /// Packets that arrived after their turn.
    pub late: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Stream restarts (SSRC change, sequence jump).
    pub restarts: u64,
    /// Oversized packets dropped.
    pub oversized: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Held,
    Released,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    state: SlotState,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload_type: u8,
    marker: bool,
    arrival: Instant,
    len: usize,
}

/// A packet of a new stream waiting for the old stream to drain.
#[derive(Debug, Clone, Copy)]
struct Pending {
    meta: Meta,
}

/// The reorder buffer of one leg.
#[derive(Debug)]
pub struct ReorderBuffer {
    delay: Duration,
    /// Slot metadata; `None` for a slot never used since the last (re)start.
    meta: Box<[Option<Meta>]>,
    /// Payload arena: slot `i` is `data[i * slot_size..][..len]`.
    data: Vec<u8>,
    /// Bytes per slot in `data` (0 until the first packet).
    slot_size: usize,
    /// Sequence number expected next; `None` before the first packet.
    next_seq: Option<u16>,
    ssrc: u32,
    held_count: usize,
    /// Last released (seq, timestamp), for loss timestamp estimates.
    last: Option<(u16, u32)>,
    /// A restart packet and its payload, stored until the old stream has drained.
    pending: Option<Pending>,
    pending_data: Vec<u8>,
    stats: ReorderStats,
}

fn index(seq: u16, slots: usize) -> usize {
    usize::from(seq) % slots
}

impl ReorderBuffer {
    /// A buffer that waits at most `delay` for a missing packet, with [`DEFAULT_SLOTS`] slots.
    pub fn new(delay: Duration) -> Self {
        Self::with_slots(delay, DEFAULT_SLOTS)
    }

    /// A buffer with a given number of slots (rounded up to a power of two, 2 to 1024).
    pub fn with_slots(delay: Duration, slots: usize) -> Self {
        let slots = slots.clamp(2, 1024).next_power_of_two();
        Self {
            delay,
            meta: vec![None; slots].into_boxed_slice(),
            data: Vec::new(),
            slot_size: 0,
            next_seq: None,
            ssrc: 0,
            held_count: 0,
            last: None,
            pending: None,
            pending_data: Vec::new(),
            stats: ReorderStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Packets currently held (not yet released).
    pub fn held(&self) -> usize {
        self.held_count + usize::from(self.pending.is_some())
    }

    fn slots(&self) -> usize {
        self.meta.len()
    }

    /// Offers one received packet.
    pub fn push(&mut self, rtp: &RtpView<'_>, arrival: Instant) -> PushOutcome {
        if rtp.payload.len() > MAX_PAYLOAD {
            self.stats.oversized += 1;
            return PushOutcome::Oversized;
        }
        let meta = Meta {
            state: SlotState::Held,
            seq: rtp.sequence,
            timestamp: rtp.timestamp,
            ssrc: rtp.ssrc,
            payload_type: rtp.payload_type,
            marker: rtp.marker,
            arrival,
            len: rtp.payload.len(),
        };
        if self.pending.is_some() {
            // The caller did not drain after a restart: finish it now, dropping what is left
            // of the old stream (installing the new one clears every slot).
            self.install_pending();
        }
        let Some(next) = self.next_seq else {
            self.stats.received += 1;
            self.start_stream(meta, rtp.payload);
            return PushOutcome::Accepted;
        };
        if rtp.ssrc != self.ssrc {
            return self.restart(meta, rtp.payload);
        }
        let ahead = rtp.sequence.wrapping_sub(next);
        if usize::from(ahead) < self.slots() {
            let i = index(rtp.sequence, self.slots());
            if self.slot_is(i, SlotState::Held, rtp.sequence) {
                self.stats.duplicates += 1;
                return PushOutcome::Duplicate;
            }
            self.store(i, meta, rtp.payload);
            self.stats.received += 1;
            return PushOutcome::Accepted;
        }
        let behind = next.wrapping_sub(rtp.sequence);
        if behind <= MAX_MISORDER {
            let i = index(rtp.sequence, self.slots());
            if self.slot_is(i, SlotState::Released, rtp.sequence) {
                self.stats.duplicates += 1;
                return PushOutcome::Duplicate;
            }
            self.stats.late += 1;
            return PushOutcome::TooLate;
        }
        self.restart(meta, rtp.payload)
    }

    /// Releases the next packet or declared loss, if one is due at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<Released<'_>> {
        if self.pending.is_some() {
            if let Some(i) = self.next_held_index() {
                return self.release(i);
            }
            self.install_pending();
        }
        let next = self.next_seq?;
        if self.held_count == 0 {
            return None;
        }
        let i = index(next, self.slots());
        if self.slot_is(i, SlotState::Held, next) {
            return self.release(i);
        }
        // A hole at `next`: give up on it once the first packet after it has waited `delay`.
        let (after_seq, after) = self.first_held_after(next)?;
        if now.saturating_duration_since(after.arrival) < self.delay {
            return None;
        }
        let (timestamp_estimate, duration_estimate) = match self.last {
            Some((seq, ts)) => {
                let span = u64::from(after_seq.wrapping_sub(seq)).max(1);
                let step = u64::from(next.wrapping_sub(seq));
                let dt = u64::from(after.timestamp.wrapping_sub(ts));
                // A timestamp going backwards (dt near 2^32) gives no usable duration.
                let per_packet = if dt < 1 << 31 { dt / span } else { 0 };
                (
                    ts.wrapping_add((dt * step / span) as u32),
                    u32::try_from(per_packet).unwrap_or(0),
                )
            }
            None => (after.timestamp, 0),
        };
        self.next_seq = Some(next.wrapping_add(1));
        self.last = Some((next, timestamp_estimate));
        self.stats.lost += 1;
        Some(Released::Lost {
            seq: next,
            timestamp_estimate,
            duration_estimate,
        })
    }

    /// When [`pop`](Self::pop) next has something to release: a time in the past when a
    /// packet is ready now, the moment a hole will be declared lost, or `None` when nothing
    /// is held. Lets the call task sleep until then.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(p) = &self.pending {
            return Some(p.meta.arrival);
        }
        let next = self.next_seq?;
        if self.held_count == 0 {
            return None;
        }
        match self.meta.get(index(next, self.slots())) {
            Some(Some(m)) if m.state == SlotState::Held && m.seq == next => Some(m.arrival),
            _ => self
                .first_held_after(next)
                .map(|(_, after)| after.arrival + self.delay),
        }
    }

    fn slot_is(&self, i: usize, state: SlotState, seq: u16) -> bool {
        matches!(self.meta.get(i), Some(Some(m)) if m.state == state && m.seq == seq)
    }

    fn first_held_after(&self, next: u16) -> Option<(u16, Meta)> {
        (1..self.slots()).find_map(|k| {
            let seq = next.wrapping_add(k as u16);
            let i = index(seq, self.slots());
            match self.meta.get(i) {
                Some(Some(m)) if m.state == SlotState::Held && m.seq == seq => Some((seq, *m)),
                _ => None,
            }
        })
    }

    /// Bytes of payload storage held (for memory accounting).
    pub fn payload_capacity(&self) -> usize {
        self.data.len() + self.pending_data.capacity()
    }

    /// Makes every slot hold at least `len` bytes, keeping what the held slots contain.
    fn grow(&mut self, len: usize) {
        if len <= self.slot_size {
            return;
        }
        let new = len
            .next_multiple_of(32)
            .max(2 * self.slot_size)
            .min(MAX_PAYLOAD)
            .max(len);
        let mut data = vec![0u8; self.slots() * new];
        for (i, m) in self.meta.iter().enumerate() {
            if let Some(m) = m {
                let (from, to) = (i * self.slot_size, i * new);
                if let (Some(dst), Some(src)) = (
                    data.get_mut(to..to + m.len),
                    self.data.get(from..from + m.len),
                ) {
                    dst.copy_from_slice(src);
                }
            }
        }
        self.data = data;
        self.slot_size = new;
    }

    fn store(&mut self, i: usize, meta: Meta, payload: &[u8]) {
        self.grow(payload.len());
        let start = i * self.slot_size;
        if let Some(dst) = self.data.get_mut(start..start + payload.len()) {
            dst.copy_from_slice(payload);
        }
        if let Some(slot) = self.meta.get_mut(i) {
            if !matches!(slot, Some(m) if m.state == SlotState::Held) {
                self.held_count += 1;
            }
            *slot = Some(meta);
        }
    }

    fn release(&mut self, i: usize) -> Option<Released<'_>> {
        let slot = self.meta.get_mut(i)?.as_mut()?;
        slot.state = SlotState::Released;
        let m = *slot;
        self.held_count = self.held_count.saturating_sub(1);
        self.next_seq = Some(m.seq.wrapping_add(1));
        self.last = Some((m.seq, m.timestamp));
        let start = i * self.slot_size;
        let payload = self.data.get(start..start + m.len).unwrap_or(&[]);
        Some(Released::Packet {
            seq: m.seq,
            timestamp: m.timestamp,
            ssrc: m.ssrc,
            payload_type: m.payload_type,
            marker: m.marker,
            arrival: m.arrival,
            payload,
        })
    }

    /// While draining for a restart: the slot of the held packet with the lowest sequence
    /// number from `next_seq` on, released without waiting (holes in a finished stream are
    /// skipped).
    fn next_held_index(&self) -> Option<usize> {
        if self.held_count == 0 {
            return None;
        }
        let next = self.next_seq?;
        (0..self.slots()).find_map(|k| {
            let seq = next.wrapping_add(k as u16);
            let i = index(seq, self.slots());
            self.slot_is(i, SlotState::Held, seq).then_some(i)
        })
    }

    fn restart(&mut self, meta: Meta, payload: &[u8]) -> PushOutcome {
        self.stats.restarts += 1;
        self.stats.received += 1;
        if self.held_count == 0 {
            self.start_stream(meta, payload);
            return PushOutcome::Restarted;
        }
        self.pending_data.clear();
        self.pending_data.extend_from_slice(payload);
        self.pending = Some(Pending { meta });
        PushOutcome::Restarted
    }

    fn start_stream(&mut self, meta: Meta, payload: &[u8]) {
        self.clear_slots();
        self.ssrc = meta.ssrc;
        self.next_seq = Some(meta.seq);
        self.last = None;
        let i = index(meta.seq, self.slots());
        self.store(i, meta, payload);
    }

    fn install_pending(&mut self) {
        if let Some(Pending { meta }) = self.pending.take() {
            self.clear_slots();
            self.ssrc = meta.ssrc;
            self.next_seq = Some(meta.seq);
            self.last = None;
            let i = index(meta.seq, self.slots());
            self.grow(meta.len);
            let start = i * self.slot_size;
            if let (Some(dst), Some(src)) = (
                self.data.get_mut(start..start + meta.len),
                self.pending_data.get(..meta.len),
            ) {
                dst.copy_from_slice(src);
            }
            if let Some(slot) = self.meta.get_mut(i) {
                *slot = Some(meta);
                self.held_count = 1;
            }
        }
    }

    fn clear_slots(&mut self) {
        for m in self.meta.iter_mut() {
            *m = None;
        }
        self.held_count = 0;
    }
}

#[cfg(test)]
#[path = "reorder_tests.rs"]
mod tests;
