//! Reading and writing the two tables used today: `probe_results` (probe
//! history, pruned by age) and `events` (the audit log, kept forever).
//!
//! It exists apart from `mod.rs` so opening the database and using it stay
//! separate. Reads are lenient: a row with odd values (written by hand or
//! by a future version) is read as best it can be, never a panic or an
//! error — an unknown `error_kind` becomes `None`, a non-number becomes 0.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use super::db::{Arg, Begin, DbError, Dialect, Row, ToArg, ValueRef, args};
use super::{Store, StoreError};
use crate::model::{ErrorKind, ProbeKey, ProbeResult, now_ms};

/// Rows deleted per statement by [`Store::prune_results`]. Each chunk is
/// its own short transaction, so pruning never holds the write lock long.
pub(crate) const PRUNE_CHUNK: usize = 10_000;

/// Probe results written by one statement: a round trip to the server
/// each, so a batch of a thousand is ten statements, not a thousand.
pub(crate) const RESULTS_PER_INSERT: usize = 100;

/// The `INSERT` of `rows` probe results, nine arguments each.
fn insert_results_sql(rows: usize) -> String {
    format!(
        "INSERT INTO probe_results ({RESULT_COLUMNS}) VALUES {}",
        super::db::values(rows, 9)
    )
}

pub(super) const RESULT_COLUMNS: &str =
    "at_ms, app, instance, probe, ok, latency_ms, code, error_kind, message";

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Row id; increases with insertion order.
    pub id: i64,
    /// When it was recorded, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The app it concerns.
    pub app: String,
    /// The deployment it belongs to, if any.
    pub deployment_id: Option<i64>,
    /// What happened, e.g. `rollout_started`.
    pub kind: String,
    /// Who did it (user name, or `rollguard` for automatic actions).
    pub actor: String,
    /// Why, as the actor gave it.
    pub reason: Option<String>,
    /// Supporting data. Text stored in the column that is not valid JSON
    /// is returned as a JSON string.
    pub evidence: Option<serde_json::Value>,
}

impl Event {
    /// The event with its typed payload; an error for a kind or payload
    /// this version cannot read.
    pub fn typed(
        &self,
    ) -> Result<crate::model::event::EventKind, crate::model::event::UnknownEvent> {
        crate::model::event::EventKind::from_stored(&self.kind, self.evidence.as_ref())
    }
}

impl Store {
    /// Writes `results` in one transaction, a hundred rows to
    /// a statement; returns how many rows were written (all or, on error,
    /// none).
    pub fn insert_results(&mut self, results: &[ProbeResult]) -> Result<usize, StoreError> {
        if results.is_empty() {
            return Ok(0);
        }
        let sql_err = || self.sql_err("insert probe results");
        let tx = self.db.transaction(Begin::Immediate).map_err(sql_err())?;
        for chunk in results.chunks(RESULTS_PER_INSERT) {
            let mut args = Vec::with_capacity(chunk.len() * 9);
            for r in chunk {
                // A NaN latency is stored as NULL and read back as NaN, so
                // one odd latency cannot fail a batch.
                args.extend([
                    r.at_ms.to_arg(),
                    (*r.key.app).to_arg(),
                    (*r.key.instance).to_arg(),
                    (*r.key.probe).to_arg(),
                    r.ok.to_arg(),
                    r.latency_ms.to_arg(),
                    r.code.to_arg(),
                    r.error_kind
                        .map_or(Arg::Null, |k| Arg::Text(Cow::Borrowed(k.as_str()))),
                    r.message.to_arg(),
                ]);
            }
            tx.execute(&insert_results_sql(chunk.len()), &args)
                .map_err(sql_err())?;
        }
        tx.commit().map_err(sql_err())?;
        Ok(results.len())
    }

