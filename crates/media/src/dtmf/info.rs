//! DTMF carried in SIP INFO bodies: `application/dtmf-relay` (`Signal=5\r\nDuration=160`)
//! and `application/dtmf` (`5`).

use super::{event_to_key, key_to_event};

/// Reads the key from a SIP INFO body, or `None` if the content type is not a DTMF one or
/// the body names no key. Signals may be a key character or an event number (`10` = `*`).
pub fn parse_dtmf_info(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let body = std::str::from_utf8(body).ok()?;
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        body.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| signal(value))?
        })
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        signal(body)
    } else {
        None
    }
}

fn signal(value: &str) -> Option<char> {
    let value = value.trim();
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => key_to_event(c).and_then(event_to_key),
        _ if value.len() <= 3 && value.bytes().all(|b| b.is_ascii_digit()) => {
            value.parse::<u8>().ok().and_then(event_to_key)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay() {
        let ct = "application/dtmf-relay";
        assert_eq!(
            parse_dtmf_info(ct, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            parse_dtmf_info(ct, b"Signal= #\r\nDuration= 250"),
            Some('#')
        );
        assert_eq!(parse_dtmf_info(ct, b"signal=*"), Some('*'));
        assert_eq!(parse_dtmf_info(ct, b"Duration=160\nSignal=d\n"), Some('D'));
        assert_eq!(parse_dtmf_info(ct, b"Signal=10"), Some('*'));
        assert_eq!(parse_dtmf_info(ct, b"Signal=11"), Some('#'));
        assert_eq!(
            parse_dtmf_info("Application/DTMF-Relay; charset=utf-8", b"Signal=0"),
            Some('0')
        );
    }

    #[test]
    fn dtmf_plain() {
        assert_eq!(parse_dtmf_info("application/dtmf", b"5"), Some('5'));
        assert_eq!(parse_dtmf_info("application/dtmf", b" 9\r\n"), Some('9'));
        assert_eq!(parse_dtmf_info("application/dtmf", b"11"), Some('#'));
    }

    #[test]
    fn rejects_garbage() {
        let ct = "application/dtmf-relay";
        assert_eq!(parse_dtmf_info(ct, b""), None);
        assert_eq!(parse_dtmf_info(ct, b"Signal="), None);
        assert_eq!(parse_dtmf_info(ct, b"Signal=X"), None);
        assert_eq!(
            parse_dtmf_info(ct, b"Signal=16"),
            None,
            "flash is not a key"
        );
        assert_eq!(parse_dtmf_info(ct, b"Signal=55"), None);
        assert_eq!(parse_dtmf_info(ct, b"Signal=99999999999"), None);
        assert_eq!(parse_dtmf_info(ct, b"Duration=160"), None);
        assert_eq!(parse_dtmf_info(ct, &[b'S', 0xff, 0xfe]), None);
        assert_eq!(parse_dtmf_info("application/dtmf", b"12345"), None);
        assert_eq!(parse_dtmf_info("application/dtmf", b""), None);
        assert_eq!(parse_dtmf_info("application/sdp", b"5"), None);
        assert_eq!(parse_dtmf_info("", b"5"), None);
    }
}
