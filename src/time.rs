//! Points in time, parsed once at the edges (command-line cutoffs, index
//! upload times, snapshot metadata) into one type backed by jiff, and
//! written back in one canonical form, `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole
//! seconds), which the knowledge base stores and compares as text.

use std::fmt;

/// A UTC point in time with whole-second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

/// A date or time that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date `{text}`: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")]
pub struct TimeError {
    /// The text given.
    pub text: String,
}

impl Timestamp {
    /// Now, to the second.
    pub fn now() -> Self {
        Self::from_unix(jiff::Timestamp::now().as_second())
            .unwrap_or(Self(jiff::Timestamp::UNIX_EPOCH))
    }

    /// `secs` seconds after the Unix epoch, if representable.
    pub fn from_unix(secs: i64) -> Option<Self> {
        jiff::Timestamp::from_second(secs).ok().map(Self)
    }

    /// Seconds after the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.as_second()
    }

    /// A cutoff as users write one: `YYYY-MM-DD` (midnight UTC), or a date
    /// and time with `Z`, an offset, or none (UTC).
    pub fn parse_cutoff(text: &str) -> Result<Self, TimeError> {
        let t = text.trim();
        let bad = || TimeError {
            text: t.to_string(),
        };
        if t.len() == 10 {
            let date: jiff::civil::Date = t.parse().map_err(|_| bad())?;
            return date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| Self(z.timestamp()))
                .map_err(|_| bad());
        }
        Self::parse_time(t).ok_or_else(bad)
    }

    /// A date and time as indexes and snapshots write them: with `Z` or an
    /// offset, or none (read as UTC); `T` or a space between date and time;
    /// fractions of a second dropped.
    pub fn parse_time(text: &str) -> Option<Self> {
        let t = text.trim();
        if let Ok(ts) = t.parse::<jiff::Timestamp>() {
            return Self::from_unix(ts.as_second());
        }
        let civil: jiff::civil::DateTime = t.parse().ok()?;
        let ts = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        Self::from_unix(ts.as_second())
    }

    /// Whole days from `self` to `later` (0 when `later` is not later).
    pub fn days_until(self, later: Self) -> i64 {
        ((later.unix() - self.unix()) / 86_400).max(0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_read_dates_and_times() {
        let t = |s: &str| Timestamp::parse_cutoff(s).map(|t| t.to_string());
        assert_eq!(t("2024-02-29").unwrap(), "2024-02-29T00:00:00Z");
        assert_eq!(t("2024-03-01T12:30:00Z").unwrap(), "2024-03-01T12:30:00Z");
        assert_eq!(
            t("2024-03-01T14:30:00+02:00").unwrap(),
            "2024-03-01T12:30:00Z"
        );
        assert_eq!(t("2024-03-01 12:30").unwrap(), "2024-03-01T12:30:00Z");
        for bad in ["2023-02-29", "2024-13-01", "yesterday", "2024-01-0é", ""] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_times_normalise_and_count_seconds() {
        let t = |s: &str| Timestamp::parse_time(s).map(|t| t.to_string());
        assert_eq!(
            t("2023-05-22T15:12:44.123456Z").as_deref(),
            Some("2023-05-22T15:12:44Z")
        );
        assert_eq!(
            t("2023-05-22 15:12:44").as_deref(),
            Some("2023-05-22T15:12:44Z")
        );
        assert_eq!(t("2024-01-01T00:0é:00Z"), None);
        assert_eq!(
            Timestamp::parse_time("1970-01-01T00:00:00Z").map(Timestamp::unix),
            Some(0)
        );
        assert_eq!(
            Timestamp::parse_time("2024-02-29T12:30:05Z").map(Timestamp::unix),
            Some(1_709_209_805)
        );
        let a = Timestamp::parse_time("2024-10-10T00:00:00Z").unwrap();
        let b = Timestamp::parse_time("2026-11-28T23:00:00Z").unwrap();
        assert_eq!(a.days_until(b), 779);
        assert_eq!(b.days_until(a), 0);
    }
}
