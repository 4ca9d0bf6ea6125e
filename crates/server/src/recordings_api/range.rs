//! `Range: bytes=…` (RFC 9110 §14): one range is served (206), several or an unknown unit
//! are ignored (the whole file, 200, as the RFC allows), an unsatisfiable one gets 416.

/// What to send of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeOutcome {
    /// The whole file (no Range, or one this server ignores).
    Full,
    /// Bytes `start..=end` (206, `Content-Range: bytes start-end/size`).
    Partial { start: u64, end: u64 },
    /// 416, `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Interprets a Range header value against the current file size.
pub(crate) fn resolve(header: Option<&str>, size: u64) -> RangeOutcome {
    let Some(value) = header else {
        return RangeOutcome::Full;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Full;
    };
    if spec.contains(',') {
        // Multipart/byteranges is not implemented: ignoring the header is allowed.
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) if digits(last) => {
            let Ok(n) = last.parse::<u64>() else {
                return RangeOutcome::Full;
            };
            if n == 0 || size == 0 {
                return RangeOutcome::Unsatisfiable;
            }
            RangeOutcome::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        }
        // bytes=A- or bytes=A-B
        (false, _) if digits(first) && (last.is_empty() || digits(last)) => {
            let Ok(start) = first.parse::<u64>() else {
                return RangeOutcome::Unsatisfiable;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                last.parse::<u64>().unwrap_or(u64::MAX)
            };
            if end < start {
                // Syntactically invalid: ignored.
                return RangeOutcome::Full;
            }
            if start >= size {
                return RangeOutcome::Unsatisfiable;
            }
            RangeOutcome::Partial {
                start,
                end: end.min(size - 1),
            }
        }
        _ => RangeOutcome::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::*;

    #[test]
    fn single_ranges() {
        assert_eq!(resolve(None, 100), Full);
        assert_eq!(
            resolve(Some("bytes=0-9"), 100),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(
            resolve(Some("bytes=90-"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            resolve(Some("bytes=90-500"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            resolve(Some("bytes=-10"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            resolve(Some("bytes=-500"), 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            resolve(Some(" bytes= 5 - 6 "), 100),
            Partial { start: 5, end: 6 }
        );
        assert_eq!(
            resolve(Some("bytes=0-99999999999999999999999"), 100),
            Partial { start: 0, end: 99 }
        );
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(resolve(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(
            resolve(Some("bytes=99999999999999999999999-"), 100),
            Unsatisfiable
        );
        for ignored in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=",
            "bytes=1",
            "bytes=--1",
        ] {
            assert_eq!(resolve(Some(ignored), 100), Full, "{ignored}");
        }
    }
}
