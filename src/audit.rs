//! The audit log as people read it: `rollguard events` prints the events
//! of the history (every app's deployments, gates, rollbacks, locks and
//! operators' commands) oldest first, one line each for people or one
//! JSON object per line (JSON Lines) for programs, and with `--follow`
//! goes on printing what any process records until it is interrupted.
//!
//! It only reads: the history is opened with [`Store::open_read_only`], so
//! it works on a read-only file system and never creates the file. A
//! follower asks the history for rows newer than the last it has seen
//! every [`POLL_INTERVAL`] ([`Store::events_after`], a range of the
//! primary key), so an event is printed within a second of its writing by
//! whichever process wrote it. Every text that came from the history goes
//! through [`printable`]; JSON Lines escape it.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::clock::local_time;
use crate::config::{self, Fleet};
use crate::error::{Code, UserError};
use crate::model::event::EventKind;
use crate::model::evidence::GateOutcome;
use crate::model::{DeploymentKind, now_ms};
use crate::printable::printable;
use crate::store::Location;
use crate::store::{Event, Store, StoreError};

/// How often `--follow` asks the history for new events.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Events read per query while following; a burst is read page by page.
const POLL_PAGE: usize = 1000;

/// What stands for an event whose kind or payload this version cannot
/// read.
pub const UNREADABLE: &str = "(unreadable payload)";

/// `rollguard events` options.
#[derive(Clone, Debug, clap::Args)]
pub struct EventsArgs {
    /// Keep printing events as any process records them, until
    /// interrupted (Ctrl-C or SIGTERM).
    #[arg(long)]
    pub follow: bool,
    /// Only this app's events.
    #[arg(long, value_name = "APP", add = clap_complete::ArgValueCandidates::new(crate::completion::apps))]
    pub app: Option<String>,
    /// Only events recorded within DURATION before now, e.g. 30m, 1h, 2d.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub since: Option<Duration>,
    /// Print at most the newest N of the recorded events (with --follow,
    /// those printed before new ones).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Print JSON Lines: one JSON object per event and line.
    #[arg(long)]
    pub json: bool,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    config::parse_duration(s)
}

/// Which events to print.
#[derive(Clone, Copy, Debug)]
struct Filter<'a> {
    app: Option<&'a str>,
    since_ms: Option<i64>,
}

/// Why printing ends before the end of the log.
enum End {
    /// Interrupted, or nobody reads the output any more: not an error.
    Stopped,
    /// An error for the user.
    Failed(UserError),
}

impl From<UserError> for End {
    fn from(e: UserError) -> End {
        End::Failed(e)
    }
}

/// `rollguard events [--follow] [--app A] [--since D] [--limit N]
/// [--json]`; returns the exit code. `fleet` (when the config loads) lets
/// a misspelt app be told apart from one without events, as in `history`.
pub async fn events(fleet: Option<&Fleet>, db: &Location, args: &EventsArgs) -> u8 {
    match run(fleet, db, args).await {
        Ok(()) | Err(End::Stopped) => 0,
        Err(End::Failed(e)) => {
            eprintln!("{e}");
            e.code.exit_code()
        }
    }
}

