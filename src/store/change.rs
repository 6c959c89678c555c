//! The changes a deployment makes to instances, one row each, recorded
//! before it is made (write before act) and marked done or failed after;
//! read back in order, and the instances a running deployment has changed.

use serde::Serialize;
use serde_json::Value;

use super::column::{named, opt_json};
use super::db::{DbError, Row, args};
use super::queries::{int, opt_text, text};
use super::{Store, StoreError};
use crate::model::{ChangeAction, ChangeState, now_ms};

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

const CHANGE_COLS: &str = "id, deployment_id, batch_id, instance, action, from_version, \
     to_version, state, at_ms, detail";

impl Store {
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
        self.db
            .query_row(
                "INSERT INTO instance_changes (deployment_id, batch_id, instance, action, \
                 from_version, to_version, state, at_ms, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
                args![
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
            .db
            .execute(
                "UPDATE instance_changes SET state = ?2, detail = coalesce(?3, detail) \
                 WHERE id = ?1",
                args![change_id, state.as_str(), detail.map(Value::to_string)],
            )
            .map_err(self.sql_err(op))?;
        self.expect_row(
            n,
            "set the state of an instance change: no change has that id",
        )
    }

    /// The instances of `app` that its running deployment has changed so
    /// far: one that has not ended, whose lock it holds with a heartbeat
    /// at most `fresh_within_ms` old by the store's clock (a worker that is
    /// gone changes nothing more). Each once.
    pub fn instances_in_rollout(
        &self,
        app: &str,
        fresh_within_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let err = || self.sql_err("read the instances of a running deployment");
        self.db
            .query_map(
                &format!(
                    "SELECT DISTINCT c.instance FROM deployments d \
                     JOIN locks l ON l.app = d.app AND l.deployment_id = d.id \
                     JOIN instance_changes c ON c.deployment_id = d.id \
                     WHERE d.app = ?1 AND d.ended_at_ms IS NULL \
                       AND l.heartbeat_ms >= {} - ?2 \
                     ORDER BY c.instance",
                    self.db.dialect().now_ms()
                ),
                args![app, fresh_within_ms],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// The instance changes of a deployment, oldest (lowest id) first.
    pub fn changes(&self, deployment_id: i64) -> Result<Vec<InstanceChange>, StoreError> {
        let err = || self.sql_err("read instance changes");
        self.db
            .query_map(
                &format!(
                    "SELECT {CHANGE_COLS} FROM instance_changes WHERE deployment_id = ?1 \
                     ORDER BY id"
                ),
                args![deployment_id],
                change_from_row,
            )
            .map_err(err())
    }
}

fn change_from_row(row: &Row<'_>) -> Result<InstanceChange, DbError> {
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
