//! Wall-clock stamps as Vonage writes them: RFC 3339, UTC, millisecond precision
//! (`2024-05-01T12:00:00.123Z`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// A wall-clock instant truncated to milliseconds, serialised as an RFC 3339 UTC string
/// with exactly three fractional digits, the form every event field (`timestamp`,
/// `start_time`, `end_time`) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

/// Why a string is not a timestamp this crate can represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The text is not RFC 3339.
    #[error("not an RFC 3339 timestamp: {0}")]
    Syntax(String),
    /// The instant is outside the years 0000–9999 that RFC 3339 can write.
    #[error("timestamp out of range")]
    OutOfRange,
}

impl Timestamp {
    /// The Unix epoch; handy as a fixed value in tests.
    pub const UNIX_EPOCH: Self = Self { unix_ms: 0 };

    /// Stamp from a wall-clock time (truncated to whole milliseconds; times before the
    /// epoch and beyond year 9999 are clamped so formatting can never fail).
    pub fn from_system_time(t: SystemTime) -> Self {
        let unix_ms = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Self::from_unix_ms(unix_ms)
    }

    /// Stamp from milliseconds since the Unix epoch (clamped to years 0000–9999).
    pub fn from_unix_ms(unix_ms: i64) -> Self {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
        const MIN_MS: i64 = -62_167_219_200_000;
        const MAX_MS: i64 = 253_402_300_799_999;
        Self {
            unix_ms: unix_ms.clamp(MIN_MS, MAX_MS),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> i64 {
        self.unix_ms
    }

    /// The stamp as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        let abs = Duration::from_millis(self.unix_ms.unsigned_abs());
        if self.unix_ms >= 0 {
            UNIX_EPOCH + abs
        } else {
            UNIX_EPOCH - abs
        }
    }

    /// Parse any RFC 3339 timestamp (any offset, any precision); the result is converted
    /// to UTC and truncated to milliseconds.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let dt = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| TimestampError::Syntax(e.to_string()))?;
        let ms = dt.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(ms)
            .map(Self::from_unix_ms)
            .map_err(|_| TimestampError::OutOfRange)
    }

    fn format(self) -> Result<String, TimestampError> {
        let fmt = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.unix_ms) * 1_000_000)
            .map_err(|_| TimestampError::OutOfRange)?
            .format(&fmt)
            .map_err(|_| TimestampError::OutOfRange)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Self::from_system_time(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format() {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.format().map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        let t = UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(Timestamp::from(t).to_string(), "2024-05-01T12:00:00.123Z");
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn truncates_sub_millisecond() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(Timestamp::from(t).unix_ms(), 1);
    }

    #[test]
    fn before_epoch_and_far_future_clamp_instead_of_failing() {
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(
            Timestamp::from(before).to_string(),
            "1969-12-31T23:59:58.500Z"
        );
        let far = Timestamp::from_unix_ms(i64::MAX);
        assert_eq!(far.to_string(), "9999-12-31T23:59:59.999Z");
        let early = Timestamp::from_unix_ms(i64::MIN);
        assert_eq!(early.to_string(), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_offsets_and_round_trips() {
        let t = Timestamp::parse("2024-05-01T14:00:00.123456+02:00").unwrap();
        assert_eq!(t.to_string(), "2024-05-01T12:00:00.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        let sys = t.to_system_time();
        assert_eq!(Timestamp::from(sys), t);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T25:00:00Z",
            "yesterday",
            "2024-05-01T12:00:00",
            "\u{0}",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} accepted");
        }
        let json = serde_json::from_str::<Timestamp>("42");
        assert!(json.is_err());
    }

    #[test]
    fn negative_sub_second_before_epoch_round_trips() {
        let t = Timestamp::parse("1969-12-31T23:59:59.250Z").unwrap();
        assert_eq!(t.unix_ms(), -750);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.250Z");
    }
}
