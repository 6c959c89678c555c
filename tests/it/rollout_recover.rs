//! After a `kill -9` of the rollout worker: `status` shows the interrupted
//! rollout and `recover --rollback|--resume` finishes it, with the fleet on
//! one version and no record lost. Also the manual `rollback` command and a
//! deploy refused at preflight because its rollback target is gone.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::rollout::{Env, kill9, load, version_at, worker_pid};
use common::wait_for;

fn event_count(env: &Env) -> i64 {
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

fn started(env: &Env, extra: &[&str]) {
    let mut args = vec!["deploy", "web", "v2", "--yes", "--detach"];
    args.extend_from_slice(extra);
    let (code, out, err) = env.rollguard(&args);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn kill_9_then_recover_rollback_and_resume() {
    let Some(env) = Env::new("kill_9_then_recover", "nginx", "") else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");

    for (point, mode) in [
        ("during the first batch's gate", "--rollback"),
        ("after the first batch", "--rollback"),
        ("after the second batch", "--resume"),
        ("while monitoring", "--resume"),
    ] {
        started(&env, &[]);
        let p = env.ports.clone();
        match point {
            "during the first batch's gate" => {
                wait_for("v2 on web-1", Duration::from_secs(20), || {
                    version_at(p[0]) == "v2"
                })
            }
            "after the first batch" => {
                wait_for("v2 on web-1", Duration::from_secs(20), || {
                    version_at(p[0]) == "v2"
                });
                std::thread::sleep(Duration::from_millis(700));
            }
            "after the second batch" => {
                wait_for("v2 on web-2", Duration::from_secs(20), || {
                    version_at(p[1]) == "v2"
                });
                std::thread::sleep(Duration::from_millis(700));
            }
            _ => wait_for("v2 everywhere", Duration::from_secs(20), || {
                env.served(&p).iter().all(|v| v == "v2")
            }),
        }
        let before = event_count(&env);
        kill9(worker_pid(&env));
        std::thread::sleep(Duration::from_millis(300));
        let (_, out, _) = env.rollguard(&["status", "web"]);
        assert!(
            out.contains("INTERRUPTED"),
            "{point}: status shows the interrupted rollout:\n{out}"
        );
        let (code, out, err) = env.rollguard(&["recover", "web", mode]);
        let served = env.served(&env.ports);
        if mode == "--rollback" {
            assert_eq!(code, 3, "{point}: {out}\n{err}");
            assert_eq!(served, ["v1", "v1", "v1"], "{point}");
        } else {
            assert_eq!(code, 0, "{point}: {out}\n{err}");
            assert_eq!(served, ["v2", "v2", "v2"], "{point}");
            // Back to v1 for the next round.
            let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
            assert_eq!(code, 0, "{out}\n{err}");
        }
        assert!(
            event_count(&env) > before,
            "{point}: records kept and added"
        );
        let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(s[0]["lock"].is_null(), "{point}: lock released: {s}");
        assert_eq!(s[0]["active"].as_array().unwrap().len(), 0, "{point}: {s}");
    }
    // Recovering with nothing interrupted is an error that says so.
    let (code, _, err) = env.rollguard(&["recover", "web", "--resume"]);
    assert_eq!(code, 1);
    assert!(err.contains("E_NO_ROLLOUT"), "{err}");
}

/// How many events of `kind` deployment `id` has.
fn events_of(env: &Env, id: i64, kind: &str) -> i64 {
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM events WHERE deployment_id = ?1 AND kind = ?2",
        rusqlite::params![id, kind],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// How many times deployment `id` started its release on an instance.
fn starts(env: &Env, id: i64) -> i64 {
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM instance_changes WHERE deployment_id = ?1 AND action = 'start'",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

/// A worker killed after its rollback started: `recover --resume` carries
/// the rollback on. It never starts the failed release again, and no user
/// request meets it (or an instance the dead rollback had stopped) while
/// the recovery runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resume_after_the_rollback_started_carries_the_rollback_on() {
    // One instance at a time, so the rollback is still under way when its
    // worker is killed.
    let Some(env) = Env::new("resume_rolling_back", "nginx", "rollback_batch = 1") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    let mut killed = None;
    for _attempt in 0..3 {
        let (code, out, err) = env.rollguard(&["deploy", "web", "v3", "--yes", "--detach"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let id: i64 = {
            let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
            conn.query_row("SELECT max(id) FROM deployments", [], |r| r.get(0))
                .unwrap()
        };
        wait_for("the rollback to start", Duration::from_secs(30), || {
            events_of(&env, id, "rollback_started") > 0
        });
        let pid = worker_pid(&env);
        if pid > 0 {
            kill9(pid);
        }
        std::thread::sleep(Duration::from_millis(300));
        let (_, out, _) = env.rollguard(&["status", "web"]);
        if out.contains("INTERRUPTED") && out.contains("rolling_back") {
            killed = Some(id);
            break;
        }
        // The rollback ended before the kill: try again.
        env.deploy_ok("v1", "rolling");
    }
    let id = killed.expect("a worker killed while its rollback ran");
    let starts_before = starts(&env, id);

    let stop = Arc::new(AtomicBool::new(false));
    let client = load(env.url(), 2, stop.clone());
    let (code, out, err) = env.rollguard(&["recover", "web", "--resume"]);
    stop.store(true, Ordering::Relaxed);
    let seen = client.await.unwrap();

    assert_eq!(starts(&env, id), starts_before, "v3 was started again");
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    let stages_after: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE deployment_id = ?1 AND kind = 'stage_started' \
             AND id > (SELECT max(id) FROM events WHERE deployment_id = ?1 \
                       AND kind = 'recovery_started')",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stages_after, 0, "the recovery ran stages forward");
    assert_eq!(code, 3, "rolled back: {out}\n{err}");
    assert!(out.contains("never resumed forward"), "{out}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
    assert_eq!(
        seen.ok.get("v3"),
        None,
        "v3 served during the recovery: {seen:?}"
    );
    assert!(
        seen.failed.is_empty(),
        "requests failed during the recovery: {:?}",
        seen.some_failures()
    );
    assert!(seen.total() > 0);
}

#[test]
fn a_resumed_batch_is_not_failed_by_the_restart_it_repeats() {
    let Some(env) = Env::new("resume_first_batch", "nginx", "") else {
        return;
    };
    // v7 takes 2 s to start: its deploy gates wait it out.
    env.edit_config("initial_delay = \"1500ms\"", "initial_delay = \"3s\"");
    env.deploy_ok("v1", "rolling");
    let (code, out, err) = env.rollguard(&["deploy", "web", "v7", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Killed while web-1 is between v1 and v7.
    let p = env.ports.clone();
    wait_for("web-1 to stop v1", Duration::from_secs(20), || {
        version_at(p[0]) == "down"
    });
    kill9(worker_pid(&env));
    std::thread::sleep(Duration::from_millis(300));
    // Resuming repeats web-1's start; what the restart refuses meanwhile
    // is the start's, not a failure of the release.
    let (code, out, err) = env.rollguard(&["recover", "web", "--resume"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v7", "v7", "v7"]);
}

#[test]
fn recover_refuses_while_the_worker_lives() {
    let Some(env) = Env::new("recover_refuses", "nginx", "") else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let cfg = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("monitor = \"3s\"", "monitor = \"20s\"");
    std::fs::write(env.config(), cfg).unwrap();
    started(&env, &[]);
    std::thread::sleep(Duration::from_millis(500));
    let (code, _, err) = env.rollguard(&["recover", "web", "--rollback"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("E_LOCKED"), "{err}");
    env.rollguard(&["abort", "web", "--reason", "done", "--yes"]);
    wait_for("the abort", Duration::from_secs(30), || {
        let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
        out.contains("\"lock\":null")
    });
}

#[test]
fn manual_rollback_checks_then_restores_the_last_good_release() {
    let Some(env) = Env::new("manual_rollback", "nginx", "") else {
        return;
    };
    for v in ["v1", "v2"] {
        let (code, out, err) = env.rollguard(&["deploy", "web", v, "--yes"]);
        assert_eq!(code, 0, "{out}\n{err}");
    }
    // A reason is required.
    let (code, _, _) = env.rollguard(&["rollback", "web", "--yes"]);
    assert_eq!(code, 2);
    // --dry-run prints the checks and the plan, and moves nothing.
    let (code, out, _) = env.rollguard(&["rollback", "web", "--reason", "errors", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Rollback web v2 → v1") && out.contains("was healthy"),
        "{out}"
    );
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
    // An unknown target fails its checks and stops, unless forced.
    let (code, out, err) =
        env.rollguard(&["rollback", "web", "--to", "v9", "--reason", "x", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("E_ROLLBACK_TARGET_MISSING"), "{err}");
    // v3 was never healthy: refused as unsafe.
    let (code, _, err) =
        env.rollguard(&["rollback", "web", "--to", "v3", "--reason", "x", "--yes"]);
    assert_eq!(code, 1);
    assert!(err.contains("E_ROLLBACK_UNSAFE"), "{err}");
    // The real thing: back to v1, health-checked, reason stored.
    let (code, out, err) = env.rollguard(&[
        "rollback",
        "web",
        "--reason",
        "checkout errors up",
        "--yes",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["to"], "v1");
    assert_eq!(report["outcome"], "deployed");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    let reason: String = conn
        .query_row(
            "SELECT reason FROM events WHERE kind = 'rollback_requested' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "rollback: checkout errors up");
}

#[test]
fn deploy_without_a_way_back_is_refused_at_preflight() {
    let Some(env) = Env::new("no_way_back", "nginx", "") else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The running release disappears from the host.
    std::fs::remove_dir_all(env.dir.join("releases/v1")).unwrap();
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("E_ROLLBACK_TARGET_MISSING"), "{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"], "nothing moved");
    // A target that is not there is refused too, naming what is there
    // (newest first, five of them) to deploy instead.
    let (code, _, err) = env.rollguard(&["deploy", "web", "v9", "--yes"]);
    assert_eq!(code, 1);
    assert!(err.contains("E_ARTIFACT_MISSING"), "{err}");
    assert!(
        err.contains(
            "v9 is not present for web-1, web-2, web-3; present on local: v7, v6, v5, v4, v3 and 1 more"
        ),
        "{err}"
    );
    assert!(
        err.contains("hint: deploy one of the releases present"),
        "{err}"
    );
}

/// A `sleep` started by the test: a live process whose pid a lock can
/// name. Killed on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("600")
                .spawn()
                .unwrap(),
        )
    }

    fn pid(&self) -> i64 {
        i64::from(self.0.id())
    }

    /// Its start time, as `/proc` says.
    fn start_time(&self) -> i64 {
        rollguard::host::stat(self.pid()).unwrap().start as i64
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn history(env: &Env) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// Deploys v2 detached and kills its worker once web-1 serves v2.
fn interrupted_v2(env: &Env) {
    started(env, &[]);
    let p = env.ports[0];
    wait_for("v2 on web-1", Duration::from_secs(20), || {
        version_at(p) == "v2"
    });
    let pid = worker_pid(env);
    kill9(pid);
    wait_for("the worker to die", Duration::from_secs(5), || {
        !rollguard::host::pid_alive(i64::from(pid))
    });
}

/// Whether `status web --json` calls its rollout interrupted.
fn interrupted(env: &Env) -> bool {
    let (code, out, err) = env.rollguard(&["status", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    s[0]["interrupted"] == true
}

#[test]
fn a_lock_whose_pid_went_to_another_process_or_whose_heartbeat_is_old_is_abandoned() {
    let Some(env) = Env::new("reused_pid", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    let sleep = Sleeper::start();

    // The worker dies and its pid goes to another process (the `sleep`),
    // which started later; the heartbeat is fresh.
    interrupted_v2(&env);
    let recorded: Option<i64> = history(&env)
        .query_row("SELECT owner_start FROM locks WHERE app = 'web'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let recorded = recorded.expect("the worker recorded its start time");
    assert_ne!(recorded, sleep.start_time());
    history(&env)
        .execute(
            "UPDATE locks SET owner_pid = ?1, heartbeat_ms = ?2 WHERE app = 'web'",
            rusqlite::params![sleep.pid(), rollguard::model::now_ms()],
        )
        .unwrap();
    assert!(interrupted(&env), "status: the rollout is interrupted");
    let (_, out, _) = env.rollguard(&["status", "web"]);
    assert!(out.contains("INTERRUPTED"), "{out}");
    let (code, out, err) = env.rollguard(&["recover", "web", "--rollback"]);
    assert_eq!(code, 3, "recover takes the abandoned lock: {out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // The case: the pid names a live process (here with the start
    // time the lock recorded, so the pid alone says "alive") but the
    // heartbeat is 42 s old: stale whatever the pid says.
    interrupted_v2(&env);
    history(&env)
        .execute(
            "UPDATE locks SET owner_pid = ?1, owner_start = ?2, heartbeat_ms = ?3 \
             WHERE app = 'web'",
            rusqlite::params![
                sleep.pid(),
                sleep.start_time(),
                rollguard::model::now_ms() - 42_000
            ],
        )
        .unwrap();
    assert!(interrupted(&env), "status: the rollout is interrupted");
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--break-lock"]);
    assert_eq!(code, 0, "--break-lock takes the stale lock: {out}\n{err}");
    assert!(out.contains("superseded"), "{out}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
    let why: String = history(&env)
        .query_row(
            "SELECT reason FROM events WHERE kind = 'lock_broken' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(why.contains("heartbeat is 42s old"), "{why}");

    // A live holder with a fresh heartbeat keeps its lock: both refuse.
    history(&env)
        .execute(
            "INSERT INTO locks (app, owner_user, owner_host, owner_pid, owner_start, reason, \
             acquired_ms, heartbeat_ms) VALUES ('web', 'ana', ?1, ?2, ?3, 'deploy v9', ?4, ?4)",
            rusqlite::params![
                rollguard::host::hostname(),
                sleep.pid(),
                sleep.start_time(),
                rollguard::model::now_ms()
            ],
        )
        .unwrap();
    let (code, _, err) = env.rollguard(&["deploy", "web", "v1", "--yes", "--break-lock"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("E_LOCKED") && err.contains("still runs here"),
        "{err}"
    );
    history(&env)
        .execute("DELETE FROM locks WHERE app = 'web'", [])
        .unwrap();
}

/// Deploys v2 detached with a long monitor; returns (deployment, worker
/// pid) once every instance serves v2 (the worker then watches).
fn watching_v2(env: &Env) -> (i64, i32) {
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--detach", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let started: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let ports = env.ports.clone();
    wait_for("v2 everywhere", Duration::from_secs(30), || {
        env.served(&ports).iter().all(|v| v == "v2")
    });
    (
        started["id"].as_i64().unwrap(),
        started["worker_pid"].as_i64().unwrap() as i32,
    )
}

#[test]
fn a_worker_that_cannot_keep_its_lock_stops_before_it_may_be_broken() {
    let Some(env) = Env::new("fenced", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    env.edit_config("monitor = \"3s\"", "monitor = \"300s\"");
    let log = |id: i64| {
        std::fs::read_to_string(env.dir.join(&format!("rollouts/{id}.log"))).unwrap_or_default()
    };

    // The history stays locked by another program: the worker cannot
    // refresh its lock, and stops on its own while the lock is held.
    let (id, worker) = watching_v2(&env);
    let blocker = history(&env);
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    wait_for(
        "the worker to stop while its lock cannot be refreshed",
        Duration::from_secs(120),
        || !rollguard::host::pid_alive(i64::from(worker)),
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let said = log(id);
    assert!(
        said.contains("E_STORE") && said.contains("could not refresh the lock"),
        "{said}"
    );
    assert!(interrupted(&env), "status: the rollout is interrupted");
    let (code, out, err) = env.rollguard(&["recover", "web", "--rollback"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // Its lock is taken by another process: it stops at once, and says so.
    let (id, worker) = watching_v2(&env);
    let sleep = Sleeper::start();
    history(&env)
        .execute(
            "UPDATE locks SET owner_pid = ?1, owner_start = ?2 WHERE app = 'web'",
            rusqlite::params![sleep.pid(), sleep.start_time()],
        )
        .unwrap();
    wait_for(
        "the worker to stop once its lock is another's",
        Duration::from_secs(30),
        || !rollguard::host::pid_alive(i64::from(worker)),
    );
    let said = log(id);
    assert!(
        said.contains("E_LOCKED") && said.contains("lost the lock"),
        "{said}"
    );
    let lost: i64 = history(&env)
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'lock_lost' AND deployment_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lost, 1);
    drop(sleep);
    // The sleep is gone: its lock is abandoned, and recovery takes it.
    let (code, out, err) = env.rollguard(&["recover", "web", "--rollback"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
}
