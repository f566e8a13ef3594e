//! Event and checkpoint times in one fixed text form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, Time, UtcDateTime};

/// Length in bytes of every [`AuditTime`] string: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const AUDIT_TIME_LEN: usize = 27;

/// A UTC instant with microsecond precision, always spelled
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (e.g. `2026-11-29T05:00:00.123456Z`).
///
/// The hash covers this exact string, so a chain verifies the same whatever timestamp
/// type a database used to store it. The width is fixed, so comparing the strings
/// orders them in time: a store can index the text and search with `time >= ?`.
/// Only this one spelling is accepted when parsing: a re-formatted time is refused
/// instead of being silently normalised into a hash mismatch.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditTime(String);

impl AuditTime {
    /// Converts from any offset to UTC, truncating to whole microseconds (the finest
    /// precision common databases keep, so a round trip through a store is lossless).
    pub fn from_datetime(datetime: OffsetDateTime) -> Result<Self, TimeError> {
        Self::from_utc(datetime.to_utc())
    }

    /// From microseconds since the Unix epoch, the form SQLite stores compactly.
    pub fn from_unix_micros(micros: i64) -> Result<Self, TimeError> {
        let utc = UtcDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .map_err(|_| TimeError::OutOfRange)?;
        Self::from_utc(utc)
    }

    fn from_utc(utc: UtcDateTime) -> Result<Self, TimeError> {
        let year = utc.year();
        if !(0..=9999).contains(&year) {
            return Err(TimeError::OutOfRange);
        }
        Ok(AuditTime(format!(
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second(),
            utc.microsecond(),
        )))
    }

    /// Parses the fixed form and nothing else (no other offsets, precisions or
    /// separators), checking that the date and time exist.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        Self::components(text)?;
        Ok(AuditTime(text.to_owned()))
    }

    /// Validates `text` and returns it as a date-time.
    fn components(text: &str) -> Result<UtcDateTime, TimeError> {
        let invalid = || TimeError::Format(text.chars().take(40).collect());
        let bytes = text.as_bytes();
        if bytes.len() != AUDIT_TIME_LEN {
            return Err(invalid());
        }
        // Positions of the fixed separators; every other byte must be an ASCII digit.
        const SEPARATORS: [(usize, u8); 7] = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ];
        for (i, &b) in bytes.iter().enumerate() {
            let ok = match SEPARATORS.iter().find(|(at, _)| *at == i) {
                Some(&(_, sep)) => b == sep,
                None => b.is_ascii_digit(),
            };
            if !ok {
                return Err(invalid());
            }
        }
        let num = |from: usize, to: usize| -> u32 {
            bytes[from..to]
                .iter()
                .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
        };
        // The numbers have at most 6 digits, so the conversions below cannot truncate.
        let year = i32::try_from(num(0, 4)).map_err(|_| invalid())?;
        let month = u8::try_from(num(5, 7))
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(invalid)?;
        let small = |from, to| u8::try_from(num(from, to)).map_err(|_| invalid());
        let date = Date::from_calendar_date(year, month, small(8, 10)?)
            .map_err(|_| TimeError::Nonexistent(text.to_owned()))?;
        let time =
            Time::from_hms_micro(small(11, 13)?, small(14, 16)?, small(17, 19)?, num(20, 26))
                .map_err(|_| TimeError::Nonexistent(text.to_owned()))?;
        Ok(UtcDateTime::new(date, time))
    }

    /// The fixed text form, exactly as hashed and stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instant, for arithmetic and display in other forms.
    pub fn to_datetime(&self) -> OffsetDateTime {
        Self::components(&self.0)
            .expect("an AuditTime is only built from a valid string")
            .into()
    }

    /// Microseconds since the Unix epoch, for stores that keep an integer column.
    pub fn unix_micros(&self) -> i64 {
        let nanos = self.to_datetime().unix_timestamp_nanos();
        // Years 0..=9999 are about ±3e17 µs from the epoch, far inside i64.
        i64::try_from(nanos.div_euclid(1000)).expect("years 0..=9999 fit in i64 microseconds")
    }
}

