//! The rollout worker: the detached process (`rollguard worker`) that runs
//! one deployment's engine to the end, so a rollout survives the console or
//! SSH session that started it. It takes over the app's lock, heartbeats
//! it, and polls the store for operator commands (`approve`, `hold`,
//! `fire`, `abort`), which it picks up within a second. It also runs a
//! notifier (`notify::sender`) while it runs and, once its rollout ended
//! and the lock is free, for up to [`NOTIFY_FINISH`] until nothing is left
//! to send, so its rollout's notifications go out with no console open.
//!
//! Two things stop a worker before it acts, or at once while it acts:
//!
//! - It cannot write its log (a full disk): nothing moves, since what it
//!   did could not be read afterwards. A new rollout is then ended as
//!   failed with `E_STORE` and the lock released, when the history can
//!   still be written.
//! - It is fenced: its lock was taken by another process, or it could not
//!   refresh the lock for [`lock::FENCE_AFTER`] (a full disk, a history
//!   locked by another program). The engine is dropped where it stands
//!   and the worker exits with `E_LOCKED` or `E_STORE`, before anyone may
//!   break the lock ([`lock::STALE_AFTER`]); what it did is in its records
//!   (write before act), for `recover`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::engine::{Engine, Finished, Signal};
use super::lock;
use super::plan::Plan;
use crate::config::{self, Fleet};
use crate::driver::{Driver, Side};
use crate::error::{Code, UserError};
use crate::model::event::EventKind;
use crate::model::{DeploymentKind, DeploymentState, Outcome, Trigger};
use crate::notify::Notifier;
use crate::probe::Prober;
use crate::store::Location;
use crate::store::location::postgres::{CaSource, PgHost};
use crate::store::{Deployment, LockOwner, PgSettings, Store};

/// What a deployment row's `plan` column holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredPlan {
    /// A deploy, or a manual rollback (`rollguard rollback`). Read alone,
    /// by its name and with the same default, by
    /// [`Deployment::kind`](crate::store::Deployment::kind).
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

/// How long a fenced worker's engine has to stop at its next wait before
/// the worker's process ends at once (see [`lock::FENCE_AFTER`]).
pub const FENCE_GRACE: Duration = Duration::from_secs(3);

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
/// session; returns its pid. Its output goes to `log`. The history is on
/// its command line (`--db PATH`) when it is a file; a PostgreSQL
/// history's whole text, which may hold a password, is in its
/// environment (`$ROLLGUARD_DB`), never on its command line, where every
/// user of the machine can read it.
pub fn spawn(
    exe: &Path,
    db: &Location,
    deployment: i64,
    mode: Mode,
    log: &Path,
) -> Result<u32, UserError> {
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::ENOSPC) {
                crate::host::full_disk_words(log)
            } else {
                e.to_string()
            };
            UserError::new(
                Code::Store,
                format!("cannot open the rollout's log {}: {why}", log.display()),
            )
            .hint("free space there, or fix the folder's permissions")
        })?;
    let err = out
        .try_clone()
        .map_err(|e| UserError::new(Code::Store, e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    match db {
        Location::File(path) => {
            cmd.arg("--db").arg(path);
        }
        Location::Postgres(pg) => {
            cmd.env("ROLLGUARD_DB", postgres_text(pg));
        }
    }
    cmd.args(["worker", "--deployment", &deployment.to_string()])
        .args(mode.arg().map(|m| ["--recover", m]).into_iter().flatten())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // Detached from the terminal's session, so a hang-up does not reach
    // it.
    crate::host::in_own_session(&mut cmd);
    let child = cmd
        .spawn()
        .map_err(|e| UserError::new(Code::Exec, format!("cannot start the rollout worker: {e}")))?;
    Ok(child.id())
}

/// The whole text of a PostgreSQL location, its password included, for
/// the worker's `$ROLLGUARD_DB`: every setting as it was read here, as
/// the URL's parameters, so the worker reads the same settings back.
fn postgres_text(pg: &PgSettings) -> String {
    let host = match &pg.host {
        PgHost::Tcp(h) => h.clone(),
        PgHost::Socket(dir) => dir.to_string_lossy().into_owned(),
    };
    let mut params = vec![
        ("host", host),
        ("port", pg.port.to_string()),
        ("dbname", pg.dbname.clone()),
        ("user", pg.user.clone()),
        ("sslmode", pg.sslmode.as_str().to_string()),
        ("application_name", pg.application_name.clone()),
        ("connect_timeout", pg.connect_timeout.as_secs().to_string()),
    ];
    match &pg.ca {
        Some(CaSource::File(file)) => {
            params.push(("sslrootcert", file.to_string_lossy().into_owned()));
        }
        Some(CaSource::System) => params.push(("sslrootcert", "system".into())),
        None => {}
    }
    if let Some(password) = &pg.password {
        params.push(("password", password.clone()));
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encoded(v)))
        .collect();
    format!("postgres://?{}", query.join("&"))
}

