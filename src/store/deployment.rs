//! A deployment's row (one rollout or manual rollback of an app) and the
//! events tied to it: created, its state set, ended with its batches
//! settled in the same transaction ([`super::batch`]), warnings added,
//! read back by id, newest first, or while unfinished.

use serde::Serialize;
use serde_json::Value;

use super::column::{named, opt_json, opt_named, string_list};
use super::db::{DbError, Optional, Row, args};
use super::queries::{event_from_row, int, opt_text, text};
use super::{Event, Store, StoreError};
use crate::config::Strategy;
use crate::model::event::EventKind;
use crate::model::{DeploymentKind, DeploymentState, Outcome, now_ms};

/// One rollout or rollback of an app.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deployment {
    /// Row id; increases with creation order.
    pub id: i64,
    /// The app deployed.
    pub app: String,
    /// The version running before, when known.
    pub from_version: Option<String>,
    /// The version being deployed.
    pub to_version: String,
    /// How it is deployed.
    pub strategy: Strategy,
    /// Where it is now.
    pub state: DeploymentState,
    /// How it ended; `None` while running.
    pub outcome: Option<Outcome>,
    /// Who started it.
    pub actor: String,
    /// Why, as the actor gave it.
    pub reason: Option<String>,
    /// When it was created.
    pub started_at_ms: i64,
    /// When it finished; `None` while unfinished.
    pub ended_at_ms: Option<i64>,
    /// The plan it follows, as JSON: a `rollout::worker::StoredPlan`,
    /// whose types (the plan's stages, the drivers' sides) live in layers
    /// above the store's, so the store keeps it as JSON and reads only its
    /// `kind` ([`Deployment::kind`]).
    pub plan: Value,
    /// Warnings given before or during the deployment, oldest first.
    pub warnings: Vec<String>,
}

impl Deployment {
    /// What the row is, as its plan's `kind` says: a deploy unless it
    /// names a manual rollback (rows from before the kind was stored are
    /// deploys).
    pub fn kind(&self) -> DeploymentKind {
        self.plan
            .get("kind")
            .and_then(Value::as_str)
            .and_then(DeploymentKind::parse)
            .unwrap_or(DeploymentKind::Deploy)
    }
}

pub(super) const DEPLOYMENT_COLS: &str = "id, app, from_version, to_version, strategy, state, outcome, \
     actor, reason, started_at_ms, ended_at_ms, plan, warnings";

const EVENT_COLS: &str = "id, at_ms, app, deployment_id, kind, actor, reason, evidence";

impl Store {
    /// Records a new deployment in state `pending`, started now; returns
    /// its id.
    #[allow(clippy::too_many_arguments)]
    pub fn create_deployment(
        &self,
        app: &str,
        from_version: Option<&str>,
        to_version: &str,
        strategy: Strategy,
        actor: &str,
        reason: Option<&str>,
        plan: &Value,
        warnings: &[String],
    ) -> Result<i64, StoreError> {
        let err = || self.sql_err("create a deployment");
        let warnings = serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into());
        self.db
            .query_row(
                "INSERT INTO deployments (app, from_version, to_version, strategy, state, \
                 actor, reason, started_at_ms, plan, warnings) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9) RETURNING id",
                args![
                    app,
                    from_version,
                    to_version,
                    strategy.as_str(),
                    actor,
                    reason,
                    now_ms(),
                    plan.to_string(),
                    warnings
                ],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// Sets a deployment's state. Fails if there is no deployment `id`.
    pub fn set_deployment_state(&self, id: i64, state: DeploymentState) -> Result<(), StoreError> {
        let op = "set the state of a deployment";
        let n = self
            .db
            .execute(
                "UPDATE deployments SET state = ?2 WHERE id = ?1",
                args![id, state.as_str()],
            )
            .map_err(self.sql_err(op))?;
        self.expect_row(
            n,
            "set the state of a deployment: no deployment has that id",
        )
    }

    /// Ends a deployment: sets its state and outcome and stamps
    /// `ended_at_ms` now (again, if it had already ended). Fails if there
    /// is no deployment `id`.
    ///
    /// In the same transaction its batches are settled (see
    /// `settle_batches` in `store/batch.rs`): none is left `pending` or `running` once the
    /// deployment has ended.
    pub fn finish_deployment(
        &self,
        id: i64,
        state: DeploymentState,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let op = "finish a deployment";
        let tx = self.immediate(op)?;
        let now = now_ms();
        let n = tx
            .execute(
                "UPDATE deployments SET state = ?2, outcome = ?3, ended_at_ms = ?4 WHERE id = ?1",
                args![id, state.as_str(), outcome.as_str(), now],
            )
            .map_err(self.sql_err(op))?;
        self.expect_row(n, "finish a deployment: no deployment has that id")?;
        super::batch::settle_batches(&tx, id, outcome, now).map_err(self.sql_err(op))?;
        tx.commit().map_err(self.sql_err(op))
    }

    /// Appends a warning to a deployment, in one IMMEDIATE transaction
    /// (two processes adding warnings at once both keep theirs). If the
    /// stored warnings are a JSON value but not an array, they become the
    /// first element of one; text that is not JSON is dropped. Fails if
    /// there is no deployment `id`.
    pub fn add_deployment_warning(&self, id: i64, warning: &str) -> Result<(), StoreError> {
        let op = "add a warning to a deployment";
        let tx = self.immediate(op)?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT warnings FROM deployments WHERE id = ?1",
                args![id],
                |r| Ok(super::queries::opt_text(r.get_ref(0)?)),
            )
            .optional()
            .map_err(self.sql_err(op))?
            .ok_or(StoreError::Query {
                path: self.path.clone(),
                op: "add a warning to a deployment: no deployment has that id",
                source: DbError::NoRows,
            })?;
        let mut list = match stored.map(|s| serde_json::from_str::<Value>(&s)) {
            Some(Ok(Value::Array(items))) => items,
            Some(Ok(Value::Null)) | Some(Err(_)) | None => Vec::new(),
            Some(Ok(other)) => vec![other],
        };
        list.push(Value::from(warning));
        tx.execute(
            "UPDATE deployments SET warnings = ?2 WHERE id = ?1",
            args![id, Value::Array(list).to_string()],
        )
        .map_err(self.sql_err(op))?;
        tx.commit().map_err(self.sql_err(op))
    }

