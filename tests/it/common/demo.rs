//! What a running `rollguard demo` started, as `/proc` shows it, and the
//! check that all of it is gone once the demo has ended: every process
//! (nginx master and workers, the demo application's instances, detached
//! rollout workers, anything else whose command line names the demo's
//! folder, and the children and process groups of those), every port of
//! its config and nginx config no longer listening, and the folder
//! removed.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A demo picks free ports and binds them a moment later: two demos at once
/// could pick the same port. Every test that runs a demo (headless, or in
/// tmux) holds this while its demo runs.
pub fn one_demo() -> MutexGuard<'static, ()> {
    static ONE_DEMO: Mutex<()> = Mutex::new(());
    ONE_DEMO.lock().unwrap_or_else(|p| p.into_inner())
}

/// One process as `/proc/PID/stat` and `cmdline` show it.
#[derive(Clone, Debug)]
pub struct Proc {
    /// Its pid.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Its process group.
    pub pgid: i32,
    /// `R`, `S`, `Z`, …
    pub state: char,
    /// Start time in clock ticks since boot (tells a reused pid apart).
    pub start: u64,
    /// Its command line.
    pub args: Vec<String>,
}

/// Every process on the machine.
pub fn processes() -> Vec<Proc> {
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(p) = process(pid) {
            all.push(p);
        }
    }
    all
}

/// Process `pid`, if it exists.
pub fn process(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let args = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(Proc {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        args,
    })
}

/// Whether `p` still runs: the same pid with the same start time, and not
/// a zombie (a zombie has ended; its parent has not reaped it yet).
pub fn still_runs(p: &Proc) -> bool {
    process(p.pid).is_some_and(|now| now.start == p.start && !matches!(now.state, 'Z' | 'X'))
}

/// The TCP ports something listens on (IPv4 and IPv6).
pub fn listening_ports() -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(3) != Some(&"0A") {
                continue;
            }
            if let Some(port) = cols
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// What a demo started, gathered while it runs.
#[derive(Debug, Default)]
pub struct Footprint {
    /// The demo's folder.
    pub dir: PathBuf,
    /// The processes seen, by pid.
    pub procs: BTreeMap<i32, Proc>,
    /// The ports of its instances and of its nginx.
    pub ports: BTreeSet<u16>,
}

impl Footprint {
    /// An empty footprint of the demo in `dir`.
    pub fn new(dir: &Path) -> Footprint {
        Footprint {
            dir: dir.to_path_buf(),
            ..Footprint::default()
        }
    }

    /// Adds what runs now: every process whose command line names the
    /// folder, the processes of the pidfiles under `run/` and nginx's
    /// pidfile, and then, until nothing is added, the children of those
    /// and the members of their process groups.
    pub fn sample(&mut self) {
        let me = std::process::id() as i32;
        let dir = self.dir.to_string_lossy().to_string();
        let inside = format!("{dir}/");
        let names_dir = |p: &Proc| p.args.iter().any(|a| *a == dir || a.contains(&inside));
        let all = processes();
        let mut ours: BTreeSet<i32> = all
            .iter()
            .filter(|p| p.pid != me && names_dir(p))
            .map(|p| p.pid)
            .collect();
        ours.extend(self.pidfiles());
        loop {
            let more: Vec<i32> = all
                .iter()
                .filter(|p| {
                    p.pid != me
                        && !ours.contains(&p.pid)
                        && (ours.contains(&p.ppid) || ours.contains(&p.pgid))
                })
                .map(|p| p.pid)
                .collect();
            if more.is_empty() {
                break;
            }
            ours.extend(more);
        }
        for p in all {
            if ours.contains(&p.pid) && !matches!(p.state, 'Z' | 'X') {
                self.procs.entry(p.pid).or_insert(p);
            }
        }
        self.ports.extend(self.config_ports());
    }

    /// The pids in `run/*/*.pid` and `nginx/nginx.pid`.
    fn pidfiles(&self) -> Vec<i32> {
        let mut files = vec![self.dir.join("nginx").join("nginx.pid")];
        for app in std::fs::read_dir(self.dir.join("run"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(app.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if f.path().extension().is_some_and(|e| e == "pid") {
                    files.push(f.path());
                }
            }
        }
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 1)
            .collect()
    }

