//! Ending the demo: stop every process it started and remove its folder,
//! once, whichever way the demo ends (the console's `q`, the end of
//! `--headless`'s time, Ctrl-C, SIGTERM or SIGHUP).
//!
//! In this order, so nothing starts again behind the step that stopped it:
//!
//! 1. Rollout workers on the demo's history (detached, each in a session
//!    of its own, so they outlive the console that started them): SIGTERM
//!    to the process group, then SIGKILL. A worker stopped mid-stage would
//!    otherwise go on starting instances and writing history, run files and
//!    its log into the folder.
//! 2. Everything else whose command line names the folder: the instances
//!    (each the leader of its own process group; the group is signalled),
//!    their start scripts, the demo's Prometheus, `nginx -s reload` and
//!    probe commands. SIGTERM, up to [`GRACE`], then SIGKILL. A
//!    `rollguard` command a person runs on
//!    the demo's config in another terminal (`rg events --follow`) is
//!    theirs and is left alone.
//! 3. nginx, gracefully: SIGQUIT to the master (its workers finish what
//!    they serve, then exit, then the master), SIGTERM if it still runs
//!    after [`NGINX_QUIT`], and SIGKILL to its whole process group as the
//!    last resort, and for any worker left once the master is gone. nginx
//!    runs in a process group of its own for that (and so that a
//!    terminal's Ctrl-C reaches the demo, which stops it in this order,
//!    rather than nginx directly).
//! 4. The folder, removed again and again until it is gone (for up to
//!    [`REMOVE_FOR`]), stopping whatever names it in between: a file
//!    written between a listing and the removal of its directory fails
//!    only that round.
//!
//! Processes are found in `/proc`; where there is none, the instances'
//! pidfiles are used instead. A pid is signalled only while the process
//! that has it names the folder (or is nginx, the demo's own child), so a
//! reused pid is never hit.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::host;

/// How long instances and workers have after SIGTERM.
pub const GRACE: Duration = Duration::from_secs(3);

/// How long nginx has after SIGQUIT to finish and exit.
pub const NGINX_QUIT: Duration = Duration::from_secs(3);

/// How long the folder's removal is retried.
pub const REMOVE_FOR: Duration = Duration::from_secs(5);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

/// What the demo started, and the one way to stop it.
pub struct Teardown {
    /// The folder's path, as made and as resolved (they differ when the
    /// temporary folder is reached through a symbolic link).
    dirs: Vec<String>,
    /// The folder.
    dir: PathBuf,
    /// The config, which names a person's own `rg` commands.
    config: Vec<String>,
    nginx: Mutex<Option<Child>>,
    /// Prometheus, stopped with the instances (its command line names the
    /// folder) and reaped after them.
    prometheus: Mutex<Option<Child>>,
    /// Held while the teardown runs; `true` once it has.
    done: Mutex<bool>,
    /// `true` once the teardown has begun; held by the demo's own writes
    /// into the folder ([`Teardown::unless_ending`]), so none comes after.
    ending: Mutex<bool>,
    /// Set when a signal asked the demo to end.
    pub interrupted: AtomicBool,
}

impl Teardown {
    /// The teardown of the demo in `dir` with its config at `config`.
    pub fn new(dir: &Path, config: &Path) -> Teardown {
        let mut dirs = vec![dir.to_string_lossy().into_owned()];
        let mut configs = vec![config.to_string_lossy().into_owned()];
        if let Ok(real) = std::fs::canonicalize(dir) {
            let real = real.to_string_lossy().into_owned();
            if !dirs.contains(&real) {
                if let Some(name) = config.file_name() {
                    configs.push(Path::new(&real).join(name).to_string_lossy().into_owned());
                }
                dirs.push(real);
            }
        }
        Teardown {
            dirs,
            dir: dir.to_path_buf(),
            config: configs,
            nginx: Mutex::new(None),
            prometheus: Mutex::new(None),
            done: Mutex::new(false),
            ending: Mutex::new(false),
            interrupted: AtomicBool::new(false),
        }
    }

    /// Hands nginx over, to be stopped last.
    pub fn set_nginx(&self, child: Child) {
        *self.nginx.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
    }

    /// Hands Prometheus over, to be stopped with the instances and reaped.
    pub fn set_prometheus(&self, child: Child) {
        *self
            .prometheus
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(child);
    }

