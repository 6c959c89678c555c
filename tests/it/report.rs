//! `rollguard report` and `rollguard incident`, the real binary on a
//! history filled through the store with known results, incidents and
//! deployments: the numbers (availability, percentiles, longest outage,
//! mean time to recovery, counts) in the table, `--json` and `--csv`; the
//! timeline of an incident and of a deployment, in order; unknown apps and
//! ids as `E_USAGE`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use common::TempDir;
use rollguard::error::Code;
use rollguard::model::event::EventKind;
use rollguard::model::evidence::{Evidence, GateOutcome, Sample};
use rollguard::model::incident::IncidentCause;
use rollguard::model::{
    DeploymentKind, Outcome, ProbeKey, ProbeResult, Side, Trigger, Verb, now_ms,
};
use rollguard::store::{Opened, Store};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// A config with the apps `web` (web-1, web-2) and `api` (api-1).
fn config(dir: &TempDir) -> PathBuf {
    let path = dir.join("rollguard.toml");
    let mut text = String::new();
    for (app, instances) in [("web", &["web-1", "web-2"][..]), ("api", &["api-1"][..])] {
        text.push_str(&format!(
            "[[app]]\nname = \"{app}\"\n\n[[app.probe]]\nname = \"health\"\ntype = \"tcp\"\n\n"
        ));
        for (n, i) in instances.iter().enumerate() {
            text.push_str(&format!(
                "[[app.instance]]\nname = \"{i}\"\nport = {}\n\n",
                18_100 + n
            ));
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn result(instance: &str, at_ms: i64, ok: bool, latency_ms: f64) -> ProbeResult {
    ProbeResult {
        key: ProbeKey {
            app: Arc::from("web"),
            instance: Arc::from(instance),
            probe: Arc::from("health"),
        },
        at_ms,
        ok,
        latency_ms,
        code: Some(if ok { 200 } else { 500 }),
        error_kind: None,
        message: if ok { "ok".into() } else { "status 500".into() },
    }
}

fn sample(at_ms: i64, ok: bool) -> Sample {
    Sample {
        at_ms,
        ok,
        latency_ms: 12.0,
        code: Some(if ok { 200 } else { 500 }),
        error_kind: (!ok).then(|| "status".into()),
        message: if ok {
            "ok".into()
        } else {
            "status 500 *boom* `x`".into()
        },
    }
}

/// What the gate saw on web-1 when it failed (three failures in a row).
fn gate_evidence(base: i64) -> Evidence {
    Evidence {
        instance: "web-1".into(),
        side: Side::Main,
        port: 18_100,
        probe: "health".into(),
        success_threshold: 2,
        failure_threshold: 3,
        consecutive_fail: 3,
        failures: 3,
        max_failures: 5,
        reason: Some("3 failures in a row".into()),
        last_samples: vec![
            sample(base + 39_000, true),
            sample(base + 40_000, false),
            sample(base + 41_000, false),
            sample(base + 42_000, false),
        ],
        ..Evidence::default()
    }
}

/// The history, two hours ago (B): web-1 probed every second for 100 s,
/// 90 passes with latencies 1..=90 ms and failures from B+40 s to B+49 s;
/// deployment 1 (v1 → v2) fails its gate at B+45 s, incident 1 opens then
/// and is healthy at B+50 s; an operator fires the rollback; incident 2
/// lasts 12 s from B+200 s; deployment 2 deploys v2, deployment 3 is a
/// manual rollback. Returns B.
fn fill(db: &Path) -> i64 {
    let base = now_ms() - 2 * 3_600_000;
    let mut store = Store::open(db).unwrap();
    let mut results: Vec<ProbeResult> = Vec::new();
    let mut latency = 0.0;
    for i in 0..100 {
        let ok = !(40..50).contains(&i);
        if ok {
            latency += 1.0;
        }
        results.push(result(
            "web-1",
            base + i * 1000,
            ok,
            if ok { latency } else { 1000.0 },
        ));
    }
    // Older than the window: not counted.
    results.push(result("web-1", base - 23 * 3_600_000, false, 5.0));
    store.insert_results(&results).unwrap();

    let raw = rusqlite::Connection::open(db).unwrap();
    let at = |id: i64, ms: i64| {
        raw.execute(
            "UPDATE events SET at_ms = ?1 WHERE id = ?2",
            rusqlite::params![ms, id],
        )
        .unwrap();
    };
    let plan = |kind: DeploymentKind| json!({"kind": kind.as_str()});
    let d1 = store
        .create_deployment(
            "web",
            Some("v1"),
            "v2",
            rollguard::config::Strategy::Rolling,
            "ana",
            Some("ship v2"),
            &plan(DeploymentKind::Deploy),
            &[],
        )
        .unwrap();
    let record = |ms: i64, actor: &str, reason: Option<&str>, e: EventKind| {
        let id = store.record("web", Some(d1), actor, reason, &e).unwrap();
        at(id, ms);
    };
    record(
        base + 30_000,
        "ana",
        Some("ship v2"),
        EventKind::DeployRequested {
            from: Some("v1".into()),
            to: "v2".into(),
            strategy: json!("rolling"),
            kind: DeploymentKind::Deploy,
        },
    );
    record(
        base + 31_000,
        "rollguard",
        None,
        EventKind::StageStarted {
            index: 0,
            stage: Value::Null,
            describe: "replace web-1".into(),
        },
    );
    record(
        base + 32_000,
        "rollguard",
        None,
        EventKind::TrafficChanged {
            elapsed_ms: 120,
            describe: Some("web-1 50%, web-2 50%".into()),
        },
    );
    let failed = GateOutcome::Failed {
        evidence: gate_evidence(base),
    };
    record(
        base + 45_000,
        "rollguard",
        Some("health on web-1 failed 3 times in a row"),
        EventKind::GateFailed(failed.clone()),
    );
    let store = Store::open(db).unwrap();
    let opened = store
        .open_incident(
            "web",
            Some(d1),
            IncidentCause::Gate,
            &[gate_evidence(base)],
            base + 45_000,
        )
        .unwrap();
    assert_eq!(opened, Opened::New(1));
    let last = store.last_event_id().unwrap();
    at(last, base + 45_000);
    let record = |ms: i64, actor: &str, reason: Option<&str>, e: EventKind| {
        let id = store.record("web", Some(d1), actor, reason, &e).unwrap();
        at(id, ms);
    };
    record(
        base + 45_600,
        "rollguard",
        None,
        EventKind::RolloutFailed {
            trigger: Trigger::GateFailed,
            code: Code::GateFailed.as_str().into(),
            evidence: serde_json::to_value(&failed).unwrap(),
        },
    );
    record(
        base + 45_700,
        "rollguard",
        None,
        EventKind::RollbackArmed {
            fires_in_ms: 60_000,
        },
    );
    record(
        base + 45_800,
        "bo",
        Some("fire it \x1b[2J customers see errors"),
        EventKind::command(Verb::Fire, "bo"),
    );
    record(base + 45_900, "bo", None, EventKind::RollbackFired);
    record(
        base + 46_000,
        "rollguard",
        None,
        EventKind::RollbackStarted {
            trigger: Trigger::GateFailed,
            code: Code::GateFailed.as_str().into(),
        },
    );
    record(
        base + 46_500,
        "rollguard",
        None,
        EventKind::NotificationSent {
            receiver: "oncall".into(),
            notification: 1,
            topic: "rollback_started".into(),
            attempts: 1,
        },
    );
    record(
        base + 48_000,
        "rollguard",
        None,
        EventKind::InstanceRestored {
            instance: "web-1".into(),
            side: Side::Main,
            version: Some("v1".into()),
        },
    );
    record(
        base + 50_000,
        "rollguard",
        None,
        EventKind::RollbackCompleted {
            unrestored: Vec::new(),
            outcome: Outcome::RolledBack,
        },
    );
    store
        .finish_deployment(
            d1,
            rollguard::model::DeploymentState::Done,
            rollguard::model::Outcome::RolledBack,
        )
        .unwrap();
    assert!(
        store
            .resolve_incident(1, base + 50_000, base + 110_000)
            .unwrap()
    );
    at(store.last_event_id().unwrap(), base + 110_000);

    // Incident 2: 12 s of outage, no deployment.
    let mut probe = gate_evidence(base + 160_000);
    probe.instance = "web-2".into();
    let opened = store
        .open_incident("web", None, IncidentCause::Probe, &[probe], base + 200_000)
        .unwrap();
    assert_eq!(opened, Opened::New(2));
    at(store.last_event_id().unwrap(), base + 200_000);
    assert!(
        store
            .resolve_incident(2, base + 212_000, base + 272_000)
            .unwrap()
    );
    at(store.last_event_id().unwrap(), base + 272_000);

    let d2 = store
        .create_deployment(
            "web",
            Some("v1"),
            "v2",
            rollguard::config::Strategy::Rolling,
            "ana",
            None,
            &plan(DeploymentKind::Deploy),
            &[],
        )
        .unwrap();
    store
        .finish_deployment(
            d2,
            rollguard::model::DeploymentState::Done,
            rollguard::model::Outcome::Deployed,
        )
        .unwrap();
    let d3 = store
        .create_deployment(
            "web",
            Some("v2"),
            "v1",
            rollguard::config::Strategy::Rolling,
            "bo",
            Some("rollback: v2 is slow"),
            &plan(DeploymentKind::Rollback),
            &[],
        )
        .unwrap();
    store
        .finish_deployment(
            d3,
            rollguard::model::DeploymentState::Done,
            rollguard::model::Outcome::Deployed,
        )
        .unwrap();
    for (id, start, end) in [
        (d1, 30_000, 50_000),
        (d2, 300_000, 320_000),
        (d3, 400_000, 420_000),
    ] {
        raw.execute(
            "UPDATE deployments SET started_at_ms = ?2, ended_at_ms = ?3 WHERE id = ?1",
            rusqlite::params![id, base + start, base + end],
        )
        .unwrap();
    }
    base
}

#[test]
fn the_report_gives_the_numbers_in_every_format() {
    let dir = TempDir::new("report-numbers");
    let (config, db) = (config(&dir), dir.join("history.db"));
    let base = fill(&db);

    let v: Value =
        serde_json::from_str(&stdout_ok(&run(&config, &db, &["report", "--json"]))).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["window"], "the last 24h");
    let apps: Vec<&str> = v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["web", "api"], "the config's apps, in its order");
    let web = &v["apps"][0];
    assert_eq!(web["probes"], 100);
    assert_eq!(web["failures"], 10);
    assert_eq!(web["availability_percent"], 90.0);
    assert_eq!(
        web["latency_ms"],
        json!({"p50": 45.0, "p95": 86.0, "p99": 90.0})
    );
    assert_eq!(
        web["longest_outage"],
        json!({"start_ms": base + 200_000, "length_ms": 12_000, "ongoing": false, "incident": 2})
    );
    assert_eq!(
        web["incidents"],
        json!({"total": 2, "resolved": 2, "open": 0, "mean_time_to_recovery_ms": 8_500})
    );
    assert_eq!(
        web["deployments"],
        json!({"total": 3, "by_outcome": {"deployed": 2, "rolled_back": 1}})
    );
    assert_eq!(web["rollbacks"], json!({"automatic": 1, "by_hand": 1}));
    let web1 = &web["instances"][0];
    assert_eq!(web1["instance"], "web-1");
    assert_eq!(
        (web1["probes"].as_u64(), web1["failures"].as_u64()),
        (Some(100), Some(10))
    );
    assert_eq!(
        web1["longest_outage"],
        json!({"start_ms": base + 40_000, "length_ms": 10_000, "ongoing": false, "probe": "health"})
    );
    let web2 = &web["instances"][1];
    assert_eq!(web2["instance"], "web-2");
    assert_eq!(web2["probes"], 0);
    assert_eq!(web2["availability_percent"], Value::Null);
    assert_eq!(web2["latency_ms"], Value::Null);
    assert_eq!(v["apps"][1]["probes"], 0);

    let text = stdout_ok(&run(&config, &db, &["report"]));
    assert!(!text.contains("NaN"), "{text}");
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in {text}"))
            .to_string()
    };
    assert!(line("APP/INSTANCE").contains("LONGEST OUTAGE"), "{text}");
    let web = line("web ");
    for cell in [
        "90.00%", " 100 ", " 10 ", "45ms", "86ms", "90ms", "12.0s at",
    ] {
        assert!(web.contains(cell), "{cell:?} in {web:?}");
    }
    assert!(line("  web-1").contains("10.0s at"), "{text}");
    assert!(line("  web-2").contains("no probe results"), "{text}");
    assert_eq!(
        line("  deployments:"),
        "  deployments: 3 (2 deployed, 1 rolled back)"
    );
    assert_eq!(line("  rollbacks:"), "  rollbacks: 1 automatic, 1 by hand");
    assert_eq!(
        line("  incidents:"),
        "  incidents: 2 (2 resolved, 0 open) · mean time to recovery: 8.5s"
    );
    assert!(
        line("api ").contains("no probe results in the last 24h"),
        "{text}"
    );

    let csv = stdout_ok(&run(&config, &db, &["report", "web", "--csv"]));
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "a header, the app, two instances: {csv}");
    let col = |name: &str| {
        rows[0]
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let app = &rows[1];
    assert_eq!((app[col("app")], app[col("instance")]), ("web", ""));
    assert_eq!(app[col("availability_percent")], "90");
    assert_eq!(
        (app[col("p50_ms")], app[col("p95_ms")], app[col("p99_ms")]),
        ("45", "86", "90")
    );
    assert_eq!(app[col("longest_outage_ms")], "12000");
    assert_eq!(app[col("deployments_deployed")], "2");
    assert_eq!(app[col("deployments_rolled_back")], "1");
    assert_eq!(app[col("rollbacks_by_hand")], "1");
    assert_eq!(app[col("mean_time_to_recovery_ms")], "8500");
    assert_eq!(rows[2][col("instance")], "web-1");
    assert_eq!(rows[2][col("longest_outage_ms")], "10000");
    assert_eq!(rows[3][col("probes")], "0");
    assert_eq!(rows[3][col("availability_percent")], "");

    // A window with nothing in it.
    let empty = stdout_ok(&run(&config, &db, &["report", "web", "--since", "1m"]));
    assert!(
        empty.contains("web          no probe results in the last 1m"),
        "{empty}"
    );
    // Without the config, the history's apps.
    let none = dir.join("none.toml");
    let v: Value =
        serde_json::from_str(&stdout_ok(&run(&none, &db, &["report", "--json"]))).unwrap();
    assert_eq!(v["apps"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        v["apps"][0]["instances"].as_array().unwrap().len(),
        1,
        "{v}"
    );
}

fn in_order(doc: &str, lines: &[&str]) {
    let mut from = 0;
    for want in lines {
        match doc[from..].find(want) {
            Some(at) => from += at + want.len(),
            None => panic!("{want:?} not found after byte {from} in:\n{doc}"),
        }
    }
}

#[test]
fn the_timeline_of_an_incident_and_of_a_deployment() {
    let dir = TempDir::new("report-timeline");
    let (config, db) = (config(&dir), dir.join("history.db"));
    fill(&db);

    let md = stdout_ok(&run(&config, &db, &["incident", "1"]));
    assert!(!md.contains('\x1b'), "{md:?}");
    in_order(
        &md,
        &[
            "# Incident 1: web\n",
            "- **Opened:** ",
            "- **Duration:** 5.0s (opened → healthy again)",
            "- **Release:** v1 → v2 (deployment 1, rolled back)",
            "- **Outcome:** resolved",
            "- **Trigger:** gate (during deployment 1): `health` on `web-1`: 3 failures in a row",
            "All times are UTC (+00:00).",
            "## What failed",
            "thresholds: 3 failures in a row fail, 2 passes in a row pass",
            "## Deployments during the incident",
            "deployment 1: v1 → v2 (rolling) by ana",
            "## Timeline",
            "**probe failed** `health` on `web-1`: code 500, 12.0 ms, status, `` status 500 *boom* `x` ``",
            "**gate failed** health on web-1: 3 failures in a row",
            "  - `health` on `web-1` (main side, port 18100)",
            "**incident opened** incident 1 opened",
            "**rollout failed**",
            "**command fire** fire sent by bo — fire it \\\\x1b\\[2J customers see errors",
            "**rollback started**",
            "**notification sent** rollback\\_started sent to oncall",
            "**incident resolved** incident 1 resolved after an outage of 5.0s",
            "## Probe failures during the outage",
            "`health` on `web-1`: 10 failed results from ",
        ],
    );
    assert_eq!(
        md.matches("**probe failed**").count(),
        3,
        "each sample once: {md}"
    );

    let out = dir.join("postmortem.md");
    let written = run(
        &config,
        &db,
        &["incident", "deployment:1", "-o", out.to_str().unwrap()],
    );
    assert!(stdout_ok(&written).is_empty());
    let md = std::fs::read_to_string(&out).unwrap();
    in_order(
        &md,
        &[
            "# Deployment 1: web\n",
            "- **What:** deploy v1 → v2 (rolling)",
            "- **Started:** ",
            " by ana — ship v2",
            "- **Duration:** 20.0s",
            "- **Outcome:** rolled back",
            "- **Trigger:** failed: E\\_GATE\\_FAILED (gate\\_failed)",
            "## Incidents during the deployment",
            "incident 1 (gate): opened ",
            "## Timeline",
            "**deploy requested** deploy v1 → v2 (rolling) — by ana — ship v2",
            "**stage started**",
            "**traffic changed** web-1 50%, web-2 50% (120 ms)",
            "**probe failed**",
            "**gate failed**",
            "**incident opened**",
            "**rollout failed**",
            "**rollback armed**",
            "**command fire**",
            "**rollback fired**",
            "**rollback started**",
            "**notification sent**",
            "**instance restored** web-1 runs v1 again",
            "**rollback completed** rolled back",
            "**incident resolved**",
        ],
    );
}

#[test]
fn unknown_apps_and_ids_are_usage_errors() {
    let dir = TempDir::new("report-unknown");
    let (config, db) = (config(&dir), dir.join("history.db"));
    let usage = Some(i32::from(Code::Usage.exit_code()));

    // No history yet: nothing created, an unknown app still told apart.
    let out = run(&config, &db, &["report"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history yet"));
    assert!(!db.exists(), "report does not create the history");
    assert_eq!(
        run(&config, &db, &["report", "nosuch"]).status.code(),
        usage
    );
    let out = run(&config, &db, &["incident", "3"]);
    assert_eq!(out.status.code(), usage);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history database"));

    fill(&db);
    for args in [
        &["report", "nosuch"][..],
        &["incident", "99"],
        &["incident", "deployment:99"],
        &["incident", "twelve"],
        &["report", "--since", "soon"],
    ] {
        let out = run(&config, &db, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), usage, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        if args[1] != "twelve" && args[1] != "--since" {
            assert!(stderr.starts_with(Code::Usage.as_str()), "{stderr}");
        }
    }
    let out = run(&config, &db, &["report", "nosuch"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("apps: web, api"));
    let out = run(&config, &db, &["incident", "99"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the history holds no incident 99"));
}
