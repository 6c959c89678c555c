//! Incident rows: one per outage of an app, opened, widened and resolved
//! together with their events in one transaction each, so an incident and
//! its audit log never disagree. At most one incident of an app is open
//! (a unique index); opening while one is open widens that one instead.
//! When to open and resolve is decided in `health::incident`. Incident
//! events carry no reason: their payload says what failed.

use serde::Serialize;

use super::db::{DbError, Optional, Row, args};
use super::{Store, StoreError};
use crate::model::event::EventKind;
use crate::model::evidence::Evidence;
use crate::model::incident::{IncidentCause, IncidentEvidence};

/// Who writes incident events.
pub const INCIDENT_ACTOR: &str = "rollguard";

/// One incident as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// Its id.
    pub id: i64,
    /// The app.
    pub app: String,
    /// The deployment that ran when it opened, if one did.
    pub deployment_id: Option<i64>,
    /// When it opened, ms since the epoch.
    pub opened_ms: i64,
    /// When the app was healthy again (set when resolved).
    pub healthy_ms: Option<i64>,
    /// When it was resolved; `None` while open.
    pub resolved_ms: Option<i64>,
    /// Why it opened and what failed. A payload this version cannot read
    /// reads as empty evidence.
    pub evidence: IncidentEvidence,
}

/// What [`Store::open_incident`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// A new incident with this id.
    New(i64),
    /// The app's open incident, which now names more instances or probes.
    Widened(i64),
    /// The app's open incident, which already named them all.
    Known(i64),
}

impl Opened {
    /// The incident's id.
    pub fn id(self) -> i64 {
        match self {
            Opened::New(id) | Opened::Widened(id) | Opened::Known(id) => id,
        }
    }
}

const COLS: &str = "id, app, deployment_id, opened_ms, healthy_ms, resolved_ms, evidence";

fn incident_from_row(r: &Row<'_>) -> Result<Incident, DbError> {
    let evidence: String = r.get(6)?;
    Ok(Incident {
        id: r.get(0)?,
        app: r.get(1)?,
        deployment_id: r.get(2)?,
        opened_ms: r.get(3)?,
        healthy_ms: r.get(4)?,
        resolved_ms: r.get(5)?,
        evidence: serde_json::from_str(&evidence).unwrap_or_default(),
    })
}

impl Store {
    /// Opens an incident of `app` at `now_ms` for what `failed` shows, or
    /// widens the app's open one with the entries it does not name yet.
    /// A new incident belongs to `deployment_id` when given, else to the
    /// app's unfinished deployment if there is one; its `incident_opened`
    /// event (and a widening's `incident_widened`) is tied to that
    /// deployment too. One IMMEDIATE transaction.
    pub fn open_incident(
        &self,
        app: &str,
        deployment_id: Option<i64>,
        cause: IncidentCause,
        failed: &[Evidence],
        now_ms: i64,
    ) -> Result<Opened, StoreError> {
        let op = "record an incident";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let open = self
            .db
            .query_row(
                &format!("SELECT {COLS} FROM incidents WHERE app = ?1 AND resolved_ms IS NULL"),
                args![app],
                incident_from_row,
            )
            .optional()
            .map_err(err())?;
        let opened = match open {
            Some(mut i) => {
                let added = i.evidence.widen(failed);
                if added.is_empty() {
                    return Ok(Opened::Known(i.id));
                }
                self.db
                    .execute(
                        "UPDATE incidents SET evidence = ?2 WHERE id = ?1",
                        args![i.id, to_json(&i.evidence)],
                    )
                    .map_err(err())?;
                let event = EventKind::IncidentWidened {
                    incident: i.id,
                    evidence: added,
                };
                self.record(app, i.deployment_id, INCIDENT_ACTOR, None, &event)?;
                Opened::Widened(i.id)
            }
            None => {
                let deployment = match deployment_id {
                    Some(d) => Some(d),
                    None => self
                        .db
                        .query_row(
                            "SELECT id FROM deployments WHERE app = ?1 AND ended_at_ms IS NULL \
                             ORDER BY id DESC LIMIT 1",
                            args![app],
                            |r| r.get::<i64>(0),
                        )
                        .optional()
                        .map_err(err())?,
                };
                let mut evidence = IncidentEvidence {
                    cause,
                    failed: Vec::new(),
                };
                evidence.widen(failed);
                let id: i64 = self
                    .db
                    .query_row(
                        "INSERT INTO incidents (app, deployment_id, opened_ms, evidence) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING id",
                        args![app, deployment, now_ms, to_json(&evidence)],
                        |r| r.get(0),
                    )
                    .map_err(err())?;
                let event = EventKind::IncidentOpened {
                    incident: id,
                    cause,
                    evidence: evidence.failed,
                };
                self.record(app, deployment, INCIDENT_ACTOR, None, &event)?;
                Opened::New(id)
            }
        };
        tx.commit().map_err(err())?;
        Ok(opened)
    }