    /// `port = N` of the config and `listen 127.0.0.1:N` of nginx.conf.
    fn config_ports(&self) -> Vec<u16> {
        let mut ports = Vec::new();
        let config = std::fs::read_to_string(self.dir.join("rollguard.toml")).unwrap_or_default();
        for line in config.lines() {
            if let Some(v) = line.strip_prefix("port = ")
                && let Ok(p) = v.trim().parse()
            {
                ports.push(p);
            }
            // The demo's Prometheus, which its comparison probe asks.
            if let Some(v) = line.strip_prefix("url = \"http://127.0.0.1:")
                && let Ok(p) = v.trim_end_matches('"').parse()
            {
                ports.push(p);
            }
        }
        let nginx =
            std::fs::read_to_string(self.dir.join("nginx").join("nginx.conf")).unwrap_or_default();
        for part in nginx.split("listen 127.0.0.1:").skip(1) {
            let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(p) = digits.parse() {
                ports.push(p);
            }
        }
        ports
    }

    /// What is left: processes that still run, ports that still listen,
    /// and whether the folder is still there.
    pub fn left(&self) -> (Vec<&Proc>, Vec<u16>, bool) {
        let procs = self.procs.values().filter(|p| still_runs(p)).collect();
        let listening = listening_ports();
        let ports = self
            .ports
            .iter()
            .copied()
            .filter(|p| listening.contains(p))
            .collect();
        (procs, ports, self.dir.exists())
    }

    /// Asserts that the footprint holds a process one of whose arguments
    /// `arg` accepts (`what` names it).
    pub fn assert_has(&self, what: &str, arg: impl Fn(&str) -> bool) {
        assert!(
            self.procs.values().any(|p| p.args.iter().any(|a| arg(a))),
            "the footprint has {what}"
        );
    }

    /// Waits up to `limit` until nothing is left; panics with what is.
    pub fn assert_all_gone(&self, limit: Duration) {
        assert!(
            self.procs
                .values()
                .any(|p| p.args.iter().any(|a| a.contains("demo-app"))),
            "the footprint saw no demo instance at all: {:#?}",
            self.procs
        );
        let end = Instant::now() + limit;
        loop {
            let (procs, ports, dir) = self.left();
            if procs.is_empty() && ports.is_empty() && !dir {
                return;
            }
            if Instant::now() > end {
                let files = if dir { listing(&self.dir) } else { Vec::new() };
                panic!(
                    "the demo left behind:\nprocesses: {procs:#?}\nlistening ports: {ports:?}\n\
                     folder {} still there: {dir} {files:?}",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Footprint {
    /// For `length` after [`Footprint::assert_all_gone`]: the folder does
    /// not come back and no process names it (nothing the demo started
    /// goes on writing into it).
    pub fn assert_stays_gone(&self, length: Duration) {
        let dir = self.dir.to_string_lossy().to_string();
        let inside = format!("{dir}/");
        let end = Instant::now() + length;
        while Instant::now() < end {
            let naming: Vec<Proc> = processes()
                .into_iter()
                .filter(|p| !matches!(p.state, 'Z' | 'X'))
                .filter(|p| p.args.iter().any(|a| *a == dir || a.contains(&inside)))
                .collect();
            assert!(
                naming.is_empty() && !self.dir.exists(),
                "after the demo ended: processes naming its folder {naming:#?}, \
                 folder back: {} {:?}",
                self.dir.exists(),
                listing(&self.dir)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Every path under `dir`.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(listing(&e.path()));
        }
    }
    out
}

/// Samples a footprint every 100 ms on a thread of its own, so processes
/// that live only a while (nginx workers of a reload, instances a rollout
/// starts, rollout workers) are seen too.
pub struct Sampler {
    print: Arc<Mutex<Footprint>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling the demo in `dir`.
    pub fn start(dir: &Path) -> Sampler {
        let print = Arc::new(Mutex::new(Footprint::new(dir)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (print.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.lock().unwrap_or_else(|e| e.into_inner()).sample();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler {
            print,
            stop,
            thread: Some(thread),
        }
    }

    /// One more sample now.
    pub fn sample(&self) {
        self.print
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample();
    }

    /// Stops sampling; returns what was seen.
    pub fn finish(mut self) -> Footprint {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.print.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