/// `s` with every byte but letters, digits and `-._~` written `%XX`.
fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs deployment `deployment` (the body of `rollguard worker`).
pub async fn run(db: &Location, deployment: i64, mode: Mode) -> Result<Finished, UserError> {
    // Nothing moves unless what this worker does can be read afterwards.
    if let Err(e) = announce(deployment, mode) {
        return Err(cannot_log(db, deployment, mode, &e));
    }
    let store = Store::open_at(db).map_err(UserError::from)?;
    let (row, stored, fleet, app_idx) = read_deployment(&store, deployment)?;
    let app_name = row.app.clone();
    let me = lock::me();
    store
        .set_lock_owner(&app_name, &me)
        .map_err(UserError::from)?;
    let driver = Driver::for_app(&fleet.apps[app_idx]).map_err(super::preflight::driver_error)?;
    let prober = Arc::new(Prober::new(&fleet).map_err(|e| UserError::new(Code::Exec, e))?);
    // This rollout's notifications go out even when no console or agent
    // runs; several notifiers on one history send each once.
    let notifier = Notifier::start(fleet.clone(), db);
    let (tx, rx) = mpsc::unbounded_channel();
    let (fence_tx, fence_rx) = oneshot::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let keeper = LockKeeper {
        db: db.clone(),
        app: app_name.clone(),
        deployment,
        me: me.clone(),
        commands: tx,
        stop: stop.clone(),
    };
    std::thread::Builder::new()
        .name("lock".into())
        .spawn(move || keeper.run(fence_tx))
        .map_err(|e| {
            UserError::new(
                Code::Exec,
                format!("cannot start the thread that keeps the lock: {e}"),
            )
        })?;
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
    let work = async move {
        match mode {
            Mode::Run => Ok(engine.run().await),
            Mode::Resume => engine.recover(true).await,
            Mode::Rollback => engine.recover(false).await,
        }
    };
    let fenced = async {
        match fence_rx.await {
            Ok(e) => e,
            // The keeper ended without a word: only when asked to stop.
            Err(_) => std::future::pending().await,
        }
    };
    let finished = tokio::select! {
        // The fence first: an engine that never waits long must not hide it.
        biased;
        // The engine is dropped where it stands (an action under way on a
        // local host is killed with it): not one more action.
        e = fenced => {
            stop.store(true, Ordering::Relaxed);
            prober.executors().close().await;
            if let Some(n) = notifier {
                n.stop().await;
            }
            return Err(e);
        }
        f = work => f,
    };
    stop.store(true, Ordering::Relaxed);
    prober.executors().close().await;
    // The engine released the lock when it finished; this only matters if
    // it could not (a store error) or it failed, and is a no-op otherwise.
    if let Err(e) = store_unlock(db, &app_name, &me) {
        tracing::error!("{e}");
    }
    // The lock is free: the app's next rollout does not wait for this.
    if let Some(n) = notifier {
        n.finish(NOTIFY_FINISH).await;
    }
    finished
}

/// Deployment `deployment` as its worker needs it: its row, its stored
/// plan, the fleet of the config it was planned with, and its app's
/// index there. A config whose instances changed under the plan is
/// refused rather than act on the wrong instance.
fn read_deployment(
    store: &Store,
    deployment: i64,
) -> Result<(Deployment, StoredPlan, Arc<Fleet>, usize), UserError> {
    let row = store
        .deployment(deployment)
        .map_err(UserError::from)?
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
    // The plan names instances by position.
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
                "the instances of {} in {} changed since deployment {deployment} was planned",
                row.app,
                stored.config.display()
            ),
        )
        .hint("put the config back as it was to recover this rollout"));
    }
    Ok((row, stored, fleet, app_idx))
}

/// Writes the worker's first line to its log (its standard error).
fn announce(deployment: i64, mode: Mode) -> std::io::Result<()> {
    use std::io::Write as _;
    let how = mode
        .arg()
        .map(|m| format!(" (recover --{m})"))
        .unwrap_or_default();
    let mut log = std::io::stderr().lock();
    writeln!(
        log,
        "{} rollguard worker {}: deployment {deployment}{how}",
        chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%z"),
        std::process::id()
    )?;
    log.flush()
}

