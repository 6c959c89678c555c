//! Rollouts over SSH against two REAL sshd processes on loopback (two
//! "hosts", each with its own port, keys and known_hosts), driven through
//! the `rollguard` command line with the process driver: every start, stop
//! and status script runs through the host's SSH executor. The remote
//! commands run on this machine, so the instances' ports are reachable on
//! 127.0.0.1.
//!
//! 1. `deploy_over_ssh`: install v1 and deploy v2 on four instances, two per
//!    host; each instance serves v2 and was started through its own host's
//!    sshd.
//! 2. `host_that_goes_away_mid_rollout_gives_rollback_partial`: a bad v3,
//!    and host b's sshd is killed (not restarted) after b's instances were
//!    replaced; then v3 turns unhealthy. The rollback restores a's instances, cannot restore b's,
//!    and ends `rollback_partial` with exit code 4.

use crate::common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::TempDir;
use common::free_port;
use common::rollout::{BIN, releases, version_at};
use common::sshd::Sshd;

/// Both tests watch live rollouts and the machine may be small: run them
/// one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Instances: (name, host). web-1, web-2 on a; web-3, web-4 on b.
const INSTANCES: [(&str, &str); 4] = [
    ("web-1", "a"),
    ("web-2", "a"),
    ("web-3", "b"),
    ("web-4", "b"),
];

/// Two sshd "hosts", the config, releases and history, and every process a
/// test starts. Field order is drop order: the sshds go after `Drop::drop`
/// has stopped the worker and the instances, the folder last.
struct SshFleet {
    a: Sshd,
    b: Sshd,
    /// Instance ports, in `INSTANCES` order.
    ports: Vec<u16>,
    /// A `rollguard deploy` running in the background, if any.
    deploy: Option<Child>,
    dir: TempDir,
}

impl SshFleet {
    /// Starts both sshds and writes the config, or skips (None) when sshd
    /// is missing.
    fn new(test: &str) -> Option<SshFleet> {
        let a = Sshd::start(test)?;
        let b = Sshd::start(test)?;
        let dir = TempDir::new("rollout-ssh");
        releases(&dir.0);
        // v3 fails its health checks once the test creates `v3-fails`, not
        // after a fixed time: the test takes a host down between the last
        // replacement and the failure, whatever the machine's speed.
        std::fs::write(
            dir.join("releases/v3/run"),
            format!(
                "#!/bin/sh\nexec '{BIN}' demo-app --version v3 --latency-ms 2 --fail-if-exists '{}' \"$@\"\n",
                dir.join("v3-fails").display()
            ),
        )
        .unwrap();
        let ports: Vec<u16> = INSTANCES.iter().map(|_| free_port()).collect();
        let d = dir.0.display();
        let host = |name: &str, s: &Sshd| {
            format!(
                "[[host]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\n\
                 ssh = {{ port = {}, identity = \"{}\", known_hosts = \"{}\", connect_timeout = \"2s\" }}\n\n",
                s.port,
                s.user_key.display(),
                s.known_hosts.display()
            )
        };
        let mut cfg = host("a", &a) + &host("b", &b);
        cfg.push_str(&format!(
            r#"
[[app]]
name = "web"
driver = "process"

[app.process]
run = "{d}/releases/{{version}}/run --port {{port}}"
run_dir = "{d}/run"
grace = "2s"

[app.health]
interval = "250ms"
success_threshold = 2
failure_threshold = 2
deadline = "10s"
monitor = "3s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 1

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
conditions = ['[BODY].status == "healthy"']
"#
        ));
        for ((name, host), port) in INSTANCES.iter().zip(&ports) {
            cfg.push_str(&format!(
                "\n[[app.instance]]\nname = \"{name}\"\nhost = \"{host}\"\nport = {port}\n"
            ));
        }
        std::fs::write(dir.join("rollguard.toml"), cfg).unwrap();
        Some(SshFleet {
            a,
            b,
            ports,
            deploy: None,
            dir,
        })
    }

