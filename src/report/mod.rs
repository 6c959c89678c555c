//! Reading history back for people: `rollguard report` (per app and
//! instance over a window: availability, probes and failures, latency
//! percentiles, the longest outage, deployments, rollbacks and the mean
//! time to recovery), the hourly availability the console's History view
//! charts, and `rollguard incident` (the Markdown timeline of one incident
//! or deployment, to start a postmortem).
//!
//! Each part loads rows through the store's read-only queries, then
//! computes or renders with pure functions:
//! - [`availability`]: the report's numbers ([`availability::app_report`])
//!   and [`availability::hourly_availability`] ([`HourBucket`]s).
//! - [`render`]: the report as an aligned table, JSON or CSV.
//! - [`timeline`](mod@timeline): one incident's or deployment's rows ([`timeline::load`])
//!   and their Markdown ([`timeline::render`]); [`timeline::timeline`]
//!   does both, for the command and for a notification's `{timeline}`.
//! - [`markdown`]: text from hosts and users made safe in Markdown.
//! - [`cli`]: the two commands: options, opening the history read-only,
//!   errors with their code, output.

pub mod availability;
pub mod cli;
pub mod markdown;
pub mod postmortem;
pub mod render;
pub mod timeline;

use std::time::Duration;

pub use availability::{AppReport, HourBucket, hourly_availability};
pub use timeline::{Subject, timeline};

/// A span of time: `from_ms <= at_ms < to_ms`, ms since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its start, included.
    pub from_ms: i64,
    /// Its end, excluded.
    pub to_ms: i64,
}

/// Where a report's window starts: a length of time before now, or a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// That long before now (`30m`, `24h`, `7d`).
    Ago(Duration),
    /// That time (RFC 3339, e.g. `2026-12-01T00:00:00Z`), ms since the epoch.
    At(i64),
}

impl Since {
    /// Reads `--since`: a duration as the config writes them, or an RFC
    /// 3339 time.
    pub fn parse(s: &str) -> Result<Since, String> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
            return Ok(Since::At(t.timestamp_millis()));
        }
        crate::config::parse_duration(s)
            .map(Since::Ago)
            .map_err(|e| format!("{e}; or give a time such as 2026-12-01T00:00:00Z"))
    }

    /// The window from this start to `now_ms` (plus 1 ms, so a result
    /// stamped now is in it).
    pub fn window(self, now_ms: i64) -> Window {
        let to_ms = now_ms.saturating_add(1);
        let from_ms = match self {
            Since::Ago(d) => {
                now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            Since::At(ms) => ms,
        };
        Window {
            from_ms: from_ms.min(to_ms),
            to_ms,
        }
    }

    /// The window in words: "the last 24h", "the time since 2026-12-01
    /// 00:00:00" (local time).
    pub fn words(self) -> String {
        match self {
            // Up to two days in hours, as people ask for them: "24h".
            Since::Ago(d) if d.as_secs() % 3600 == 0 && (1..=48 * 3600).contains(&d.as_secs()) => {
                format!("the last {}h", d.as_secs() / 3600)
            }
            Since::Ago(d) => format!("the last {}", crate::config::format_duration(d)),
            Since::At(ms) => format!("the time since {}", crate::clock::local_time(ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_time() {
        assert_eq!(
            Since::parse("24h"),
            Ok(Since::Ago(Duration::from_secs(86_400)))
        );
        assert_eq!(
            Since::parse("2023-11-14T22:13:20Z"),
            Ok(Since::At(1_700_000_000_000))
        );
        assert!(
            Since::parse("yesterday")
                .unwrap_err()
                .contains("2026-12-01T00:00:00Z")
        );
        let w = Since::Ago(Duration::from_secs(60)).window(100_000);
        assert_eq!((w.from_ms, w.to_ms), (40_000, 100_001));
        // A start after now is an empty window, not a reversed one.
        let w = Since::At(200_000).window(100_000);
        assert_eq!(w.from_ms, w.to_ms);
        assert_eq!(
            Since::Ago(Duration::from_secs(7 * 86_400)).words(),
            "the last 7d"
        );
        assert_eq!(
            Since::Ago(Duration::from_secs(86_400)).words(),
            "the last 24h"
        );
        assert_eq!(
            Since::Ago(Duration::from_secs(1800)).words(),
            "the last 30m"
        );
    }
}
