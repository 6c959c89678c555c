//! The rollout service: the one way in for starting, rolling back,
//! recovering and steering rollouts. The command line, the console and the
//! tests call it alike; it neither prints nor reads standard input (asking
//! a person is the caller's part, between [`preflight`](fn@preflight) and [`start`]).
//!
//! - [`preflight`](mod@preflight): the plan and its checks, before anything moves.
//! - [`start`]: records the start in one transaction
//!   ([`Store::start_deployment`]: lock, deployment, batches, first
//!   events), and only then spawns the detached worker. When a write
//!   fails, nothing moves.
//! - [`check_rollback`]: a manual rollback's target and safety checks; the
//!   rollback itself is a [`start`] of that target.
//! - [`recover`]: a new worker for a rollout whose worker died.
//! - [`send`]: an operator's command to a running rollout.

use std::path::PathBuf;

use serde::Serialize;

use super::decide::{self, Recovery};
use super::lock;
use super::plan::Stage;
use super::preflight::{self, Preflight};
use super::worker::{self, StoredPlan};
use crate::config::{Fleet, Strategy};
use crate::driver::{Driver, Slot};
use crate::error::{Code, UserError};
use crate::exec::Executors;
use crate::model::event::EventKind;
use crate::model::{DeploymentKind, DeploymentState, Verb, Version};
use crate::store::Location;
use crate::store::{LockOwner, NewBatch, NewDeployment, StartEvent, Store};

/// What to deploy, and who asks.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    /// The app.
    pub app: String,
    /// The release to deploy.
    pub version: Version,
    /// A strategy other than the app's.
    pub strategy: Option<Strategy>,
    /// Why, as the actor gave it (stored).
    pub reason: Option<String>,
    /// Break the app's lock first when it is abandoned.
    pub break_lock: bool,
    /// Who asks (the lock's owner until the worker takes it).
    pub owner: LockOwner,
}

/// A running rollout's worker, as [`start`] and [`recover`] leave it.
#[derive(Clone, Debug, Serialize)]
pub struct Started {
    /// The deployment.
    pub id: i64,
    /// The app.
    pub app: String,
    /// The worker's process id.
    pub worker_pid: u32,
    /// Where the worker writes its log.
    pub log: PathBuf,
    /// Earlier interrupted deployments of the app that this start settled.
    pub superseded: Vec<i64>,
}

/// Plans `req` and runs every check before anything moves. Fails fast on a
/// held lock (unless it is to be broken); `way_back = false` (a forced
/// manual rollback) skips the check that what runs now could be restored.
pub async fn preflight(
    fleet: &Fleet,
    store: &Store,
    req: &DeployRequest,
    way_back: bool,
) -> Result<Preflight, UserError> {
    fleet.app_index(&req.app)?;
    if let Some(held) = store.lock(&req.app).map_err(UserError::from)? {
        let abandoned = lock::breakable(&held);
        if !req.break_lock || abandoned.is_none() {
            let e = lock::locked_error(&req.app, &held);
            return Err(if req.break_lock {
                e.hint(format!(
                    "the lock is live ({}): wait for that rollout, or abort it with `rollguard abort`",
                    lock::live_because(&held)
                ))
            } else {
                e
            });
        }
    }
    let execs = Executors::new(&fleet.hosts);
    let pre = preflight::check(
        fleet,
        store,
        &execs,
        &req.app,
        &req.version,
        req.strategy,
        way_back,
    )
    .await;
    execs.close().await;
    pre
}