    /// The deployment `id`, if it exists.
    pub fn deployment(&self, id: i64) -> Result<Option<Deployment>, StoreError> {
        let err = || self.sql_err("read a deployment");
        self.db
            .query_row(
                &format!("SELECT {DEPLOYMENT_COLS} FROM deployments WHERE id = ?1"),
                args![id],
                deployment_from_row,
            )
            .optional()
            .map_err(err())
    }

    /// The newest `limit` deployments (by start time, then id), newest
    /// first; only `app`'s when given.
    pub fn deployments(
        &self,
        app: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Deployment>, StoreError> {
        let err = || self.sql_err("read deployments");
        self.db
            .query_map(
                &format!(
                    "SELECT {DEPLOYMENT_COLS} FROM deployments \
                 WHERE CAST(?1 AS TEXT) IS NULL OR app = ?1 \
                 ORDER BY started_at_ms DESC, id DESC LIMIT ?2"
                ),
                args![app, limit],
                deployment_from_row,
            )
            .map_err(err())
    }

    /// Deployments that have not ended (`ended_at_ms` is NULL), newest
    /// first; only `app`'s when given. After a crash these are the ones to
    /// resume or mark interrupted.
    pub fn unfinished_deployments(&self, app: Option<&str>) -> Result<Vec<Deployment>, StoreError> {
        let err = || self.sql_err("read unfinished deployments");
        self.db
            .query_map(
                &format!(
                    "SELECT {DEPLOYMENT_COLS} FROM deployments \
                 WHERE ended_at_ms IS NULL AND (CAST(?1 AS TEXT) IS NULL OR app = ?1) \
                 ORDER BY started_at_ms DESC, id DESC"
                ),
                args![app],
                deployment_from_row,
            )
            .map_err(err())
    }

    /// Appends an event to the audit log, stamped now and tied to
    /// `deployment_id` when given; returns its id. Fails if that
    /// deployment does not exist (foreign key).
    pub fn record_deployment_event(
        &self,
        app: &str,
        deployment_id: Option<i64>,
        kind: &str,
        actor: &str,
        reason: Option<&str>,
        evidence: Option<&Value>,
    ) -> Result<i64, StoreError> {
        let err = || self.sql_err("record a deployment event");
        self.db
            .query_row(
                "INSERT INTO events (at_ms, app, deployment_id, kind, actor, reason, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                args![
                    now_ms(),
                    app,
                    deployment_id,
                    kind,
                    actor,
                    reason,
                    evidence.map(Value::to_string)
                ],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// Records `event` of `app` (tied to `deployment_id` when given) by
    /// `actor`, stamped now; returns its id. The typed form of
    /// [`Store::record_deployment_event`].
    pub fn record(
        &self,
        app: &str,
        deployment_id: Option<i64>,
        actor: &str,
        reason: Option<&str>,
        event: &EventKind,
    ) -> Result<i64, StoreError> {
        let (kind, evidence) = event.to_stored();
        self.record_deployment_event(app, deployment_id, &kind, actor, reason, evidence.as_ref())
    }

    /// The events of deployment `deployment_id` with an id greater than
    /// `after_id`, oldest (lowest id) first. A follower polls with the
    /// last id it has seen (0 at first).
    pub fn deployment_events(
        &self,
        deployment_id: i64,
        after_id: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let err = || self.sql_err("read deployment events");
        self.db
            .query_map(
                &format!(
                    "SELECT {EVENT_COLS} FROM events \
                 WHERE deployment_id = ?1 AND id > ?2 ORDER BY id"
                ),
                args![deployment_id, after_id],
                event_from_row,
            )
            .map_err(err())
    }
}

pub(super) fn deployment_from_row(row: &Row<'_>) -> Result<Deployment, DbError> {
    Ok(Deployment {
        id: int(row.get_ref(0)?).unwrap_or(0),
        app: text(row.get_ref(1)?),
        from_version: opt_text(row.get_ref(2)?),
        to_version: text(row.get_ref(3)?),
        strategy: named(row, 4, "deployments", "strategy", Strategy::parse)?,
        state: named(row, 5, "deployments", "state", DeploymentState::parse)?,
        outcome: opt_named(row, 6, "deployments", "outcome", Outcome::parse)?,
        actor: text(row.get_ref(7)?),
        reason: opt_text(row.get_ref(8)?),
        started_at_ms: int(row.get_ref(9)?).unwrap_or(0),
        ended_at_ms: int(row.get_ref(10)?),
        plan: opt_json(row.get_ref(11)?).unwrap_or(Value::Null),
        warnings: string_list(opt_json(row.get_ref(12)?)),
    })
}
