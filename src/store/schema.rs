//! The database schema and its migrations. It exists so the schema has one
//! home: an ordered list of SQL migrations keyed on `PRAGMA user_version`,
//! applied one by one, each in its own transaction.
//!
//! Rules for changing it: never edit a released migration; append a new
//! one. Version N means "migrations `0..N` are applied".
//!
//! Version 1 already holds every table the rollout milestone needs
//! (deployments, batches, instance changes, snapshots, releases, instance
//! state, locks, commands), so that milestone only adds Rust code. History
//! rows are never deleted by cascade: the audit trail must survive, so
//! foreign keys use the default `NO ACTION`.

use rusqlite::{Connection, TransactionBehavior};

use super::{NotHistory, StoreError};

/// Migration 1: the whole first schema.
const V1: &str = r#"
-- One row per probe run. Pruned by age (see `Store::prune_results`).
-- latency_ms is NULL only for a NaN latency.
CREATE TABLE probe_results (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    app         TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    probe       TEXT    NOT NULL,
    ok          INTEGER NOT NULL,
    latency_ms  REAL,
    code        INTEGER,
    error_kind  TEXT,
    message     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX probe_results_key_at ON probe_results (app, instance, probe, at_ms);
CREATE INDEX probe_results_at     ON probe_results (at_ms);

-- One row per rollout or rollback. plan and warnings are JSON.
CREATE TABLE deployments (
    id             INTEGER PRIMARY KEY,
    app            TEXT    NOT NULL,
    from_version   TEXT,
    to_version     TEXT    NOT NULL,
    strategy       TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    outcome        TEXT,
    actor          TEXT    NOT NULL,
    reason         TEXT,
    started_at_ms  INTEGER NOT NULL,
    ended_at_ms    INTEGER,
    plan           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(plan)),
    warnings       TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(warnings))
);
CREATE INDEX deployments_app_started ON deployments (app, started_at_ms);
CREATE INDEX deployments_active      ON deployments (app) WHERE ended_at_ms IS NULL;

-- The audit log: append-only, never pruned. evidence is JSON.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    at_ms          INTEGER NOT NULL,
    app            TEXT    NOT NULL,
    deployment_id  INTEGER REFERENCES deployments (id),
    kind           TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    reason         TEXT,
    evidence       TEXT    CHECK (json_valid(evidence))
);
CREATE INDEX events_app_at     ON events (app, at_ms);
CREATE INDEX events_at         ON events (at_ms);
CREATE INDEX events_deployment ON events (deployment_id);

-- The batches (rolling) or steps (canary) of a deployment, in order.
CREATE TABLE batches (
    id               INTEGER PRIMARY KEY,
    deployment_id    INTEGER NOT NULL REFERENCES deployments (id),
    idx              INTEGER NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('batch', 'step')),
    instances        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(instances)),
    traffic_percent  REAL    CHECK (traffic_percent BETWEEN 0 AND 100),
    state            TEXT    NOT NULL,
    started_at_ms    INTEGER,
    ended_at_ms      INTEGER,
    UNIQUE (deployment_id, idx)
);

-- Every action taken on one instance during a deployment.
CREATE TABLE instance_changes (
    id             INTEGER PRIMARY KEY,
    deployment_id  INTEGER NOT NULL REFERENCES deployments (id),
    batch_id       INTEGER REFERENCES batches (id),
    instance       TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    from_version   TEXT,
    to_version     TEXT,
    state          TEXT    NOT NULL,
    at_ms          INTEGER NOT NULL,
    detail         TEXT    CHECK (json_valid(detail))
);
CREATE INDEX instance_changes_deployment ON instance_changes (deployment_id, at_ms);
CREATE INDEX instance_changes_batch      ON instance_changes (batch_id);
CREATE INDEX instance_changes_instance   ON instance_changes (instance, at_ms);

