//! The numbers of `rollguard report`, computed from rows the store has
//! aggregated ([`AppHistory`], loaded by [`load`]): availability, probes
//! and failures, latency percentiles, the longest outage, deployments,
//! rollbacks and the mean time to recovery, per app and per instance; and
//! the hourly availability the console's History view draws
//! ([`hourly_availability`]). Everything but [`load`] and
//! [`hourly_availability`] is pure.
//!
//! What the numbers mean (the README says the same):
//! - **availability**: the share of probe results that passed, every probe
//!   of every instance counted alike (as Gatus and Uptime Kuma count
//!   uptime); `None` without results.
//! - **latency**: p50/p95/p99 of the latency of results that passed, by
//!   nearest rank (the smallest latency that at least that share of
//!   results did not exceed), to 0.1 ms; a failure's time (a time-out, a
//!   refused connection) says nothing of how fast the app answers.
//! - **longest outage** of an instance: its longest run of failed results
//!   of one probe, from the first failure to the next pass of that probe
//!   (a run still failing at the end of the window lasts to its last
//!   failure and is `ongoing`); of an app: its longest incident, from
//!   opening to healthy again (to now while open).
//! - **incidents** are those open at some time in the window; the **mean
//!   time to recovery** is the mean, over those that were resolved, of the
//!   time from opening (the failure detected) to healthy again (the end of
//!   the outage, `outage_ms` of `incident_resolved`; the app's
//!   `resolve_after` of confirmation is not counted).
//! - **deployments** are those started in the window, by outcome
//!   (`unfinished` while they run); **rollbacks** are automatic (a
//!   `rollback_started` whose trigger is a failure: a gate, a deadline, a
//!   start, traffic, too few healthy) or by hand (an operator's `abort`,
//!   `recover --rollback`, and `rollguard rollback` deployments).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Window;
use crate::model::{DeploymentKind, Trigger};
use crate::store::{DeploymentCount, Incident, ResultPoint, ResultTally, Store, StoreError};

/// One hour of the clock (UTC) and its probe results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HourBucket {
    /// The hour's start, ms since the epoch (a multiple of 3 600 000).
    pub start_ms: i64,
    /// Results that passed.
    pub ok: u64,
    /// Every result.
    pub total: u64,
}

