//! Tests of `Store::open_read_only` on real SQLite files: a missing file,
//! files that are not a history, schema versions, writes refused, and a
//! WAL database on a real read-only mount (a tmpfs mounted for the test
//! and remounted read-only), with and without its -wal and -shm files.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::TempDir;
use rollguard::store::{SCHEMA_VERSION, Store, StoreError};
use serde_json::json;

fn raw(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Records two deployments (one finished), a batch and an event.
fn record(store: &Store) -> i64 {
    let first = store
        .create_deployment(
            "web",
            None,
            "1.0",
            rollguard::config::Strategy::Rolling,
            "alice",
            None,
            &json!({}),
            &[],
        )
        .unwrap();
    store
        .finish_deployment(
            first,
            rollguard::model::DeploymentState::Done,
            rollguard::model::Outcome::Deployed,
        )
        .unwrap();
    let id = store
        .create_deployment(
            "web",
            Some("1.0"),
            "2.0",
            rollguard::config::Strategy::Rolling,
            "alice",
            Some("ticket 7"),
            &json!({"batches": 1}),
            &[],
        )
        .unwrap();
    store
        .insert_batches(id, &[("batch", vec!["web-1".into()], None)])
        .unwrap();
    store
        .record_deployment_event("web", Some(id), "rollout_started", "alice", None, None)
        .unwrap();
    id
}

/// Asserts the store reads back what [`record`] wrote.
fn assert_reads(store: &Store, id: i64) {
    let deployments = store.deployments(Some("web"), 10).unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0].id, id);
    assert_eq!(deployments[0].reason.as_deref(), Some("ticket 7"));
    assert_eq!(store.unfinished_deployments(None).unwrap().len(), 1);
    assert_eq!(store.batches(id).unwrap().len(), 1);
    let events = store.deployment_events(id, 0).unwrap();
    assert_eq!(events[0].kind, "rollout_started");
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

/// Asserts that writing through `store` fails, naming the file.
fn assert_writes_fail(store: &Store, path: &Path) {
    let err = store
        .record_event("web", "note", "bob", None, None)
        .unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let err = store
        .create_deployment(
            "web",
            None,
            "3.0",
            rollguard::config::Strategy::Rolling,
            "bob",
            None,
            &json!({}),
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
}

#[test]
fn missing_file_says_there_is_no_history_and_creates_nothing() {
    let dir = TempDir::new("ro-missing");
    let path = dir.join("state/history.db");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::NoHistory { .. }), "{err:?}");
    assert_eq!(err.path(), path.as_path());
    let text = err.to_string();
    assert!(text.contains("no history yet"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("--db"), "{text}");
    assert!(
        !dir.join("state").exists(),
        "neither the folder nor the file is created"
    );
}

#[test]
fn reads_a_history_and_refuses_writes_without_changing_it() {
    let dir = TempDir::new("ro-reads");
    let path = dir.join("history.db");
    let writer = Store::open(&path).unwrap();
    let id = record(&writer);
    // A writer still has it open: the reader sees its committed rows.
    let store = Store::open_read_only(&path).unwrap();
    assert_reads(&store, id);
    assert_writes_fail(&store, &path);
    drop(writer);
    drop(store);
    let c = raw(&path);
    let n: i64 = c
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the refused write left nothing");
}

