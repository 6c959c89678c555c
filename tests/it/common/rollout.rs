//! A rollout test environment: an app of three process instances (releases
//! v1 and v2 good; v3 healthy for 1.5 s, then failing its health checks;
//! v4 like v3 but failing user requests too) behind a real nginx or HAProxy,
//! driven through the `rollguard` binary; plus a client that sends requests
//! through the balancer without pause.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::TempDir;
use super::free_port;
use super::lb::{Haproxy, Nginx, get};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// Which balancer fronts the app.
pub enum Balancer {
    /// nginx with an upstream file.
    Nginx(Nginx),
    /// HAProxy with its runtime API.
    Haproxy(Haproxy),
}

/// The environment.
pub struct Env {
    /// Config, releases, run files, history.
    pub dir: TempDir,
    /// The balancer.
    pub lb: Balancer,
    /// Main ports.
    pub ports: Vec<u16>,
    /// Alt ports.
    pub alt_ports: Vec<u16>,
    /// The config's `[app.traffic]` section for the balancer.
    pub traffic: String,
    /// A PostgreSQL history's URL, given in `$ROLLGUARD_DB` instead of the
    /// file `DIR/history.db`.
    pub history_url: Option<String>,
}

/// What the client saw: successes per body, failures with their time.
#[derive(Debug, Default)]
pub struct Seen {
    /// 200 answers per version.
    pub ok: std::collections::BTreeMap<String, usize>,
    /// Failures: when (since the client started) and what.
    pub failed: Vec<(Duration, String)>,
}

impl Seen {
    /// All successes.
    pub fn total(&self) -> usize {
        self.ok.values().sum()
    }

    /// The first few failures, for messages.
    pub fn some_failures(&self) -> Vec<&(Duration, String)> {
        self.failed.iter().take(5).collect()
    }
}

impl Env {
    /// Sets up releases, instances with alt ports, and `lb` ("nginx" or
    /// "haproxy"), or skips when the balancer is missing.
    pub fn new(test: &str, lb: &str, extra_config: &str) -> Option<Env> {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let alt_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = TempDir::new("rollout");
        releases(&dir.0);
        let (lb, traffic) = match lb {
            "nginx" => {
                let initial: String = ports
                    .iter()
                    .map(|p| format!("server 127.0.0.1:{p};\n"))
                    .collect();
                let n = Nginx::start(test, &initial)?;
                let t = format!(
                    "[app.traffic]\ntype = \"nginx\"\nupstream_file = \"{}\"\nvalidate = \"{}\"\nreload = \"{}\"\n",
                    n.upstream.display(),
                    n.validate,
                    n.reload
                );
                (Balancer::Nginx(n), t)
            }
            _ => {
                let names: Vec<(String, u16, bool)> = (0..3)
                    .flat_map(|i| {
                        [
                            (format!("web-{}", i + 1), ports[i], true),
                            (format!("web-{}-alt", i + 1), alt_ports[i], false),
                        ]
                    })
                    .collect();
                let refs: Vec<(&str, u16, bool)> =
                    names.iter().map(|(n, p, e)| (n.as_str(), *p, *e)).collect();
                let h = Haproxy::start(test, &refs)?;
                let t = format!(
                    "[app.traffic]\ntype = \"haproxy\"\nsocket = \"{}\"\nbackend = \"app\"\ndrain_timeout = \"5s\"\n",
                    h.socket.display()
                );
                (Balancer::Haproxy(h), t)
            }
        };
        let d = dir.0.display();
        let mut cfg = format!(
            r#"
[[app]]
name = "web"
driver = "process"

[app.process]
run = "{d}/releases/{{version}}/run --port {{port}}"
run_dir = "{d}/run"
grace = "2s"

{traffic}
[app.health]
interval = "250ms"
# A started instance has this long to listen before its failures count, as
# a user gives an app that takes a moment to start: on a loaded machine the
# test releases (a debug binary) can take over a second.
initial_delay = "1500ms"
success_threshold = 2
failure_threshold = 2
deadline = "10s"
monitor = "3s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 1
canary = 1
steps = [25, 50]
step_pause = "2s"
{extra_config}

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
conditions = ['[BODY].status == "healthy"']
"#
        );
        for i in 0..3 {
            cfg.push_str(&format!(
                "\n[[app.instance]]\nname = \"web-{}\"\nport = {}\nalt_port = {}\n",
                i + 1,
                ports[i],
                alt_ports[i]
            ));
        }
        std::fs::write(dir.join("rollguard.toml"), cfg).unwrap();
        Some(Env {
            dir,
            lb,
            ports,
            alt_ports,
            traffic,
            history_url: None,
        })
    }