/// Records the start of `pre` and spawns its worker. `rollback` carries a
/// manual rollback's checks (recorded as `rollback_requested`). Nothing is
/// spawned unless every record of the start is written.
pub fn start(
    fleet: &Fleet,
    db: &Location,
    store: &Store,
    pre: &Preflight,
    req: &DeployRequest,
    rollback: Option<&RollbackCheck>,
) -> Result<Started, UserError> {
    let app = &fleet.apps[pre.app];
    let reason = req
        .reason
        .clone()
        .unwrap_or_else(|| format!("deploy {}", req.version));
    // The lock to break, as judged now; the start's transaction breaks it
    // only if it is still that lock, and refuses any lock held otherwise.
    let held = if req.break_lock {
        store.lock(&app.name).map_err(UserError::from)?
    } else {
        None
    };
    let break_lock = match held {
        Some(held) => match lock::breakable(&held) {
            Some(why) => Some((held, format!("--break-lock: {why}"))),
            None => return Err(lock::locked_error(&app.name, &held)),
        },
        None => None,
    };
    let kind = if rollback.is_some() {
        DeploymentKind::Rollback
    } else {
        DeploymentKind::Deploy
    };
    let stored = StoredPlan {
        kind,
        plan: pre.plan.clone(),
        live: pre.live.clone(),
        config: std::fs::canonicalize(&fleet.source).unwrap_or_else(|_| fleet.source.clone()),
    };
    let plan = serde_json::to_value(&stored).map_err(|e| {
        UserError::new(
            Code::Store,
            format!("cannot encode the plan of {}: {e}", app.name),
        )
    })?;
    let from = pre.plan.from.as_ref().map(Version::to_string);
    let batches = pre
        .plan
        .stages
        .iter()
        .map(|s| NewBatch {
            kind: s.kind(),
            instances: s
                .instances(app.instances.len())
                .iter()
                .map(|i| app.instances[*i].name.clone())
                .collect(),
            traffic_percent: match s {
                Stage::Shift { percent } => Some(f64::from(*percent)),
                _ => None,
            },
        })
        .collect();
    let mut events = Vec::new();
    if let Some(r) = rollback {
        events.push(StartEvent {
            event: EventKind::RollbackRequested {
                checks: serde_json::to_value(r).unwrap_or_default(),
                forced: r.forced,
            },
            reason: Some(reason.clone()),
        });
    }
    events.push(StartEvent {
        event: EventKind::DeployRequested {
            from: from.clone(),
            to: req.version.to_string(),
            strategy: serde_json::to_value(pre.plan.strategy).unwrap_or_default(),
            kind,
        },
        reason: Some(reason.clone()),
    });
    let record = NewDeployment {
        app: app.name.clone(),
        owner: req.owner.clone(),
        reason,
        break_lock,
        from_version: from,
        to_version: req.version.to_string(),
        strategy: pre.plan.strategy,
        plan,
        warnings: pre.plan.warnings.clone(),
        batches,
        events,
    };
    let written = match store.start_deployment(&record).map_err(|e| {
        let then = if matches!(e, crate::store::StoreError::DiskFull { .. }) {
            "nothing was started; free space there, then deploy again"
        } else {
            "nothing was started; free the disk or fix the database, then deploy again"
        };
        UserError::from(e).hint(then)
    })? {
        Ok(w) => w,
        Err(held) => return Err(lock::locked_error(&app.name, &held)),
    };
    let id = written.deployment;
    let (worker_pid, log) = spawn_worker(db, store, &app.name, id, worker::Mode::Run, &req.owner)?;
    Ok(Started {
        id,
        app: app.name.clone(),
        worker_pid,
        log,
        superseded: written.superseded,
    })
}

/// Spawns the worker of deployment `id` and hands it the lock. When the
/// worker cannot start, the deployment is ended as failed and the lock
/// released (and an error in doing so is said as well).
fn spawn_worker(
    db: &Location,
    store: &Store,
    app: &str,
    id: i64,
    mode: worker::Mode,
    owner: &LockOwner,
) -> Result<(u32, PathBuf), UserError> {
    let exe = std::env::current_exe().map_err(|e| {
        UserError::new(
            Code::Exec,
            format!("cannot find the rollguard executable: {e}"),
        )
    })?;
    // A file's path made absolute: the worker does not run where this
    // command was started.
    let db_abs = match db {
        Location::File(path) => {
            Location::File(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
        }
        Location::Postgres(_) => db.clone(),
    };
    let log = worker_log(&db_abs, id);
    let pid = match worker::spawn(&exe, &db_abs, id, mode, &log) {
        Ok(pid) => pid,
        Err(e) => {
            let mut undo = Vec::new();
            if mode == worker::Mode::Run
                && let Err(se) = store.finish_deployment(
                    id,
                    DeploymentState::Failed,
                    crate::model::Outcome::Failed,
                )
            {
                undo.push(format!("deployment {id} could not be marked failed: {se}"));
            }
            if let Err(se) = store.unlock(app, owner) {
                undo.push(format!("the lock of {app} could not be released: {se}"));
            }
            return Err(if undo.is_empty() {
                e
            } else {
                let message = format!("{}; {}", e.message, undo.join("; "));
                UserError::new(e.code, message)
            });
        }
    };
    // The worker takes the lock over itself as its first write; this only
    // closes the window until it runs, so a failure here is logged.
    let worker = LockOwner {
        pid,
        start: crate::host::pid(i64::from(pid)).start(),
        ..owner.clone()
    };
    if let Err(e) = store.set_lock_owner(app, &worker) {
        tracing::warn!("could not hand the lock of {app} to worker {pid}: {e}");
    }
    Ok((pid, log))
}

pub use super::worker::worker_log;

/// What `--to` names: a deployment or a version, and how it was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum TargetSpec {
    /// No `--to`: the last good release other than what runs.
    LastGood,
    /// `--to deployment:ID`, or digits that name a deployment of the app.
    Deployment {
        /// The deployment id.
        id: i64,
    },
    /// `--to version:V`, or any other text.
    Version {
        /// The version.
        version: Version,
    },
}

