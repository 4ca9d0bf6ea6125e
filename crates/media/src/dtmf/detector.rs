//! Turns a stream of RFC 4733 packets into key presses, each reported exactly once.

use super::{event_to_key, TelephoneEvent};

/// How far back (in RTP ticks) a timestamp may be and still count as an old event's
/// straggler rather than a new stream: 10 s at 48 kHz.
const STRAGGLER_WINDOW: u32 = 480_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Current {
    timestamp: u32,
    key: Option<char>,
    reported: bool,
}

/// Per-leg RFC 4733 detector. One event is one RTP timestamp; it is reported on its first
/// end packet (the usual three end retransmissions count once), or, if every end packet was
/// lost, when the next event starts (or on [`flush`](Self::flush)). Call
/// [`reset`](Self::reset) when the sender's SSRC changes: timestamps of a new stream may
/// look like stragglers of the old one.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    current: Option<Current>,
    malformed: u64,
}

impl DtmfDetector {
    /// A detector with no event in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one telephone-event packet (its RTP timestamp and payload); returns a key when
    /// one is complete. Malformed payloads are counted and ignored.
    pub fn push(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let Ok(event) = TelephoneEvent::parse(payload) else {
            self.malformed += 1;
            return None;
        };
        if let Some(cur) = &mut self.current {
            if cur.timestamp == rtp_timestamp {
                if event.end && !cur.reported {
                    cur.reported = true;
                    return cur.key;
                }
                return None;
            }
            let back = cur.timestamp.wrapping_sub(rtp_timestamp);
            if back > 0 && back <= STRAGGLER_WINDOW {
                // A late packet of an earlier event: already handled.
                return None;
            }
        }
        // A new event starts; an earlier one whose end never came is reported now.
        let unreported = self.flush();
        let key = event_to_key(event.event);
        let mut next = Current {
            timestamp: rtp_timestamp,
            key,
            reported: key.is_none(),
        };
        let result = match (unreported, event.end && key.is_some()) {
            (Some(prev), _) => Some(prev),
            (None, true) => {
                next.reported = true;
                key
            }
            (None, false) => None,
        };
        self.current = Some(next);
        result
    }

    /// Reports an event still in progress whose end never arrived (call it when the stream
    /// ends or after a quiet period) and marks it done.
    pub fn flush(&mut self) -> Option<char> {
        let cur = self.current.as_mut()?;
        if cur.reported {
            return None;
        }
        cur.reported = true;
        cur.key
    }

    /// Forgets the event in progress (new SSRC).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Malformed payloads seen.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn reports_once_on_end_with_retransmissions() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &ev(5, false, 160)), None);
        assert_eq!(d.push(1000, &ev(5, false, 320)), None);
        assert_eq!(d.push(1000, &ev(5, true, 480)), Some('5'));
        assert_eq!(d.push(1000, &ev(5, true, 480)), None);
        assert_eq!(d.push(1000, &ev(5, true, 480)), None);
        assert_eq!(d.flush(), None);
    }

    #[test]
    fn lost_end_is_reported_when_next_event_starts() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &ev(1, false, 160)), None);
        assert_eq!(d.push(1000, &ev(1, false, 320)), None);
        assert_eq!(d.push(2000, &ev(2, false, 160)), Some('1'));
        assert_eq!(d.push(2000, &ev(2, true, 320)), Some('2'));
    }

    #[test]
    fn lost_end_followed_by_lone_end_packet() {
        let mut d = DtmfDetector::new();
        d.push(1000, &ev(1, false, 160));
        // Only an end packet of the next event arrives: the first key comes out now, the
        // second on its retransmission.
        assert_eq!(d.push(2000, &ev(2, true, 320)), Some('1'));
        assert_eq!(d.push(2000, &ev(2, true, 320)), Some('2'));
        assert_eq!(d.push(2000, &ev(2, true, 320)), None);
    }

    #[test]
    fn only_end_packets_received() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &ev(11, true, 800)), Some('#'));
        assert_eq!(d.push(1000, &ev(11, true, 800)), None);
        assert_eq!(d.push(1800, &ev(10, true, 800)), Some('*'));
    }

    #[test]
    fn same_key_twice_is_two_presses() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &ev(7, true, 800)), Some('7'));
        assert_eq!(d.push(5000, &ev(7, false, 160)), None);
        assert_eq!(d.push(5000, &ev(7, true, 800)), Some('7'));
    }

    #[test]
    fn late_straggler_of_old_event_is_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &ev(3, true, 800)), Some('3'));
        assert_eq!(d.push(2000, &ev(4, false, 160)), None);
        assert_eq!(d.push(1000, &ev(3, true, 800)), None);
        assert_eq!(d.push(2000, &ev(4, true, 800)), Some('4'));
    }

    #[test]
    fn timestamp_wrap_and_far_jump_are_new_events() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(u32::MAX - 100, &ev(1, true, 800)), Some('1'));
        assert_eq!(d.push(700, &ev(2, true, 800)), Some('2'));
        // A new stream with timestamps far "behind" is not mistaken for stragglers.
        assert_eq!(
            d.push(700u32.wrapping_sub(1 << 30), &ev(3, true, 800)),
            Some('3')
        );
    }

    #[test]
    fn flush_reports_unfinished_key_once() {
        let mut d = DtmfDetector::new();
        d.push(1000, &ev(9, false, 160));
        assert_eq!(d.flush(), Some('9'));
        assert_eq!(d.flush(), None);
        assert_eq!(d.push(1000, &ev(9, true, 480)), None, "already reported");
    }

    #[test]
    fn non_keys_and_malformed_are_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1000, &ev(16, true, 800)), None, "flash");
        assert_eq!(d.push(1000, &[1, 2]), None);
        assert_eq!(d.malformed(), 1);
        assert_eq!(d.flush(), None);
        d.reset();
        assert_eq!(d.push(1000, &ev(0, true, 800)), Some('0'));
    }
}
