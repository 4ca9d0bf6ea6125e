//! DTMF: RFC 4733 telephone-event payloads, a detector that reports each key once, a
//! generator for the packets we send, and SIP INFO bodies (`application/dtmf-relay`,
//! `application/dtmf`).

mod detector;
mod generator;
mod info;

pub use detector::DtmfDetector;
pub use generator::{DtmfEvents, DtmfGenerator, DtmfPacket};
pub use info::parse_dtmf_info;

/// Why a telephone-event payload or a DTMF request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// Payload shorter than the 4-byte event block (malformed input).
    #[error("telephone-event payload of {0} bytes is shorter than 4")]
    TooShort(usize),
    /// A character that is not a DTMF key (our misuse when generating).
    #[error("'{0}' is not a DTMF key (0-9 * # A-D)")]
    NotAKey(char),
}

/// One RFC 4733 §2.3 event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 A-D, 16 flash, others per RFC 4734.
    pub event: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// Volume as a positive number of -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far in RTP clock ticks.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload (extra bytes are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte wire form (R bit zero).
    pub fn to_bytes(&self) -> [u8; 4] {
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3f);
        let d = self.duration.to_be_bytes();
        [self.event, flags, d[0], d[1]]
    }

    /// The key this event stands for, if it is a DTMF key.
    pub fn key(&self) -> Option<char> {
        event_to_key(self.event)
    }
}

const KEYS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// RFC 4733 §3.2 event code → key (`0`-`9`, `*`, `#`, `A`-`D`).
pub fn event_to_key(event: u8) -> Option<char> {
    KEYS.get(usize::from(event)).copied()
}

/// Key → RFC 4733 event code; lowercase `a`-`d` are accepted.
pub fn key_to_event(key: char) -> Option<u8> {
    let key = key.to_ascii_uppercase();
    KEYS.iter()
        .position(|&k| k == key)
        .and_then(|i| u8::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes() {
        let e = TelephoneEvent::parse(&[5, 0x8a, 0x03, 0x20]).unwrap();
        assert_eq!(
            e,
            TelephoneEvent {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(e.to_bytes(), [5, 0x8a, 0x03, 0x20]);
        assert_eq!(e.key(), Some('5'));
        // The R bit is ignored; trailing bytes are ignored.
        let e = TelephoneEvent::parse(&[11, 0x4a, 0, 160, 9, 9]).unwrap();
        assert_eq!((e.event, e.end, e.volume, e.duration), (11, false, 10, 160));
        assert_eq!(e.key(), Some('#'));
    }

    #[test]
    fn rejects_short_payloads() {
        for len in 0..4 {
            assert_eq!(
                TelephoneEvent::parse(&[1, 2, 3][..len.min(3)]),
                Err(DtmfError::TooShort(len.min(3)))
            );
        }
    }

    #[test]
    fn key_mapping() {
        assert_eq!(event_to_key(0), Some('0'));
        assert_eq!(event_to_key(10), Some('*'));
        assert_eq!(event_to_key(11), Some('#'));
        assert_eq!(event_to_key(15), Some('D'));
        assert_eq!(event_to_key(16), None, "flash is not a key");
        assert_eq!(event_to_key(255), None);
        for e in 0..16u8 {
            assert_eq!(key_to_event(event_to_key(e).unwrap()), Some(e));
        }
        assert_eq!(key_to_event('a'), Some(12));
        assert_eq!(key_to_event('x'), None);
        assert_eq!(key_to_event('E'), None);
    }
}
