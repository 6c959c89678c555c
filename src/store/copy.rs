//! A whole history copied from one store to another (`rollguard store
//! copy`): every table, every row with its id, in one transaction on the
//! target, then each table's rows counted on both sides.
//!
//! It refuses a target that already holds a history (any deployment,
//! event, result, incident, command, release or notification), and a
//! source where a rollout is running (its lock's heartbeat is fresh): its
//! worker would go on writing to the source. A value the target cannot
//! keep (text that is not UTF-8, text in a number's column of an SQLite
//! file) stops the copy with the table and the row, and nothing is
//! written: nothing is lost or changed on the way.

use super::db::{Arg, Begin, Db, DbError, Dialect, ValueRef};
use super::{Store, StoreError};

/// Each table with its columns, parents before children; `true` when its
/// first column is an `id` to copy in pages (and, in PostgreSQL, an
/// identity to move past the copied ids).
const TABLES: &[(&str, &str, bool)] = &[
    (
        "deployments",
        "id, app, from_version, to_version, strategy, state, outcome, actor, reason, \
         started_at_ms, ended_at_ms, plan, warnings",
        true,
    ),
    (
        "events",
        "id, at_ms, app, deployment_id, kind, actor, reason, evidence",
        true,
    ),
    (
        "batches",
        "id, deployment_id, idx, kind, instances, traffic_percent, state, started_at_ms, \
         ended_at_ms",
        true,
    ),
    (
        "instance_changes",
        "id, deployment_id, batch_id, instance, action, from_version, to_version, state, \
         at_ms, detail",
        true,
    ),
    (
        "snapshots",
        "id, deployment_id, app, instance, driver, data, at_ms",
        true,
    ),
    (
        "releases",
        "app, version, first_seen_ms, last_healthy_ms, artifact",
        false,
    ),
    (
        "instance_state",
        "app, instance, version, live_side, updated_ms",
        false,
    ),
    (
        "locks",
        "app, deployment_id, owner_user, owner_host, owner_pid, reason, acquired_ms, \
         heartbeat_ms, owner_start",
        false,
    ),
    (
        "commands",
        "id, app, deployment_id, verb, actor, reason, at_ms, consumed_ms",
        true,
    ),
    (
        "leases",
        "role, holder_kind, owner_user, owner_host, owner_pid, token, fleet, acquired_ms, \
         heartbeat_ms",
        false,
    ),
    (
        "incidents",
        "id, app, deployment_id, opened_ms, healthy_ms, resolved_ms, evidence",
        true,
    ),
    (
        "verdicts",
        "app, instance, verdict, since_ms, updated_ms",
        false,
    ),
    (
        "notifications",
        "id, receiver, event_id, app, deployment_id, topic, dedup_key, payload, state, \
         attempts, next_attempt_ms, claimed_by, claimed_until_ms, last_error, created_ms, \
         sent_ms",
        true,
    ),
    ("notify_cursor", "id, event_id", false),
    (
        "probe_results",
        "id, at_ms, app, instance, probe, ok, latency_ms, code, error_kind, message",
        true,
    ),
];

/// The tables that say a store already holds a history.
const HISTORY_TABLES: &[&str] = &[
    "deployments",
    "events",
    "probe_results",
    "incidents",
    "commands",
    "releases",
    "notifications",
];

/// Rows read from the source at a time.
const PAGE: usize = 1_000;

/// How many rows one table holds on each side after a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    /// The table.
    pub table: &'static str,
    /// Rows in the source.
    pub source: u64,
    /// Rows in the target.
    pub target: u64,
}