-- What a driver saw of an instance before touching it, to roll back to.
CREATE TABLE snapshots (
    id             INTEGER PRIMARY KEY,
    deployment_id  INTEGER REFERENCES deployments (id),
    app            TEXT    NOT NULL,
    instance       TEXT    NOT NULL,
    driver         TEXT    NOT NULL,
    data           TEXT    NOT NULL CHECK (json_valid(data)),
    at_ms          INTEGER NOT NULL
);
CREATE INDEX snapshots_app_instance_at ON snapshots (app, instance, at_ms);
CREATE INDEX snapshots_deployment      ON snapshots (deployment_id);

-- Versions ever seen per app; last_healthy_ms picks rollback targets.
CREATE TABLE releases (
    app              TEXT    NOT NULL,
    version          TEXT    NOT NULL,
    first_seen_ms    INTEGER NOT NULL,
    last_healthy_ms  INTEGER,
    artifact         TEXT    CHECK (json_valid(artifact)),
    PRIMARY KEY (app, version)
) WITHOUT ROWID;
CREATE INDEX releases_app_healthy ON releases (app, last_healthy_ms);

-- What is believed to run on each instance now.
CREATE TABLE instance_state (
    app         TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    version     TEXT,
    live_side   TEXT,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (app, instance)
) WITHOUT ROWID;

-- At most one deployment per app at a time, across processes and users.
CREATE TABLE locks (
    app            TEXT    PRIMARY KEY NOT NULL,
    deployment_id  INTEGER REFERENCES deployments (id),
    owner_user     TEXT    NOT NULL,
    owner_host     TEXT    NOT NULL,
    owner_pid      INTEGER NOT NULL,
    reason         TEXT    NOT NULL DEFAULT '',
    acquired_ms    INTEGER NOT NULL,
    heartbeat_ms   INTEGER NOT NULL
);
CREATE INDEX locks_deployment ON locks (deployment_id);

-- Requests (pause, resume, abort, ...) from other terminals to the process
-- running a deployment; consumed_ms is set when acted on.
CREATE TABLE commands (
    id             INTEGER PRIMARY KEY,
    app            TEXT    NOT NULL,
    deployment_id  INTEGER REFERENCES deployments (id),
    verb           TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    reason         TEXT,
    at_ms          INTEGER NOT NULL,
    consumed_ms    INTEGER
);
CREATE INDEX commands_pending    ON commands (app, id) WHERE consumed_ms IS NULL;
CREATE INDEX commands_deployment ON commands (deployment_id);
"#;

