//! The rollout commands of the command line, a printing layer over the
//! [`super::service`]: `deploy`, `rollback`, `recover`, `status`,
//! `history` and the operator verbs `approve`, `hold`, `fire`, `abort`.
//! This is the only place that prints, and with
//! [`super::consent`] (the `[y/N]` prompt, a protected app's
//! name) the only one that asks a person; each command returns the
//! process exit code, and errors are printed with their code. Text from hosts and users goes through
//! [`printable`].

use std::path::Path;
use std::time::Duration;

use clap_complete::ArgValueCandidates;
use serde_json::{Value, json};

use super::consent::{self, ConsentArgs};
use super::engine::Outcome;
use super::lock;
use super::preflight::Preflight;
use super::report;
use super::service::{self, DeployRequest, RecoverMode, RollbackCheck, RollbackRequest, Started};
use crate::clock::{clock_time, local_time};
use crate::config::{Fleet, Strategy};
use crate::error::{Code, UserError};
use crate::model::{Verb, Version};
use crate::printable::printable;
use crate::store::Location;
use crate::store::Store;

/// `rollguard deploy` options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DeployArgs {
    /// The app.
    #[arg(add = ArgValueCandidates::new(crate::completion::apps))]
    pub app: String,
    /// The version to deploy (image tag or release name).
    #[arg(add = ArgValueCandidates::new(crate::completion::releases))]
    pub version: String,
    /// Override the app's strategy.
    #[arg(long, value_parser = strategy_arg)]
    pub strategy: Option<Strategy>,
    /// `--yes`, `--confirm-app`.
    #[command(flatten)]
    pub consent: ConsentArgs,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Return once the rollout runs in the background.
    #[arg(long)]
    pub detach: bool,
    /// Print one JSON object at the end.
    #[arg(long)]
    pub json: bool,
    /// Why (stored in the history).
    #[arg(long)]
    pub reason: Option<String>,
    /// Break the app's lock first if it is stale or its process is dead.
    #[arg(long)]
    pub break_lock: bool,
}

/// `rollguard rollback` options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RollbackArgs {
    /// The app.
    #[arg(add = ArgValueCandidates::new(crate::completion::apps))]
    pub app: String,
    /// The target: VERSION, deployment:ID, version:VERSION, or digits (a
    /// deployment of the app with that id, else a version). Default: the
    /// last good release.
    #[arg(long, add = ArgValueCandidates::new(crate::completion::releases))]
    pub to: Option<String>,
    /// Why (required; stored in the history).
    #[arg(long)]
    pub reason: String,
    /// `--yes`, `--confirm-app`.
    #[command(flatten)]
    pub consent: ConsentArgs,
    /// Print the checks and the plan, and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Go on even if a safety check fails.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object at the end.
    #[arg(long)]
    pub json: bool,
}

/// `rollguard approve|hold|pause|resume` options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct VerbArgs {
    /// The app.
    #[arg(add = ArgValueCandidates::new(crate::completion::apps))]
    pub app: String,
    /// Why (stored with the command); abort and fire need it, and ask for
    /// it at a terminal when it is not given.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `rollguard abort|fire` options: those of the other verbs, and the
/// confirmation a protected app asks for.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GuardedVerbArgs {
    /// The app and the reason.
    #[command(flatten)]
    pub verb: VerbArgs,
    /// `--yes`, `--confirm-app` (they matter on a protected app).
    #[command(flatten)]
    pub consent: ConsentArgs,
}

