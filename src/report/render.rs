//! `rollguard report` written out: an aligned table that reads in an
//! 80-column terminal, one JSON document (its shape is the README's), or
//! CSV with a header and one row per app and per instance. Pure: each
//! takes the computed [`AppReport`]s and returns the text.

use serde::Serialize;

use super::availability::{AppReport, Latency, Outage, Results};
use super::{Since, Window};
use crate::clock::{local_time, minute_time};
use crate::model::Outcome;
use crate::printable::printable;

/// The version of the `--json` document, its `version` field.
pub const JSON_VERSION: u32 = 1;

/// What the report covers and what it found, for every format.
#[derive(Clone, Debug)]
pub struct Report {
    /// Where the window starts, as asked.
    pub since: Since,
    /// The window.
    pub window: Window,
    /// One per app, in the config's order then by name.
    pub apps: Vec<AppReport>,
}

/// A measured length in words: "850ms", "3.8s", "4m 5s", "2h 10m", "3d 4h".
pub fn length_words(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms}ms"),
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A latency for the table: "3.2ms", "45ms", "1.25s".
fn latency_words(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// An availability for the table, rounded down: 100.00% only when
/// nothing failed.
fn percent_words(p: f64) -> String {
    format!("{:.2}%", (p * 100.0).floor() / 100.0)
}

/// An outage for the table: "4m 5s at 12-01 21:33"; "≥" before the
/// length when it still went on at the end of the window.
fn outage_words(o: &Outage) -> String {
    let more = if o.ongoing { "≥" } else { "" };
    format!(
        "{more}{} at {}",
        length_words(o.length_ms),
        minute_time(o.start_ms)
    )
}

/// The table: a heading with the window, then per app a row for the app,
/// a row per instance, and lines for deployments, rollbacks and
/// incidents. Text from the history is made printable.
pub fn text(report: &Report) -> String {
    let words = report.since.words();
    let mut out = format!(
        "Report of {words}: {} → {} (local time)\n",
        local_time(report.window.from_ms),
        local_time(report.window.to_ms - 1)
    );
    if report.apps.is_empty() {
        out.push_str(&format!(
            "\nno probe results, deployments or incidents in {words}\n"
        ));
        return out;
    }
    let width = report
        .apps
        .iter()
        .flat_map(|a| {
            std::iter::once(a.app.chars().count())
                .chain(a.instances.iter().map(|i| i.instance.chars().count() + 2))
        })
        .max()
        .unwrap_or(0)
        .max(12);
    out.push_str(&format!(
        "\n{:<width$} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6}  LONGEST OUTAGE\n",
        "APP/INSTANCE", "AVAIL", "PROBES", "FAILS", "P50", "P95", "P99"
    ));
    for (n, a) in report.apps.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let name = printable(&a.app);
        if a.results.probes == 0 && a.deployments.total == 0 && a.incidents.total == 0 {
            out.push_str(&format!("{name:<width$} no probe results in {words}\n"));
            continue;
        }
        let outage = match &a.longest_outage {
            Some(o) => outage_words(o),
            None if a.results.probes == 0 => format!("no probe results in {words}"),
            None => "no incident".into(),
        };
        out.push_str(&row(&name, width, &a.results, &outage));
        for i in &a.instances {
            let outage = match &i.longest_outage {
                Some(o) => outage_words(o),
                None if i.results.probes == 0 => "no probe results".into(),
                None => "none".into(),
            };
            let name = format!("  {}", printable(&i.instance));
            out.push_str(&row(&name, width, &i.results, &outage));
        }
        out.push_str(&summary(a));
    }
    out
}

/// One row of the table.
fn row(name: &str, width: usize, r: &Results, outage: &str) -> String {
    let dash = || "-".to_string();
    let avail = r.availability_percent.map_or_else(dash, percent_words);
    let (p50, p95, p99) = match r.latency_ms {
        Some(Latency { p50, p95, p99 }) => {
            (latency_words(p50), latency_words(p95), latency_words(p99))
        }
        None => (dash(), dash(), dash()),
    };
    format!(
        "{name:<width$} {avail:>7} {:>7} {:>6} {p50:>6} {p95:>6} {p99:>6}  {outage}\n",
        r.probes, r.failures
    )
}