async fn run(fleet: Option<&Fleet>, db: &Location, args: &EventsArgs) -> Result<(), End> {
    let since_ms = args
        .since
        .map(|d| now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let filter = Filter {
        app: args.app.as_deref(),
        since_ms,
    };
    let mut printer = Printer::new(args.json);
    if !args.follow {
        let Some(store) = open_existing(db)? else {
            check_app(fleet, filter.app)?;
            eprintln!("{}", crate::store::StoreError::no_history(db).message());
            return Ok(());
        };
        print_newest(&store, fleet, filter, args.limit, &mut printer)?;
        if printer.printed == 0 && !args.json {
            eprintln!("no events");
        }
        return Ok(());
    }
    let mut stop = Stop::listen();
    let store = match open_existing(db)? {
        Some(store) => store,
        None => {
            check_app(fleet, filter.app)?;
            wait_for_history(db, &mut stop).await?
        }
    };
    let cursor = print_newest(&store, fleet, filter, args.limit, &mut printer)?;
    follow(&store, filter, cursor, &mut printer, &mut stop).await
}

/// The history at `db` opened read-only, or `None` when there is no file.
fn open_existing(db: &Location) -> Result<Option<Store>, UserError> {
    match Store::open_read_only_at(db) {
        Ok(store) => Ok(Some(store)),
        Err(StoreError::NoHistory { .. }) => Ok(None),
        Err(e) => Err(UserError::from(e)),
    }
}

/// `E_USAGE` when the config loaded and has no app `app`.
fn check_app(fleet: Option<&Fleet>, app: Option<&str>) -> Result<(), UserError> {
    match (fleet, app) {
        (Some(fleet), Some(name)) => fleet.app_index(name).map(drop),
        _ => Ok(()),
    }
}

/// Waits until a history database appears at `db`, saying so once.
async fn wait_for_history(db: &Location, stop: &mut Stop) -> Result<Store, End> {
    eprintln!("no history yet at {}: waiting for it to appear", db);
    loop {
        if stop.wait(POLL_INTERVAL).await || stdout_closed() {
            return Err(End::Stopped);
        }
        if let Some(store) = open_existing(db)? {
            return Ok(store);
        }
    }
}

/// Prints the newest `limit` events that pass `filter`, oldest first;
/// returns the id to follow from (the newest event of the log, printed or
/// not).
fn print_newest(
    store: &Store,
    fleet: Option<&Fleet>,
    filter: Filter<'_>,
    limit: usize,
    printer: &mut Printer,
) -> Result<i64, End> {
    // Read first: an event written between the two reads is then printed
    // (it is among the newest) or followed, never lost.
    let last = store.last_event_id().map_err(UserError::from)?;
    let newest = store
        .newest_events(filter.app, filter.since_ms, limit)
        .map_err(UserError::from)?;
    if newest.is_empty() {
        check_app(fleet, filter.app)?;
    }
    printer.print(&newest)?;
    Ok(newest.last().map_or(last, |e| e.id.max(last)))
}

/// Prints the events recorded after `cursor` as they come, until
/// interrupted or nobody reads the output.
async fn follow(
    store: &Store,
    filter: Filter<'_>,
    mut cursor: i64,
    printer: &mut Printer,
    stop: &mut Stop,
) -> Result<(), End> {
    loop {
        if stop.wait(POLL_INTERVAL).await || stdout_closed() {
            return Err(End::Stopped);
        }
        // The newest id first: when nothing was written this is the only
        // read, and the cursor keeps up with events the filter skips.
        let last = store.last_event_id().map_err(UserError::from)?;
        while cursor < last {
            let page = store
                .events_after(cursor, filter.app, filter.since_ms, POLL_PAGE)
                .map_err(UserError::from)?;
            printer.print(&page)?;
            cursor = match page.last() {
                Some(e) if page.len() == POLL_PAGE => e.id,
                // Every matching row up to `last` was read (ids commit in
                // order), and any newer one read too.
                Some(e) => e.id.max(last),
                None => last,
            };
        }
    }
}

/// SIGINT and SIGTERM, caught while following so they end it with 0.
struct Stop {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

impl Stop {
    /// Catches SIGINT and SIGTERM from now on. A signal that cannot be
    /// caught keeps its default action: it still ends the process.
    fn listen() -> Stop {
        Stop {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Waits `d`; `true` when a signal came first.
    async fn wait(&mut self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => false,
            () = received(self.interrupt.as_mut()) => true,
            () = received(self.terminate.as_mut()) => true,
        }
    }
}

/// Returns when `signal` arrives; never without one.
async fn received(signal: Option<&mut Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether nobody can read standard output any more: the reader of its
/// pipe went away (`| head` ended), the terminal hung up, or it is not
/// open. Asked between polls, so a follower that has nothing new to print
/// still ends.
fn stdout_closed() -> bool {
    crate::host::stdout_hung_up()
}

/// Writes events to standard output, a line each, flushed per line.
struct Printer {
    json: bool,
    printed: usize,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer { json, printed: 0 }
    }

    /// Prints `events` (the column names before the first line of text).
    /// A closed output ends the command quietly.
    fn print(&mut self, events: &[Event]) -> Result<(), End> {
        let mut out = io::stdout().lock();
        for e in events {
            if !self.json && self.printed == 0 {
                writeln!(out, "{}", header()).map_err(output_error)?;
            }
            let line = if self.json {
                json_line(e)
            } else {
                text_line(e)
            };
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(output_error)?;
            self.printed += 1;
        }
        Ok(())
    }
}

/// A failed write to standard output: the end when nobody reads it (a
/// broken pipe), else an error.
fn output_error(e: io::Error) -> End {
    if e.kind() == io::ErrorKind::BrokenPipe {
        End::Stopped
    } else {
        End::Failed(UserError::new(
            Code::Terminal,
            format!("cannot write the events to standard output: {e}"),
        ))
    }
}

/// The column names of [`text_line`].
fn header() -> String {
    format!(
        "{:>6}  {:<19}  {:<12} {:>6}  {:<23} {:<10} WHAT",
        "ID", "TIME", "APP", "DEPLOY", "KIND", "ACTOR"
    )
}

/// One event as a line of text: id, local time, app, deployment (or
/// `-`), kind, actor, its [`summary`] and its reason. Every text from the
/// history is made [`printable`].
pub fn text_line(e: &Event) -> String {
    let what = what(e);
    let reason = printable(&reason_suffix(e)).into_owned();
    format!(
        "{:>6}  {:<19}  {:<12} {:>6}  {:<23} {:<10} {}{reason}",
        e.id,
        local_time(e.at_ms),
        printable(&e.app),
        e.deployment_id.map_or("-".to_string(), |d| d.to_string()),
        printable(&e.kind),
        printable(&e.actor),
        printable(&what),
    )
}

/// What `e` says: the [`summary`] of its payload, or [`UNREADABLE`] when
/// this version cannot read it. As stored: not yet printable.
pub fn what(e: &Event) -> String {
    match e.typed() {
        Ok(kind) => summary(&kind),
        Err(_) => UNREADABLE.to_string(),
    }
}

/// ` — REASON` when `e` has a reason, else nothing. As stored: not yet
/// printable.
pub fn reason_suffix(e: &Event) -> String {
    e.reason
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(|r| format!(" — {r}"))
        .unwrap_or_default()
}

/// One event of `--json`: a line of JSON Lines.
#[derive(Serialize)]
struct JsonEvent<'a> {
    id: i64,
    at: Option<String>,
    at_ms: i64,
    app: &'a str,
    deployment_id: Option<i64>,
    kind: &'a str,
    actor: &'a str,
    reason: Option<&'a str>,
    evidence: Option<&'a Value>,
}

/// One event as a JSON object on one line: `id`, `at` (RFC 3339, UTC),
/// `at_ms`, `app`, `deployment_id`, `kind`, `actor`, `reason` and
/// `evidence` (the stored payload). Control characters inside strings are
/// written as `\uXXXX` escapes, the ones JSON does not require escaped
/// (DEL, C1) too, so the line is safe on a terminal and reads back equal.
pub fn json_line(e: &Event) -> String {
    let doc = JsonEvent {
        id: e.id,
        at: chrono::DateTime::from_timestamp_millis(e.at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        at_ms: e.at_ms,
        app: &e.app,
        deployment_id: e.deployment_id,
        kind: &e.kind,
        actor: &e.actor,
        reason: e.reason.as_deref(),
        evidence: e.evidence.as_ref(),
    };
    let line = serde_json::to_string(&doc).unwrap_or_else(|err| {
        serde_json::json!({"id": e.id, "kind": e.kind, "error": err.to_string()}).to_string()
    });
    if !line.chars().any(char::is_control) {
        return line;
    }
    // Raw control characters can only be inside strings here (the line
    // has no whitespace between tokens), where an escape means the same.
    let mut out = String::with_capacity(line.len() + 12);
    for c in line.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// What an event says, in one line of words, from its typed payload: the
/// versions of a deploy, the stage that began, what a gate saw, the
/// instance restored, who sent a command. The kind and the reason are
/// printed beside it. Payload text is returned as stored: it is made
/// [`printable`] where it is printed.
pub fn summary(event: &EventKind) -> String {
    use EventKind as K;
    match event {
        K::DeployRequested {
            from,
            to,
            strategy,
            kind,
        } => deploy_summary(*kind, from.as_deref(), to, strategy),
        K::RollbackRequested { checks, forced } => rollback_request_summary(checks, *forced),
        K::LockTaken => "lock taken".into(),
        K::LockBroken { lock } => lock_summary(lock),
        K::LockReleased => "lock released".into(),
        K::LockLost => "the lock was taken from the rollout's worker, which stopped".into(),
        K::DeploymentSuperseded => "superseded by a later deployment".into(),
        K::RecoverRequested => "recovery requested".into(),
        K::RolloutStarted { plan, .. } => rollout_summary(plan),
        K::RecoveryStarted {
            mode,
            from_stage,
            replaced,
        } => format!(
            "recovery ({mode}) from stage {}, {replaced} slots replaced",
            from_stage + 1
        ),
        K::StageStarted {
            index, describe, ..
        } => format!("stage {}: {describe}", index + 1),
        K::TrafficChanging { .. } => "moving traffic".into(),
        K::TrafficChanged {
            elapsed_ms,
            describe,
        } => match describe {
            Some(split) => format!("{split} ({elapsed_ms} ms)"),
            None => format!("traffic moved ({elapsed_ms} ms)"),
        },
        K::TrafficSwitched { live, instances } => switch_summary(live, instances.as_deref()),
        K::GatePassed(o) | K::GateFailed(o) | K::DeadlineExceeded(o) => gate_summary(o),
        K::Paused { ms } => format!("pausing {}", duration_words(*ms)),
        K::WaitingApproval => "waiting for `rollguard approve`".into(),
        K::PausedByOperator { next_stage, actor } => format!(
            "paused{} before stage {}; `rollguard resume` goes on",
            by(actor.as_deref()),
            next_stage + 1
        ),
        K::Resumed { next_stage, actor } => {
            format!(
                "resumed{} at stage {}",
                by(actor.as_deref()),
                next_stage + 1
            )
        }
        K::BatchRetried {
            code,
            failed_batches,
            ..
        } => format!("{code}: batch undone to be tried again ({failed_batches} failed so far)"),
        K::RolloutFailed { trigger, code, .. } => format!("{code} ({trigger})"),
        K::RollbackArmed { .. }
        | K::RollbackFired
        | K::RollbackHeld
        | K::RollbackStarted { .. }
        | K::RollbackSkipped
        | K::RollbackTrafficFailed
        | K::InstanceRestored { .. }
        | K::InstanceNotRestored { .. }
        | K::RetireFailed
        | K::RollbackCompleted { .. }
        | K::RollbackFailed { .. } => rollback_summary(event),
        K::RolloutCompleted { version } => format!("deployed {version}"),
        K::CommandApprove(_)
        | K::CommandHold(_)
        | K::CommandFire(_)
        | K::CommandAbort(_)
        | K::CommandPause(_)
        | K::CommandResume(_) => match event.as_command() {
            Some((verb, sender)) => format!("{verb} sent by {}", sender.actor),
            None => "a command".into(),
        },
        K::IncidentOpened {
            incident,
            cause,
            evidence,
        } => format!(
            "incident {incident} opened ({}): {}",
            match cause {
                crate::model::incident::IncidentCause::Gate => "a rollout's gate failed",
                crate::model::incident::IncidentCause::Probe => "unhealthy",
            },
            failed_summary(evidence)
        ),
        K::IncidentWidened { incident, evidence } => {
            format!("incident {incident} widened: {}", failed_summary(evidence))
        }
        K::IncidentResolved {
            incident,
            outage_ms,
            instances,
            ..
        } => format!(
            "incident {incident} resolved after an outage of {} ({})",
            elapsed_words(*outage_ms),
            instances.join(", ")
        ),
        K::NotificationSent {
            receiver,
            notification,
            topic,
            attempts,
        } => format!(
            "{topic} sent to {receiver} (notification {notification}, {})",
            attempts_words(*attempts)
        ),
        K::NotificationFailed {
            receiver,
            notification,
            topic,
            attempts,
        } => format!(
            "{topic} NOT sent to {receiver}: given up (notification {notification}, {})",
            attempts_words(*attempts)
        ),
    }
}

/// "1 attempt", "3 attempts".
fn attempts_words(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

/// "health on web-1 (3 failures in a row, HTTP 500), tcp on web-2 (…)".
fn failed_summary(evidence: &[crate::model::evidence::Evidence]) -> String {
    let parts: Vec<String> = evidence
        .iter()
        .map(|e| {
            let mut what = vec![e.reason.clone().unwrap_or_else(|| "failed".into())];
            if let Some(s) = e.last_samples.last() {
                if let Some(code) = s.code {
                    what.push(format!("code {code}"));
                }
                if !s.message.is_empty() {
                    what.push(s.message.clone());
                }
            }
            format!("{} on {} ({})", e.probe, e.instance, what.join(", "))
        })
        .collect();
    if parts.is_empty() {
        "no probe named".into()
    } else {
        parts.join("; ")
    }
}

/// [`summary`] of a rollback's events.
fn rollback_summary(event: &EventKind) -> String {
    use EventKind as K;
    match event {
        K::RollbackArmed { fires_in_ms } => format!(
            "rollback fires in {} unless held",
            duration_words(*fires_in_ms)
        ),
        K::RollbackFired => "the armed rollback fired".into(),
        K::RollbackHeld => "the armed rollback is held".into(),
        K::RollbackStarted { code, .. } => format!("rolling back after {code}"),
        K::RollbackSkipped => "auto_rollback = \"off\": nothing was undone".into(),
        K::RollbackTrafficFailed => "traffic could not be put back".into(),
        K::InstanceRestored {
            instance,
            side,
            version,
        } => match version {
            Some(v) => format!("{instance} runs {v} again ({side} side)"),
            None => format!("stopped the new version on {instance} ({side} side)"),
        },
        K::InstanceNotRestored { instance, side } => {
            format!("could not restore {instance} ({side} side)")
        }
        K::RetireFailed => "could not stop an old side (reported only)".into(),
        K::RollbackCompleted { outcome, .. } => outcome.as_str().replace('_', " "),
        K::RollbackFailed {
            unrestored,
            outcome,
        } => match unrestored.as_slice() {
            [] => outcome.as_str().replace('_', " "),
            names => format!(
                "{}: not restored: {}",
                outcome.as_str().replace('_', " "),
                names.join(", ")
            ),
        },
        // `summary` sends only the events above.
        other => other.to_stored().0.replace('_', " "),
    }
}

/// " by ACTOR", or nothing.
fn by(actor: Option<&str>) -> String {
    actor.map(|a| format!(" by {a}")).unwrap_or_default()
}

/// Milliseconds as the config writes durations (`60s`, `2m`).
fn duration_words(ms: u64) -> String {
    config::format_duration(Duration::from_millis(ms))
}

/// A measured length in words: "3.8s", "4m 5s", "2h 10m".
fn elapsed_words(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

fn deploy_summary(kind: DeploymentKind, from: Option<&str>, to: &str, strategy: &Value) -> String {
    let versions = match from {
        Some(from) => format!("{from} → {to}"),
        None => to.to_string(),
    };
    match strategy.as_str() {
        Some(s) => format!("{kind} {versions} ({s})"),
        None => format!("{kind} {versions}"),
    }
}

/// A manual rollback's target and checks, from the stored checks.
fn rollback_request_summary(checks: &Value, forced: bool) -> String {
    let all = checks["checks"].as_array().map_or(&[][..], Vec::as_slice);
    let failed: Vec<&str> = all
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["check"].as_str().unwrap_or("?"))
        .collect();
    let target = match checks["target"].as_str() {
        Some(t) => format!("manual rollback to {t}"),
        None => "manual rollback".to_string(),
    };
    match (failed.as_slice(), forced) {
        ([], _) => format!("{target}: {} checks passed", all.len()),
        (names, true) => format!("{target}, forced past failed checks: {}", names.join(", ")),
        (names, false) => format!("{target}: checks failed: {}", names.join(", ")),
    }
}

/// Whose lock was broken, from the stored lock.
fn lock_summary(lock: &Value) -> String {
    match (lock["user"].as_str(), lock["host"].as_str()) {
        (Some(user), Some(host)) => match lock["pid"].as_i64() {
            Some(pid) => format!("broke the lock of {user}@{host} (pid {pid})"),
            None => format!("broke the lock of {user}@{host}"),
        },
        _ => "broke an abandoned lock".into(),
    }
}

/// The target and length of a plan, from the stored plan.
fn rollout_summary(plan: &Value) -> String {
    let stages = plan["stages"].as_array().map(Vec::len);
    match (plan["to"].as_str(), stages) {
        (Some(to), Some(n)) => format!("rollout of {to} started: {n} stages"),
        (Some(to), None) => format!("rollout of {to} started"),
        (None, _) => "rollout started".into(),
    }
}

fn switch_summary(live: &[crate::model::Side], instances: Option<&[String]>) -> String {
    match instances {
        Some(names) => format!("traffic switched to the new side of {}", names.join(", ")),
        None => {
            let sides: Vec<&str> = live.iter().map(|s| s.as_str()).collect();
            format!("traffic switched; live sides: {}", sides.join(", "))
        }
    }
}

/// What a gate saw: who was healthy, or which probe failed and why.
fn gate_summary(outcome: &GateOutcome) -> String {
    match outcome {
        GateOutcome::Passed { elapsed_ms, .. } => {
            let who = outcome.healthy_instances();
            let spent = outcome
                .budget_words()
                .map(|b| format!(" · {b}"))
                .unwrap_or_default();
            match who.as_slice() {
                [] => format!("passed ({elapsed_ms} ms){spent}"),
                names => format!("healthy: {} ({elapsed_ms} ms){spent}", names.join(", ")),
            }
        }
        GateOutcome::Failed { evidence } => {
            let why = evidence.reason.clone().unwrap_or_else(|| evidence.budget());
            format!("{} on {}: {why}", evidence.probe, evidence.instance)
        }
        GateOutcome::Deadline {
            deadline_ms,
            evidence,
        } => {
            let names: Vec<&str> = evidence.iter().map(|e| e.instance.as_str()).collect();
            format!(
                "not healthy within {}: {}",
                duration_words(*deadline_ms),
                names.join(", ")
            )
        }
        GateOutcome::Cancelled => "cancelled".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn incidents_read_as_what_failed_and_how_long_it_lasted() {
        use crate::model::evidence::{Evidence, Sample};
        let e = Evidence {
            instance: "web-1".into(),
            probe: "health".into(),
            reason: Some("2 failures in a row (threshold 2)".into()),
            last_samples: vec![Sample {
                at_ms: 0,
                ok: false,
                latency_ms: 1.0,
                code: Some(500),
                error_kind: Some("status".into()),
                message: "status 500".into(),
            }],
            ..Evidence::default()
        };
        let opened = summary(&EventKind::IncidentOpened {
            incident: 4,
            cause: crate::model::incident::IncidentCause::Gate,
            evidence: vec![e],
        });
        assert_eq!(
            opened,
            "incident 4 opened (a rollout's gate failed): health on web-1 \
             (2 failures in a row (threshold 2), code 500, status 500)"
        );
        let resolved = summary(&EventKind::IncidentResolved {
            incident: 4,
            opened_ms: 0,
            healthy_ms: 3_767,
            outage_ms: 3_767,
            instances: vec!["web-1".into(), "web-2".into()],
        });
        assert_eq!(
            resolved,
            "incident 4 resolved after an outage of 3.8s (web-1, web-2)"
        );
        assert_eq!(elapsed_words(245_000), "4m 5s");
        assert_eq!(elapsed_words(7_800_000), "2h 10m");
    }

    use super::*;
    use crate::model::event::Sender;
    use crate::model::evidence::Evidence;
    use crate::model::{Outcome, Side, Trigger};
    use serde_json::json;

    fn event(kind: &str, evidence: Option<Value>, reason: Option<&str>) -> Event {
        Event {
            id: 7,
            at_ms: 1_700_000_000_000,
            app: "checkout".into(),
            deployment_id: Some(3),
            kind: kind.into(),
            actor: "ana".into(),
            reason: reason.map(String::from),
            evidence,
        }
    }

    #[test]
    fn a_deploy_says_its_versions_and_strategy() {
        let e = EventKind::DeployRequested {
            from: Some("v1".into()),
            to: "v2".into(),
            strategy: json!("blue-green"),
            kind: DeploymentKind::Deploy,
        };
        assert_eq!(summary(&e), "deploy v1 → v2 (blue-green)");
        let first = EventKind::DeployRequested {
            from: None,
            to: "v1".into(),
            strategy: Value::Null,
            kind: DeploymentKind::Rollback,
        };
        assert_eq!(summary(&first), "rollback v1");
    }

    #[test]
    fn gates_restores_and_commands_say_what_happened() {
        let failed = EventKind::GateFailed(GateOutcome::Failed {
            evidence: Evidence {
                instance: "checkout-2".into(),
                probe: "health".into(),
                reason: Some("3 failures in a row".into()),
                ..Evidence::default()
            },
        });
        assert_eq!(
            summary(&failed),
            "health on checkout-2: 3 failures in a row"
        );
        let restored = EventKind::InstanceRestored {
            instance: "checkout-1".into(),
            side: Side::Main,
            version: Some("v1".into()),
        };
        assert_eq!(summary(&restored), "checkout-1 runs v1 again (main side)");
        let fire = EventKind::CommandFire(Sender { actor: "bo".into() });
        assert_eq!(summary(&fire), "fire sent by bo");
        let stage = EventKind::StageStarted {
            index: 0,
            stage: Value::Null,
            describe: "batch 1: checkout-1".into(),
        };
        assert_eq!(summary(&stage), "stage 1: batch 1: checkout-1");
        let armed = EventKind::RollbackArmed {
            fires_in_ms: 60_000,
        };
        assert_eq!(summary(&armed), "rollback fires in 1m unless held");
        let failed = EventKind::RolloutFailed {
            trigger: Trigger::GateFailed,
            code: Code::GateFailed.as_str().into(),
            evidence: Value::Null,
        };
        assert_eq!(
            summary(&failed),
            format!("{} (gate_failed)", Code::GateFailed.as_str())
        );
        let partial = EventKind::RollbackFailed {
            unrestored: vec!["checkout-3".into()],
            outcome: Outcome::RollbackPartial,
        };
        assert_eq!(
            summary(&partial),
            "rollback partial: not restored: checkout-3"
        );
    }

    #[test]
    fn an_unreadable_event_prints_its_kind_and_says_so() {
        let line = text_line(&event("teleported", Some(json!({"to": "mars"})), None));
        assert!(line.contains("teleported"), "{line}");
        assert!(line.ends_with(UNREADABLE), "{line}");
        let odd = text_line(&event("paused", Some(json!({"ms": "soon"})), None));
        assert!(odd.contains("paused") && odd.ends_with(UNREADABLE), "{odd}");
    }

    #[test]
    fn text_lines_show_control_characters_and_the_reason() {
        let e = event(
            "lock_taken",
            None,
            Some("ship \x1b]0;title\x07 it\x1b[2J\nforged"),
        );
        let line = text_line(&e);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains("lock taken — ship \\x1b]0;title\\x07 it"),
            "{line}"
        );
        assert!(line.contains("     3  lock_taken"), "{line}");
        let none = text_line(&Event {
            deployment_id: None,
            ..e
        });
        assert!(none.contains("     -  lock_taken"), "{none}");
    }

    #[test]
    fn json_lines_escape_every_control_character_and_read_back() {
        let reason = "a\x1b[2J\u{9b}31m\x7f";
        let e = event("lock_taken", None, Some(reason));
        let line = json_line(&e);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["reason"], reason);
        assert_eq!(v["id"], 7);
        assert_eq!(v["at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["deployment_id"], 3);
        assert_eq!(v["evidence"], Value::Null);
    }
}
