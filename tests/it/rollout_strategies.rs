//! Blue-green behind a real HAProxy and canary behind a real nginx, each
//! with a good and a bad release, plus `confirm` mode (and what serves
//! while it waits), on the process driver. A client sends requests through the balancer without pause.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::rollout::{Env, load};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_green_behind_haproxy_switches_and_switches_back_without_failed_requests() {
    let Some(env) = Env::new("blue_green_behind_haproxy", "haproxy", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");

    let (code, report, seen) = env
        .deploy_under_load("v2", &["--strategy", "blue-green"])
        .await;
    assert_eq!(code, 0, "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during blue-green: {:?}",
        seen.some_failures()
    );
    assert!(
        seen.ok.contains_key("v1") && seen.ok.contains_key("v2"),
        "{seen:?}"
    );
    // The new set runs on the alt ports; the old one is stopped (kept).
    assert_eq!(env.served(&env.alt_ports), ["v2", "v2", "v2"]);
    assert_eq!(env.served(&env.ports), ["down", "down", "down"]);
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        s[0]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["live_side"] == "alt"),
        "the live side is remembered: {s}"
    );

    // A bad release on the idle (main) side: switched to, fails under
    // monitoring, traffic switches back at once; the new set is stopped.
    // It turns bad once the monitor begins (after the switch), whatever
    // the machine's load made of the gate's time.
    env.release_failing_while_marked("v8", "", "");
    let marker = turn_bad_when_monitored(&env);
    let (code, report, seen) = env
        .deploy_under_load("v8", &["--strategy", "blue-green"])
        .await;
    marker.join().unwrap();
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back");
    assert!(
        seen.failed.is_empty(),
        "failed requests during a blue-green rollback: {:?}",
        seen.some_failures()
    );
    assert_eq!(env.served(&env.alt_ports), ["v2", "v2", "v2"]);
    assert_eq!(env.served(&env.ports), ["down", "down", "down"]);

    // Every traffic change is recorded when it starts and when it is done.
    let db = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    let kinds: Vec<String> = db
        .prepare(
            "SELECT kind FROM events WHERE deployment_id = (SELECT max(id) FROM deployments) \
             AND kind IN ('traffic_changing', 'traffic_changed') ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(kinds.len() >= 4, "switch and switch back: {kinds:?}");
    for pair in kinds.chunks(2) {
        assert_eq!(pair, ["traffic_changing", "traffic_changed"], "{kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_behind_nginx_promotes_a_good_release_and_cuts_a_bad_one_quickly() {
    let Some(env) = Env::new("canary_behind_nginx", "nginx", "") else {
        return;
    };
    // The last step sends all traffic to the canary: promotion must then
    // keep serving while it replaces the instances the canary runs beside.
    env.edit_config("steps = [25, 50]", "steps = [25, 50, 100]");
    env.deploy_ok("v1", "rolling");

    let (code, report, seen) = env.deploy_under_load("v2", &["--strategy", "canary"]).await;
    assert_eq!(code, 0, "{report}");
    let steps: Vec<f64> = report["batches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["traffic_percent"].as_f64())
        .collect();
    assert_eq!(steps, [25.0, 50.0, 100.0]);
    assert!(
        seen.failed.is_empty(),
        "failed requests during a good canary: {:?}",
        seen.some_failures()
    );
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"], "promoted");
    assert_eq!(
        env.served(&env.alt_ports),
        ["down", "down", "down"],
        "canary removed"
    );

    // v4 fails user requests once it goes bad. Its failures must stop
    // within one detection window: failure_threshold × interval, plus a
    // probe timeout and the time to move traffic.
    let (code, report, seen) = env.deploy_under_load("v4", &["--strategy", "canary"]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back");
    let window = Duration::from_millis(2 * 250 + 500 + 1500);
    if let (Some(first), Some(last)) = (seen.failed.first(), seen.failed.last()) {
        assert!(
            last.0 - first.0 <= window,
            "bad canary failures lasted {:?} (> {window:?}): {:?}",
            last.0 - first.0,
            seen.some_failures()
        );
    }
    assert!(seen.ok.get("v2").copied().unwrap_or(0) > 50, "{seen:?}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
    assert_eq!(
        env.served(&env.alt_ports),
        ["down", "down", "down"],
        "canary removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_mode_fires_holds_and_times_out() {
    let Some(env) = Env::new(
        "confirm_mode",
        "nginx",
        "auto_rollback = \"confirm\"\nconfirm_window = \"2s\"",
    ) else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let armed = |env: &Env| {
        let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
        out.contains("rollback_armed") || out.contains("rollback_held")
    };

    // Timed out: the armed rollback fires by itself after the window.
    let started = std::time::Instant::now();
    let (code, _, err) = env.rollguard(&["deploy", "web", "v3", "--yes"]);
    assert_eq!(code, 3, "{err}");
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Held: nothing happens until an operator fires.
    let (code, _, err) = env.rollguard(&["deploy", "web", "v3", "--yes", "--detach"]);
    assert_eq!(code, 0, "{err}");
    let mut waited = 0;
    while !armed(&env) && waited < 200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(armed(&env), "the rollback was never armed");
    let (code, _, err) = env.rollguard(&["hold", "web", "--reason", "looking"]);
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    assert!(out.contains("rollback_held"), "held past the window: {out}");
    // fire needs a reason, and --yes where no terminal can ask.
    let (code, _, err) = env.rollguard(&["fire", "web"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("E_USAGE") && err.contains("--reason"),
        "{err}"
    );
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    assert!(out.contains("rollback_held"), "still held: {out}");
    let (code, _, err) = env.rollguard(&["fire", "web", "--reason", "held long enough", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let mut outcome = String::new();
    for _ in 0..150 {
        let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
        let h: serde_json::Value = serde_json::from_str(&out).unwrap();
        if let Some(o) = h[0]["outcome"].as_str() {
            outcome = o.into();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(outcome, "rolled_back");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // Fired early: well before the window ends.
    let (code, _, err) = env.rollguard(&["deploy", "web", "v3", "--yes", "--detach"]);
    assert_eq!(code, 0, "{err}");
    while !armed(&env) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fired = std::time::Instant::now();
    env.rollguard(&["fire", "web", "--reason", "obviously bad", "--yes"]);
    loop {
        let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
        let h: serde_json::Value = serde_json::from_str(&out).unwrap();
        if h[0]["outcome"].is_string() {
            assert_eq!(h[0]["outcome"], "rolled_back");
            break;
        }
        assert!(fired.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// While an armed (then held) rollback waits for a person, the instance
/// seen failing is out of traffic: users meet no error meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_armed_rollback_serves_nothing_from_the_failing_instance() {
    let Some(env) = Env::new(
        "armed_out_of_traffic",
        "nginx",
        "auto_rollback = \"confirm\"\nconfirm_window = \"60s\"",
    ) else {
        return;
    };
    // web-1 goes bad during the pause after its batch; web-2 and web-3
    // still run v1.
    env.edit_config("pause = \"0s\"", "pause = \"5s\"");
    env.deploy_ok("v1", "rolling");
    let (code, out, err) = env.rollguard(&["deploy", "web", "v4", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut waited = 0;
    while active_state(&env).as_deref() != Some("rollback_armed") && waited < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(active_state(&env).as_deref(), Some("rollback_armed"));
    // `status` says when it fires by itself, in words and in JSON.
    let (_, out, _) = env.rollguard(&["status", "web"]);
    assert!(out.contains("the rollback of v4 fires in "), "{out}");
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let left = s[0]["active"][0]["fires_in_s"].as_i64().unwrap_or(-1);
    assert!((1..=60).contains(&left), "{s}");
    let stop = Arc::new(AtomicBool::new(false));
    let client = load(env.url(), 2, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, _, err) = env.rollguard(&["hold", "web", "--reason", "looking"]);
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = client.await.unwrap();
    assert_eq!(active_state(&env).as_deref(), Some("rollback_held"));
    assert!(
        seen.failed.is_empty(),
        "requests failed while the rollback waited: {:?}",
        seen.some_failures()
    );
    assert_eq!(seen.ok.get("v4"), None, "{seen:?}");
    assert!(seen.total() > 0);
    let (code, _, err) = env.rollguard(&["fire", "web", "--reason", "v4 fails", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let mut waited = 0;
    while active_state(&env).is_some() && waited < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
}

/// The state of the app's unfinished deployment, if any.
fn active_state(env: &Env) -> Option<String> {
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).ok()?;
    s[0]["active"][0]["state"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_canary_steps_wait_for_approve() {
    let Some(env) = Env::new("manual_canary", "nginx", "") else {
        return;
    };
    env.edit_config("step_pause = \"2s\"", "step_pause = \"manual\"");
    env.deploy_ok("v1", "rolling");

    let (code, out, err) = env.rollguard(&[
        "deploy",
        "web",
        "v2",
        "--yes",
        "--detach",
        "--strategy",
        "canary",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Each of the two steps (25%, 50%) waits for an operator, however long.
    let mut approvals = 0;
    let started = std::time::Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the canary did not finish after {approvals} approvals"
        );
        match active_state(&env).as_deref() {
            Some("waiting_approval") => {
                // It stays waiting: nothing moves without an approval.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                assert_eq!(
                    active_state(&env).as_deref(),
                    Some("waiting_approval"),
                    "a manual step went on by itself"
                );
                let (code, _, err) = env.rollguard(&["approve", "web", "--reason", "looks good"]);
                assert_eq!(code, 0, "{err}");
                approvals += 1;
                // Wait until the worker has taken it.
                let taken = std::time::Instant::now();
                while active_state(&env).as_deref() == Some("waiting_approval")
                    && taken.elapsed() < Duration::from_secs(10)
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            None => break,
        }
    }
    assert_eq!(approvals, 2, "one approval per step");
    let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h[0]["outcome"], "deployed", "{h}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
    // The approvals are in the audit log with their actor and reason.
    let db = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    let approved: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind LIKE '%approve%' AND reason = 'looks good'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(approved >= 2, "{approved} approvals recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_auto_rollback_off_a_failed_switch_is_left_and_the_next_deploy_plans_from_it() {
    let Some(env) = Env::new("rollback_off", "nginx", "auto_rollback = \"off\"") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    env.deploy_ok("v2", "blue-green");

    // v3 goes live on the main ports, fails while monitored, and stays:
    // "off" only reports. The history says main is live and runs v3.
    let (code, out, err) = env.rollguard(&[
        "deploy",
        "web",
        "v3",
        "--yes",
        "--json",
        "--strategy",
        "blue-green",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("no JSON ({e}):\n{out}\n{err}"));
    assert_eq!(report["outcome"], "failed", "{report}");
    assert_eq!(code, 1, "{report}");
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    for i in s[0]["instances"].as_array().unwrap() {
        assert_eq!(i["live_side"], "main", "{s}");
        assert_eq!(i["version"], "v3", "{s}");
    }

    // So the next blue-green starts on the idle alt side and switches
    // without stopping what serves traffic.
    let (code, report, seen) = env
        .deploy_under_load("v2", &["--strategy", "blue-green"])
        .await;
    assert_eq!(code, 0, "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests: {:?}",
        seen.some_failures()
    );
    assert_eq!(env.served(&env.alt_ports), ["v2", "v2", "v2"]);
}

/// Marks every instance's main side bad (`bad-PORT`, read by a release of
/// `release_failing_while_marked`) once the monitor stage of the deployment
/// to v8 has begun; gives up after a minute.
fn turn_bad_when_monitored(env: &Env) -> std::thread::JoinHandle<()> {
    let db = env.dir.join("history.db");
    let marks: Vec<_> = (env.ports.iter())
        .map(|p| env.dir.join(&format!("bad-{p}")))
        .collect();
    std::thread::spawn(move || {
        let monitoring = || {
            let Ok(conn) = rusqlite::Connection::open(&db) else {
                return false;
            };
            conn.query_row(
                "SELECT count(*) FROM events WHERE kind = 'stage_started' AND evidence LIKE \
                 '%monitor%' AND deployment_id = (SELECT max(id) FROM deployments WHERE to_version = 'v8')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
                > 0
        };
        common::wait_for("the monitor stage", Duration::from_secs(60), monitoring);
        for m in &marks {
            std::fs::write(m, "").unwrap();
        }
    })
}
