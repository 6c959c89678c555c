//! A deployment's batches (rolling) or steps (canary, blue-green): recorded
//! with the deployment, their states set as the rollout goes, read back in
//! order.
//!
//! What the store writes when a batch ends is answered here, in its two
//! writers: [`Store::set_batch_state`] while the rollout runs (a final
//! state stamps `ended_at_ms` now, any other clears it; the first state
//! past `pending` stamps `started_at_ms`), and [`settle_batches`] when the
//! deployment ends (each batch left open or undone takes the state
//! [`BatchState::settled`] gives it, keeping an end it had).

use serde::Serialize;

use super::column::{named, opt_json, string_list};
use super::db::{DbError, Row, Tx, args};
use super::queries::{int, real, text};
use super::{Store, StoreError};
use crate::model::{BatchState, Outcome, now_ms};

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

const BATCH_COLS: &str =
    "id, deployment_id, idx, kind, instances, traffic_percent, state, started_at_ms, ended_at_ms";

impl Store {
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
        for (idx, (kind, instances, traffic)) in batches.iter().enumerate() {
            let instances = serde_json::to_string(instances).unwrap_or_else(|_| "[]".into());
            let id: i64 = tx
                .query_row(
                    "INSERT INTO batches (deployment_id, idx, kind, instances, \
                     traffic_percent, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending') \
                     RETURNING id",
                    args![deployment_id, idx, *kind, instances, *traffic],
                    |r| r.get(0),
                )
                .map_err(self.sql_err(op))?;
            ids.push(id);
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
            .db
            .execute(
                "UPDATE batches SET state = ?2, \
                 started_at_ms = CASE WHEN started_at_ms IS NULL AND ?2 <> 'pending' \
                                      THEN ?3 ELSE started_at_ms END, \
                 ended_at_ms = CASE WHEN ?4 THEN ?3 ELSE NULL END \
                 WHERE id = ?1",
                args![batch_id, state.as_str(), now_ms(), ends],
            )
            .map_err(self.sql_err(op))?;
        self.expect_row(n, "set the state of a batch: no batch has that id")
    }

    /// The batches of a deployment, in order (`idx`).
    pub fn batches(&self, deployment_id: i64) -> Result<Vec<Batch>, StoreError> {
        self.db
            .query_map(
                &format!(
                    "SELECT {BATCH_COLS} FROM batches WHERE deployment_id = ?1 ORDER BY idx, id"
                ),
                args![deployment_id],
                batch_from_row,
            )
            .map_err(self.sql_err("read batches"))
    }
}

/// Settles the batches of deployment `id`, which ended with `outcome`,
/// inside the caller's transaction: each open or undone batch takes the
/// state [`BatchState::settled`] gives it, ended `now` unless it had ended.
/// A stored state this version does not know is left as it is.
pub(super) fn settle_batches(
    tx: &Tx<'_>,
    id: i64,
    outcome: Outcome,
    now: i64,
) -> Result<(), DbError> {
    for &from in BatchState::ALL {
        let to = from.settled(outcome);
        if to != from {
            tx.execute(
                "UPDATE batches SET state = ?3, ended_at_ms = COALESCE(ended_at_ms, ?4) \
                 WHERE deployment_id = ?1 AND state = ?2",
                args![id, from.as_str(), to.as_str(), now],
            )?;
        }
    }
    Ok(())
}

fn batch_from_row(row: &Row<'_>) -> Result<Batch, DbError> {
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
