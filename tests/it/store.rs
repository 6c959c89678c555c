//! Tests of the history store on real SQLite files in temporary folders:
//! opening (mode, WAL, migrations), probe results, events, pruning, the
//! batched writer and concurrent use of one file by several connections.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempDir;
use rollguard::error::{Code, UserError};
use rollguard::model::{ErrorKind, ProbeKey, ProbeResult, now_ms};
use rollguard::store::schema::MIGRATIONS;
use rollguard::store::{ResultWriter, SCHEMA_VERSION, Store, StoreError};

fn result(app: &str, instance: &str, at_ms: i64, n: u64) -> ProbeResult {
    let ok = !n.is_multiple_of(3);
    ProbeResult {
        key: ProbeKey {
            app: Arc::from(app),
            instance: Arc::from(instance),
            probe: Arc::from("http"),
        },
        at_ms,
        ok,
        latency_ms: 1.5 + n as f64,
        code: if ok { Some(200) } else { None },
        error_kind: if ok { None } else { Some(ErrorKind::Timeout) },
        message: format!("result {n}"),
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

#[test]
fn new_file_is_0600_and_in_wal_mode() {
    let dir = TempDir::new("store-mode");
    let path = dir.join("nested/deeper/history.db");
    let mut store = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    store.insert_results(&[result("a", "i", 1, 1)]).unwrap();

    let journal: String = store_pragma(&path, "journal_mode");
    assert_eq!(journal, "wal");
    // SQLite gives its companion files the main file's mode.
    let wal = dir.join("nested/deeper/history.db-wal");
    assert!(
        wal.exists(),
        "WAL file should exist while a connection is open"
    );
    assert_eq!(mode(&wal), 0o600);
    drop(store);
}

fn store_pragma(path: &std::path::Path, name: &str) -> String {
    raw(path)
        .pragma_query_value(None, name, |r| r.get(0))
        .unwrap()
}

#[test]
fn existing_file_keeps_its_mode() {
    let dir = TempDir::new("store-keep-mode");
    let path = dir.join("history.db");
    drop(Store::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o640);
}

/// Asserts `err` refuses `path` as not a history, naming it and saying
/// what to do, and that the file was left as it was.
fn assert_refused(err: StoreError, path: &std::path::Path, before: &[u8], says: &str) {
    assert!(matches!(err, StoreError::NotHistory { .. }), "{err:?}");
    assert_eq!(err.path(), path);
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("not a rollguard history database"), "{text}");
    assert!(text.contains(says), "{text}");
    assert!(text.contains("move it aside"), "{text}");
    assert!(text.contains("--db"), "{text}");
    let after = std::fs::read(path).unwrap();
    assert!(
        after == before,
        "the file must not be touched ({} bytes before, {} after)",
        before.len(),
        after.len()
    );
    let user: UserError = err.into();
    assert_eq!(user.code, Code::Store);
}

#[test]
fn empty_file_is_refused_not_taken_as_a_new_history() {
    let dir = TempDir::new("store-empty");
    let path = dir.join("history.db");
    std::fs::write(&path, b"").unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_refused(err, &path, b"", "empty");
    assert!(!dir.join("history.db-wal").exists());
    // Also through the writer.
    let err = ResultWriter::spawn(
        &rollguard::store::Location::File(path.clone()),
        Duration::from_secs(60),
    )
    .unwrap_err();
    assert_refused(err, &path, b"", "empty");
}

#[test]
fn file_that_is_not_sqlite_is_refused() {
    let dir = TempDir::new("store-not-sqlite");
    for (name, bytes) in [
        ("junk.db", vec![b'j'; 4096]),
        ("short.db", b"hello\n".to_vec()),
        ("config.toml", b"[[apps]]\nname = \"web\"\n".to_vec()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert_refused(err, &path, &bytes, "not an SQLite database");
    }
}

#[test]
fn other_sqlite_database_is_refused() {
    let dir = TempDir::new("store-foreign");
    // Another program's database: no schema version.
    let path = dir.join("notes.db");
    let c = raw(&path);
    c.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me');")
        .unwrap();
    drop(c);
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert_refused(err, &path, &before, "no rollguard tables");

    // One that sets user_version 1 too, with some of our table names.
    let path = dir.join("other.db");
    let c = raw(&path);
    c.execute_batch(
        "CREATE TABLE deployments (id INTEGER PRIMARY KEY); CREATE TABLE events (x); \
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("locks"), "names the missing tables: {text}");
    assert_refused(err, &path, &before, "lacks rollguard tables");
}

#[test]
fn many_opening_a_new_file_at_once_all_get_the_history() {
    let dir = TempDir::new("store-open-race");
    for round in 0..5 {
        let path = dir.join(&format!("history-{round}.db"));
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|s| s.schema_version().unwrap())
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), SCHEMA_VERSION);
        }
        assert_eq!(mode(&path), 0o600);
        // Nothing but the database and its companions is left behind.
        let mut names: Vec<String> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(&format!("-{round}")))
            .collect();
        names.sort();
        assert!(
            names
                .iter()
                .all(|n| n.starts_with(&format!("history-{round}.db"))),
            "{names:?}"
        );
    }
}