    /// Resolves open incident `id`: the app was healthy from `healthy_ms`
    /// and still is at `now_ms`. Writes `incident_resolved` with the
    /// outage's length in the same transaction. `false` when it was not
    /// open (already resolved by another process).
    pub fn resolve_incident(
        &self,
        id: i64,
        healthy_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let op = "resolve an incident";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let Some(i) = self
            .db
            .query_row(
                &format!("SELECT {COLS} FROM incidents WHERE id = ?1 AND resolved_ms IS NULL"),
                args![id],
                incident_from_row,
            )
            .optional()
            .map_err(err())?
        else {
            return Ok(false);
        };
        let healthy_ms = healthy_ms.max(i.opened_ms);
        self.db
            .execute(
                "UPDATE incidents SET healthy_ms = ?2, resolved_ms = ?3 WHERE id = ?1",
                args![id, healthy_ms, now_ms],
            )
            .map_err(err())?;
        let outage_ms = u64::try_from(healthy_ms - i.opened_ms).unwrap_or(0);
        let event = EventKind::IncidentResolved {
            incident: id,
            opened_ms: i.opened_ms,
            healthy_ms,
            outage_ms,
            instances: i.evidence.instances(),
        };
        self.record(&i.app, i.deployment_id, INCIDENT_ACTOR, None, &event)?;
        tx.commit().map_err(err())?;
        Ok(true)
    }

    /// Every open incident, oldest first.
    pub fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let err = || self.sql_err("read open incidents");
        self.db
            .query_map(
                &format!("SELECT {COLS} FROM incidents WHERE resolved_ms IS NULL ORDER BY id"),
                &[],
                incident_from_row,
            )
            .map_err(err())
    }

    /// The newest `limit` incidents, newest first; only `app`'s when given.
    pub fn incidents(&self, app: Option<&str>, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let err = || self.sql_err("read incidents");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .query_map(
                &format!(
                    "SELECT {COLS} FROM incidents WHERE CAST(?1 AS TEXT) IS NULL OR app = ?1 \
                 ORDER BY id DESC LIMIT ?2"
                ),
                args![app, limit],
                incident_from_row,
            )
            .map_err(err())
    }

    /// `app`'s incidents that were open at some time in `from_ms..=to_ms`
    /// (opened by its end, not healthy again before its start), oldest
    /// first.
    pub fn incidents_between(
        &self,
        app: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        let err = || self.sql_err("read incidents");
        self.db
            .query_map(
                &format!(
                    "SELECT {COLS} FROM incidents WHERE app = ?1 AND opened_ms <= ?3 \
                 AND coalesce(healthy_ms, resolved_ms, ?2) >= ?2 ORDER BY opened_ms, id"
                ),
                args![app, from_ms, to_ms],
                incident_from_row,
            )
            .map_err(err())
    }

    /// Incident `id`, if there is one.
    pub fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.db
            .query_row(
                &format!("SELECT {COLS} FROM incidents WHERE id = ?1"),
                args![id],
                incident_from_row,
            )
            .optional()
            .map_err(self.sql_err("read an incident"))
    }
}

fn to_json(e: &IncidentEvidence) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| "{}".into())
}
