//! Rolling with `surge = true`: each batch starts beside the old side,
//! traffic switches, and the old side keeps running until `monitor` ends,
//! so a bad release is rolled back by switching traffic back. Real
//! processes behind a real nginx and HAProxy, under load, through the
//! `rollguard` binary.

mod common;

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
