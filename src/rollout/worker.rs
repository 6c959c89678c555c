//! The rollout worker: the detached process (`rollguard worker`) that runs
//! one deployment's engine to the end, so a rollout survives the console or
//! SSH session that started it. It takes over the app's lock, heartbeats
//! it, and polls the store for operator commands (`approve`, `hold`,
//! `fire`, `abort`), which it picks up within a second. It also runs a
//! notifier (`notify::sender`) while it runs and, once its rollout ended
//! and the lock is free, for up to [`NOTIFY_FINISH`] until nothing is left
//! to send, so its rollout's notifications go out with no console open.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::engine::{Engine, Finished, Signal};
use super::lock::{self, store_error};
use super::plan::Plan;
use crate::config::{self, Fleet};
use crate::driver::{Driver, Side};
use crate::error::{Code, UserError};
use crate::model::DeploymentKind;
use crate::notify::Notifier;
use crate::probe::Prober;
use crate::store::Store;

/// What a deployment row's `plan` column holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredPlan {
    /// A deploy, or a manual rollback (`rollguard rollback`).
    #[serde(default = "deploy_kind")]
    pub kind: DeploymentKind,
    /// The plan.
    pub plan: Plan,
    /// Each instance's live side when the rollout was planned.
    pub live: Vec<Side>,
    /// The config file the deploy used (absolute).
    pub config: PathBuf,
}

fn deploy_kind() -> DeploymentKind {
    DeploymentKind::Deploy
}

/// How long a finished worker goes on sending its rollout's last
/// notifications; what is left is sent by the next notifier.
pub const NOTIFY_FINISH: Duration = Duration::from_secs(15);

/// How often the worker looks for commands.
pub const COMMAND_POLL: Duration = Duration::from_millis(250);

/// What a worker does with its deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run it from the start.
    Run,
    /// Its previous worker died: go on from the first open stage.
    Resume,
    /// Its previous worker died: roll back what it did.
    Rollback,
}

impl Mode {
    fn arg(self) -> Option<&'static str> {
        match self {
            Mode::Run => None,
            Mode::Resume => Some("resume"),
            Mode::Rollback => Some("rollback"),
        }
    }

    /// Parses `resume` or `rollback`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "resume" => Some(Mode::Resume),
            "rollback" => Some(Mode::Rollback),
            _ => None,
        }
    }
}

/// Starts the worker for `deployment` as a detached process in its own
/// session; returns its pid. Its output goes to `log`.
pub fn spawn(
    exe: &Path,
    db: &Path,
    deployment: i64,
    mode: Mode,
    log: &Path,
) -> Result<u32, UserError> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| UserError::new(Code::Store, format!("cannot open {}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| UserError::new(Code::Store, e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--db")
        .arg(db)
        .args(["worker", "--deployment", &deployment.to_string()])
        .args(mode.arg().map(|m| ["--recover", m]).into_iter().flatten())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; it detaches the worker from the
    // terminal's session so a hang-up does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| UserError::new(Code::Exec, format!("cannot start the rollout worker: {e}")))?;
    Ok(child.id())
}