/// Migration 2: the prober lease, health incidents and stored verdicts.
/// Events name their incident in their payload (`incident`).
const V2: &str = r#"
-- Who holds a role for this history, one row per role. The `prober` role
-- probes the fleet and writes results, verdicts and incidents; the holder
-- heartbeats it, and a live process takes over a lease whose holder died
-- or stopped heartbeating (see `Store::take_lease`). token tells holders
-- apart when a pid is reused; fleet is a fingerprint of the apps,
-- instances and probes the holder probes, so a reader can tell when it
-- watches another config.
CREATE TABLE leases (
    role          TEXT    PRIMARY KEY NOT NULL,
    holder_kind   TEXT    NOT NULL,
    owner_user    TEXT    NOT NULL,
    owner_host    TEXT    NOT NULL,
    owner_pid     INTEGER NOT NULL,
    token         TEXT    NOT NULL,
    fleet         TEXT    NOT NULL DEFAULT '',
    acquired_ms   INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per outage of an app: opened when an instance turns unhealthy
-- (or a rollout's gate fails), resolved once the app stayed healthy for
-- its resolve_after. At most one open incident per app. evidence is JSON:
-- every instance and probe that failed during it, with thresholds,
-- measured values and the last samples.
CREATE TABLE incidents (
    id             INTEGER PRIMARY KEY,
    app            TEXT    NOT NULL,
    deployment_id  INTEGER REFERENCES deployments (id),
    opened_ms      INTEGER NOT NULL,
    healthy_ms     INTEGER,
    resolved_ms    INTEGER,
    evidence       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(evidence))
);
CREATE UNIQUE INDEX incidents_open ON incidents (app) WHERE resolved_ms IS NULL;
CREATE INDEX incidents_app_opened  ON incidents (app, opened_ms);

-- Per instance, the verdict the prober last wrote and since when.
CREATE TABLE verdicts (
    app         TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    since_ms    INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (app, instance)
) WITHOUT ROWID;
"#;

/// Migration 3: the notification outbox and how far the audit log has
/// been turned into notifications.
const V3: &str = r#"
-- One row per notification to send to one receiver: written before it is
-- sent, claimed by one sender at a time (claimed_by, claimed_until_ms: a
-- claim whose sender died lapses and another takes it), then sent or,
-- after its retries, failed. payload is the body as sent, without
-- secrets (URLs, keys and signatures are added at sending). dedup_key
-- groups one incident's or deployment's notifications: a receiver gets
-- them in order.
CREATE TABLE notifications (
    id                INTEGER PRIMARY KEY,
    receiver          TEXT    NOT NULL,
    event_id          INTEGER NOT NULL REFERENCES events (id),
    app               TEXT    NOT NULL,
    deployment_id     INTEGER REFERENCES deployments (id),
    topic             TEXT    NOT NULL,
    dedup_key         TEXT    NOT NULL,
    payload           TEXT    NOT NULL CHECK (json_valid(payload)),
    state             TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms   INTEGER NOT NULL,
    claimed_by        TEXT,
    claimed_until_ms  INTEGER,
    last_error        TEXT,
    created_ms        INTEGER NOT NULL,
    sent_ms           INTEGER,
    UNIQUE (receiver, event_id)
);
CREATE INDEX notifications_due ON notifications (receiver, next_attempt_ms)
    WHERE state IN ('pending', 'sending');
CREATE INDEX notifications_key ON notifications (receiver, dedup_key, id);

-- The id of the last event turned into notifications: one row. Starts at
-- the newest event when the table is made, so upgrading does not send
-- the past.
CREATE TABLE notify_cursor (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    event_id  INTEGER NOT NULL
);
INSERT INTO notify_cursor (id, event_id) SELECT 1, coalesce(max(id), 0) FROM events;
"#;

/// Migration 4: what each receiver was last told about an app, found
/// without reading the whole outbox (the console's App view asks every
/// second).
const V4: &str = r#"
CREATE INDEX notifications_app ON notifications (app, receiver, id);
"#;

/// Migration 5: a lock's holder is told by its process start time as well
/// as its host and pid, so a pid handed to another process after the
/// holder died does not keep the lock. NULL where it is not known (locks
/// taken before this migration).
const V5: &str = r#"
ALTER TABLE locks ADD COLUMN owner_start INTEGER;
"#;

/// Every migration, in order. `MIGRATIONS[i]` takes a database from
/// version `i` to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// The schema version this binary writes: the number of migrations.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The oldest schema version this binary's readers understand. A file
/// opened with [`Store::open_read_only`](super::Store::open_read_only) is
/// not migrated: from this version up to [`SCHEMA_VERSION`] it is read as
/// it is, and an older one is refused with [`StoreError::TooOld`]. Raise it
/// when a migration adds a table or column that a reader selects, unless
/// the readers read older files without it (as locks without their
/// holder's start time, before [`LOCK_START_FROM`]).
pub const READABLE_FROM: i64 = 1;

/// The first schema version whose locks record their holder's process
/// start time (`locks.owner_start`); older files are read without it.
pub const LOCK_START_FROM: i64 = 5;

/// The tables every rollguard history has had since version 1: those that
/// migration 1 creates.
pub fn rollguard_tables() -> Vec<&'static str> {
    V1.split("CREATE TABLE ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .collect()
}

/// Checks that the open file is a rollguard history this binary may use,
/// reading only; returns its schema version. Refuses a negative version
/// ([`StoreError::BadVersion`]), a newer one ([`StoreError::TooNew`]), and
/// an SQLite database without rollguard's schema (version 0) or lacking
/// some of its tables ([`StoreError::NotHistory`]).
pub(crate) fn verify(conn: &Connection, path: &std::path::Path) -> Result<i64, StoreError> {
    let sql_err = |op| move |source: rusqlite::Error| StoreError::query(path, op, source.into());
    let not_history = |why| StoreError::NotHistory {
        path: path.to_owned(),
        why,
    };
    // The first read: SQLite tells a file that is not a database here.
    let version = user_version(conn).map_err(|e| {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            not_history(NotHistory::NotSqlite)
        } else {
            sql_err("read the schema version")(e)
        }
    })?;
    if version < 0 {
        return Err(StoreError::BadVersion {
            path: path.to_owned(),
            found: version,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        return Err(not_history(NotHistory::NoSchema));
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(sql_err("read the list of tables"))?;
    let missing: Vec<String> = rollguard_tables()
        .into_iter()
        .filter(|t| !tables.iter().any(|have| have == t))
        .map(String::from)
        .collect();
    if !missing.is_empty() {
        return Err(not_history(NotHistory::MissingTables(missing)));
    }
    Ok(version)
}

/// Refuses a schema `version` older than `readable_from` for reading
/// without migrating.
pub(crate) fn check_readable(
    version: i64,
    readable_from: i64,
    path: &std::path::Path,
) -> Result<(), StoreError> {
    if version < readable_from {
        return Err(StoreError::TooOld {
            path: path.to_owned(),
            found: version,
            readable_from,
        });
    }
    Ok(())
}

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the database at `path` up to [`SCHEMA_VERSION`]. Each missing
/// migration runs in its own IMMEDIATE transaction that re-reads the
/// version under the write lock, so two processes opening a fresh file at
/// once do not both apply it. Refuses a database newer than this binary.
pub(crate) fn migrate(conn: &mut Connection, path: &std::path::Path) -> Result<(), StoreError> {
    let sql_err = |op| move |source: rusqlite::Error| StoreError::query(path, op, source.into());
    let too_new = |found| StoreError::TooNew {
        path: path.to_owned(),
        found,
        supported: SCHEMA_VERSION,
    };
    let check = |found: i64| {
        if found > SCHEMA_VERSION {
            Err(too_new(found))
        } else if found < 0 {
            Err(StoreError::BadVersion {
                path: path.to_owned(),
                found,
            })
        } else {
            Ok(found)
        }
    };
    let mut version = check(user_version(conn).map_err(sql_err("read the schema version"))?)?;
    while version < SCHEMA_VERSION {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("lock the database to migrate it"))?;
        // Another process may have migrated while we waited for the lock.
        let current = check(user_version(&tx).map_err(sql_err("read the schema version"))?)?;
        if current != version {
            version = current;
            continue;
        }
        // `check` guarantees 0 <= version < SCHEMA_VERSION here.
        let idx = usize::try_from(version).unwrap_or_default();
        tx.execute_batch(MIGRATIONS[idx])
            .map_err(sql_err("apply a schema migration"))?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(sql_err("record the schema version"))?;
        tx.commit().map_err(sql_err("commit a schema migration"))?;
        tracing::info!(path = %path.display(), version = version + 1, "history database migrated");
        version += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollguard_tables_are_those_of_migration_1() {
        let mut t = rollguard_tables();
        t.sort_unstable();
        assert_eq!(
            t,
            [
                "batches",
                "commands",
                "deployments",
                "events",
                "instance_changes",
                "instance_state",
                "locks",
                "probe_results",
                "releases",
                "snapshots"
            ]
        );
    }

    #[test]
    fn a_schema_older_than_the_readers_is_refused_with_what_to_do() {
        let path = std::path::Path::new("/h.db");
        assert!(check_readable(1, 1, path).is_ok());
        assert!(check_readable(3, 2, path).is_ok());
        let e = check_readable(1, 2, path).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::TooOld {
                    found: 1,
                    readable_from: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        let s = e.to_string();
        assert!(s.contains("/h.db") && s.contains("older"), "{s}");
        assert!(s.contains("upgrades it"), "{s}");
    }
}
