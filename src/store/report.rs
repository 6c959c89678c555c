//! Reading what `rollguard report` and `rollguard incident` need, and the
//! console's hourly availability: probe results aggregated in SQL (counts
//! and latencies grouped per instance, the points where a probe turned
//! from passing to failing and back, counts per hour, failures per
//! instance and probe), deployments and rollbacks counted, and the rows
//! around one incident or deployment. Only reads.
//!
//! Every query on `probe_results` is bounded by app and time and walks the
//! `probe_results_key_at` index (app, instance, probe, at_ms) in order:
//! the time is checked in the index before a row is read, and grouping
//! per instance or per probe needs no sort. A result's `ok` is read as
//! passed when it is not 0, as everywhere.

use super::column::opt_named;
use super::db::{Arg, DbError, Dialect, Row, args};
use super::deployment::{DEPLOYMENT_COLS, deployment_from_row};
use super::queries::{event_from_row, int, opt_text, real, text};
use super::{Deployment, Event, Store, StoreError};
use crate::model::{DeploymentKind, Outcome};

/// Probe results of one instance that passed or failed with one latency
/// (rounded to 0.1 ms; `None` for failures and missing latencies).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultTally {
    /// The instance.
    pub instance: String,
    /// Whether they passed.
    pub ok: bool,
    /// Their latency, rounded to 0.1 ms, for passed results that have one.
    pub latency_ms: Option<f64>,
    /// How many.
    pub count: u64,
}

/// A probe result where one instance's probe changed from passing to
/// failing or back, or its first or last result in the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultPoint {
    /// The instance.
    pub instance: String,
    /// The probe.
    pub probe: String,
    /// When it ran.
    pub at_ms: i64,
    /// Whether it passed.
    pub ok: bool,
}

/// Deployments of an app that ended one way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentCount {
    /// How they ended; `None` while they run.
    pub outcome: Option<Outcome>,
    /// A deploy or a manual rollback, as the plan says (a deploy where it
    /// names neither, as [`Deployment::kind`](super::Deployment::kind)
    /// reads it).
    pub kind: DeploymentKind,
    /// How many.
    pub count: u64,
}

/// The failed results of one instance's probe in a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureSpan {
    /// The instance.
    pub instance: String,
    /// The probe.
    pub probe: String,
    /// How many failed.
    pub count: u64,
    /// The first failure.
    pub first_ms: i64,
    /// The last failure.
    pub last_ms: i64,
    /// The kinds of failure seen (`timeout`, `status`, ...), each once.
    pub kinds: Vec<String>,
}

const EVENT_COLS: &str = "id, at_ms, app, deployment_id, kind, actor, reason, evidence";

/// The results a report leaves out: `no_data` of the probes named in
/// `?4`, a JSON array (see [`uncounted_json`]).
fn uncounted_filter(dialect: Dialect) -> String {
    format!(
        "AND NOT (coalesce(error_kind, '') = 'no_data' AND probe IN ({}))",
        dialect.json_strings("?4")
    )
}

