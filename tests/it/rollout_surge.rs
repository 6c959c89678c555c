//! Rolling with `surge = true`: each batch starts beside the old side,
//! traffic switches, and the old side keeps running until `monitor` ends,
//! so a bad release is rolled back by switching traffic back. Real
//! processes behind a real nginx and HAProxy, under load, through the
//! `rollguard` binary.

use crate::common;

use common::rollout::{Env, version_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn surge_behind_nginx_upgrades_and_rolls_back_by_switching_traffic() {
    surge("surge_behind_nginx", "nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn surge_behind_haproxy_upgrades_and_rolls_back_by_switching_traffic() {
    surge("surge_behind_haproxy", "haproxy").await;
}

async fn surge(test: &str, lb: &str) {
    let Some(env) = Env::new(test, lb, "surge = true") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    let (code, report, seen) = env.deploy_under_load("v2", &[]).await;
    assert_eq!(code, 0, "{report}");
    let kinds: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "stage_started")
        .filter_map(|e| e["evidence"]["stage"]["stage"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "start_idle",
            "switch_batch",
            "start_idle",
            "switch_batch",
            "start_idle",
            "switch_batch",
            "monitor",
            "retire"
        ]
    );
    assert!(
        seen.failed.is_empty(),
        "failed requests during a good surge: {:?}",
        seen.some_failures()
    );
    // The new release serves on the alt ports; the old main sides are
    // retired once monitoring is over.
    assert_eq!(env.served(&env.alt_ports), ["v2", "v2", "v2"]);
    assert_eq!(env.served(&env.ports), ["down", "down", "down"]);

    // v3 passes its gates, then fails while monitored: the old sides still
    // run, so the rollback switches traffic back and stops the new sides.
    let (code, report, seen) = env.deploy_under_load("v3", &[]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during a surge rollback: {:?}",
        seen.some_failures()
    );
    assert_eq!(env.served(&env.alt_ports), ["v2", "v2", "v2"]);
    assert!(env.ports.iter().all(|p| version_at(*p) != "v3"));
    // Restored without a restart: only the new (main) sides were stopped;
    // the old sides on alt ports kept running and took traffic back.
    let restores: Vec<&serde_json::Value> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "restore")
        .collect();
    assert!(!restores.is_empty(), "{report}");
    assert!(
        restores
            .iter()
            .all(|c| c["detail"]["side"] == "main" && c["state"] == "done"),
        "{restores:#?}"
    );
    // The record says what was put back: v3 replaced by v2 again.
    assert!(
        restores
            .iter()
            .all(|c| c["from_version"] == "v3" && c["to_version"] == "v2"),
        "{restores:#?}"
    );
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    for i in status[0]["instances"].as_array().unwrap() {
        assert_eq!(i["version"], "v2", "{status:#}");
        assert_eq!(i["live_side"], "alt", "{status:#}");
    }
}

/// With `surge`, one instance of the new release failing its probes sends
/// every instance's users back to the old release still running beside it;
/// once it answers again, the others come back to the new release a probe
/// later, while the one that failed waits for its gate.
#[test]
fn a_failing_instance_makes_its_release_hand_traffic_back_until_it_answers() {
    use std::time::Duration;

    use common::wait_for;

    let Some(env) = Env::new("surge_suspect", "nginx", "surge = true") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    env.edit_config("monitor = \"3s\"", "monitor = \"60s\"");
    // A spell of failures shorter than the threshold fails no gate.
    env.edit_config("failure_threshold = 2", "failure_threshold = 40");
    // v8 fails its health checks while `bad-PORT` exists.
    env.release_failing_while_marked("v8", "", "");
    let (code, out, err) = env.rollguard(&["deploy", "web", "v8", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");

    let db = env.dir.join("history.db");
    let last_routing = || -> String {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT json_extract(evidence, '$.describe') FROM events WHERE kind = \
             'traffic_changed' AND deployment_id = (SELECT max(id) FROM deployments) \
             ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .ok()
        .flatten()
        .unwrap_or_default()
    };
    let monitoring = || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT count(*) FROM events WHERE kind = 'stage_started' AND evidence LIKE \
             '%monitor%' AND deployment_id = (SELECT max(id) FROM deployments)",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_or(0)
            > 0
    };
    wait_for("the monitor stage", Duration::from_secs(30), monitoring);
    assert_eq!(
        last_routing(),
        "web-1 drained, web-2 drained, web-3 drained, web-1-alt 33%, web-2-alt 33%, web-3-alt 33%"
    );

    // web-2's v8 fails: every instance serves v1 from its old side.
    let bad = env.dir.join(&format!("bad-{}", env.alt_ports[1]));
    std::fs::write(&bad, "").unwrap();
    wait_for("users back on v1", Duration::from_secs(10), || {
        last_routing() == "web-1 33%, web-2 33%, web-3 33%"
    });
    // It answers again: web-1 and web-3 go back to v8 a probe later;
    // web-2 waits for its gate (the monitor's end).
    std::fs::remove_file(&bad).unwrap();
    let back = "web-1 drained, web-2 33%, web-3 drained, web-1-alt 33%, web-3-alt 33%";
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while last_routing() != back {
        assert!(std::time::Instant::now() < end, "{}", last_routing());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _, err) = env.rollguard(&["abort", "web", "--reason", "seen enough", "--yes"]);
    assert_eq!(code, 0, "{err}");
    wait_for("the rollback", Duration::from_secs(30), || {
        env.served(&env.ports) == ["v1", "v1", "v1"] && !monitoring_still(&env)
    });
}

/// Whether a rollout of web is still unfinished.
fn monitoring_still(env: &Env) -> bool {
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    s[0]["active"].as_array().is_some_and(|a| !a.is_empty())
}
