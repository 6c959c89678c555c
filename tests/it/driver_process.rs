//! The process and command drivers against real processes: small releases
//! in a temp folder (`releases/v1/bin/app` serving its version over HTTP
//! with python3), started, switched, snapshotted, restored and stopped
//! locally and over a real sshd on 127.0.0.1.

use crate::common;
use common::wait_for;

use std::cell::RefCell;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rollguard::config::{App, CommandSpec, Host, Instance, ProcessSpec, Ssh};
use rollguard::driver::command::Command;
use rollguard::driver::process::Process;
use rollguard::driver::{DriverError, Side, Slot};
use rollguard::exec::Executor;
use rollguard::model::Version;

use common::free_port;
use common::sshd::{Sshd, alive};
use common::{TempDir, program};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// `(state, ppid, pgid, session)` of a process, from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(String, i32, i32, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.first()?.to_string(),
        f.get(1)?.parse().ok()?,
        f.get(2)?.parse().ok()?,
        f.get(3)?.parse().ok()?,
    ))
}

/// Whether a live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(rd) = fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .and_then(stat)
            .is_some_and(|(state, _, g, _)| g == pgid && state != "Z" && state != "X")
    })
}

/// The body of `GET /version` on 127.0.0.1:`port`, trimmed.
fn http_version(port: u16) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /version HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.trim().to_string())
}