impl HourBucket {
    /// The share of results that passed, 0 to 1; `None` without results.
    pub fn availability(&self) -> Option<f64> {
        (self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

/// One hour, in ms.
const HOUR_MS: i64 = 3_600_000;

/// Every hour that `window` touches, oldest first, with the counts of
/// `counts` (`(hour's start, passed, all)`, as
/// [`Store::hourly_results`] gives them); an hour without results has
/// zeros. At most 10 000 hours (a window longer than a year is cut to
/// its newest hours).
pub fn hourly(window: Window, counts: &[(i64, u64, u64)]) -> Vec<HourBucket> {
    if window.to_ms <= window.from_ms {
        return Vec::new();
    }
    let floor = |ms: i64| ms - ms.rem_euclid(HOUR_MS);
    let last = floor(window.to_ms - 1);
    let first = floor(window.from_ms).max(last - 9_999 * HOUR_MS);
    let by_hour: BTreeMap<i64, (u64, u64)> =
        counts.iter().map(|&(h, ok, all)| (h, (ok, all))).collect();
    let mut out = Vec::new();
    let mut hour = first;
    while hour <= last {
        let (ok, total) = by_hour.get(&hour).copied().unwrap_or((0, 0));
        out.push(HourBucket {
            start_ms: hour,
            ok: ok.min(total),
            total,
        });
        hour += HOUR_MS;
    }
    out
}

/// The hourly availability of `app` over `window`, for the console's
/// History chart: one [`HourBucket`] per hour the window touches.
pub fn hourly_availability(
    store: &Store,
    app: &str,
    window: Window,
    uncounted: &[String],
) -> Result<Vec<HourBucket>, StoreError> {
    let counts = store.hourly_results(app, window.from_ms, window.to_ms, uncounted)?;
    Ok(hourly(window, &counts))
}

/// Latency percentiles of the results that passed, ms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The percentiles of `values` (`(latency, how many)`, any order), by
/// nearest rank; `None` when there are none.
pub fn latency(values: &[(f64, u64)]) -> Option<Latency> {
    let mut sorted: Vec<(f64, u64)> = values
        .iter()
        .copied()
        .filter(|(l, n)| l.is_finite() && *n > 0)
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let at = |p: u64| {
        // The smallest value whose cumulative count reaches ceil(p% of n).
        let rank = (total * p).div_ceil(100).max(1);
        let mut seen = 0;
        for (l, n) in &sorted {
            seen += n;
            if seen >= rank {
                return *l;
            }
        }
        sorted.last().map_or(0.0, |(l, _)| *l)
    };
    Some(Latency {
        p50: at(50),
        p95: at(95),
        p99: at(99),
    })
}

/// The longest outage of an instance or an app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// When it began (the first failed result, or the incident's opening).
    pub start_ms: i64,
    /// How long it lasted.
    pub length_ms: u64,
    /// Whether it still went on at the end of the window.
    pub ongoing: bool,
    /// The probe that failed (an instance's outage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// The incident (an app's outage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
}

impl Outage {
    /// Whether `self` is longer than `other` (the earlier one when equal).
    fn beats(&self, other: Option<&Outage>) -> bool {
        other.is_none_or(|o| {
            self.length_ms > o.length_ms
                || (self.length_ms == o.length_ms && self.start_ms < o.start_ms)
        })
    }
}

/// Each instance's longest run of failed results of one probe, from
/// `points` ordered by instance, probe and time (as
/// [`Store::result_summary`] gives them; every result of the window does
/// as well).
pub fn longest_runs(points: &[ResultPoint]) -> BTreeMap<String, Outage> {
    let mut best: BTreeMap<String, Outage> = BTreeMap::new();
    let mut offer = |p: &ResultPoint, start: i64, end: i64, ongoing: bool| {
        let run = Outage {
            start_ms: start,
            length_ms: u64::try_from(end.saturating_sub(start)).unwrap_or(0),
            ongoing,
            probe: Some(p.probe.clone()),
            incident: None,
        };
        if run.beats(best.get(&p.instance)) {
            best.insert(p.instance.clone(), run);
        }
    };
    // The run of failures being read: its first point and its last.
    let mut open: Option<(&ResultPoint, i64)> = None;
    for (i, p) in points.iter().enumerate() {
        let same = |q: &ResultPoint| q.instance == p.instance && q.probe == p.probe;
        match (open, p.ok) {
            (None, false) => open = Some((p, p.at_ms)),
            (Some((first, _)), false) => open = Some((first, p.at_ms)),
            (Some((first, _)), true) => {
                offer(first, first.at_ms, p.at_ms, false);
                open = None;
            }
            (None, true) => {}
        }
        let next_same = points.get(i + 1).is_some_and(same);
        if !next_same && let Some((first, last)) = open.take() {
            offer(first, first.at_ms, last, true);
        }
    }
    best
}

/// An app's incidents in the window and the time it took to recover.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// Incidents open at some time in the window.
    pub total: u64,
    /// Of those, the ones resolved.
    pub resolved: u64,
    /// Of those, the ones still open.
    pub open: u64,
    /// The mean time from opening to healthy again over the resolved
    /// ones; `None` when none was resolved.
    pub mean_time_to_recovery_ms: Option<u64>,
}

/// The [`Recovery`] of `incidents` and the longest of them (to `now_ms`
/// while open).
pub fn recovery(incidents: &[Incident], now_ms: i64) -> (Recovery, Option<Outage>) {
    let mut r = Recovery::default();
    let mut longest: Option<Outage> = None;
    let mut recovered: Vec<u64> = Vec::new();
    for i in incidents {
        r.total += 1;
        let end = match (i.healthy_ms, i.resolved_ms) {
            (Some(h), Some(_)) | (Some(h), None) => h,
            (None, Some(res)) => res,
            (None, None) => now_ms,
        };
        let length_ms = u64::try_from(end.saturating_sub(i.opened_ms)).unwrap_or(0);
        if i.resolved_ms.is_some() {
            r.resolved += 1;
            recovered.push(length_ms);
        } else {
            r.open += 1;
        }
        let outage = Outage {
            start_ms: i.opened_ms,
            length_ms,
            ongoing: i.resolved_ms.is_none(),
            probe: None,
            incident: Some(i.id),
        };
        if outage.beats(longest.as_ref()) {
            longest = Some(outage);
        }
    }
    if !recovered.is_empty() {
        let sum: u128 = recovered.iter().map(|&ms| u128::from(ms)).sum();
        let mean = sum / recovered.len() as u128;
        r.mean_time_to_recovery_ms = Some(u64::try_from(mean).unwrap_or(u64::MAX));
    }
    (r, longest)
}

/// An app's deployments started in the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Deployments {
    /// How many.
    pub total: u64,
    /// How many ended each way (`deployed`, `rolled_back`, ...;
    /// `unfinished` while they run).
    pub by_outcome: BTreeMap<String, u64>,
}