/// Runs deployment `deployment` (the body of `rollguard worker`).
pub async fn run(db: &Path, deployment: i64, mode: Mode) -> Result<Finished, UserError> {
    let store = Store::open(db).map_err(store_error)?;
    let row = store
        .deployment(deployment)
        .map_err(store_error)?
        .ok_or_else(|| UserError::new(Code::Usage, format!("no deployment {deployment}")))?;
    let stored: StoredPlan = serde_json::from_value(row.plan.clone()).map_err(|e| {
        UserError::new(
            Code::Store,
            format!("deployment {deployment} has an unreadable plan: {e}"),
        )
    })?;
    let fleet: Arc<Fleet> = Arc::new(
        config::load(&stored.config).map_err(|e| UserError::new(Code::Config, e.to_string()))?,
    );
    let app_idx = fleet
        .apps
        .iter()
        .position(|a| a.name == row.app)
        .ok_or_else(|| {
            UserError::new(
                Code::Config,
                format!("app {} is no longer in the config", row.app),
            )
        })?;
    let app_name = row.app.clone();
    // The plan names instances by position: refuse a config that changed
    // under it rather than act on the wrong instance.
    let instances = fleet.apps[app_idx].instances.len();
    let fits = stored.live.len() == instances
        && stored
            .plan
            .stages
            .iter()
            .all(|s| s.instances(instances).iter().all(|i| *i < instances));
    if !fits {
        return Err(UserError::new(
            Code::Config,
            format!(
                "the instances of {app_name} in {} changed since deployment {deployment} was planned",
                stored.config.display()
            ),
        )
        .hint("put the config back as it was to recover this rollout"));
    }
    let pid = std::process::id();
    store
        .set_lock_owner_pid(&app_name, pid)
        .map_err(store_error)?;
    let driver = Driver::for_app(&fleet.apps[app_idx]).map_err(super::preflight::driver_error)?;
    let prober = Arc::new(Prober::new(&fleet).map_err(|e| UserError::new(Code::Exec, e))?);
    // This rollout's notifications go out even when no console or agent
    // runs; several notifiers on one history send each once.
    let notifier = Notifier::start(fleet.clone(), db);
    let (tx, rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll(
        db.to_path_buf(),
        app_name.clone(),
        deployment,
        pid,
        tx,
    ));
    let engine = Engine::new(
        fleet,
        app_idx,
        store,
        driver,
        prober.clone(),
        deployment,
        stored.plan,
        stored.live,
        rx,
    );
    let finished = match mode {
        Mode::Run => Ok(engine.run().await),
        Mode::Resume => engine.recover(true).await,
        Mode::Rollback => engine.recover(false).await,
    };
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            poller.abort();
            prober.executors().close().await;
            if let Err(u) = store_unlock(db, &app_name, pid) {
                tracing::error!("{u}");
            }
            if let Some(n) = notifier {
                n.finish(NOTIFY_FINISH).await;
            }
            return Err(e);
        }
    };
    poller.abort();
    prober.executors().close().await;
    // The engine released the lock when it finished; this only matters if
    // it could not (a store error), and is a no-op otherwise.
    if let Err(e) = store_unlock(db, &app_name, pid) {
        tracing::error!("{e}");
    }
    // The lock is free: the app's next rollout does not wait for this.
    if let Some(n) = notifier {
        n.finish(NOTIFY_FINISH).await;
    }
    Ok(finished)
}

/// Releases the lock of `app` if process `pid` still holds it.
fn store_unlock(db: &Path, app: &str, pid: u32) -> Result<(), String> {
    Store::open(db)
        .and_then(|s| s.unlock(app, pid))
        .map(|_| ())
        .map_err(|e| format!("could not release the lock of {app}: {e}"))
}

async fn poll(
    db: PathBuf,
    app: String,
    deployment: i64,
    pid: u32,
    tx: mpsc::UnboundedSender<Signal>,
) {
    let store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("the command poller cannot open the store: {e}");
            return;
        }
    };
    let mut beat = tokio::time::Instant::now();
    let mut lost = false;
    loop {
        match store.take_commands(&app, deployment) {
            Ok(cmds) => {
                for c in cmds {
                    if tx.send(Signal::Command(c)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!("reading commands: {e}"),
        }
        if beat.elapsed() >= lock::HEARTBEAT {
            beat = tokio::time::Instant::now();
            match lock::heartbeat(&store, &app, pid) {
                Ok(true) => {}
                Ok(false) if !lost => {
                    lost = true;
                    let _ = tx.send(Signal::LockLost);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("heartbeat: {e}"),
            }
        }
        tokio::time::sleep(COMMAND_POLL).await;
    }
}