/// Waits until `GET /version` answers `want` (or, with `None`, until
/// nothing answers).
fn wait_http(port: u16, want: Option<&str>) {
    let start = Instant::now();
    loop {
        let got = http_version(port);
        if got.as_deref() == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "port {port}: wanted {want:?}, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temp folder with releases, an app with one instance, and every
/// process it saw started killed on drop.
struct Fixture {
    dir: TempDir,
    python: PathBuf,
    app: App,
    instance: Instance,
    host: Host,
    started: RefCell<Vec<(i32, Option<u64>)>>,
}

impl Fixture {
    /// `None` (skipped loudly) without python3.
    fn new(test: &str, ssh: Option<Ssh>) -> Option<Fixture> {
        let py = program(test, "python3")?;
        // pyenv shims need the user's environment; the real binary does not.
        let out = std::process::Command::new(&py)
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        let python = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(python.is_file(), "{python:?}");
        let dir = TempDir::new("driver-process");
        let port = free_port();
        let mut alt = free_port();
        while alt == port {
            alt = free_port();
        }
        let spec = ProcessSpec {
            run: format!("{}/releases/{{version}}/bin/app {{port}}", dir.0.display()),
            present: None,
            grace: Duration::from_secs(10),
            run_dir: dir.join("run").display().to_string(),
        };
        let app = App {
            name: "shop".into(),
            process: Some(spec),
            ..App::default()
        };
        let fx = Fixture {
            python,
            app,
            instance: Instance {
                name: "web-1".into(),
                host: "h".into(),
                port,
                alt_port: Some(alt),
            },
            host: Host {
                name: "h".into(),
                address: "127.0.0.1".into(),
                ssh,
            },
            started: RefCell::new(Vec::new()),
            dir,
        };
        for name in ["v1", "v2"] {
            fx.http_release(name);
        }
        Some(fx)
    }

    /// `releases/NAME/bin/app PORT`: serves `www/version` (holding NAME).
    fn http_release(&self, name: &str) {
        let www = self.dir.join(&format!("releases/{name}/www"));
        fs::create_dir_all(&www).unwrap();
        fs::write(www.join("version"), format!("{name}\n")).unwrap();
        self.release(
            name,
            &format!(
                "cd \"$(dirname \"$0\")/../www\" || exit 1\nexec {} -m http.server --bind 127.0.0.1 \"$1\"\n",
                self.python.display()
            ),
        );
    }

    /// `releases/NAME/bin/app` with `body` after `#!/bin/sh`.
    fn release(&self, name: &str, body: &str) {
        let bin = self.dir.join(&format!("releases/{name}/bin"));
        fs::create_dir_all(&bin).unwrap();
        let app = bin.join("app");
        fs::write(&app, format!("#!/bin/sh\n{body}")).unwrap();
        fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn spec(&self) -> &ProcessSpec {
        self.app.process.as_ref().unwrap()
    }

    fn driver(&self) -> Process {
        Process::new(self.spec().clone())
    }

    fn slot(&self, side: Side) -> Slot<'_> {
        Slot {
            app: &self.app,
            instance: &self.instance,
            host: &self.host,
            side,
        }
    }

    fn exec(&self) -> Executor {
        Executor::for_host(&self.host)
    }

    fn file(&self, side: Side, ext: &str) -> PathBuf {
        PathBuf::from(&self.spec().run_dir)
            .join("shop")
            .join(format!("web-1-{side}.{ext}"))
    }

    /// Remembers process `pid`, with its start time, for the cleanup.
    fn remember(&self, pid: i32) {
        let start = rollguard::host::pid(i64::from(pid)).start();
        self.started.borrow_mut().push((pid, start));
    }

    /// The pid in the slot's pidfile; remembered for the cleanup.
    fn pid(&self, side: Side) -> Option<i32> {
        let pid = fs::read_to_string(self.file(side, "pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        self.remember(pid);
        Some(pid)
    }

    fn port(&self, side: Side) -> u16 {
        self.slot(side).port().unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Tests run side by side in one process: a pid whose process
        // ended may be another test's by now.
        for &(pid, seen) in self.started.borrow().iter() {
            crate::common::rollout::kill_if_ours(pid, seen);
        }
        for side in [Side::Main, Side::Alt] {
            if let Some(pid) = fs::read_to_string(self.file(side, "pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                crate::common::rollout::stop_instance(pid, &self.file(side, "start"));
            }
        }
    }
}

/// A child killed on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn start_switch_snapshot_restore_and_stop() {
    let Some(fx) = Fixture::new("start_switch_snapshot_restore_and_stop", None) else {
        return;
    };
    let (d, e, s) = (fx.driver(), fx.exec(), fx.slot(Side::Main));
    let port = fx.port(Side::Main);

    assert_eq!(d.current(&e, s).await.unwrap(), None, "nothing runs yet");
    assert_eq!(d.snapshot(&e, s).await.unwrap(), None);
    d.stop(&e, s).await.expect("stopping nothing is fine");

    d.start(&e, s, &v("v1")).await.unwrap();
    let pid1 = fx.pid(Side::Main).expect("pidfile");
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v1")));
    wait_http(port, Some("v1"));
    let snap = d.snapshot(&e, s).await.unwrap().expect("v1 runs");
    assert_eq!(snap.driver, "process");
    assert_eq!(snap.version, Some(v("v1")));
    assert_eq!(snap.data["pid"], pid1);
    assert_eq!(snap.data["port"], port);
    let cmd = snap.data["command"].as_str().unwrap();
    assert!(
        cmd.contains("/releases/v1/bin/app") && cmd.ends_with(&format!(" {port}")),
        "{cmd}"
    );

    // v2 on the same slot: v1's whole group is gone, v2 answers.
    d.start(&e, s, &v("v2")).await.unwrap();
    let pid2 = fx.pid(Side::Main).unwrap();
    assert_ne!(pid1, pid2);
    assert!(!alive(pid1) && !group_alive(pid1), "v1 was stopped");
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v2")));
    wait_http(port, Some("v2"));
    assert_eq!(
        fs::read_to_string(fx.file(Side::Main, "last-version")).unwrap(),
        "v1\n"
    );

    // Back to the snapshot.
    d.restore(&e, s, &snap).await.unwrap();
    assert!(!group_alive(pid2), "v2 was stopped");
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v1")));
    wait_http(port, Some("v1"));

    // The alt side is independent.
    let alt = fx.slot(Side::Alt);
    d.start(&e, alt, &v("v2")).await.unwrap();
    wait_http(fx.port(Side::Alt), Some("v2"));
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v1")));
    d.stop(&e, alt).await.unwrap();
    wait_http(fx.port(Side::Alt), None);

    let pid3 = fx.pid(Side::Main).unwrap();
    d.stop(&e, s).await.unwrap();
    assert!(!group_alive(pid3));
    assert_eq!(d.current(&e, s).await.unwrap(), None);
    assert_eq!(d.snapshot(&e, s).await.unwrap(), None);
    assert!(!fx.file(Side::Main, "pid").exists());
    assert!(!fx.file(Side::Main, "version").exists());
    assert_eq!(
        fs::read_to_string(fx.file(Side::Main, "last-version")).unwrap(),
        "v1\n"
    );
    wait_http(port, None);
    let log = fs::read_to_string(fx.file(Side::Main, "log")).unwrap();
    assert!(log.contains("rollguard: starting v2"), "{log}");
}

#[tokio::test]
async fn the_process_survives_its_starter() {
    let Some(fx) = Fixture::new("the_process_survives_its_starter", None) else {
        return;
    };
    let (d, s) = (fx.driver(), fx.slot(Side::Main));
    {
        let e = fx.exec();
        d.start(&e, s, &v("v1")).await.unwrap();
    }
    let pid = fx.pid(Side::Main).unwrap();
    let (_, ppid, pgid, sid) = stat(pid).expect("still runs");
    assert_eq!((pgid, sid), (pid, pid), "own session and process group");
    assert_ne!(ppid as u32, std::process::id(), "not our child");
    if let Some((_, _, parent_pgid, _)) = stat(ppid) {
        assert_ne!(parent_pgid, pid);
    }
    // Still serving well after the executor's shell is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(alive(pid));
    wait_http(fx.port(Side::Main), Some("v1"));
    d.stop(&fx.exec(), s).await.unwrap();
}

#[tokio::test]
async fn stop_sends_sigterm_and_waits_for_it() {
    let Some(fx) = Fixture::new("stop_sends_sigterm_and_waits_for_it", None) else {
        return;
    };
    let marker = fx.dir.join("got-term");
    fx.release(
        "polite",
        &format!(
            "trap 'echo bye > {}; exit 0' TERM\necho started\nwhile :; do sleep 0.1; done\n",
            marker.display()
        ),
    );
    let (d, e, s) = (fx.driver(), fx.exec(), fx.slot(Side::Main));
    d.start(&e, s, &v("polite")).await.unwrap();
    let pid = fx.pid(Side::Main).unwrap();
    let t = Instant::now();
    d.stop(&e, s).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}; grace is 10 s",
        t.elapsed()
    );
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "bye\n",
        "SIGTERM ran the trap"
    );
    assert!(!group_alive(pid));
    let log = fs::read_to_string(fx.file(Side::Main, "log")).unwrap();
    assert!(log.contains("started"), "{log}");
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_grace() {
    let Some(mut fx) = Fixture::new("a_process_ignoring_sigterm_is_killed_after_grace", None)
    else {
        return;
    };
    fx.app.process.as_mut().unwrap().grace = Duration::from_secs(1);
    fx.release(
        "stubborn",
        "trap '' TERM\necho started\nwhile :; do sleep 0.1; done\n",
    );
    let (d, e, s) = (fx.driver(), fx.exec(), fx.slot(Side::Main));
    d.start(&e, s, &v("stubborn")).await.unwrap();
    let pid = fx.pid(Side::Main).unwrap();
    let t = Instant::now();
    d.stop(&e, s).await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert!(!alive(pid) && !group_alive(pid), "SIGKILLed");
    assert_eq!(d.current(&e, s).await.unwrap(), None);
}

#[tokio::test]
async fn a_release_that_exits_at_once_fails_with_its_log() {
    let Some(fx) = Fixture::new("a_release_that_exits_at_once_fails_with_its_log", None) else {
        return;
    };
    fx.release(
        "broken",
        "echo \"fatal: no config for port $1\" >&2\nexit 1\n",
    );
    let (d, e, s) = (fx.driver(), fx.exec(), fx.slot(Side::Main));
    // Something ran before: it is stopped, then the broken one fails.
    d.start(&e, s, &v("v1")).await.unwrap();
    let err = d.start(&e, s, &v("broken")).await.unwrap_err();
    match &err {
        DriverError::Failed { what, detail, .. } => {
            assert!(what.contains("broken"), "{err}");
            assert!(detail.contains("exited at once"), "{err}");
            assert!(
                detail.contains(&format!(
                    "fatal: no config for port {}",
                    fx.port(Side::Main)
                )),
                "{err}"
            );
            assert!(
                !detail.contains("Serving HTTP"),
                "only this start's log: {err}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.current(&e, s).await.unwrap(), None);
    assert!(!fx.file(Side::Main, "pid").exists());
    assert_eq!(
        fs::read_to_string(fx.file(Side::Main, "last-version")).unwrap(),
        "v1\n"
    );

    // A release that does not exist fails the same way.
    let err = d.start(&e, s, &v("v9")).await.unwrap_err();
    assert!(err.to_string().contains("exited at once"), "{err}");
}

#[tokio::test]
async fn available_lists_the_release_folders_whose_program_is_there() {
    let Some(fx) = Fixture::new("available_lists_the_release_folders", None) else {
        return;
    };
    let (e, s) = (fx.exec(), fx.slot(Side::Main));
    // v3's program is not executable; "not a release" is no release name;
    // `$(touch x)` is a folder named like a command, never run.
    let bin = fx.dir.join("releases/v3/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("app"), "#!/bin/sh\n").unwrap();
    for odd in ["not a release", "$(touch pwned)"] {
        let bin = fx.dir.join(&format!("releases/{odd}/bin"));
        fs::create_dir_all(&bin).unwrap();
        let app = bin.join("app");
        fs::write(&app, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let got = fx.driver().available(&e, s).await.unwrap();
    assert_eq!(got, Some(vec![v("v1"), v("v2")]));
    assert!(!fx.dir.join("pwned").exists() && !std::path::Path::new("pwned").exists());
}

#[tokio::test]
async fn present_checks_the_release() {
    let Some(mut fx) = Fixture::new("present_checks_the_release", None) else {
        return;
    };
    let (e, s) = (fx.exec(), fx.slot(Side::Main));
    let d = fx.driver();
    assert!(d.present(&e, s, &v("v1")).await.unwrap());
    assert!(!d.present(&e, s, &v("v9")).await.unwrap());
    // Not executable: not present.
    let bin = fx.dir.join("releases/v3/bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("app"), "#!/bin/sh\n").unwrap();
    assert!(!d.present(&e, s, &v("v3")).await.unwrap());

    let root = fx.dir.0.display().to_string();
    fx.app.process.as_mut().unwrap().present =
        Some(format!("test -f {root}/releases/{{version}}/www/version"));
    let d = fx.driver();
    let s = fx.slot(Side::Main);
    assert!(d.present(&e, s, &v("v2")).await.unwrap());
    assert!(!d.present(&e, s, &v("v3")).await.unwrap());
}

#[tokio::test]
async fn a_pidfile_naming_an_unrelated_process_is_not_killed() {
    let Some(fx) = Fixture::new("a_pidfile_naming_an_unrelated_process_is_not_killed", None) else {
        return;
    };
    let (d, e, s) = (fx.driver(), fx.exec(), fx.slot(Side::Main));
    d.start(&e, s, &v("v1")).await.unwrap();
    let pid = fx.pid(Side::Main).unwrap();
    // It crashes (killed behind rollguard's back)...
    // SAFETY: plain kill(2) of the group we started.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    wait_for("v1 gone", Duration::from_secs(10), || !group_alive(pid));
    // ...and its pid now belongs to someone else: an unrelated process
    // group leader whose pid is written over the old one.
    let other = Killed(
        std::process::Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let other_pid = other.0.id() as i32;
    fs::write(fx.file(Side::Main, "pid"), format!("{other_pid}\n")).unwrap();

    assert_eq!(d.current(&e, s).await.unwrap(), None);
    assert_eq!(d.snapshot(&e, s).await.unwrap(), None);
    d.stop(&e, s).await.unwrap();
    assert!(alive(other_pid), "the unrelated process was not signalled");
    assert!(!fx.file(Side::Main, "pid").exists());

    // A pidfile without the start-time file is not trusted either, and a
    // start then goes ahead without touching that process.
    fs::write(fx.file(Side::Main, "pid"), format!("{other_pid}\n")).unwrap();
    d.start(&e, s, &v("v2")).await.unwrap();
    assert!(alive(other_pid));
    wait_http(fx.port(Side::Main), Some("v2"));
    d.stop(&e, s).await.unwrap();
    assert!(alive(other_pid));

    // Garbage in the pidfile is not trusted and does not break anything.
    for junk in ["", "abc\n", "-1\n", "1\n", "0\n", "99999999999999999999\n"] {
        fs::write(fx.file(Side::Main, "pid"), junk).unwrap();
        fs::write(fx.file(Side::Main, "start"), "123\n").unwrap();
        assert_eq!(d.current(&e, s).await.unwrap(), None, "{junk:?}");
        d.stop(&e, s).await.unwrap();
    }
}

#[tokio::test]
async fn hostile_names_stay_literal_in_paths() {
    let Some(mut fx) = Fixture::new("hostile_names_stay_literal_in_paths", None) else {
        return;
    };
    // Config validation forbids these, but the driver must not rely on it.
    let pwned = fx.dir.join("pwned");
    fx.app.name = format!("a b'$(touch {})", pwned.display());
    fx.instance.name = "i;x`touch pwned`".into();
    let (d, e, s) = (fx.driver(), fx.exec(), fx.slot(Side::Main));
    d.start(&e, s, &v("v1")).await.unwrap();
    let pidf = PathBuf::from(&fx.spec().run_dir)
        .join(&fx.app.name)
        .join("i;x`touch pwned`-main.pid");
    assert!(pidf.is_file(), "{pidf:?}");
    let pid: i32 = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    fx.remember(pid);
    wait_http(fx.port(Side::Main), Some("v1"));
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v1")));
    d.stop(&e, s).await.unwrap();
    assert!(!group_alive(pid));
    assert!(!pwned.exists() && !Path::new("pwned").exists());
}

#[tokio::test]
async fn start_current_and_stop_over_ssh() {
    let Some(sshd) = Sshd::start("start_current_and_stop_over_ssh") else {
        return;
    };
    let Some(fx) = Fixture::new("start_current_and_stop_over_ssh", Some(sshd.ssh())) else {
        return;
    };
    let (d, s) = (fx.driver(), fx.slot(Side::Main));
    let port = fx.port(Side::Main);
    let e = fx.exec();
    assert!(matches!(e, Executor::Ssh(_)));
    d.start(&e, s, &v("v1"))
        .await
        .unwrap_or_else(|err| panic!("{err}\nsshd log: {}", sshd.log()));
    let pid = fx.pid(Side::Main).unwrap();
    wait_http(port, Some("v1"));
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v1")));
    assert!(d.present(&e, s, &v("v1")).await.unwrap());
    assert!(!d.present(&e, s, &v("v9")).await.unwrap());

    // The SSH session ends (master closed, every connection cut): the
    // process runs on, outside sshd's process tree.
    if let Executor::Ssh(h) = &e {
        h.close().await;
    }
    sshd.kill_connections();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(pid), "survived the SSH session");
    assert!(!sshd.connection_pids().contains(&pid));
    wait_http(port, Some("v1"));

    // A new connection sees and switches it.
    let e = fx.exec();
    assert_eq!(d.current(&e, s).await.unwrap(), Some(v("v1")));
    d.start(&e, s, &v("v2")).await.unwrap();
    assert!(!group_alive(pid));
    wait_http(port, Some("v2"));
    let pid2 = fx.pid(Side::Main).unwrap();
    d.stop(&e, s).await.unwrap();
    assert!(!group_alive(pid2));
    assert_eq!(d.current(&e, s).await.unwrap(), None);
    wait_http(port, None);
    if let Executor::Ssh(h) = &e {
        h.close().await;
    }
}

/// An app for the command driver whose values all look hostile.
fn command_app(dir: &Path, spec: CommandSpec) -> (App, Instance, Host) {
    let d = dir.display();
    let app = App {
        name: format!("shop'; touch {d}/pwned-app #"),
        command: Some(spec),
        ..App::default()
    };
    let instance = Instance {
        name: format!("web $(touch {d}/pwned-instance)"),
        host: "h".into(),
        port: 8080,
        alt_port: None,
    };
    let host = Host {
        name: "h".into(),
        address: format!("`touch {d}/pwned-host`"),
        ssh: None,
    };
    (app, instance, host)
}

#[tokio::test]
async fn command_driver_runs_the_templates_with_literal_values() {
    let dir = TempDir::new("driver-command");
    let d = dir.0.display().to_string();
    let spec = CommandSpec {
        start: format!(
            "printf '%s\\n' {{version}} > {d}/current.tmp && mv {d}/current.tmp {d}/current && \
             printf '%s\\n' {{app}} {{instance}} {{host}} {{port}} {{version}} > {d}/args"
        ),
        stop: format!("rm -f {d}/current && echo {{version}} >> {d}/stopped"),
        current: Some(format!("cat {d}/current 2>/dev/null || true")),
        present: Some(format!("test -d {d}/releases/{{version}}")),
    };
    let (app, instance, host) = command_app(&dir.0, spec.clone());
    let slot = Slot {
        app: &app,
        instance: &instance,
        host: &host,
        side: Side::Main,
    };
    let e = Executor::for_host(&host);
    let c = Command::new(spec);

    assert_eq!(c.current(&e, slot).await.unwrap(), None);
    assert_eq!(c.snapshot(&e, slot).await.unwrap(), None, "nothing runs");
    c.start(&e, slot, &v("v1")).await.unwrap();
    assert_eq!(c.current(&e, slot).await.unwrap(), Some(v("v1")));
    let args = fs::read_to_string(dir.join("args")).unwrap();
    assert_eq!(
        args,
        format!(
            "{}\n{}\n{}\n8080\nv1\n",
            app.name, instance.name, host.address
        )
    );
    let snap = c.snapshot(&e, slot).await.unwrap().unwrap();
    assert_eq!(snap.driver, "command");
    assert_eq!(snap.version, Some(v("v1")));

    c.start(&e, slot, &v("v2")).await.unwrap();
    assert_eq!(c.current(&e, slot).await.unwrap(), Some(v("v2")));
    c.restore(&e, slot, &snap).await.unwrap();
    assert_eq!(c.current(&e, slot).await.unwrap(), Some(v("v1")));

    // stop gets {version} from `current`.
    c.stop(&e, slot).await.unwrap();
    assert_eq!(c.current(&e, slot).await.unwrap(), None);
    assert_eq!(fs::read_to_string(dir.join("stopped")).unwrap(), "v1\n");

    fs::create_dir_all(dir.join("releases/v1")).unwrap();
    assert!(c.present(&e, slot, &v("v1")).await.unwrap());
    assert!(!c.present(&e, slot, &v("v2")).await.unwrap());

    for f in ["pwned-app", "pwned-instance", "pwned-host"] {
        assert!(!dir.join(f).exists(), "{f}: a value was run as code");
    }
}

#[tokio::test]
async fn command_driver_failures_and_odd_output() {
    let dir = TempDir::new("driver-command-fail");
    let d = dir.0.display().to_string();
    let spec = CommandSpec {
        start: "echo starting; echo \"no such unit\" >&2; exit 7".into(),
        stop: "exit 0".into(),
        current: Some(format!("cat {d}/out")),
        present: None,
    };
    let (app, instance, host) = command_app(&dir.0, spec.clone());
    let slot = Slot {
        app: &app,
        instance: &instance,
        host: &host,
        side: Side::Main,
    };
    let e = Executor::for_host(&host);
    let c = Command::new(spec.clone());

    match c.start(&e, slot, &v("v1")).await.unwrap_err() {
        DriverError::Failed { what, detail, .. } => {
            assert_eq!(what, "start command");
            assert_eq!(detail, "exit code 7: no such unit");
        }
        other => panic!("{other:?}"),
    }
    // `current` failing is an error; odd output is "unknown".
    assert!(matches!(
        c.current(&e, slot).await,
        Err(DriverError::Failed { .. })
    ));
    for odd in ["not a version!\n", "v1\nv2\n", "\n\n", "$(id)"] {
        fs::write(dir.join("out"), odd).unwrap();
        assert_eq!(c.current(&e, slot).await.unwrap(), None, "{odd:?}");
    }
    fs::write(dir.join("out"), "  v1.2.3\n").unwrap();
    assert_eq!(c.current(&e, slot).await.unwrap(), Some(v("v1.2.3")));
    assert!(
        c.present(&e, slot, &v("v1")).await.unwrap(),
        "no present: true"
    );

    // Without `current`: snapshots carry no version and cannot be restored.
    let spec = CommandSpec {
        start: "true".into(),
        stop: "true".into(),
        current: None,
        present: None,
    };
    let c = Command::new(spec);
    assert_eq!(c.current(&e, slot).await.unwrap(), None);
    let snap = c.snapshot(&e, slot).await.unwrap().expect("a snapshot");
    assert_eq!(snap.version, None);
    let err = c.restore(&e, slot, &snap).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot restore: the command driver has no `current` command"),
        "{err}"
    );
    c.start(&e, slot, &v("v1")).await.unwrap();
    c.stop(&e, slot).await.unwrap();
}