/// An app's rollbacks that began in the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rollbacks {
    /// Started by a failure the rollout saw.
    pub automatic: u64,
    /// Asked for by an operator.
    pub by_hand: u64,
}

/// The deployments and rollbacks of `counts` and `triggers` (as the
/// store counts them).
pub fn deployments(
    counts: &[DeploymentCount],
    triggers: &[(String, u64)],
) -> (Deployments, Rollbacks) {
    let mut d = Deployments::default();
    let mut r = Rollbacks::default();
    for c in counts {
        d.total += c.count;
        let outcome = c
            .outcome
            .map_or_else(|| "unfinished".into(), |o| o.as_str().to_string());
        *d.by_outcome.entry(outcome).or_default() += c.count;
        if c.kind == DeploymentKind::Rollback {
            r.by_hand += c.count;
        }
    }
    for (trigger, n) in triggers {
        match Trigger::parse(trigger) {
            Some(Trigger::Abort | Trigger::Recovered) => r.by_hand += n,
            _ => r.automatic += n,
        }
    }
    (d, r)
}

/// The probe results of an instance or an app in the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Results {
    /// Every result.
    pub probes: u64,
    /// Results that failed.
    pub failures: u64,
    /// The share that passed, in percent; `None` without results.
    pub availability_percent: Option<f64>,
    /// Latency of the results that passed; `None` without any.
    pub latency_ms: Option<Latency>,
}

/// The [`Results`] of `tallies` (those of one instance, or of an app).
pub fn results<'a>(tallies: impl IntoIterator<Item = &'a ResultTally>) -> Results {
    let (mut probes, mut ok) = (0u64, 0u64);
    let mut latencies = Vec::new();
    for t in tallies {
        probes += t.count;
        if t.ok {
            ok += t.count;
            if let Some(l) = t.latency_ms {
                latencies.push((l, t.count));
            }
        }
    }
    Results {
        probes,
        failures: probes - ok,
        availability_percent: (probes > 0).then(|| ok as f64 * 100.0 / probes as f64),
        latency_ms: latency(&latencies),
    }
}

/// One instance in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceReport {
    /// The instance.
    pub instance: String,
    /// Its probe results.
    #[serde(flatten)]
    pub results: Results,
    /// Its longest run of failures.
    pub longest_outage: Option<Outage>,
}

/// One app in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppReport {
    /// The app.
    pub app: String,
    /// The probe results of all its instances.
    #[serde(flatten)]
    pub results: Results,
    /// Its longest incident.
    pub longest_outage: Option<Outage>,
    /// Deployments started in the window.
    pub deployments: Deployments,
    /// Rollbacks begun in the window.
    pub rollbacks: Rollbacks,
    /// Incidents open in the window, and the time to recover.
    pub incidents: Recovery,
    /// Each instance: those of the config, then any other with results.
    pub instances: Vec<InstanceReport>,
}

/// What the store holds of one app over a window, as [`load`] reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppHistory {
    /// Results counted per instance, pass and latency.
    pub tallies: Vec<ResultTally>,
    /// Where probes turned from passing to failing and back.
    pub points: Vec<ResultPoint>,
    /// Deployments counted per outcome and kind.
    pub deployments: Vec<DeploymentCount>,
    /// Rollbacks counted per trigger.
    pub rollback_triggers: Vec<(String, u64)>,
    /// Incidents open at some time in the window.
    pub incidents: Vec<Incident>,
}