#[test]
fn refuses_what_is_not_a_history_like_open() {
    let dir = TempDir::new("ro-refuse");
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let junk = dir.join("junk.db");
    std::fs::write(&junk, b"not a database at all\n").unwrap();
    let foreign = dir.join("foreign.db");
    raw(&foreign)
        .execute_batch("CREATE TABLE notes (body TEXT);")
        .unwrap();
    for (path, says) in [
        (&empty, "empty"),
        (&junk, "not an SQLite database"),
        (&foreign, "no rollguard tables"),
    ] {
        let before = std::fs::read(path).unwrap();
        let err = Store::open_read_only(path).unwrap_err();
        assert!(matches!(err, StoreError::NotHistory { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(std::fs::read(path).unwrap() == before, "{path:?} changed");
    }
}

#[test]
fn newer_schema_is_refused_and_nothing_is_migrated() {
    let dir = TempDir::new("ro-versions");
    let path = dir.join("history.db");
    drop(Store::open(&path).unwrap());
    raw(&path).pragma_update(None, "user_version", 999).unwrap();
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade rollguard"), "{err}");

    // The current version reads, and the read-only open leaves the
    // version as it found it.
    raw(&path)
        .pragma_update(None, "user_version", SCHEMA_VERSION)
        .unwrap();
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
}

/// A tmpfs mounted on a folder for one test, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    /// Mounts a small tmpfs on `dir`, or says why it cannot.
    fn tmpfs(dir: &Path) -> Result<Mount, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mount(dir.to_owned()))
    }

    /// Remounts it read-only.
    fn make_read_only(&self) {
        let out = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount,ro failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Really read-only, even for root.
        let probe = std::fs::write(self.0.join("probe"), b"x").unwrap_err();
        assert_eq!(probe.raw_os_error(), Some(libc::EROFS), "{probe}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A tmpfs under `dir`, or `None` (a loud skip) where mounting is not
/// allowed (not root, no CAP_SYS_ADMIN).
fn mount_or_skip(test: &str, dir: &TempDir) -> Option<Mount> {
    match Mount::tmpfs(&dir.join("mnt")) {
        Ok(m) => Some(m),
        Err(why) => common::missing(test, &format!("a tmpfs mount ({why})")),
    }
}

#[test]
fn wal_history_on_a_read_only_mount_after_a_clean_close() {
    let dir = TempDir::new("ro-mount-clean");
    let Some(mnt) = mount_or_skip("wal_history_on_a_read_only_mount_after_a_clean_close", &dir)
    else {
        return;
    };
    let path = mnt.0.join("history.db");
    let store = Store::open(&path).unwrap();
    let id = record(&store);
    drop(store);
    assert_eq!(
        names(&mnt.0),
        ["history.db"],
        "a clean close leaves no -wal"
    );
    let journal: String = raw(&path)
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    mnt.make_read_only();

    // The writing open fails, naming the file; the reading one works.
    let err = Store::open(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("cannot write"), "{text}");
    assert!(text.contains("read-only"), "{text}");
    let store = Store::open_read_only(&path).unwrap();
    assert_reads(&store, id);
    assert_writes_fail(&store, &path);
    drop(store);
    assert_eq!(names(&mnt.0), ["history.db"]);
}

#[test]
fn wal_history_on_a_read_only_mount_with_its_wal_and_shm() {
    let dir = TempDir::new("ro-mount-wal");
    let Some(mnt) = mount_or_skip(
        "wal_history_on_a_read_only_mount_with_its_wal_and_shm",
        &dir,
    ) else {
        return;
    };
    // The three files as a writer leaves them when it stops without
    // closing: changes only in the -wal file, not yet in the main one.
    let src = dir.join("history.db");
    let store = Store::open(&src).unwrap();
    let id = record(&store);
    for suffix in ["", "-wal", "-shm"] {
        std::fs::copy(
            dir.join(&format!("history.db{suffix}")),
            mnt.0.join(format!("history.db{suffix}")),
        )
        .unwrap();
    }
    drop(store);
    let path = mnt.0.join("history.db");
    assert!(
        std::fs::metadata(mnt.0.join("history.db-wal"))
            .unwrap()
            .len()
            > 0,
        "the changes are in the -wal file"
    );
    mnt.make_read_only();

    let store = Store::open_read_only(&path).unwrap();
    assert_reads(&store, id);
    assert_writes_fail(&store, &path);
}

#[test]
fn wal_file_without_shm_on_a_read_only_mount_is_a_clear_error() {
    let dir = TempDir::new("ro-mount-no-shm");
    let Some(mnt) = mount_or_skip(
        "wal_file_without_shm_on_a_read_only_mount_is_a_clear_error",
        &dir,
    ) else {
        return;
    };
    let src = dir.join("history.db");
    let store = Store::open(&src).unwrap();
    record(&store);
    for suffix in ["", "-wal"] {
        std::fs::copy(
            dir.join(&format!("history.db{suffix}")),
            mnt.0.join(format!("history.db{suffix}")),
        )
        .unwrap();
    }
    drop(store);
    mnt.make_read_only();
    let path = mnt.0.join("history.db");
    // Reading the main file alone would silently miss the -wal's changes.
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::WalWithoutShm { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("-wal"), "{text}");
}

#[test]
fn status_and_history_without_a_history_on_a_read_only_mount_read_it_as_empty() {
    let test = "status_and_history_without_a_history_on_a_read_only_mount_read_it_as_empty";
    let dir = TempDir::new("ro-mount-none");
    let Some(mnt) = mount_or_skip(test, &dir) else {
        return;
    };
    mnt.make_read_only();
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = 1\n\
         [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n",
    )
    .unwrap();
    let db = mnt.0.join("history.db");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = run(&["history", "--json"]);
    assert_eq!((code, out.trim()), (Some(0), "[]"), "{err}");
    let (code, out, err) = run(&["status"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("never deployed by rollguard"), "{out}");
    assert!(names(&mnt.0).is_empty(), "nothing is created");
    // Nor on a writable folder.
    let elsewhere = dir.join("none.db");
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .arg("--db")
        .arg(&elsewhere)
        .arg("history")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!elsewhere.exists(), "history created a database");
}
