//! What the records of a rollout say after a crash, a broken lock and a
//! manual rollback, and how the command line reads them: each of these was
//! a reproduced bug (a later deploy undone by recovery, status listing old
//! versions on instances that already run the new one, `--to` read
//! silently, rollbacks listed as deploys, misspelt apps answered with an
//! empty table, escape sequences printed raw).

use crate::common;

use std::time::Duration;

use common::rollout::{Env, kill9, version_at, worker_pid};
use common::wait_for;

/// Deploys v2 detached and kills its worker once web-1 serves v2.
fn interrupted_v2(env: &Env) {
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let p = env.ports[0];
    wait_for("v2 on web-1", Duration::from_secs(20), || {
        version_at(p) == "v2"
    });
    let pid = worker_pid(env);
    kill9(pid);
    let gone = move || {
        // SAFETY: signal 0 only checks that the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        let zombie =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"));
        !exists || zombie
    };
    wait_for("the worker to die", Duration::from_secs(5), gone);
}

#[test]
fn status_shows_what_runs_and_break_lock_supersedes_the_interrupted_rollout() {
    let Some(env) = Env::new("records_supersede", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    interrupted_v2(&env);

    // Status shows what runs, not what was recorded before the rollout.
    let (code, out, err) = env.rollguard(&["status", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["interrupted"], true, "{status:#}");
    // web-1 was being moved when the worker died: what runs there is what
    // its driver says, never the version recorded before the rollout.
    let web1 = &status[0]["instances"][0];
    assert_eq!(web1["asked_driver"], true, "{status:#}");
    assert_eq!(web1["version"], "v2", "web-1 runs v2: {status:#}");
    assert_eq!(status[0]["instances"][2]["version"], "v1", "{status:#}");

    // Breaking the lock settles the interrupted deployment before the new
    // one starts; recovery afterwards has nothing to undo.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--break-lock"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("superseded"), "{out}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
    let (code, out, err) = env.rollguard(&["recover", "web", "--rollback"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("E_NO_ROLLOUT"), "{err}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"], "nothing undone");

    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["interrupted"], false, "{status:#}");
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let history: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        outcomes,
        ["deployed", "superseded", "deployed"],
        "{history:#}"
    );
    let superseded = &history[1];
    assert!(
        superseded["batches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["state"] != "pending" && b["state"] != "running"),
        "no batch of a settled deployment is left open: {superseded:#}"
    );
    // web-1 was changed in the first batch: it was interrupted, not skipped.
    assert!(
        matches!(
            superseded["batches"][0]["state"].as_str(),
            Some("interrupted" | "passed")
        ),
        "{superseded:#}"
    );
    assert!(
        superseded["batches"][0]["ended_at_ms"].is_i64(),
        "{superseded:#}"
    );
}

#[test]
fn rollback_says_how_it_read_to_and_history_lists_it_as_a_rollback() {
    let Some(env) = Env::new("records_rollback", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    env.deploy_ok("v2", "rolling");

    let (code, _, err) = env.rollguard(&["rollback", "web", "--to", "", "--reason", "x"]);
    assert_eq!(code, 2, "an empty --to is a usage error: {err}");
    assert!(err.contains("E_USAGE"), "{err}");

    // `7` names no deployment: it is read as a version, and said so.
    let (code, out, err) =
        env.rollguard(&["rollback", "web", "--to", "7", "--reason", "x", "--dry-run"]);
    assert_ne!(code, 0);
    assert!(out.contains("read as version 7"), "{out}\n{err}");

    // `1` is a deployment of web (v1): it is read as that deployment.
    let (code, out, err) =
        env.rollguard(&["rollback", "web", "--to", "1", "--reason", "x", "--dry-run"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("read as deployment 1 (v1)"), "{out}");
    assert!(
        !out.contains("major version jump"),
        "v2 → v1 is no major jump: {out}"
    );
    let (code, out, err) = env.rollguard(&[
        "rollback",
        "web",
        "--to",
        "version:v1",
        "--reason",
        "x",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("read as version v1"), "{out}");

    let reason = "v2 \u{1b}]0;owned\u{7}breaks checkout";
    let (code, out, err) = env.rollguard(&["rollback", "web", "--reason", reason, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains('\u{1b}'),
        "no raw escape reaches the terminal: {out:?}"
    );
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    let (code, out, _) = env.rollguard(&["history", "web"]);
    assert_eq!(code, 0);
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let newest = out.lines().nth(1).unwrap_or("");
    assert!(
        newest.contains("rollback"),
        "a manual rollback is listed as one: {out}"
    );
    assert!(newest.contains("breaks checkout"), "with its reason: {out}");
    assert!(
        newest.contains("\\x1b"),
        "the escape is shown, not sent: {out}"
    );
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let history: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(history[0]["kind"], "rollback", "{history:#}");
    assert!(
        history[0]["started_at_ms"].as_i64().is_some(),
        "{history:#}"
    );
    assert_eq!(history[1]["kind"], "deploy");
}

#[test]
fn an_unknown_app_is_a_usage_error_that_lists_the_apps() {
    let Some(env) = Env::new("records_unknown_app", "nginx", "") else {
        return;
    };
    for args in [
        &["history", "nosuch"][..],
        &["status", "nosuch"][..],
        &["approve", "nosuch"][..],
        &["hold", "nosuch", "--reason", "x"][..],
        &["pause", "nosuch"][..],
        &["abort", "nosuch", "--reason", "x"][..],
        &["recover", "nosuch", "--rollback"][..],
    ] {
        let (code, out, err) = env.rollguard(args);
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(
            err.contains("E_USAGE") && err.contains("apps: web"),
            "{args:?}: {err}"
        );
    }
    // A known app with nothing running is told so.
    let (code, _, err) = env.rollguard(&["approve", "web"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("E_NO_ROLLOUT"), "{err}");
}

#[test]
fn an_empty_history_file_is_refused_and_nothing_moves() {
    let Some(env) = Env::new("records_empty_db", "nginx", "") else {
        return;
    };
    std::fs::write(env.dir.join("history.db"), b"").unwrap();
    for args in [
        &["deploy", "web", "v1", "--yes"][..],
        &["status", "web"][..],
        &["history", "web"][..],
    ] {
        let (code, out, err) = env.rollguard(args);
        assert_eq!(code, 1, "{args:?}: {out}\n{err}");
        assert!(err.contains("E_STORE"), "{args:?}: {err}");
    }
    assert_eq!(
        env.served(&env.ports),
        ["down", "down", "down"],
        "nothing started"
    );
    assert_eq!(
        std::fs::metadata(env.dir.join("history.db")).unwrap().len(),
        0
    );
}

#[test]
fn resume_of_a_bad_release_never_snapshots_what_the_rollout_started() {
    let Some(env) = Env::new("records_resume_bad", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    // v3 turns bad 1.5 s after it starts: kill its worker while web-1
    // runs it, before its gate has decided.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v3", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let p = env.ports[0];
    wait_for("v3 on web-1", Duration::from_secs(20), || {
        version_at(p) == "v3"
    });
    let pid = worker_pid(&env);
    kill9(pid);
    wait_for("the worker to die", Duration::from_secs(5), || {
        // SAFETY: signal 0 only checks that the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        !exists
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    });

    // Resuming replaces web-1 again; its gate then fails and the rollback
    // must put v1 back everywhere, from the snapshot taken before the
    // rollout, never one of v3.
    let (code, out, err) = env.rollguard(&["recover", "web", "--resume", "--json"]);
    assert_eq!(code, 3, "rolled back, not partial: {out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["outcome"], "rolled_back", "{report:#}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    let id = report["id"].as_i64().unwrap();
    let mut stmt = conn
        .prepare("SELECT data FROM snapshots WHERE deployment_id = ?1")
        .unwrap();
    let versions: Vec<String> = stmt
        .query_map([id], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_str(&d.unwrap()).unwrap();
            v["snapshot"]["version"].as_str().unwrap_or("-").to_string()
        })
        .collect();
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|v| v == "v1"),
        "a snapshot is only of what ran before the rollout: {versions:?}"
    );
}

/// The states of the batches of a `deploy --json` report, in order.
fn batch_states(report: &serde_json::Value) -> Vec<String> {
    report["batches"]
        .as_array()
        .unwrap_or_else(|| panic!("no batches: {report:#}"))
        .iter()
        .map(|b| b["state"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[test]
fn the_failed_batch_is_the_one_whose_instance_failed() {
    let Some(env) = Env::new("records_failed_batch", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    // v8 fails its health checks while `bad-PORT` exists; its start on
    // web-2 creates web-1's, so web-1 (batch 0) goes bad while batch 1
    // starts, whatever the machine's speed.
    let d = env.dir.0.display();
    let (p1, p2) = (env.ports[0], env.ports[1]);
    env.release_failing_while_marked(
        "v8",
        &format!("if [ \"$2\" = {p2} ]; then : > '{d}/bad-{p1}'; fi\n"),
        "",
    );

    // Rolled back: web-1's batch failed; web-2's, which ran when it
    // failed, was undone; the rest never ran.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v8", "--yes", "--json"]);
    assert_eq!(code, 3, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["outcome"], "rolled_back", "{report:#}");
    assert!(
        report["rollback"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("web-1")),
        "{report:#}"
    );
    assert_eq!(report["batches"][0]["instances"][0], "web-1", "{report:#}");
    assert_eq!(
        batch_states(&report),
        ["failed", "rolled_back", "skipped", "skipped"],
        "{report:#}"
    );
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // Left as it is: web-1's batch failed, web-2's was interrupted.
    std::fs::remove_file(env.dir.join(&format!("bad-{p1}"))).unwrap();
    env.edit_config(
        "step_pause = \"2s\"",
        "step_pause = \"2s\"\nauto_rollback = \"off\"",
    );
    let (code, out, err) = env.rollguard(&["deploy", "web", "v8", "--yes", "--json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["outcome"], "failed", "{report:#}");
    assert_eq!(
        batch_states(&report),
        ["failed", "interrupted", "skipped", "skipped"],
        "{report:#}"
    );
}
