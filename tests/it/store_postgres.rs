//! rollguard with its history in PostgreSQL, as a bastion runs it: the
//! URL in `$ROLLGUARD_DB`, a real server (the tests' private cluster), and
//! real rollouts whose workers write there.

use crate::common;

use common::rollout::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_and_its_rollback_are_recorded_in_postgresql() {
    let Some(url) = common::postgres::database("rollout_in_postgres") else {
        return;
    };
    let Some(mut env) = Env::new("rollout_in_postgres", "nginx", "") else {
        return;
    };
    env.history_url = Some(url.clone());
    // A database without rollguard's tables reads as an empty history, and
    // reading creates nothing.
    let (code, out, err) = env.rollguard(&["history", "web"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = env.rollguard(&["events"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("has no rollguard tables"), "{err}");
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "install failed:\n{out}\n{err}");
    let (code, report, seen) = env.deploy_under_load("v2", &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "deployed");
    assert!(seen.failed.is_empty(), "{:?}", seen.some_failures());
    let (code, report, _) = env.deploy_under_load("v3", &[]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);

    // Nothing was written beside the config: the history is the server's.
    assert!(!env.dir.join("history.db").exists());
    let (code, out, err) = env.rollguard(&["history", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["rolled_back", "deployed", "deployed"], "{out}");
    let (code, out, err) = env.rollguard(&["events", "--app", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rollback"), "{out}");
    // The workers' logs are kept on this machine, in the default
    // history's folder; the password is nowhere in them or in what was
    // printed.
    let logs: Vec<String> = std::fs::read_dir(env.dir.join("data/rollguard/rollouts"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(logs.len(), 3, "one log per deploy");
    for text in logs.iter().chain([&out, &err]) {
        assert!(!text.contains(common::postgres::PASSWORD), "{text}");
    }
}

/// Runs `rollguard ARGS` with `env`; (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    common::output(
        common::rollguard_command()
            .args(args)
            .envs(env.iter().copied())
            .env_remove("ROLLGUARD_DB"),
    )
}

/// A history with a bit of everything: deployments with batches and
/// changes, events, results, an incident, a notification, a release.
fn fill(store: &mut rollguard::store::Store) {
    use rollguard::config::Strategy;
    use rollguard::model::*;
    for (to, outcome) in [("v1", Outcome::Deployed), ("v2", Outcome::RolledBack)] {
        let d = store
            .create_deployment(
                "web",
                None,
                to,
                Strategy::Rolling,
                "ana",
                Some("ship it"),
                &serde_json::json!({"kind": "deploy"}),
                &[],
            )
            .unwrap();
        let b = store
            .insert_batches(d, &[("batch", vec!["web-1".into()], None)])
            .unwrap()[0];
        store
            .record_change(
                d,
                Some(b),
                "web-1",
                ChangeAction::Start,
                None,
                Some(to),
                ChangeState::Done,
                Some(&serde_json::json!({"side": "main"})),
            )
            .unwrap();
        store
            .record_event("web", "rollout_started", "ana", Some("go"), None)
            .unwrap();
        store
            .finish_deployment(d, DeploymentState::Done, outcome)
            .unwrap();
        store.touch_release("web", to).unwrap();
    }
    let results: Vec<ProbeResult> = (0..2_500)
        .map(|i| ProbeResult {
            key: ProbeKey {
                app: "web".into(),
                instance: format!("web-{}", i % 3).into(),
                probe: "health".into(),
            },
            at_ms: 1_000 + i,
            ok: i % 7 != 0,
            latency_ms: if i == 5 { f64::NAN } else { i as f64 / 10.0 },
            code: Some(200),
            error_kind: (i % 7 == 0).then_some(ErrorKind::Timeout),
            message: "ünïcode ✓".into(),
        })
        .collect();
    store.insert_results(&results).unwrap();
}

#[test]
fn a_history_copied_into_postgresql_and_back_reads_the_same() {
    let Some(url) = common::postgres::database("store_copy") else {
        return;
    };
    let dir = common::TempDir::new("store-copy");
    let file = dir.join("history.db");
    fill(&mut rollguard::store::Store::open(&file).unwrap());
    let pw = [("PGPASSWORD", common::postgres::PASSWORD)];
    // The URL goes on the command line without its password.
    let bare = url.replace(&format!(":{}@", common::postgres::PASSWORD), "@");
    let file_s = file.to_str().unwrap();
    let (code, out, err) = run(&["store", "copy", "--from", file_s, "--to", &bare], &pw);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("every count matches"), "{out}");
    let results_line = out
        .lines()
        .find(|l| l.starts_with("probe_results"))
        .unwrap();
    assert!(results_line.ends_with(" 2500         2500"), "{out}");

    // The same history read from either store, and from a file copied back.
    let back = dir.join("back.db");
    let back_s = back.to_str().unwrap();
    let (code, out, err) = run(&["store", "copy", "--from", &bare, "--to", back_s], &pw);
    assert_eq!(code, 0, "{out}\n{err}");
    for args in [
        vec!["history", "web", "--json"],
        vec!["events", "--json"],
        vec!["report", "web", "--since", "1970-01-01T00:00:00Z", "--json"],
    ] {
        let read = |db: &str| {
            let mut a = vec!["--db", db];
            a.extend(args.iter().copied());
            let (code, out, err) = run(&a, &pw);
            assert_eq!(code, 0, "{args:?} on {db}: {err}");
            if args[0] != "report" {
                return out;
            }
            // A report ends now: its end differs run to run.
            let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
            for key in ["until", "until_ms"] {
                v.as_object_mut().unwrap().remove(key);
            }
            v.to_string()
        };
        let from_file = read(file_s);
        assert_eq!(
            read(&bare),
            from_file,
            "{args:?}: the file and PostgreSQL differ"
        );
        assert_eq!(read(back_s), from_file, "{args:?}: the copy back differs");
    }

    // A target that holds a history is refused, and nothing changes.
    let (code, _, err) = run(&["store", "copy", "--from", file_s, "--to", &bare], &pw);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("E_STORE: "), "{err}");
    assert!(err.contains("already holds a history"), "{err}");
    // A source whose rollout still runs (its lock heartbeats) is refused.
    let source = rollguard::store::Store::open(&file).unwrap();
    let owner = rollguard::store::LockOwner {
        user: "ana".into(),
        host: "bastion-a".into(),
        pid: 4242,
        start: None,
    };
    source
        .try_lock("web", &owner, "deploy", None)
        .unwrap()
        .unwrap();
    let fresh = common::postgres::database("store_copy_running").unwrap();
    let fresh = fresh.replace(&format!(":{}@", common::postgres::PASSWORD), "@");
    let (code, _, err) = run(&["store", "copy", "--from", file_s, "--to", &fresh], &pw);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a rollout of web is running"), "{err}");
    // A password on the command line is refused, and so is another scheme.
    let (code, _, err) = run(&["store", "copy", "--from", file_s, "--to", &url], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains(common::postgres::PASSWORD), "{err}");
    let (code, _, err) = run(
        &["store", "copy", "--from", file_s, "--to", "mysql://x@y/z"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mysql://"), "{err}");
}

#[test]
fn a_restarted_server_is_connected_to_again_and_no_result_is_lost() {
    use rollguard::model::{ProbeKey, ProbeResult, now_ms};
    use rollguard::store::{Location, LocationSource, ResultWriter, SharedStore, with_store};
    use std::time::Duration;
    let Some(pg) = common::postgres::private("pg_restart") else {
        return;
    };
    let url = pg.database("restart");
    let location = Location::parse(&url, LocationSource::Environment, &|_| None).unwrap();
    let shared = SharedStore::default();
    let note = |what: &str| {
        with_store(&location, &shared, |s| {
            s.record_event("web", what, "ana", None, None)
                .map_err(|e| e.message())
        })
    };
    note("before").unwrap();
    let writer = ResultWriter::spawn(&location, Duration::from_secs(86_400)).unwrap();
    let results = |from: i64| {
        (from..from + 100).map(|i| ProbeResult {
            key: ProbeKey {
                app: "web".into(),
                instance: "web-1".into(),
                probe: "health".into(),
            },
            at_ms: now_ms() + i,
            ok: true,
            latency_ms: 1.0,
            code: Some(200),
            error_kind: None,
            message: String::new(),
        })
    };
    for r in results(0) {
        writer.send(r);
    }
    common::wait_for("the first results written", Duration::from_secs(20), || {
        writer.stats().written == 100
    });

    pg.restart();
    // A store whose connection ended says so once, then connects again.
    if let Err(e) = note("right after the restart") {
        assert!(e.contains("connection"), "{e}");
    }
    note("after the restart").unwrap();
    // The writer connects again and loses nothing.
    for r in results(100) {
        writer.send(r);
    }
    common::wait_for("every result written", Duration::from_secs(30), || {
        writer.stats().written == 200
    });
    let stats = writer.shutdown();
    assert_eq!((stats.written, stats.failed), (200, 0), "{stats:?}");
    let count = with_store(&location, &shared, |s| {
        s.result_count().map_err(|e| e.message())
    });
    assert_eq!(count.unwrap(), 200);
}