/// `names` as the JSON array [`uncounted_filter`] reads.
fn uncounted_json(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// `app`'s probe results with `from_ms <= at_ms < to_ms`, read in one
    /// pass in the index's order (no sort) and folded as they stream:
    /// counted per instance, pass and latency (0.1 ms), and the points
    /// where a probe of an instance changed from passing to failing or
    /// back, with each probe's first and last, ordered by instance, probe
    /// and time. Memory grows with the instances and distinct latencies,
    /// not with the results.
    ///
    /// The `no_data` results of the probes named in `uncounted` (those
    /// whose `on_no_data` is `skip`) are left out, as health leaves them.
    pub fn result_summary(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
        uncounted: &[String],
    ) -> Result<(Vec<ResultTally>, Vec<ResultPoint>), StoreError> {
        let err = || self.sql_err("read probe results");
        let skip = uncounted_json(uncounted);
        let mut fold = ResultFold::default();
        self.db
            .each(
                &format!(
                    "SELECT instance, probe, at_ms, ok != 0, latency_ms FROM probe_results \
                     WHERE app = ?1 AND at_ms >= ?2 AND at_ms < ?3 {} \
                     ORDER BY instance, probe, at_ms",
                    uncounted_filter(self.db.dialect())
                ),
                args![app, from_ms, to_ms, skip],
                |r| {
                    let ok = int(r.get_ref(3)?).is_some_and(|v| v != 0);
                    let latency = real(r.get_ref(4)?);
                    fold.push(
                        r.get_ref(0)?.as_bytes().unwrap_or_default(),
                        r.get_ref(1)?.as_bytes().unwrap_or_default(),
                        int(r.get_ref(2)?).unwrap_or(0),
                        ok,
                        latency,
                    );
                    Ok(())
                },
            )
            .map_err(err())?;
        Ok(fold.finish())
    }

    /// `app`'s probe results with `from_ms <= at_ms < to_ms` counted per
    /// hour of the clock (UTC): `(hour's start, passed, all)`, by hour;
    /// without the `no_data` results of the probes named in `uncounted`.
    pub fn hourly_results(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
        uncounted: &[String],
    ) -> Result<Vec<(i64, u64, u64)>, StoreError> {
        let err = || self.sql_err("count probe results per hour");
        let skip = uncounted_json(uncounted);
        self.db
            .query_map(
                &format!(
                    "SELECT at_ms - at_ms % 3600000 AS hour, \
                       sum(CASE WHEN ok != 0 THEN 1 ELSE 0 END), count(*) \
                     FROM probe_results WHERE app = ?1 AND at_ms >= ?2 AND at_ms < ?3 \
                     {} GROUP BY hour ORDER BY hour",
                    uncounted_filter(self.db.dialect())
                ),
                args![app, from_ms, to_ms, skip],
                |r| Ok((int(r.get_ref(0)?).unwrap_or(0), count(r, 1)?, count(r, 2)?)),
            )
            .map_err(err())
    }

    /// The failed results of `app` with `from_ms <= at_ms <= to_ms`, per
    /// instance and probe.
    pub fn failure_spans(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<FailureSpan>, StoreError> {
        let err = || self.sql_err("read failed probe results");
        self.db
            .query_map(
                &format!(
                    "SELECT instance, probe, count(*), min(at_ms), max(at_ms), {} \
                     FROM probe_results \
                     WHERE app = ?1 AND at_ms >= ?2 AND at_ms <= ?3 AND ok = 0 \
                     GROUP BY instance, probe ORDER BY min(at_ms), instance, probe",
                    self.db
                        .dialect()
                        .joined_distinct("coalesce(error_kind, 'failed')")
                ),
                args![app, from_ms, to_ms],
                |r| {
                    let mut kinds: Vec<String> = opt_text(r.get_ref(5)?)
                        .unwrap_or_default()
                        .split(',')
                        .filter(|k| !k.is_empty())
                        .map(String::from)
                        .collect();
                    kinds.sort();
                    Ok(FailureSpan {
                        instance: text(r.get_ref(0)?),
                        probe: text(r.get_ref(1)?),
                        count: count(r, 2)?,
                        first_ms: int(r.get_ref(3)?).unwrap_or(0),
                        last_ms: int(r.get_ref(4)?).unwrap_or(0),
                        kinds,
                    })
                },
            )
            .map_err(err())
    }

    /// `app`'s deployments started with `from_ms <= started_at_ms <
    /// to_ms`, counted per outcome and kind.
    pub fn deployment_counts(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<DeploymentCount>, StoreError> {
        let err = || self.sql_err("count deployments");
        self.db
            .query_map(
                &format!(
                    "SELECT outcome, coalesce({}, 'deploy') AS kind, count(*) \
                     FROM deployments WHERE app = ?1 AND started_at_ms >= ?2 \
                       AND started_at_ms < ?3 \
                     GROUP BY outcome, kind ORDER BY outcome, kind",
                    self.db.dialect().json_text("plan", "kind")
                ),
                args![app, from_ms, to_ms],
                |r| {
                    Ok(DeploymentCount {
                        outcome: opt_named(r, 0, "deployments", "outcome", Outcome::parse)?,
                        kind: DeploymentKind::parse(&text(r.get_ref(1)?))
                            .unwrap_or(DeploymentKind::Deploy),
                        count: count(r, 2)?,
                    })
                },
            )
            .map_err(err())
    }

    /// The triggers of `app`'s rollbacks that began (`rollback_started`)
    /// with `from_ms <= at_ms < to_ms`, counted: `(trigger, count)`; an
    /// unreadable payload counts as trigger `""`.
    pub fn rollback_triggers(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let err = || self.sql_err("count rollbacks");
        self.db
            .query_map(
                &format!(
                    "SELECT coalesce({}, '') AS trigger, count(*) \
                     FROM events WHERE app = ?1 AND at_ms >= ?2 AND at_ms < ?3 \
                       AND kind = 'rollback_started' GROUP BY trigger ORDER BY trigger",
                    self.db.dialect().json_text("evidence", "trigger")
                ),
                args![app, from_ms, to_ms],
                |r| Ok((text(r.get_ref(0)?), count(r, 1)?)),
            )
            .map_err(err())
    }

    /// `app`'s deployments that ran at some time in `from_ms..=to_ms`
    /// (started by its end, not ended before its start), oldest first.
    pub fn deployments_between(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Deployment>, StoreError> {
        let err = || self.sql_err("read deployments");
        self.db
            .query_map(
                &format!(
                    "SELECT {DEPLOYMENT_COLS} FROM deployments WHERE app = ?1 \
                 AND started_at_ms <= ?3 AND (ended_at_ms IS NULL OR ended_at_ms >= ?2) \
                 ORDER BY started_at_ms, id"
                ),
                args![app, from_ms, to_ms],
                deployment_from_row,
            )
            .map_err(err())
    }

    /// `app`'s newest deployment started at or before `at_ms`, if any.
    pub fn deployment_before(
        &self,
        app: &str,
        at_ms: i64,
    ) -> Result<Option<Deployment>, StoreError> {
        let err = || self.sql_err("read deployments");
        let rows = self
            .db
            .query_map(
                &format!(
                    "SELECT {DEPLOYMENT_COLS} FROM deployments WHERE app = ?1 \
                 AND started_at_ms <= ?2 ORDER BY started_at_ms DESC, id DESC LIMIT 1"
                ),
                args![app, at_ms],
                deployment_from_row,
            )
            .map_err(err())?;
        Ok(rows.into_iter().next())
    }

    /// `app`'s events with `from_ms <= at_ms <= to_ms`, oldest first.
    pub fn app_events_between(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Event>, StoreError> {
        self.events_where(
            "app = ?1 AND at_ms >= ?2 AND at_ms <= ?3",
            args![app, from_ms, to_ms],
        )
    }

    /// The events of incident `incident` of `app` (opened, widened,
    /// resolved) and, in a history that has the outbox, those of its
    /// notifications (sent, failed), oldest first.
    pub fn incident_events(&self, app: &str, incident: i64) -> Result<Vec<Event>, StoreError> {
        let dialect = self.db.dialect();
        let of_incident = format!(
            "app = ?1 AND kind IN ('incident_opened', 'incident_widened', 'incident_resolved') \
             AND {} = ?2",
            dialect.json_text("evidence", "incident")
        );
        let incident_text = incident.to_string();
        if self.schema_version()? < 3 {
            return self.events_where(&of_incident, args![app, incident_text]);
        }
        let sql = format!(
            "({of_incident}) OR (app = ?1 AND kind IN ('notification_sent', 'notification_failed') \
             AND {} IN (SELECT CAST(id AS TEXT) FROM notifications \
                        WHERE app = ?1 AND dedup_key = ?3))",
            dialect.json_text("evidence", "notification")
        );
        self.events_where(
            &sql,
            args![app, incident_text, format!("incident-{incident}")],
        )
    }

    /// Events that pass `filter` (SQL over the events table), oldest first.
    fn events_where(&self, filter: &str, args: &[Arg<'_>]) -> Result<Vec<Event>, StoreError> {
        let err = || self.sql_err("read events");
        self.db
            .query_map(
                &format!("SELECT {EVENT_COLS} FROM events WHERE {filter} ORDER BY at_ms, id"),
                args,
                event_from_row,
            )
            .map_err(err())
    }

    /// `app`'s incidents: `(all, not resolved)`; one index range.
    pub fn incident_counts(&self, app: &str) -> Result<(u64, u64), StoreError> {
        self.db
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE resolved_ms IS NULL) \
                 FROM incidents WHERE app = ?1",
                args![app],
                |r| Ok((count(r, 0)?, count(r, 1)?)),
            )
            .map_err(self.sql_err("count incidents"))
    }

    /// Whether the history holds anything of `app`: a probe result, an
    /// event, a deployment or an incident.
    pub fn knows_app(&self, app: &str) -> Result<bool, StoreError> {
        self.db
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM probe_results WHERE app = ?1) \
                   OR EXISTS (SELECT 1 FROM events WHERE app = ?1) \
                   OR EXISTS (SELECT 1 FROM deployments WHERE app = ?1)",
                args![app],
                |r| r.get::<bool>(0),
            )
            .map_err(self.sql_err("look an app up"))
    }

    /// The apps `configured` names, in its order, then those only the
    /// history knows ([`Store::history_apps`]): every name an app may be
    /// asked by.
    pub fn known_apps(
        &self,
        configured: impl IntoIterator<Item = String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = configured.into_iter().collect();
        for a in self.history_apps()? {
            if !names.contains(&a) {
                names.push(a);
            }
        }
        Ok(names)
    }

    /// Every app with a probe result, an event or a deployment, by name:
    /// one index lookup per app, however many results each has.
    pub fn history_apps(&self) -> Result<Vec<String>, StoreError> {
        let err = || self.sql_err("list the apps of the history");
        let mut apps = Vec::new();
        for (table, index) in [
            ("probe_results", "probe_results_key_at"),
            ("events", "events_app_at"),
            ("deployments", "deployments_app_started"),
        ] {
            // A loose index scan: the next name after the last one found.
            let indexed = self.db.dialect().indexed_by(index);
            let sql = format!(
                "WITH RECURSIVE a(app) AS ( \
                   SELECT min(app) FROM {table}{indexed} \
                   UNION ALL \
                   SELECT (SELECT min(app) FROM {table}{indexed} WHERE app > a.app) \
                   FROM a WHERE a.app IS NOT NULL) \
                 SELECT app FROM a WHERE app IS NOT NULL"
            );
            let names = self
                .db
                .query_map(&sql, &[], |r| Ok(text(r.get_ref(0)?)))
                .map_err(err())?;
            apps.extend(names);
        }
        apps.sort();
        apps.dedup();
        Ok(apps)
    }
}

/// Results folded as they stream, in (instance, probe, time) order.
#[derive(Default)]
struct ResultFold {
    /// Instance names seen, in order; tallies refer to them by index.
    instances: Vec<String>,
    /// (instance, passed, latency in tenths of a ms) → count.
    tallies: std::collections::HashMap<(usize, bool, Option<i64>), u64>,
    points: Vec<ResultPoint>,
    /// The probe being read and its last result: (probe, at_ms, ok).
    last: Option<(String, i64, bool)>,
}

impl ResultFold {
    fn push(&mut self, instance: &[u8], probe: &[u8], at_ms: i64, ok: bool, latency: Option<f64>) {
        let new_instance = self
            .instances
            .last()
            .is_none_or(|i| i.as_bytes() != instance);
        let new_key = new_instance || self.last.as_ref().is_none_or(|l| l.0.as_bytes() != probe);
        if new_key {
            self.close();
        }
        if new_instance {
            self.instances
                .push(String::from_utf8_lossy(instance).into_owned());
        }
        let i = self.instances.len() - 1;
        // Rounded to 0.1 ms as SQLite's round() would; a failure's time
        // is not a latency.
        let tenths = latency
            .filter(|l| ok && l.is_finite())
            .map(|l| (l * 10.0).round() as i64);
        *self.tallies.entry((i, ok, tenths)).or_default() += 1;
        match &self.last {
            Some((_, _, was)) if !new_key && *was == ok => {}
            _ => self.point(at_ms, ok, probe),
        }
        let probe = match self.last.take() {
            Some((p, ..)) if !new_key => p,
            _ => String::from_utf8_lossy(probe).into_owned(),
        };
        self.last = Some((probe, at_ms, ok));
    }

    /// Records a point of the current instance.
    fn point(&mut self, at_ms: i64, ok: bool, probe: &[u8]) {
        self.points.push(ResultPoint {
            instance: self.instances.last().cloned().unwrap_or_default(),
            probe: String::from_utf8_lossy(probe).into_owned(),
            at_ms,
            ok,
        });
    }

    /// Ends the probe being read: its last result is a point.
    fn close(&mut self) {
        if let Some((probe, at_ms, ok)) = self.last.take()
            && self
                .points
                .last()
                .is_none_or(|p| p.at_ms != at_ms || p.probe != probe)
        {
            self.point(at_ms, ok, probe.as_bytes());
        }
    }

    fn finish(mut self) -> (Vec<ResultTally>, Vec<ResultPoint>) {
        self.close();
        let mut tallies: Vec<ResultTally> = self
            .tallies
            .into_iter()
            .map(|((i, ok, tenths), count)| ResultTally {
                instance: self.instances[i].clone(),
                ok,
                latency_ms: tenths.map(|t| t as f64 / 10.0),
                count,
            })
            .collect();
        tallies.sort_by(|a, b| {
            (&a.instance, a.ok, a.latency_ms.unwrap_or(-1.0))
                .partial_cmp(&(&b.instance, b.ok, b.latency_ms.unwrap_or(-1.0)))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        (tallies, self.points)
    }
}

/// A count column, never negative.
fn count(r: &Row<'_>, i: usize) -> Result<u64, DbError> {
    Ok(int(r.get_ref(i)?)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_fold_into_tallies_and_the_points_where_a_probe_changed() {
        let mut f = ResultFold::default();
        for (instance, probe, at, ok, latency) in [
            ("a", "h", 1, true, Some(10.04)),
            ("a", "h", 2, false, Some(900.0)),
            ("a", "h", 3, false, None),
            ("a", "h", 4, true, Some(10.0)),
            ("a", "h", 5, true, Some(f64::NAN)),
            ("a", "t", 1, false, None),
            ("b", "h", 7, true, Some(3.0)),
        ] {
            f.push(instance.as_bytes(), probe.as_bytes(), at, ok, latency);
        }
        let (tallies, points) = f.finish();
        let t: Vec<(&str, bool, Option<f64>, u64)> = tallies
            .iter()
            .map(|t| (t.instance.as_str(), t.ok, t.latency_ms, t.count))
            .collect();
        assert_eq!(
            t,
            [
                ("a", false, None, 3),
                ("a", true, None, 1),
                ("a", true, Some(10.0), 2),
                ("b", true, Some(3.0), 1),
            ]
        );
        let p: Vec<(&str, &str, i64, bool)> = points
            .iter()
            .map(|p| (p.instance.as_str(), p.probe.as_str(), p.at_ms, p.ok))
            .collect();
        assert_eq!(
            p,
            [
                ("a", "h", 1, true),
                ("a", "h", 2, false),
                ("a", "h", 4, true),
                ("a", "h", 5, true),
                ("a", "t", 1, false),
                ("b", "h", 7, true),
            ]
        );
    }
}