impl fmt::Display for AuditTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AuditTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditTime({})", self.0)
    }
}

impl FromStr for AuditTime {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditTime::parse(s)
    }
}

impl Serialize for AuditTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AuditTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        AuditTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a time could not become an [`AuditTime`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text is not in the one accepted form.
    #[error("time {0:?} is not in the form YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC, microseconds)")]
    Format(String),
    /// The text has the right shape but names a date or time that does not exist.
    #[error("time {0:?} names a date or time that does not exist")]
    Nonexistent(String),
    /// The instant is outside years 0000 to 9999, which the fixed width cannot spell.
    #[error("time is outside the years 0000 to 9999")]
    OutOfRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_fixed_width() {
        let t = AuditTime::from_unix_micros(1_795_928_400_123_456).unwrap();
        assert_eq!(t.as_str(), "2026-11-29T05:00:00.123456Z");
        assert_eq!(t.unix_micros(), 1_795_928_400_123_456);
        let epoch = AuditTime::from_unix_micros(0).unwrap();
        assert_eq!(epoch.as_str(), "1970-01-01T00:00:00.000000Z");
        let before = AuditTime::from_unix_micros(-1).unwrap();
        assert_eq!(before.as_str(), "1969-12-31T23:59:59.999999Z");
        assert_eq!(before.unix_micros(), -1);
    }

    #[test]
    fn converts_offsets_to_utc_and_truncates_nanoseconds() {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(1_795_928_400_123_456_789)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        let t = AuditTime::from_datetime(dt).unwrap();
        assert_eq!(t.as_str(), "2026-11-29T05:00:00.123456Z");
        assert_eq!(t.to_datetime().unix_timestamp(), 1_795_928_400);
    }

    #[test]
    fn string_order_is_time_order() {
        let times = [
            -5_000_000_i64,
            -1,
            0,
            1,
            999_999,
            1_000_000,
            1_795_928_400_123_456,
        ];
        for pair in times.windows(2) {
            let a = AuditTime::from_unix_micros(pair[0]).unwrap();
            let b = AuditTime::from_unix_micros(pair[1]).unwrap();
            assert!(a.as_str() < b.as_str(), "{a} < {b}");
        }
    }

    #[test]
    fn parse_accepts_only_the_fixed_form() {
        assert!(AuditTime::parse("2026-11-29T05:00:00.123456Z").is_ok());
        for bad in [
            "2026-11-29T05:00:00Z",
            "2026-11-29T05:00:00.123Z",
            "2026-11-29 05:00:00.123456Z",
            "2026-11-29T05:00:00.123456+00:00",
            "2026-11-29t05:00:00.123456z",
            "２026-11-29T05:00:00.12345Z",
            "",
        ] {
            assert!(
                matches!(AuditTime::parse(bad), Err(TimeError::Format(_))),
                "{bad:?}"
            );
        }
        for nonexistent in [
            "2026-02-30T05:00:00.000000Z",
            "2026-11-29T24:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
        ] {
            assert!(AuditTime::parse(nonexistent).is_err(), "{nonexistent}");
        }
        assert_eq!(
            AuditTime::parse("2026-02-30T05:00:00.000000Z")
                .unwrap_err()
                .to_string(),
            "time \"2026-02-30T05:00:00.000000Z\" names a date or time that does not exist"
        );
    }

    #[test]
    fn refuses_years_beyond_four_digits() {
        let far = OffsetDateTime::new_utc(
            Date::from_calendar_date(-1, Month::January, 1).unwrap(),
            Time::MIDNIGHT,
        );
        assert_eq!(AuditTime::from_datetime(far), Err(TimeError::OutOfRange));
        assert_eq!(
            AuditTime::from_unix_micros(i64::MAX),
            Err(TimeError::OutOfRange)
        );
    }
}
