//! The RFC 4733 packets for key presses we send (outbound legs, `callmux call --dtmf`).

use std::time::Duration;

use super::{key_to_event, DtmfError, TelephoneEvent};
use crate::rtp::RtpPacketizer;

/// One packet of a generated event, written with [`RtpPacketizer::write_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The event block (the duration grows packet by packet).
    pub event: TelephoneEvent,
    /// RTP marker: set on the first packet of the event.
    pub marker: bool,
    /// The last of the (three) end packets: the packetizer moves its timestamp on after it.
    pub last: bool,
    /// Media time from the event's start to the end of this packet's 20 ms slot, in RTP
    /// ticks; after the last packet the audio timestamp advances by this much, which keeps
    /// it in step with the wall clock when one packet is sent per 20 ms.
    pub elapsed: u32,
}

/// RFC 4733 sender for one leg: the negotiated telephone-event payload type and clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfGenerator {
    pt: u8,
    clock_rate: u32,
    volume: u8,
}

/// End packets sent per event (RFC 4733 §2.5.1.4).
const END_REPEATS: u8 = 3;
/// Default volume, -10 dBm0.
const DEFAULT_VOLUME: u8 = 10;

impl DtmfGenerator {
    /// A generator for telephone-event payload type `pt` at RTP clock `clock_rate`
    /// (8000, or 48000 next to Opus).
    pub fn new(pt: u8, clock_rate: u32) -> Self {
        Self {
            pt: pt & 0x7f,
            clock_rate,
            volume: DEFAULT_VOLUME,
        }
    }

    /// Sets the volume in -dBm0 (0-63).
    pub fn with_volume(mut self, volume: u8) -> Self {
        self.volume = volume.min(63);
        self
    }

    /// The telephone-event payload type.
    pub fn payload_type(&self) -> u8 {
        self.pt
    }

    /// The packet sequence for one key press lasting `duration`, one packet per 20 ms: a
    /// start packet with the marker, continuations with growing duration, then the end
    /// packet three times. The duration is clamped to 16 bits of ticks (8 s at 8 kHz).
    pub fn events(&self, key: char, duration: Duration) -> Result<DtmfEvents, DtmfError> {
        let event = key_to_event(key).ok_or(DtmfError::NotAKey(key))?;
        let ticks = |d: Duration| {
            let t = d.as_micros() * u128::from(self.clock_rate) / 1_000_000;
            u16::try_from(t).unwrap_or(u16::MAX).max(1)
        };
        Ok(DtmfEvents {
            event,
            volume: self.volume,
            total: ticks(duration),
            step: ticks(Duration::from_millis(20)),
            duration: 0,
            elapsed: 0,
            started: false,
            ends_sent: 0,
        })
    }

    /// The complete RTP packets for one key press, written by `packetizer` (sharing its
    /// SSRC and sequence numbers), to be sent one per 20 ms with audio paused meanwhile.
    /// Empty if `key` is not a DTMF key.
    pub fn packets(
        &self,
        key: char,
        duration: Duration,
        packetizer: &mut RtpPacketizer,
    ) -> Vec<Vec<u8>> {
        let Ok(events) = self.events(key, duration) else {
            return Vec::new();
        };
        events
            .map(|packet| {
                let mut out = Vec::with_capacity(16);
                packetizer.write_event(self.pt, &packet, &mut out);
                out
            })
            .collect()
    }
}

/// Iterator over the packets of one key press; see [`DtmfGenerator::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtmfEvents {
    event: u8,
    volume: u8,
    total: u16,
    step: u16,
    duration: u16,
    elapsed: u32,
    started: bool,
    ends_sent: u8,
}

impl Iterator for DtmfEvents {
    type Item = DtmfPacket;

    fn next(&mut self) -> Option<DtmfPacket> {
        if self.ends_sent >= END_REPEATS {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        if self.duration < self.total {
            self.duration = self.duration.saturating_add(self.step).min(self.total);
        }
        self.elapsed = self.elapsed.saturating_add(u32::from(self.step));
        let end = self.duration >= self.total;
        if end {
            self.ends_sent += 1;
        }
        Some(DtmfPacket {
            event: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.duration,
            },
            marker,
            last: self.ends_sent == END_REPEATS,
            elapsed: self.elapsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::DtmfDetector;
    use crate::rtp::parse_rtp;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn packet_sequence_for_100ms_at_8k() {
        let gen = DtmfGenerator::new(101, 8000);
        let packets: Vec<DtmfPacket> = gen.events('5', ms(100)).unwrap().collect();
        let summary: Vec<(u16, bool, bool, bool)> = packets
            .iter()
            .map(|p| (p.event.duration, p.event.end, p.marker, p.last))
            .collect();
        assert_eq!(
            summary,
            vec![
                (160, false, true, false),
                (320, false, false, false),
                (480, false, false, false),
                (640, false, false, false),
                (800, true, false, false),
                (800, true, false, false),
                (800, true, false, true),
            ]
        );
        assert!(packets
            .iter()
            .all(|p| p.event.event == 5 && p.event.volume == 10));
        assert_eq!(packets.last().map(|p| p.elapsed), Some(7 * 160));
    }

    #[test]
    fn short_long_and_48k_events() {
        let p: Vec<DtmfPacket> = DtmfGenerator::new(101, 8000)
            .events('#', ms(10))
            .unwrap()
            .collect();
        assert_eq!(p.len(), 3);
        assert!(p[0].marker && p[0].event.end && p[0].event.duration == 80);
        let p: Vec<DtmfPacket> = DtmfGenerator::new(110, 48000)
            .with_volume(99)
            .events('A', ms(40))
            .unwrap()
            .collect();
        let d: Vec<u16> = p.iter().map(|p| p.event.duration).collect();
        assert_eq!(d, vec![960, 1920, 1920, 1920]);
        assert_eq!((p[0].event.event, p[0].event.volume), (12, 63));
        let long = DtmfGenerator::new(101, 8000)
            .events('1', ms(60_000))
            .unwrap();
        assert_eq!(long.total, u16::MAX);
        assert_eq!(
            DtmfGenerator::new(101, 8000).events('x', ms(100)),
            Err(DtmfError::NotAKey('x'))
        );
    }

    #[test]
    fn generator_packetizer_detector_round_trip() {
        let mut pk = RtpPacketizer::new(0, 1);
        let start_ts = pk.timestamp;
        let gen = DtmfGenerator::new(101, 8000);
        let mut det = DtmfDetector::new();
        let mut keys = String::new();
        let mut seqs = Vec::new();
        for key in "159#*0D".chars() {
            let events: Vec<DtmfPacket> = gen.events(key, ms(100)).unwrap().collect();
            let packets = gen.packets(key, ms(100), &mut pk);
            assert_eq!(packets.len(), events.len());
            for (wire, packet) in packets.iter().zip(&events) {
                let v = parse_rtp(wire).unwrap();
                assert_eq!(v.payload_type, 101);
                assert_eq!(v.marker, packet.marker);
                assert_eq!(v.payload, &packet.event.to_bytes());
                seqs.push(v.sequence);
                keys.extend(det.push(v.timestamp, v.payload));
            }
        }
        assert_eq!(keys, "159#*0D");
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        // Each press took 7 packets of 20 ms: the audio clock moved on by that much.
        assert_eq!(pk.timestamp, start_ts.wrapping_add(7 * 7 * 160));
        assert!(gen.packets('x', ms(100), &mut pk).is_empty());
    }
}
