//! Shared test support: finding real components (sshd, nginx, haproxy,
//! dockerd, tmux) and skipping loudly when one is missing. With
//! `ROLLGUARD_REQUIRE_REAL=1` (set by `tests/run.sh`) a missing component
//! fails the test instead.
#![allow(dead_code)]

pub mod agent;
pub mod demo;
pub mod docker;
pub mod lb;
pub mod port;
pub mod postgres;
pub mod prometheus;
pub mod rollout;
pub mod sshd;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use port::free_port;
use rollguard::config::Fleet;

/// Whether missing real components must fail tests.
pub fn require_real() -> bool {
    std::env::var("ROLLGUARD_REQUIRE_REAL").is_ok_and(|v| v == "1")
}

/// Reports that `what` is missing: panics under `ROLLGUARD_REQUIRE_REAL=1`,
/// else prints a loud SKIPPED line. Returns `None` so callers can `?`-style
/// return early.
pub fn missing<T>(test: &str, what: &str) -> Option<T> {
    if require_real() {
        panic!("{test}: {what} is required (ROLLGUARD_REQUIRE_REAL=1) but missing");
    }
    eprintln!("\n*** SKIPPED {test}: {what} is missing; run tests/run.sh to install it ***\n");
    None
}

/// Runs `rollguard --config CONFIG --db DB ARGS` with `env` set: (exit
/// code, stdout, stderr).
pub fn rollguard(
    config: &Path,
    db: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = rollguard_command();
    cmd.arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .args(args)
        .envs(env.iter().copied());
    output(&mut cmd)
}

/// The `rollguard` binary under test, to be given its arguments.
pub fn rollguard_command() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_rollguard"))
}

/// Runs `cmd` to its end: (exit code, -1 for a signal; stdout; stderr).
pub fn output(cmd: &mut std::process::Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fleet from config `text` as if read from `path` (nothing is written);
/// `env` answers `${NAME}`. An invalid config fails the test with its
/// errors.
pub fn parse_fleet(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Fleet {
    rollguard::config::parse(path, text, env).unwrap_or_else(|e| panic!("{e}"))
}

/// Writes config `text` to `DIR/fleet.toml` and reads the fleet from it
/// (see [`parse_fleet`]): the fleet, and `DIR/history.db` for its store.
pub fn fleet_in(
    dir: &TempDir,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Arc<Fleet>, PathBuf) {
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    (
        Arc::new(parse_fleet(&path, text, env)),
        dir.join("history.db"),
    )
}

/// Waits up to `timeout` for `ok`, checking every 50 ms; fails the test
/// after that, naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] in async code: sleeps on tokio's timer between checks.
pub async fn wait_async(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `rollguard --config CONFIG --db DB ARGS` (no input) for at most
/// `limit`: (exit code, stdout, stderr), or `None` after that (the command
/// is killed then).
pub fn rollguard_within(
    config: &Path,
    db: &Path,
    args: &[&str],
    limit: Duration,
) -> Option<(i32, String, String)> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = pipe(child.stdout.take().map(|r| Box::new(r) as _));
    let err = pipe(child.stderr.take().map(|r| Box::new(r) as _));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    status.map(|s| (s.code().unwrap_or(-1), out, err))
}

/// Finds an executable on PATH or in the sbin folders.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The executable `name`, or a skip (see [`missing`]).
pub fn program(test: &str, name: &str) -> Option<PathBuf> {
    find_program(name).or_else(|| missing(test, &format!("program `{name}`")))
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/rollguard-test-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rollguard-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A path inside the folder.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