/// Reads what the report of `app` over `window` needs; the `no_data`
/// results of the probes named in `uncounted` are not counted.
pub fn load(
    store: &Store,
    app: &str,
    window: Window,
    uncounted: &[String],
) -> Result<AppHistory, StoreError> {
    let (from, to) = (window.from_ms, window.to_ms);
    let (tallies, points) = store.result_summary(app, from, to, uncounted)?;
    Ok(AppHistory {
        tallies,
        points,
        deployments: store.deployment_counts(app, from, to)?,
        rollback_triggers: store.rollback_triggers(app, from, to)?,
        incidents: store.incidents_between(app, from, to)?,
    })
}

impl AppHistory {
    /// Whether it holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty() && self.deployments.is_empty() && self.incidents.is_empty()
    }
}

/// The report of `app` from its `history`; `instances` are the config's
/// (reported even without results), `now_ms` ends open incidents.
pub fn app_report(app: &str, instances: &[String], history: &AppHistory, now_ms: i64) -> AppReport {
    let mut names: Vec<String> = instances.to_vec();
    for t in &history.tallies {
        if !names.contains(&t.instance) {
            names.push(t.instance.clone());
        }
    }
    let mut runs = longest_runs(&history.points);
    let instances = names
        .into_iter()
        .map(|name| InstanceReport {
            results: results(history.tallies.iter().filter(|t| t.instance == name)),
            longest_outage: runs.remove(&name),
            instance: name,
        })
        .collect();
    let (incidents, longest_outage) = recovery(&history.incidents, now_ms);
    let (deployments, rollbacks) = deployments(&history.deployments, &history.rollback_triggers);
    AppReport {
        app: app.to_string(),
        results: results(&history.tallies),
        longest_outage,
        deployments,
        rollbacks,
        incidents,
        instances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;
    use crate::model::incident::IncidentEvidence;

    fn point(instance: &str, probe: &str, at_ms: i64, ok: bool) -> ResultPoint {
        ResultPoint {
            instance: instance.into(),
            probe: probe.into(),
            at_ms,
            ok,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let one_to_hundred: Vec<(f64, u64)> = (1..=100).map(|l| (f64::from(l), 1)).collect();
        let l = latency(&one_to_hundred).unwrap();
        assert_eq!((l.p50, l.p95, l.p99), (50.0, 95.0, 99.0));
        // 90 values: ranks 45, 86 (85.5 up) and 90 (89.1 up).
        let ninety: Vec<(f64, u64)> = (1..=90).rev().map(|l| (f64::from(l), 1)).collect();
        let l = latency(&ninety).unwrap();
        assert_eq!((l.p50, l.p95, l.p99), (45.0, 86.0, 90.0));
        // Counts weigh: 99 fast answers and one slow.
        let l = latency(&[(500.0, 1), (10.0, 99)]).unwrap();
        assert_eq!((l.p50, l.p95, l.p99), (10.0, 10.0, 10.0));
        assert_eq!(latency(&[(7.5, 1)]).unwrap().p99, 7.5);
        assert_eq!(latency(&[]), None);
        assert_eq!(latency(&[(f64::NAN, 3), (1.0, 0)]), None);
    }

    #[test]
    fn the_longest_run_of_failures_ends_at_the_next_pass() {
        let points = [
            point("a", "health", 0, true),
            point("a", "health", 10, false),
            point("a", "health", 30, true),
            point("a", "health", 50, false),
            point("a", "health", 100, true),
            point("a", "health", 200, true),
            // Another probe of the same instance, failing at the end.
            point("a", "tcp", 0, true),
            point("a", "tcp", 150, false),
            point("a", "tcp", 190, false),
            point("b", "health", 5, false),
        ];
        let runs = longest_runs(&points);
        let a = &runs["a"];
        assert_eq!((a.start_ms, a.length_ms, a.ongoing), (50, 50, false));
        assert_eq!(a.probe.as_deref(), Some("health"));
        // A single failure at the end: ongoing, no length yet.
        let b = &runs["b"];
        assert_eq!((b.start_ms, b.length_ms, b.ongoing), (5, 0, true));
        // Failing till the end outlasts the others when longer.
        let runs = longest_runs(&[
            point("a", "tcp", 0, false),
            point("a", "tcp", 90, false),
            point("a", "web", 0, false),
            point("a", "web", 10, true),
        ]);
        assert_eq!((runs["a"].length_ms, runs["a"].ongoing), (90, true));
        assert!(longest_runs(&[point("a", "h", 1, true)]).is_empty());
    }

    fn incident(id: i64, opened: i64, healthy: Option<i64>, resolved: Option<i64>) -> Incident {
        Incident {
            id,
            app: "web".into(),
            deployment_id: None,
            opened_ms: opened,
            healthy_ms: healthy,
            resolved_ms: resolved,
            evidence: IncidentEvidence::default(),
        }
    }

    #[test]
    fn recovery_is_the_mean_from_opening_to_healthy_again() {
        let (r, longest) = recovery(
            &[
                incident(1, 1_000, Some(61_000), Some(121_000)),
                incident(2, 200_000, Some(300_000), Some(360_000)),
                incident(3, 900_000, None, None),
            ],
            1_000_000,
        );
        assert_eq!((r.total, r.resolved, r.open), (3, 2, 1));
        assert_eq!(r.mean_time_to_recovery_ms, Some(80_000));
        let l = longest.unwrap();
        assert_eq!(
            (l.incident, l.length_ms, l.ongoing),
            (Some(2), 100_000, false)
        );
        let (none, longest) = recovery(&[], 0);
        assert_eq!(none.mean_time_to_recovery_ms, None);
        assert_eq!(longest, None);
        // An open one counts up to now, and no mean without a resolved one.
        let (r, l) = recovery(&[incident(4, 0, None, None)], 5_000);
        assert_eq!(
            (r.mean_time_to_recovery_ms, l.unwrap().length_ms),
            (None, 5_000)
        );
    }

    #[test]
    fn rollbacks_are_told_apart_by_their_trigger() {
        let counts = [
            DeploymentCount {
                outcome: Some(Outcome::Deployed),
                kind: DeploymentKind::Deploy,
                count: 2,
            },
            DeploymentCount {
                outcome: Some(Outcome::RolledBack),
                kind: DeploymentKind::Deploy,
                count: 1,
            },
            DeploymentCount {
                outcome: Some(Outcome::Deployed),
                kind: DeploymentKind::Rollback,
                count: 1,
            },
            DeploymentCount {
                outcome: None,
                kind: DeploymentKind::Deploy,
                count: 1,
            },
        ];
        let triggers = [
            ("gate_failed".to_string(), 1),
            ("abort".to_string(), 2),
            ("".to_string(), 1),
        ];
        let (d, r) = deployments(&counts, &triggers);
        assert_eq!(d.total, 5);
        assert_eq!(d.by_outcome["deployed"], 3);
        assert_eq!(d.by_outcome["unfinished"], 1);
        assert_eq!((r.automatic, r.by_hand), (2, 3));
    }

    #[test]
    fn an_app_without_results_reads_as_none_not_nan() {
        let r = app_report("web", &["web-1".into()], &AppHistory::default(), 0);
        assert_eq!(r.results.probes, 0);
        assert_eq!(r.results.availability_percent, None);
        assert_eq!(r.results.latency_ms, None);
        assert_eq!(r.instances.len(), 1);
        assert_eq!(r.instances[0].results.availability_percent, None);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("NaN"), "{json}");
    }

    #[test]
    fn hours_without_results_are_zeros_and_the_window_is_covered() {
        let h = 3_600_000;
        let window = Window {
            from_ms: 10 * h + 5,
            to_ms: 13 * h,
        };
        let buckets = hourly(window, &[(10 * h, 9, 10), (12 * h, 5, 5)]);
        let got: Vec<(i64, u64, u64)> = buckets
            .iter()
            .map(|b| (b.start_ms, b.ok, b.total))
            .collect();
        assert_eq!(got, [(10 * h, 9, 10), (11 * h, 0, 0), (12 * h, 5, 5)]);
        assert_eq!(buckets[0].availability(), Some(0.9));
        assert_eq!(buckets[1].availability(), None);
        assert!(
            hourly(
                Window {
                    from_ms: 5,
                    to_ms: 5
                },
                &[]
            )
            .is_empty()
        );
        let year = hourly(
            Window {
                from_ms: 0,
                to_ms: 20_000 * h,
            },
            &[],
        );
        assert_eq!(year.len(), 10_000);
        assert_eq!(year.last().unwrap().start_ms, 19_999 * h);
    }
}