/// The lines under an app: deployments, rollbacks, incidents.
fn summary(a: &AppReport) -> String {
    let d = &a.deployments;
    let deployments = if d.total == 0 {
        "none".to_string()
    } else {
        let by: Vec<String> = d
            .by_outcome
            .iter()
            .map(|(o, n)| format!("{n} {}", printable(&o.replace('_', " "))))
            .collect();
        format!("{} ({})", d.total, by.join(", "))
    };
    let r = &a.rollbacks;
    let i = &a.incidents;
    let incidents = if i.total == 0 {
        "none".to_string()
    } else {
        let mttr = i
            .mean_time_to_recovery_ms
            .map_or_else(|| "-".into(), length_words);
        format!(
            "{} ({} resolved, {} open) · mean time to recovery: {mttr}",
            i.total, i.resolved, i.open
        )
    };
    format!(
        "  deployments: {deployments}\n  rollbacks: {} automatic, {} by hand\n  incidents: {incidents}\n",
        r.automatic, r.by_hand
    )
}

/// The `--json` document.
#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    window: String,
    since: Option<String>,
    since_ms: i64,
    until: Option<String>,
    until_ms: i64,
    apps: &'a [AppReport],
}

/// The report as one line of JSON: `version`, `window` (in words),
/// `since`/`until` (RFC 3339, UTC) and `since_ms`/`until_ms` (the window,
/// `until` excluded), and `apps` (each as [`AppReport`] serializes).
/// Control characters in strings are `\u` escapes, DEL and C1 too.
pub fn json(report: &Report) -> String {
    let doc = JsonReport {
        version: JSON_VERSION,
        window: report.since.words(),
        since: rfc3339(report.window.from_ms),
        since_ms: report.window.from_ms,
        until: rfc3339(report.window.to_ms),
        until_ms: report.window.to_ms,
        apps: &report.apps,
    };
    let line = serde_json::to_string(&doc)
        .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}).to_string());
    let mut out = String::with_capacity(line.len() + 1);
    for c in line.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// An RFC 3339 time in UTC, to the millisecond.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The CSV columns, in order.
pub fn csv_header() -> Vec<String> {
    let mut h: Vec<String> = [
        "app",
        "instance",
        "probes",
        "failures",
        "availability_percent",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "longest_outage_start",
        "longest_outage_ms",
        "longest_outage_ongoing",
        "deployments",
    ]
    .map(String::from)
    .to_vec();
    h.extend(Outcome::ALL.iter().map(|o| format!("deployments_{o}")));
    h.extend(
        [
            "deployments_unfinished",
            "rollbacks_automatic",
            "rollbacks_by_hand",
            "incidents",
            "incidents_resolved",
            "mean_time_to_recovery_ms",
        ]
        .map(String::from),
    );
    h
}

/// The report as CSV: [`csv_header`], then a row per app (`instance`
/// empty) followed by a row per instance (the app's columns empty).
/// Fields are quoted when they hold a comma, a quote or a line break.
pub fn csv(report: &Report) -> String {
    let mut out = csv_line(&csv_header());
    let opt = |v: Option<String>| v.unwrap_or_default();
    for a in &report.apps {
        let mut cells = results_cells(&a.app, "", &a.results, a.longest_outage.as_ref());
        let d = &a.deployments;
        cells.push(d.total.to_string());
        for o in Outcome::ALL {
            cells.push(
                d.by_outcome
                    .get(o.as_str())
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            );
        }
        cells.push(
            d.by_outcome
                .get("unfinished")
                .copied()
                .unwrap_or(0)
                .to_string(),
        );
        cells.push(a.rollbacks.automatic.to_string());
        cells.push(a.rollbacks.by_hand.to_string());
        cells.push(a.incidents.total.to_string());
        cells.push(a.incidents.resolved.to_string());
        cells.push(opt(a
            .incidents
            .mean_time_to_recovery_ms
            .map(|m| m.to_string())));
        out.push_str(&csv_line(&cells));
        for i in &a.instances {
            let mut cells =
                results_cells(&a.app, &i.instance, &i.results, i.longest_outage.as_ref());
            cells.resize(csv_header().len(), String::new());
            out.push_str(&csv_line(&cells));
        }
    }
    out
}