#[test]
fn migrations_set_user_version_and_are_not_rerun() {
    let dir = TempDir::new("store-migrate");
    let path = dir.join("history.db");
    assert_eq!(SCHEMA_VERSION, MIGRATIONS.len() as i64);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let id = store
        .record_event("web", "note", "alice", None, None)
        .unwrap();
    drop(store);

    // Reopening must not re-run migration 1 (it would fail on existing
    // tables) and must keep the data.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(store.events(None, 10).unwrap()[0].id, id);
    drop(store);

    let c = raw(&path);
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, MIGRATIONS.len() as i64);
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in [
        "batches",
        "commands",
        "deployments",
        "events",
        "instance_changes",
        "instance_state",
        "locks",
        "probe_results",
        "releases",
        "snapshots",
    ] {
        assert!(
            tables.iter().any(|x| x == t),
            "missing table {t}: {tables:?}"
        );
    }
    let fk: i64 = c
        .pragma_query_value(None, "foreign_key_check", |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(fk, 0);
}

#[test]
fn schema_enforces_foreign_keys_and_json() {
    let dir = TempDir::new("store-fk");
    let path = dir.join("history.db");
    let store = Store::open(&path).unwrap();
    drop(store);
    let c = raw(&path);
    c.pragma_update(None, "foreign_keys", true).unwrap();
    // A batch of a deployment that does not exist is refused.
    let e = c.execute(
        "INSERT INTO batches (deployment_id, idx, kind, instances, state) \
         VALUES (42, 0, 'batch', '[]', 'pending')",
        [],
    );
    assert!(e.is_err());
    c.execute(
        "INSERT INTO deployments (app, to_version, strategy, state, actor, started_at_ms, plan, warnings) \
         VALUES ('web', 'v2', 'rolling', 'running', 'alice', 1, '{}', '[]')",
        [],
    )
    .unwrap();
    let dep = c.last_insert_rowid();
    c.execute(
        "INSERT INTO batches (deployment_id, idx, kind, instances, state) \
         VALUES (?1, 0, 'step', '[\"a\"]', 'pending')",
        [dep],
    )
    .unwrap();
    // Bad JSON and bad kinds are refused.
    assert!(
        c.execute(
            "INSERT INTO batches (deployment_id, idx, kind, instances, state) \
             VALUES (?1, 1, 'step', 'not json', 'pending')",
            [dep],
        )
        .is_err()
    );
    assert!(
        c.execute(
            "INSERT INTO batches (deployment_id, idx, kind, instances, state) \
             VALUES (?1, 1, 'wave', '[]', 'pending')",
            [dep],
        )
        .is_err()
    );
}

