//! Load balancer test support: tiny HTTP backends that answer their own
//! name, a real nginx or HAProxy in the foreground on 127.0.0.1 with its own
//! temp folder (stopped on drop), and a client loop that counts failures.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rollguard::config::{App, Fleet, Host, Traffic as TrafficConfig};
use rollguard::driver::Side;
use rollguard::exec::Executors;
use rollguard::traffic::{Routing, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{TempDir, free_port, program};

/// A tiny HTTP/1.1 server on 127.0.0.1 answering `200 NAME` (keep-alive
/// aware). `/slow` answers after three seconds
/// (far more than a drain timeout in the tests, even on a busy machine). After [`Backend::stop`] it
/// accepts no connection, and any request still arriving on an open one is
/// answered `503 late` and counted in `late`.
pub struct Backend {
    /// What it answers.
    pub name: String,
    /// Where it listens.
    pub port: u16,
    /// Requests answered 200.
    pub hits: Arc<AtomicUsize>,
    /// Requests that arrived after `stop`.
    pub late: Arc<AtomicUsize>,
    /// Requests received (counted when their head is read).
    pub seen: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl Backend {
    /// Starts one on a free port.
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let late = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let counters = Counters {
            hits: hits.clone(),
            late: late.clone(),
            seen: seen.clone(),
            stopped: stopped.clone(),
        };
        let n = name.to_string();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let (n, c) = (n.clone(), counters.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &n, &c).await;
                });
            }
        });
        Backend {
            name: name.into(),
            port,
            hits,
            late,
            seen,
            stopped,
            accept,
        }
    }

    /// Stops accepting; requests on connections still open get 503.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.accept.abort();
    }

    /// Requests answered 200 so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests that came after `stop`.
    pub fn late(&self) -> usize {
        self.late.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have been received (answered or not).
    pub async fn wait_seen(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.seen.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "{} never saw {n} requests",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[derive(Clone)]
struct Counters {
    hits: Arc<AtomicUsize>,
    late: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut conn: TcpStream, name: &str, c: &Counters) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end);
        let close = head.contains("connection: close")
            || head.lines().next().is_some_and(|l| l.ends_with("http/1.0"));
        c.seen.fetch_add(1, Ordering::SeqCst);
        let (status, body) = if c.stopped.load(Ordering::SeqCst) {
            c.late.fetch_add(1, Ordering::SeqCst);
            ("503 Service Unavailable", "late".to_string())
        } else {
            if head.starts_with("get /slow") {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            c.hits.fetch_add(1, Ordering::SeqCst);
            ("200 OK", name.to_string())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        conn.write_all(resp.as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
}

/// A routing server on 127.0.0.1.
pub fn server(instance: &str, side: Side, port: u16, weight: Option<u32>) -> Server {
    Server {
        instance: instance.into(),
        side,
        address: "127.0.0.1".into(),
        port,
        weight,
    }
}

/// A routing from servers.
pub fn routing(servers: Vec<Server>) -> Routing {
    Routing { servers }
}

/// A fleet with the `local` host and one app `web` using `traffic`.
pub fn fleet(traffic: TrafficConfig) -> (Fleet, Executors) {
    let fleet = Fleet {
        metrics: None,
        store: None,
        source: "t.toml".into(),
        console: Default::default(),
        hosts: vec![Host {
            name: "local".into(),
            address: "127.0.0.1".into(),
            ssh: None,
        }],
        apps: vec![App {
            name: "web".into(),
            traffic,
            ..Default::default()
        }],
    };
    let execs = Executors::new(&fleet.hosts);
    (fleet, execs)
}

/// A foreground load balancer process, leading its own process group
/// (nginx's workers are in it too), stopped on drop: SIGTERM to it, then
/// SIGKILL to the whole group, and drop returns only once no process of the
/// group is left. A worker whose master was killed before it (or that was
/// slow to follow its master out) is not left behind as an orphan.
pub struct Proc {
    /// Its folder: config, logs, sockets.
    pub dir: TempDir,
    /// The port its frontend listens on.
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// The end of its log, for failure messages.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text[start..].to_string()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Starts `cmd` and waits until it listens on `port` (and on the unix
    /// socket `also`, when given) and is still alive a moment later. `Err`
    /// when it exited (e.g. someone else took the port): try another.
    fn spawn(
        mut cmd: Command,
        dir: TempDir,
        port: u16,
        log: PathBuf,
        also: Option<PathBuf>,
    ) -> Result<Proc, String> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starts");
        let mut p = Proc {
            dir,
            port,
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let ready = |p: &Proc| {
            std::net::TcpStream::connect(("127.0.0.1", p.port)).is_ok()
                && also
                    .as_ref()
                    .is_none_or(|s| std::os::unix::net::UnixStream::connect(s).is_ok())
        };
        loop {
            let exited = p.child.as_mut().unwrap().try_wait().unwrap().is_some();
            if exited {
                return Err(p.failure("exited at start"));
            }
            if ready(&p) {
                std::thread::sleep(Duration::from_millis(100));
                if p.child.as_mut().unwrap().try_wait().unwrap().is_none() && ready(&p) {
                    return Ok(p);
                }
                return Err(p.failure("exited at start"));
            }
            if Instant::now() > deadline {
                return Err(p.failure("does not listen"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "load balancer {what} (port {}): {}\n{}",
            self.port,
            self.log(),
            std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default()
        )
    }
}

/// Runs `start` up to three times (a fresh port each time).
fn attempts<T>(mut start: impl FnMut() -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..3 {
        match start() {
            Ok(t) => return t,
            Err(e) => last = e,
        }
    }
    panic!("{last}");
}

impl Drop for Proc {
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let group = c.id() as i32;
        // SAFETY: plain kill(2) of our own child, which leads its group.
        unsafe {
            libc::kill(group, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever of the group is still there (a worker, or the master
        // that did not stop in time) goes now.
        // SAFETY: the group our child leads; no other process joins it.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = c.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while group_alive(group) {
            if Instant::now() > deadline {
                // Not a second panic while a failed test unwinds.
                assert!(
                    std::thread::panicking(),
                    "process group {group} still has a live process 10 s after SIGKILL"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the command name (which may hold spaces): state ppid pgrp …
        let mut rest = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace();
        let state = rest.next();
        let pgrp = rest.nth(1).and_then(|s| s.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, Some("Z" | "X"))
    })
}

/// A real nginx proxying `127.0.0.1:PORT` to `upstream app { include
/// DIR/app.upstream; }`, with `proxy_next_upstream off` so a request sent to
/// a stopped server fails instead of being retried elsewhere.
pub struct Nginx {
    /// The process.
    pub proc: Proc,
    /// The upstream file.
    pub upstream: PathBuf,
    /// `nginx -t` for this config.
    pub validate: String,
    /// `nginx -s reload` for this config.
    pub reload: String,
}

impl Nginx {
    /// Starts one whose upstream file first holds `initial`, or skips.
    pub fn start(test: &str, initial: &str) -> Option<Nginx> {
        let bin = program(test, "nginx")?;
        Some(attempts(|| Nginx::try_start(&bin, initial)))
    }

    fn try_start(bin: &std::path::Path, initial: &str) -> Result<Nginx, String> {
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.0.display().to_string();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let upstream = dir.join("app.upstream");
        std::fs::write(&upstream, initial).unwrap();
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
        let validate = format!("{b} -t -p {d} -c {d}/nginx.conf");
        let reload = format!("{b} -s reload -p {d} -c {d}/nginx.conf");
        let mut cmd = Command::new(bin);
        cmd.args(["-p", &d, "-c", &format!("{d}/nginx.conf")]);
        let log = dir.join("error.log");
        let proc = Proc::spawn(cmd, dir, port, log, None)?;
        Ok(Nginx {
            proc,
            upstream,
            validate,
            reload,
        })
    }

    /// The upstream file's content.
    pub fn upstream_text(&self) -> String {
        std::fs::read_to_string(&self.upstream).unwrap()
    }
}

/// A real nginx on `127.0.0.1:PORT` whose server block holds `locations`
/// (nginx directives): an endpoint that answers as the test says, such as
/// an authenticating proxy in front of a service. Stopped on drop.
pub fn nginx_serving(test: &str, locations: &str) -> Option<Proc> {
    let bin = program(test, "nginx")?;
    Some(attempts(|| {
        let dir = TempDir::new("nginx-serving");
        let port = free_port();
        let d = dir.0.display().to_string();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  default_type text/plain;\n\
               client_body_temp_path {d}/tmp/body;\n\
               server {{\n    listen 127.0.0.1:{port};\n{locations}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["-p", &d, "-c", &format!("{d}/nginx.conf")]);
        let log = dir.join("error.log");
        Proc::spawn(cmd, dir, port, log, None)
    }))
}

/// A real HAProxy on `127.0.0.1:PORT` with `backend app`, `retries 0`, and
/// an admin socket `DIR/admin.sock`. `servers` are `(name, port, enabled)`.
pub struct Haproxy {
    /// The process.
    pub proc: Proc,
    /// The admin socket.
    pub socket: PathBuf,
}

impl Haproxy {
    /// Starts one, or skips.
    pub fn start(test: &str, servers: &[(&str, u16, bool)]) -> Option<Haproxy> {
        let bin = program(test, "haproxy")?;
        Some(attempts(|| Haproxy::try_start(&bin, servers)))
    }

    fn try_start(bin: &std::path::Path, servers: &[(&str, u16, bool)]) -> Result<Haproxy, String> {
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
        let mut cmd = Command::new(bin);
        cmd.args(["-db", "-f"]).arg(dir.join("haproxy.cfg"));
        let log = dir.join("stdout.log");
        let proc = Proc::spawn(cmd, dir, port, log, Some(socket.clone()))?;
        Ok(Haproxy { proc, socket })
    }
}

/// What a client loop saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// 200 answers per body (backend name).
    pub ok: std::collections::BTreeMap<String, usize>,
    /// Failures: status or error text.
    pub failed: Vec<String>,
}

impl Tally {
    /// 200 answers from `name`.
    pub fn from(&self, name: &str) -> usize {
        self.ok.get(name).copied().unwrap_or(0)
    }

    /// All 200 answers.
    pub fn total(&self) -> usize {
        self.ok.values().sum()
    }
}

/// An HTTP client; `fresh` opens a new connection for every request.
pub fn client(fresh: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if fresh {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

/// One GET; `Ok(body)` for 200.
pub async fn get(c: &reqwest::Client, url: &str) -> Result<String, String> {
    match c.get(url).send().await {
        Ok(r) if r.status() == 200 => r.text().await.map_err(|e| format!("body: {e}")),
        Ok(r) => {
            let s = r.status();
            Err(format!("{s}: {}", r.text().await.unwrap_or_default()))
        }
        Err(e) => Err(format!("{e:?}")),
    }
}

/// `n` requests in a row.
pub async fn tally(c: &reqwest::Client, url: &str, n: usize) -> Tally {
    let mut t = Tally::default();
    for _ in 0..n {
        match get(c, url).await {
            Ok(b) => *t.ok.entry(b).or_default() += 1,
            Err(e) => t.failed.push(e),
        }
    }
    t
}

/// Client loops running in the background; see [`load`].
pub struct Load {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Tally>,
}

impl Load {
    /// Stops the loops and returns the combined tally.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// `workers` loops sending requests without pause until [`Load::finish`]
/// or `at_most` passed.
pub fn load(url: String, workers: usize, fresh: bool, at_most: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let end = tokio::time::Instant::now() + at_most;
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let url = url.clone();
            let flag = flag.clone();
            tasks.push(tokio::spawn(async move {
                let c = client(fresh);
                let mut t = Tally::default();
                while tokio::time::Instant::now() < end && !flag.load(Ordering::SeqCst) {
                    match get(&c, &url).await {
                        Ok(b) => *t.ok.entry(b).or_default() += 1,
                        Err(e) => t.failed.push(e),
                    }
                }
                t
            }));
        }
        let mut all = Tally::default();
        for task in tasks {
            let t = task.await.unwrap();
            for (k, v) in t.ok {
                *all.ok.entry(k).or_default() += v;
            }
            all.failed.extend(t.failed);
        }
        all
    });
    Load { stop, task }
}

/// The switch under load that nginx and HAProxy must both pass: three
/// backends `A`, `B`, `C` (as started by [`Backend::start`]), traffic first
/// all on A; `workers` clients sending requests without pause to `url`
/// (fresh connections each time, or keep-alive ones); then, rolling-like,
/// all to B and A stopped as the engine would, and blue-green-like, all to
/// C and B stopped. No request fails, each backend answered some, and none
/// got a request after it stopped. `log` is the balancer's log for the
/// failure message.
pub async fn switch_under_load(
    what: &str,
    backends: [&Backend; 3],
    apply: impl AsyncFn(&Routing, &Routing),
    url: &str,
    fresh: bool,
    log: impl Fn() -> String,
) {
    let [a, b, c] = backends;
    let three = |wa, wb, wc| {
        routing(vec![
            server("a", Side::Main, a.port, wa),
            server("b", Side::Main, b.port, wb),
            server("c", Side::Main, c.port, wc),
        ])
    };
    let on_a = three(Some(100), None, None);
    apply(&Routing::default(), &on_a).await;

    let load = load(url.to_string(), 4, fresh, Duration::from_secs(30));
    // Each step starts once the backend in front answers under load.
    let answering = async |backend: &Backend| {
        let from = backend.hits();
        crate::common::wait_async(
            &format!("{what}: {} answering under load", backend.name),
            Duration::from_secs(10),
            || backend.hits() >= from + 20,
        )
        .await;
    };
    answering(a).await;
    // Rolling-like: A → B, then stop A as the engine would.
    let on_b = three(None, Some(100), None);
    apply(&on_a, &on_b).await;
    a.stop();
    answering(b).await;
    // Blue-green-like: B → C.
    let on_c = three(None, None, Some(100));
    apply(&on_b, &on_c).await;
    b.stop();
    answering(c).await;
    let t = load.finish().await;
    assert!(
        t.failed.is_empty(),
        "{what}: {} failed of {}: {:?}\n{}",
        t.failed.len(),
        t.total() + t.failed.len(),
        &t.failed[..t.failed.len().min(5)],
        log()
    );
    assert!(
        t.from("A") > 0 && t.from("B") > 0 && t.from("C") > 0,
        "{what}: {t:?}"
    );
    assert_eq!((a.late(), b.late()), (0, 0), "{what}");
    eprintln!("{what} switch under load: {t:?}");
}