/// The error of a worker that cannot write its log (`E_STORE`, in words
/// when its disk is full). A new rollout is ended as failed, with that
/// error as its event and its lock released, when the history can still
/// be written: nothing was changed. A recovery's rollout stays as it was.
fn cannot_log(db: &Location, deployment: i64, mode: Mode, e: &std::io::Error) -> UserError {
    let log = worker_log(db, deployment);
    let why = if e.raw_os_error() == Some(libc::ENOSPC) || crate::host::disk_full(&log) {
        crate::host::full_disk_words(&log)
    } else {
        format!("{}: {e}", log.display())
    };
    let message = format!(
        "the rollout worker of deployment {deployment} cannot write its log: {why}; \
         it changed nothing"
    );
    if mode != Mode::Run {
        return UserError::new(Code::Store, message)
            .hint("free space there, then run `rollguard recover` again");
    }
    let then = "free space there, then deploy again";
    match Store::open_at(db)
        .and_then(|s| end_unstarted(&s, deployment, &format!("{message}; {then}")))
    {
        Ok(()) => UserError::new(Code::Store, message).hint(then),
        Err(se) => UserError::new(Code::Store, message).hint(format!(
            "free space there, then run `rollguard recover` on the app (the deployment could \
             not be ended: {})",
            se.message()
        )),
    }
}

/// Ends deployment `id`, which has not started, as failed with `why`, and
/// releases its lock (taken over first, when it is still the
/// deployment's).
fn end_unstarted(store: &Store, id: i64, why: &str) -> Result<(), crate::store::StoreError> {
    let Some(row) = store.deployment(id)? else {
        return Ok(());
    };
    let app = row.app;
    store.record(
        &app,
        Some(id),
        "rollguard",
        Some(why),
        &EventKind::RolloutFailed {
            trigger: Trigger::Store,
            code: Code::Store.as_str().into(),
            evidence: json!({"changed": []}),
        },
    )?;
    let me = lock::me();
    if store
        .lock(&app)?
        .is_some_and(|l| l.deployment_id == Some(id))
    {
        store.set_lock_owner(&app, &me)?;
        if store.unlock(&app, &me)? {
            store.record(&app, Some(id), "rollguard", None, &EventKind::LockReleased)?;
        }
    }
    store.finish_deployment(id, DeploymentState::Failed, Outcome::Failed)
}

/// Releases the lock of `app` if `owner` still holds it.
fn store_unlock(db: &Location, app: &str, owner: &LockOwner) -> Result<(), String> {
    Store::open_at(db)
        .and_then(|s| s.unlock(app, owner))
        .map(|_| ())
        .map_err(|e| format!("could not release the lock of {app}: {e}"))
}

/// What keeps a worker's lock, on its own thread (a runtime busy with the
/// engine's blocking work does not delay it): refreshes the lock every
/// [`lock::HEARTBEAT`], hands operators' commands to the engine every
/// [`COMMAND_POLL`], and fences the worker when the lock is no longer its
/// own or could not be refreshed for [`lock::FENCE_AFTER`].
struct LockKeeper {
    db: Location,
    app: String,
    deployment: i64,
    me: LockOwner,
    commands: mpsc::UnboundedSender<Signal>,
    /// Set when the worker ends: the keeper stops.
    stop: Arc<AtomicBool>,
}

