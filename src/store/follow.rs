//! Following what another process writes: probe results read back by row
//! id, so a console that does not probe shows what the prober wrote (see
//! `monitor::reader`). Row ids only grow, so "everything after the last id
//! seen" misses nothing that was committed and reads nothing twice.

use std::collections::HashSet;
use std::sync::Arc;

use super::db::args;
use super::queries::{RESULT_COLUMNS, result_from_row};
use super::{Store, StoreError};
use crate::model::ProbeResult;

/// Names already read, shared by the results read next so equal names are
/// stored once.
pub type Names = HashSet<Arc<str>>;

impl Store {
    /// Probe results with a row id above `after_id`, oldest first, at most
    /// `limit`, each with its id.
    pub fn results_after(
        &self,
        after_id: i64,
        limit: usize,
        names: &mut Names,
    ) -> Result<Vec<(i64, ProbeResult)>, StoreError> {
        let err = || self.sql_err("read new probe results");
        self.db
            .query_map(
                &format!(
                    "SELECT {RESULT_COLUMNS}, id FROM probe_results WHERE id > ?1 \
                     ORDER BY id LIMIT ?2"
                ),
                args![after_id, limit],
                |row| Ok((row.get(9)?, result_from_row(row, names)?)),
            )
            .map_err(err())
    }

    /// The row id of the newest probe result where results taken at or
    /// after `since_ms` begin, at most `limit` rows before the newest: the
    /// id to read on from (with [`Store::results_after`]) to get the
    /// recent past. 0 when there are none.
    pub fn results_start(&self, since_ms: i64, limit: usize) -> Result<i64, StoreError> {
        let err = || self.sql_err("read the recent probe results");
        let newest: i64 = self
            .db
            .query_row("SELECT coalesce(max(id), 0) FROM probe_results", &[], |r| {
                r.get(0)
            })
            .map_err(err())?;
        let by_time: i64 = self
            .db
            .query_row(
                "SELECT coalesce(min(id), ?2 + 1) - 1 FROM probe_results WHERE at_ms >= ?1",
                args![since_ms, newest],
                |r| r.get(0),
            )
            .map_err(err())?;
        let back = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(by_time.max(newest.saturating_sub(back)).max(0))
    }
}
