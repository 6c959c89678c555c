//! The rollout commands of the command line: `deploy`, `status`,
//! `history` and the operator verbs `approve`, `hold`, `fire`, `abort`.
//! Each returns the process exit code; errors are printed with their code.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::engine::Outcome;
use super::plan::{Plan, Stage, strategy_name};
use super::preflight;
use super::worker::{self, StoredPlan};
use crate::config::{Fleet, Strategy};
use crate::error::{Code, UserError};
use crate::exec::Executors;
use crate::model::Version;
use crate::store::Store;
use crate::store::rollout::{Lock, LockOwner};

/// Exit code: usage or config error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the app is locked by another rollout.
pub const EXIT_LOCKED: u8 = 5;
/// Exit code: anything else.
pub const EXIT_OTHER: u8 = 1;

/// A lock whose heartbeat is older than this may be broken.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// `rollguard deploy` options.
#[derive(Clone, Debug, Default)]
pub struct DeployArgs {
    /// App name.
    pub app: String,
    /// Target version as typed.
    pub version: String,
    /// Strategy override.
    pub strategy: Option<Strategy>,
    /// Skip the confirmation.
    pub yes: bool,
    /// Print the plan only.
    pub dry_run: bool,
    /// Return once the worker runs.
    pub detach: bool,
    /// Print one JSON object at the end.
    pub json: bool,
    /// Why (stored).
    pub reason: Option<String>,
    /// Break a stale lock first.
    pub break_lock: bool,
}

fn fail(e: &UserError) -> u8 {
    eprintln!("{e}");
    match e.code {
        Code::Usage | Code::Config | Code::Confirm => EXIT_USAGE,
        Code::Locked => EXIT_LOCKED,
        _ => EXIT_OTHER,
    }
}

fn store_err(e: crate::store::StoreError) -> UserError {
    UserError::new(Code::Store, e.message()).hint(e.hint())
}

