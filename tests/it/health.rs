//! Health judgement through the public API, as the console and (later)
//! the rollout gate use it: a fleet built from config struct literals,
//! probe results fed in, verdicts and app statuses read out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rollguard::config::{
    App, CommandProbe, Console, DriverKind, Fleet, Health, Instance, Probe, ProbeKind, Require,
    Strategy, TcpProbe,
};
use rollguard::health::{Change, ProbeCounter, Tracker};
use rollguard::model::{AppStatus, ProbeKey, ProbeResult, Verdict};

fn fleet(require: Require, initial_delay: Duration) -> Fleet {
    Fleet {
        metrics: None,
        store: None,
        source: PathBuf::from("fleet.toml"),
        console: Console::default(),
        hosts: vec![],
        apps: vec![App {
            name: "web".into(),
            driver: DriverKind::Docker,
            strategy: Strategy::Rolling,
            protected: true,
            instances: ["a", "b"]
                .iter()
                .map(|n| Instance {
                    name: (*n).into(),
                    host: "node1".into(),
                    port: 8080,
                    alt_port: Some(8081),
                })
                .collect(),
            probes: vec![
                Probe {
                    name: "port".into(),
                    timeout: Duration::from_secs(1),
                    kind: ProbeKind::Tcp(TcpProbe {
                        port: None,
                        send: None,
                        expect: None,
                    }),
                },
                Probe {
                    name: "ready".into(),
                    timeout: Duration::from_secs(1),
                    kind: ProbeKind::Command(CommandProbe {
                        command: "true".into(),
                        expect_exit: 0,
                        output_contains: None,
                    }),
                },
            ],
            health: Health {
                success_threshold: 3,
                failure_threshold: 2,
                initial_delay,
                require,
                ..Health::default()
            },
            ..Default::default()
        }],
    }
}

fn r(instance: &str, probe: &str, at_ms: i64, ok: bool) -> ProbeResult {
    ProbeResult {
        key: ProbeKey {
            app: Arc::from("web"),
            instance: Arc::from(instance),
            probe: Arc::from(probe),
        },
        at_ms,
        ok,
        latency_ms: 3.0,
        code: None,
        error_kind: None,
        message: String::new(),
    }
}

#[test]
fn instance_turns_healthy_after_success_threshold_on_every_probe() {
    let f = fleet(Require::All, Duration::ZERO);
    let mut t = Tracker::new(&f);
    let mut changes = vec![];
    for at in 0..3 {
        for probe in ["port", "ready"] {
            changes.extend(t.observe(&r("a", probe, at, true), at));
        }
    }
    assert_eq!(
        changes,
        vec![Change {
            app: 0,
            instance: 0,
            from: Verdict::Unknown,
            to: Verdict::Healthy
        }]
    );
    assert_eq!(t.healthy_count(0), (1, 2));
    assert_eq!(t.app_status(0), AppStatus::Degraded);
}

#[test]
fn flapping_probe_never_reaches_a_threshold() {
    let f = fleet(Require::All, Duration::ZERO);
    let mut t = Tracker::new(&f);
    for at in 0..20 {
        assert_eq!(t.observe(&r("b", "port", at, at % 2 == 0), at), None);
    }
    assert_eq!(t.instance_verdict(0, 1), Verdict::Unknown);
    assert_eq!(t.app_status(0), AppStatus::Unknown);
}

#[test]
fn require_any_keeps_instance_healthy_while_one_probe_passes() {
    let f = fleet(Require::Any, Duration::ZERO);
    let mut t = Tracker::new(&f);
    for at in 0..3 {
        t.observe(&r("a", "port", at, true), at);
        t.observe(&r("a", "ready", at, false), at);
    }
    assert_eq!(t.instance_verdict(0, 0), Verdict::Healthy);
    for at in 3..5 {
        t.observe(&r("a", "port", at, false), at);
    }
    assert_eq!(t.instance_verdict(0, 0), Verdict::Unhealthy);
    assert_eq!(t.app_status(0), AppStatus::Down);
}

/// What the rollout gate will do: restart an instance, ignore failures
/// during `initial_delay`, then require `success_threshold` passes before
/// a deadline.
#[test]
fn gate_after_restart() {
    let f = fleet(Require::All, Duration::from_secs(10));
    let mut t = Tracker::new(&f);
    let app = t.app_index("web").unwrap();
    let inst = t.instance_index(app, "b").unwrap();
    let restarted_at = 100_000;
    t.restarted(app, inst, restarted_at);
    let deadline = restarted_at + 60_000;
    let mut healthy_at = None;
    let mut at = restarted_at;
    while at < deadline {
        // Booting for 8 s: everything fails, but within the grace period.
        let ok = at >= restarted_at + 8_000;
        for probe in ["port", "ready"] {
            if let Some(c) = t.observe(&r("b", probe, at, ok), at)
                && c.to == Verdict::Healthy
            {
                healthy_at = Some(at);
            }
        }
        assert_ne!(t.instance_verdict(app, inst), Verdict::Unhealthy, "at {at}");
        if healthy_at.is_some() {
            break;
        }
        at += 1_000;
    }
    assert_eq!(healthy_at, Some(restarted_at + 10_000));
}

#[test]
fn failures_after_grace_turn_unhealthy() {
    let f = fleet(Require::All, Duration::from_secs(5));
    let mut t = Tracker::new(&f);
    t.restarted(0, 0, 0);
    for at in [1_000, 2_000, 3_000, 4_000] {
        assert_eq!(t.observe(&r("a", "port", at, false), at), None);
    }
    assert_eq!(t.observe(&r("a", "port", 5_000, false), 5_000), None);
    let c = t.observe(&r("a", "port", 6_000, false), 6_000).unwrap();
    assert_eq!(c.to, Verdict::Unhealthy);
    // A result that claims to have started in the future is judged at now.
    let mut t = Tracker::new(&f);
    t.set_grace(0, 0, 10_000);
    t.observe(&r("a", "port", 50_000, false), 1_000);
    t.observe(&r("a", "port", 50_000, false), 1_000);
    assert_eq!(t.instance_verdict(0, 0), Verdict::Unknown);
}

#[test]
fn probe_counter_is_usable_on_its_own() {
    let mut c = ProbeCounter::new();
    assert_eq!(c.observe(true, true, 2, 2), Verdict::Unknown);
    assert_eq!(c.observe(true, true, 2, 2), Verdict::Healthy);
    assert_eq!(c.observe(false, false, 2, 2), Verdict::Healthy);
    assert_eq!(c.consecutive_fail, 0);
}
