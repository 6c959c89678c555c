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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProbeKey;

    fn result(at_ms: i64, ok: bool) -> ProbeResult {
        ProbeResult {
            key: ProbeKey {
                app: "web".into(),
                instance: "web-1".into(),
                probe: "health".into(),
            },
            at_ms,
            ok,
            latency_ms: 1.5,
            code: Some(200),
            error_kind: None,
            message: String::new(),
        }
    }

    #[test]
    fn results_are_read_on_by_id_from_the_recent_past() {
        let dir = std::env::temp_dir().join(format!("rg-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Store::open(&dir.join("history.db")).unwrap();
        assert_eq!(s.results_start(0, 100).unwrap(), 0);
        let rows: Vec<_> = (0..10).map(|i| result(i * 1000, i % 2 == 0)).collect();
        s.insert_results(&rows).unwrap();
        let mut names = Names::new();
        // From 5 s on: ids 6..=10; at most 3 rows back: ids 8..=10.
        let from = s.results_start(5_000, 100).unwrap();
        let got = s.results_after(from, 100, &mut names).unwrap();
        assert_eq!(got.first().map(|(id, r)| (*id, r.at_ms)), Some((6, 5_000)));
        assert_eq!(got.len(), 5);
        assert_eq!(s.results_start(0, 3).unwrap(), 7);
        // Read on from the last id: nothing until more is written.
        let last = got.last().unwrap().0;
        assert!(s.results_after(last, 100, &mut names).unwrap().is_empty());
        s.insert_results(&[result(11_000, false)]).unwrap();
        let more = s.results_after(last, 100, &mut names).unwrap();
        assert_eq!(more.len(), 1);
        assert!(!more[0].1.ok);
        // Nothing recent: start after the newest.
        assert_eq!(s.results_start(99_000, 100).unwrap(), 11);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