/// The user running rollguard: `$USER`, else the password database.
pub fn whoami() -> String {
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"))
        && !u.is_empty()
    {
        return u;
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; the
    // name is copied out at once.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid{uid}")
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` runs on this machine. A zombie (exited, not yet
/// reaped: an orphaned worker whose init does not reap) counts as gone.
fn pid_alive(pid: i64) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    if p <= 0 || unsafe { libc::kill(p, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{p}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Whether `lock` may be broken: stale heartbeat, or a dead pid here.
pub fn breakable(lock: &Lock) -> Option<String> {
    let age = crate::model::now_ms() - lock.heartbeat_ms;
    if age > STALE_AFTER.as_millis() as i64 {
        return Some(format!("its heartbeat is {}s old", age / 1000));
    }
    if lock.owner_host == hostname() && !pid_alive(lock.owner_pid) {
        return Some(format!("its process {} is gone", lock.owner_pid));
    }
    None
}

fn print_plan(plan: &Plan, fleet: &Fleet, app: usize) {
    let from = plan.from.as_ref().map_or_else(
        || {
            if plan.install {
                "nothing (install)".to_string()
            } else {
                "mixed versions".to_string()
            }
        },
        Version::to_string,
    );
    println!(
        "Deploy {} {} → {} ({}, {} instances)",
        plan.app,
        from,
        plan.to,
        strategy_name(plan.strategy),
        fleet.apps[app].instances.len()
    );
    for (i, s) in plan.stages.iter().enumerate() {
        println!("  {:>2}. {}", i + 1, s.describe(&fleet.apps[app]));
    }
    for w in &plan.warnings {
        println!("  warning: {w}");
    }
}

/// `rollguard deploy`.
pub async fn deploy(fleet: &Fleet, db: &Path, args: &DeployArgs) -> u8 {
    let version = match Version::parse(&args.version) {
        Ok(v) => v,
        Err(e) => return fail(&UserError::new(Code::Usage, e.to_string())),
    };
    launch(fleet, db, args, &version, None).await
}

/// A manual rollback's part of a launch: its checks, and whether failed
/// checks are overridden.
struct ManualRollback {
    checks: Value,
    force: bool,
}

/// Preflight, plan, confirm, lock, record, start the worker, follow.
async fn launch(
    fleet: &Fleet,
    db: &Path,
    args: &DeployArgs,
    version: &Version,
    manual: Option<ManualRollback>,
) -> u8 {
    let version = version.clone();
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&store_err(e)),
    };
    // Fail fast on a held lock; the atomic check comes after preflight.
    if !args.break_lock
        && let Ok(Some(lock)) = store.lock(&args.app)
    {
        return fail(&locked_error(&args.app, &lock));
    }
    let execs = Executors::new(&fleet.hosts);
    let way_back = !manual.as_ref().is_some_and(|m| m.force);
    let pre = preflight::check(
        fleet,
        &store,
        &execs,
        &args.app,
        &version,
        args.strategy,
        way_back,
    )
    .await;
    execs.close().await;
    let pre = match pre {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if !args.json || args.dry_run {
        print_plan(&pre.plan, fleet, pre.app);
    }
    if args.dry_run {
        return 0;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return fail(
                &UserError::new(
                    Code::Confirm,
                    "no terminal to confirm the plan on; nothing was done",
                )
                .hint("pass --yes to deploy without asking"),
            );
        }
        print!("Proceed? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("Nothing was done.");
            return EXIT_OTHER;
        }
    }
    let owner = LockOwner {
        user: whoami(),
        host: hostname(),
        pid: std::process::id(),
    };
    let reason = args
        .reason
        .clone()
        .unwrap_or_else(|| format!("deploy {version}"));
    let locked = match store.try_lock(&args.app, &owner, &reason, None) {
        Ok(r) => r,
        Err(e) => return fail(&store_err(e)),
    };
    if let Err(lock) = locked {
        match (args.break_lock, breakable(&lock)) {
            (true, Some(why)) => {
                let _ = store.break_lock(&args.app);
                let _ = store.record_deployment_event(
                    &args.app,
                    lock.deployment_id,
                    "lock_broken",
                    &owner.user,
                    Some(&format!("--break-lock: {why}")),
                    Some(&json!({"lock": lock_json(&lock)})),
                );
                match store.try_lock(&args.app, &owner, &reason, None) {
                    Ok(Ok(())) => {}
                    Ok(Err(l)) => return fail(&locked_error(&args.app, &l)),
                    Err(e) => return fail(&store_err(e)),
                }
            }
            (true, None) => {
                return fail(&locked_error(&args.app, &lock).hint(
                    "the lock is live (recent heartbeat, process alive); wait for that rollout or abort it",
                ));
            }
            (false, _) => return fail(&locked_error(&args.app, &lock)),
        }
    }
    let _ = store.record_deployment_event(
        &args.app,
        None,
        "lock_taken",
        &owner.user,
        Some(&reason),
        None,
    );
    let stored = StoredPlan {
        kind: if manual.is_some() {
            "rollback"
        } else {
            "deploy"
        }
        .to_string(),
        plan: pre.plan.clone(),
        live: pre.live.clone(),
        config: std::fs::canonicalize(&fleet.source).unwrap_or_else(|_| fleet.source.clone()),
    };
    let plan_json = serde_json::to_value(&stored).unwrap_or(Value::Null);
    let from = pre.plan.from.as_ref().map(Version::to_string);
    let id = match store.create_deployment(
        &args.app,
        from.as_deref(),
        version.as_str(),
        strategy_name(pre.plan.strategy),
        &owner.user,
        Some(&reason),
        &plan_json,
        &pre.plan.warnings,
    ) {
        Ok(id) => id,
        Err(e) => {
            let _ = store.unlock(&args.app, owner.pid);
            return fail(&store_err(e));
        }
    };
    let batches: Vec<(&str, Vec<String>, Option<f64>)> = pre
        .plan
        .stages
        .iter()
        .map(|s| {
            let names = s
                .instances(fleet.apps[pre.app].instances.len())
                .iter()
                .map(|i| fleet.apps[pre.app].instances[*i].name.clone())
                .collect();
            let pct = match s {
                Stage::Shift { percent } => Some(f64::from(*percent)),
                _ => None,
            };
            (s.kind(), names, pct)
        })
        .collect();
    let _ = store.insert_batches(id, &batches);
    let _ = store.set_lock_deployment(&args.app, id);
    if let Some(m) = &manual {
        let _ = store.record_deployment_event(
            &args.app,
            Some(id),
            "rollback_requested",
            &owner.user,
            Some(&reason),
            Some(&json!({"checks": m.checks, "forced": m.force})),
        );
    }
    let _ = store.record_deployment_event(
        &args.app,
        Some(id),
        "deploy_requested",
        &owner.user,
        Some(&reason),
        Some(&json!({"from": from, "to": version, "strategy": pre.plan.strategy})),
    );
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(&UserError::new(Code::Exec, e.to_string())),
    };
    let log = db
        .parent()
        .unwrap_or(Path::new("."))
        .join("rollouts")
        .join(format!("{id}.log"));
    let db_abs = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let pid = match worker::spawn(&exe, &db_abs, id, worker::Mode::Run, &log) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = store.finish_deployment(id, "failed", "failed");
            let _ = store.unlock(&args.app, owner.pid);
            return fail(&e);
        }
    };
    // The worker takes the lock over; until it does, it is still ours.
    let _ = store.set_lock_owner_pid(&args.app, pid);
    if args.detach {
        if args.json {
            println!(
                "{}",
                json!({"id": id, "app": args.app, "worker_pid": pid, "log": log})
            );
        } else {
            println!(
                "Deployment {id} runs in the background (pid {pid}, log {}).",
                log.display()
            );
            println!("Follow it with `rollguard status {}`.", args.app);
        }
        return 0;
    }
    follow(&store, id, pid, args.json).await
}

fn locked_error(app: &str, lock: &Lock) -> UserError {
    let mut e = UserError::new(
        Code::Locked,
        format!(
            "{app} is locked by {}@{} (pid {}) since {}: {}",
            lock.owner_user,
            lock.owner_host,
            lock.owner_pid,
            time_of(lock.acquired_ms),
            lock.reason
        ),
    );
    e = match breakable(lock) {
        Some(why) => e.hint(format!(
            "the lock looks abandoned ({why}); pass --break-lock to take it"
        )),
        None => e.hint("wait for that rollout to end, or abort it with `rollguard abort`"),
    };
    e
}

fn lock_json(l: &Lock) -> Value {
    json!({"user": l.owner_user, "host": l.owner_host, "pid": l.owner_pid, "reason": l.reason,
           "acquired_ms": l.acquired_ms, "heartbeat_ms": l.heartbeat_ms, "deployment_id": l.deployment_id})
}

fn time_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

/// One progress line for an event, stamped with its time, or `None` for
/// events not worth a line.
fn progress_line(e: &crate::store::Event) -> Option<String> {
    progress_text(e).map(|text| format!("{}  {text}", time_of(e.at_ms)))
}

/// What an event says as progress, or `None` for events not worth a line.
pub(crate) fn progress_text(e: &crate::store::Event) -> Option<String> {
    let ev = e.evidence.clone().unwrap_or(Value::Null);
    let reason = e.reason.clone().unwrap_or_default();
    let text = match e.kind.as_str() {
        "deploy_requested" | "lock_taken" | "traffic_changing" | "traffic_changed"
        | "lock_released" => return None,
        "rollout_started" => "rollout started".to_string(),
        "stage_started" => format!(
            "stage {}: {}",
            ev["index"].as_u64().unwrap_or(0) + 1,
            ev["describe"].as_str().unwrap_or("")
        ),
        "gate_passed" => {
            let who: Vec<&str> = ev["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["instance"].as_str())
                .collect();
            format!("healthy: {} ({} ms)", who.join(", "), ev["elapsed_ms"])
        }
        "instance_restored" => match ev["version"].as_str() {
            Some(v) => format!("restored {} to {v}", ev["instance"].as_str().unwrap_or("?")),
            None => format!(
                "stopped the new version on {} ({} side)",
                ev["instance"].as_str().unwrap_or("?"),
                ev["side"].as_str().unwrap_or("?")
            ),
        },
        "gate_failed" => format!("gate failed: {reason}"),
        "deadline_exceeded" => format!("deadline exceeded: {reason}"),
        "paused" => format!("pausing {} ms", ev["ms"]),
        "traffic_switched" => "traffic switched".into(),
        "rollout_failed" => format!("{}: {reason}", ev["code"].as_str().unwrap_or("E_FAILED")),
        "rollback_armed" => format!(
            "rollback armed: fires in {} ms unless held (`rollguard hold`), or now with `rollguard fire`",
            ev["fires_in_ms"]
        ),
        "rollback_started" => "rolling back".into(),
        "instance_not_restored" => format!(
            "could not restore {}: {reason}",
            ev["instance"].as_str().unwrap_or("?")
        ),
        "rollback_completed" => "rollback completed".into(),
        "rollback_failed" => format!("rollback failed: {reason}"),
        "rollout_completed" => "deployed".into(),
        other => {
            if reason.is_empty() {
                other.replace('_', " ")
            } else {
                format!("{}: {reason}", other.replace('_', " "))
            }
        }
    };
    Some(text)
}

/// Prints progress of deployment `id` until it ends; returns the exit code.
pub async fn follow(store: &Store, id: i64, worker_pid: u32, json_out: bool) -> u8 {
    let mut after = 0;
    let started = std::time::Instant::now();
    loop {
        if let Ok(events) = store.deployment_events(id, after) {
            for e in events {
                after = after.max(e.id);
                if !json_out && let Some(line) = progress_line(&e) {
                    println!("{line}");
                }
            }
        }
        let row = match store.deployment(id) {
            Ok(Some(r)) => r,
            Ok(None) => return EXIT_OTHER,
            Err(e) => return fail(&store_err(e)),
        };
        if row.ended_at_ms.is_some() {
            // Print what arrived with the end.
            if let Ok(events) = store.deployment_events(id, after) {
                for e in events {
                    if !json_out && let Some(line) = progress_line(&e) {
                        println!("{line}");
                    }
                }
            }
            let outcome = row
                .outcome
                .as_deref()
                .and_then(Outcome::parse)
                .unwrap_or(Outcome::Failed);
            if json_out {
                println!("{}", report(store, id));
            } else {
                println!("{}: {}", row.app, outcome.as_str().replace('_', " "));
            }
            return outcome.exit_code();
        }
        if !pid_alive(i64::from(worker_pid)) && started.elapsed() > Duration::from_secs(2) {
            let e = UserError::new(
                Code::Exec,
                format!("the rollout worker (pid {worker_pid}) of deployment {id} is gone before the end"),
            )
            .hint("see `rollguard status` for what it left");
            return fail(&e);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `--json` report of deployment `id`.
pub fn report(store: &Store, id: i64) -> Value {
    let Ok(Some(d)) = store.deployment(id) else {
        return Value::Null;
    };
    let batches: Vec<Value> = store
        .batches(id)
        .unwrap_or_default()
        .into_iter()
        .map(|b| {
            json!({"index": b.idx, "kind": b.kind, "instances": b.instances, "state": b.state,
                   "traffic_percent": b.traffic_percent, "started_at_ms": b.started_at_ms,
                   "ended_at_ms": b.ended_at_ms})
        })
        .collect();
    let events = store.deployment_events(id, 0).unwrap_or_default();
    let rollback = events.iter().find(|e| e.kind == "rollout_failed").map(|e| {
        let ev = e.evidence.clone().unwrap_or(Value::Null);
        json!({"trigger": ev["trigger"], "code": ev["code"], "reason": e.reason, "evidence": ev["evidence"]})
    });
    json!({
        "id": d.id,
        "app": d.app,
        "from": d.from_version,
        "to": d.to_version,
        "strategy": d.strategy,
        "outcome": d.outcome,
        "duration_ms": d.ended_at_ms.map(|e| e - d.started_at_ms),
        "batches": batches,
        "rollback": rollback,
        "warnings": d.warnings,
    })
}

/// `rollguard approve|hold|fire|abort APP [--reason]`.
pub fn command(db: &Path, app: &str, verb: &str, reason: Option<&str>) -> u8 {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&store_err(e)),
    };
    let active = store.unfinished_deployments(Some(app)).unwrap_or_default();
    let Some(d) = active.first() else {
        return fail(
            &UserError::new(Code::NoRollout, format!("no rollout of {app} is running"))
                .hint("see `rollguard status` and `rollguard history`"),
        );
    };
    match store.send_command(app, Some(d.id), verb, &whoami(), reason) {
        Ok(_) => {
            println!(
                "{verb} sent to deployment {} of {app}; the rollout picks it up within a second.",
                d.id
            );
            0
        }
        Err(e) => fail(&store_err(e)),
    }
}

/// `rollguard status [APP] [--json]`.
pub fn status(fleet: &Fleet, db: &Path, app: Option<&str>, json_out: bool) -> u8 {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&store_err(e)),
    };
    let apps: Vec<&crate::config::App> = match app {
        Some(name) => match fleet.app(name) {
            Some(a) => vec![a],
            None => {
                return fail(&UserError::new(
                    Code::Usage,
                    format!("no app named \"{name}\""),
                ));
            }
        },
        None => fleet.apps.iter().collect(),
    };
    let mut out = Vec::new();
    for a in apps {
        let lock = store.lock(&a.name).ok().flatten();
        let active = store
            .unfinished_deployments(Some(&a.name))
            .unwrap_or_default();
        let last = store.deployments(Some(&a.name), 1).unwrap_or_default();
        let states = store.instance_states(&a.name).unwrap_or_default();
        let good = store.last_good_release(&a.name, None).ok().flatten();
        let interrupted = active.iter().any(|d| {
            lock.as_ref()
                .is_none_or(|l| l.deployment_id == Some(d.id) && breakable(l).is_some())
        });
        out.push(json!({
            "app": a.name,
            "lock": lock.as_ref().map(lock_json),
            "active": active.iter().map(|d| json!({"id": d.id, "to": d.to_version, "state": d.state,
                "started_at_ms": d.started_at_ms})).collect::<Vec<_>>(),
            "interrupted": interrupted,
            "last": last.first().map(|d| json!({"id": d.id, "from": d.from_version, "to": d.to_version,
                "outcome": d.outcome, "ended_at_ms": d.ended_at_ms})),
            "last_good": good.map(|r| r.version),
            "instances": states.iter().map(|s| json!({"instance": s.instance, "version": s.version,
                "live_side": s.live_side})).collect::<Vec<_>>(),
        }));
    }
    if json_out {
        println!("{}", Value::Array(out));
        return 0;
    }
    for s in &out {
        print!("{}", s["app"].as_str().unwrap_or(""));
        match s["active"].as_array().and_then(|a| a.first()) {
            Some(d) if s["interrupted"] == true => println!(
                "  INTERRUPTED deployment {} to {} (state {}): its worker is gone",
                d["id"],
                d["to"].as_str().unwrap_or("?"),
                d["state"].as_str().unwrap_or("?")
            ),
            Some(d) => println!(
                "  deploying {} (deployment {}, {})",
                d["to"].as_str().unwrap_or("?"),
                d["id"],
                d["state"].as_str().unwrap_or("?")
            ),
            None => match s["last"].as_object() {
                Some(l) => println!(
                    "  last: {} → {} {}",
                    l["from"].as_str().unwrap_or("-"),
                    l["to"].as_str().unwrap_or("?"),
                    l["outcome"].as_str().unwrap_or("?").replace('_', " ")
                ),
                None => println!("  never deployed by rollguard"),
            },
        }
        if let Some(l) = s["lock"].as_object() {
            println!(
                "  locked by {}@{} pid {}: {}",
                l["user"].as_str().unwrap_or("?"),
                l["host"].as_str().unwrap_or("?"),
                l["pid"],
                l["reason"].as_str().unwrap_or("")
            );
        }
        for i in s["instances"].as_array().into_iter().flatten() {
            println!(
                "  {:<20} {:<16} live on {}",
                i["instance"].as_str().unwrap_or("?"),
                i["version"].as_str().unwrap_or("-"),
                i["live_side"].as_str().unwrap_or("main")
            );
        }
    }
    0
}

/// `rollguard history [APP] [--limit N] [--json]`.
pub fn history(db: &Path, app: Option<&str>, limit: usize, json_out: bool) -> u8 {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&store_err(e)),
    };
    let rows = match store.deployments(app, limit) {
        Ok(r) => r,
        Err(e) => return fail(&store_err(e)),
    };
    if json_out {
        println!(
            "{}",
            Value::Array(rows.iter().map(|d| report(&store, d.id)).collect())
        );
        return 0;
    }
    println!(
        "{:>5}  {:<19}  {:<12} {:<10} {:<10} {:<11} {:<16} BY",
        "ID", "STARTED", "APP", "FROM", "TO", "STRATEGY", "OUTCOME"
    );
    for d in rows {
        let started = chrono::DateTime::from_timestamp_millis(d.started_at_ms)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        println!(
            "{:>5}  {:<19}  {:<12} {:<10} {:<10} {:<11} {:<16} {}",
            d.id,
            started,
            d.app,
            d.from_version.as_deref().unwrap_or("-"),
            d.to_version,
            d.strategy,
            d.outcome.as_deref().unwrap_or(&d.state),
            d.actor
        );
    }
    0
}

/// `rollguard rollback` options.
#[derive(Clone, Debug, Default)]
pub struct RollbackArgs {
    /// App name.
    pub app: String,
    /// A deployment id or a version; default the last good release.
    pub to: Option<String>,
    /// Why (required, stored).
    pub reason: String,
    /// Skip the confirmation.
    pub yes: bool,
    /// Print the checks and the plan only.
    pub dry_run: bool,
    /// Go on despite failed checks.
    pub force: bool,
    /// Print one JSON object at the end.
    pub json: bool,
}

/// `rollguard rollback APP [--to ID|VERSION] --reason TEXT`: puts a
/// previous release back, health-checked like a deploy. Before anything
/// moves: the target must be a release rollguard knows, it must have been
/// healthy when it last ran, and its artifact must be present for every
/// instance; a major-version jump is a warning. A failed check stops it
/// unless `--force`.
pub async fn rollback(fleet: &Fleet, db: &Path, args: &RollbackArgs) -> u8 {
    let Some(app) = fleet.app(&args.app) else {
        let names: Vec<_> = fleet.apps.iter().map(|a| a.name.as_str()).collect();
        return fail(
            &UserError::new(Code::Usage, format!("no app named \"{}\"", args.app))
                .hint(format!("apps: {}", names.join(", "))),
        );
    };
    if args.reason.trim().is_empty() {
        return fail(&UserError::new(
            Code::Usage,
            "a rollback needs --reason TEXT",
        ));
    }
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&store_err(e)),
    };
    let app_idx = fleet
        .apps
        .iter()
        .position(|a| a.name == app.name)
        .unwrap_or(0);
    let driver = match crate::driver::Driver::for_app(app) {
        Ok(d) => d,
        Err(e) => return fail(&preflight::driver_error(e)),
    };
    let live = preflight::live_sides(fleet, app_idx, &store);
    let execs = Executors::new(&fleet.hosts);
    let slot = |i: usize| crate::driver::Slot {
        app,
        instance: &app.instances[i],
        host: fleet.host(&app.instances[i].host).expect("validated host"),
        side: live[i],
    };
    // What runs now.
    let mut current = Vec::new();
    for i in 0..app.instances.len() {
        let Some(exec) = execs.get(&app.instances[i].host) else {
            continue;
        };
        match driver.current(exec, slot(i)).await {
            Ok(Some(v)) => current.push(v),
            Ok(None) => {}
            Err(e) => {
                execs.close().await;
                return fail(&preflight::driver_error(e));
            }
        }
    }
    current.sort();
    current.dedup();
    // The target.
    let target = match &args.to {
        Some(to) if to.chars().all(|c| c.is_ascii_digit()) => {
            match to
                .parse::<i64>()
                .ok()
                .and_then(|id| store.deployment(id).ok().flatten())
            {
                Some(d) if d.app == app.name => Version::parse(&d.to_version).ok(),
                Some(d) => {
                    execs.close().await;
                    return fail(&UserError::new(
                        Code::Usage,
                        format!("deployment {to} is of app {}, not {}", d.app, app.name),
                    ));
                }
                None => Version::parse(to).ok(),
            }
        }
        Some(to) => match Version::parse(to) {
            Ok(v) => Some(v),
            Err(e) => {
                execs.close().await;
                return fail(&UserError::new(Code::Usage, e.to_string()));
            }
        },
        None => {
            let except = (current.len() == 1).then(|| current[0].to_string());
            store
                .last_good_release(&app.name, except.as_deref())
                .ok()
                .flatten()
                .and_then(|r| Version::parse(&r.version).ok())
        }
    };
    let Some(target) = target else {
        execs.close().await;
        return fail(
            &UserError::new(
                Code::RollbackTargetMissing,
                format!("no earlier good release of {} is known", app.name),
            )
            .hint("name one with --to VERSION (see `rollguard history`)"),
        );
    };
    // The checks.
    let release = store.release(&app.name, target.as_str()).ok().flatten();
    let mut missing = Vec::new();
    for i in 0..app.instances.len() {
        let Some(exec) = execs.get(&app.instances[i].host) else {
            continue;
        };
        match driver.present(exec, slot(i), &target).await {
            Ok(true) => {}
            Ok(false) => missing.push(app.instances[i].name.clone()),
            Err(e) => missing.push(format!("{} ({e})", app.instances[i].name)),
        }
    }
    execs.close().await;
    let jump = current
        .iter()
        .find(|c| c.major().is_some() && target.major().is_some() && c.major() != target.major());
    let checks = vec![
        (
            "known",
            release.is_some(),
            format!("{target} is a release rollguard has seen"),
        ),
        (
            "was_healthy",
            release
                .as_ref()
                .is_some_and(|r| r.last_healthy_ms.is_some()),
            match release.as_ref().and_then(|r| r.last_healthy_ms) {
                Some(t) => format!("{target} was healthy at {}", time_of(t)),
                None => format!("{target} was never seen healthy"),
            },
        ),
        (
            "artifact_present",
            missing.is_empty(),
            if missing.is_empty() {
                format!("{target} is present for every instance")
            } else {
                format!("{target} is missing for {}", missing.join(", "))
            },
        ),
    ];
    let failed: Vec<&str> = checks.iter().filter(|c| !c.1).map(|c| c.0).collect();
    let mut warnings = Vec::new();
    if let Some(c) = jump {
        warnings.push(format!("major version jump: {c} → {target}"));
    }
    let checks_json = json!({
        "target": target,
        "current": current,
        "checks": checks.iter().map(|(k, ok, d)| json!({"check": k, "ok": ok, "detail": d})).collect::<Vec<_>>(),
        "warnings": warnings,
    });
    if !args.json || args.dry_run {
        let from: Vec<String> = current.iter().map(Version::to_string).collect();
        println!(
            "Rollback {} {} → {target}",
            app.name,
            if from.is_empty() {
                "-".into()
            } else {
                from.join(", ")
            }
        );
        for (_, ok, detail) in &checks {
            println!("  {} {detail}", if *ok { "ok  " } else { "FAIL" });
        }
        for w in &warnings {
            println!("  warning: {w}");
        }
    }
    if !failed.is_empty() && !args.force {
        let code = if failed.contains(&"artifact_present") {
            Code::RollbackTargetMissing
        } else {
            Code::RollbackUnsafe
        };
        return fail(
            &UserError::new(
                code,
                format!("rollback checks failed: {}", failed.join(", ")),
            )
            .hint("fix what failed, pick another target with --to, or pass --force"),
        );
    }
    let deploy_args = DeployArgs {
        app: app.name.clone(),
        version: target.to_string(),
        strategy: Some(Strategy::Rolling),
        yes: args.yes,
        dry_run: args.dry_run,
        detach: false,
        json: args.json,
        reason: Some(format!("rollback: {}", args.reason)),
        break_lock: false,
    };
    let manual = ManualRollback {
        checks: checks_json,
        force: args.force,
    };
    launch(fleet, db, &deploy_args, &target, Some(manual)).await
}

/// `rollguard recover APP --resume|--rollback`: finishes a rollout whose
/// worker died (crash, `kill -9`, a reboot). Refused while the worker is
/// alive. The stale lock is broken (and that is recorded), a new worker
/// takes it, and this command follows it like `deploy` does.
pub async fn recover(db: &Path, app: &str, mode: worker::Mode, json_out: bool) -> u8 {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => return fail(&store_err(e)),
    };
    let active = store.unfinished_deployments(Some(app)).unwrap_or_default();
    let Some(d) = active.first() else {
        return fail(
            &UserError::new(Code::NoRollout, format!("no interrupted rollout of {app}"))
                .hint("`rollguard status` shows what runs; nothing needs recovering"),
        );
    };
    let me = LockOwner {
        user: whoami(),
        host: hostname(),
        pid: std::process::id(),
    };
    if let Ok(Some(lock)) = store.lock(app) {
        match breakable(&lock) {
            None => {
                return fail(&locked_error(app, &lock).hint(
                    "its worker is alive: the rollout is not interrupted (abort it with `rollguard abort`)",
                ));
            }
            Some(why) => {
                let _ = store.break_lock(app);
                let _ = store.record_deployment_event(
                    app,
                    Some(d.id),
                    "lock_broken",
                    &me.user,
                    Some(&format!("recover: {why}")),
                    Some(&json!({"lock": lock_json(&lock)})),
                );
            }
        }
    }
    match store.try_lock(
        app,
        &me,
        &format!("recover deployment {}", d.id),
        Some(d.id),
    ) {
        Ok(Ok(())) => {}
        Ok(Err(l)) => return fail(&locked_error(app, &l)),
        Err(e) => return fail(&store_err(e)),
    }
    let _ = store.record_deployment_event(
        app,
        Some(d.id),
        "recover_requested",
        &me.user,
        Some(if mode == worker::Mode::Resume {
            "resume"
        } else {
            "rollback"
        }),
        None,
    );
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(&UserError::new(Code::Exec, e.to_string())),
    };
    let db_abs = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
    let log = db_abs
        .parent()
        .unwrap_or(Path::new("."))
        .join("rollouts")
        .join(format!("{}.log", d.id));
    let pid = match worker::spawn(&exe, &db_abs, d.id, mode, &log) {
        Ok(p) => p,
        Err(e) => {
            let _ = store.unlock(app, me.pid);
            return fail(&e);
        }
    };
    let _ = store.set_lock_owner_pid(app, pid);
    if !json_out {
        println!(
            "Recovering deployment {} of {app} ({}), worker pid {pid}.",
            d.id,
            if mode == worker::Mode::Resume {
                "resume"
            } else {
                "rollback"
            }
        );
    }
    follow(&store, d.id, pid, json_out).await
}