impl LockKeeper {
    fn run(self, fence: oneshot::Sender<UserError>) {
        // The takeover was a heartbeat.
        let mut refreshed = Instant::now();
        let mut beat = Instant::now();
        let mut store: Option<Store> = None;
        let mut trouble = String::from("the history could not be opened");
        // Each store call may wait for the history up to its busy timeout:
        // the fence is looked at after every one.
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if refreshed.elapsed() >= lock::FENCE_AFTER {
                return self.fence(fence, self.unrefreshed(&trouble));
            }
            if store.is_none() {
                match Store::open_at(&self.db) {
                    Ok(s) => store = Some(s),
                    Err(e) => {
                        tracing::warn!("the lock keeper cannot open the history: {e}");
                        trouble = e.message();
                    }
                }
            } else if let Some(s) = &store {
                if beat.elapsed() >= lock::HEARTBEAT {
                    beat = Instant::now();
                    match lock::heartbeat(s, &self.app, &self.me) {
                        Ok(true) => refreshed = Instant::now(),
                        Ok(false) if self.stop.load(Ordering::Relaxed) => return,
                        Ok(false) => return self.fence(fence, self.lost(s)),
                        Err(e) => {
                            tracing::warn!("heartbeat: {e}");
                            trouble = e.message();
                        }
                    }
                    if refreshed.elapsed() >= lock::FENCE_AFTER {
                        continue;
                    }
                }
                match s.take_commands(&self.app, self.deployment) {
                    Ok(cmds) => {
                        for c in cmds {
                            if self.commands.send(Signal::Command(c)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => tracing::warn!("reading commands: {e}"),
                }
            }
            std::thread::sleep(COMMAND_POLL);
        }
    }

    /// Stops the worker with `e`, said in its log at once: the engine is
    /// dropped at its next wait, and should it not wait within
    /// [`FENCE_GRACE`], the process ends here.
    fn fence(&self, fence: oneshot::Sender<UserError>, e: UserError) {
        tracing::error!("{}: {}", e.code, e.message);
        let _ = fence.send(e);
        std::thread::sleep(FENCE_GRACE);
        if !self.stop.load(Ordering::Relaxed) {
            tracing::error!("the engine did not stop within {FENCE_GRACE:?}: the worker exits");
            std::process::exit(1);
        }
    }

    /// The lock is no longer this worker's: recorded (`lock_lost`) when
    /// the history takes it, and the worker's error.
    fn lost(&self, store: &Store) -> UserError {
        let holder = match store.lock(&self.app) {
            Ok(Some(l)) => format!(
                "it is now held by {}@{} (pid {})",
                l.owner_user, l.owner_host, l.owner_pid
            ),
            Ok(None) => "it was broken".into(),
            Err(e) => format!("the history cannot say who holds it: {}", e.message()),
        };
        let why = format!(
            "the rollout worker of deployment {} lost the lock of {}: {holder}; it stops here",
            self.deployment, self.app
        );
        let _ = store.record(
            &self.app,
            Some(self.deployment),
            "rollguard",
            Some(&why),
            &EventKind::LockLost,
        );
        UserError::new(Code::Locked, why).hint(format!(
            "what it did is in its records: see `rollguard status {}` and the lock's holder",
            self.app
        ))
    }

    /// The worker's error when it could not refresh its lock for
    /// [`lock::FENCE_AFTER`].
    fn unrefreshed(&self, trouble: &str) -> UserError {
        UserError::new(
            Code::Store,
            format!(
                "the rollout worker of deployment {} could not refresh the lock of {} for {}s \
                 ({trouble}); it stops here, before the lock may be broken",
                self.deployment,
                self.app,
                lock::FENCE_AFTER.as_secs()
            ),
        )
        .hint(format!(
            "fix the history (free its disk), then run `rollguard recover {} --rollback` \
             or `--resume`: what it did is in its records",
            self.app
        ))
    }
}
/// Where the worker of deployment `id` writes its log: `rollouts/ID.log`
/// beside the history file at `db`, or for PostgreSQL in the default
/// history's folder (`$XDG_DATA_HOME/rollguard/rollouts/`).
pub fn worker_log(db: &Location, id: i64) -> PathBuf {
    let default = config::default_db_path();
    db.local_dir(default.parent().unwrap_or(Path::new(".")))
        .join("rollouts")
        .join(format!("{id}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocationSource;

    fn parse(text: &str, source: LocationSource, vars: &[(&str, &str)]) -> PgSettings {
        let env = |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        };
        match Location::parse(text, source, &env).unwrap() {
            Location::Postgres(pg) => *pg,
            other => panic!("not postgres: {other}"),
        }
    }

    #[test]
    fn the_worker_reads_back_the_settings_it_was_given() {
        for (text, vars) in [
            (
                "postgres://rg:s%3Ac%26ret@db.example.com:6543/roll%20guard?sslmode=require&application_name=bastion-a&connect_timeout=4",
                vec![],
            ),
            (
                "postgresql:///rollguard?host=/run/postgresql&sslrootcert=system&sslmode=verify-full",
                vec![("PGUSER", "ops"), ("PGPASSWORD", "p@ss word")],
            ),
            (
                "postgres://rg@[::1]/rg",
                vec![("PGSSLROOTCERT", "/etc/ca.pem")],
            ),
        ] {
            let given = parse(text, LocationSource::Environment, &vars);
            let passed = postgres_text(&given);
            // The worker's environment may lack what filled the settings in.
            let read = parse(&passed, LocationSource::Environment, &[]);
            assert_eq!(read, given, "{text}");
            assert_eq!(read.password, given.password);
        }
    }

    #[test]
    fn a_postgres_workers_log_is_kept_in_the_default_folder() {
        let pg = Location::parse("postgres://rg@db/rg", LocationSource::CommandLine, &|_| {
            None
        })
        .unwrap();
        let default = config::default_db_path();
        assert_eq!(
            worker_log(&pg, 7),
            default.parent().unwrap().join("rollouts/7.log")
        );
        let file = Location::File(PathBuf::from("/var/lib/rg/history.db"));
        assert_eq!(
            worker_log(&file, 7),
            Path::new("/var/lib/rg/rollouts/7.log")
        );
    }
}
