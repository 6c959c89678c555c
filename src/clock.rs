//! Times as people read them: a stored time (ms since the epoch) written
//! in this machine's local time, at the precision each place shows; `?`
//! for a number that is no time.
//!
//! The local zone is read once (`TZ`, else `/etc/localtime`; UTC when
//! neither names one) and kept as a whole zone with its rules, not as
//! today's offset: writing a time afterwards touches no file (the
//! console's draw path does no I/O; [`read_zone`] reads it before the
//! first frame), and a time from summer is written with summer's offset
//! whenever it is written.

use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// This machine's time zone, read on first use.
static ZONE: LazyLock<TimeZone> = LazyLock::new(this_machines_zone);

/// Reads this machine's time zone now, if it has not been read yet, so
/// that no later time written reads a file.
pub fn read_zone() {
    LazyLock::force(&ZONE);
}

/// `YYYY-MM-DD HH:MM:SS` local time of `ms` (as `history` and `events`
/// print it), or `?`.
pub fn local_time(ms: i64) -> String {
    written(&ZONE, ms, "%Y-%m-%d %H:%M:%S")
}

/// `MM-DD HH:MM:SS` local time of `ms` (the console's History), or `?`.
pub fn day_time(ms: i64) -> String {
    written(&ZONE, ms, "%m-%d %H:%M:%S")
}

/// `MM-DD HH:MM` local time of `ms` (`report`'s outages), or `?`.
pub fn minute_time(ms: i64) -> String {
    written(&ZONE, ms, "%m-%d %H:%M")
}

/// `HH:MM:SS` local time of `ms`, or `?`.
pub fn clock_time(ms: i64) -> String {
    written(&ZONE, ms, "%H:%M:%S")
}

/// The zone `TZ` names, else the one `/etc/localtime` holds (also when
/// `TZ` names no zone), else UTC.
fn this_machines_zone() -> TimeZone {
    TimeZone::try_system()
        .ok()
        .or_else(|| {
            let data = std::fs::read("/etc/localtime").ok()?;
            TimeZone::tzif("localtime", &data).ok()
        })
        .unwrap_or(TimeZone::UTC)
}

/// `ms` in `zone`, in `format`, or `?` when `ms` is no time. A time past
/// the years the zone knows (-9999 to 9999) takes the offset at their end.
fn written(zone: &TimeZone, ms: i64, format: &str) -> String {
    let Some(utc) = DateTime::from_timestamp_millis(ms) else {
        return "?".into();
    };
    let at = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    match FixedOffset::east_opt(zone.to_offset(at).seconds()) {
        Some(offset) => utc.with_timezone(&offset).format(format).to_string(),
        None => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-07-01 12:00:00 UTC, in summer time in Berlin.
    const SUMMER_MS: i64 = 1_688_212_800_000;
    /// 2023-01-15 12:00:00 UTC, in winter time in Berlin.
    const WINTER_MS: i64 = 1_673_784_000_000;

    #[test]
    fn each_time_is_written_with_the_offset_of_its_own_season() {
        // Europe/Berlin's rule, as its zone file ends: CET, and CEST from
        // the last Sunday of March to the last Sunday of October.
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let f = "%Y-%m-%d %H:%M:%S";
        assert_eq!(written(&berlin, SUMMER_MS, f), "2023-07-01 14:00:00");
        assert_eq!(written(&berlin, WINTER_MS, f), "2023-01-15 13:00:00");
        // The same through the zone database, where the machine has it.
        if let Ok(berlin) = TimeZone::get("Europe/Berlin") {
            assert_eq!(written(&berlin, SUMMER_MS, f), "2023-07-01 14:00:00");
            assert_eq!(written(&berlin, WINTER_MS, f), "2023-01-15 13:00:00");
        }
        // New York, behind UTC: the day changes too.
        let new_york = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(
            written(&new_york, SUMMER_MS - 43_200_000, f),
            "2023-06-30 20:00:00"
        );
        assert_eq!(
            written(&new_york, WINTER_MS - 43_200_000, f),
            "2023-01-14 19:00:00"
        );
    }

    #[test]
    fn a_number_that_is_no_time_is_a_question_mark() {
        assert_eq!(written(&TimeZone::UTC, i64::MAX, "%H:%M:%S"), "?");
        assert_eq!(written(&TimeZone::UTC, i64::MIN, "%H:%M:%S"), "?");
        assert_eq!(
            written(&TimeZone::UTC, 0, "%Y-%m-%d %H:%M:%S"),
            "1970-01-01 00:00:00"
        );
    }
}