    /// Deletes probe results with `at_ms < older_than_ms` (a cut-off time
    /// in milliseconds since the epoch, not an age), in chunks of
    /// `PRUNE_CHUNK` rows, each its own transaction. Returns how many
    /// rows were deleted.
    pub fn prune_results(&self, older_than_ms: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = self.prune_chunk(older_than_ms, PRUNE_CHUNK)?;
            total += n;
            if n < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Deletes at most `max` probe results older than `older_than_ms`, in
    /// one statement. The writer thread prunes a chunk at a time between
    /// inserts.
    pub(crate) fn prune_chunk(&self, older_than_ms: i64, max: usize) -> Result<usize, StoreError> {
        self.db
            .execute(
                "DELETE FROM probe_results WHERE id IN \
                 (SELECT id FROM probe_results WHERE at_ms < ?1 LIMIT ?2)",
                args![older_than_ms, max],
            )
            .map_err(self.sql_err("prune probe results"))
    }

    /// Probe results with `at_ms >= since_ms`, newest first, at most
    /// `limit`; only `app`'s when given.
    pub fn recent_results(
        &self,
        app: Option<&str>,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        let err = || self.sql_err("read probe results");
        let sql = match app {
            Some(_) => format!(
                "SELECT {RESULT_COLUMNS} FROM probe_results \
                 WHERE app = ?3 AND at_ms >= ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2"
            ),
            None => format!(
                "SELECT {RESULT_COLUMNS} FROM probe_results \
                 WHERE at_ms >= ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2"
            ),
        };
        let mut names = HashSet::new();
        let read = |row: &Row<'_>| result_from_row(row, &mut names);
        match app {
            Some(app) => self.db.query_map(&sql, args![since_ms, limit, app], read),
            None => self.db.query_map(&sql, args![since_ms, limit], read),
        }
        .map_err(err())
    }

    /// How many probe results are stored.
    pub fn result_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .db
            .query_row("SELECT count(*) FROM probe_results", &[], |r| r.get(0))
            .map_err(self.sql_err("count probe results"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Appends an event to the audit log, stamped now; returns its id.
    pub fn record_event(
        &self,
        app: &str,
        kind: &str,
        actor: &str,
        reason: Option<&str>,
        evidence: Option<&serde_json::Value>,
    ) -> Result<i64, StoreError> {
        let evidence = evidence.map(serde_json::Value::to_string);
        self.db
            .query_row(
                "INSERT INTO events (at_ms, app, kind, actor, reason, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                args![now_ms(), app, kind, actor, reason, evidence],
                |r| r.get(0),
            )
            .map_err(self.sql_err("record an event"))
    }

    /// The newest `limit` events, newest first; only `app`'s when given.
    pub fn events(&self, app: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError> {
        let err = || self.sql_err("read events");
        const COLS: &str = "id, at_ms, app, deployment_id, kind, actor, reason, evidence";
        let sql = match app {
            Some(_) => format!(
                "SELECT {COLS} FROM events WHERE app = ?2 \
                 ORDER BY at_ms DESC, id DESC LIMIT ?1"
            ),
            None => format!("SELECT {COLS} FROM events ORDER BY at_ms DESC, id DESC LIMIT ?1"),
        };
        match app {
            Some(app) => self.db.query_map(&sql, args![limit, app], event_from_row),
            None => self.db.query_map(&sql, args![limit], event_from_row),
        }
        .map_err(err())
    }
}

/// The columns every events query selects, in [`event_from_row`]'s order.
const EVENT_COLUMNS: &str = "id, at_ms, app, deployment_id, kind, actor, reason, evidence";

/// The filters of an events query as SQL, numbered from `?2` (`?1` is
/// the id bound): `app = ?2`, `at_ms >= ?3`, each only when given (one
/// not given is bound as `NULL` and named in a condition that is always
/// true, so PostgreSQL knows its type). With `unindexed`, SQLite is kept
/// from using an index on the columns (`+col`), so a query bounded by id
/// walks the id range (the newest rows) instead of every event of an app.
fn event_filters(
    dialect: Dialect,
    app: Option<&str>,
    since_ms: Option<i64>,
    unindexed: bool,
) -> String {
    let plus = if unindexed && dialect == Dialect::Sqlite {
        "+"
    } else {
        ""
    };
    let mut sql = String::new();
    match app {
        Some(_) => sql.push_str(&format!(" AND {plus}app = ?2")),
        None => sql.push_str(" AND CAST(?2 AS TEXT) IS NULL"),
    }
    match since_ms {
        Some(_) => sql.push_str(&format!(" AND {plus}at_ms >= ?3")),
        None => sql.push_str(" AND CAST(?3 AS BIGINT) IS NULL"),
    }
    sql
}

/// The query of [`Store::events_after`].
fn events_after_sql(dialect: Dialect, app: Option<&str>, since_ms: Option<i64>) -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1{} ORDER BY id LIMIT ?4",
        event_filters(dialect, app, since_ms, true)
    )
}

impl Store {
    /// The audit log as it grows: events with an id greater than
    /// `after_id`, oldest (lowest id) first, at most `limit` of them; only
    /// `app`'s when given, only those stamped at or after `since_ms` when
    /// given. A follower polls with the last id it has seen; with
    /// [`Store::last_event_id`] as its first cursor each poll reads only
    /// the rows written since (one range of the primary key, whatever the
    /// filters), so it stays cheap however long the log is. Ids grow with
    /// each commit, so a poll never skips a row a later one could find.
    pub fn events_after(
        &self,
        after_id: i64,
        app: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.query_events(
            &events_after_sql(self.db.dialect(), app, since_ms),
            after_id,
            app,
            since_ms,
            limit,
        )
    }

    /// The newest `limit` events (by id: the order they were written in),
    /// returned oldest first; only `app`'s when given, only those stamped
    /// at or after `since_ms` when given.
    pub fn newest_events(
        &self,
        app: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1{} ORDER BY id DESC LIMIT ?4",
            event_filters(self.db.dialect(), app, since_ms, false)
        );
        let mut out = self.query_events(&sql, 0, app, since_ms, limit)?;
        out.reverse();
        Ok(out)
    }

    /// The id of the newest event, 0 when there is none: where a follower
    /// starts.
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        self.db
            .query_row("SELECT coalesce(max(id), 0) FROM events", &[], |r| r.get(0))
            .map_err(self.sql_err("read events"))
    }

