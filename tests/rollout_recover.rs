//! After a `kill -9` of the rollout worker: `status` shows the interrupted
//! rollout and `recover --rollback|--resume` finishes it, with the fleet on
//! one version and no record lost. Also the manual `rollback` command and a
//! deploy refused at preflight because its rollback target is gone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::rollout::{Env, kill9, load, version_at, wait_for, worker_pid};

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
    env.edit_config(
        "deadline = \"10s\"",
        "deadline = \"10s\"\ninitial_delay = \"3s\"",
    );
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
    env.rollguard(&["abort", "web"]);
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
    // A target that is not there is refused too.
    let (code, _, err) = env.rollguard(&["deploy", "web", "v9", "--yes"]);
    assert_eq!(code, 1);
    assert!(err.contains("E_ARTIFACT_MISSING"), "{err}");
}
