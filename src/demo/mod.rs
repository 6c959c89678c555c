//! `rollguard demo`: a self-contained fleet on this machine. Three apps of
//! three instances run the demo application ([`server`], the hidden
//! `rollguard demo-app`) through the real process driver, from releases
//! `v1` and `v2` (good) and `v3` (passes the gate of every instance it
//! replaces, then fails its health checks once its rollout monitors them:
//! [`bad`]) in a temporary folder. When nginx is installed, a private nginx
//! fronts each app and rollouts move traffic through it; otherwise rollouts
//! run without traffic switching, and the banner says so. One instance
//! ([`FLAPPER`]) flaps now and then so failures show in the sparklines,
//! until a rollout replaces it. A newcomer types `:deploy checkout v3` in
//! the console and watches it roll back; a `rg` script in the folder runs
//! rollguard on the demo's config and history, for the same from another
//! terminal (`…/rg deploy checkout v3`): the banner names it, as much of it
//! as fits ([`DemoFleet::banner`]), and the log at the start
//! ([`DemoFleet::guide`]); `payments` waits a minute for an operator before
//! it rolls back, to fire or hold from the console. However the demo ends
//! (dropping [`DemoFleet`], Ctrl-C, SIGTERM, SIGHUP), it stops everything
//! it started, rollouts still running on its history and nginx's workers
//! included, removes the folder (`teardown.rs`), and says so on standard
//! error.
//!
//! When Prometheus is installed too, a fourth app ([`CANARY_APP`]) deploys
//! by canary, and a private Prometheus (`prometheus`) scrapes its
//! instances' request counters: its gates compare the canary's error ratio
//! with the old instances'. Release `v4` passes every health check while a
//! quarter of its requests fail; `:deploy catalog v4` is rolled back by
//! Prometheus alone, and its "why" card shows both ratios.

pub mod bad;
mod fleet_file;
mod nginx;
mod prometheus;
pub mod receiver;
pub mod server;
mod teardown;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use teardown::Teardown;

use crate::config;
use crate::driver::{Driver, Side, Slot};
use crate::error::{Code, UserError};
use crate::exec::Executors;
use crate::model::Version;
use crate::shell;

/// The running demo fleet.
pub struct DemoFleet {
    /// The temporary folder holding config, releases, database and runs.
    pub dir: PathBuf,
    /// The generated config.
    pub config: PathBuf,
    /// The history database.
    pub db: PathBuf,
    /// The script that runs rollguard on this demo (`rg deploy …`).
    pub rg: PathBuf,
    /// nginx's port per app, when nginx fronts the apps.
    pub nginx_ports: Option<Vec<(String, u16)>>,
    /// The port of the demo's Slack stand-in ([`receiver`]).
    pub receiver_port: u16,
    /// The port of the demo's Prometheus, when it runs one.
    pub prometheus_port: Option<u16>,
    teardown: Arc<Teardown>,
}

impl DemoFleet {
    /// The console's banner: its parts, the most wanted first, of which
    /// the console shows as many as fit (`tui/header.rs`, `fit_banner`):
    /// what to type, the same from a shell (both fit at 80 columns when the
    /// folder is in `/tmp`), the keys that show it, the canary, nginx.
    /// [`DemoFleet::guide`] says it all in the log.
    pub fn banner(&self) -> String {
        let mut parts = vec![
            "try :deploy checkout v3".to_string(),
            format!("or {} deploy checkout v3", self.rg.display()),
            "R: its rollout".into(),
            "H: history".into(),
            "L: the log, what Slack got".into(),
        ];
        if self.prometheus_port.is_some() {
            parts.push(format!(
                ":deploy {} v4: Prometheus judges its canary",
                CANARY_APP.0
            ));
        }
        parts.push(self.traffic());
        // The console's header splits the banner into its parts there.
        parts.join(" · ")
    }

