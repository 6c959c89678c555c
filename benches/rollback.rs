//! Rollback speed benchmark: how fast a failing release is taken out of
//! traffic, measured end to end through the real `rollguard` binary, a real
//! balancer and real instances.
//!
//! Scenarios (each run `--runs` times, default 5):
//!
//! * `blue_green_haproxy`: three process instances of v1 behind HAProxy
//!   (runtime API); a blue-green deploy of v3 (healthy 1.5 s, then failing
//!   its health checks) switches traffic over, fails while monitoring, and
//!   switches back.
//! * `canary_nginx`: the same behind nginx (upstream file + reload); a
//!   canary of v4 (like v3, and failing user requests too) at 25 % fails
//!   during its step pause and is cut.
//! * `rolling_docker` (`--docker-runs`, default 3): four containers of an
//!   image built `FROM scratch` around a static busybox, behind nginx; a
//!   rolling deploy replaces all four with a release whose health page the
//!   benchmark turns bad as soon as the `monitor` stage starts, so the
//!   rollback restores all four. Skipped with a message when `docker info`
//!   fails (honours `DOCKER_HOST`) or `/bin/busybox` is missing.
//! * `rolling_docker_bad_after_3s` and `surge_docker_bad_after_3s`
//!   (`--docker-runs`; skipped like `rolling_docker`): four containers of
//!   v1 behind nginx, each instance with an `alt_port`; a rolling deploy
//!   (batch 1, no pause, `monitor = "10s"`; the second with `surge =
//!   true`) of v2, an image whose httpd answers 500 on its health page and
//!   on every user request from 3 s after its container starts. Nothing
//!   the benchmark does turns it bad. The client counts every request not
//!   answered 2xx (or not answered); the times are ms after v2 went bad:
//!   3 s after the first v2 container of the run started (`docker
//!   inspect`). With `ROLLGUARD_BENCH_EVENTS` set, each run's container
//!   starts, events and failed requests are printed on the same clock.
//!   These two probe every 250 ms (two passes pass a gate).
//! * `rolling_docker_bad_after_3s_1s_probes` and
//!   `surge_docker_bad_after_3s_1s_probes`: the same deploys with health
//!   as a user would match it to the image's own HEALTHCHECK: `interval =
//!   "1s"`, `timeout = "1s"`, `success_threshold = 1`, `failure_threshold
//!   = 2`. Every gate then passes on the first probe, so all four
//!   instances run v2 before the first goes bad, and the rollback must
//!   choose who serves while it restores.
//!
//! Times are wall-clock ms since the epoch on this machine, from the
//! events the worker records in SQLite and from a client of this process
//! that sends one request (new connection) through the balancer every
//! 20 ms. The reference point is the end of the deciding probe: the last
//! sample of the `gate_failed` evidence, `at_ms + latency_ms` (for the
//! `*_bad_after_3s` scenarios, the moment v2 went bad).
//!
//! ```text
//! cargo bench --bench rollback -- [--runs 5] [--docker-runs 3] \
//!     [--only blue_green_haproxy,canary_nginx,rolling_docker,rolling_docker_bad_after_3s,\
//!             surge_docker_bad_after_3s,rolling_docker_bad_after_3s_1s_probes,\
//!             surge_docker_bad_after_3s_1s_probes]
//! ```
// A benchmark that cannot set up stops with its reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unsafe_code
)]

mod common;

use common::arg;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");
const POLL_EVERY: Duration = Duration::from_millis(20);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn now_ms_f() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

// ---------------------------------------------------------------- support

