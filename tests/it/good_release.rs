//! A release that ran before rollguard's first deployment is a good one once
//! the monitor has seen it healthy on every instance: real demo-app
//! processes started outside rollguard (in the process driver's pidfile
//! layout), a [`Monitor`] on their config and history, then `deploy` and a
//! plain `rollback` through the command line behind a real nginx. And an
//! app whose instances run mixed versions, or are not all healthy, records
//! nothing.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempDir;
use common::free_port;
use common::rollout::{Env, releases, version_at};
use rollguard::monitor::Monitor;
use rollguard::store::{Release, Store};

/// Starts `version` of `app` for `instance` as the process driver would
/// have (its own session, `{run_dir}/{app}/{instance}-main.pid`, `.start`
/// and `.version`), but without rollguard: it listens on `listen`.
fn start_outside(dir: &Path, app: &str, instance: &str, version: &str, listen: u16) {
    let run = dir.join("run").join(app);
    std::fs::create_dir_all(&run).unwrap();
    let log = std::fs::File::create(run.join(format!("{instance}-main.log"))).unwrap();
    let mut cmd = Command::new(dir.join("releases").join(version).join("run"));
    cmd.args(["--port", &listen.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the child leads its own group,
    // like an instance the process driver starts.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let pid = cmd.spawn().unwrap().id();
    // The start time the driver checks a pid against: field 22 of
    // /proc/PID/stat, the 20th after the command's closing parenthesis.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(") ").unwrap() + 2..];
    let start = rest.split_whitespace().nth(19).unwrap();
    let base = run.join(format!("{instance}-main"));
    std::fs::write(base.with_extension("start"), format!("{start}\n")).unwrap();
    std::fs::write(base.with_extension("version"), format!("{version}\n")).unwrap();
    std::fs::write(base.with_extension("pid"), format!("{pid}\n")).unwrap();
}

/// Kills, when dropped, every process group named by a pidfile under the
/// folder (what a test started; declared after the folder, so dropped first).
struct StopOnDrop(std::path::PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for f in std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|a| std::fs::read_dir(a.path()).into_iter().flatten().flatten())
        {
            if f.path().extension().is_some_and(|e| e == "pid")
                && let Some(pid) = std::fs::read_to_string(f.path())
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                    .filter(|p| *p > 1)
            {
                crate::common::rollout::stop_instance(pid, &f.path().with_extension("start"));
            }
        }
    }
}

/// Waits until each port answers with its version.
fn wait_serving(ports: &[u16], versions: &[&str]) {
    let end = Instant::now() + Duration::from_secs(10);
    while ports.iter().map(|p| version_at(*p)).collect::<Vec<_>>() != versions {
        assert!(Instant::now() < end, "instances never served {versions:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `app`'s release `version`, as the history holds it.
fn release(db: &Path, app: &str, version: &str) -> Option<Release> {
    Store::open(db).unwrap().release(app, version).unwrap()
}

/// Runs a monitor on `config` and `db` until `done` holds (at most
/// `limit`), then `linger` longer, and stops it.
async fn monitor_until(
    config: &Path,
    db: &Path,
    limit: Duration,
    linger: Duration,
    mut done: impl FnMut() -> bool,
) {
    let fleet = Arc::new(rollguard::config::load(config).unwrap());
    let monitor =
        Monitor::start(fleet, &rollguard::store::Location::File(db.to_path_buf())).unwrap();
    let end = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < end, "the monitor never got there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(linger).await;
    monitor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_from_before_rollguard_is_a_rollback_target_once_seen_healthy() {
    let Some(env) = Env::new("good_release", "nginx", "") else {
        return;
    };
    for (i, port) in env.ports.iter().enumerate() {
        start_outside(&env.dir.0, "web", &format!("web-{}", i + 1), "v1", *port);
    }
    wait_serving(&env.ports, &["v1", "v1", "v1"]);
    let db = env.dir.join("history.db");
    assert!(!db.exists(), "rollguard has recorded nothing yet");

    let started = rollguard::model::now_ms();
    monitor_until(
        &env.config(),
        &db,
        Duration::from_secs(20),
        Duration::ZERO,
        || db.exists() && release(&db, "web", "v1").is_some_and(|r| r.last_healthy_ms.is_some()),
    )
    .await;
    let v1 = release(&db, "web", "v1").unwrap();
    assert!(v1.last_healthy_ms.unwrap() >= started, "{v1:?}");
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store
            .last_good_release("web", None)
            .unwrap()
            .map(|r| r.version),
        Some("v1".to_string())
    );
    assert!(
        store.deployments(Some("web"), 10).unwrap().is_empty(),
        "the monitor deploys nothing"
    );
    drop(store);

    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes"]);
    assert_eq!(code, 0, "deploy v2:\n{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);

    // The most ordinary rollback needs no --force.
    let (code, out, err) = env.rollguard(&["rollback", "web", "--reason", "x", "--yes"]);
    assert_eq!(code, 0, "rollback:\n{out}\n{err}");
    assert!(out.contains("v1"), "{out}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_versions_or_an_unhealthy_instance_record_nothing() {
    let dir = TempDir::new("good-release-none");
    let _stop = StopOnDrop(dir.join("run"));
    releases(&dir.0);
    let d = dir.0.display();
    let mut cfg = String::new();
    let mut ports = Vec::new();
    // `fine` runs v1 everywhere, healthy: the control. `mixed` runs v1 on
    // two instances and v2 on the third, all healthy. `sick` runs v1
    // everywhere, but its third instance listens on another port than the
    // one configured, so its probes fail.
    for (app, versions) in [
        ("fine", ["v1", "v1", "v1"]),
        ("mixed", ["v1", "v1", "v2"]),
        ("sick", ["v1", "v1", "v1"]),
    ] {
        cfg.push_str(&format!(
            r#"
[[app]]
name = "{app}"
driver = "process"

[app.process]
run = "{d}/releases/{{version}}/run --port {{port}}"
run_dir = "{d}/run"

[app.health]
interval = "250ms"
success_threshold = 2
failure_threshold = 2

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
"#
        ));
        for (i, v) in versions.iter().enumerate() {
            let (port, listen) = (free_port(), free_port());
            let listen = if app == "sick" && i == 2 {
                listen
            } else {
                port
            };
            cfg.push_str(&format!(
                "\n[[app.instance]]\nname = \"{app}-{}\"\nport = {port}\n",
                i + 1
            ));
            start_outside(&dir.0, app, &format!("{app}-{}", i + 1), v, listen);
            ports.push((listen, *v));
        }
    }
    let config = dir.join("rollguard.toml");
    std::fs::write(&config, cfg).unwrap();
    let listening: Vec<u16> = ports.iter().map(|(p, _)| *p).collect();
    let versions: Vec<&str> = ports.iter().map(|(_, v)| *v).collect();
    wait_serving(&listening, &versions);

    let db = dir.join("history.db");
    // Once the control is recorded, a few more rounds for the others.
    monitor_until(
        &config,
        &db,
        Duration::from_secs(20),
        Duration::from_secs(3),
        || db.exists() && release(&db, "fine", "v1").is_some_and(|r| r.last_healthy_ms.is_some()),
    )
    .await;
    let store = Store::open(&db).unwrap();
    for app in ["mixed", "sick"] {
        assert_eq!(
            store.last_good_release(app, None).unwrap(),
            None,
            "{app} has no good release"
        );
        assert!(
            store.releases(app).unwrap().is_empty(),
            "{app}: nothing recorded"
        );
    }
}
