//! The history store's disk fills up in the middle of a rollout: write
//! before act must still hold. The database lives on a small tmpfs that the
//! test fills as soon as the first start of the new release is recorded;
//! then no instance may run the new release without a recorded start,
//! `status` may not name a version an instance does not serve, and after
//! the rollback (the worker's own, or `recover --rollback` once there is
//! room again) every instance serves the old release, with an outcome that
//! says so. A second test asks the store's writers one by one what they
//! return on a full disk.

use crate::common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use common::rollout::Env;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

const TEST: &str = "full_disk_mid_rollout";

/// A tmpfs mounted for this test, and the rollout workers started on it:
/// on drop (also on a panic) the workers still alive are killed, then the
/// tmpfs is unmounted and its folder removed.
struct Disk {
    dir: TempDir,
    workers: Vec<i32>,
}

impl Disk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it), or skips
    /// (see [`common::missing`]) when mounting is impossible here.
    fn mount(test: &str, size: &str) -> Option<Disk> {
        let dir = TempDir::new("disk");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(&dir.0)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Disk {
                dir,
                workers: Vec::new(),
            }),
            Ok(o) => common::missing(
                test,
                &format!(
                    "a tmpfs mount (mount says: {})",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            ),
            Err(e) => common::missing(test, &format!("a tmpfs mount (cannot run mount: {e})")),
        }
    }

    fn join(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    /// Fills the tmpfs with `fill` until the kernel says ENOSPC; returns
    /// how many bytes it took.
    fn fill(&self) -> u64 {
        let mut f = std::fs::File::create(self.join("fill")).unwrap();
        let mut written = 0u64;
        for chunk in [64 * 1024, 4096, 512, 1] {
            let buf = vec![0u8; chunk];
            loop {
                match f.write(&buf) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling the tmpfs: {e}"),
                }
            }
        }
        let err = f.write_all(b"x").expect_err("the tmpfs is full");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        written
    }

    /// Gives the space back.
    fn free(&self) {
        let _ = std::fs::remove_file(self.join("fill"));
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        for &pid in &self.workers {
            if is_worker(pid) {
                // SAFETY: SIGKILL to a rollout worker this test started.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        let end = Instant::now() + Duration::from_secs(5);
        while self.workers.iter().any(|&p| alive(p)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.free();
        let umount = |lazy: bool| {
            let mut c = Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            c.arg(&self.dir.0)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("{TEST}: could not unmount {}", self.dir.0.display());
        }
    }
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Whether `pid` is alive and still a `rollguard worker` (not a reused pid).
fn is_worker(pid: i32) -> bool {
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.first()
                .is_some_and(|a| a.ends_with(b"rollguard") || a.ends_with(b"rollguard (deleted)"))
                && args.contains(&&b"worker"[..])
        })
}

/// `rollguard --config .. --db DB ARGS` for at most `limit` (see
/// [`common::rollguard_within`]).
fn rollguard(
    env: &Env,
    db: &Path,
    args: &[&str],
    limit: Duration,
) -> Option<(i32, String, String)> {
    common::rollguard_within(&env.config(), db, args, limit)
}

/// The history, read-only.
fn read(db: &Path) -> Connection {
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// The instances with a recorded `start` of `version` in `deployment`.
fn recorded_starts(db: &Path, deployment: i64, version: &str) -> BTreeSet<String> {
    let conn = read(db);
    let mut stmt = conn
        .prepare(
            "SELECT DISTINCT instance FROM instance_changes \
             WHERE deployment_id = ?1 AND action = 'start' AND to_version = ?2",
        )
        .unwrap();
    stmt.query_map(rusqlite::params![deployment, version], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The deployment's (state, outcome, ended).
fn deployment_end(db: &Path, deployment: i64) -> (String, Option<String>, bool) {
    read(db)
        .query_row(
            "SELECT state, outcome, ended_at_ms IS NOT NULL FROM deployments WHERE id = ?1",
            [deployment],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// The pid holding the lock of `web`, if any.
fn lock_pid(db: &Path) -> Option<i32> {
    read(db)
        .query_row("SELECT owner_pid FROM locks WHERE app = 'web'", [], |r| {
            r.get(0)
        })
        .optional()
        .unwrap()
}

/// The worker's log lines that report trouble, for failure messages.
fn log_trouble(log: &Path) -> String {
    let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("could not"))
        .collect();
    let shown: Vec<&str> = lines.iter().take(12).copied().collect();
    format!(
        "{} ({} lines of trouble):\n  {}",
        log.display(),
        lines.len(),
        shown.join("\n  ")
    )
}

/// `s` without its terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Compares `status web --json` with what each instance serves (asked
/// before and after; an instance that changed meanwhile is not judged).
/// Returns the instances status names a version they do not serve.
fn status_lies(env: &Env, db: &Path, when: &str) -> Vec<String> {
    let before = env.served(&env.ports);
    let Some((code, out, err)) = rollguard(env, db, &["status", "web", "--json"], secs(30)) else {
        return vec![format!("{when}: `status web --json` did not end in 30 s")];
    };
    let after = env.served(&env.ports);
    if code != 0 {
        return vec![format!(
            "{when}: `status web --json` failed ({code}): {err}"
        )];
    }
    let s: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{when}: status printed no JSON ({e}): {out}\n{err}"));
    let mut lies = Vec::new();
    for (i, inst) in s[0]["instances"].as_array().unwrap().iter().enumerate() {
        let claimed = &inst["version"];
        if before[i] != after[i] || claimed.is_null() {
            continue;
        }
        if claimed.as_str() != Some(before[i].as_str()) {
            lies.push(format!(
                "{when}: status says {} runs {claimed} but it serves {}",
                inst["instance"], before[i]
            ));
        }
    }
    lies
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn full_disk_mid_rollout_changes_nothing_unrecorded() {
    let Some(env) = Env::new(TEST, "nginx", "") else {
        return;
    };
    let Some(mut disk) = Disk::mount(TEST, "4m") else {
        return;
    };
    // The worker's log goes next to the database: keep it off the tmpfs
    // so what the worker says while the disk is full is kept.
    let logs = env.dir.join("rollouts");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&logs, disk.join("rollouts")).unwrap();
    let db = disk.join("history.db");
    let names: Vec<String> = (1..=3).map(|i| format!("web-{i}")).collect();

    let (code, out, err) =
        rollguard(&env, &db, &["deploy", "web", "v1", "--yes"], secs(120)).expect("deploy v1 ends");
    assert_eq!(code, 0, "deploy v1: {out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    let (code, out, err) = rollguard(
        &env,
        &db,
        &["deploy", "web", "v2", "--yes", "--detach", "--json"],
        secs(60),
    )
    .expect("deploy --detach ends");
    assert_eq!(code, 0, "deploy v2 --detach: {out}\n{err}");
    let started: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("deploy --detach printed no JSON ({e}): {out}\n{err}"));
    let id = started["id"].as_i64().unwrap();
    let worker = started["worker_pid"].as_i64().unwrap() as i32;
    disk.workers.push(worker);
    let log = PathBuf::from(started["log"].as_str().unwrap());

    // The moment: the first start of v2 is committed (its side effect is
    // under way), the rest of the rollout is still to come.
    let conn = read(&db);
    let end = Instant::now() + secs(30);
    let first = loop {
        let first: Option<String> = conn
            .query_row(
                "SELECT instance FROM instance_changes \
                 WHERE deployment_id = ?1 AND action = 'start' ORDER BY id LIMIT 1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        if let Some(f) = first {
            break f;
        }
        assert!(
            Instant::now() < end && alive(worker),
            "no start of v2 was recorded in 30 s; {}",
            log_trouble(&log)
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(conn);
    let filled = disk.fill();
    assert!(
        alive(worker),
        "the worker ended before the disk was full; {}",
        log_trouble(&log)
    );
    eprintln!("{TEST}: start on {first} recorded; tmpfs filled with {filled} bytes");

    // Wait for the worker while the disk stays full (a worker that waits
    // for room is let be), then give the room back and wait again. Every
    // instance seen serving v2 meanwhile is remembered.
    let mut problems: Vec<String> = Vec::new();
    let mut seen_v2: BTreeSet<String> = BTreeSet::new();
    let look = |seen_v2: &mut BTreeSet<String>| {
        for (i, v) in env.served(&env.ports).iter().enumerate() {
            if v == "v2" {
                seen_v2.insert(names[i].clone());
            }
        }
    };
    let mut judged_at = 0;
    let end = Instant::now() + secs(45);
    while alive(worker) && Instant::now() < end {
        look(&mut seen_v2);
        // Status while the disk is full, each time one more instance runs v2.
        if seen_v2.len() > judged_at {
            judged_at = seen_v2.len();
            problems.extend(status_lies(
                &env,
                &db,
                &format!("disk full, {judged_at} on v2"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended_while_full = !alive(worker);
    disk.free();
    let end = Instant::now() + secs(60);
    while alive(worker) && Instant::now() < end {
        look(&mut seen_v2);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(worker),
        "the worker did not end within 60 s of the disk having room again; {}",
        log_trouble(&log)
    );
    look(&mut seen_v2);

    // Write before act: whatever ran v2 has its start recorded.
    let starts = recorded_starts(&db, id, "v2");
    let unrecorded: Vec<&String> = seen_v2.difference(&starts).collect();
    if !unrecorded.is_empty() {
        problems.push(format!(
            "write before act: {unrecorded:?} served v2 with no start of v2 recorded \
             (recorded starts: {starts:?})"
        ));
    }
    problems.extend(status_lies(&env, &db, "after the worker"));

    // Roll back what is left unfinished, now that there is room.
    let (state, mut outcome, ended) = deployment_end(&db, id);
    let mut how = format!("the worker's own end (state {state})");
    if !ended {
        how = "recover --rollback".into();
        let run = rollguard(&env, &db, &["recover", "web", "--rollback"], secs(120));
        if let Some(p) = lock_pid(&db) {
            disk.workers.push(p);
        }
        match run {
            Some((code, out, err)) => {
                let (_, o, ended) = deployment_end(&db, id);
                outcome = o;
                if !ended {
                    problems.push(format!(
                        "recover --rollback left the deployment unfinished ({code}): {out}\n{err}"
                    ));
                }
            }
            None => problems.push("recover --rollback did not end in 120 s".into()),
        }
    }
    let served = env.served(&env.ports);
    let left_on_v2: Vec<&String> = names
        .iter()
        .zip(&served)
        .filter(|(_, v)| *v != "v1")
        .map(|(n, _)| n)
        .collect();
    if !left_on_v2.is_empty() {
        problems.push(format!(
            "after {how}: outcome {outcome:?} but {left_on_v2:?} do not serve v1 \
             (served: {served:?})"
        ));
    }
    if outcome.as_deref() == Some("rolled_back") && !left_on_v2.is_empty() {
        problems.push(format!(
            "after {how}: outcome rolled_back is a lie while {left_on_v2:?} serve {served:?}"
        ));
    }
    problems.extend(status_lies(&env, &db, &format!("after {how}")));
    // The records of the ended deployment leave no batch open.
    let open: Vec<(i64, String)> = read(&db)
        .prepare(
            "SELECT idx, state FROM batches WHERE deployment_id = ?1 \
             AND (state IN ('pending', 'running') OR ended_at_ms IS NULL)",
        )
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if !open.is_empty() {
        problems.push(format!(
            "after {how}: batches (index, state) left open or without an end: {open:?}"
        ));
    }

    assert!(
        problems.is_empty(),
        "a full disk mid-rollout (start on {first} recorded, then the disk filled; \
         the worker {}):\n- {}\nworker log {}",
        if ended_while_full {
            "ended while the disk was full"
        } else {
            "ended after the disk had room again"
        },
        problems.join("\n- "),
        log_trouble(&log)
    );
}

/// Where the rollout above goes wrong, one store call at a time: on a full
/// disk a write may fail, but a write that returns an id must have stored
/// its row. (`set_change_state` on that id is how the worker finds out.)
#[test]
fn store_writes_on_a_full_disk_fail_rather_than_return_a_lost_id() {
    use rollguard::store::{Store, StoreError};
    use serde_json::json;

    let Some(disk) = Disk::mount("store_writes_on_a_full_disk", "2m") else {
        return;
    };
    let db = disk.join("history.db");
    let store = Store::open(&db).unwrap();
    let deployment = store
        .create_deployment(
            "web",
            Some("v1"),
            "v2",
            rollguard::config::Strategy::Rolling,
            "t",
            None,
            &json!({}),
            &[],
        )
        .unwrap();
    disk.fill();

    let side = json!({"side": "main"});
    let snapshot = json!({"side": "main", "snapshot": {"driver": "process", "version": "v1"}});
    let writes: Vec<(&str, &str, Result<i64, StoreError>)> = vec![
        (
            "create_deployment",
            "deployments",
            store.create_deployment(
                "web",
                Some("v1"),
                "v3",
                rollguard::config::Strategy::Rolling,
                "t",
                None,
                &json!({}),
                &[],
            ),
        ),
        (
            "record_deployment_event",
            "events",
            store.record_deployment_event(
                "web",
                Some(deployment),
                "stage_started",
                "t",
                None,
                None,
            ),
        ),
        (
            "record_event",
            "events",
            store.record_event("web", "note", "t", None, None),
        ),
        (
            "save_snapshot",
            "snapshots",
            store.save_snapshot(Some(deployment), "web", "web-1", "process", &snapshot),
        ),
        (
            "record_change",
            "instance_changes",
            store.record_change(
                deployment,
                None,
                "web-1",
                rollguard::model::ChangeAction::Start,
                Some("v1"),
                Some("v2"),
                rollguard::model::ChangeState::Started,
                Some(&side),
            ),
        ),
        (
            "send_command",
            "commands",
            store.send_command(
                "web",
                Some(deployment),
                rollguard::model::Verb::Abort,
                "t",
                None,
            ),
        ),
    ];
    let conn = read(&db);
    let mut lost = Vec::new();
    for (what, table, result) in writes {
        let Ok(id) = result else { continue };
        let kept: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap();
        if kept == 0 {
            let mut later = String::new();
            if table == "instance_changes"
                && let Err(e) =
                    store.set_change_state(id, rollguard::model::ChangeState::Done, None)
            {
                later = format!("; set_change_state on it then says: {e}");
            }
            lost.push(format!(
                "{what} returned id {id} on a full disk but no such row is in {table}{later}"
            ));
        }
    }
    disk.free();
    assert!(lost.is_empty(), "\n- {}", lost.join("\n- "));
}

/// The processes that have `file` (or its -wal or -shm) open, with their
/// command lines: who keeps a history open when it should be closed.
fn holders(file: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        let opened = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with(&*file.to_string_lossy()))
        });
        if opened {
            let cmdline = std::fs::read(proc_dir.path().join("cmdline")).unwrap_or_default();
            out.push(format!(
                "{}: {}",
                proc_dir.file_name().to_string_lossy(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    out
}

/// `status` and `history` on a full disk, no other process having the
/// history open: they still read it. A command that writes says in words
/// that the disk is full and what to free.
#[test]
fn reading_commands_read_a_full_disk_and_writing_ones_say_it_is_full() {
    let test = "reading_commands_read_a_full_disk";
    let Some(env) = Env::new(test, "nginx", "") else {
        return;
    };
    let Some(disk) = Disk::mount(test, "4m") else {
        return;
    };
    let db = disk.join("history.db");
    let (code, out, err) =
        rollguard(&env, &db, &["deploy", "web", "v1", "--yes"], secs(120)).expect("deploy ends");
    assert_eq!(code, 0, "deploy v1: {out}\n{err}");
    // No process has the history open any more: the last one to close it
    // folded its -wal file into it and removed it with the -shm file.
    let companions = || ["-wal", "-shm"].map(|s| disk.join(&format!("history.db{s}")));
    let end = Instant::now() + secs(30);
    while companions().iter().any(|p| p.exists()) {
        assert!(
            Instant::now() < end,
            "the history is still open: {:?}, by {:?}",
            companions(),
            holders(&db)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    disk.fill();

    let (code, out, err) = rollguard(&env, &db, &["status", "web"], secs(30)).expect("status ends");
    assert_eq!(code, 0, "status on a full disk: {out}\n{err}");
    assert!(out.contains("v1"), "{out}");
    let (code, out, err) =
        rollguard(&env, &db, &["history", "web"], secs(30)).expect("history ends");
    assert_eq!(code, 0, "history on a full disk: {out}\n{err}");
    assert!(out.contains("deployed"), "{out}");

    let (code, out, err) =
        rollguard(&env, &db, &["deploy", "web", "v2", "--yes"], secs(60)).expect("deploy ends");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("E_STORE"), "{err}");
    assert!(
        err.contains(&format!("the disk holding {} is full", db.display())),
        "{err}"
    );
    assert!(err.contains("free space there"), "{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"], "nothing moved");
    disk.free();
}

/// The worker's log is on a full disk (its history is not): the worker
/// changes nothing, the rollout ends as failed with `E_STORE`, in words
/// that say the disk is full and what to free, and the lock is free.
#[test]
fn a_worker_that_cannot_write_its_log_changes_nothing_and_says_the_disk_is_full() {
    let test = "a_worker_that_cannot_write_its_log";
    let Some(env) = Env::new(test, "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    let Some(disk) = Disk::mount(test, "1m") else {
        return;
    };
    disk.fill();
    let logs = env.dir.join("rollouts");
    std::fs::remove_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink(&disk.dir.0, &logs).unwrap();
    let db = env.dir.join("history.db");

    let (code, out, err) =
        rollguard(&env, &db, &["deploy", "web", "v2", "--yes"], secs(120)).expect("deploy ends");
    let said = format!("{out}\n{err}");
    assert_eq!(code, 1, "{said}");
    assert!(!said.contains("E_EXEC"), "{said}");
    assert!(said.contains("E_STORE"), "{said}");
    assert!(said.contains("is full"), "{said}");
    assert!(said.contains("free space there"), "{said}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"], "nothing moved");

    let (code, out, err) =
        rollguard(&env, &db, &["status", "web", "--json"], secs(30)).expect("status ends");
    assert_eq!(code, 0, "{out}\n{err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is free: {s}");
    assert_eq!(s[0]["interrupted"], false, "{s}");
    assert_eq!(s[0]["last"]["outcome"], "failed", "{s}");
    disk.free();
    std::fs::remove_file(&logs).unwrap();
}
