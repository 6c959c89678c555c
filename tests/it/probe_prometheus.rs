//! The `prometheus` probe against a real Prometheus on loopback, which
//! scrapes a small exporter the test controls (its error ratio changes on
//! cue): a value within the condition passes, one above it fails with the
//! measured value, a query without data is treated as `on_no_data` says,
//! a query Prometheus refuses says why, and an instance name is taken
//! literally even inside a regex matcher. Through `rollguard probe --json`, as a user
//! runs it.

use crate::common;

use common::prometheus::{Exporter, Prometheus};

use std::process::Command;

fn metrics(ratio: f64) -> String {
    format!(
        "# TYPE demo_error_ratio gauge\n\
         demo_error_ratio{{app=\"checkout\",instance=\"web-1\"}} {ratio}\n\
         demo_error_ratio{{app=\"checkout\",instance=\"web-2\"}} 0.5\n"
    )
}

/// Runs `rollguard probe --json` on a fleet of one instance named
/// `instance` with `probes` (TOML); the results.
fn probe(dir: &common::TempDir, instance: &str, probes: &str) -> Vec<serde_json::Value> {
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[[app]]\nname = \"checkout\"\n[[app.instance]]\nname = {instance:?}\nport = 1\n{probes}"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .arg("--config")
        .arg(&config)
        .args(["probe", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str::<Vec<serde_json::Value>>(&stdout) {
        Ok(r) if !r.is_empty() => r,
        _ => panic!(
            "no results: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn prometheus_probe(port: u16, name: &str, query: &str, extra: &str) -> String {
    format!(
        "[[app.probe]]\nname = \"{name}\"\ntype = \"prometheus\"\nurl = \"http://127.0.0.1:{port}\"\n\
         query = '{query}'\nconditions = [\"[VALUE] < 0.05\"]\n{extra}\n"
    )
}

const RATIO: &str = r#"demo_error_ratio{app="{app}",instance="{instance}"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_prometheus_query_is_judged_by_its_value() {
    let test = "a_prometheus_query_is_judged_by_its_value";
    let exporter = Exporter::start(&metrics(0.01)).await;
    let Some(prom) = Prometheus::start(test, exporter.port) else {
        return;
    };
    let q = r#"demo_error_ratio{instance="web-1"}"#;
    prom.wait_for(q, "0.01", |v| v == 0.01);
    let dir = common::TempDir::new("prom-probe");
    // A timeout under a second reaches Prometheus as a number it reads.
    let probes = prometheus_probe(prom.port, "errors", RATIO, "timeout = \"750ms\"");

    let r = probe(&dir, "web-1", &probes);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["ok"], true, "{r:?}");
    assert_eq!(r[0]["message"], "value 0.01", "{r:?}");

    exporter.set(&metrics(0.31));
    prom.wait_for(q, "0.31", |v| v == 0.31);
    let r = probe(&dir, "web-1", &probes);
    assert_eq!(r[0]["ok"], false, "{r:?}");
    assert_eq!(r[0]["error_kind"], "condition", "{r:?}");
    assert_eq!(
        r[0]["message"], "[VALUE] < 0.05 failed: 0.31 < 0.05",
        "{r:?}"
    );
    // The other instance has its own value.
    let r = probe(&dir, "web-2", &probes);
    assert_eq!(
        r[0]["message"], "[VALUE] < 0.05 failed: 0.5 < 0.05",
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_data_is_treated_as_configured_and_a_bad_query_says_why() {
    let test = "no_data_is_treated_as_configured_and_a_bad_query_says_why";
    let exporter = Exporter::start(&metrics(0.01)).await;
    let Some(prom) = Prometheus::start(test, exporter.port) else {
        return;
    };
    prom.wait_for(r#"demo_error_ratio{instance="web-1"}"#, "0.01", |v| {
        v == 0.01
    });
    let dir = common::TempDir::new("prom-nodata");
    let none = r#"demo_error_ratio{app="{app}",instance="nowhere"}"#;
    let probes = [
        prometheus_probe(prom.port, "fails", none, ""),
        prometheus_probe(prom.port, "passes", none, "on_no_data = \"pass\""),
        prometheus_probe(prom.port, "skips", none, "on_no_data = \"skip\""),
        prometheus_probe(prom.port, "bad", "sum(demo_error_ratio", ""),
        prometheus_probe(prom.port, "many", "demo_error_ratio", ""),
    ]
    .concat();
    let r = probe(&dir, "web-1", &probes);
    let by = |name: &str| {
        r.iter()
            .find(|x| x["probe"] == name)
            .unwrap_or_else(|| panic!("{name}: {r:?}"))
            .clone()
    };
    let fails = by("fails");
    assert_eq!(
        (&fails["ok"], &fails["error_kind"]),
        (&false.into(), &"no_data".into()),
        "{fails}"
    );
    assert_eq!(fails["message"], "no data: no series", "{fails}");
    assert_eq!(by("passes")["ok"], true);
    let skips = by("skips");
    assert_eq!(skips["error_kind"], "no_data", "{skips}");
    assert!(
        skips["message"].as_str().unwrap().contains("not counted"),
        "{skips}"
    );
    let bad = by("bad");
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["code"], 400, "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("Prometheus said bad_data"),
        "{bad}"
    );
    let many = by("many");
    assert!(
        many["message"].as_str().unwrap().contains("2 series"),
        "{many}"
    );
}

/// Instance names are letters, digits, `.`, `_` and `-` (the config
/// refuses others); inside a regex matcher even `.` is taken literally,
/// so `web-.` does not match `web-1`. (Quotes and braces in a value are
/// escaped too: see `probe::prometheus`'s unit tests.)
#[tokio::test(flavor = "multi_thread")]
async fn an_instance_name_is_taken_literally_inside_a_regex() {
    let test = "an_instance_name_is_taken_literally_inside_a_regex";
    let exporter = Exporter::start(&metrics(0.01)).await;
    let Some(prom) = Prometheus::start(test, exporter.port) else {
        return;
    };
    prom.wait_for(r#"demo_error_ratio{instance="web-1"}"#, "0.01", |v| {
        v == 0.01
    });
    let dir = common::TempDir::new("prom-regex");
    let regex = r#"demo_error_ratio{instance=~"{instance}"}"#;
    let probes = prometheus_probe(prom.port, "errors", regex, "");
    let r = probe(&dir, "web-.", &probes);
    assert_eq!(r[0]["error_kind"], "no_data", "{r:?}");
    let r = probe(&dir, "web-1", &probes);
    assert_eq!(r[0]["message"], "value 0.01", "{r:?}");
}

#[test]
fn a_placeholder_outside_a_string_is_refused_at_its_column() {
    let dir = common::TempDir::new("prom-config");
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        "[[app]]\nname = \"a\"\n[[app.instance]]\nname = \"i\"\nport = 1\n\
         [[app.probe]]\nname = \"p\"\ntype = \"prometheus\"\nurl = \"http://127.0.0.1:9\"\n\
         query = 'up{instance=~\".+\"} * {instance}'\nconditions = [\"[STATUS] == 200\"]\n\
         bearer_token = \"literal\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet.toml:10:31"), "{err}");
    assert!(err.contains("stands outside a string"), "{err}");
    assert!(err.contains("this probe has no [STATUS]"), "{err}");
    assert!(err.contains("bearer_token is written in the file"), "{err}");
    assert!(
        !err.contains("literal\""),
        "the secret is not repeated: {err}"
    );
}