    /// Whether the teardown has begun.
    pub fn ending(&self) -> bool {
        *self.ending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` (a write of the demo's own into the folder) unless the
    /// teardown has begun; the teardown does not begin meanwhile.
    pub fn unless_ending(&self, write: impl FnOnce()) {
        let ending = self.ending.lock().unwrap_or_else(PoisonError::into_inner);
        if !*ending {
            write();
        }
    }

    /// Stops everything and removes the folder. Runs once; a second call
    /// waits for the first to end.
    pub fn run(&self) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        if *done {
            return;
        }
        *self.ending.lock().unwrap_or_else(PoisonError::into_inner) = true;
        let table = processes();
        if table.is_none() {
            self.stop_from_pidfiles();
        }
        // 1. Rollout workers first, so they start nothing more.
        let workers: Vec<Proc> = self
            .ours(table.as_deref().unwrap_or_default())
            .into_iter()
            .filter(is_worker)
            .collect();
        stop(&workers, GRACE);
        // 2. Instances, their scripts, and any command on the folder; not
        // nginx, whose command line names the folder too: it goes next.
        let nginx = self
            .nginx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let nginx_pid = nginx.as_ref().and_then(|c| i32::try_from(c.id()).ok());
        let rest: Vec<Proc> = self
            .ours(&processes().unwrap_or_default())
            .into_iter()
            .filter(|p| Some(p.pid) != nginx_pid && Some(p.pgid) != nginx_pid)
            .collect();
        stop(&rest, GRACE);
        if let Some(mut child) = self
            .prometheus
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            // Stopped above, or never found there: SIGKILL, then reaped.
            if !exited(&mut child, Duration::from_millis(100)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // 3. nginx.
        if let Some(child) = nginx {
            stop_nginx(child);
        }
        // 4. The folder.
        self.remove_folder();
        *done = true;
    }

    /// The processes in `table` that are the demo's: their command line
    /// names the folder, and they are not a person's `rollguard --config
    /// …` command nor this process.
    fn ours(&self, table: &[Proc]) -> Vec<Proc> {
        let me = std::process::id() as i32;
        table
            .iter()
            .filter(|p| {
                p.pid != me
                    && p.pid > 1
                    && names_any(&p.args, &self.dirs)
                    && !p.args.iter().any(|a| self.config.contains(a))
            })
            .cloned()
            .collect()
    }

    /// Without `/proc`: SIGTERM, then SIGKILL, to the process groups the
    /// instances' pidfiles name.
    fn stop_from_pidfiles(&self) {
        let mut leaders = Vec::new();
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
                        .filter(|p| *p > 1)
                {
                    leaders.push(pid);
                }
            }
        }
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            // Process groups the demo started.
            for &pid in &leaders {
                let _ = host::signal_group(pid, sig);
            }
            let end = Instant::now() + GRACE;
            // Signal 0 only asks whether the group exists.
            while leaders.iter().any(|p| host::signal_group(*p, 0).is_ok()) && Instant::now() < end
            {
                std::thread::sleep(POLL);
            }
        }
    }

    /// Removes the folder, stopping whatever still names it between tries.
    fn remove_folder(&self) {
        let end = Instant::now() + REMOVE_FOR;
        loop {
            match std::fs::remove_dir_all(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) => {
                    if Instant::now() > end {
                        tracing::warn!(
                            "could not remove the demo folder {}: {e}",
                            self.dir.display()
                        );
                        return;
                    }
                }
            }
            let left = self.ours(&processes().unwrap_or_default());
            stop(&left, Duration::from_millis(200));
            std::thread::sleep(POLL);
        }
    }
}

/// One process, as `/proc` shows it.
#[derive(Clone, Debug)]
struct Proc {
    pid: i32,
    pgid: i32,
    /// Start time in clock ticks after boot: a pid reused later differs.
    start: u64,
    args: Vec<String>,
}

/// Every process of the machine, or `None` without a readable `/proc`.
fn processes() -> Option<Vec<Proc>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut all = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(p) = process(pid) {
            all.push(p);
        }
    }
    Some(all)
}

/// `/proc/PID/stat` (pgid, start time, state) and `cmdline`; `None` when
/// the process is gone or has ended (a zombie).
fn process(pid: i32) -> Option<Proc> {
    let stat = crate::host::stat(i64::from(pid)).filter(|s| !s.ended())?;
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
        pgid: stat.pgid,
        start: stat.start,
        args,
    })
}

/// Whether an argument is one of `dirs` or a path (or text) inside one.
fn names_any(args: &[String], dirs: &[String]) -> bool {
    args.iter().any(|a| {
        dirs.iter()
            .any(|d| a == d || a.contains(&format!("{}/", d.trim_end_matches('/'))))
    })
}

/// A rollout worker (`rollguard --db … worker --deployment N`).
fn is_worker(p: &Proc) -> bool {
    p.args.iter().any(|a| a == "worker") && p.args.iter().any(|a| a == "--deployment")
}

/// Whether `p` still runs as the same process.
fn still_runs(p: &Proc) -> bool {
    process(p.pid).is_some_and(|now| now.start == p.start)
}

/// SIGTERM to each (to its process group when it leads one), up to
/// `grace` for them to end, then SIGKILL to what is left.
fn stop(procs: &[Proc], grace: Duration) {
    if procs.is_empty() {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        for p in procs.iter().filter(|p| still_runs(p)) {
            signal(p, sig);
        }
        let end = Instant::now() + grace;
        while procs.iter().any(still_runs) && Instant::now() < end {
            std::thread::sleep(POLL);
        }
        if !procs.iter().any(still_runs) {
            return;
        }
    }
}