/// `rollguard status` options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StatusArgs {
    /// Only this app.
    #[arg(add = ArgValueCandidates::new(crate::completion::apps))]
    pub app: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rollguard history` options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct HistoryArgs {
    /// Only this app.
    #[arg(add = ArgValueCandidates::new(crate::completion::apps))]
    pub app: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON (one report per deployment).
    #[arg(long)]
    pub json: bool,
}

/// `rollguard recover` options.
#[derive(Clone, Debug, Default, clap::Args)]
#[command(group = clap::ArgGroup::new("how").required(true).args(["resume", "rollback"]))]
pub struct RecoverArgs {
    /// The app.
    #[arg(add = ArgValueCandidates::new(crate::completion::apps))]
    pub app: String,
    /// Go on from the first stage that had not passed.
    #[arg(long)]
    pub resume: bool,
    /// Roll back everything the rollout did.
    #[arg(long)]
    pub rollback: bool,
    /// Print one JSON object at the end.
    #[arg(long)]
    pub json: bool,
}

/// Reads a strategy as the command line and the console spell it.
pub fn strategy_arg(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s).ok_or_else(|| "one of rolling, blue-green, canary".into())
}

/// Exit code: anything else.
pub const EXIT_OTHER: u8 = 1;

/// Prints `e` and returns its exit code.
fn fail(e: &UserError) -> u8 {
    eprintln!("{e}");
    e.code.exit_code()
}

/// Text for standard output, gathered before it is written at once by
/// [`emit`].
macro_rules! out {
    ($o:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($o, $($arg)*);
    }};
}

/// [`out!`] with a line end.
macro_rules! outln {
    ($o:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($arg)*);
    }};
}

/// Writes `text` to standard output: 0, also when nobody reads it any
/// more (the closed pipe `| head` leaves), else the error's exit code.
fn emit(text: &str) -> u8 {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => fail(&UserError::new(
            Code::Terminal,
            format!("cannot write to standard output: {e}"),
        )),
    }
}

/// Opens the store for a command that writes.
fn open(db: &Location) -> Result<Store, UserError> {
    Store::open_at(db).map_err(UserError::from)
}

/// Opens the store for a command that only reads: an existing history is
/// opened read-only (so `status` and `history` work on a read-only file
/// system); a missing one reads as an empty history, created nowhere.
fn open_for_reading(db: &Location) -> Result<Store, UserError> {
    match db.file() {
        // No history yet: nothing to read, and nothing is created (a
        // read-only file system works too).
        Some(path) if !path.exists() => Store::empty(path).map_err(UserError::from),
        // A PostgreSQL history is read in read-only transactions; a
        // database without rollguard's tables yet reads as empty.
        _ => match Store::open_read_only_at(db) {
            Err(crate::store::StoreError::NoHistory { path }) => {
                Store::empty(&path).map_err(UserError::from)
            }
            other => other.map_err(UserError::from),
        },
    }
}

/// Prints the preflight report: the plan, what runs where, and the way
/// back.
fn print_report(pre: &Preflight, fleet: &Fleet) {
    for line in pre.lines(fleet) {
        println!("{}", printable(&line));
    }
}

/// `rollguard deploy`.
pub async fn deploy(fleet: &Fleet, db: &Location, args: &DeployArgs) -> u8 {
    if let Err(e) = consent::check(&args.app, protected(fleet, &args.app), &args.consent) {
        return fail(&e);
    }
    let version = match Version::parse(&args.version) {
        Ok(v) => v,
        Err(e) => return fail(&UserError::new(Code::Usage, e.to_string())),
    };
    let req = DeployRequest {
        app: args.app.clone(),
        version,
        strategy: args.strategy,
        reason: args.reason.clone(),
        break_lock: args.break_lock,
        owner: lock::me(),
    };
    let ask = Ask {
        yes: args.consent.yes,
        dry_run: args.dry_run,
        detach: args.detach,
        json: args.json,
    };
    match launch(fleet, db, &req, None, ask).await {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

/// How a launch talks to the person.
#[derive(Clone, Copy, Debug)]
struct Ask {
    yes: bool,
    dry_run: bool,
    detach: bool,
    json: bool,
}

/// Preflight, print the plan, confirm, start, follow.
async fn launch(
    fleet: &Fleet,
    db: &Location,
    req: &DeployRequest,
    rollback: Option<&RollbackCheck>,
    ask: Ask,
) -> Result<u8, UserError> {
    let store = open(db)?;
    let way_back = !rollback.is_some_and(|r| r.forced);
    let pre = service::preflight(fleet, &store, req, way_back).await?;
    if !ask.json || ask.dry_run {
        print_report(&pre, fleet);
    }
    if ask.dry_run {
        return Ok(0);
    }
    let what = if rollback.is_some() {
        "roll back"
    } else {
        "deploy"
    };
    if !consent::ask(&req.app, protected(fleet, &req.app), ask.yes, what)? {
        println!("Nothing was done.");
        return Ok(EXIT_OTHER);
    }
    let started = service::start(fleet, db, &store, &pre, req, rollback)?;
    for old in &started.superseded {
        if !ask.json {
            println!(
                "Deployment {old} of {} was interrupted and is now superseded (it will not be recovered).",
                started.app
            );
        }
    }
    if ask.detach {
        print_detached(&started, ask.json);
        return Ok(0);
    }
    Ok(follow(&store, &started, ask.json).await)
}

fn print_detached(s: &Started, json_out: bool) {
    if json_out {
        println!(
            "{}",
            json!({"id": s.id, "app": s.app, "worker_pid": s.worker_pid, "log": s.log})
        );
    } else {
        println!(
            "Deployment {} runs in the background (pid {}, log {}).",
            s.id,
            s.worker_pid,
            s.log.display()
        );
        println!("Follow it with `rollguard status {}`.", s.app);
    }
}

/// One progress line for an event, stamped with its time, or `None` for
/// events not worth a line.
fn progress_line(e: &crate::store::Event) -> Option<String> {
    super::watch::progress_text(e)
        .map(|text| format!("{}  {}", clock_time(e.at_ms), printable(&text)))
}

/// Prints progress of the deployment `started` until it ends; returns the
/// exit code.
pub async fn follow(store: &Store, started: &Started, json_out: bool) -> u8 {
    let (id, worker_pid) = (started.id, started.worker_pid);
    let since = std::time::Instant::now();
    let mut after = 0;
    let print_new = |after: &mut i64| -> Result<(), UserError> {
        for e in store
            .deployment_events(id, *after)
            .map_err(UserError::from)?
        {
            *after = (*after).max(e.id);
            if !json_out && let Some(line) = progress_line(&e) {
                println!("{line}");
            }
        }
        Ok(())
    };
    loop {
        if let Err(e) = print_new(&mut after) {
            return fail(&e);
        }
        // Whether the worker runs, seen before its row is read: a worker
        // that ended the deployment and exited between the two would
        // otherwise look gone before the end.
        let worker_ran = crate::host::pid_alive(i64::from(worker_pid));
        let row = match store.deployment(id) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return fail(&UserError::new(
                    Code::Store,
                    format!("deployment {id} is no longer in the history"),
                ));
            }
            Err(e) => return fail(&UserError::from(e)),
        };
        if row.ended_at_ms.is_some() {
            // Print what arrived with the end.
            if let Err(e) = print_new(&mut after) {
                return fail(&e);
            }
            let outcome = row.outcome.unwrap_or(Outcome::Failed);
            if json_out {
                match report::read(store, id) {
                    Ok(r) => println!("{}", json!(r)),
                    Err(e) => return fail(&e),
                }
            } else {
                println!("{}: {}", row.app, outcome.as_str().replace('_', " "));
            }
            return outcome.exit_code();
        }
        if !worker_ran && since.elapsed() > Duration::from_secs(2) {
            let gone = format!(
                "the rollout worker (pid {worker_pid}) of deployment {id} is gone before the end"
            );
            // What it said last, when it stopped over an error it could not
            // record (a full disk: E_STORE).
            let log = &started.log;
            let e = match last_error(log) {
                Some((code, line)) => {
                    UserError::new(code, format!("{gone}; its log ends: {}", printable(&line)))
                }
                // It could not say why: its log's disk is full.
                None if crate::host::disk_full(log) => UserError::new(
                    Code::Store,
                    format!(
                        "{gone}: it could not write its log, {}: free space there",
                        printable(&crate::host::full_disk_words(log))
                    ),
                ),
                None => UserError::new(Code::Exec, gone),
            }
            .hint(format!(
                "see `rollguard status` for what it left, and its log {}",
                log.display()
            ));
            return fail(&e);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last error code a worker's log names, with its line: how a worker
/// that could not record its end said why.
fn last_error(log: &Path) -> Option<(Code, String)> {
    use std::io::{Read as _, Seek as _};
    let mut f = std::fs::File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    tail.lines().rev().find_map(|line| {
        let code = line
            .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .find_map(Code::parse)?;
        Some((code, line.trim().to_string()))
    })
}

/// Whether the app named `app` is protected (an app the config does not
/// name is not).
fn protected(fleet: &Fleet, app: &str) -> bool {
    fleet.app(app).is_some_and(|a| a.protected)
}

/// `rollguard abort|fire APP --reason TEXT [--yes [--confirm-app APP]]`:
/// the rules of the console's question. The flags are checked first; then
/// whether a rollout of `APP` runs that the verb applies to (nothing is
/// asked of a person for a command that would be refused); then the
/// reason (`--reason`, else asked at the terminal, else `E_USAGE`); then
/// the question, `[y/N]` or a protected app's name (`--yes` answers it);
/// then the command goes to the deployment that was checked.
pub fn guarded_command(fleet: &Fleet, db: &Location, verb: Verb, args: &GuardedVerbArgs) -> u8 {
    match guarded(fleet, db, verb, args) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn guarded(
    fleet: &Fleet,
    db: &Location,
    verb: Verb,
    args: &GuardedVerbArgs,
) -> Result<u8, UserError> {
    let app = &args.verb.app;
    let protected = protected(fleet, app);
    consent::check(app, protected, &args.consent)?;
    let store = open(db)?;
    let d = running(&store, fleet, app, verb)?;
    let what = match verb {
        Verb::Fire => format!("fire the armed rollback of {app}"),
        _ => format!("{verb} the rollout of {app}"),
    };
    // What a script adds to --reason to do it without asking.
    let flags = match (args.consent.yes, protected) {
        (true, _) => String::new(),
        (false, true) => format!("--yes --confirm-app {app}"),
        (false, false) => "--yes".to_string(),
    };
    let reason = consent::reason(&what, args.verb.reason.as_deref(), &flags)?;
    if !args.consent.yes {
        println!(
            "{}: deployment {} ({} → {}, {}).",
            printable(&capitalized(&what)),
            d.id,
            printable(d.from_version.as_deref().unwrap_or("-")),
            printable(&d.to_version),
            d.state.as_str().replace('_', " ")
        );
    }
    if !consent::ask(app, protected, args.consent.yes, verb.as_str())? {
        println!("Nothing was done.");
        return Ok(EXIT_OTHER);
    }
    let id = service::send(
        &store,
        app,
        Some(d.id),
        verb,
        &crate::host::whoami(),
        Some(&reason),
    )?;
    println!(
        "{verb} sent to deployment {id} of {}; the rollout picks it up within a second.",
        printable(app)
    );
    Ok(0)
}

/// `text` with its first letter upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// The newest unfinished deployment of `app`, when `verb` applies to it
/// as it is now: the check [`service::send`] makes ([`service::target`]), made before a person
/// is asked anything. `E_NO_ROLLOUT` (`E_USAGE` for an app named nowhere),
/// or `E_WRONG_STATE` when its worker is gone or the verb does not apply
/// ([`service::refusal`]).
fn running(
    store: &Store,
    fleet: &Fleet,
    app: &str,
    verb: Verb,
) -> Result<crate::store::Deployment, UserError> {
    service::target(store, app, None, verb).map_err(|e| unknown_app(store, Some(fleet), app, e))
}

/// `rollguard approve|hold|pause|resume APP [--reason]` (and `abort`,
/// `fire` through [`guarded_command`]). `fleet` is the config when one
/// loads: an app neither it nor the history knows is `E_USAGE`.
pub fn command(fleet: Option<&Fleet>, db: &Location, verb: Verb, args: &VerbArgs) -> u8 {
    let run = || -> Result<i64, UserError> {
        let store = open(db)?;
        service::send(
            &store,
            &args.app,
            None,
            verb,
            &crate::host::whoami(),
            args.reason.as_deref(),
        )
        .map_err(|e| unknown_app(&store, fleet, &args.app, e))
    };
    match run() {
        Ok(id) => {
            println!(
                "{verb} sent to deployment {id} of {}; the rollout picks it up within a second.",
                args.app
            );
            0
        }
        Err(e) => fail(&e),
    }
}

/// What `status` says of one app. Where an unfinished deployment touched
/// an instance, what runs there is asked of the app's driver through
/// `execs`, since the records cannot tell a half-done change.
async fn app_status(
    store: &Store,
    fleet: &Fleet,
    app: &crate::config::App,
    execs: &crate::exec::Executors,
) -> Result<Value, UserError> {
    let lock = store.lock(&app.name).map_err(UserError::from)?;
    let active = store
        .unfinished_deployments(Some(&app.name))
        .map_err(UserError::from)?;
    let last = store
        .deployments(Some(&app.name), 1)
        .map_err(UserError::from)?;
    let states = store.instance_states(&app.name).map_err(UserError::from)?;
    let good = store
        .last_good_release(&app.name, None)
        .map_err(UserError::from)?;
    let interrupted = active.iter().any(|d| {
        lock.as_ref()
            .is_none_or(|l| l.deployment_id != Some(d.id) || lock::breakable(l).is_some())
    });
    // What runs: the recorded version, unless an unfinished deployment has
    // since started its release on that instance's live side.
    let mut running: Vec<(String, Option<String>, String)> = app
        .instances
        .iter()
        .map(|inst| {
            let s = states.iter().find(|s| s.instance == inst.name);
            (
                inst.name.clone(),
                s.and_then(|s| s.version.clone()),
                s.and_then(|s| s.live_side.clone())
                    .unwrap_or_else(|| "main".into()),
            )
        })
        .collect();
    // Instances an unfinished deployment touched on their live side: what
    // runs there is asked of the driver, since a change may be half done.
    let mut touched = Vec::new();
    if let Some(d) = active.first() {
        for c in store.changes(d.id).map_err(UserError::from)? {
            let side = c
                .detail
                .as_ref()
                .and_then(|v| v["side"].as_str())
                .unwrap_or("main");
            if let Some(i) = running
                .iter()
                .position(|r| r.0 == c.instance && r.2 == side)
                && !touched.contains(&i)
            {
                touched.push(i);
            }
        }
    }
    let mut asked = Vec::new();
    if !touched.is_empty() {
        let driver = crate::driver::Driver::for_app(app).map_err(super::preflight::driver_error)?;
        for i in touched {
            let inst = &app.instances[i];
            let (Some(exec), Some(host)) = (execs.get(&inst.host), fleet.host(&inst.host)) else {
                continue;
            };
            let side = if running[i].2 == "alt" {
                crate::driver::Side::Alt
            } else {
                crate::driver::Side::Main
            };
            let slot = crate::driver::Slot {
                app,
                instance: inst,
                host,
                side,
            };
            // Nothing the driver can see: a start was cut short, and what
            // runs there (if anything) is not known. Saying the old
            // version would be a lie.
            running[i].1 = driver
                .current(exec, slot)
                .await
                .map_err(super::preflight::driver_error)?
                .map(|v| v.to_string());
            asked.push(i);
        }
    }
    // An armed rollback: when it fires by itself.
    let fires_at = (super::watch::read_app(store, &app.name).active)
        .and_then(|a| Some((a.id, a.fires_at_ms?)));
    let now = crate::model::now_ms();
    let fires = |id: i64| fires_at.filter(|(d, _)| *d == id).map(|(_, at)| at);
    Ok(json!({
        "app": app.name,
        "lock": lock.as_ref().map(crate::store::lock_evidence),
        "active": active.iter().map(|d| json!({"id": d.id, "to": d.to_version, "state": d.state,
            "started_at_ms": d.started_at_ms, "fires_at_ms": fires(d.id),
            "fires_in_s": fires(d.id).map(|at| ((at - now).max(0) + 999) / 1000)}))
            .collect::<Vec<_>>(),
        "interrupted": interrupted,
        "last": last.first().map(|d| json!({"id": d.id, "from": d.from_version, "to": d.to_version,
            "outcome": d.outcome, "ended_at_ms": d.ended_at_ms})),
        "last_good": good.map(|r| r.version),
        "instances": running.iter().enumerate().map(|(n, (i, v, side))| json!({"instance": i,
            "version": v, "live_side": side, "asked_driver": asked.contains(&n)}))
            .collect::<Vec<_>>(),
    }))
}

/// `rollguard status [APP] [--json]`.
pub async fn status(fleet: &Fleet, db: &Location, args: &StatusArgs) -> u8 {
    let mut o = String::new();
    let apps: Vec<&crate::config::App> = match &args.app {
        Some(name) => match fleet.app_index(name) {
            Ok(i) => vec![&fleet.apps[i]],
            Err(e) => return fail(&e),
        },
        None => fleet.apps.iter().collect(),
    };
    let store = match open_for_reading(db) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let execs = crate::exec::Executors::new(&fleet.hosts);
    let mut out = Vec::new();
    for a in apps {
        match app_status(&store, fleet, a, &execs).await {
            Ok(s) => out.push(s),
            Err(e) => {
                execs.close().await;
                return fail(&e);
            }
        }
    }
    execs.close().await;
    if args.json {
        outln!(o, "{}", Value::Array(out));
        return emit(&o);
    }
    let text = |v: &Value, or: &str| printable(v.as_str().unwrap_or(or)).into_owned();
    for s in &out {
        out!(o, "{}", text(&s["app"], ""));
        match s["active"].as_array().and_then(|a| a.first()) {
            Some(d) if s["interrupted"] == true => outln!(
                o,
                "  INTERRUPTED deployment {} to {} (state {}): its worker is gone",
                d["id"],
                text(&d["to"], "?"),
                text(&d["state"], "?")
            ),
            Some(d) => match d["fires_in_s"].as_i64() {
                Some(secs) => outln!(
                    o,
                    "  deploying {} (deployment {}, {}): the rollback of {} fires in {secs}s \
                     unless held",
                    text(&d["to"], "?"),
                    d["id"],
                    text(&d["state"], "?"),
                    text(&d["to"], "?")
                ),
                None => outln!(
                    o,
                    "  deploying {} (deployment {}, {})",
                    text(&d["to"], "?"),
                    d["id"],
                    text(&d["state"], "?")
                ),
            },
            None => match s["last"].as_object() {
                Some(l) => outln!(
                    o,
                    "  last: {} → {} {}",
                    text(&l["from"], "-"),
                    text(&l["to"], "?"),
                    text(&l["outcome"], "?").replace('_', " ")
                ),
                None => outln!(o, "  never deployed by rollguard"),
            },
        }
        if let Some(l) = s["lock"].as_object() {
            outln!(
                o,
                "  locked by {}@{} pid {}: {}",
                text(&l["user"], "?"),
                text(&l["host"], "?"),
                l["pid"],
                text(&l["reason"], "")
            );
        }
        for i in s["instances"].as_array().into_iter().flatten() {
            outln!(
                o,
                "  {:<20} {:<16} live on {}",
                text(&i["instance"], "?"),
                text(&i["version"], "-"),
                text(&i["live_side"], "main")
            );
        }
    }
    emit(&o)
}

/// `rollguard history [APP] [--limit N] [--json]`. `fleet` (when the
/// config loads) lets a misspelt app be told apart from one never deployed.
pub fn history(fleet: Option<&Fleet>, db: &Location, args: &HistoryArgs) -> u8 {
    let mut o = String::new();
    let store = match open_for_reading(db) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let rows = match store.deployments(args.app.as_deref(), args.limit) {
        Ok(r) => r,
        Err(e) => return fail(&UserError::from(e)),
    };
    if let (Some(name), Some(fleet), true) = (&args.app, fleet, rows.is_empty())
        && let Err(e) = fleet.app_index(name)
    {
        return fail(&e);
    }
    let mut reports = Vec::new();
    for d in &rows {
        match report::read(&store, d.id) {
            Ok(Some(r)) => reports.push(r),
            Ok(None) => {}
            Err(e) => return fail(&e),
        }
    }
    if args.json {
        outln!(o, "{}", json!(reports));
        return emit(&o);
    }
    outln!(
        o,
        "{:>5}  {:<19}  {:<12} {:<8} {:<10} {:<10} {:<11} {:<16} {:<10} REASON",
        "ID",
        "STARTED",
        "APP",
        "KIND",
        "FROM",
        "TO",
        "STRATEGY",
        "OUTCOME",
        "BY"
    );
    for r in &reports {
        let d = &r.deployment;
        let started = local_time(d.started_at_ms);
        let reason = d.reason.as_deref().unwrap_or("-");
        let reason = if r.kind() == crate::model::DeploymentKind::Rollback {
            reason.strip_prefix("rollback: ").unwrap_or(reason)
        } else {
            reason
        };
        outln!(
            o,
            "{:>5}  {:<19}  {:<12} {:<8} {:<10} {:<10} {:<11} {:<16} {:<10} {}",
            d.id,
            started,
            printable(&d.app),
            r.kind().as_str(),
            printable(d.from_version.as_deref().unwrap_or("-")),
            printable(&d.to_version),
            d.strategy.as_str(),
            d.outcome.map_or(d.state.as_str(), Outcome::as_str),
            printable(&d.actor),
            printable(reason)
        );
        for c in &r.commands {
            outln!(
                o,
                "       {}  {} by {}{}",
                clock_time(c.at_ms),
                c.verb,
                printable(&c.actor),
                c.reason
                    .as_deref()
                    .map(|x| format!(": {}", printable(x)))
                    .unwrap_or_default()
            );
        }
    }
    emit(&o)
}

/// `rollguard rollback APP [--to ID|VERSION] --reason TEXT`: puts a
/// previous release back, health-checked like a deploy. Before anything
/// moves: the target must be a release rollguard knows, it must have been
/// healthy when it last ran, and its artifact must be present for every
/// instance; a major-version jump is a warning. A failed check stops it
/// unless `--force`.
pub async fn rollback(fleet: &Fleet, db: &Location, args: &RollbackArgs) -> u8 {
    match rollback_inner(fleet, db, args).await {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

async fn rollback_inner(
    fleet: &Fleet,
    db: &Location,
    args: &RollbackArgs,
) -> Result<u8, UserError> {
    let index = fleet.app_index(&args.app)?;
    consent::check(&args.app, fleet.apps[index].protected, &args.consent)?;
    if args.reason.trim().is_empty() {
        return Err(UserError::new(
            Code::Usage,
            "a rollback needs --reason TEXT",
        ));
    }
    let store = open(db)?;
    let req = RollbackRequest {
        app: args.app.clone(),
        to: args.to.clone(),
        force: args.force,
    };
    let check = service::check_rollback(fleet, &store, &req).await?;
    if !args.json || args.dry_run {
        let from: Vec<String> = check.current.iter().map(Version::to_string).collect();
        println!(
            "Rollback {} {} → {} (--to read as {})",
            args.app,
            if from.is_empty() {
                "-".into()
            } else {
                from.join(", ")
            },
            check.target,
            check.took
        );
        for c in &check.checks {
            println!(
                "  {} {}",
                if c.ok { "ok  " } else { "FAIL" },
                printable(&c.detail)
            );
        }
        for w in &check.warnings {
            println!("  warning: {w}");
        }
    }
    if let Some(refusal) = check.refusal() {
        return Err(refusal);
    }
    let req = service::rollback_request(&args.app, &check, &args.reason, lock::me());
    let ask = Ask {
        yes: args.consent.yes,
        dry_run: args.dry_run,
        detach: false,
        json: args.json,
    };
    launch(fleet, db, &req, Some(&check), ask).await
}

/// An app named nowhere (neither in `fleet` nor in the history) is a
/// misspelling, not an app with no rollout: `E_NO_ROLLOUT` becomes
/// `E_USAGE` with the apps there are. Other errors are returned as they are.
fn unknown_app(store: &Store, fleet: Option<&Fleet>, app: &str, e: UserError) -> UserError {
    if e.code != Code::NoRollout
        || fleet.is_some_and(|f| f.app(app).is_some())
        || store.knows_app(app).unwrap_or(true)
    {
        return e;
    }
    let configured = fleet
        .into_iter()
        .flat_map(|f| f.apps.iter().map(|a| a.name.clone()));
    match store.known_apps(configured) {
        Ok(known) => UserError::unknown_app(app, &known),
        Err(se) => UserError::from(se),
    }
}

/// `rollguard recover APP --resume|--rollback`: finishes a rollout whose
/// worker died (crash, `kill -9`, a reboot). Refused while the worker is
/// alive. The stale lock is broken (and that is recorded), a new worker
/// takes it, and this command follows it like `deploy` does.
pub async fn recover(fleet: Option<&Fleet>, db: &Location, args: &RecoverArgs) -> u8 {
    let mode = if args.resume {
        RecoverMode::Resume
    } else {
        RecoverMode::Rollback
    };
    let store = match open(db) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let (started, how) = match service::recover(db, &store, &args.app, mode, &lock::me()) {
        Ok(s) => s,
        Err(e) => return fail(&unknown_app(&store, fleet, &args.app, e)),
    };
    if !args.json {
        println!(
            "Recovering deployment {} of {} ({}), worker pid {}.",
            started.id,
            args.app,
            if how == RecoverMode::Resume {
                "resume"
            } else {
                "rollback"
            },
            started.worker_pid
        );
        if how != mode {
            println!(
                "Its rollback had started: it is carried on. A rollout that failed is never \
                 resumed forward (that would start the failed release again)."
            );
        }
    }
    follow(&store, &started, args.json).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_workers_last_error_is_read_from_its_log() {
        let dir = std::env::temp_dir().join(format!("rg-worker-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("7.log");
        std::fs::write(
            &log,
            "2026-12-02T10:00:00Z  INFO rollout started\n\
             2026-12-02T10:00:01Z ERROR E_STORE: could not record a change: database or disk is full\n\
             2026-12-02T10:00:01Z  INFO stopping\n",
        )
        .unwrap();
        let (code, line) = last_error(&log).unwrap();
        assert_eq!(code, Code::Store);
        assert!(line.ends_with("database or disk is full"), "{line}");
        std::fs::write(&log, "INFO all fine, E_NOT_A_CODE\n").unwrap();
        assert!(last_error(&log).is_none());
        assert!(last_error(&dir.join("none.log")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