/// The columns an app and an instance share.
fn results_cells(app: &str, instance: &str, r: &Results, outage: Option<&Outage>) -> Vec<String> {
    let num = |v: Option<f64>| v.map(|f| f.to_string()).unwrap_or_default();
    vec![
        app.to_string(),
        instance.to_string(),
        r.probes.to_string(),
        r.failures.to_string(),
        num(r.availability_percent),
        num(r.latency_ms.map(|l| l.p50)),
        num(r.latency_ms.map(|l| l.p95)),
        num(r.latency_ms.map(|l| l.p99)),
        outage.and_then(|o| rfc3339(o.start_ms)).unwrap_or_default(),
        outage.map(|o| o.length_ms.to_string()).unwrap_or_default(),
        outage.map(|o| o.ongoing.to_string()).unwrap_or_default(),
    ]
}

/// One CSV line: each field printable, quoted when it must be.
fn csv_line(cells: &[String]) -> String {
    let fields: Vec<String> = cells
        .iter()
        .map(|c| {
            let c = printable(c);
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.into_owned()
            }
        })
        .collect();
    format!("{}\n", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::availability::{AppHistory, app_report};
    use crate::store::ResultTally;

    fn report() -> Report {
        let tally = |ok, latency_ms, count| ResultTally {
            instance: "web-1".into(),
            ok,
            latency_ms,
            count,
        };
        let history = AppHistory {
            tallies: vec![tally(true, Some(12.0), 9), tally(false, None, 1)],
            ..AppHistory::default()
        };
        Report {
            since: Since::Ago(std::time::Duration::from_secs(86_400)),
            window: Window {
                from_ms: 1_700_000_000_000,
                to_ms: 1_700_086_400_000,
            },
            apps: vec![
                app_report("web", &["web-1".into(), "web-2".into()], &history, 0),
                app_report("api", &[], &AppHistory::default(), 0),
            ],
        }
    }

    #[test]
    fn the_table_fits_80_columns_and_says_what_is_missing() {
        let t = text(&report());
        for line in t.lines() {
            assert!(line.chars().count() <= 80, "{line:?} is too wide");
        }
        assert!(t.contains("the last 24h"), "{t}");
        let web = t.lines().find(|l| l.starts_with("web ")).unwrap();
        assert!(web.contains("90.00%") && web.contains("12ms"), "{web}");
        let web2 = t.lines().find(|l| l.starts_with("  web-2")).unwrap();
        assert!(web2.contains("no probe results"), "{web2}");
        assert!(
            t.contains("api          no probe results in the last 24h"),
            "{t}"
        );
        assert!(!t.contains("NaN"), "{t}");
        assert_eq!(percent_words(99.999), "99.99%");
        assert_eq!(length_words(100_000), "1m 40s");
        assert_eq!(length_words(450), "450ms");
    }

    #[test]
    fn json_and_csv_carry_the_same_numbers() {
        let r = report();
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["since"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["apps"][0]["availability_percent"], 90.0);
        assert_eq!(v["apps"][0]["instances"][0]["latency_ms"]["p99"], 12.0);
        assert_eq!(
            v["apps"][1]["availability_percent"],
            serde_json::Value::Null
        );
        let c = csv(&r);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 1 + 3 + 1, "{c}");
        let width = csv_header().len();
        for l in &lines {
            assert_eq!(l.split(',').count(), width, "{l}");
        }
        assert!(lines[1].starts_with("web,,10,1,90,12,12,12,"), "{c}");
        assert!(lines[2].starts_with("web,web-1,10,1,90,"), "{c}");
        assert_eq!(
            csv_line(&["a,b".into(), "say \"hi\"".into()]),
            "\"a,b\",\"say \"\"hi\"\"\"\n"
        );
    }
}