/// A temporary folder, removed on drop (kept, and named on stderr, when
/// `ROLLGUARD_BENCH_KEEP` is set).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::AtomicU32;
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rollguard-bench-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ROLLGUARD_BENCH_KEEP").is_some() {
            eprintln!("  kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A port that was free a moment ago, below the ephemeral range.
fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919).wrapping_add(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos(),
    );
    for _ in 0..200 {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A foreground balancer process, stopped (SIGTERM, then SIGKILL) on drop.
struct Proc {
    _dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Proc {
    fn spawn(
        mut cmd: Command,
        dir: TempDir,
        port: u16,
        also: Option<PathBuf>,
    ) -> Result<Proc, String> {
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut p = Proc {
            _dir: dir,
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let ready = |p: &Proc| {
            std::net::TcpStream::connect(("127.0.0.1", p.port)).is_ok()
                && also
                    .as_ref()
                    .is_none_or(|s| std::os::unix::net::UnixStream::connect(s).is_ok())
        };
        loop {
            if p.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                return Err(format!("balancer exited at start (port {port})"));
            }
            if ready(&p) {
                std::thread::sleep(Duration::from_millis(100));
                if p.child.as_mut().unwrap().try_wait().unwrap().is_none() && ready(&p) {
                    return Ok(p);
                }
                return Err(format!("balancer exited at start (port {port})"));
            }
            if Instant::now() > deadline {
                return Err(format!("balancer does not listen on {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) of our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn attempts<T>(mut start: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut last = String::new();
    for _ in 0..3 {
        match start() {
            Ok(t) => return Ok(t),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// nginx on 127.0.0.1 with `upstream app { include DIR/app.upstream; }`.
/// Returns the process and the `[app.traffic]` section.
fn start_nginx(initial: &str) -> Result<(Proc, String), String> {
    let bin = find_program("nginx").ok_or("program `nginx` is missing")?;
    attempts(|| {
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.0.display().to_string();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("app.upstream"), initial).unwrap();
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log notice;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
               upstream app {{ include {d}/app.upstream; }}\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location / {{ proxy_pass http://app; proxy_next_upstream off; \
                 proxy_connect_timeout 2s; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let b = bin.display();
        let traffic = format!(
            "[app.traffic]\ntype = \"nginx\"\nupstream_file = \"{d}/app.upstream\"\n\
             validate = \"{b} -t -p {d} -c {d}/nginx.conf\"\n\
             reload = \"{b} -s reload -p {d} -c {d}/nginx.conf\"\n"
        );
        let mut cmd = Command::new(&bin);
        cmd.args(["-p", &d, "-c", &format!("{d}/nginx.conf")]);
        Ok((Proc::spawn(cmd, dir, port, None)?, traffic))
    })
}

/// HAProxy on 127.0.0.1 with `backend app` and an admin socket; `servers`
/// are `(name, port, enabled)`.
fn start_haproxy(servers: &[(String, u16, bool)]) -> Result<(Proc, String), String> {
    let bin = find_program("haproxy").ok_or("program `haproxy` is missing")?;
    attempts(|| {
        let dir = TempDir::new("haproxy");
        let port = free_port();
        let socket = dir.join("admin.sock");
        let mut conf = format!(
            "global\n  stats socket {} mode 600 level admin\n  maxconn 2000\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 20s\n  \
             timeout server 20s\n  retries 0\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend app\n\
             backend app\n  balance roundrobin\n",
            socket.display()
        );
        for (name, p, enabled) in servers {
            conf.push_str(&format!(
                "  server {name} 127.0.0.1:{p} weight 100{}\n",
                if *enabled { "" } else { " disabled" }
            ));
        }
        std::fs::write(dir.join("haproxy.cfg"), conf).unwrap();
        let traffic = format!(
            "[app.traffic]\ntype = \"haproxy\"\nsocket = \"{}\"\nbackend = \"app\"\ndrain_timeout = \"5s\"\n",
            socket.display()
        );
        let mut cmd = Command::new(&bin);
        cmd.args(["-db", "-f"]).arg(dir.join("haproxy.cfg"));
        Ok((Proc::spawn(cmd, dir, port, Some(socket.clone()))?, traffic))
    })
}

/// One HTTP/1.0 GET on a new connection: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

fn version_of(body: &str) -> Option<String> {
    Some(
        body.split("\"version\":\"")
            .nth(1)?
            .split('"')
            .next()?
            .to_string(),
    )
}

/// One request of the polling client.
struct Poll {
    /// When it was sent.
    at_ms: i64,
    /// The answer's status; `None` when no answer came (connection refused,
    /// reset or timed out).
    status: Option<u16>,
    /// 200 and the version in the body.
    ok_version: Option<String>,
}

impl Poll {
    /// Not answered with a 2xx status (or not answered at all).
    fn failed(&self) -> bool {
        !self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A client sending one request through the balancer every 20 ms.
struct Poller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Poll>>,
}

impl Poller {
    fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut polls = Vec::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let at_ms = now_ms();
                let answer = http_get(port, "/");
                let status = answer.as_ref().map(|(s, _)| *s);
                let ok_version = match answer {
                    Some((200, body)) => version_of(&body),
                    _ => None,
                };
                polls.push(Poll {
                    at_ms,
                    status,
                    ok_version,
                });
                next += POLL_EVERY;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            polls
        });
        Poller { stop, thread }
    }

    fn finish(self) -> Vec<Poll> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// What the client saw: the send time of the last request not answered
/// 200 by `old`, and of the first one after it (from then on every answer
/// came from `old`), plus the count of failed (not 2xx, or no answer) and
/// non-old answers.
fn client_back(polls: &[Poll], old: &str) -> (Option<i64>, Option<i64>, usize, usize) {
    let is_old = |p: &Poll| p.ok_version.as_deref() == Some(old);
    let failed = polls.iter().filter(|p| p.failed()).count();
    let not_old = polls.iter().filter(|p| !is_old(p)).count();
    match polls.iter().rposition(|p| !is_old(p)) {
        None => (None, None, failed, not_old),
        Some(i) => (
            Some(polls[i].at_ms),
            polls.get(i + 1).map(|p| p.at_ms),
            failed,
            not_old,
        ),
    }
}

/// Stops every instance the rollouts started (pidfiles under `run/`).
fn kill_pidfiles(run: &Path) {
    for app in std::fs::read_dir(run).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(app.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "pid")
                && let Some(pid) = std::fs::read_to_string(f.path())
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
                && pid > 1
            {
                // SAFETY: kill on a pid (group) this benchmark's rollouts started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Runs `rollguard --config CFG --db DB ARGS`: (code, stdout, stderr).
fn rollguard(cfg: &Path, db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rollguard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------- events

struct Ev {
    id: i64,
    at_ms: i64,
    kind: String,
    evidence: Value,
    reason: String,
}

fn open_db(db: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the history db");
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn last_deployment(db: &Path) -> i64 {
    open_db(db)
        .query_row("SELECT max(id) FROM deployments", [], |r| r.get(0))
        .unwrap()
}

fn events(c: &rusqlite::Connection, dep: i64) -> Vec<Ev> {
    let mut st = c
        .prepare(
            "SELECT id, at_ms, kind, evidence, reason FROM events WHERE deployment_id = ?1 ORDER BY id",
        )
        .unwrap();
    st.query_map([dep], |r| {
        let ev: Option<String> = r.get(3)?;
        Ok(Ev {
            id: r.get(0)?,
            at_ms: r.get(1)?,
            kind: r.get(2)?,
            evidence: ev
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null),
            reason: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Timings of one rolled-back deployment, in ms after the end of the
/// deciding probe (or, after [`Timing::rebase`], after another moment).
#[derive(Default)]
struct Timing {
    /// Deciding probe end (epoch ms, fractional).
    probe_end: f64,
    values: Vec<(&'static str, f64)>,
}

impl Timing {
    fn put(&mut self, name: &'static str, at_ms: f64) {
        self.values.push((name, at_ms - self.probe_end));
    }

    /// Makes every time so far (and every later `put`) relative to
    /// `zero` (epoch ms) instead of the deciding probe's end, and records
    /// that end as `deciding_probe_end_ms`.
    fn rebase(&mut self, zero: f64) {
        let shift = self.probe_end - zero;
        for (_, v) in &mut self.values {
            *v += shift;
        }
        self.values.insert(0, ("deciding_probe_end_ms", shift));
        self.probe_end = zero;
    }
}

/// Reads the deciding probe and the rollback events of deployment `dep`.
fn rollback_timing(db: &Path, dep: i64) -> Result<Timing, String> {
    let c = open_db(db);
    let evs = events(&c, dep);
    let gate = evs
        .iter()
        .rfind(|e| e.kind == "gate_failed")
        .ok_or_else(|| {
            let failed = evs.iter().find(|e| e.kind == "rollout_failed");
            format!(
                "no gate_failed event; kinds: {:?}; rollout_failed: {}",
                evs.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
                failed
                    .map(|e| format!("{} {}", e.reason, e.evidence))
                    .unwrap_or_default()
            )
        })?;
    let samples = gate.evidence["evidence"]["last_samples"]
        .as_array()
        .or_else(|| gate.evidence["last_samples"].as_array())
        .ok_or("gate_failed without last_samples")?;
    let last = samples.last().ok_or("no samples")?;
    let probe_end =
        last["at_ms"].as_f64().unwrap_or(0.0) + last["latency_ms"].as_f64().unwrap_or(0.0);
    let mut t = Timing {
        probe_end,
        values: Vec::new(),
    };
    t.put("gate_failed_event_ms", gate.at_ms as f64);
    // A slot seen failing while a start was under way, taken out of
    // traffic before the rollback began.
    if let Some(out) = evs
        .iter()
        .find(|e| e.kind == "traffic_changing" && e.reason.contains(" fails: out of traffic"))
        && let Some(done) = evs
            .iter()
            .find(|e| e.kind == "traffic_changed" && e.id > out.id)
    {
        t.put("failing_slot_out_of_traffic_ms", done.at_ms as f64);
    }
    let started = evs
        .iter()
        .find(|e| e.kind == "rollback_started" && e.id > gate.id)
        .ok_or("no rollback_started")?;
    t.put("rollback_started_ms", started.at_ms as f64);
    if let Some(tc) = evs
        .iter()
        .find(|e| e.kind == "traffic_changing" && e.id > started.id)
    {
        t.put("first_traffic_change_started_ms", tc.at_ms as f64);
        if let Some(done) = evs
            .iter()
            .find(|e| e.kind == "traffic_changed" && e.id > tc.id)
        {
            t.put("first_traffic_change_done_ms", done.at_ms as f64);
        }
    }
    if let Some(done) = evs.iter().find(|e| {
        (e.kind == "rollback_completed" || e.kind == "rollback_failed") && e.id > started.id
    }) {
        t.put("rollback_completed_ms", done.at_ms as f64);
        if done.kind != "rollback_completed" {
            return Err(format!("rollback failed: {}", done.evidence));
        }
    }
    Ok(t)
}

// ---------------------------------------------------------------- process scenarios

/// Writes releases v1..v4 as `releases/VERSION/run` scripts.
fn releases(dir: &Path) {
    for (v, extra) in [
        ("v1", ""),
        ("v2", ""),
        ("v3", "--fail-after 1500ms"),
        ("v4", "--fail-after 1500ms --fail-requests"),
    ] {
        let d = dir.join("releases").join(v);
        std::fs::create_dir_all(&d).unwrap();
        let script = format!(
            "#!/bin/sh\nexec '{BIN}' demo-app --version {v} --latency-ms 2 {extra} \"$@\"\n"
        );
        let run = d.join("run");
        std::fs::write(&run, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

const HEALTH: &str = r#"
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
canary = 1
steps = [25, 50]
step_pause = "2s"

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
conditions = ['[BODY].status == "healthy"']
"#;

/// Three process instances (main + alt ports) behind `lb`.
struct ProcessEnv {
    dir: TempDir,
    lb: Proc,
}

impl ProcessEnv {
    fn new(lb: &str) -> Result<ProcessEnv, String> {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let alt: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = TempDir::new("rollback");
        releases(&dir.0);
        let (lb, traffic) = if lb == "nginx" {
            let initial: String = ports
                .iter()
                .map(|p| format!("server 127.0.0.1:{p};\n"))
                .collect();
            start_nginx(&initial)?
        } else {
            let servers: Vec<(String, u16, bool)> = (0..3)
                .flat_map(|i| {
                    [
                        (format!("web-{}", i + 1), ports[i], true),
                        (format!("web-{}-alt", i + 1), alt[i], false),
                    ]
                })
                .collect();
            start_haproxy(&servers)?
        };
        let d = dir.0.display();
        let mut cfg = format!(
            "[[app]]\nname = \"web\"\ndriver = \"process\"\n\n[app.process]\n\
             run = \"{d}/releases/{{version}}/run --port {{port}}\"\nrun_dir = \"{d}/run\"\ngrace = \"2s\"\n\n\
             {traffic}{HEALTH}"
        );
        for i in 0..3 {
            cfg.push_str(&format!(
                "\n[[app.instance]]\nname = \"web-{}\"\nport = {}\nalt_port = {}\n",
                i + 1,
                ports[i],
                alt[i]
            ));
        }
        std::fs::write(dir.join("rollguard.toml"), cfg).unwrap();
        Ok(ProcessEnv { dir, lb })
    }

    fn rollguard(&self, args: &[&str]) -> (i32, String, String) {
        rollguard(
            &self.dir.join("rollguard.toml"),
            &self.dir.join("history.db"),
            args,
        )
    }
}

impl Drop for ProcessEnv {
    fn drop(&mut self) {
        kill_pidfiles(&self.dir.join("run"));
    }
}

/// Installs v1, then `runs` times deploys `bad` with `strategy` under a
/// polling client and reads how fast it was rolled back.
fn process_scenario(
    lb: &str,
    strategy: &str,
    bad: &str,
    runs: usize,
) -> Result<Vec<Timing>, String> {
    let env = ProcessEnv::new(lb)?;
    let (code, out, err) =
        env.rollguard(&["deploy", "web", "v1", "--yes", "--strategy", "rolling"]);
    if code != 0 {
        return Err(format!("installing v1 failed ({code}): {out}\n{err}"));
    }
    let mut all = Vec::new();
    let mut early = 0;
    let mut run = 0;
    while all.len() < runs {
        run += 1;
        if run > runs + 3 {
            return Err(format!(
                "{early} of {run} runs failed before traffic reached the new version"
            ));
        }
        let poller = Poller::start(env.lb.port);
        std::thread::sleep(Duration::from_millis(200));
        let (code, out, err) = env.rollguard(&[
            "deploy",
            "web",
            bad,
            "--yes",
            "--json",
            "--strategy",
            strategy,
        ]);
        std::thread::sleep(Duration::from_millis(300));
        let polls = poller.finish();
        if code != 3 {
            return Err(format!(
                "run {run}: deploy {bad} exited {code}, not 3 (rolled back): {out}\n{err}"
            ));
        }
        let mut t = rollback_timing(
            &env.dir.join("history.db"),
            last_deployment(&env.dir.join("history.db")),
        )?;
        if !t
            .values
            .iter()
            .any(|(k, _)| *k == "first_traffic_change_started_ms")
        {
            // The release failed its first gate, before any traffic went
            // to it: nothing to move back, not this measurement. Again.
            early += 1;
            eprintln!(
                "  {lb} {strategy} run {run}: failed before traffic moved; not counted, repeated"
            );
            continue;
        }
        let (last_new, all_old, failed, not_old) = client_back(&polls, "v1");
        if let Some(l) = last_new {
            t.put("client_last_new_version_ms", l as f64);
        }
        if let Some(a) = all_old {
            t.put("client_all_old_version_ms", a as f64);
        }
        t.values.push(("client_requests", polls.len() as f64));
        t.values.push(("client_not_old_answers", not_old as f64));
        t.values.push(("client_failed_requests", failed as f64));
        eprintln!(
            "  {lb} {strategy} run {run}: {}",
            t.values
                .iter()
                .map(|(k, v)| format!("{k}={v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        all.push(t);
    }
    if early > 0 {
        let mut t = Timing::default();
        t.values
            .push(("runs_not_counted_failed_before_traffic", early as f64));
        all.push(t);
    }
    Ok(all)
}

// ---------------------------------------------------------------- docker scenario

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A file of an image's build folder: (path, contents, mode).
type ImageFile = (&'static str, String, u32);

/// Builds `tag` with the legacy builder from a fresh folder `ctx` holding
/// the static busybox as `busybox`, `files` and `dockerfile`.
fn build_image(ctx: &Path, tag: &str, dockerfile: &str, files: &[ImageFile]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).map_err(|e| e.to_string())?;
    for (path, contents, mode) in files {
        let p = ctx.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(ctx)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "docker build {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Fails unless a Docker daemon answers and a static busybox is there.
fn docker_available() -> Result<(), String> {
    if find_program("docker").is_none() {
        return Err("program `docker` is missing".into());
    }
    docker(&["info", "--format", "{{.ServerVersion}}"]).map_err(|e| {
        format!("no Docker daemon answers (`docker info` fails; set DOCKER_HOST?): {e}")
    })?;
    if !Path::new("/bin/busybox").is_file() {
        return Err("a static /bin/busybox is missing (package busybox-static)".into());
    }
    Ok(())
}

/// Four containers behind nginx, with the images, containers and folders
/// removed on drop.
struct DockerEnv {
    dir: TempDir,
    lb: Proc,
    app: String,
    /// Every tag the environment built or tagged.
    tags: Vec<String>,
}

impl DockerEnv {
    /// The `rolling_docker` fleet: one image whose `/www` is bind-mounted
    /// per version from the bench's folder, so the bench can turn a
    /// release's health bad at a chosen moment.
    fn new() -> Result<DockerEnv, String> {
        docker_available()?;
        let dir = TempDir::new("docker");
        let pid = std::process::id();
        let app = format!("rgbench{pid}");
        let repo = format!("rollguard-bench/web{pid}");
        let mut env = DockerEnv::with_nginx(dir, app)?;
        // The image: busybox httpd serving /www.
        env.tags.push(format!("{repo}:v1"));
        build_image(
            &env.dir.join("image"),
            &format!("{repo}:v1"),
            "FROM scratch\nCOPY busybox /busybox\nCMD [\"/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
            &[],
        )?;
        env.tags.push(format!("{repo}:v3"));
        docker(&["tag", &format!("{repo}:v1"), &format!("{repo}:v3")])?;
        for v in ["v1", "v3"] {
            let www = env.dir.join(&format!("www-{v}"));
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("index.html"), format!("{{\"version\":\"{v}\"}}\n")).unwrap();
            std::fs::write(www.join("health"), "{\"status\":\"healthy\"}\n").unwrap();
        }
        let d = env.dir.0.display();
        let app_docker = format!(
            "image = \"{repo}\"\nport = 8080\nkeep = 1\nstop_timeout = \"1s\"\n\
             args = [\"--volume\", \"{d}/www-{{version}}:/www:ro\"]\n"
        );
        env.write_config(&app_docker, HEALTH, false);
        Ok(env)
    }

    /// The folder, app name and nginx (over four free ports, written to
    /// `ports.txt`), without images or config yet.
    fn with_nginx(dir: TempDir, app: String) -> Result<DockerEnv, String> {
        let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
        let initial: String = ports
            .iter()
            .map(|p| format!("server 127.0.0.1:{p};\n"))
            .collect();
        let (lb, traffic) = start_nginx(&initial)?;
        let ports_txt: String = ports.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(dir.join("ports.txt"), ports_txt).unwrap();
        std::fs::write(dir.join("traffic.toml"), traffic).unwrap();
        Ok(DockerEnv {
            dir,
            lb,
            app,
            tags: Vec::new(),
        })
    }

    /// Writes `rollguard.toml`: the app on the docker driver with
    /// `app_docker` as its `[app.docker]`, nginx as its traffic,
    /// `settings` (health, rollout, probes) and four instances (with an
    /// `alt_port` each when `alt`).
    fn write_config(&self, app_docker: &str, settings: &str, alt: bool) {
        let traffic = std::fs::read_to_string(self.dir.join("traffic.toml")).unwrap();
        let ports = std::fs::read_to_string(self.dir.join("ports.txt")).unwrap();
        let app = &self.app;
        let mut cfg = format!(
            "[[app]]\nname = \"{app}\"\ndriver = \"docker\"\n\n[app.docker]\n{app_docker}\n\
             {traffic}{settings}"
        );
        for (i, p) in ports.lines().enumerate() {
            cfg.push_str(&format!(
                "\n[[app.instance]]\nname = \"d{}\"\nport = {p}\n",
                i + 1
            ));
            if alt {
                cfg.push_str(&format!("alt_port = {}\n", free_port()));
            }
        }
        std::fs::write(self.dir.join("rollguard.toml"), cfg).unwrap();
    }

    fn set_health(&self, version: &str, healthy: bool) {
        let body = if healthy {
            "{\"status\":\"healthy\"}\n"
        } else {
            "{\"status\":\"degraded\"}\n"
        };
        let p = self.dir.join(&format!("www-{version}"));
        // Write and rename: httpd never reads a half-written file.
        std::fs::write(p.join("health.tmp"), body).unwrap();
        std::fs::rename(p.join("health.tmp"), p.join("health")).unwrap();
    }

    fn db(&self) -> PathBuf {
        self.dir.join("history.db")
    }

    fn cfg(&self) -> PathBuf {
        self.dir.join("rollguard.toml")
    }

    /// IDs of the app's containers (any state), all of them or those of
    /// `version`.
    fn containers(&self, version: Option<&str>) -> Vec<String> {
        let mut args = vec![
            "ps".to_string(),
            "-aq".into(),
            "--no-trunc".into(),
            "--filter".into(),
            format!("label=rollguard.app={}", self.app),
        ];
        if let Some(v) = version {
            args.extend(["--filter".into(), format!("label=rollguard.version={v}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
            .map(|ids| ids.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl Drop for DockerEnv {
    fn drop(&mut self) {
        let mut ids = self.containers(None);
        if let Ok(named) = docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("name=^/{}-", self.app),
        ]) {
            ids.extend(named.split_whitespace().map(str::to_string));
        }
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
        if !self.tags.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(self.tags.iter().map(String::as_str));
            let _ = docker(&args);
        }
    }
}

fn docker_scenario(runs: usize) -> Result<Vec<Timing>, String> {
    let env = DockerEnv::new()?;
    let cfg = env.dir.join("rollguard.toml");
    let (code, out, err) = rollguard(
        &cfg,
        &env.db(),
        &["deploy", &env.app, "v1", "--yes", "--strategy", "rolling"],
    );
    if code != 0 {
        return Err(format!("installing v1 failed ({code}): {out}\n{err}"));
    }
    let mut all = Vec::new();
    for run in 0..runs {
        env.set_health("v3", true);
        let before = last_deployment(&env.db());
        let poller = Poller::start(env.lb.port);
        std::thread::sleep(Duration::from_millis(200));
        let t0 = now_ms_f();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(env.db())
            .args([
                "deploy",
                &env.app,
                "v3",
                "--yes",
                "--json",
                "--strategy",
                "rolling",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        // Turn v3 bad once every instance runs it: when `monitor` starts.
        let mut flipped_at = None;
        let deadline = Instant::now() + Duration::from_secs(90);
        let code = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s.code().unwrap_or(-1);
            }
            let dep = last_deployment(&env.db());
            if flipped_at.is_none() && dep > before {
                let c = open_db(&env.db());
                let monitoring = events(&c, dep).iter().any(|e| {
                    e.kind == "stage_started" && e.evidence["stage"]["stage"] == "monitor"
                });
                if monitoring {
                    env.set_health("v3", false);
                    flipped_at = Some(now_ms_f());
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let total = now_ms_f() - t0;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(300));
        let polls = poller.finish();
        if code != 3 {
            return Err(format!(
                "run {run}: deploy v3 exited {code}, not 3 (rolled back): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let dep = last_deployment(&env.db());
        let mut t = rollback_timing(&env.db(), dep)?;
        let c = open_db(&env.db());
        let restored = events(&c, dep)
            .iter()
            .filter(|e| e.kind == "instance_restored")
            .count();
        if let Some(f) = flipped_at {
            t.put("health_turned_bad_ms", f);
        }
        let (_, all_old, failed, _) = client_back(&polls, "v1");
        if let Some(a) = all_old {
            t.put("client_all_old_version_ms", a as f64);
        }
        t.values.push(("deploy_command_total_ms", total));
        t.values.push(("instances_restored", restored as f64));
        t.values.push(("client_failed_requests", failed as f64));
        eprintln!(
            "  docker rolling run {}: {}",
            run + 1,
            t.values
                .iter()
                .map(|(k, v)| format!("{k}={v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        all.push(t);
    }
    Ok(all)
}

// ---------------------------------------------------------------- bad after 3 s

/// The bad release of the `*_docker_bad_after_3s` scenarios answers 500 on
/// every path from this long after its container starts.
const BAD_AFTER_S: u32 = 3;

/// How often the `*_docker_bad_after_3s` scenarios probe.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probing {
    /// Every 250 ms, two passes to pass a gate.
    Fast,
    /// As a user would match the image's own HEALTHCHECK: every 1 s, a
    /// 1 s timeout, one pass to pass a gate, two failures to fail one.
    Slow,
}

/// Health, rollout and probe of the `*_docker_bad_after_3s` scenarios; the
/// same for all but for `surge` and `probing`. `monitor` is long enough for
/// the last replaced container to go bad while it is watched.
fn bad_after_settings(surge: bool, probing: Probing) -> String {
    let surge = if surge { "surge = true\n" } else { "" };
    let (interval, success, timeout) = match probing {
        Probing::Fast => ("250ms", 2, "500ms"),
        Probing::Slow => ("1s", 1, "1s"),
    };
    format!(
        r#"
[app.health]
interval = "{interval}"
success_threshold = {success}
failure_threshold = 2
deadline = "10s"
monitor = "10s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 1
{surge}
[[app.probe]]
name = "health"
type = "http"
path = "/health/"
expect_status = [200]
timeout = "{timeout}"
conditions = ['[BODY].status == "healthy"']
"#
    )
}

/// The entry point of both releases: httpd on 8080 (stopped on SIGTERM);
/// a release with `/fail_after` creates `/bad` that many seconds after it
/// starts, and from then on its CGI answers 500.
const BAD_AFTER_START: &str = "/busybox rm -f /bad\n\
     if [ -e /fail_after ]; then\n\
     \x20 ( /busybox sleep \"$(/busybox cat /fail_after)\"; : > /bad ) &\n\
     fi\n\
     /busybox httpd -f -p 8080 -h /www &\n\
     trap '/busybox kill $! 2>/dev/null; exit 0' TERM INT\n\
     wait\n";

/// `/` and `/health/` of the bad release: busybox httpd runs
/// `/cgi-bin/index.cgi` for a folder without `index.html`.
const BAD_AFTER_CGI: &str = "#!/busybox sh\n\
     if [ -e /bad ]; then\n\
     \x20 printf 'Status: 500 Internal Server Error\\r\\nContent-Type: application/json\\r\\n\\r\\n{\"version\":\"v2\",\"status\":\"failing\"}\\n'\n\
     else\n\
     \x20 printf 'Content-Type: application/json\\r\\n\\r\\n{\"version\":\"v2\",\"status\":\"healthy\"}\\n'\n\
     fi\n";

impl DockerEnv {
    /// The `*_docker_bad_after_3s` fleet: `:v1` serves static files and
    /// is healthy; `:v2` answers 200 for 3 s after its container starts,
    /// then 500 on its health page and on users' requests alike. Every
    /// instance has an `alt_port`; `surge` and `probing` are the only
    /// differences between the scenarios.
    fn bad_after(surge: bool, probing: Probing) -> Result<DockerEnv, String> {
        docker_available()?;
        let tag = match (surge, probing) {
            (false, Probing::Fast) => "rolling",
            (true, Probing::Fast) => "surge",
            (false, Probing::Slow) => "rolling-slow",
            (true, Probing::Slow) => "surge-slow",
        };
        let dir = TempDir::new(&format!("docker-bad-{tag}"));
        let pid = std::process::id();
        let app = format!("rgbench{pid}-{tag}");
        let repo = format!("rollguard-bench/bad{pid}-{tag}");
        let mut env = DockerEnv::with_nginx(dir, app)?;
        let dockerfile = "FROM scratch\nCOPY busybox /busybox\nCOPY root/ /\nCMD [\"/busybox\", \"sh\", \"/start.sh\"]\n";
        let start = ("root/start.sh", BAD_AFTER_START.to_string(), 0o644);
        let v1 = [
            start.clone(),
            (
                "root/www/index.html",
                "{\"version\":\"v1\"}\n".into(),
                0o644,
            ),
            (
                "root/www/health/index.html",
                "{\"version\":\"v1\",\"status\":\"healthy\"}\n".into(),
                0o644,
            ),
        ];
        let v2 = [
            start,
            ("root/fail_after", format!("{BAD_AFTER_S}\n"), 0o644),
            ("root/www/cgi-bin/index.cgi", BAD_AFTER_CGI.into(), 0o755),
            ("root/www/health/.keep", String::new(), 0o644),
        ];
        for (v, files) in [("v1", &v1[..]), ("v2", &v2[..])] {
            let image = format!("{repo}:{v}");
            env.tags.push(image.clone());
            build_image(
                &env.dir.join(&format!("image-{v}")),
                &image,
                dockerfile,
                files,
            )?;
        }
        let app_docker =
            format!("image = \"{repo}\"\nport = 8080\nkeep = 2\nstop_timeout = \"1s\"\n");
        env.write_config(&app_docker, &bad_after_settings(surge, probing), true);
        Ok(env)
    }

    /// (name, started at, epoch ms) of the app's containers of `version`
    /// started since `since_ms`, earliest first.
    fn started_since(&self, version: &str, since_ms: f64) -> Vec<(String, f64)> {
        let ids = self.containers(Some(version));
        if ids.is_empty() {
            return Vec::new();
        }
        let mut args = vec!["inspect", "-f", "{{.Name}} {{.State.StartedAt}}"];
        args.extend(ids.iter().map(String::as_str));
        let mut out: Vec<(String, f64)> = docker(&args)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (name, at) = l.split_once(' ')?;
                let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
                let ms = at.timestamp_nanos_opt()? as f64 / 1e6;
                Some((name.trim_start_matches('/').to_string(), ms))
            })
            .filter(|(_, ms)| *ms >= since_ms)
            .collect();
        out.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
        out
    }
}

/// Installs v1 on four containers, then `runs` times deploys v2 (bad 3 s
/// after each container starts) rolling, with or without `surge`, under
/// the 20 ms client, and reads how it went. Times are ms after v2 went
/// bad: 3 s after the first v2 container of the run started (`docker
/// inspect`).
fn bad_after_scenario(surge: bool, probing: Probing, runs: usize) -> Result<Vec<Timing>, String> {
    let env = DockerEnv::bad_after(surge, probing)?;
    let label = if surge { "surge" } else { "rolling" };
    let trace = std::env::var_os("ROLLGUARD_BENCH_EVENTS").is_some();
    let (code, out, err) = rollguard(
        &env.cfg(),
        &env.db(),
        &["deploy", &env.app, "v1", "--yes", "--strategy", "rolling"],
    );
    if code != 0 {
        return Err(format!("installing v1 failed ({code}): {out}\n{err}"));
    }
    let mut all = Vec::new();
    for run in 1..=runs {
        // Let the fleet settle (and the client find only v1) first.
        std::thread::sleep(Duration::from_secs(1));
        let poller = Poller::start(env.lb.port);
        std::thread::sleep(Duration::from_millis(300));
        let t0 = now_ms_f();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(env.cfg())
            .arg("--db")
            .arg(env.db())
            .args([
                "deploy",
                &env.app,
                "v2",
                "--yes",
                "--json",
                "--strategy",
                "rolling",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let code = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break -1;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let total = now_ms_f() - t0;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(500));
        let polls = poller.finish();
        if code != 3 {
            return Err(format!(
                "{label} run {run}: deploy v2 exited {code}, not 3 (rolled back): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let started = env.started_since("v2", t0 - 1000.0);
        let Some(first) = started.first() else {
            return Err(format!("{label} run {run}: no v2 container was started"));
        };
        let went_bad = first.1 + f64::from(BAD_AFTER_S) * 1000.0;
        let dep = last_deployment(&env.db());
        let mut t = rollback_timing(&env.db(), dep)?;
        t.rebase(went_bad);
        let c = open_db(&env.db());
        let evs = events(&c, dep);
        let rollback_at = evs
            .iter()
            .find(|e| e.kind == "rollback_started")
            .map_or(f64::MAX, |e| e.at_ms as f64);
        let restored = evs.iter().filter(|e| e.kind == "instance_restored").count();
        let (_, all_old, failed, _) = client_back(&polls, "v1");
        if let Some(a) = all_old {
            t.put("client_all_old_version_ms", a as f64);
        }
        let fails: Vec<&Poll> = polls.iter().filter(|p| p.failed()).collect();
        if let (Some(f), Some(l)) = (fails.first(), fails.last()) {
            t.put("client_first_failed_ms", f.at_ms as f64);
            t.put("client_last_failed_ms", l.at_ms as f64);
        }
        let bad_before = started.iter().filter(|(_, at)| *at < rollback_at).count();
        t.values
            .push(("v2_containers_started_before_rollback", bad_before as f64));
        t.values.push(("instances_restored", restored as f64));
        t.values.push(("deploy_command_total_ms", total));
        t.values.push(("client_requests", polls.len() as f64));
        t.values.push(("client_failed_requests", failed as f64));
        eprintln!(
            "  {label} run {run}: {}",
            t.values
                .iter()
                .map(|(k, v)| format!("{k}={v:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if trace {
            for (name, at) in &started {
                eprintln!("    {:>7.0} container {name} started", at - went_bad);
            }
            for e in &evs {
                let what = match e.kind.as_str() {
                    "stage_started" => e.evidence["describe"].to_string(),
                    "gate_failed" | "rollout_failed" => e.reason.clone(),
                    // Which servers take traffic: d1:main=1, d2:alt=off, ...
                    "traffic_changing" => e.evidence["to"]["servers"]
                        .as_array()
                        .map(|servers| {
                            servers
                                .iter()
                                .map(|s| {
                                    let w = s["weight"]
                                        .as_i64()
                                        .map_or("off".to_string(), |w| w.to_string());
                                    format!(
                                        "{}:{}={w}",
                                        s["instance"].as_str().unwrap_or("?"),
                                        s["side"].as_str().unwrap_or("?")
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_else(|| e.evidence["to"].to_string()),
                    "gate_passed" => e.evidence["evidence"]
                        .as_array()
                        .map(|slots| {
                            let names: Vec<&str> = slots
                                .iter()
                                .filter_map(|s| s["instance"].as_str())
                                .collect();
                            format!("{} ({} ms)", names.join(" "), e.evidence["elapsed_ms"])
                        })
                        .unwrap_or_default(),
                    _ => e.evidence.to_string(),
                };
                let what: String = what.chars().take(160).collect();
                eprintln!("    {:>7.0} {} {what}", e.at_ms as f64 - went_bad, e.kind);
            }
            let fails: Vec<String> = fails
                .iter()
                .map(|p| {
                    format!(
                        "{:.0}:{}",
                        p.at_ms as f64 - went_bad,
                        p.status.map_or("none".into(), |s| s.to_string())
                    )
                })
                .collect();
            eprintln!("    failed requests (ms:status): {}", fails.join(" "));
        }
        all.push(t);
    }
    Ok(all)
}

// ---------------------------------------------------------------- report

fn stats(runs: &[Timing]) -> Value {
    let mut names: Vec<&'static str> = Vec::new();
    for t in runs {
        for (k, _) in &t.values {
            if !names.contains(k) {
                names.push(k);
            }
        }
    }
    let mut out = serde_json::Map::new();
    for name in names {
        let mut v: Vec<f64> = runs
            .iter()
            .filter_map(|t| t.values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        let r = |x: f64| (x * 10.0).round() / 10.0;
        out.insert(
            name.to_string(),
            json!({"min": r(v[0]), "median": r(median), "max": r(v[v.len() - 1]), "n": v.len()}),
        );
    }
    Value::Object(out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` support
    }
    let runs: usize = arg(&args, "--runs", "5").parse().expect("--runs N");
    let docker_runs: usize = arg(&args, "--docker-runs", "3")
        .parse()
        .expect("--docker-runs N");
    let only = arg(
        &args,
        "--only",
        "blue_green_haproxy,canary_nginx,rolling_docker,\
         rolling_docker_bad_after_3s,surge_docker_bad_after_3s,\
         rolling_docker_bad_after_3s_1s_probes,surge_docker_bad_after_3s_1s_probes",
    );
    let wanted = |s: &str| only.split(',').any(|o| o == s);
    let started = Instant::now();
    let mut report = serde_json::Map::new();
    report.insert("command".into(), json!("cargo bench --bench rollback"));
    report.insert("runs".into(), json!(runs));
    report.insert("docker_runs".into(), json!(docker_runs));
    report.insert(
        "note".into(),
        json!(
            "ms after the end of the deciding probe (gate_failed last sample at_ms + latency_ms); \
             *_bad_after_3s: ms after v2 went bad (3 s after its first container started)"
        ),
    );
    let mut scenario = |name: &str, f: &dyn Fn() -> Result<Vec<Timing>, String>| {
        if !wanted(name) {
            return;
        }
        eprintln!("{name}:");
        let v = match f() {
            Ok(t) if !t.is_empty() => stats(&t),
            Ok(_) => json!({"skipped": "no runs"}),
            Err(e) => {
                eprintln!("*** {name} SKIPPED/FAILED: {e}");
                json!({"skipped": e})
            }
        };
        report.insert(name.to_string(), v);
    };
    scenario("blue_green_haproxy", &|| {
        process_scenario("haproxy", "blue-green", "v3", runs)
    });
    scenario("canary_nginx", &|| {
        process_scenario("nginx", "canary", "v4", runs)
    });
    scenario("rolling_docker", &|| docker_scenario(docker_runs));
    scenario("rolling_docker_bad_after_3s", &|| {
        bad_after_scenario(false, Probing::Fast, docker_runs)
    });
    scenario("surge_docker_bad_after_3s", &|| {
        bad_after_scenario(true, Probing::Fast, docker_runs)
    });
    scenario("rolling_docker_bad_after_3s_1s_probes", &|| {
        bad_after_scenario(false, Probing::Slow, docker_runs)
    });
    scenario("surge_docker_bad_after_3s_1s_probes", &|| {
        bad_after_scenario(true, Probing::Slow, docker_runs)
    });
    report.insert(
        "bench_wall_s".into(),
        json!((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(report)).unwrap()
    );
}
