//! The rollout health gate against real HTTP servers on loopback: one that
//! always answers 503 (`initial_delay` spares instances that just started,
//! a deploy gate, never a watch of instances already through their gate),
//! and ones that fail some requests (the failure budget, `max_failures`).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rollguard::config::{Fleet, LoadError, parse};
use rollguard::driver::Side;
use rollguard::probe::Prober;
use rollguard::rollout::gate::{self, FailRule, GateMode, GateOutcome};

/// Serves `503` to every request until the test ends; returns the port.
fn always_503() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// Answers request `n` (from 0) with 503 when `fails(n)`, else 200, until
/// the test ends; returns the port and how many requests it answered.
fn serving(fails: fn(usize) -> bool) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let n = count.fetch_add(1, Ordering::SeqCst);
            let status = if fails(n) {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (port, served)
}

fn fleet(port: u16) -> Fleet {
    fleet_with(
        port,
        "success_threshold = 2\nfailure_threshold = 2\ninitial_delay = \"30s\"",
    )
}

/// One app, one instance on `port`, one HTTP probe; `health` is the rest
/// of its `[app.health]`.
fn fleet_with(port: u16, health: &str) -> Fleet {
    let text = format!(
        r#"
[[app]]
name = "web"

[app.health]
interval = "100ms"
{health}

[[app.probe]]
name = "health"
type = "http"
path = "/health"
timeout = "1s"

[[app.instance]]
name = "web-1"
port = {port}
"#
    );
    common::parse_fleet(Path::new("gate.toml"), &text, &|_| None)
}

#[tokio::test]
async fn initial_delay_spares_a_deploy_gate_but_not_a_watch() {
    let fleet = fleet(always_503());
    let prober = Prober::new(&fleet).unwrap();
    let app = &fleet.apps[0];
    let slots = [(0, Side::Main)];
    let (_cancel, never) = tokio::sync::watch::channel(false);

    // Deploying: failures within initial_delay do not count, so the gate
    // runs to its deadline instead of failing.
    let deadline = Duration::from_millis(800);
    let outcome = gate::run(
        &prober,
        &fleet,
        app,
        gate::Sides::alone(&slots),
        GateMode::Deploy { deadline },
        never.clone(),
        &gate::Seen::default(),
    )
    .await;
    assert!(
        matches!(outcome, GateOutcome::Deadline { .. }),
        "{outcome:?}"
    );

    // Watching (monitor, step pauses, manual steps): the instances passed
    // their gate already, so the second 503 in a row fails it at once.
    let outcome = gate::run(
        &prober,
        &fleet,
        app,
        gate::Sides::alone(&slots),
        GateMode::Monitor {
            length: Duration::from_secs(5),
        },
        never,
        &gate::Seen::default(),
    )
    .await;
    let GateOutcome::Failed { evidence } = outcome else {
        panic!("a watch must fail on 503s: {outcome:?}");
    };
    assert_eq!(evidence.consecutive_fail, 2);
}

/// Watches the one instance of `fleet` for `length`.
async fn watch(fleet: &Fleet, length: Duration) -> GateOutcome {
    let prober = Prober::new(fleet).unwrap();
    let (_cancel, never) = tokio::sync::watch::channel(false);
    gate::run(
        &prober,
        fleet,
        &fleet.apps[0],
        gate::Sides::alone(&[(0, Side::Main)]),
        GateMode::Monitor { length },
        never,
        &gate::Seen::default(),
    )
    .await
}

const FLAPPING_HEALTH: &str = "success_threshold = 1\nfailure_threshold = 2";