    fn db(&self) -> PathBuf {
        self.dir.join("history.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.dir.join("rollguard.toml"))
            .arg("--db")
            .arg(self.db())
            .args(args);
        c
    }

    /// Runs `rollguard ARGS`: (exit code, stdout, stderr).
    fn rollguard(&self, args: &[&str]) -> (i32, String, String) {
        common::rollguard(&self.dir.join("rollguard.toml"), &self.db(), args, &[])
    }

    /// `rollguard deploy web VERSION --yes --json`, checked for exit code
    /// `want`; returns the printed report.
    fn deploy(&self, version: &str, want: i32) -> serde_json::Value {
        let t = Instant::now();
        let (code, out, err) = self.rollguard(&["deploy", "web", version, "--yes", "--json"]);
        eprintln!("deploy {version}: exit {code} after {:?}", t.elapsed());
        assert_eq!(
            code,
            want,
            "deploy {version}:\n{out}\n{err}\nworker log:\n{}",
            self.worker_logs()
        );
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("deploy {version} printed no JSON ({e}):\n{out}\n{err}"))
    }

    /// Starts `rollguard deploy web VERSION --yes --json` in the background
    /// (output to files in the folder).
    fn spawn_deploy(&mut self, version: &str) {
        let out = std::fs::File::create(self.dir.join("deploy.out")).unwrap();
        let err = std::fs::File::create(self.dir.join("deploy.err")).unwrap();
        let child = self
            .command(&["deploy", "web", version, "--yes", "--json"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        self.deploy = Some(child);
    }

    /// The background deploy's exit code once it has ended.
    fn deploy_ended(&mut self) -> Option<i32> {
        let child = self.deploy.as_mut()?;
        let st = child.try_wait().unwrap()?;
        self.deploy = None;
        Some(st.code().unwrap_or(-1))
    }

    /// The background deploy's (stdout, stderr) so far.
    fn deploy_output(&self) -> (String, String) {
        (
            std::fs::read_to_string(self.dir.join("deploy.out")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("deploy.err")).unwrap_or_default(),
        )
    }

    /// Every worker log (for failure messages).
    fn worker_logs(&self) -> String {
        let mut s = String::new();
        for f in std::fs::read_dir(self.dir.join("rollouts"))
            .into_iter()
            .flatten()
            .flatten()
        {
            s.push_str(&format!("--- {}\n", f.path().display()));
            s.push_str(&std::fs::read_to_string(f.path()).unwrap_or_default());
        }
        s
    }

    fn served(&self) -> Vec<String> {
        self.ports.iter().map(|p| version_at(*p)).collect()
    }

    fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.db()).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    /// The state of the newest `start` change of `instance` in the newest
    /// deployment to `version`.
    fn start_state(&self, version: &str, instance: &str) -> Option<String> {
        let c = rusqlite::Connection::open(self.db()).ok()?;
        c.busy_timeout(Duration::from_secs(2)).ok()?;
        c.query_row(
            "SELECT c.state FROM instance_changes c
             WHERE c.deployment_id = (SELECT max(id) FROM deployments WHERE app = 'web' AND to_version = ?1)
               AND c.instance = ?2 AND c.action = 'start'
             ORDER BY c.id DESC LIMIT 1",
            (version, instance),
            |r| r.get(0),
        )
        .ok()
    }

    /// The pid recorded for an instance's main side (the process group
    /// leader the process driver started).
    fn instance_pid(&self, instance: &str) -> i32 {
        let f = self
            .dir
            .join("run")
            .join("web")
            .join(format!("{instance}-main.pid"));
        std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .trim()
            .parse()
            .unwrap()
    }

    /// Stops the worker if one still runs (only a worker of this test's
    /// database is signalled).
    fn kill_worker(&self) {
        let Ok(c) = rusqlite::Connection::open(self.db()) else {
            return;
        };
        let _ = c.busy_timeout(Duration::from_secs(2));
        let Ok(pid) = c.query_row("SELECT owner_pid FROM locks WHERE app = 'web'", [], |r| {
            r.get::<_, i64>(0)
        }) else {
            return;
        };
        let Ok(pid) = i32::try_from(pid) else { return };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("worker") && cmdline.contains(&*self.dir.0.to_string_lossy()) {
            // SAFETY: kill(2) on the worker this test's deploy started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for SshFleet {
    fn drop(&mut self) {
        if let Some(mut c) = self.deploy.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The worker first, so it cannot start anything more.
        self.kill_worker();
        // Every instance the rollouts started (pidfiles in run/web/).
        for f in std::fs::read_dir(self.dir.join("run").join("web"))
            .into_iter()
            .flatten()
            .flatten()
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
        // Then the sshds (fields), then the folder.
    }
}

/// Makes host `s` go away for good: no listener, no connections, the port
/// refuses. Its folder (keys, known_hosts) stays, so rollguard's ssh fails
/// only because the host is gone.
fn take_down(s: &Sshd) {
    let pid = s.pid().expect("sshd runs") as i32;
    // SAFETY: signals to the sshd this test started. Stopped first so it
    // accepts no new connection while its connections are cut.
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    s.kill_connections();
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
        assert!(t.elapsed() < Duration::from_secs(5), "sshd still listens");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of `NAME` in the environment `pid` was started with.
fn environ(pid: i32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0).find_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        kv.strip_prefix(&format!("{name}=")).map(str::to_string)
    })
}

fn history(f: &SshFleet) -> Vec<serde_json::Value> {
    let (code, out, err) = f.rollguard(&["history", "web", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap_or_else(|e| panic!("history printed no JSON ({e}): {out}"))
        .as_array()
        .unwrap()
        .clone()
}

fn outcomes(h: &[serde_json::Value]) -> Vec<String> {
    h.iter()
        .map(|d| d["outcome"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Install v1 and deploy v2 over SSH; every instance serves v2.
fn install_and_upgrade(f: &SshFleet) {
    let r = f.deploy("v1", 0);
    assert_eq!(r["outcome"], "deployed", "{r}");
    assert_eq!(f.served(), ["v1", "v1", "v1", "v1"]);
    let r = f.deploy("v2", 0);
    assert_eq!(r["outcome"], "deployed", "{r}");
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some("v1"), Some("v2"))
    );
    assert_eq!(f.served(), ["v2", "v2", "v2", "v2"]);
}

#[test]
fn deploy_over_ssh() {
    let _serial = serial();
    let t = Instant::now();
    let Some(f) = SshFleet::new("deploy_over_ssh") else {
        return;
    };
    install_and_upgrade(&f);
    // Each instance was started through its own host's sshd: the process
    // carries that session's SSH_CONNECTION (… server-ip server-port).
    for (name, host) in INSTANCES {
        let pid = f.instance_pid(name);
        let conn = environ(pid, "SSH_CONNECTION")
            .unwrap_or_else(|| panic!("{name} (pid {pid}) was not started over ssh"));
        let sshd = if host == "a" { &f.a } else { &f.b };
        assert!(
            conn.ends_with(&format!(" 127.0.0.1 {}", sshd.port)),
            "{name} should have been started through host {host}'s sshd (port {}): SSH_CONNECTION={conn}",
            sshd.port
        );
    }
    let h = history(&f);
    assert_eq!(outcomes(&h), ["deployed", "deployed"]);
    let (_, out, _) = f.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is released: {s}");
    assert_eq!(s[0]["last_good"], "v2", "{s}");
    eprintln!("deploy_over_ssh: {:?}", t.elapsed());
}

#[test]
fn host_that_goes_away_mid_rollout_gives_rollback_partial() {
    let _serial = serial();
    let t = Instant::now();
    let test = "host_that_goes_away_mid_rollout";
    let Some(mut f) = SshFleet::new(test) else {
        return;
    };
    install_and_upgrade(&f);

    // The bad release, in the background.
    f.spawn_deploy("v3");
    let started = Instant::now();
    // Wait until host b's last instance (web-4, the last batch) has been
    // replaced: its start change is done (so no script runs on b now).
    loop {
        if f.start_state("v3", "web-4").as_deref() == Some("done") {
            break;
        }
        if let Some(code) = f.deploy_ended() {
            let (out, err) = f.deploy_output();
            panic!(
                "the v3 deploy ended (exit {code}) before host b's instances were replaced:\n{out}\n{err}\n{}",
                f.worker_logs()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "web-4 was not replaced within 60 s:\n{}",
            f.worker_logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let served_b: Vec<String> = f.ports[2..].iter().map(|p| version_at(*p)).collect();
    eprintln!(
        "host b replaced after {:?} (b serves {served_b:?}); taking host b down",
        started.elapsed()
    );
    assert_eq!(served_b, ["v3", "v3"]);
    assert_eq!(
        f.start_state("v3", "web-3").as_deref(),
        Some("done"),
        "web-3 was replaced before web-4"
    );
    take_down(&f.b);
    let down_at = started.elapsed();
    std::fs::write(f.dir.join("v3-fails"), "").unwrap();

    // The rollback: a's instances restored, b's not; exit 4.
    let code = loop {
        if let Some(code) = f.deploy_ended() {
            break code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the v3 deploy did not end within 120 s (rollguard hangs with host b gone):\n{:?}\n{}",
            f.deploy_output(),
            f.worker_logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "v3 deploy ended: exit {code} after {:?} ({:?} after host b went down)",
        started.elapsed(),
        started.elapsed() - down_at
    );
    let (out, err) = f.deploy_output();
    let logs = f.worker_logs();
    let report: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("deploy printed no JSON report ({e}):\n{out}\n{err}\n{logs}"));
    assert_eq!(
        report["outcome"], "rollback_partial",
        "{report}\n{err}\n{logs}"
    );
    assert_eq!(code, 4, "rollback_partial exits 4: {report}\n{err}");
    assert_eq!(
        report["rollback"]["code"], "E_GATE_FAILED",
        "the rollback was for v3's health: {report}"
    );
    assert_eq!(report["to"], "v3");

    // a's instances are back on v2; b's could not be touched (v3 still runs
    // there, as nothing could reach the host to change it).
    assert_eq!(f.served()[..2], ["v2", "v2"], "host a restored: {logs}");
    assert_eq!(f.served()[2..], ["v3", "v3"], "host b untouched");

    // The events name exactly the unrestored instances.
    let c = f.sql();
    let id: i64 = report["id"].as_i64().unwrap();
    let mut st = c
        .prepare(
            "SELECT kind, reason, evidence, at_ms FROM events WHERE deployment_id = ?1 ORDER BY id",
        )
        .unwrap();
    let rows: Vec<(String, Option<String>, Option<String>, i64)> = st
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // The timeline, for whoever reads the test's output.
    let t0 = rows.first().map_or(0, |r| r.3);
    for (k, reason, _, at) in &rows {
        let reason: String = reason.as_deref().unwrap_or("").chars().take(160).collect();
        eprintln!("  +{:>6} ms  {k}  {reason}", at - t0);
    }
    let events: Vec<(String, Option<String>, Option<String>)> =
        rows.into_iter().map(|(k, r, e, _)| (k, r, e)).collect();
    let instances_of = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = events
            .iter()
            .filter(|(k, _, _)| k == kind)
            .filter_map(|(_, _, e)| {
                let e: serde_json::Value = serde_json::from_str(e.as_deref()?).ok()?;
                e["instance"].as_str().map(str::to_string)
            })
            .collect();
        v.sort();
        v
    };
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        instances_of("instance_not_restored"),
        ["web-3", "web-4"],
        "events: {kinds:?}"
    );
    assert_eq!(
        instances_of("instance_restored"),
        ["web-1", "web-2"],
        "events: {kinds:?}"
    );
    for (k, reason, _) in &events {
        if k == "instance_not_restored" {
            let r = reason.as_deref().unwrap_or("");
            assert!(
                r.contains("ssh to b"),
                "the reason names the unreachable host: {r}"
            );
        }
    }
    let (_, reason, evidence) = events
        .iter()
        .find(|(k, _, _)| k == "rollback_failed")
        .unwrap_or_else(|| panic!("no rollback_failed event: {kinds:?}"));
    let reason = reason.as_deref().unwrap_or("");
    assert!(
        reason.contains("E_ROLLBACK_PARTIAL")
            && reason.contains("web-3")
            && reason.contains("web-4"),
        "{reason}"
    );
    assert!(
        !reason.contains("web-1") && !reason.contains("web-2"),
        "{reason}"
    );
    let ev: serde_json::Value =
        serde_json::from_str(evidence.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(ev["outcome"], "rollback_partial", "{ev}");

    // History shows it; the lock is released.
    let h = history(&f);
    assert_eq!(
        outcomes(&h),
        ["rollback_partial", "deployed", "deployed"],
        "{h:?}"
    );
    assert_eq!(h[0]["id"], report["id"]);
    let (_, out, _) = f.rollguard(&["history", "web", "--limit", "1", "--json"]);
    let last: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(last[0]["outcome"], "rollback_partial", "{last}");
    let (_, out, _) = f.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is released: {s}");
    assert!(s[0]["active"].as_array().is_some_and(Vec::is_empty), "{s}");
    eprintln!("{test}: {:?}", t.elapsed());
}