impl Store {
    /// Copies every row of this history into `to` (see the module's
    /// documentation); a lock whose heartbeat is at most `fresh_within_ms`
    /// old (by the source's clock) is a rollout still running. Returns each
    /// table's counts, checked equal.
    pub fn copy_into(&self, to: &Store, fresh_within_ms: i64) -> Result<Vec<Copied>, StoreError> {
        let refuse = |why: String| StoreError::Refused {
            path: to.path.clone(),
            message: why,
        };
        for table in HISTORY_TABLES {
            if count(&to.db, table).map_err(to.sql_err("count the target's rows"))? > 0 {
                return Err(refuse(format!(
                    "it already holds a history ({table} has rows); copy into a new, empty \
                     database"
                )));
            }
        }
        let running: Vec<String> = self
            .db
            .query_map(
                &format!(
                    "SELECT app FROM locks WHERE heartbeat_ms >= {} - ?1 ORDER BY app",
                    self.db.dialect().now_ms()
                ),
                super::db::args![fresh_within_ms],
                |r| r.get(0),
            )
            .map_err(self.sql_err("read the locks"))?;
        if !running.is_empty() {
            return Err(StoreError::Refused {
                path: self.path.clone(),
                message: format!(
                    "a rollout of {} is running on it; wait until it ends (rollguard status) \
                     and copy again",
                    running.join(", ")
                ),
            });
        }
        let tx = to
            .db
            .transaction(Begin::Deferred)
            .map_err(to.sql_err("begin the copy"))?;
        tx.execute("DELETE FROM notify_cursor", &[])
            .map_err(to.sql_err("clear the notification cursor"))?;
        for (table, cols, paged) in TABLES {
            self.copy_table(&tx, table, cols, *paged)?;
            if *paged && tx.dialect() == Dialect::Postgres {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                           (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                    ),
                    &[],
                )
                .map_err(to.sql_err("move the ids past the copied rows"))?;
            }
        }
        tx.commit().map_err(to.sql_err("commit the copy"))?;
        let mut copied = Vec::new();
        for (table, _, _) in TABLES {
            let source = count(&self.db, table).map_err(self.sql_err("count the rows"))?;
            let target = count(&to.db, table).map_err(to.sql_err("count the rows"))?;
            if source != target {
                return Err(refuse(format!(
                    "{table}: {source} rows in the source but {target} in the target after \
                     the copy; the target is not a faithful copy: drop it and copy again"
                )));
            }
            copied.push(Copied {
                table,
                source,
                target,
            });
        }
        Ok(copied)
    }

    /// Copies one table's rows into `tx`, a page at a time.
    fn copy_table(
        &self,
        tx: &Db,
        table: &'static str,
        cols: &str,
        paged: bool,
    ) -> Result<(), StoreError> {
        let width = cols.split(',').count();
        let mut after = i64::MIN;
        loop {
            let (sql, args) = if paged {
                (
                    format!("SELECT {cols} FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2"),
                    vec![Arg::Int(after), Arg::Int(PAGE as i64)],
                )
            } else {
                (format!("SELECT {cols} FROM {table}"), Vec::new())
            };
            let mut rows: Vec<Vec<Arg<'static>>> = Vec::new();
            self.db
                .each(&sql, &args, |r| {
                    let mut row = Vec::with_capacity(width);
                    for i in 0..width {
                        row.push(owned(r.get_ref(i)?, table, i)?);
                    }
                    rows.push(row);
                    Ok(())
                })
                .map_err(self.sql_err("read the rows to copy"))?;
            if let Some(Arg::Int(id)) = rows.last().and_then(|r| r.first()) {
                after = *id;
            }
            for chunk in rows.chunks(100) {
                insert(tx, table, cols, width, chunk)
                    .map_err(|e| StoreError::query(&self.path, "write the copied rows", e))?;
            }
            if !paged || rows.len() < PAGE {
                return Ok(());
            }
        }
    }
}

/// One multi-row `INSERT` of `rows` into `table`.
fn insert(
    tx: &Db,
    table: &str,
    cols: &str,
    width: usize,
    rows: &[Vec<Arg<'static>>],
) -> Result<usize, DbError> {
    let args: Vec<Arg<'static>> = rows.iter().flatten().cloned().collect();
    tx.execute(
        &format!(
            "INSERT INTO {table} ({cols}) VALUES {}",
            super::db::values(rows.len(), width)
        ),
        &args,
    )
}

/// A value read from the source as an argument for the target; text that
/// is not UTF-8 (or bytes) stops the copy, naming where it is.
fn owned(v: ValueRef<'_>, table: &'static str, column: usize) -> Result<Arg<'static>, DbError> {
    Ok(match v {
        ValueRef::Null => Arg::Null,
        ValueRef::Integer(i) => Arg::Int(i),
        ValueRef::Real(f) => Arg::Real(f),
        ValueRef::Text(b) => match std::str::from_utf8(b) {
            Ok(s) => Arg::Text(std::borrow::Cow::Owned(s.to_owned())),
            Err(_) => {
                return Err(DbError::Unknown(super::UnknownValue {
                    table,
                    column: "a column",
                    value: format!("text that is not UTF-8 (column {column})"),
                }));
            }
        },
        ValueRef::Blob(_) => {
            return Err(DbError::Unknown(super::UnknownValue {
                table,
                column: "a column",
                value: format!("bytes (column {column})"),
            }));
        }
    })
}

fn count(db: &Db, table: &str) -> Result<u64, DbError> {
    let n: i64 = db.query_row(&format!("SELECT count(*) FROM {table}"), &[], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