fn signal(p: &Proc, sig: i32) {
    // `p` names the demo's folder and has the start time it had when it
    // was found; a group is signalled only when `p` leads it.
    if p.pgid == p.pid {
        let _ = host::signal_group(p.pid, sig);
    }
    let _ = host::signal(p.pid, sig);
}

/// Whether a process of group `pgid` other than a zombie is left.
fn group_runs(pgid: i32) -> bool {
    match processes() {
        Some(all) => all.iter().any(|p| p.pgid == pgid),
        // Signal 0 only asks whether the group exists.
        None => host::signal_group(pgid, 0).is_ok(),
    }
}

/// Waits up to `limit` for `child` to exit (and reaps it).
fn exited(child: &mut Child, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= end => return false,
            Ok(None) => std::thread::sleep(POLL),
        }
    }
}

/// nginx's graceful shutdown, then its fast one, then SIGKILL to its
/// process group (it leads one: see `start_nginx`).
fn stop_nginx(mut child: Child) {
    let Ok(pid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    // Signals to the nginx this demo started and has not reaped, so its
    // pid is still its own.
    let _ = host::signal(pid, libc::SIGQUIT);
    if !exited(&mut child, NGINX_QUIT) {
        let _ = host::signal(pid, libc::SIGTERM);
        if !exited(&mut child, Duration::from_secs(1)) {
            // The group nginx leads.
            let _ = host::signal_group(pid, libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    // A worker whose master is gone keeps its port: none may stay.
    let end = Instant::now() + Duration::from_secs(1);
    while group_runs(pid) {
        // The group nginx led; its members are its workers.
        let _ = host::signal_group(pid, libc::SIGKILL);
        if Instant::now() > end {
            tracing::warn!("nginx's process group {pid} survives SIGKILL");
            break;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_folder_itself_or_paths_inside_it_count() {
        let dirs = vec!["/tmp/rollguard-demo-12".to_string()];
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(names_any(
            &args(&["rollguard", "--heartbeat-dir", "/tmp/rollguard-demo-12/run"]),
            &dirs
        ));
        assert!(names_any(&args(&["x", "/tmp/rollguard-demo-12"]), &dirs));
        assert!(names_any(
            &args(&[
                "sh",
                "-c",
                "exec nginx -p /tmp/rollguard-demo-12/nginx -s reload"
            ]),
            &dirs
        ));
        // Another demo whose pid starts with the same digits.
        assert!(!names_any(
            &args(&["rollguard", "/tmp/rollguard-demo-123/run"]),
            &dirs
        ));
        assert!(!names_any(&args(&[]), &dirs));
    }

    /// `sh -c SCRIPT sh ARGS…`, in a session of its own when `detached`.
    fn sh(script: &str, args: &[&Path], detached: bool) -> Child {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(script).arg("sh").args(args);
        if detached {
            cmd.process_group(0);
        }
        cmd.spawn().expect("sh runs")
    }

    #[test]
    fn the_folder_goes_while_processes_write_into_it_and_a_persons_command_stays() {
        let dir = std::env::temp_dir().join(format!(
            "rollguard-demo-teardown-test-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let config = dir.join("rollguard.toml");
        // Writers that make directories and files as fast as they can, as
        // a rollout does: one detached, one not.
        let write =
            r#"i=0; while :; do mkdir -p "$1/run/x$i" && : > "$1/run/x$i/f"; i=$((i+1)); done"#;
        let mut writers = [sh(write, &[&dir], true), sh(write, &[&dir], false)];
        // A person's `rg events --follow` on the demo.
        let mut person = sh("sleep 30; :", &[Path::new("--config"), &config], false);
        let end = Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(dir.join("run")).map_or(0, |d| d.count()) < 20 {
            assert!(Instant::now() < end, "the writers write");
            std::thread::sleep(POLL);
        }
        let t = Teardown::new(&dir, &config);
        t.run();
        t.run();
        assert!(!dir.exists(), "the folder is gone");
        for w in &mut writers {
            assert!(exited(w, Duration::from_secs(2)), "a writer is stopped");
        }
        assert!(
            matches!(person.try_wait(), Ok(None)),
            "a person's command on the demo is theirs"
        );
        let _ = person.kill();
        let _ = person.wait();
    }

    #[test]
    fn a_worker_is_told_by_its_subcommand() {
        let p = |v: &[&str]| Proc {
            pid: 2,
            pgid: 2,
            start: 0,
            args: v.iter().map(|s| s.to_string()).collect(),
        };
        assert!(is_worker(&p(&[
            "rollguard",
            "--db",
            "/d/history.db",
            "worker",
            "--deployment",
            "3"
        ])));
        assert!(!is_worker(&p(&["rollguard", "demo-app", "--port", "1"])));
    }
}
