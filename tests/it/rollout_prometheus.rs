//! Canary rollouts judged by a real Prometheus: a comparison probe asks it
//! a value for the canary's port and for each old instance's port, and
//! compares them (`[CANARY] <= [BASELINE] * 1.2 + 0.01`). Prometheus
//! scrapes a small exporter the test controls: a canary whose error ratio
//! rises above its baseline's is rolled back with both values in the
//! evidence; one whose ratio stays level is promoted; a query with no data
//! is handled as `on_no_data` says. Behind a real nginx, with process
//! instances, through the `rollguard` binary.

use crate::common;

use std::time::Duration;

use common::prometheus::{Exporter, Prometheus};
use common::rollout::{Env, version_at};
use common::wait_for;

/// The exporter's text: `app_error_ratio` per port.
fn ratios(ports: &[(u16, f64)]) -> String {
    let mut text = String::from("# TYPE app_error_ratio gauge\n");
    for (port, ratio) in ports {
        text.push_str(&format!("app_error_ratio{{port=\"{port}\"}} {ratio}\n"));
    }
    text
}

/// The comparison probe, asking Prometheus on `prom` for `metric`.
fn comparison(prom: u16, metric: &str, on_no_data: &str) -> String {
    format!(
        r#"
[[app.probe]]
name = "errors"
type = "prometheus"
url = "http://127.0.0.1:{prom}"
query = 'max({metric}{{port="{{port}}"}})'
conditions = ["[CANARY] <= [BASELINE] * 1.2 + 0.01"]
on_no_data = "{on_no_data}"
timeout = "1s"
"#
    )
}

/// Every port of `env` at `ratio`.
fn level(env: &Env, ratio: f64) -> Vec<(u16, f64)> {
    env.ports
        .iter()
        .chain(&env.alt_ports)
        .map(|p| (*p, ratio))
        .collect()
}

/// `rollguard deploy web VERSION --strategy canary --yes --json`: exit
/// code and report.
fn deploy_canary(env: &Env, version: &str) -> (i32, serde_json::Value) {
    let (code, out, err) = env.rollguard(&[
        "deploy",
        "web",
        version,
        "--strategy",
        "canary",
        "--yes",
        "--json",
    ]);
    let report = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("deploy printed no JSON ({e}):\n{out}\n{err}"));
    (code, report)
}

/// Every JSON object inside `v` whose `probe` is `probe`.
fn evidence_of<'a>(v: &'a serde_json::Value, probe: &str, out: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("probe").and_then(|p| p.as_str()) == Some(probe) {
                out.push(v);
            }
            m.values().for_each(|x| evidence_of(x, probe, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| evidence_of(x, probe, out)),
        _ => {}
    }
}

