//! Rolling rollouts on the process driver behind a real nginx and a real
//! HAProxy, driven through the `rollguard` command line: install, a good
//! upgrade, a bad release rolled back, the lock, abort, and hostile input. A
//! client sends requests through the balancer without pause during each
//! rollout; none may fail.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::TempDir;
use common::rollout::{BIN, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_behind_nginx_good_and_bad_without_failed_requests() {
    rolling_good_and_bad("rolling_behind_nginx", "nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_behind_haproxy_good_and_bad_without_failed_requests() {
    rolling_good_and_bad("rolling_behind_haproxy", "haproxy").await;
}

/// Install v1, upgrade to v2, then v3 rolled back, behind `lb`.
async fn rolling_good_and_bad(test: &str, lb: &str) {
    let Some(env) = Env::new(test, lb, "") else {
        return;
    };
    // Install v1: nothing runs yet, so no rollback target is needed.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "install failed:\n{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // A good upgrade under load: zero failed requests.
    let (code, report, seen) = env.deploy_under_load("v2", &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "deployed");
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("v1"), Some("v2"))
    );
    assert_eq!(
        report["batches"].as_array().unwrap().len(),
        4,
        "3 batches and monitor"
    );
    assert!(
        seen.failed.is_empty(),
        "failed requests during a good rollout: {:?}",
        seen.some_failures()
    );
    assert!(seen.total() > 50, "the client barely ran: {seen:?}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);

    // A bad release: passes its first gates, fails while monitored, and is
    // rolled back in reverse order, still with zero failed requests.
    let (code, report, seen) = env.deploy_under_load("v3", &[]).await;
    assert_eq!(code, 3, "a rolled-back deploy exits 3: {report}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["rollback"]["code"], "E_GATE_FAILED", "{report}");
    let evidence = &report["rollback"]["evidence"];
    assert_eq!(evidence["probe"], "health", "{report}");
    assert_eq!(evidence["failure_threshold"], 2);
    assert!(
        evidence["last_samples"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        seen.failed.is_empty(),
        "failed requests during a rollback: {:?}",
        seen.some_failures()
    );
    assert_eq!(
        env.served(&env.ports),
        ["v2", "v2", "v2"],
        "the previous release is back"
    );
    // The failed gate opened the app's incident, tied to this deployment.
    let (_, out, _) = env.rollguard(&["events", "--app", "web", "--json"]);
    let opened: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "incident_opened")
        .collect();
    assert_eq!(opened.len(), 1, "one incident: {out}");
    assert!(report["id"].is_i64(), "{report}");
    assert_eq!(opened[0]["deployment_id"], report["id"], "{out}");
    assert_eq!(opened[0]["evidence"]["cause"], "gate", "{out}");
    assert_eq!(opened[0]["evidence"]["evidence"][0]["probe"], "health");

    // History and status tell the story.
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rolled_back", "deployed", "deployed"]);
    // Its events carry the gate's evidence flat, never nested in the
    // outcome (`evidence.evidence`).
    let event = |kind: &str| {
        h[0]["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {}", h[0]))["evidence"]
            .clone()
    };
    let gate = event("gate_failed");
    assert_eq!(
        (gate["result"].as_str(), gate["probe"].as_str()),
        (Some("failed"), Some("health")),
        "{gate}"
    );
    assert!(gate.get("evidence").is_none(), "{gate}");
    let failed = event("rollout_failed");
    assert_eq!(failed["trigger"], "gate_failed", "{failed}");
    assert_eq!(failed["probe"], "health", "{failed}");
    assert!(failed.get("evidence").is_none(), "{failed}");
    let passed = event("gate_passed");
    assert!(passed["instances"][0]["probe"].is_string(), "{passed}");
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is released: {s}");
    assert_eq!(s[0]["last_good"], "v2");
}

/// A release that goes bad while the next batch is still starting (here:
/// stopping the old process takes its whole `grace`) leaves traffic as
/// soon as it is seen, not once that start ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_that_fails_during_the_next_start_leaves_traffic_at_once() {
    let Some(env) = Env::new("rolling_eject", "nginx", "") else {
        return;
    };
    // v5 ignores SIGTERM: each batch of the next rollout waits `grace` (2 s)
    // for it to stop. v6 fails every request 1.5 s after it starts, so
    // web-1 goes bad while web-2's old process is still stopping.
    env.deploy_ok("v5", "rolling");
    let (code, report, _seen) = env.deploy_under_load("v6", &[]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");

    let (_, out, _) = env.rollguard(&["events", "--app", "web", "--json"]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["deployment_id"] == report["id"])
        .collect();
    let position = |f: &dyn Fn(&serde_json::Value) -> bool| events.iter().position(f);
    let ejected = position(&|e| {
        e["kind"] == "traffic_changing"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("web-1 fails: out of traffic"))
    })
    .unwrap_or_else(|| panic!("web-1 never left traffic on its own: {out}"));
    let rollback = position(&|e| e["kind"] == "rollback_started").expect("rollback_started");
    assert!(
        ejected < rollback,
        "web-1 left traffic before the start under way ended: {out}"
    );
    assert_eq!(events[ejected + 1]["kind"], "traffic_changed", "{out}");
    assert_eq!(
        env.served(&env.ports),
        ["v5", "v5", "v5"],
        "the previous release is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_deploy_is_refused_while_locked_and_abort_rolls_back() {
    let Some(env) = Env::new("second_deploy_is_refused", "nginx", "") else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A slow rollout in the background (long monitor)...
    let cfg = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("monitor = \"3s\"", "monitor = \"30s\"");
    std::fs::write(env.config(), cfg).unwrap();
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // ...and a second one is refused with the owner's name, exit 5.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        err.contains("E_LOCKED") && err.contains("locked by"),
        "{err}"
    );
    // --break-lock does not break a live lock.
    let (code, _, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--break-lock"]);
    assert_eq!(code, 5, "{err}");
    // Abort it: not without a reason, nor without --yes when no terminal
    // can ask (the console asks the same); then rolled back, lock
    // released, outcome aborted.
    let (code, out, err) = env.rollguard(&["abort", "web"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.starts_with("E_USAGE"), "{err}");
    assert!(err.contains("--reason TEXT --yes"), "{err}");
    let (code, out, err) = env.rollguard(&["abort", "web", "--reason", "test"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.starts_with("E_CONFIRM"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    let (code, _, err) = env.rollguard(&["abort", "web", "--reason", "test", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let mut outcome = String::new();
    for _ in 0..150 {
        let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
        let h: serde_json::Value = serde_json::from_str(&out).unwrap();
        if let Some(o) = h[0]["outcome"].as_str() {
            outcome = o.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(outcome, "aborted");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    assert!(out.contains("\"lock\":null"), "{out}");
    // Nothing left to abort.
    let (code, _, err) = env.rollguard(&["abort", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("E_NO_ROLLOUT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_lock_is_broken_only_when_asked_and_that_is_recorded() {
    let Some(env) = Env::new("abandoned_lock", "nginx", "") else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A rollout on another machine died long ago and left its lock.
    let db = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    db.execute(
        "INSERT INTO locks (app, deployment_id, owner_user, owner_host, owner_pid, reason, \
         acquired_ms, heartbeat_ms) VALUES ('web', NULL, 'bob', 'far-away', 4242, 'deploy v9', 1000, 1000)",
        [],
    )
    .unwrap();
    let (code, _, err) = env.rollguard(&["deploy", "web", "v2", "--yes"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("E_LOCKED") && err.contains("bob@far-away"),
        "{err}"
    );
    assert!(err.contains("--break-lock"), "the hint says how: {err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"], "nothing moved");

    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--break-lock"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
    let (reason, evidence): (String, String) = db
        .query_row(
            "SELECT reason, evidence FROM events WHERE kind = 'lock_broken'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(reason.contains("heartbeat"), "{reason}");
    assert!(
        evidence.contains("far-away") && evidence.contains("4242"),
        "{evidence}"
    );
}

#[test]
fn hostile_versions_and_unknown_apps_are_refused_before_anything_runs() {
    let dir = TempDir::new("hostile");
    std::fs::write(
        dir.join("rg.toml"),
        "[[app]]\nname = \"web\"\n[app.process]\nrun = \"/bin/true {version}\"\n[[app.instance]]\nname = \"w\"\nport = 1\n[[app.probe]]\nname = \"t\"\ntype = \"tcp\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(dir.join("rg.toml"))
            .arg("--db")
            .arg(dir.join("h.db"))
            .args(args)
            .output()
            .unwrap()
    };
    for v in [
        "v1;touch /tmp/rg-pwned",
        "$(id)",
        "../x",
        "-rf",
        "",
        "v1 v2",
    ] {
        let out = run(&["deploy", "--yes", "web", "--", v]);
        assert_eq!(out.status.code(), Some(2), "{v:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid version"), "{v:?}: {err}");
    }
    assert!(!Path::new("/tmp/rg-pwned").exists());
    let out = run(&["deploy", "nope", "v1", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    // Without a terminal and without --yes nothing runs.
    let out = run(&["deploy", "web", "v1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E_CONFIRM"));
}

/// While a rolling rollback restores, no instance seen failing serves: with
/// every instance on the failed release, web-1 and web-3 seen failing and
/// web-2 answering, web-2 serves alone until something restored does (not
/// web-3, the newest, which had been seen failing), and no request fails
/// from the moment the rollback starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_rollback_never_serves_from_an_instance_seen_failing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use common::rollout::{load, version_at};
    use common::wait_for;

    let Some(env) = Env::new("rollback_stand_in", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    env.edit_config("monitor = \"3s\"", "monitor = \"60s\"");
    // v8 fails its health checks and user requests while `bad-PORT` exists:
    // the test picks which instances fail, and when.
    env.release_failing_while_marked("v8", "", "--fail-requests");

    let (code, out, err) = env.rollguard(&["deploy", "web", "v8", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let p = env.ports.clone();
    let db = env.dir.join("history.db");
    let events = |kind: &str| -> Vec<(i64, i64, Option<String>)> {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut q = conn
            .prepare(
                "SELECT id, at_ms, evidence FROM events WHERE kind = ?1 AND deployment_id = \
                 (SELECT max(id) FROM deployments) ORDER BY id",
            )
            .unwrap();
        q.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    wait_for("the monitor stage", Duration::from_secs(30), || {
        p.iter().all(|&port| version_at(port) == "v8")
            && events("stage_started")
                .iter()
                .any(|(_, _, e)| e.as_deref().is_some_and(|e| e.contains("monitor")))
    });

    let stop = Arc::new(AtomicBool::new(false));
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let client = load(env.url(), 2, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for port in [p[0], p[2]] {
        std::fs::write(env.dir.join(&format!("bad-{port}")), "").unwrap();
    }
    wait_for("the rollback to end", Duration::from_secs(60), || {
        !events("rollback_completed").is_empty()
    });
    stop.store(true, Ordering::Relaxed);
    let seen = client.await.unwrap();
    assert_eq!(env.served(&p), ["v1", "v1", "v1"]);

    // From the rollback's start, web-1 and web-3 never serve v8: every
    // routing names them drained until each is restored.
    let rollback_at = events("rollback_started")[0].clone();
    // An instance is restored once its restore's gate passed: the gate
    // passed after the rollback started whose evidence names it.
    let restored_at = |name: &str| {
        (events("gate_passed").into_iter())
            .find(|(id, _, e)| {
                *id > rollback_at.0
                    && e.as_deref()
                        .is_some_and(|e| e.contains(&format!("\"instance\":\"{name}\"")))
            })
            .map_or(i64::MAX, |(id, _, _)| id)
    };
    for (id, _, e) in events("traffic_changed") {
        if id < rollback_at.0 {
            continue;
        }
        let e: serde_json::Value = serde_json::from_str(&e.unwrap()).unwrap();
        let describe = e["describe"].as_str().unwrap_or("").to_string();
        for name in ["web-1", "web-3"] {
            if id < restored_at(name) {
                assert!(
                    describe.contains(&format!("{name} drained")),
                    "{name} serves v8 during the rollback: {describe}"
                );
            }
        }
    }
    // And no request failed from the rollback's start on.
    let late: Vec<_> = (seen.failed.iter())
        .filter(|(t, _)| started_ms + t.as_millis() as i64 >= rollback_at.1)
        .collect();
    assert!(late.is_empty(), "failed during the rollback: {late:?}");
    assert!(seen.total() > 0);
}
