//! Reading and writing the rollout tables of the history store:
//! deployments, their batches, per-instance changes, snapshots, releases,
//! instance state, the per-app deployment lock and the command queue.
//!
//! It exists so the rollout engine, the console and other terminals share
//! one definition of how a deployment is recorded. Schema version 1 already
//! holds these tables; this file only adds the Rust side.
//!
//! Conventions, as in `queries`:
//! - Times are milliseconds since the Unix epoch ([`now_ms`]).
//! - JSON columns take and return [`serde_json::Value`]. Text in a JSON
//!   column that does not parse is returned as a JSON string.
//! - Reads are lenient: a row with odd values (written by hand or by a
//!   future version) is read as best it can be, never a panic or an error.
//!   A non-number reads as 0 (or `None` where the field is optional).
//!   A column holding a typed name (a strategy, a state, an outcome, a
//!   change's action, a verb) is the exception: a name this version does
//!   not know is [`StoreError::Unknown`] (`E_STORE`, naming the table, the
//!   column and the value), never a guess.
//! - Changes touching several rows run in one transaction. The lock and
//!   the command queue use `BEGIN IMMEDIATE`, which takes SQLite's write
//!   lock before reading, so two processes cannot both win a lock or both
//!   receive one command.
//! - A write that returns what it wrote (`INSERT … RETURNING`) reads its
//!   statement to the end (`query_one`), so a commit that fails (a full
//!   disk) is an error, never an id of a row that was not kept.
//! - Updating a row that does not exist (an unknown deployment, batch or
//!   change id, or an app without a lock) fails with
//!   [`StoreError::Sqlite`] whose source is
//!   [`rusqlite::Error::QueryReturnedNoRows`], rather than silently doing
//!   nothing.

use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;

use super::error::UnknownValue;
use super::queries::{event_from_row, int, limit_param, opt_text, real, text};
use super::{Event, Store, StoreError, schema};
use crate::config::Strategy;
use crate::model::event::EventKind;
use crate::model::{
    BatchState, ChangeAction, ChangeState, DeploymentKind, DeploymentState, Outcome, Verb, now_ms,
};

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
    /// The plan it follows, as JSON.
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

/// One batch (rolling) or step (canary) of a deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Batch {
    /// Row id.
    pub id: i64,
    /// The deployment it belongs to.
    pub deployment_id: i64,
    /// Its position in the deployment, from 0.
    pub idx: i64,
    /// `batch` or `step`.
    pub kind: String,
    /// The instances it changes.
    pub instances: Vec<String>,
    /// The share of traffic the new version gets in this step (0 to 100),
    /// if the strategy shifts traffic.
    pub traffic_percent: Option<f64>,
    /// Where it is now.
    pub state: BatchState,
    /// When it first left `pending`.
    pub started_at_ms: Option<i64>,
    /// When it reached a final state ([`BatchState::is_final`]).
    pub ended_at_ms: Option<i64>,
}

/// One action taken on one instance during a deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceChange {
    /// Row id; increases with insertion order.
    pub id: i64,
    /// The deployment it belongs to.
    pub deployment_id: i64,
    /// The batch it belongs to, if any.
    pub batch_id: Option<i64>,
    /// The instance acted on.
    pub instance: String,
    /// What was done.
    pub action: ChangeAction,
    /// The version before, when known.
    pub from_version: Option<String>,
    /// The version after, when it applies.
    pub to_version: Option<String>,
    /// Where the action is.
    pub state: ChangeState,
    /// When it was recorded (not updated by later state changes).
    pub at_ms: i64,
    /// Supporting data, e.g. a command's output or an error.
    pub detail: Option<Value>,
}

/// What a driver saw of an instance before touching it, to roll back to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnapshotRow {
    /// Row id; increases with insertion order.
    pub id: i64,
    /// The deployment that took it, if any.
    pub deployment_id: Option<i64>,
    /// The app.
    pub app: String,
    /// The instance.
    pub instance: String,
    /// The driver that took it and can restore it.
    pub driver: String,
    /// The driver's own description of the instance.
    pub data: Value,
    /// When it was taken.
    pub at_ms: i64,
}

/// A version of an app that rollguard has seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Release {
    /// The app.
    pub app: String,
    /// The version.
    pub version: String,
    /// When it was first recorded.
    pub first_seen_ms: i64,
    /// The latest time it was seen healthy; `None` if never.
    pub last_healthy_ms: Option<i64>,
    /// What was deployed (image digest, archive checksum, ...), if known.
    pub artifact: Option<Value>,
}

/// What is believed to run on one instance now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceState {
    /// The app.
    pub app: String,
    /// The instance.
    pub instance: String,
    /// The version running, when known.
    pub version: Option<String>,
    /// For blue/green: which side serves traffic.
    pub live_side: Option<String>,
    /// When this row was last written.
    pub updated_ms: i64,
}

/// The lock that lets at most one deployment per app run at a time,
/// across processes and users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// The app locked.
    pub app: String,
    /// The deployment holding it, once created.
    pub deployment_id: Option<i64>,
    /// The user who took it.
    pub owner_user: String,
    /// The host it was taken on.
    pub owner_host: String,
    /// The process holding it (it may be handed to a worker process).
    pub owner_pid: i64,
    /// When that process started, in clock ticks after its host's boot
    /// (`None` when not known: locks recorded before schema 5): with the
    /// host and pid, it tells the holder from a later process that was
    /// given the same pid.
    pub owner_start: Option<i64>,
    /// Why it was taken.
    pub reason: String,
    /// When it was taken.
    pub acquired_ms: i64,
    /// When its holder last said it is alive.
    pub heartbeat_ms: i64,
}