impl TargetSpec {
    /// Reads `--to`. Digits alone are ambiguous (a deployment id, or a
    /// version named `7`): they name a deployment of the app when one has
    /// that id, else a version; [`RollbackCheck::took`] says which.
    pub fn parse(to: Option<&str>, app: &str, store: &Store) -> Result<TargetSpec, UserError> {
        let Some(to) = to else {
            return Ok(TargetSpec::LastGood);
        };
        let to = to.trim();
        let version = |v: &str| {
            Version::parse(v)
                .map(|version| TargetSpec::Version { version })
                .map_err(|e| {
                    UserError::new(Code::Usage, format!("--to {to:?}: {e}"))
                        .hint("name a release (--to v1.2, --to version:7) or a deployment (--to deployment:12)")
                })
        };
        if let Some(v) = to.strip_prefix("version:") {
            return version(v);
        }
        if let Some(id) = to.strip_prefix("deployment:") {
            let id: i64 = id.parse().map_err(|_| {
                UserError::new(
                    Code::Usage,
                    format!("--to {to:?}: a deployment id is a number"),
                )
                .hint("see the ID column of `rollguard history`")
            })?;
            return match store.deployment(id).map_err(UserError::from)? {
                Some(d) if d.app == app => Ok(TargetSpec::Deployment { id }),
                Some(d) => Err(UserError::new(
                    Code::Usage,
                    format!("deployment {id} is of app {}, not {app}", d.app),
                )),
                None => Err(UserError::new(Code::Usage, format!("no deployment {id}"))
                    .hint(format!("see `rollguard history {app}`"))),
            };
        }
        if !to.is_empty()
            && to.chars().all(|c| c.is_ascii_digit())
            && let Ok(id) = to.parse::<i64>()
            && store
                .deployment(id)
                .map_err(UserError::from)?
                .is_some_and(|d| d.app == app)
        {
            return Ok(TargetSpec::Deployment { id });
        }
        version(to)
    }
}

/// One safety check of a manual rollback.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// `known`, `was_healthy` or `artifact_present`.
    pub check: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// A manual rollback's target and checks, before anything moves.
#[derive(Clone, Debug, Serialize)]
pub struct RollbackCheck {
    /// The release to put back.
    pub target: Version,
    /// How `--to` was read, e.g. "deployment 7 (v1)" or "version 7".
    pub took: String,
    /// What runs now (distinct versions).
    pub current: Vec<Version>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Things to know that do not stop it.
    pub warnings: Vec<String>,
    /// Go on despite failed checks.
    pub forced: bool,
}

impl RollbackCheck {
    /// The names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.check)
            .collect()
    }

    /// The refusal when a check failed and it is not forced.
    pub fn refusal(&self) -> Option<UserError> {
        let failed = self.failed();
        if failed.is_empty() || self.forced {
            return None;
        }
        let code = if failed.contains(&"artifact_present") {
            Code::RollbackTargetMissing
        } else {
            Code::RollbackUnsafe
        };
        Some(
            UserError::new(
                code,
                format!("rollback checks failed: {}", failed.join(", ")),
            )
            .hint("fix what failed, pick another target with --to, or pass --force"),
        )
    }
}

