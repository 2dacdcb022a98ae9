//! Times: machine exports in UTC with an explicit offset, the report in the
//! reader's time zone with its abbreviation, so nobody has to guess which.

use jiff::{tz::TimeZone, Timestamp};

fn timestamp(ns: u64) -> Timestamp {
    // Nanoseconds since 1970 as u64 stay well inside jiff's range (year 2554).
    Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// ISO 8601 / RFC 3339 in UTC with microseconds, e.g. `2026-11-23T11:11:46.123456+00:00`.
pub(crate) fn iso_utc(ns: u64) -> String {
    timestamp(ns).to_zoned(TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

/// Microseconds since the epoch (Timesketch's `timestamp`).
pub(crate) fn micros(ns: u64) -> u64 {
    ns / 1_000
}

/// Nanoseconds since the epoch of an RFC 3339 time, as incidents store it.
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    let ts: Timestamp = s.parse().ok()?;
    u64::try_from(ts.as_nanosecond()).ok()
}

/// Formats times for a person in one time zone.
pub(crate) struct Clock {
    tz: TimeZone,
}

impl Clock {
    /// An unknown zone name falls back to UTC, which the shown abbreviation makes plain.
    pub(crate) fn new(name: Option<&str>) -> Clock {
        let tz = name.and_then(|n| TimeZone::get(n).ok()).unwrap_or(TimeZone::UTC);
        Clock { tz }
    }

    /// `2026-11-23 20:11:46 JST`
    pub(crate) fn long(&self, ns: u64) -> String {
        timestamp(ns).to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    /// `20:11:46.123`, for rows under a heading that gives the zone; with the
    /// date in front when `dated`, for timelines that cross midnight.
    pub(crate) fn row(&self, ns: u64, dated: bool) -> String {
        let format = if dated { "%Y-%m-%d %H:%M:%S%.3f" } else { "%H:%M:%S%.3f" };
        timestamp(ns).to_zoned(self.tz.clone()).strftime(format).to_string()
    }

    /// The zone's abbreviation at that time (`JST`, `UTC`, `CEST`).
    pub(crate) fn zone(&self, ns: u64) -> String {
        timestamp(ns).to_zoned(self.tz.clone()).strftime("%Z").to_string()
    }

    /// The calendar day, to tell whether times need their date.
    pub(crate) fn day(&self, ns: u64) -> jiff::civil::Date {
        timestamp(ns).to_zoned(self.tz.clone()).date()
    }
}