impl Lock {
    /// Whether the holder has not sent a heartbeat for more than
    /// `stale_after_ms` at `now_ms`. A heartbeat in the future (clocks of
    /// two hosts disagree) is not stale. A stale lock is never broken
    /// automatically; the console offers [`Store::break_lock`].
    pub fn is_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        now_ms.saturating_sub(self.heartbeat_ms) > stale_after_ms
    }
}

/// Who takes a lock: recorded so others can see who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockOwner {
    /// User name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The process's start time (see [`Lock::owner_start`]), when known.
    pub start: Option<u64>,
}

impl LockOwner {
    /// The start time as stored (an integer column).
    fn stored_start(&self) -> Option<i64> {
        self.start.and_then(|s| i64::try_from(s).ok())
    }
}

/// A request (pause, resume, abort, ...) from another terminal to the
/// process running a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    /// Row id; increases with sending order.
    pub id: i64,
    /// The app.
    pub app: String,
    /// The deployment it is for; `None` for whichever deployment of the
    /// app takes it first.
    pub deployment_id: Option<i64>,
    /// What to do.
    pub verb: Verb,
    /// Who asked.
    pub actor: String,
    /// Why, as the actor gave it.
    pub reason: Option<String>,
    /// When it was sent.
    pub at_ms: i64,
}

pub(super) const DEPLOYMENT_COLS: &str = "id, app, from_version, to_version, strategy, state, outcome, \
     actor, reason, started_at_ms, ended_at_ms, plan, warnings";
const EVENT_COLS: &str = "id, at_ms, app, deployment_id, kind, actor, reason, evidence";
const BATCH_COLS: &str =
    "id, deployment_id, idx, kind, instances, traffic_percent, state, started_at_ms, ended_at_ms";
const CHANGE_COLS: &str = "id, deployment_id, batch_id, instance, action, from_version, \
     to_version, state, at_ms, detail";
const SNAPSHOT_COLS: &str = "id, deployment_id, app, instance, driver, data, at_ms";
const RELEASE_COLS: &str = "app, version, first_seen_ms, last_healthy_ms, artifact";
pub(super) const LOCK_COLS: &str = "app, deployment_id, owner_user, owner_host, owner_pid, reason, \
     acquired_ms, heartbeat_ms, owner_start";
/// [`LOCK_COLS`] for a file older than [`schema::LOCK_START_FROM`]
/// (opened read-only, not migrated): no start time.
const LOCK_COLS_BEFORE_START: &str = "app, deployment_id, owner_user, owner_host, owner_pid, reason, \
     acquired_ms, heartbeat_ms, NULL";
const COMMAND_COLS: &str = "id, app, deployment_id, verb, actor, reason, at_ms";