    /// Runs an events query of [`event_filters`]' shape (`?1` an id,
    /// `?2` the app, `?3` the time, `?4` the limit; unused ones `NULL`).
    fn query_events(
        &self,
        sql: &str,
        id: i64,
        app: Option<&str>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.db
            .query_map(sql, args![id, app, since_ms, limit], event_from_row)
            .map_err(self.sql_err("read events"))
    }
}

/// Reads one `RESULT_COLUMNS` row leniently, sharing equal names.
pub(super) fn result_from_row(
    row: &Row<'_>,
    names: &mut HashSet<Arc<str>>,
) -> Result<ProbeResult, DbError> {
    let mut name = |i: usize| -> Result<Arc<str>, DbError> {
        let s = text(row.get_ref(i)?);
        Ok(match names.get(s.as_str()) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(s);
                names.insert(a.clone());
                a
            }
        })
    };
    let key = ProbeKey {
        app: name(1)?,
        instance: name(2)?,
        probe: name(3)?,
    };
    Ok(ProbeResult {
        key,
        at_ms: int(row.get_ref(0)?).unwrap_or(0),
        ok: int(row.get_ref(4)?).is_some_and(|v| v != 0),
        latency_ms: real(row.get_ref(5)?).unwrap_or(f64::NAN),
        code: int(row.get_ref(6)?),
        error_kind: opt_text(row.get_ref(7)?).and_then(|s| ErrorKind::parse(&s)),
        message: text(row.get_ref(8)?),
    })
}

/// Reads one events row leniently.
pub(super) fn event_from_row(row: &Row<'_>) -> Result<Event, DbError> {
    Ok(Event {
        id: int(row.get_ref(0)?).unwrap_or(0),
        at_ms: int(row.get_ref(1)?).unwrap_or(0),
        app: text(row.get_ref(2)?),
        deployment_id: int(row.get_ref(3)?),
        kind: text(row.get_ref(4)?),
        actor: text(row.get_ref(5)?),
        reason: opt_text(row.get_ref(6)?),
        evidence: opt_text(row.get_ref(7)?)
            .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))),
    })
}

/// Any value as text (`NULL` → empty, bytes decoded lossily).
pub(super) fn text(v: ValueRef<'_>) -> String {
    opt_text(v).unwrap_or_default()
}

/// Any value as text; `NULL` → `None`.
pub(super) fn opt_text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// An integer if the value is (or reads as) one.
pub(super) fn int(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        // `as` saturates; NaN becomes 0.
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A float if the value is (or reads as) one.
pub(super) fn real(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Real(f) => Some(f),
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Text(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_readers_never_fail() {
        assert_eq!(int(ValueRef::Integer(7)), Some(7));
        assert_eq!(int(ValueRef::Real(2.9)), Some(2));
        assert_eq!(int(ValueRef::Real(f64::NAN)), None);
        assert_eq!(int(ValueRef::Text(b" 42 ")), Some(42));
        assert_eq!(int(ValueRef::Text(b"abc")), None);
        assert_eq!(int(ValueRef::Blob(&[1, 2])), None);
        assert_eq!(int(ValueRef::Null), None);
        assert_eq!(real(ValueRef::Integer(3)), Some(3.0));
        assert_eq!(real(ValueRef::Text(b"fast")), None);
        assert_eq!(opt_text(ValueRef::Null), None);
        assert_eq!(text(ValueRef::Null), "");
        assert_eq!(text(ValueRef::Integer(5)), "5");
        assert_eq!(text(ValueRef::Blob(&[0xff, b'a'])), "\u{FFFD}a");
    }

    #[test]
    fn following_walks_the_id_range_whatever_the_filters() {
        let dir = std::env::temp_dir().join(format!("rg-events-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("history.db")).unwrap();
        for (app, since) in [
            (None, None),
            (Some("a"), None),
            (None, Some(1)),
            (Some("a"), Some(1)),
        ] {
            let sql = format!(
                "EXPLAIN QUERY PLAN {}",
                events_after_sql(Dialect::Sqlite, app, since)
            );
            let mut stmt = store.sqlite().unwrap().prepare(&sql).unwrap();
            // Unbound parameters are NULL, which is enough for a plan.
            let mut rows = stmt.raw_query();
            let mut plan: Vec<String> = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                plan.push(row.get(3).unwrap());
            }
            assert_eq!(plan.len(), 1, "{sql}: {plan:?}");
            assert!(
                plan[0].contains("INTEGER PRIMARY KEY (rowid>?)"),
                "{sql}: {plan:?}"
            );
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