    /// Writes release `version`, which fails its health checks (and user
    /// requests with `flags` = `--fail-requests`) while the file `bad-PORT`
    /// exists in the test's folder, so a test picks which instance fails
    /// and when. `before` is shell run first (with the port in `$2`).
    pub fn release_failing_while_marked(&self, version: &str, before: &str, flags: &str) {
        let d = self.dir.0.display();
        let release = self.dir.join(&format!("releases/{version}"));
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(
            release.join("run"),
            format!(
                "#!/bin/sh\n{before}exec '{BIN}' demo-app --version {version} --latency-ms 2 \
                 {flags} --fail-if-exists '{d}/bad-'\"$2\" \"$@\"\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(release.join("run"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("rollguard.toml")
    }

    /// `rollguard deploy web VERSION --yes --strategy STRATEGY`, which must
    /// succeed.
    pub fn deploy_ok(&self, version: &str, strategy: &str) {
        let (code, out, err) =
            self.rollguard(&["deploy", "web", version, "--yes", "--strategy", strategy]);
        assert_eq!(code, 0, "deploy {version}: {out}\n{err}");
    }

    /// Replaces `from`, which the config must hold, with `to`.
    pub fn edit_config(&self, from: &str, to: &str) {
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        assert!(cfg.contains(from), "the config has no {from:?}");
        std::fs::write(self.config(), cfg.replace(from, to)).unwrap();
    }

    /// The balancer's URL.
    pub fn url(&self) -> String {
        let port = match &self.lb {
            Balancer::Nginx(n) => n.proc.port,
            Balancer::Haproxy(h) => h.proc.port,
        };
        format!("http://127.0.0.1:{port}/")
    }

    /// Runs `rollguard --config .. --db .. ARGS`: (exit code, stdout, stderr).
    pub fn rollguard(&self, args: &[&str]) -> (i32, String, String) {
        match &self.history_url {
            None => super::rollguard(&self.config(), &self.dir.join("history.db"), args, &[]),
            Some(url) => super::output(
                super::rollguard_command()
                    .arg("--config")
                    .arg(self.config())
                    .args(args)
                    .env("ROLLGUARD_DB", url)
                    .env("XDG_DATA_HOME", self.dir.join("data")),
            ),
        }
    }

    /// What each instance serves on `ports`, asked directly ("down" if
    /// nothing listens).
    pub fn served(&self, ports: &[u16]) -> Vec<String> {
        ports.iter().map(|p| version_at(*p)).collect()
    }

    /// `rollguard deploy web VERSION --yes --json EXTRA` while a client
    /// sends requests through the balancer.
    pub async fn deploy_under_load(
        &self,
        version: &str,
        extra: &[&str],
    ) -> (i32, serde_json::Value, Seen) {
        let stop = Arc::new(AtomicBool::new(false));
        let client = load(self.url(), 4, stop.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut args = vec!["deploy", "web", version, "--yes", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = tokio::task::block_in_place(|| self.rollguard(&args));
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        let seen = client.await.unwrap();
        let report: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("deploy printed no JSON ({e}):\n{out}\n{err}"));
        (code, report, seen)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Stop every instance the rollouts started (pidfiles in run/).
        let run = self.dir.join("run");
        for app in std::fs::read_dir(&run).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(app.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.path().extension().is_some_and(|e| e == "pid")
                    && let Some(pid) = std::fs::read_to_string(f.path())
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok())
                {
                    stop_instance(pid, &f.path().with_extension("start"));
                }
            }
        }
    }
}

/// Stops the process group of an instance a rollout of this test started,
/// by its pidfile's `pid` and the start time the driver wrote beside it.
/// Tests run side by side in one process: a pid whose instance has ended
/// may be another test's process by now (a rollout worker leads a group of
/// its pid), so a live process with another start time is left alone. A
/// group whose leader is gone still holds its number, which the kernel
/// does not hand out again while it exists.
pub fn stop_instance(pid: i32, start_file: &Path) {
    let want = std::fs::read_to_string(start_file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    kill_if_ours(pid, want);
}

/// SIGKILL to process `pid` and the group it leads, while `pid` is still
/// the process that started at `want` (ticks after boot); to the group
/// alone when `pid` is gone (a group holds its number while it exists);
/// nothing when another process has `pid` now.
pub fn kill_if_ours(pid: i32, want: Option<u64>) {
    use rollguard::host::{self, Pid};
    match host::pid(i64::from(pid)) {
        Pid::Live { start } if start.is_some() && start == want => {
            let _ = host::signal_group(pid, libc::SIGKILL);
            let _ = host::signal(pid, libc::SIGKILL);
        }
        Pid::Live { .. } => {}
        Pid::Gone => {
            let _ = host::signal_group(pid, libc::SIGKILL);
        }
    }
}

/// Writes releases v1..v7 as `releases/VERSION/run` scripts: v3
/// fails its health page 1.5 s after it starts, v4 and v6 every request
/// too; v5 ignores SIGTERM, so stopping it takes the app's whole `grace`;
/// v7 is good but takes 2 s to start listening.
pub fn releases(dir: &Path) {
    for (v, extra) in [
        ("v1", ""),
        ("v2", ""),
        ("v3", "--fail-after 1500ms"),
        ("v4", "--fail-after 1500ms --fail-requests"),
        ("v5", ""),
        ("v6", "--fail-after 1500ms --fail-requests"),
        ("v7", ""),
    ] {
        let d = dir.join("releases").join(v);
        std::fs::create_dir_all(&d).unwrap();
        // An ignored signal stays ignored across exec.
        let trap = match v {
            "v5" => "trap '' TERM\n",
            "v7" => "sleep 2\n",
            _ => "",
        };
        let script = format!(
            "#!/bin/sh\n{trap}exec '{BIN}' demo-app --version {v} --latency-ms 2 {extra} \"$@\"\n"
        );
        let run = d.join("run");
        std::fs::write(&run, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The version an instance on `port` reports, or "down".
pub fn version_at(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return "down".into();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split("\"version\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("?")
        .to_string()
}

/// `workers` loops sending requests (a new connection each, so failures
/// are the server side's) until `stop`.
pub fn load(url: String, workers: usize, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (url, stop) = (url.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let c = super::lb::client(true);
                let mut seen = Seen::default();
                while !stop.load(Ordering::Relaxed) {
                    match get(&c, &url).await {
                        Ok(body) => {
                            let v = body
                                .split("\"version\":\"")
                                .nth(1)
                                .and_then(|r| r.split('"').next())
                                .unwrap_or("?")
                                .to_string();
                            *seen.ok.entry(v).or_default() += 1;
                        }
                        Err(e) => seen.failed.push((started.elapsed(), e)),
                    }
                }
                seen
            }));
        }
        let mut all = Seen::default();
        for t in tasks {
            let s = t.await.unwrap();
            for (k, v) in s.ok {
                *all.ok.entry(k).or_default() += v;
            }
            all.failed.extend(s.failed);
        }
        all.failed.sort_by_key(|(t, _)| *t);
        all
    })
}

/// The pid holding the lock of `web` (the rollout's worker), 0 if none.
pub fn worker_pid(env: &Env) -> i32 {
    let conn = rusqlite::Connection::open(env.dir.join("history.db")).unwrap();
    conn.query_row("SELECT owner_pid FROM locks WHERE app = 'web'", [], |r| {
        r.get(0)
    })
    .unwrap_or(0)
}

/// Sends SIGKILL to `pid` (a worker the test started).
pub fn kill9(pid: i32) {
    assert!(pid > 0);
    // SAFETY: SIGKILL to the worker this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}