/// Starts the exporter, a Prometheus scraping it and the app with the
/// comparison probe (`metric`, `on_no_data`), with v1 installed.
async fn setup(test: &str, metric: &str, on_no_data: &str) -> Option<(Exporter, Prometheus, Env)> {
    let exporter = Exporter::start("").await;
    let prom = Prometheus::start(test, exporter.port)?;
    let env = Env::new(test, "nginx", &comparison(prom.port, metric, on_no_data))?;
    exporter.set(&ratios(&level(&env, 0.01)));
    prom.wait_for(
        &format!("app_error_ratio{{port=\"{}\"}}", env.alt_ports[0]),
        "scraped",
        |v| v > 0.0,
    );
    env.deploy_ok("v1", "rolling");
    Some((exporter, prom, env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_whose_error_ratio_rises_above_its_baseline_is_rolled_back_with_both_values() {
    let test = "canary_ratio_rises";
    let Some((exporter, _prom, env)) = setup(test, "app_error_ratio", "fail").await else {
        return;
    };
    // On cue: once the canary serves, its port's error ratio rises.
    let alt_ports = env.alt_ports.clone();
    let mut rising = level(&env, 0.01);
    let cue = std::thread::spawn(move || {
        let mut canary = None;
        wait_for("the canary to serve v2", Duration::from_secs(30), || {
            canary = alt_ports.iter().copied().find(|p| version_at(*p) == "v2");
            canary.is_some()
        });
        let canary = canary.unwrap();
        for (port, ratio) in &mut rising {
            if *port == canary {
                *ratio = 0.3;
            }
        }
        (canary, rising)
    });
    let set = tokio::task::spawn_blocking(move || {
        let (canary, rising) = cue.join().unwrap();
        exporter.set(&ratios(&rising));
        (canary, exporter)
    });
    let (code, report) = tokio::task::block_in_place(|| deploy_canary(&env, "v2"));
    let (canary, _exporter) = set.await.unwrap();
    assert_eq!(code, 3, "a rolled-back deploy exits 3: {report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert_eq!(report["rollback"]["code"], "E_GATE_FAILED", "{report}");
    let evidence = &report["rollback"]["evidence"];
    assert_eq!(evidence["probe"], "errors", "{report}");
    assert_eq!(evidence["canary"].as_f64(), Some(0.3), "{evidence}");
    assert_eq!(evidence["baseline"].as_f64(), Some(0.01), "{evidence}");
    assert_eq!(
        evidence["baseline_instances"],
        serde_json::json!(["web-1", "web-2", "web-3"]),
        "{evidence}"
    );
    let i = env.alt_ports.iter().position(|p| *p == canary).unwrap();
    assert_eq!(evidence["instance"], format!("web-{}", i + 1), "{evidence}");
    let last = evidence["last_samples"].as_array().unwrap().last().unwrap();
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains("[CANARY] = 0.3") && message.contains("[BASELINE] = 0.01"),
        "{message}"
    );
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"], "rolled back");
    assert_eq!(
        env.served(&env.alt_ports),
        ["down", "down", "down"],
        "canary removed"
    );
    // `history --json` keeps both values.
    let (code, out, err) = env.rollguard(&["history", "web", "--json"]);
    assert_eq!(code, 0, "{err}");
    let history: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let mut found = Vec::new();
    evidence_of(&history, "errors", &mut found);
    assert!(
        found
            .iter()
            .any(|e| e["canary"].as_f64() == Some(0.3) && e["baseline"].as_f64() == Some(0.01)),
        "history has no comparison with both values: {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_whose_error_ratio_stays_level_is_promoted() {
    let test = "canary_ratio_level";
    let Some((_exporter, _prom, env)) = setup(test, "app_error_ratio", "fail").await else {
        return;
    };
    let (code, report) = tokio::task::block_in_place(|| deploy_canary(&env, "v2"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "deployed", "{report}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"], "promoted");
    // The canary's steps compared it, and it passed with both values.
    let mut found = Vec::new();
    evidence_of(&report, "errors", &mut found);
    assert!(
        found.iter().any(|e| e["canary"].as_f64() == Some(0.01)
            && e["baseline"].as_f64() == Some(0.01)
            && e["rule"].is_null()),
        "no passed comparison in the report: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_comparison_without_data_fails_or_is_skipped_as_configured() {
    let test = "canary_no_data";
    let Some((_exporter, _prom, env)) = setup(test, "app_no_such_metric", "fail").await else {
        return;
    };
    // on_no_data = "fail": no series for either side fails the canary.
    let (code, report) = tokio::task::block_in_place(|| deploy_canary(&env, "v2"));
    assert_eq!(code, 3, "{report}");
    let evidence = &report["rollback"]["evidence"];
    assert_eq!(evidence["probe"], "errors", "{report}");
    let last = evidence["last_samples"].as_array().unwrap().last().unwrap();
    assert_eq!(last["error_kind"], "no_data", "{evidence}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // on_no_data = "skip": not counted; the health probe gates alone.
    env.edit_config("on_no_data = \"fail\"", "on_no_data = \"skip\"");
    let (code, report) = tokio::task::block_in_place(|| deploy_canary(&env, "v2"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"], "promoted");
}

#[test]
fn a_comparison_that_cannot_tell_the_sides_apart_is_refused_at_load() {
    let dir = common::TempDir::new("prom-compare-config");
    let config = dir.join("fleet.toml");
    let check = |probe: &str| -> String {
        std::fs::write(
            &config,
            format!(
                "[[app]]\nname = \"a\"\n[[app.instance]]\nname = \"i\"\nport = 1\n\
                 [[app.probe]]\nname = \"p\"\ntype = \"prometheus\"\nurl = \"http://127.0.0.1:9\"\n{probe}"
            ),
        )
        .unwrap();
        let out = std::process::Command::new(common::rollout::BIN)
            .arg("--config")
            .arg(&config)
            .arg("check")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{probe} was taken");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A query that names no instance asks the same of both sides.
    let err = check(
        "query = 'sum(rate(errors_total[1m]))'\nconditions = [\"[CANARY] <= [BASELINE] * 1.2\"]\n",
    );
    assert!(err.contains("fleet.toml:10:9"), "{err}");
    assert!(err.contains("its query names no instance"), "{err}");
    assert!(err.contains("{port}"), "{err}");
    // [VALUE] and a comparison in one probe.
    let err = check(
        "query = 'up{port=\"{port}\"}'\nconditions = [\"[VALUE] < 1\", \"[CANARY] <= [BASELINE]\"]\n",
    );
    assert!(
        err.contains("reads [VALUE] and compares [CANARY] with [BASELINE]"),
        "{err}"
    );
    assert!(err.contains("make them two probes"), "{err}");
}

/// A comparison whose query names only `{instance}` passes `check` (an
/// instance's name tells rolling batches apart), but a canary shares its
/// instance's name: preflight refuses that canary before anything moves.
#[test]
fn a_canary_whose_query_cannot_tell_its_sides_apart_is_refused_before_anything_moves() {
    let probe = r#"
[[app.probe]]
name = "errors"
type = "prometheus"
url = "http://127.0.0.1:9"
query = 'max(app_error_ratio{name="{instance}"})'
conditions = ["[CANARY] <= [BASELINE] * 1.2 + 0.01"]
"#;
    let Some(env) = Env::new("canary_same_query", "nginx", probe) else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--strategy", "canary", "--yes"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("E_CONFIG"), "{err}");
    assert!(
        err.contains("asks the same of both sides of web-1"),
        "{err}"
    );
    assert!(err.contains("{port}"), "{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"], "nothing moved");
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let history: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history:#}");
}
