//! `/metrics` as Prometheus sees it: a real `rollguard agent` on a config
//! with `[metrics] listen`, probing two instances served by an HTTP server
//! the test makes fail, and a real Prometheus on loopback scraping it
//! every second; the values are read back through Prometheus' HTTP API.
//! A plain GET checks the text itself (HELP and TYPE lines, an escaped
//! label value, 404 and 405); a bad `listen` is refused at its place.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TempDir;
use common::agent::Agent;
use common::free_port;
use common::prometheus::{Prometheus, request};
use rollguard::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// An HTTP server on loopback that answers 200, or 500 while `failing`.
struct Flapper {
    port: u16,
    failing: Arc<AtomicBool>,
}

fn flapper() -> Flapper {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let failing = Arc::new(AtomicBool::new(false));
    let f = failing.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let f = f.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let (status, body) = if f.load(Ordering::SeqCst) {
                        ("500 Internal Server Error", "broken")
                    } else {
                        ("200 OK", "ok")
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Flapper { port, failing }
}

/// App `web` with one instance per port, probed every 200 ms, serving
/// `/metrics` on `metrics`.
fn config(dir: &TempDir, ports: &[u16], metrics: u16) -> PathBuf {
    let mut t = format!("[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\n[[app]]\nname = \"web\"\n");
    for (i, p) in ports.iter().enumerate() {
        t.push_str(&format!(
            "[[app.instance]]\nname = \"web-{}\"\nport = {p}\n",
            i + 1
        ));
    }
    t.push_str(
        "[[app.probe]]\nname = \"health\"\ntype = \"http\"\npath = \"/health\"\ntimeout = \"1s\"\n\
         [app.health]\ninterval = \"200ms\"\nfailure_threshold = 2\n",
    );
    let path = dir.join("fleet.toml");
    std::fs::write(&path, t).unwrap();
    path
}

fn agent(cfg: &Path, db: &Path, log: &Path) -> Agent {
    Agent::start(cfg, db, log.to_path_buf())
}

/// A history with one deployment of `web` that ended `deployed`, and a
/// release whose name needs escaping.
fn history(db: &Path) {
    let store = Store::open(db).unwrap();
    let id = store
        .create_deployment(
            "web",
            Some("v1"),
            "v2",
            rollguard::config::Strategy::Rolling,
            "ana",
            Some("ship v2"),
            &serde_json::json!({"kind": "deploy"}),
            &[],
        )
        .unwrap();
    store
        .finish_deployment(
            id,
            rollguard::model::DeploymentState::Done,
            rollguard::model::Outcome::Deployed,
        )
        .unwrap();
    store
        .set_instance_state("web", "web-1", Some("v2 \"blue\""), None)
        .unwrap();
}

fn get(port: u16, path: &str) -> String {
    request(port, "GET", path)
}

#[test]
fn prometheus_reads_the_agents_probes_health_and_history() {
    let dir = TempDir::new("metrics");
    let (one, two) = (flapper(), flapper());
    let port = free_port();
    let cfg = config(&dir, &[one.port, two.port], port);
    let db = dir.join("history.db");
    history(&db);
    let log = dir.join("agent.log");
    let _agent = agent(&cfg, &db, &log);
    let Some(prom) = Prometheus::start("prometheus_reads_the_agents_metrics", port) else {
        return;
    };

    let success =
        "rollguard_probe_success{app=\"web\",instance=\"web-1\",probe=\"health\",type=\"http\"}";
    prom.wait_for(success, "1", |v| v == 1.0);
    let healthy = "rollguard_instance_state{instance=\"web-1\",state=\"healthy\"}";
    prom.wait_for(healthy, "1", |v| v == 1.0);
    let count = "rollguard_probe_duration_seconds_count{instance=\"web-1\"}";
    let first = prom.wait_for(count, "a count", |v| v > 0.0);
    prom.wait_for(count, "a larger count", |v| v > first);
    prom.wait_for(
        "rollguard_deployments_total{app=\"web\",outcome=\"deployed\"}",
        "1",
        |v| v == 1.0,
    );
    prom.wait_for("rollguard_app_instances{app=\"web\"}", "2", |v| v == 2.0);
    prom.wait_for("rollguard_build_info", "1", |v| v == 1.0);

    one.failing.store(true, Ordering::SeqCst);
    prom.wait_for(success, "0", |v| v == 0.0);
    prom.wait_for(
        "rollguard_instance_state{instance=\"web-1\",state=\"unhealthy\"}",
        "1",
        |v| v == 1.0,
    );
    prom.wait_for(
        "rollguard_probe_failures_total{instance=\"web-1\",kind=\"status\"}",
        "a count",
        |v| v > 0.0,
    );
    prom.wait_for("rollguard_instance_healthy{instance=\"web-2\"}", "1", |v| {
        v == 1.0
    });
    prom.wait_for("rollguard_app_healthy_instances{app=\"web\"}", "1", |v| {
        v == 1.0
    });
    prom.wait_for(
        "rollguard_app_status{app=\"web\",status=\"degraded\"}",
        "1",
        |v| v == 1.0,
    );

    // The text itself, as a plain GET sees it.
    let text = get(port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    for family in [
        "rollguard_probe_success gauge",
        "rollguard_probe_duration_seconds histogram",
        "rollguard_instance_state gauge",
        "rollguard_deployments_total counter",
    ] {
        assert!(
            text.contains(&format!("\n# TYPE {family}\n")),
            "{family}:\n{text}"
        );
        let name = family.split(' ').next().unwrap_or("");
        assert!(
            text.contains(&format!("\n# HELP {name} ")),
            "{name}:\n{text}"
        );
    }
    assert!(
        text.contains("rollguard_app_release_info{app=\"web\",release=\"v2 \\\"blue\\\"\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("le=\"+Inf\"} "), "{text}");
    assert!(get(port, "/").starts_with("HTTP/1.1 404 "));
    assert!(get(port, "/metrics/x").starts_with("HTTP/1.1 404 "));
    let post = request(port, "POST", "/metrics");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log.contains("serving Prometheus metrics on http://127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn a_bad_listen_is_refused_at_its_line_and_column() {
    let parse = |text: &str| {
        rollguard::config::parse(Path::new("fleet.toml"), text, &|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let app = "\n[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = 1\n\
               [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n";
    let got = parse(&format!("[metrics]\nlisten = \"localhost:9753\"\n{app}"));
    assert!(
        got.starts_with("fleet.toml:2:10: listen \"localhost:9753\" is not an IP address and port"),
        "{got}"
    );
    assert!(
        got.contains("hint: write it as \"127.0.0.1:9753\""),
        "{got}"
    );
    let got = parse(&format!("[metrics]\nlisten = \"127.0.0.1:0\"\n{app}"));
    assert!(
        got.starts_with("fleet.toml:2:10: listen 127.0.0.1:0 has port 0"),
        "{got}"
    );
    let got = parse(&format!("[metrics]\n{app}"));
    assert!(got.contains("[metrics] has no `listen`"), "{got}");
    let got = parse(&format!(
        "[metrics]\nlisten = \"127.0.0.1:9753\"\nport = 1\n{app}"
    ));
    assert!(
        got.starts_with("fleet.toml:3:1: unknown key `port` in metrics"),
        "{got}"
    );
    // Any address may be served; without [metrics] nothing is.
    let fleet = rollguard::config::parse(
        Path::new("fleet.toml"),
        &format!("[metrics]\nlisten = \"0.0.0.0:9753\"\n{app}"),
        &|_| None,
    )
    .unwrap();
    assert_eq!(fleet.metrics.map(|m| m.listen.port()), Some(9753));
    let fleet = rollguard::config::parse(Path::new("fleet.toml"), app, &|_| None).unwrap();
    assert!(fleet.metrics.is_none());

    // The binary says so too, with the config error's code.
    let dir = TempDir::new("metrics-bad");
    let cfg = dir.join("fleet.toml");
    std::fs::write(&cfg, format!("[metrics]\nlisten = \"nowhere\"\n{app}")).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--db")
        .arg(dir.join("history.db"))
        .arg("agent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet.toml:2:10: listen \"nowhere\""), "{err}");
}

/// Waits until `log` holds `line`, at most `secs`.
fn wait_log(log: &Path, line: &str, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if std::fs::read_to_string(log).is_ok_and(|l| l.contains(line)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn the_agent_that_loses_the_lease_stops_serving_and_the_one_that_takes_it_serves() {
    let dir = TempDir::new("metrics-lease");
    let one = flapper();
    let port = free_port();
    let cfg = config(&dir, &[one.port], port);
    let db = dir.join("history.db");
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    let a = agent(&cfg, &db, &log_a);
    assert!(wait_log(&log_a, "serving Prometheus metrics", 20));
    let b = agent(&cfg, &db, &log_b);
    assert!(wait_log(&log_b, "probes; reading what it writes", 20));
    assert!(get(port, "/metrics").starts_with("HTTP/1.1 200 "));
    // A suspended holder's lease goes stale; the other agent takes it and
    // cannot bind the address A still holds, so it tries again.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(a.pid() as i32, libc::SIGSTOP) };
    assert!(
        wait_log(&log_b, "took over probing", 20),
        "{:?}",
        std::fs::read_to_string(&log_b)
    );
    assert!(wait_log(&log_b, "cannot serve /metrics on", 20));
    // Resumed, A finds its lease taken and stops serving; B then binds.
    unsafe { libc::kill(a.pid() as i32, libc::SIGCONT) };
    assert!(wait_log(&log_a, "probes; reading what it writes", 20));
    assert!(
        wait_log(&log_b, "serving Prometheus metrics", 20),
        "{:?}",
        std::fs::read_to_string(&log_b)
    );
    let text = get(port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    drop(b);
}
