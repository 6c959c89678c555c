//! Snapshots: what a driver saw of an instance before touching it, kept to
//! roll back to; read back per deployment, or the newest of an instance.

use serde::Serialize;
use serde_json::Value;

use super::column::opt_json;
use super::db::{DbError, Optional, Row, args};
use super::queries::{int, text};
use super::{Store, StoreError};
use crate::model::now_ms;

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

const SNAPSHOT_COLS: &str = "id, deployment_id, app, instance, driver, data, at_ms";

impl Store {
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
        self.db
            .query_row(
                "INSERT INTO snapshots (deployment_id, app, instance, driver, data, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                args![
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
        self.db
            .query_map(
                &format!(
                    "SELECT {SNAPSHOT_COLS} FROM snapshots WHERE deployment_id = ?1 ORDER BY id"
                ),
                args![deployment_id],
                snapshot_from_row,
            )
            .map_err(err())
    }

    /// The newest snapshot of an instance (by time, then id), whichever
    /// deployment took it.
    pub fn latest_snapshot(
        &self,
        app: &str,
        instance: &str,
    ) -> Result<Option<SnapshotRow>, StoreError> {
        let err = || self.sql_err("read the latest snapshot");
        self.db
            .query_row(
                &format!(
                    "SELECT {SNAPSHOT_COLS} FROM snapshots WHERE app = ?1 AND instance = ?2 \
                 ORDER BY at_ms DESC, id DESC LIMIT 1"
                ),
                args![app, instance],
                snapshot_from_row,
            )
            .optional()
            .map_err(err())
    }
}

fn snapshot_from_row(row: &Row<'_>) -> Result<SnapshotRow, DbError> {
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