    /// Whether nginx fronts the apps, and on which ports.
    fn traffic(&self) -> String {
        match &self.nginx_ports {
            Some(ports) => format!(
                "nginx: {}",
                ports
                    .iter()
                    .map(|(a, p)| format!("{a} :{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "nginx not installed: rollouts run without traffic switching".into(),
        }
    }

    /// What the demo is and how to try it, a short line each, for the
    /// log (the console's Logs view) at its start, under [`LOG_TARGET`].
    pub fn guide(&self) -> Vec<String> {
        let rg = self.rg.display();
        let mut lines = vec![
            "try `:deploy checkout v3`, then R to watch it: v3 passes the gate of each instance, fails while monitored, and rolls back to v1".to_string(),
            "the same from another terminal:".into(),
            format!("{rg} deploy checkout v3 --yes"),
            format!(
                "{rg} runs rollguard on the demo's config and history (`status`, `history checkout`, `events --follow`)"
            ),
            "`:deploy payments v3` waits a minute before it rolls back: f fires the rollback, h holds it".into(),
        ];
        if self.prometheus_port.is_some() {
            lines.push(format!(
                "`:deploy {} v4`: its canary is rolled back by what Prometheus measures, its error ratio",
                CANARY_APP.0
            ));
        }
        lines.push(self.traffic());
        lines.push(format!(
            "its folder {} (config, releases, history, the rg script) is removed when the demo ends",
            self.dir.display()
        ));
        lines
    }

    /// What the demo's end did, for standard error once the console has
    /// given the terminal back: the folder removed, its `rg` script with it
    /// (or not, and what is left).
    fn farewell(&self) -> String {
        let (dir, rg) = (self.dir.display(), self.rg.display());
        if self.dir.exists() {
            format!(
                "The demo's fleet is stopped, but its folder could not be removed:\n  {dir}\n\
                 Remove it by hand: its rg script there runs rollguard on a fleet that is gone."
            )
        } else {
            format!(
                "The demo's fleet is stopped, and its folder is removed with all it held:\n  \
                 {dir} (config, releases, history)\n  {rg} (its rg script)"
            )
        }
    }

    /// Whether `app` is the canary app judged by Prometheus.
    fn is_canary_app(&self, app: &str) -> bool {
        self.prometheus_port.is_some() && app == CANARY_APP.0
    }

    /// The apps, in config order: [`APPS`], and [`CANARY_APP`] last while
    /// the demo's Prometheus runs.
    fn apps(&self) -> Vec<(&'static str, u64)> {
        let mut apps = APPS.to_vec();
        if self.prometheus_port.is_some() {
            apps.push(CANARY_APP);
        }
        apps
    }
}

impl Drop for DemoFleet {
    /// Stops the fleet and removes the folder, then says so on standard
    /// error (after the console, which ends first, has given the terminal
    /// back, so it stays in the scrollback).
    fn drop(&mut self) {
        self.teardown.run();
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{}", self.farewell());
    }
}

/// The target of what the demo logs as it starts: short, so that the `rg`
/// line fits on one line of the Logs view at 80 columns.
pub const LOG_TARGET: &str = "demo";

/// The apps: name and typical latency.
const APPS: [(&str, u64); 3] = [("checkout", 25), ("payments", 12), ("search", 40)];

/// The app added when Prometheus is installed, deployed by canary and
/// judged by its error ratio (name, typical latency). Its instances have
/// alt ports, where the canary starts.
pub const CANARY_APP: (&str, u64) = ("catalog", 30);

/// `n` distinct free ports: all are held open until every one is chosen,
/// so none is handed out twice. They are taken below the kernel's range
/// of ephemeral ports (`ip_local_port_range`), where outgoing connections
/// (a probe of an instance already started) take their local ports and
/// could take a chosen port before its instance binds it; from the
/// ephemeral range only when that finds too few.
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let floor = 10_000.min(low / 2);
    let span = u32::from(low.saturating_sub(floor)).max(1);
    // A start that differs between processes, so two demos rarely probe
    // the same ports first.
    let start = (std::process::id().wrapping_mul(2_654_435_761)) % span;
    let mut held = Vec::with_capacity(n);
    for k in 0..span {
        if held.len() == n {
            break;
        }
        let port = floor + u16::try_from((start + k) % span).unwrap_or(0);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    while held.len() < n {
        held.push(TcpListener::bind("127.0.0.1:0")?);
    }
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Starts the demo fleet. `exe` is the rollguard binary (it serves as the
/// demo application too); the demo's Slack stand-in says what it got as
/// `say` tells.
pub async fn start(exe: &Path, say: receiver::Say) -> Result<DemoFleet, UserError> {
    let dir = std::env::temp_dir().join(format!("rollguard-demo-{}", std::process::id()));
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        UserError::new(Code::Demo, format!("{what}: {e}"))
            .hint("check that the temporary folder is writable and loopback ports are free")
    };
    if say == receiver::Say::Log {
        // The console's log, from now on: what the demo says as it starts
        // shows in its Logs view.
        crate::tui::init_logging();
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run"))
        .map_err(|e| fail("cannot create the demo folder", &e))?;
    let config = dir.join("rollguard.toml");
    let teardown = Arc::new(Teardown::new(&dir, &config));
    watch_signals(teardown.clone());
    let prometheus_bin = prometheus::find();
    let mut demo = DemoFleet {
        config,
        db: dir.join("history.db"),
        rg: dir.join("rg"),
        dir,
        nginx_ports: None,
        receiver_port: 0,
        prometheus_port: None,
        teardown,
    };
    demo.receiver_port = receiver::start(demo.dir.join("notifications"), say)
        .await
        .map_err(|e| fail("cannot start the demo's notification receiver", &e))?;
    write_releases(&demo.dir, exe).map_err(|e| fail("cannot write the demo releases", &e))?;
    // Three instances per app and one nginx port per app, the canary app
    // last; with Prometheus, the canary app's three alt ports and
    // Prometheus' own. Should Prometheus not start, the canary app's ports
    // go unused.
    let n = APPS.len() + usize::from(prometheus_bin.is_some());
    let extra = if prometheus_bin.is_some() { 4 } else { 0 };
    let mut ports = free_ports(n * 4 + extra).map_err(|e| fail("no free port", &e))?;
    let mut lb_ports = ports.split_off(n * 3);
    let mut alt_ports = lb_ports.split_off(n);
    if let Some(bin) = &prometheus_bin {
        let port = alt_ports.pop().unwrap_or_default();
        let mut targets = ports[(n - 1) * 3..].to_vec();
        targets.extend(&alt_ports);
        demo.serve_prometheus(bin, port, &targets);
    }
    demo.serve_nginx(&ports, &lb_ports);
    let text = fleet_file::config_text(&demo, &ports, &alt_ports);
    std::fs::write(&demo.config, text).map_err(|e| fail("cannot write the demo config", &e))?;
    demo.write_rg(exe)
        .map_err(|e| fail("cannot write the rg script", &e))?;
    install_v1(&demo).await?;
    bad::watch(
        &demo.dir,
        demo.db.clone(),
        demo.apps().iter().map(|(a, _)| a.to_string()).collect(),
        demo.teardown.clone(),
    );
    demo.wait_for_prometheus().await;
    for line in demo.guide() {
        tracing::info!(target: LOG_TARGET, "{line}");
    }
    if demo.interrupted() {
        // Dropping the demo stops what it started.
        return Err(UserError::new(
            Code::Demo,
            "interrupted while the demo was starting",
        ));
    }
    Ok(demo)
}

impl DemoFleet {
    fn interrupted(&self) -> bool {
        self.teardown.interrupted.load(Ordering::Relaxed)
    }

    /// Starts the demo's Prometheus (`bin`) on `port`, scraping
    /// `targets`; without it (said in the log) when it cannot start.
    fn serve_prometheus(&mut self, bin: &Path, port: u16, targets: &[u16]) {
        match prometheus::start(bin, &self.dir, port, targets) {
            Ok(child) => {
                self.teardown.set_prometheus(child);
                self.prometheus_port = Some(port);
            }
            Err(e) => tracing::warn!("the demo runs without Prometheus: {e}"),
        }
    }

    /// Starts a private nginx in front of the instances' `ports`, on the
    /// front ports `lb`, when nginx is installed; without it (said in the
    /// log) when it cannot start.
    fn serve_nginx(&mut self, ports: &[u16], lb: &[u16]) {
        if let Some(bin) = nginx::find() {
            match nginx::start(&self.dir, &bin, &self.apps(), ports, lb) {
                Ok((child, lb_ports)) => {
                    self.teardown.set_nginx(child);
                    self.nginx_ports = Some(lb_ports);
                }
                Err(e) => tracing::warn!("the demo runs without nginx: {e}"),
            }
        }
    }

    /// The `rg` script: rollguard (`exe`) on this demo's fleet and
    /// history.
    fn write_rg(&self, exe: &Path) -> std::io::Result<()> {
        let rg = format!(
            "#!/bin/sh\n# Runs rollguard on this demo's fleet and history.\nexec {} --config {} --db {} \"$@\"\n",
            shell::quote(&exe.to_string_lossy()),
            shell::quote(&self.config.to_string_lossy()),
            shell::quote(&self.db.to_string_lossy()),
        );
        std::fs::write(&self.rg, rg)?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.rg, std::fs::Permissions::from_mode(0o755));
        Ok(())
    }

    /// Waits up to 10 s for the demo's Prometheus to answer, if it runs;
    /// says in the log where its log is when it does not.
    async fn wait_for_prometheus(&self) {
        if let Some(port) = self.prometheus_port {
            let end = Instant::now() + Duration::from_secs(10);
            if !wait_for_port(self, port, end).await {
                tracing::warn!(
                    "the demo's Prometheus does not answer on :{port} yet; see {}",
                    self.dir.join("prometheus/log").display()
                );
            }
        }
    }
}

/// How long the demo's own way out has after a signal before the signal
/// watch stops the fleet itself and exits.
const SIGNAL_GRACE: Duration = Duration::from_secs(10);

/// Ctrl-C, SIGTERM and SIGHUP end the demo the way its end does, so
/// [`Teardown`] runs. The console ends on SIGTERM and SIGHUP by itself
/// (and gives the terminal back) and `--headless` on Ctrl-C, each then
/// dropping the [`DemoFleet`]; SIGTERM and SIGHUP are handed on as
/// SIGINT, so `--headless` ends on them too, with its summary. Should
/// nothing have ended the demo [`SIGNAL_GRACE`] after the signal (it came
/// before the way out listened, or the console does not listen for that
/// one), this watch stops the fleet and exits with the signal's status.
fn watch_signals(teardown: Arc<Teardown>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("the demo cannot watch for signals; it stops its fleet only when it ends");
        return;
    };
    tokio::spawn(async move {
        let sig = tokio::select! {
            _ = term.recv() => libc::SIGTERM,
            _ = int.recv() => libc::SIGINT,
            _ = hup.recv() => libc::SIGHUP,
        };
        teardown.interrupted.store(true, Ordering::Relaxed);
        if sig != libc::SIGINT {
            // To this very process, which handles it.
            crate::host::signal_self(libc::SIGINT);
        }
        tokio::time::sleep(SIGNAL_GRACE).await;
        let t = teardown.clone();
        let _ = tokio::task::spawn_blocking(move || t.run()).await;
        std::process::exit(128 + sig);
    });
}

/// The demo's flaky instance, so that failures show in the sparklines.
///
/// It belongs to `search`, the one app the guided flow (the banner, the
/// README) does not deploy: `checkout`'s and `payments`' rollbacks are then
/// v3's doing alone. And only the process the demo itself starts for it
/// flaps (it finds the mark `install_v1` leaves in `FLAP_MARKS` and
/// takes it away); whatever process a rollout starts there, of any release,
/// is sound. A newcomer expects a good release to deploy, and the gate
/// watches every instance it replaced until the end of `monitor`, however
/// long an operator holds the rollout: a flap that went on in the new
/// process would fail `v2` (and a rollback to `v1`) for nothing the release
/// did. The flaky instance is "fixed" by its first deploy, as a restart
/// would fix a real one.
pub const FLAPPER: &str = "search-2";

/// The folder (in the demo's) of the marks that make an instance flap.
const FLAP_MARKS: &str = "flap";

/// `releases/VERSION/run` scripts that run the demo application. An
/// instance whose mark is in [`FLAP_MARKS`] takes it and flaps (see
/// [`FLAPPER`]); an instance of [`bad::BAD`] fails while its app's mark is
/// in [`bad::MARKS`].
fn write_releases(dir: &Path, exe: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join(bad::MARKS))?;
    for (v, extra) in [
        ("v1", ""),
        ("v2", ""),
        (bad::BAD, ""),
        // Passes every health check; a quarter of its requests fail.
        ("v4", " --error-ratio 0.25"),
    ] {
        let d = dir.join("releases").join(v);
        std::fs::create_dir_all(&d)?;
        // The app is the instance's name without its `-N`.
        let bad = if v == bad::BAD {
            format!(
                "# It fails while its app's mark is in {marks}.\n\
                 if [ -n \"$app\" ]; then set -- \"$@\" --fail-if-exists {marks}/\"$app\"; fi\n",
                marks = shell::quote(&dir.join(bad::MARKS).to_string_lossy()),
            )
        } else {
            String::new()
        };
        let script = format!(
            "#!/bin/sh\n# Release {v} of the demo application.\n\
             # The instance whose mark is in {marks} takes it, and flaps.\n\
             flap= prev= app=\n\
             for a in \"$@\"; do\n\
             \x20 if [ \"$prev\" = --instance ]; then\n\
             \x20   app=${{a%-*}}\n\
             \x20   if rm {marks}/\"$a\" 2>/dev/null; then flap=--flap; fi\n\
             \x20 fi\n\
             \x20 prev=$a\n\
             done\n\
             {bad}\
             exec {exe} demo-app --version {v} --parent {parent} \
             --heartbeat-dir {beats}{extra} $flap \"$@\"\n",
            exe = shell::quote(&exe.to_string_lossy()),
            parent = std::process::id(),
            beats = shell::quote(&dir.join("run").to_string_lossy()),
            marks = shell::quote(&dir.join(FLAP_MARKS).to_string_lossy()),
        );
        let run = d.join("run");
        std::fs::write(&run, script)?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Makes `cmd` (a server the demo keeps: nginx, Prometheus) lead a process
/// group of its own, so a terminal's Ctrl-C reaches the demo, which stops
/// it in its order, and get SIGTERM should the demo die without its
/// teardown. That signal is sent when the spawning thread ends: the demo
/// spawns them on the thread that drives it (the main thread under
/// `block_on`), which lasts as long as the demo.
fn own_group_ended_with_demo(cmd: &mut Command) {
    cmd.process_group(0);
    crate::host::signalled_when_parent_ends(cmd, libc::SIGTERM);
}

/// Waits until 127.0.0.1:`port` accepts, `end` passes or the demo is
/// interrupted; whether it accepts.
async fn wait_for_port(demo: &DemoFleet, port: u16, end: Instant) -> bool {
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if Instant::now() >= end || demo.interrupted() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts v1 on every instance through the process driver (an install).
async fn install_v1(demo: &DemoFleet) -> Result<(), UserError> {
    let fleet = config::load(&demo.config)
        .map_err(|e| UserError::new(Code::Demo, format!("the demo config is invalid: {e}")))?;
    let fleet = Arc::new(fleet);
    let execs = Executors::new(&fleet.hosts);
    let v1 = Version::parse("v1").map_err(|e| UserError::new(Code::Demo, e.to_string()))?;
    // The mark that makes the flaky instance's first process flap.
    let marks = demo.dir.join(FLAP_MARKS);
    std::fs::create_dir_all(&marks)
        .and_then(|()| std::fs::write(marks.join(FLAPPER), b""))
        .map_err(|e| {
            UserError::new(
                Code::Demo,
                format!("cannot write the demo's flap mark: {e}"),
            )
        })?;
    let drivers = (fleet.apps.iter())
        .map(|app| Driver::for_app(app).map(|d| (app, d)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UserError::new(Code::Demo, e.to_string()))?;
    // Every instance starts at once (one after another, the nine starts
    // took about three seconds: each waits a moment to see that its process
    // still runs).
    let starts = drivers.iter().flat_map(|(app, driver)| {
        let (fleet, execs, v1) = (&fleet, &execs, &v1);
        app.instances.iter().map(move |inst| async move {
            let host = fleet.host_of(inst);
            let slot = Slot {
                app,
                instance: inst,
                host,
                side: Side::Main,
            };
            let Some(exec) = execs.get(&inst.host) else {
                let e = format!("cannot start {}: no executor for its host", inst.name);
                return Err(UserError::new(Code::Demo, e));
            };
            driver
                .start(exec, slot, v1)
                .await
                .map_err(|e| UserError::new(Code::Demo, format!("cannot start {}: {e}", inst.name)))
        })
    });
    futures_util::future::try_join_all(starts).await?;
    // Record v1 as what runs, so status and rollback know it.
    if let Ok(store) = crate::store::Store::open(&demo.db) {
        for app in &fleet.apps {
            let _ = store.touch_release(&app.name, "v1");
            for inst in &app.instances {
                let _ = store.set_instance_state(&app.name, &inst.name, Some("v1"), Some("main"));
            }
        }
    }
    // Wait until every instance answers, so the console opens on a live
    // fleet: 10 s for all of them.
    let end = Instant::now() + Duration::from_secs(10);
    for app in &fleet.apps {
        for inst in &app.instances {
            wait_for_port(demo, inst.port, end).await;
        }
    }
    // Taken by now (an instance answers after its script ran); a mark
    // still there must not make a rollout's process flap.
    let _ = std::fs::remove_file(marks.join(FLAPPER));
    Ok(())
}
