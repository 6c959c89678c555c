//! The rollout health gate against a real HTTP server on loopback that
//! always answers 503: `initial_delay` spares instances that just started
//! (a deploy gate), never a watch of instances already through their gate.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use rollguard::config::{Fleet, parse};
use rollguard::driver::Side;
use rollguard::probe::Prober;
use rollguard::rollout::gate::{self, GateMode, GateOutcome};

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

fn fleet(port: u16) -> Fleet {
    let text = format!(
        r#"
[[app]]
name = "web"

[app.health]
interval = "100ms"
success_threshold = 2
failure_threshold = 2
initial_delay = "30s"

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
    parse(Path::new("gate.toml"), &text, &|_| None).expect("valid config")
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
        &slots,
        GateMode::Deploy { deadline },
        never.clone(),
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
        &slots,
        GateMode::Monitor {
            length: Duration::from_secs(5),
        },
        never,
    )
    .await;
    let GateOutcome::Failed { evidence } = outcome else {
        panic!("a watch must fail on 503s: {outcome:?}");
    };
    assert_eq!(evidence.consecutive_fail, 2);
}