#[tokio::test]
async fn a_release_that_fails_every_other_check_spends_its_budget() {
    // Odd requests fail: never two failures in a row.
    let (port, served) = serving(|n| n % 2 == 1);
    let fleet = fleet_with(port, &format!("{FLAPPING_HEALTH}\nmax_failures = 2"));
    let outcome = watch(&fleet, Duration::from_secs(5)).await;
    let GateOutcome::Failed { evidence } = outcome else {
        panic!("a flapping release must fail its watch: {outcome:?}");
    };
    assert_eq!(evidence.instance, "web-1");
    assert_eq!(evidence.rule, Some(FailRule::Budget));
    assert_eq!((evidence.failures, evidence.max_failures), (2, 2));
    assert_eq!(evidence.consecutive_fail, 1);
    assert_eq!(
        evidence.reason.as_deref(),
        Some("2 of 2 failures in the window")
    );
    let codes: Vec<Option<i64>> = evidence.last_samples.iter().map(|s| s.code).collect();
    assert_eq!(codes, [Some(200), Some(503), Some(200), Some(503)]);
    // It failed on the fourth check, not at the end of the window.
    assert_eq!(served.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn without_a_budget_the_streak_alone_lets_a_flapping_release_through() {
    // What the budget is for: the same server with a budget too large to
    // spend passes a watch on consecutive failures alone.
    let (port, served) = serving(|n| n % 2 == 1);
    let fleet = fleet_with(port, &format!("{FLAPPING_HEALTH}\nmax_failures = 1000"));
    let outcome = watch(&fleet, Duration::from_millis(1500)).await;
    let GateOutcome::Passed { evidence, .. } = outcome else {
        panic!("{outcome:?}");
    };
    let served = served.load(Ordering::SeqCst) as u32;
    assert!(served >= 6, "{served} checks");
    assert_eq!(evidence[0].failures, served / 2);
    assert_eq!(evidence[0].rule, None);
}

#[tokio::test]
async fn a_single_dropped_check_does_not_fail_a_watch() {
    let (port, served) = serving(|n| n == 3);
    let fleet = fleet_with(port, &format!("{FLAPPING_HEALTH}\nmax_failures = 2"));
    let outcome = watch(&fleet, Duration::from_millis(1500)).await;
    let GateOutcome::Passed { evidence, .. } = outcome else {
        panic!("one dropped check must not fail a watch: {outcome:?}");
    };
    assert!(served.load(Ordering::SeqCst) >= 6);
    assert_eq!(evidence.len(), 1);
    let e = &evidence[0];
    assert_eq!((e.failures, e.max_failures), (1, 2));
    assert_eq!(e.budget(), "1 of 2 failures");
    assert_eq!((e.rule, e.reason.as_deref()), (None, None));
}

#[tokio::test]
async fn the_budget_defaults_to_failure_threshold() {
    // Three failures, never two in a row: requests 1, 3 and 5 fail.
    let (port, served) = serving(|n| n % 2 == 1);
    let fleet = fleet_with(port, "success_threshold = 1\nfailure_threshold = 3");
    assert_eq!(fleet.apps[0].health.max_failures, None);
    assert_eq!(fleet.apps[0].health.failure_budget(), 3);
    let outcome = watch(&fleet, Duration::from_secs(5)).await;
    let GateOutcome::Failed { evidence } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((evidence.failures, evidence.max_failures), (3, 3));
    assert_eq!(served.load(Ordering::SeqCst), 6);
}

#[test]
fn max_failures_must_be_at_least_1() {
    let text = "[[app]]\nname = \"web\"\n\n[app.health]\nmax_failures = 0\n\n\
                [[app.probe]]\nname = \"up\"\ntype = \"tcp\"\n\n\
                [[app.instance]]\nname = \"web-1\"\nport = 8080\n";
    let errs = match parse(Path::new("fleet.toml"), text, &|_| None) {
        Err(LoadError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        other => panic!("max_failures = 0 must be invalid: {:?}", other.err()),
    };
    let errs = errs.join("\n");
    assert!(
        errs.contains("fleet.toml:5:16: max_failures must be at least 1, not 0"),
        "{errs}"
    );
    let fleet = parse(
        Path::new("fleet.toml"),
        &text.replace("max_failures = 0", "max_failures = 4"),
        &|_| None,
    )
    .expect("valid config");
    assert_eq!(fleet.apps[0].health.max_failures, Some(4));
    assert_eq!(fleet.apps[0].health.failure_budget(), 4);
}