#[test]
fn newer_database_is_refused_with_a_clear_error() {
    let dir = TempDir::new("store-newer");
    let path = dir.join("history.db");
    drop(Store::open(&path).unwrap());
    raw(&path).pragma_update(None, "user_version", 999).unwrap();

    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, supported, .. } if supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert_eq!(err.path(), path.as_path());
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("newer"), "{text}");
    assert!(text.contains("upgrade rollguard"), "{text}");
    let user: UserError = err.into();
    assert_eq!(user.code, Code::Store);
    assert!(user.hint.is_some());
}

#[test]
fn unusable_path_error_names_the_path() {
    let dir = TempDir::new("store-badpath");
    std::fs::write(dir.join("file"), b"x").unwrap();
    let path = dir.join("file/history.db");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));

    // A file that is not a database.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, vec![b'j'; 4096]).unwrap();
    let err = Store::open(&junk).unwrap_err();
    assert!(err.to_string().contains("move it aside"), "{err}");
}

#[test]
fn results_round_trip_with_all_fields() {
    let dir = TempDir::new("store-roundtrip");
    let mut store = Store::open(&dir.join("history.db")).unwrap();
    let base = now_ms();
    let mut rows = Vec::new();
    for (n, kind) in ErrorKind::ALL.into_iter().enumerate() {
        rows.push(ProbeResult {
            key: ProbeKey {
                app: Arc::from("web"),
                instance: Arc::from(format!("web-{n}").as_str()),
                probe: Arc::from("health"),
            },
            at_ms: base + n as i64,
            ok: false,
            latency_ms: 12.25 + n as f64,
            code: Some(500 + n as i64),
            error_kind: Some(kind),
            message: format!("failed: {kind} \u{1F4A5} 'quote' \"dq\""),
        });
    }
    rows.push(ProbeResult {
        key: ProbeKey {
            app: Arc::from("api"),
            instance: Arc::from("api-1"),
            probe: Arc::from("tcp"),
        },
        at_ms: base + 100,
        ok: true,
        latency_ms: 0.0,
        code: None,
        error_kind: None,
        message: String::new(),
    });
    assert_eq!(store.insert_results(&rows).unwrap(), rows.len());
    assert_eq!(store.insert_results(&[]).unwrap(), 0);
    assert_eq!(store.result_count().unwrap(), rows.len() as u64);

    let mut back = store.recent_results(None, base, 1000).unwrap();
    // Newest first.
    assert!(back.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    back.reverse();
    assert_eq!(back, rows);

    let api = store.recent_results(Some("api"), 0, 10).unwrap();
    assert_eq!(api, vec![rows.last().unwrap().clone()]);
    assert_eq!(store.recent_results(Some("web"), 0, 3).unwrap().len(), 3);
    assert!(
        store
            .recent_results(None, base + 101, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn nan_latency_does_not_fail_a_batch() {
    let dir = TempDir::new("store-nan");
    let mut store = Store::open(&dir.join("history.db")).unwrap();
    let mut r = result("a", "i", 5, 1);
    r.latency_ms = f64::NAN;
    store.insert_results(&[r, result("a", "i", 6, 2)]).unwrap();
    let back = store.recent_results(None, 0, 10).unwrap();
    assert_eq!(back.len(), 2);
    assert!(back[1].latency_ms.is_nan());
}

#[test]
fn bad_rows_read_back_without_panic() {
    let dir = TempDir::new("store-badrows");
    let path = dir.join("history.db");
    let store = Store::open(&path).unwrap();
    raw(&path)
        .execute_batch(
            "INSERT INTO probe_results (at_ms, app, instance, probe, ok, latency_ms, code, error_kind, message) \
             VALUES (10, 'a', 'i', 'p', 'yes', 'fast', 'abc', 'no_such_kind', x'ff00fe');
             INSERT INTO probe_results (at_ms, app, instance, probe, ok, latency_ms, code, error_kind, message) \
             VALUES ('11', 7, 'i', 'p', 1, NULL, 2.7, 'dns', 'fine');
             INSERT INTO events (at_ms, app, kind, actor, reason, evidence) \
             VALUES (1, 'a', 'k', 'bob', NULL, NULL);
             PRAGMA ignore_check_constraints = ON;
             INSERT INTO events (at_ms, app, kind, actor, reason, evidence) \
             VALUES (2, 'a', 'k', 'bob', 5, 'not json');",
        )
        .unwrap();
    let back = store.recent_results(None, 0, 10).unwrap();
    assert_eq!(back.len(), 2);
    let newest = &back[0];
    assert_eq!(newest.at_ms, 11);
    assert_eq!(&*newest.key.app, "7");
    assert_eq!(newest.code, Some(2));
    assert_eq!(newest.error_kind, Some(ErrorKind::Dns));
    let odd = &back[1];
    assert!(!odd.ok);
    assert_eq!(odd.code, None);
    assert_eq!(odd.error_kind, None);
    assert!(odd.latency_ms.is_nan());
    assert!(odd.message.contains('\u{FFFD}'));

    let ev = store.events(Some("a"), 10).unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].reason.as_deref(), Some("5"));
    assert_eq!(
        ev[0].evidence,
        Some(serde_json::Value::String("not json".into()))
    );
}

#[test]
fn prune_removes_only_old_rows() {
    let dir = TempDir::new("store-prune");
    let mut store = Store::open(&dir.join("history.db")).unwrap();
    // More than one prune chunk of old rows.
    let old: Vec<_> = (0..25_000)
        .map(|n| result("a", "i", 1_000 + n, n as u64))
        .collect();
    let new: Vec<_> = (0..500)
        .map(|n| result("a", "i", 100_000 + n, n as u64))
        .collect();
    store.insert_results(&old).unwrap();
    store.insert_results(&new).unwrap();
    // The boundary row stays: only strictly older rows go.
    assert_eq!(store.prune_results(100_000).unwrap(), 25_000);
    assert_eq!(store.result_count().unwrap(), 500);
    let left = store.recent_results(None, 0, 1_000).unwrap();
    assert_eq!(left.len(), 500);
    assert!(left.iter().all(|r| r.at_ms >= 100_000));
    assert_eq!(store.prune_results(100_000).unwrap(), 0);
}

#[test]
fn events_round_trip() {
    let dir = TempDir::new("store-events");
    let store = Store::open(&dir.join("history.db")).unwrap();
    let before = now_ms();
    let evidence = serde_json::json!({"failed": ["web-1"], "rate": 0.5});
    let a = store
        .record_event(
            "web",
            "rollback",
            "alice",
            Some("5xx spike"),
            Some(&evidence),
        )
        .unwrap();
    let b = store
        .record_event("api", "pause", "bob", None, None)
        .unwrap();
    let c = store
        .record_event("web", "note", "rollguard", None, None)
        .unwrap();
    assert!(a < b && b < c);

    let all = store.events(None, 10).unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![c, b, a],
        "newest first"
    );
    let web = store.events(Some("web"), 10).unwrap();
    assert_eq!(web.len(), 2);
    let first = &web[1];
    assert_eq!(first.id, a);
    assert_eq!(first.app, "web");
    assert_eq!(first.kind, "rollback");
    assert_eq!(first.actor, "alice");
    assert_eq!(first.reason.as_deref(), Some("5xx spike"));
    assert_eq!(first.evidence.as_ref(), Some(&evidence));
    assert_eq!(first.deployment_id, None);
    assert!(first.at_ms >= before && first.at_ms <= now_ms());
    assert_eq!(web[0].reason, None);
    assert_eq!(web[0].evidence, None);
    assert_eq!(store.events(None, 1).unwrap().len(), 1);
    assert!(store.events(Some("nope"), 10).unwrap().is_empty());
}

#[test]
fn writer_writes_everything_sent_from_many_threads() {
    let dir = TempDir::new("store-writer");
    let path = dir.join("history.db");
    let writer = ResultWriter::spawn(
        &rollguard::store::Location::File(path.clone()),
        Duration::from_secs(3600),
    )
    .unwrap();
    let now = now_ms();
    let threads: Vec<_> = (0..5)
        .map(|t| {
            let tx = writer.sender();
            std::thread::spawn(move || {
                let inst = format!("i{t}");
                for n in 0..10_000u64 {
                    tx.send(result("web", &inst, now, n));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = writer.shutdown();
    assert_eq!(stats.received, 50_000, "{stats:?}");
    assert_eq!(stats.written, 50_000, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.pending, 0, "{stats:?}");
    assert_eq!(stats.last_error, None);
    assert_eq!(Store::open(&path).unwrap().result_count().unwrap(), 50_000);
}

#[test]
fn writer_prunes_at_start_and_counts_sends_after_shutdown() {
    let dir = TempDir::new("store-writer-prune");
    let path = dir.join("history.db");
    let now = now_ms();
    {
        let mut s = Store::open(&path).unwrap();
        s.insert_results(&[
            result("a", "i", now - 7_200_000, 1),
            result("a", "i", now, 2),
        ])
        .unwrap();
    }
    let writer = ResultWriter::spawn(
        &rollguard::store::Location::File(path.clone()),
        Duration::from_secs(3600),
    )
    .unwrap();
    let sender = writer.sender();
    let reader = Store::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.result_count().unwrap() != 1 {
        assert!(Instant::now() < deadline, "old row not pruned at start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A result sent before shutdown is written within about FLUSH_INTERVAL.
    sender.send(result("a", "i", now, 3));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sender.stats().written != 1 {
        assert!(
            Instant::now() < deadline,
            "not flushed: {:?}",
            sender.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = writer.shutdown();
    assert_eq!(stats.pending, 0);
    sender.send(result("a", "i", now, 4));
    let after = sender.stats();
    assert_eq!((after.received, after.written, after.failed), (2, 1, 1));
    assert_eq!(reader.result_count().unwrap(), 2);
}

#[test]
fn writer_and_reader_share_a_file_without_lock_errors() {
    let dir = TempDir::new("store-concurrent");
    let path = dir.join("history.db");
    let writer = ResultWriter::spawn(
        &rollguard::store::Location::File(path.clone()),
        Duration::from_secs(3600),
    )
    .unwrap();
    let reader = Store::open(&path).unwrap();
    let now = now_ms();

    let tx = writer.sender();
    let producer = std::thread::spawn(move || {
        for n in 0..30_000u64 {
            tx.send(result("web", "w1", now + (n as i64 % 1000), n));
            if n.is_multiple_of(1_000) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    // Meanwhile: read (this connection) and also write events, competing
    // with the writer thread for the write lock.
    let mut reads = 0;
    let mut last_count = 0;
    while !producer.is_finished() || writer.stats().pending > 0 {
        let count = reader.result_count().expect("count while writing");
        assert!(count >= last_count);
        last_count = count;
        reader
            .recent_results(Some("web"), now, 100)
            .expect("read while writing");
        reader
            .record_event("web", "note", "test", None, None)
            .expect("write an event while the writer writes");
        reads += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    producer.join().unwrap();
    let stats = writer.shutdown();
    assert_eq!((stats.written, stats.failed), (30_000, 0), "{stats:?}");
    assert_eq!(stats.last_error, None);
    assert_eq!(reader.result_count().unwrap(), 30_000);
    assert!(reads > 0);
    assert_eq!(reader.events(None, 100_000).unwrap().len(), reads);
}

#[test]
fn writer_retries_a_batch_when_the_lock_is_held_too_long() {
    let dir = TempDir::new("store-writer-busy");
    let path = dir.join("history.db");
    let writer = ResultWriter::spawn(
        &rollguard::store::Location::File(path.clone()),
        Duration::from_secs(3600),
    )
    .unwrap();
    // Another process holds the write lock past the 5 s busy timeout.
    let blocker = raw(&path);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer.send(result("a", "i", now_ms(), 1));
    let deadline = Instant::now() + Duration::from_secs(20);
    while writer.stats().last_error.is_none() {
        assert!(Instant::now() < deadline, "no error while locked");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = writer.stats();
    assert_eq!((stats.written, stats.failed, stats.pending), (0, 0, 1));
    assert!(
        stats.last_error.as_deref().unwrap().contains("locked"),
        "{stats:?}"
    );
    blocker.execute_batch("COMMIT").unwrap();
    // The kept batch is written on a later round.
    let stats = writer.shutdown();
    assert_eq!((stats.written, stats.failed, stats.pending), (1, 0, 0));
    assert_eq!(Store::open(&path).unwrap().result_count().unwrap(), 1);
}

#[test]
fn writer_drops_a_batch_after_three_failed_tries() {
    let dir = TempDir::new("store-writer-poison");
    let path = dir.join("history.db");
    let writer = ResultWriter::spawn(
        &rollguard::store::Location::File(path.clone()),
        Duration::from_secs(3600),
    )
    .unwrap();
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON probe_results WHEN NEW.app = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
        )
        .unwrap();
    writer.send(result("poison", "i", now_ms(), 1));
    let deadline = Instant::now() + Duration::from_secs(20);
    while writer.stats().failed == 0 {
        assert!(Instant::now() < deadline, "{:?}", writer.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(writer.stats().last_error.unwrap().contains("poisoned row"));
    writer.send(result("fine", "i", now_ms(), 2));
    let stats = writer.shutdown();
    assert_eq!(
        (stats.received, stats.written, stats.failed, stats.pending),
        (2, 1, 1, 0)
    );
}

/// The POSIX locks this process holds on the file at `path` (from
/// `/proc/locks`), as `(kind, start)`.
fn locks_held_on(path: &std::path::Path) -> Vec<(String, String)> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).unwrap().ino();
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // "1: POSIX  ADVISORY  READ 28848 fe:00:10133540 1073741826 1073742335"
            let at = f.iter().position(|x| *x == "ADVISORY")?;
            let (kind, owner, file, start) = (
                f.get(at + 1)?,
                f.get(at + 2)?,
                f.get(at + 3)?,
                f.get(at + 4)?,
            );
            (*owner == pid && file.rsplit(':').next() == Some(&ino.to_string()))
                .then(|| (kind.to_string(), start.to_string()))
        })
        .collect()
}

/// A second store opened in a process keeps the first one's locks. No
/// file of the history may be opened and closed behind SQLite's back:
/// closing any descriptor of a file drops every POSIX lock the process
/// holds on it, so the first connection's shared lock on the database
/// went, and an `sqlite3` shell closing its connection then took the
/// file as unused and removed the -wal and -shm files under the running
/// console, whose next connections failed with "disk I/O error".
#[test]
fn opening_a_second_store_keeps_the_first_ones_locks() {
    let dir = TempDir::new("second-open");
    let path = dir.0.join("history.db");
    let mut first = Store::open(&path).unwrap();
    first
        .insert_results(&[result("web", "web-1", now_ms(), 1)])
        .unwrap();
    let held = locks_held_on(&path);
    assert!(
        !held.is_empty(),
        "an open WAL connection holds a shared lock"
    );
    let second = Store::open(&path).unwrap();
    assert_eq!(locks_held_on(&path), held, "opening a second store");
    let _ = Store::open_read_only(&path).unwrap();
    assert_eq!(locks_held_on(&path), held, "opening a store read-only");
    first
        .insert_results(&[result("web", "web-1", now_ms(), 2)])
        .unwrap();
    assert_eq!(second.result_count().unwrap(), 2);
}