impl Store {
    // ----- deployments -----

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
        self.conn
            .prepare_cached(
                "INSERT INTO deployments (app, from_version, to_version, strategy, state, \
                 actor, reason, started_at_ms, plan, warnings) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9) RETURNING id",
            )
            .map_err(err())?
            .query_one(
                params![
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
            .conn
            .prepare_cached("UPDATE deployments SET state = ?2 WHERE id = ?1")
            .map_err(self.sql_err(op))?
            .execute(params![id, state.as_str()])
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
    /// [`settle_batches`]): none is left `pending` or `running` once the
    /// deployment has ended.
    pub fn finish_deployment(
        &self,
        id: i64,
        state: DeploymentState,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let op = "finish a deployment";
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql_err(op))?;
        let now = now_ms();
        let n = tx
            .prepare_cached(
                "UPDATE deployments SET state = ?2, outcome = ?3, ended_at_ms = ?4 WHERE id = ?1",
            )
            .map_err(self.sql_err(op))?
            .execute(params![id, state.as_str(), outcome.as_str(), now])
            .map_err(self.sql_err(op))?;
        self.expect_row(n, "finish a deployment: no deployment has that id")?;
        settle_batches(&tx, id, outcome, now).map_err(self.sql_err(op))?;
        tx.commit().map_err(self.sql_err(op))
    }

    /// Appends a warning to a deployment, in one statement (two processes
    /// adding warnings at once both keep theirs). If the stored warnings
    /// are not a JSON array, they become the first element of one. Fails
    /// if there is no deployment `id`.
    pub fn add_deployment_warning(&self, id: i64, warning: &str) -> Result<(), StoreError> {
        let op = "add a warning to a deployment";
        let n = self
            .conn
            .prepare_cached(
                "UPDATE deployments SET warnings = json_insert( \
                   CASE WHEN json_valid(warnings) AND json_type(warnings) = 'array' \
                        THEN warnings \
                        WHEN warnings IS NULL OR NOT json_valid(warnings) THEN '[]' \
                        ELSE json_array(json(warnings)) END, \
                   '$[#]', ?2) \
                 WHERE id = ?1",
            )
            .map_err(self.sql_err(op))?
            .execute(params![id, warning])
            .map_err(self.sql_err(op))?;
        self.expect_row(
            n,
            "add a warning to a deployment: no deployment has that id",
        )
    }

    /// The deployment `id`, if it exists.
    pub fn deployment(&self, id: i64) -> Result<Option<Deployment>, StoreError> {
        let err = || self.sql_err("read a deployment");
        self.conn
            .prepare_cached(&format!(
                "SELECT {DEPLOYMENT_COLS} FROM deployments WHERE id = ?1"
            ))
            .map_err(err())?
            .query_row(params![id], deployment_from_row)
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
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {DEPLOYMENT_COLS} FROM deployments \
                 WHERE ?1 IS NULL OR app = ?1 \
                 ORDER BY started_at_ms DESC, id DESC LIMIT ?2"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![app, limit_param(limit)], deployment_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    /// Deployments that have not ended (`ended_at_ms` is NULL), newest
    /// first; only `app`'s when given. After a crash these are the ones to
    /// resume or mark interrupted.
    pub fn unfinished_deployments(&self, app: Option<&str>) -> Result<Vec<Deployment>, StoreError> {
        let err = || self.sql_err("read unfinished deployments");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {DEPLOYMENT_COLS} FROM deployments \
                 WHERE ended_at_ms IS NULL AND (?1 IS NULL OR app = ?1) \
                 ORDER BY started_at_ms DESC, id DESC"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![app], deployment_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    // ----- events of a deployment -----

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
        self.conn
            .prepare_cached(
                "INSERT INTO events (at_ms, app, deployment_id, kind, actor, reason, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            )
            .map_err(err())?
            .query_one(
                params![
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
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM events \
                 WHERE deployment_id = ?1 AND id > ?2 ORDER BY id"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![deployment_id, after_id], event_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    // ----- batches -----

    /// Records the batches of a deployment, in one transaction: each
    /// `(kind, instances, traffic_percent)` gets `idx` = its position and
    /// state `pending`. Returns their ids in the same order. Fails (writing
    /// nothing) if a kind is not `batch` or `step`, a traffic percent is
    /// outside 0..=100, or the deployment already has batches at those
    /// positions.
    pub fn insert_batches(
        &self,
        deployment_id: i64,
        batches: &[(&str, Vec<String>, Option<f64>)],
    ) -> Result<Vec<i64>, StoreError> {
        let op = "insert the batches of a deployment";
        let tx = self.immediate(op)?;
        let mut ids = Vec::with_capacity(batches.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO batches (deployment_id, idx, kind, instances, \
                     traffic_percent, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending') \
                     RETURNING id",
                )
                .map_err(self.sql_err(op))?;
            for (idx, (kind, instances, traffic)) in batches.iter().enumerate() {
                let instances = serde_json::to_string(instances).unwrap_or_else(|_| "[]".into());
                let id: i64 = stmt
                    .query_one(
                        params![deployment_id, limit_param(idx), kind, instances, traffic],
                        |r| r.get(0),
                    )
                    .map_err(self.sql_err(op))?;
                ids.push(id);
            }
        }
        tx.commit().map_err(self.sql_err(op))?;
        Ok(ids)
    }

    /// Sets a batch's state. The first state other than `pending` stamps
    /// `started_at_ms`; a final state ([`BatchState::is_final`]) stamps
    /// `ended_at_ms` now (so `failed` then `rolled_back` ends when the
    /// rollback did), and any other state clears it. Fails if there is no
    /// batch `batch_id`.
    pub fn set_batch_state(&self, batch_id: i64, state: BatchState) -> Result<(), StoreError> {
        let op = "set the state of a batch";
        let ends = state.is_final();
        let n = self
            .conn
            .prepare_cached(
                "UPDATE batches SET state = ?2, \
                 started_at_ms = CASE WHEN started_at_ms IS NULL AND ?2 <> 'pending' \
                                      THEN ?3 ELSE started_at_ms END, \
                 ended_at_ms = CASE WHEN ?4 THEN ?3 ELSE NULL END \
                 WHERE id = ?1",
            )
            .map_err(self.sql_err(op))?
            .execute(params![batch_id, state.as_str(), now_ms(), ends])
            .map_err(self.sql_err(op))?;
        self.expect_row(n, "set the state of a batch: no batch has that id")
    }

    /// The batches of a deployment, in order (`idx`).
    pub fn batches(&self, deployment_id: i64) -> Result<Vec<Batch>, StoreError> {
        let err = || self.sql_err("read batches");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {BATCH_COLS} FROM batches WHERE deployment_id = ?1 ORDER BY idx, id"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![deployment_id], batch_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    // ----- instance changes -----

    /// Records an action on an instance, stamped now; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn record_change(
        &self,
        deployment_id: i64,
        batch_id: Option<i64>,
        instance: &str,
        action: ChangeAction,
        from_version: Option<&str>,
        to_version: Option<&str>,
        state: ChangeState,
        detail: Option<&Value>,
    ) -> Result<i64, StoreError> {
        let err = || self.sql_err("record an instance change");
        self.conn
            .prepare_cached(
                "INSERT INTO instance_changes (deployment_id, batch_id, instance, action, \
                 from_version, to_version, state, at_ms, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
            )
            .map_err(err())?
            .query_one(
                params![
                    deployment_id,
                    batch_id,
                    instance,
                    action.as_str(),
                    from_version,
                    to_version,
                    state.as_str(),
                    now_ms(),
                    detail.map(Value::to_string)
                ],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// Sets the state of an instance change, and its detail when `detail`
    /// is given (`None` keeps the stored detail). `at_ms` is not changed.
    /// Fails if there is no change `change_id`.
    pub fn set_change_state(
        &self,
        change_id: i64,
        state: ChangeState,
        detail: Option<&Value>,
    ) -> Result<(), StoreError> {
        let op = "set the state of an instance change";
        let n = self
            .conn
            .prepare_cached(
                "UPDATE instance_changes SET state = ?2, detail = coalesce(?3, detail) \
                 WHERE id = ?1",
            )
            .map_err(self.sql_err(op))?
            .execute(params![
                change_id,
                state.as_str(),
                detail.map(Value::to_string)
            ])
            .map_err(self.sql_err(op))?;
        self.expect_row(
            n,
            "set the state of an instance change: no change has that id",
        )
    }

    /// The instances of `app` that its running deployment has changed so
    /// far: one that has not ended, whose lock it holds with a heartbeat
    /// at `fresh_since_ms` or later (a worker that is gone changes nothing
    /// more). Each once.
    pub fn instances_in_rollout(
        &self,
        app: &str,
        fresh_since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let err = || self.sql_err("read the instances of a running deployment");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT c.instance FROM deployments d \
                 JOIN locks l ON l.app = d.app AND l.deployment_id = d.id \
                 JOIN instance_changes c ON c.deployment_id = d.id \
                 WHERE d.app = ?1 AND d.ended_at_ms IS NULL AND l.heartbeat_ms >= ?2 \
                 ORDER BY c.instance",
            )
            .map_err(err())?;
        let rows = stmt
            .query_map(params![app, fresh_since_ms], |r| r.get(0))
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    /// The instance changes of a deployment, oldest (lowest id) first.
    pub fn changes(&self, deployment_id: i64) -> Result<Vec<InstanceChange>, StoreError> {
        let err = || self.sql_err("read instance changes");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {CHANGE_COLS} FROM instance_changes WHERE deployment_id = ?1 ORDER BY id"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![deployment_id], change_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    // ----- snapshots -----

    /// Saves what a driver saw of an instance, stamped now; returns its id.
    pub fn save_snapshot(
        &self,
        deployment_id: Option<i64>,
        app: &str,
        instance: &str,
        driver: &str,
        data: &Value,
    ) -> Result<i64, StoreError> {
        let err = || self.sql_err("save a snapshot");
        self.conn
            .prepare_cached(
                "INSERT INTO snapshots (deployment_id, app, instance, driver, data, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )
            .map_err(err())?
            .query_one(
                params![
                    deployment_id,
                    app,
                    instance,
                    driver,
                    data.to_string(),
                    now_ms()
                ],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// The snapshots taken by a deployment, oldest (lowest id) first.
    pub fn deployment_snapshots(&self, deployment_id: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        let err = || self.sql_err("read snapshots");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SNAPSHOT_COLS} FROM snapshots WHERE deployment_id = ?1 ORDER BY id"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![deployment_id], snapshot_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    /// The newest snapshot of an instance (by time, then id), whichever
    /// deployment took it.
    pub fn latest_snapshot(
        &self,
        app: &str,
        instance: &str,
    ) -> Result<Option<SnapshotRow>, StoreError> {
        let err = || self.sql_err("read the latest snapshot");
        self.conn
            .prepare_cached(&format!(
                "SELECT {SNAPSHOT_COLS} FROM snapshots WHERE app = ?1 AND instance = ?2 \
                 ORDER BY at_ms DESC, id DESC LIMIT 1"
            ))
            .map_err(err())?
            .query_row(params![app, instance], snapshot_from_row)
            .optional()
            .map_err(err())
    }

    // ----- releases -----

    /// Records that `version` of `app` exists, first seen now, unless it is
    /// already recorded.
    pub fn touch_release(&self, app: &str, version: &str) -> Result<(), StoreError> {
        let op = "record a release";
        self.conn
            .prepare_cached(
                "INSERT INTO releases (app, version, first_seen_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (app, version) DO NOTHING",
            )
            .map_err(self.sql_err(op))?
            .execute(params![app, version, now_ms()])
            .map_err(self.sql_err(op))?;
        Ok(())
    }

    /// Records that `version` of `app` was healthy at `at_ms`, recording the
    /// release if needed (first seen at the earlier of now and `at_ms`).
    /// `last_healthy_ms` only moves forward: an older `at_ms` changes
    /// nothing. A stored value that is not a number is replaced.
    pub fn mark_release_healthy(
        &self,
        app: &str,
        version: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let op = "mark a release healthy";
        self.conn
            .prepare_cached(
                "INSERT INTO releases (app, version, first_seen_ms, last_healthy_ms) \
                 VALUES (?1, ?2, min(?3, ?4), ?4) \
                 ON CONFLICT (app, version) DO UPDATE SET last_healthy_ms = \
                   CASE WHEN typeof(last_healthy_ms) NOT IN ('integer', 'real') \
                          OR last_healthy_ms < excluded.last_healthy_ms \
                        THEN excluded.last_healthy_ms ELSE last_healthy_ms END",
            )
            .map_err(self.sql_err(op))?
            .execute(params![app, version, now_ms(), at_ms])
            .map_err(self.sql_err(op))?;
        Ok(())
    }

    /// One release, if recorded.
    pub fn release(&self, app: &str, version: &str) -> Result<Option<Release>, StoreError> {
        let err = || self.sql_err("read a release");
        self.conn
            .prepare_cached(&format!(
                "SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 AND version = ?2"
            ))
            .map_err(err())?
            .query_row(params![app, version], release_from_row)
            .optional()
            .map_err(err())
    }

    /// The releases of `app`, most recently first seen first.
    pub fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError> {
        let err = || self.sql_err("read releases");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 \
                 ORDER BY first_seen_ms DESC, version DESC"
            ))
            .map_err(err())?;
        let rows = stmt
            .query_map(params![app], release_from_row)
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    /// The release of `app` seen healthy most recently, other than
    /// `except` (typically the version being rolled back from): the
    /// rollback target. Ties go to the most recently first seen. Releases
    /// never seen healthy are not candidates.
    pub fn last_good_release(
        &self,
        app: &str,
        except: Option<&str>,
    ) -> Result<Option<Release>, StoreError> {
        let err = || self.sql_err("find the last good release");
        self.conn
            .prepare_cached(&format!(
                "SELECT {RELEASE_COLS} FROM releases \
                 WHERE app = ?1 AND typeof(last_healthy_ms) IN ('integer', 'real') \
                   AND (?2 IS NULL OR version <> ?2) \
                 ORDER BY last_healthy_ms DESC, first_seen_ms DESC, version DESC LIMIT 1"
            ))
            .map_err(err())?
            .query_row(params![app, except], release_from_row)
            .optional()
            .map_err(err())
    }

    // ----- instance state -----

    /// Records what runs on an instance now (replacing what was recorded),
    /// stamped now.
    pub fn set_instance_state(
        &self,
        app: &str,
        instance: &str,
        version: Option<&str>,
        live_side: Option<&str>,
    ) -> Result<(), StoreError> {
        let op = "record the state of an instance";
        self.conn
            .prepare_cached(
                "INSERT INTO instance_state (app, instance, version, live_side, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (app, instance) DO UPDATE SET version = excluded.version, \
                   live_side = excluded.live_side, updated_ms = excluded.updated_ms",
            )
            .map_err(self.sql_err(op))?
            .execute(params![app, instance, version, live_side, now_ms()])
            .map_err(self.sql_err(op))?;
        Ok(())
    }

    /// What is believed to run on each instance of `app`, by instance name.
    pub fn instance_states(&self, app: &str) -> Result<Vec<InstanceState>, StoreError> {
        let err = || self.sql_err("read instance states");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT app, instance, version, live_side, updated_ms FROM instance_state \
                 WHERE app = ?1 ORDER BY instance",
            )
            .map_err(err())?;
        let rows = stmt
            .query_map(params![app], |row| {
                Ok(InstanceState {
                    app: text(row.get_ref(0)?),
                    instance: text(row.get_ref(1)?),
                    version: opt_text(row.get_ref(2)?),
                    live_side: opt_text(row.get_ref(3)?),
                    updated_ms: int(row.get_ref(4)?).unwrap_or(0),
                })
            })
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    // ----- locks -----

    /// Takes the deployment lock of `app` if nobody holds it: `Ok(Ok(()))`.
    /// If someone does, returns their lock as `Ok(Err(lock))` and changes
    /// nothing — a lock is never stolen, even a stale one (see
    /// [`Store::break_lock`]). Runs in an IMMEDIATE transaction, so of two
    /// processes trying at once exactly one wins.
    pub fn try_lock(
        &self,
        app: &str,
        owner: &LockOwner,
        reason: &str,
        deployment_id: Option<i64>,
    ) -> Result<Result<(), Lock>, StoreError> {
        let op = "take the deployment lock";
        let tx = self.immediate(op)?;
        let existing = tx
            .prepare_cached(&format!("SELECT {LOCK_COLS} FROM locks WHERE app = ?1"))
            .map_err(self.sql_err(op))?
            .query_row(params![app], lock_from_row)
            .optional()
            .map_err(self.sql_err(op))?;
        if let Some(lock) = existing {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(Err(lock));
        }
        let now = now_ms();
        tx.prepare_cached(
            "INSERT INTO locks (app, deployment_id, owner_user, owner_host, owner_pid, reason, \
             acquired_ms, heartbeat_ms, owner_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        )
        .map_err(self.sql_err(op))?
        .execute(params![
            app,
            deployment_id,
            owner.user,
            owner.host,
            i64::from(owner.pid),
            reason,
            now,
            owner.stored_start()
        ])
        .map_err(self.sql_err(op))?;
        tx.commit().map_err(self.sql_err(op))?;
        Ok(Ok(()))
    }

    /// The deployment lock of `app`, if held.
    pub fn lock(&self, app: &str) -> Result<Option<Lock>, StoreError> {
        let err = || self.sql_err("read the deployment lock");
        let cols = if self.schema >= schema::LOCK_START_FROM {
            LOCK_COLS
        } else {
            LOCK_COLS_BEFORE_START
        };
        self.conn
            .prepare_cached(&format!("SELECT {cols} FROM locks WHERE app = ?1"))
            .map_err(err())?
            .query_row(params![app], lock_from_row)
            .optional()
            .map_err(err())
    }

    /// Ties the lock of `app` to a deployment (once it has been created).
    /// Does not check who holds the lock. Fails if `app` is not locked.
    pub fn set_lock_deployment(&self, app: &str, deployment_id: i64) -> Result<(), StoreError> {
        let op = "tie the deployment lock to a deployment";
        let n = self
            .conn
            .prepare_cached("UPDATE locks SET deployment_id = ?2 WHERE app = ?1")
            .map_err(self.sql_err(op))?
            .execute(params![app, deployment_id])
            .map_err(self.sql_err(op))?;
        self.expect_row(
            n,
            "tie the deployment lock to a deployment: the app is not locked",
        )
    }

    /// Hands the lock of `app` to `owner`'s process (the worker that runs
    /// the deployment) and counts that as a heartbeat. Does not check who
    /// holds the lock now; user and host are kept. Fails if `app` is not
    /// locked.
    pub fn set_lock_owner(&self, app: &str, owner: &LockOwner) -> Result<(), StoreError> {
        let op = "hand the deployment lock over";
        let n = self
            .conn
            .prepare_cached(
                "UPDATE locks SET owner_pid = ?2, owner_start = ?3, heartbeat_ms = ?4 \
                 WHERE app = ?1",
            )
            .map_err(self.sql_err(op))?
            .execute(params![
                app,
                i64::from(owner.pid),
                owner.stored_start(),
                now_ms()
            ])
            .map_err(self.sql_err(op))?;
        self.expect_row(n, "hand the deployment lock over: the app is not locked")
    }

    /// Says that `owner` (its host, pid and start time) still holds the
    /// lock of `app`. Returns `false` if the lock is gone or held by
    /// another process (it was broken): the caller must then stop touching
    /// the app.
    pub fn heartbeat(&self, app: &str, owner: &LockOwner) -> Result<bool, StoreError> {
        let op = "refresh the deployment lock";
        let n = self
            .conn
            .prepare_cached(
                "UPDATE locks SET heartbeat_ms = ?5 WHERE app = ?1 AND owner_host = ?2 \
                 AND owner_pid = ?3 AND owner_start IS ?4",
            )
            .map_err(self.sql_err(op))?
            .execute(params![
                app,
                owner.host,
                i64::from(owner.pid),
                owner.stored_start(),
                now_ms()
            ])
            .map_err(self.sql_err(op))?;
        Ok(n > 0)
    }

    /// Releases the lock of `app` if `owner` (its host, pid and start
    /// time) holds it; returns whether it did. A lock held by another
    /// process is left alone.
    pub fn unlock(&self, app: &str, owner: &LockOwner) -> Result<bool, StoreError> {
        let op = "release the deployment lock";
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM locks WHERE app = ?1 AND owner_host = ?2 AND owner_pid = ?3 \
                 AND owner_start IS ?4",
            )
            .map_err(self.sql_err(op))?
            .execute(params![
                app,
                owner.host,
                i64::from(owner.pid),
                owner.stored_start()
            ])
            .map_err(self.sql_err(op))?;
        Ok(n > 0)
    }

    /// Deletes the lock of `app`, whoever holds it, and returns what it
    /// was (`None` if there was none), in one statement. For an operator
    /// clearing a stale lock; the caller records the event.
    pub fn break_lock(&self, app: &str) -> Result<Option<Lock>, StoreError> {
        let err = || self.sql_err("break the deployment lock");
        self.conn
            .prepare_cached(&format!(
                "DELETE FROM locks WHERE app = ?1 RETURNING {LOCK_COLS}"
            ))
            .map_err(err())?
            .query_one(params![app], lock_from_row)
            .optional()
            .map_err(err())
    }

    // ----- commands -----

    /// Queues a command for the process running a deployment of `app`
    /// (for `deployment_id`, or for whichever deployment takes it first
    /// when `None`), stamped now; returns its id.
    pub fn send_command(
        &self,
        app: &str,
        deployment_id: Option<i64>,
        verb: Verb,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<i64, StoreError> {
        let err = || self.sql_err("send a command");
        self.conn
            .prepare_cached(
                "INSERT INTO commands (app, deployment_id, verb, actor, reason, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            )
            .map_err(err())?
            .query_one(
                params![app, deployment_id, verb.as_str(), actor, reason, now_ms()],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// Takes the unconsumed commands for deployment `deployment_id` of
    /// `app` (and those of `app` sent with no deployment), oldest (lowest
    /// id) first, marking them consumed in the same IMMEDIATE transaction:
    /// however many processes call this at once, each command is delivered
    /// once. A command whose verb this version does not know (sent by a
    /// newer rollguard) is taken too, and left out with a warning in the
    /// log: it never holds back the commands after it.
    pub fn take_commands(&self, app: &str, deployment_id: i64) -> Result<Vec<Command>, StoreError> {
        let op = "take commands";
        let tx = self.immediate(op)?;
        let mut taken: Vec<i64> = Vec::new();
        let mut commands: Vec<Command> = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {COMMAND_COLS} FROM commands \
                     WHERE app = ?1 AND consumed_ms IS NULL \
                       AND (deployment_id = ?2 OR deployment_id IS NULL) \
                     ORDER BY id"
                ))
                .map_err(self.sql_err(op))?;
            let mut rows = stmt
                .query(params![app, deployment_id])
                .map_err(self.sql_err(op))?;
            while let Some(row) = rows.next().map_err(self.sql_err(op))? {
                taken.push(int(row.get_ref(0).map_err(self.sql_err(op))?).unwrap_or(0));
                match command_from_row(row).map_err(self.sql_err(op)) {
                    Ok(c) => commands.push(c),
                    Err(StoreError::Unknown { value, .. }) => {
                        tracing::warn!("ignoring a command this version does not know: {value}");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if taken.is_empty() {
            return Ok(commands);
        }
        {
            let now = now_ms();
            let mut stmt = tx
                .prepare_cached("UPDATE commands SET consumed_ms = ?2 WHERE id = ?1")
                .map_err(self.sql_err(op))?;
            for id in taken {
                stmt.execute(params![id, now]).map_err(self.sql_err(op))?;
            }
        }
        tx.commit().map_err(self.sql_err(op))?;
        Ok(commands)
    }

    // ----- helpers -----

    /// Starts an IMMEDIATE transaction on this connection: it takes the
    /// write lock at once (waiting up to the busy timeout), so what it
    /// reads cannot change before it writes. Rolled back when dropped
    /// without `commit`.
    pub(super) fn immediate(&self, op: &'static str) -> Result<Transaction<'_>, StoreError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.sql_err(op))
    }

    /// `Ok` if an UPDATE changed a row, else a "no such row" error.
    fn expect_row(&self, changed: usize, op: &'static str) -> Result<(), StoreError> {
        if changed > 0 {
            Ok(())
        } else {
            Err(StoreError::Sqlite {
                path: self.path.clone(),
                op,
                source: rusqlite::Error::QueryReturnedNoRows,
            })
        }
    }
}

// ----- lenient row readers -----

pub(super) fn deployment_from_row(row: &Row<'_>) -> rusqlite::Result<Deployment> {
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

/// Settles the batches of deployment `id`, which ended with `outcome`,
/// inside the caller's transaction: each open or undone batch takes the
/// state [`BatchState::settled`] gives it, ended `now` unless it had ended.
/// A stored state this version does not know is left as it is.
pub(super) fn settle_batches(
    tx: &Transaction<'_>,
    id: i64,
    outcome: Outcome,
    now: i64,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "UPDATE batches SET state = ?3, ended_at_ms = COALESCE(ended_at_ms, ?4) \
         WHERE deployment_id = ?1 AND state = ?2",
    )?;
    for &from in BatchState::ALL {
        let to = from.settled(outcome);
        if to != from {
            stmt.execute(params![id, from.as_str(), to.as_str(), now])?;
        }
    }
    Ok(())
}

fn batch_from_row(row: &Row<'_>) -> rusqlite::Result<Batch> {
    Ok(Batch {
        id: int(row.get_ref(0)?).unwrap_or(0),
        deployment_id: int(row.get_ref(1)?).unwrap_or(0),
        idx: int(row.get_ref(2)?).unwrap_or(0),
        kind: text(row.get_ref(3)?),
        instances: string_list(opt_json(row.get_ref(4)?)),
        traffic_percent: real(row.get_ref(5)?).filter(|f| f.is_finite()),
        state: named(row, 6, "batches", "state", BatchState::parse)?,
        started_at_ms: int(row.get_ref(7)?),
        ended_at_ms: int(row.get_ref(8)?),
    })
}

fn change_from_row(row: &Row<'_>) -> rusqlite::Result<InstanceChange> {
    Ok(InstanceChange {
        id: int(row.get_ref(0)?).unwrap_or(0),
        deployment_id: int(row.get_ref(1)?).unwrap_or(0),
        batch_id: int(row.get_ref(2)?),
        instance: text(row.get_ref(3)?),
        action: named(row, 4, "instance_changes", "action", ChangeAction::parse)?,
        from_version: opt_text(row.get_ref(5)?),
        to_version: opt_text(row.get_ref(6)?),
        state: named(row, 7, "instance_changes", "state", ChangeState::parse)?,
        at_ms: int(row.get_ref(8)?).unwrap_or(0),
        detail: opt_json(row.get_ref(9)?),
    })
}

fn snapshot_from_row(row: &Row<'_>) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        id: int(row.get_ref(0)?).unwrap_or(0),
        deployment_id: int(row.get_ref(1)?),
        app: text(row.get_ref(2)?),
        instance: text(row.get_ref(3)?),
        driver: text(row.get_ref(4)?),
        data: opt_json(row.get_ref(5)?).unwrap_or(Value::Null),
        at_ms: int(row.get_ref(6)?).unwrap_or(0),
    })
}

fn release_from_row(row: &Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        app: text(row.get_ref(0)?),
        version: text(row.get_ref(1)?),
        first_seen_ms: int(row.get_ref(2)?).unwrap_or(0),
        last_healthy_ms: int(row.get_ref(3)?),
        artifact: opt_json(row.get_ref(4)?),
    })
}

pub(super) fn lock_from_row(row: &Row<'_>) -> rusqlite::Result<Lock> {
    Ok(Lock {
        app: text(row.get_ref(0)?),
        deployment_id: int(row.get_ref(1)?),
        owner_user: text(row.get_ref(2)?),
        owner_host: text(row.get_ref(3)?),
        owner_pid: int(row.get_ref(4)?).unwrap_or(0),
        reason: text(row.get_ref(5)?),
        acquired_ms: int(row.get_ref(6)?).unwrap_or(0),
        heartbeat_ms: int(row.get_ref(7)?).unwrap_or(0),
        owner_start: int(row.get_ref(8)?),
    })
}

fn command_from_row(row: &Row<'_>) -> rusqlite::Result<Command> {
    Ok(Command {
        id: int(row.get_ref(0)?).unwrap_or(0),
        app: text(row.get_ref(1)?),
        deployment_id: int(row.get_ref(2)?),
        verb: named(row, 3, "commands", "verb", Verb::parse)?,
        actor: text(row.get_ref(4)?),
        reason: opt_text(row.get_ref(5)?),
        at_ms: int(row.get_ref(6)?).unwrap_or(0),
    })
}

/// A column holding one of a type's stored names (a state, an outcome, a
/// verb): parsed, or an [`UnknownValue`] naming `table`, `column` and the
/// value (`NULL` reads as the empty name).
fn named<T>(
    row: &Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let v = row.get_ref(idx)?;
    let s = text(v);
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            v.data_type(),
            Box::new(UnknownValue {
                table,
                column,
                value: s,
            }),
        )
    })
}

/// [`named`] where `NULL` is `None`.
fn opt_named<T>(
    row: &Row<'_>,
    idx: usize,
    table: &'static str,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<Option<T>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        _ => named(row, idx, table, column, parse).map(Some),
    }
}

// Lenient value readers are shared with `queries`; JSON ones are here.

/// A JSON column: `NULL` → `None`; text that does not parse → a JSON
/// string holding it; a number stored as a number → that number.
fn opt_json(v: ValueRef<'_>) -> Option<Value> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(Value::from(i)),
        ValueRef::Real(f) => {
            Some(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
        }
        ValueRef::Text(_) | ValueRef::Blob(_) => {
            let s = text(v);
            Some(serde_json::from_str(&s).unwrap_or(Value::String(s)))
        }
    }
}

/// A JSON list of strings, leniently: non-string elements become their
/// JSON text, a lone non-null value becomes a one-element list, anything
/// else an empty list.
fn string_list(v: Option<Value>) -> Vec<String> {
    let as_string = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match v {
        Some(Value::Array(items)) => items.into_iter().map(as_string).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![as_string(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_lists_are_lenient() {
        assert_eq!(string_list(Some(json!(["a", "b"]))), ["a", "b"]);
        assert_eq!(string_list(Some(json!(["a", 1, null]))), ["a", "1", "null"]);
        assert_eq!(string_list(Some(json!("solo"))), ["solo"]);
        assert_eq!(string_list(Some(json!({"k": 1}))), [r#"{"k":1}"#]);
        assert!(string_list(Some(Value::Null)).is_empty());
        assert!(string_list(None).is_empty());
    }

    #[test]
    fn json_columns_are_lenient() {
        assert_eq!(opt_json(ValueRef::Null), None);
        assert_eq!(
            opt_json(ValueRef::Text(br#"{"a":1}"#)),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            opt_json(ValueRef::Text(b"not json")),
            Some(json!("not json"))
        );
        assert_eq!(opt_json(ValueRef::Integer(3)), Some(json!(3)));
        assert_eq!(opt_json(ValueRef::Real(f64::NAN)), Some(Value::Null));
        assert_eq!(real(ValueRef::Text(b" 12.5 ")), Some(12.5));
    }

    #[test]
    fn an_unknown_stored_name_is_a_store_error_naming_where_it_is() {
        let store = Store::empty(std::path::Path::new("/h.db")).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO deployments (id, app, to_version, strategy, state, actor, \
                   started_at_ms, plan, warnings) \
                 VALUES (1, 'web', '2', 'rolling', 'teleporting', 'bob', 1, '{}', '[]');",
            )
            .unwrap();
        let e = store.deployment(1).unwrap_err();
        assert!(matches!(e, StoreError::Unknown { .. }), "{e:?}");
        let said = crate::error::UserError::from(e);
        assert_eq!(said.code, crate::error::Code::Store);
        assert!(
            said.message
                .contains(r#"deployments.state holds "teleporting""#),
            "{}",
            said.message
        );
    }

    #[test]
    fn a_command_this_version_does_not_know_is_taken_and_left_out() {
        let store = Store::empty(std::path::Path::new("/h.db")).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO commands (app, deployment_id, verb, actor, at_ms) \
                 VALUES ('web', NULL, 'reboot', 'bob', 1);",
            )
            .unwrap();
        store
            .send_command("web", None, Verb::Pause, "ana", None)
            .unwrap();
        let taken = store.take_commands("web", 1).unwrap();
        assert_eq!(
            taken.iter().map(|c| c.verb).collect::<Vec<_>>(),
            [Verb::Pause]
        );
        assert!(store.take_commands("web", 1).unwrap().is_empty());
    }

    #[test]
    fn staleness() {
        let lock = Lock {
            app: "a".into(),
            deployment_id: None,
            owner_user: "u".into(),
            owner_host: "h".into(),
            owner_pid: 1,
            reason: String::new(),
            acquired_ms: 0,
            heartbeat_ms: 1_000,
            owner_start: None,
        };
        assert!(!lock.is_stale(1_000, 500));
        assert!(!lock.is_stale(1_500, 500));
        assert!(lock.is_stale(1_501, 500));
        // A heartbeat from a clock ahead of ours is fresh.
        assert!(!lock.is_stale(0, 500));
        assert!(!lock.is_stale(i64::MIN, 500));
        assert!(lock.is_stale(i64::MAX, 500));
    }
}