/// What a manual rollback asks.
#[derive(Clone, Debug)]
pub struct RollbackRequest {
    /// The app.
    pub app: String,
    /// `--to` as typed.
    pub to: Option<String>,
    /// Go on despite failed checks.
    pub force: bool,
}

/// Finds a manual rollback's target and runs its checks: the target is a
/// release rollguard knows, it was healthy when it last ran, and its
/// artifact is present for every instance.
pub async fn check_rollback(
    fleet: &Fleet,
    store: &Store,
    req: &RollbackRequest,
) -> Result<RollbackCheck, UserError> {
    let app_idx = fleet.app_index(&req.app)?;
    let app = &fleet.apps[app_idx];
    let driver = Driver::for_app(app).map_err(preflight::driver_error)?;
    let live = preflight::live_sides(fleet, app_idx, store)?;
    let spec = TargetSpec::parse(req.to.as_deref(), &app.name, store)?;
    let execs = Executors::new(&fleet.hosts);
    let result = rollback_checks(
        fleet, store, &execs, app_idx, &driver, &live, spec, req.force,
    )
    .await;
    execs.close().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn rollback_checks(
    fleet: &Fleet,
    store: &Store,
    execs: &Executors,
    app_idx: usize,
    driver: &Driver,
    live: &[crate::driver::Side],
    spec: TargetSpec,
    forced: bool,
) -> Result<RollbackCheck, UserError> {
    let app = &fleet.apps[app_idx];
    let slot = |i: usize| Slot {
        app,
        instance: &app.instances[i],
        host: fleet.host_of(&app.instances[i]),
        side: live[i],
    };
    let mut current = Vec::new();
    let recorded = preflight::recorded_versions(fleet, app_idx, store)?;
    for (i, inst) in app.instances.iter().enumerate() {
        let Some(exec) = execs.get(&inst.host) else {
            continue;
        };
        match driver.current(exec, slot(i)).await {
            Ok(Some(v)) => current.push(v),
            Ok(None) => current.extend(recorded[i].clone()),
            Err(e) => return Err(preflight::driver_error(e)),
        }
    }
    current.sort();
    current.dedup();
    let (target, took) = match spec {
        TargetSpec::Deployment { id } => {
            let d = store
                .deployment(id)
                .map_err(UserError::from)?
                .ok_or_else(|| UserError::new(Code::Usage, format!("no deployment {id}")))?;
            let v = Version::parse(&d.to_version).map_err(|e| {
                UserError::new(
                    Code::Store,
                    format!("deployment {id} names no valid version: {e}"),
                )
            })?;
            let took = format!("deployment {id} ({v})");
            (v, took)
        }
        TargetSpec::Version { version } => {
            let took = format!("version {version}");
            (version, took)
        }
        TargetSpec::LastGood => {
            let except = (current.len() == 1).then(|| current[0].to_string());
            let good = store
                .last_good_release(&app.name, except.as_deref())
                .map_err(UserError::from)?
                .and_then(|r| Version::parse(&r.version).ok());
            let Some(v) = good else {
                return Err(UserError::new(
                    Code::RollbackTargetMissing,
                    format!("no earlier good release of {} is known", app.name),
                )
                .hint("name one with --to VERSION (see `rollguard history`)"));
            };
            let took = format!("the last good release, {v}");
            (v, took)
        }
    };
    let release = store
        .release(&app.name, target.as_str())
        .map_err(UserError::from)?;
    let mut missing = Vec::new();
    for (i, inst) in app.instances.iter().enumerate() {
        let Some(exec) = execs.get(&inst.host) else {
            missing.push(format!(
                "{} (no executor for host {})",
                inst.name, inst.host
            ));
            continue;
        };
        match driver.present(exec, slot(i), &target).await {
            Ok(true) => {}
            Ok(false) => missing.push(inst.name.clone()),
            Err(e) => missing.push(format!("{} ({e})", inst.name)),
        }
    }
    let healthy_at = release.as_ref().and_then(|r| r.last_healthy_ms);
    let checks = vec![
        Check {
            check: "known",
            ok: release.is_some(),
            detail: format!("{target} is a release rollguard has seen"),
        },
        Check {
            check: "was_healthy",
            ok: healthy_at.is_some(),
            detail: match healthy_at {
                Some(t) => format!("{target} was healthy at {}", crate::clock::clock_time(t)),
                None => format!("{target} was never seen healthy"),
            },
        },
        Check {
            check: "artifact_present",
            ok: missing.is_empty(),
            detail: if missing.is_empty() {
                format!("{target} is present for every instance")
            } else {
                format!("{target} is missing for {}", missing.join(", "))
            },
        },
    ];
    let warnings = current
        .iter()
        .filter(|c| c.major_differs(&target))
        .map(|c| format!("major version jump: {c} → {target}"))
        .collect();
    Ok(RollbackCheck {
        target,
        took,
        current,
        checks,
        warnings,
        forced,
    })
}

/// The deploy request of a manual rollback to `check.target`: rolling,
/// whatever the app's strategy, with the reason marked as a rollback's.
pub fn rollback_request(
    app: &str,
    check: &RollbackCheck,
    reason: &str,
    owner: LockOwner,
) -> DeployRequest {
    DeployRequest {
        app: app.to_string(),
        version: check.target.clone(),
        strategy: Some(Strategy::Rolling),
        reason: Some(format!("rollback: {reason}")),
        break_lock: false,
        owner,
    }
}

/// How a dead worker's rollout is finished.
pub use worker::Mode as RecoverMode;

/// Starts a new worker for the interrupted rollout of `app`: refused while
/// its worker is alive. The abandoned lock is broken (and that recorded),
/// the lock taken for the deployment, and the new worker spawned. Returns
/// it with the mode it runs in: `Resume` only when asked and the rollout
/// had seen no failure ([`decide::recovery`]).
pub fn recover(
    db: &Location,
    store: &Store,
    app: &str,
    mode: RecoverMode,
    owner: &LockOwner,
) -> Result<(Started, RecoverMode), UserError> {
    let Some(d) = newest_unfinished(store, app)? else {
        return Err(
            UserError::new(Code::NoRollout, format!("no interrupted rollout of {app}"))
                .hint("`rollguard status` shows what runs; nothing needs recovering"),
        );
    };
    lock::break_abandoned(store, app, &owner.user, "recover").map_err(|e| match e.code {
        Code::Locked => e.hint(
            "its worker is alive: the rollout is not interrupted (abort it with `rollguard abort`)",
        ),
        _ => e,
    })?;
    lock::take(
        store,
        app,
        owner,
        &format!("recover deployment {}", d.id),
        Some(d.id),
    )?;
    // A rollout that had seen a failure is rolled back, whatever was asked.
    let resume = mode == RecoverMode::Resume;
    let mode = match decide::recovery(resume, d.state) {
        Recovery::Resume => RecoverMode::Resume,
        _ => RecoverMode::Rollback,
    };
    let how = if mode == RecoverMode::Resume {
        "resume"
    } else if resume {
        "rollback: its rollback had started, and a rollout that failed is never resumed forward"
    } else {
        "rollback"
    };
    if let Err(e) = store.record(
        app,
        Some(d.id),
        &owner.user,
        Some(how),
        &EventKind::RecoverRequested,
    ) {
        let mut err = UserError::from(e).hint("nothing was started");
        if let Err(u) = store.unlock(app, owner) {
            err.message = format!(
                "{}; the lock of {app} could not be released: {u}",
                err.message
            );
        }
        return Err(err);
    }
    let (worker_pid, log) = spawn_worker(db, store, app, d.id, mode, owner)?;
    let started = Started {
        id: d.id,
        app: app.to_string(),
        worker_pid,
        log,
        superseded: Vec::new(),
    };
    Ok((started, mode))
}

/// Sends `verb` to the running rollout of `app`; returns the deployment
/// it went to. `deployment`, when given, is the one the sender was shown:
/// the command goes to it or nowhere. Checked first by [`target`], so that
/// nothing is written that no rollout would take.
pub fn send(
    store: &Store,
    app: &str,
    deployment: Option<i64>,
    verb: Verb,
    actor: &str,
    reason: Option<&str>,
) -> Result<i64, UserError> {
    let d = target(store, app, deployment, verb)?;
    store
        .send_command(app, Some(d.id), verb, actor, reason)
        .map_err(UserError::from)?;
    Ok(d.id)
}

/// The deployment of `app` that `verb` would go to (`deployment`, when
/// given, or none), checked as [`send`] checks it before writing, and as
/// the CLI checks it before asking a person anything:
/// - `E_NO_ROLLOUT` when none runs, or `deployment` has ended (saying how)
///   or is not the one that runs now;
/// - `E_WRONG_STATE` when its worker is gone (recover it), or `verb` does
///   not apply to it as it is now ([`decide::accepts`], the rule the
///   rollout itself follows; [`refusal`] says why).
pub fn target(
    store: &Store,
    app: &str,
    deployment: Option<i64>,
    verb: Verb,
) -> Result<crate::store::Deployment, UserError> {
    let active = newest_unfinished(store, app)?;
    if let Some(shown) = deployment
        && active.as_ref().is_none_or(|d| d.id != shown)
    {
        let ended = store.deployment(shown).map_err(UserError::from)?;
        let mut said = match ended.as_ref().and_then(|d| d.outcome) {
            Some(outcome) => format!(
                "deployment {shown} of {app} has ended ({})",
                outcome.as_str().replace('_', " ")
            ),
            None => format!("deployment {shown} of {app} is not running"),
        };
        if let Some(d) = &active {
            said.push_str(&format!("; deployment {} runs now", d.id));
        }
        return Err(
            UserError::new(Code::NoRollout, format!("{said}: {verb} was not sent"))
                .hint("look at the rollout again before you act on it"),
        );
    }
    let Some(d) = active else {
        return Err(UserError::new(
            Code::NoRollout,
            format!("no rollout of {app} is running: {verb} was not sent"),
        )
        .hint("see `rollguard status` and `rollguard history`"));
    };
    if super::watch::interrupted(store, app, d.id) {
        return Err(UserError::new(
            Code::WrongState,
            format!(
                "the worker of deployment {} of {app} is gone: {verb} was not sent",
                d.id
            ),
        )
        .hint(format!(
            "finish it with `rollguard recover {app} --rollback` (or `--resume`)"
        )));
    }
    if let Some(why) = refusal(app, verb, d.state) {
        return Err(
            UserError::new(Code::WrongState, format!("{why}: {verb} was not sent"))
                .hint("see `rollguard status`"),
        );
    }
    Ok(d)
}

/// Why `verb` does not apply to the rollout of `app` recorded in `state`,
/// in words the console and the CLI show; `None` when it applies
/// ([`decide::accepts`]). (A state this version does not know is refused
/// where the row is read: `E_STORE`.)
pub fn refusal(app: &str, verb: Verb, state: DeploymentState) -> Option<String> {
    use DeploymentState as S;
    if decide::accepts(state, verb) {
        return None;
    }
    let now = state.as_str().replace('_', " ");
    Some(match verb {
        Verb::Approve => format!("nothing to approve: the rollout of {app} is {now}"),
        Verb::Hold if state == S::RollbackHeld => format!("the rollback of {app} is already held"),
        Verb::Hold | Verb::Fire if state == S::RollingBack => {
            format!("the rollback of {app} has already started")
        }
        Verb::Hold | Verb::Fire => format!("no rollback of {app} is armed: the rollout is {now}"),
        Verb::Abort if state == S::RollingBack => {
            format!("the rollout of {app} is already rolling back")
        }
        Verb::Abort if state.is_final() => format!("the rollout of {app} has ended"),
        Verb::Abort => format!("the rollout of {app} cannot be aborted now: it is {now}"),
        Verb::Pause if state == S::Paused => format!("the rollout of {app} is already paused"),
        Verb::Pause => format!("the rollout of {app} cannot pause now: it is {now}"),
        Verb::Resume => format!("the rollout of {app} is not paused: it is {now}"),
    })
}

/// The newest deployment of `app` that has not ended: the one commands go
/// to and recovery finishes.
fn newest_unfinished(
    store: &Store,
    app: &str,
) -> Result<Option<crate::store::Deployment>, UserError> {
    let mut active = store
        .unfinished_deployments(Some(app))
        .map_err(UserError::from)?;
    Ok((!active.is_empty()).then(|| active.swap_remove(0)))
}
