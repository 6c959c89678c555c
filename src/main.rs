//! The `rollguard` command line: a thin layer over the library that parses
//! arguments, loads the config, and maps outcomes to exit codes
//! (0 ok, 1 unhealthy, 2 usage or config error).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::ArgValueCandidates;

use rollguard::config::{self, Fleet};
use rollguard::error::{Code, UserError};
use rollguard::model::Verb;
use rollguard::monitor::Monitor;
use rollguard::printable::printable;
use rollguard::probe::{Prober, probe_once};
use rollguard::store::{Location, LocationSource};
use rollguard::{audit, demo, rollout, tui};

/// Exit code: something is unhealthy.
const EXIT_UNHEALTHY: u8 = 1;
/// Exit code: usage or config error.
const EXIT_USAGE: u8 = 2;

/// What the demo's first screen says while its fleet starts.
const DEMO_SETTING_UP: [&str; 3] = [
    "rollguard · demo",
    "Setting up the demo: three apps of three instances each (release v1) start on loopback, behind nginx when it is installed…",
    "Ctrl-C stops it.",
];

#[derive(Parser)]
#[command(
    name = "rollguard",
    version,
    about = "A terminal console that watches a fleet's health and guards its rollouts.",
    after_help = "Without a command, opens the console on the configured fleet.\n\
Config: --config, else $ROLLGUARD_CONFIG, else ./rollguard.toml, else $XDG_CONFIG_HOME/rollguard/config.toml.\n\
Exit codes: 0 ok or deployed; 1 unhealthy (probe) or anything else; 2 usage or config error;\n3 the deploy failed and was rolled back; 4 the rollback failed or was partial; 5 locked."
)]
struct Cli {
    /// The fleet's config file.
    #[arg(long, global = true, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// Where the history is: an SQLite file (the default:
    /// $XDG_DATA_HOME/rollguard/history.db) or a postgres:// URL without a
    /// password; wins over $ROLLGUARD_DB and [store] url.
    #[arg(long, global = true, value_name = "FILE|URL", value_hint = clap::ValueHint::FilePath)]
    db: Option<String>,
    /// Console theme: a built-in (default, dark, light, high-contrast,
    /// mono), a file NAME.toml in themes/ beside the config or in
    /// $XDG_CONFIG_HOME/rollguard/themes, or a path; wins over NO_COLOR and
    /// [console] theme.
    #[arg(long, global = true, value_name = "NAME")]
    theme: Option<String>,
    /// Open the console only to watch: no key or `:` command acts (also
    /// `[console] read_only = true`).
    #[arg(long)]
    read_only: bool,
    /// Let the console take the mouse: a click selects a row, the wheel
    /// moves the selection (also `[console] mouse = true`). Off by
    /// default, so the terminal's own selection and copy work as usual.
    #[arg(long)]
    mouse: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a self-contained demo fleet on this machine, in the console.
    Demo {
        /// Run without the console and print a JSON summary at the end.
        #[arg(long)]
        headless: bool,
        /// With --headless: how long to run, e.g. 20s.
        #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = duration_arg)]
        duration: Duration,
    },
    /// Watch the fleet without a console: probe, judge, record history and
    /// incidents, log for journald; stops on SIGTERM.
    Agent(rollguard::agent::AgentArgs),
    /// Validate the config; print every error as FILE:LINE:COL.
    Check,
    /// Probe once and print the results.
    Probe {
        /// Only this app.
        #[arg(add = ArgValueCandidates::new(rollguard::completion::apps))]
        app: Option<String>,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Deploy VERSION of APP: a health-gated rollout that rolls back on failure.
    Deploy(rollout::cli::DeployArgs),
    /// Put a previous release of APP back, health-checked like a deploy.
    Rollback(rollout::cli::RollbackArgs),
    /// Approve the next manual step of APP's rollout.
    Approve(rollout::cli::VerbArgs),
    /// Hold APP's armed rollback (it then waits for `fire` or `abort`).
    Hold(rollout::cli::VerbArgs),
    /// Fire APP's armed rollback now.
    Fire(rollout::cli::GuardedVerbArgs),
    /// Abort APP's rollout and roll it back.
    Abort(rollout::cli::GuardedVerbArgs),
    /// Pause APP's rollout after the stage that runs (it waits for `resume`).
    Pause(rollout::cli::VerbArgs),
    /// Resume APP's paused rollout.
    Resume(rollout::cli::VerbArgs),
    /// Show rollouts in progress, locks and what runs where.
    Status(rollout::cli::StatusArgs),
    /// List past deployments and rollbacks, newest first.
    History(rollout::cli::HistoryArgs),
    /// Print the audit log of every app, oldest first; --follow goes on.
    Events(audit::EventsArgs),
    /// Availability, latency, outages, deployments, rollbacks and the
    /// time to recover, per app and instance over a window (default 24h).
    Report(rollguard::report::cli::ReportArgs),
    /// Write the Markdown timeline of an incident (ID) or a deployment
    /// (deployment:ID) to start a postmortem; times in UTC.
    Incident(rollguard::report::cli::IncidentArgs),
    /// Finish APP's rollout whose worker died: --resume or --rollback.
    Recover(rollout::cli::RecoverArgs),
    /// Notifications: `notify test NAME` sends a sample to one receiver.
    Notify(rollguard::notify::cli::NotifyArgs),
    /// The history itself: `store copy --from FILE --to postgres://...`
    /// moves a whole history into an empty store and checks the counts.
    Store(rollguard::store::cli::StoreArgs),
    /// Print the shell completion script for SHELL: subcommands, flags,
    /// apps (from the config and the history) and releases (from the
    /// history), asked of rollguard at each TAB.
    Completions {
        /// The shell.
        shell: rollguard::completion::Shell,
    },
    /// Print the manual page (roff), e.g. into
    /// /usr/local/share/man/man1/rollguard.1.
    Man,
    /// Runs one deployment to its end (started by `deploy`).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        deployment: i64,
        #[arg(long)]
        recover: Option<String>,
    },
    /// The demo's application server (started by `rollguard demo`).
    #[command(hide = true)]
    DemoApp(DemoAppArgs),
}

/// What `rollguard demo-app` takes (hidden; the demo starts it).
#[derive(clap::Args)]
struct DemoAppArgs {
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long)]
    port_file: Option<PathBuf>,
    #[arg(long)]
    heartbeat: Option<PathBuf>,
    #[arg(long)]
    flap: bool,
    #[arg(long, default_value = "v1")]
    version: String,
    #[arg(long)]
    parent: Option<u32>,
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    #[arg(long, value_parser = duration_arg)]
    fail_after: Option<Duration>,
    #[arg(long)]
    fail_requests: bool,
    /// Fail while this file exists.
    #[arg(long)]
    fail_if_exists: Option<PathBuf>,
    /// The share of made-up requests that fail (`/metrics`).
    #[arg(long)]
    error_ratio: Option<f64>,
    /// The instance it serves (for --flap-if and --heartbeat-dir).
    #[arg(long)]
    instance: Option<String>,
    /// Flap when serving this instance.
    #[arg(long)]
    flap_if: Option<String>,
    /// Write the heartbeat to DIR/INSTANCE.beat.
    #[arg(long)]
    heartbeat_dir: Option<PathBuf>,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    config::parse_duration(s)
}

fn main() -> ExitCode {
    // A TAB in a shell whose completion `rollguard completions` set up:
    // answer it and exit, before anything else is written.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(rollguard::completion::VAR)
        .complete();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rollguard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    if let Some(code) = misplaced_console_option(&cli) {
        return code;
    }
    match cli.command {
        Some(Cmd::Check) => check(cli.config.as_deref()),
        Some(Cmd::Completions { shell }) => completions(shell),
        Some(Cmd::Man) => man(),
        Some(Cmd::Agent(ref args)) => agent(&cli, args).await,
        Some(Cmd::Probe { ref app, json }) => probe(&cli, app.as_deref(), json).await,
        Some(Cmd::Demo { headless, duration }) => demo_cmd(&cli, headless, duration).await,
        Some(Cmd::DemoApp(ref args)) => demo_app(args).await,
        Some(Cmd::Deploy(ref args)) => match load_with_history(&cli) {
            Ok((fleet, db)) => ExitCode::from(rollout::cli::deploy(&fleet, &db, args).await),
            Err(code) => code,
        },
        Some(Cmd::Rollback(ref args)) => match load_with_history(&cli) {
            Ok((fleet, db)) => ExitCode::from(rollout::cli::rollback(&fleet, &db, args).await),
            Err(code) => code,
        },
        Some(Cmd::Approve(ref args)) => control(&cli, Verb::Approve, args),
        Some(Cmd::Hold(ref args)) => control(&cli, Verb::Hold, args),
        Some(Cmd::Fire(ref args)) => guarded(&cli, Verb::Fire, args),
        Some(Cmd::Abort(ref args)) => guarded(&cli, Verb::Abort, args),
        Some(Cmd::Pause(ref args)) => control(&cli, Verb::Pause, args),
        Some(Cmd::Resume(ref args)) => control(&cli, Verb::Resume, args),
        Some(Cmd::Status(ref args)) => match load_with_history(&cli) {
            Ok((fleet, db)) => ExitCode::from(rollout::cli::status(&fleet, &db, args).await),
            Err(code) => code,
        },
        // The config is optional here: with it, a misspelt app name is
        // told apart from an app never deployed.
        Some(Cmd::History(ref args)) => match optional_fleet_with_history(&cli) {
            Ok((fleet, db)) => ExitCode::from(rollout::cli::history(fleet.as_ref(), &db, args)),
            Err(code) => code,
        },
        // As for `history`: the config only tells a misspelt app apart.
        Some(Cmd::Events(ref args)) => match optional_fleet_with_history(&cli) {
            Ok((fleet, db)) => ExitCode::from(audit::events(fleet.as_ref(), &db, args).await),
            Err(code) => code,
        },
        // As for `history`: the config names the apps and instances to
        // report, and tells a misspelt app apart; the history suffices.
        Some(Cmd::Report(ref args)) => match optional_fleet_with_history(&cli) {
            Ok((fleet, db)) => {
                ExitCode::from(rollguard::report::cli::report(fleet.as_ref(), &db, args))
            }
            Err(code) => code,
        },
        Some(Cmd::Incident(ref args)) => match optional_fleet_with_history(&cli) {
            Ok((_, db)) => ExitCode::from(rollguard::report::cli::incident(&db, args)),
            Err(code) => code,
        },
        Some(Cmd::Store(ref args)) => ExitCode::from(rollguard::store::cli::store(args)),
        Some(Cmd::Notify(ref args)) => match load(cli.config.as_deref()) {
            Ok(fleet) => ExitCode::from(rollguard::notify::cli::notify(&fleet, args).await),
            Err(code) => code,
        },
        Some(Cmd::Recover(ref args)) => match optional_fleet_with_history(&cli) {
            Ok((fleet, db)) => {
                ExitCode::from(rollout::cli::recover(fleet.as_ref(), &db, args).await)
            }
            Err(code) => code,
        },
        Some(Cmd::Worker {
            deployment,
            ref recover,
        }) => worker(&cli, deployment, recover.as_deref()).await,
        None => console(&cli).await,
    }
}

/// `E_USAGE` when a console option (`--read-only`, `--mouse`) comes with
/// a command other than the console's and the demo's.
fn misplaced_console_option(cli: &Cli) -> Option<ExitCode> {
    let flag = match (cli.read_only, cli.mouse) {
        (true, _) => "--read-only",
        (false, true) => "--mouse",
        (false, false) => return None,
    };
    if matches!(cli.command, None | Some(Cmd::Demo { .. })) {
        return None;
    }
    eprintln!(
        "{}",
        UserError::new(Code::Usage, format!("{flag} is an option of the console")).hint(format!(
            "run `rollguard {flag}` (or `rollguard {flag} demo`)"
        ))
    );
    Some(ExitCode::from(EXIT_USAGE))
}

/// `rollguard demo-app`: one of the demo's application servers.
async fn demo_app(args: &DemoAppArgs) -> ExitCode {
    let flap = args.flap || (args.instance.is_some() && args.flap_if == args.instance);
    let heartbeat = args.heartbeat.clone().or_else(|| {
        let (dir, inst) = (args.heartbeat_dir.as_ref()?, args.instance.as_ref()?);
        Some(dir.join(format!("{inst}.beat")))
    });
    let opts = demo::server::ServerOptions {
        port: args.port,
        port_file: args.port_file.clone(),
        heartbeat,
        flap,
        version: args.version.clone(),
        parent: args.parent,
        latency_ms: args.latency_ms,
        fail_after: args.fail_after,
        fail_requests: args.fail_requests,
        fail_if_exists: args.fail_if_exists.clone(),
        error_ratio: args.error_ratio,
    };
    match demo::server::serve(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rollguard demo-app: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `rollguard worker`: runs one deployment to its end.
async fn worker(cli: &Cli, deployment: i64, recover: Option<&str>) -> ExitCode {
    init_worker_logging();
    let mode = match recover {
        None => rollout::worker::Mode::Run,
        Some(m) => match rollout::worker::Mode::parse(m) {
            Some(mode) => mode,
            None => {
                eprintln!(
                    "{}",
                    UserError::new(Code::Usage, "--recover is resume or rollback")
                );
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    // Its history is on its command line (a file) or in $ROLLGUARD_DB.
    let db = match history(cli, None) {
        Ok(db) => db,
        Err(code) => return code,
    };
    match rollout::worker::run(&db, deployment, mode).await {
        Ok(f) => ExitCode::from(f.outcome.exit_code()),
        Err(e) => {
            // Its log may be on a full disk: not a reason to panic.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{e}");
            ExitCode::FAILURE
        }
    }
}

async fn agent(cli: &Cli, args: &rollguard::agent::AgentArgs) -> ExitCode {
    if args.systemd_unit {
        print!("{}", rollguard::agent::UNIT);
        return ExitCode::SUCCESS;
    }
    rollguard::agent::init_logging();
    let (fleet, db) = match load_with_history(cli) {
        Ok((f, db)) => (Arc::new(f), db),
        Err(code) => return code,
    };
    match rollguard::agent::run(fleet, &db).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.code.exit_code())
        }
    }
}

/// The config when there is one that loads, for commands that work
/// without it: with it, a misspelt app name is told apart from an app with
/// nothing to do.
fn optional_fleet(cli: &Cli) -> Option<config::Fleet> {
    config::discover(cli.config.as_deref())
        .and_then(|p| config::load(&p))
        .ok()
}

fn control(cli: &Cli, verb: Verb, args: &rollout::cli::VerbArgs) -> ExitCode {
    match optional_fleet_with_history(cli) {
        Ok((fleet, db)) => ExitCode::from(rollout::cli::command(fleet.as_ref(), &db, verb, args)),
        Err(code) => code,
    }
}

/// `abort` and `fire`: the config says whether the app is protected.
fn guarded(cli: &Cli, verb: Verb, args: &rollout::cli::GuardedVerbArgs) -> ExitCode {
    match load_with_history(cli) {
        Ok((fleet, db)) => ExitCode::from(rollout::cli::guarded_command(&fleet, &db, verb, args)),
        Err(code) => code,
    }
}

fn init_worker_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLLGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The worker's standard error is its log file: no colour codes, and a
    // line that cannot be written (a full disk) is lost, not a panic.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .log_internal_errors(false)
        .try_init();
}

fn load(explicit: Option<&Path>) -> Result<Fleet, ExitCode> {
    let loaded = config::discover(explicit).and_then(|p| config::load(&p));
    loaded.map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// `rollguard completions SHELL`: the script that asks this program at
/// each TAB; it names the program as it was called (by its name: found on
/// the PATH then).
fn completions(shell: rollguard::completion::Shell) -> ExitCode {
    let called = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("rollguard"));
    // A relative path with a folder works only from here: made absolute.
    let completer = if called.components().count() > 1 && called.is_relative() {
        std::env::current_dir().map_or(called.clone(), |d| d.join(&called))
    } else {
        called
    };
    let written = rollguard::completion::script(shell, &completer.to_string_lossy())
        .and_then(|script| std::io::Write::write_all(&mut std::io::stdout(), &script));
    printed(written, "the completion script")
}

/// `rollguard man`: the manual page, from the same definition as the
/// parser.
fn man() -> ExitCode {
    let written = rollguard::manual::page(Cli::command())
        .and_then(|page| std::io::Write::write_all(&mut std::io::stdout(), &page));
    printed(written, "the manual page")
}

/// The exit code of writing `what` to standard output: 0, also when the
/// reader went away (`| head`).
fn printed(written: std::io::Result<()>, what: &str) -> ExitCode {
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "{}",
                UserError::new(Code::Terminal, format!("cannot write {what}: {e}"))
                    .hint("write it to a file the user can write, or to a pipe")
            );
            ExitCode::FAILURE
        }
    }
}

fn check(explicit: Option<&Path>) -> ExitCode {
    let fleet = match config::discover(explicit).and_then(|p| config::load(&p)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            if let config::LoadError::Invalid(errors) = &e {
                let n = errors.len();
                eprintln!(
                    "{}: {n} problem{} in the config: fix {} and run `rollguard check` again",
                    Code::Config,
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "it" } else { "them" },
                );
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if configured_history(&fleet).is_err() {
        return ExitCode::from(EXIT_USAGE);
    }
    let instances: usize = fleet.apps.iter().map(|a| a.instances.len()).sum();
    println!(
        "{}: ok: {} hosts, {} apps, {} instances, {} probes",
        printable(&fleet.source.display().to_string()),
        fleet.hosts.len(),
        fleet.apps.len(),
        instances,
        fleet.probe_count()
    );
    ExitCode::SUCCESS
}

async fn probe(cli: &Cli, only: Option<&str>, json: bool) -> ExitCode {
    let (fleet, db) = match load_with_history(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let apps: Vec<_> = match only {
        None => fleet.apps.iter().collect(),
        Some(name) => match fleet.app(name) {
            Some(a) => vec![a],
            None => {
                let names: Vec<_> = fleet.apps.iter().map(|a| a.name.as_str()).collect();
                eprintln!(
                    "{}",
                    UserError::new(
                        Code::Usage,
                        format!("no app named \"{name}\" in {}", fleet.source.display())
                    )
                    .hint(format!("apps: {}", names.join(", ")))
                );
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    let prober = match Prober::new(&fleet) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", UserError::new(Code::Exec, e));
            return ExitCode::FAILURE;
        }
    };
    // The side each instance serves on, as the history records it (none
    // recorded, or none readable: each on its `port`).
    let ports = rollguard::probe::scheduler::LivePorts::new(&fleet);
    if db.file().is_none_or(Path::exists)
        && let Ok(store) = rollguard::store::Store::open_read_only_at(&db)
    {
        let rollouts = rollguard::rollout::watch::read(&store, &fleet);
        let alt: Vec<&[String]> = rollouts.iter().map(|r| r.alt_live.as_slice()).collect();
        ports.set_recorded(&fleet, &alt);
    }
    let results = probe_once(&fleet, &prober, &apps, &ports).await;
    prober.executors().close().await;
    if json {
        let arr: Vec<_> = results.iter().map(|r| r.to_json()).collect();
        // A closed pipe ends the output; nothing else can fail here.
        let _ = rollguard::printable::write_stdout(&format!("{}\n", serde_json::Value::Array(arr)));
    } else {
        if let Err(e) = print_results(&results) {
            eprintln!(
                "{}",
                UserError::new(Code::Terminal, format!("cannot write the results: {e}"))
            );
            return ExitCode::FAILURE;
        }
    }
    if results.iter().all(|r| r.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    }
}

/// The results as a table on standard output.
fn print_results(results: &[rollguard::model::ProbeResult]) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut o = String::new();
    let w = |f: &dyn Fn(&rollguard::model::ProbeResult) -> usize, min: usize| {
        results.iter().map(f).max().unwrap_or(0).max(min)
    };
    let (wa, wi, wp) = (
        w(&|r| r.key.app.len(), 3),
        w(&|r| r.key.instance.len(), 8),
        w(&|r| r.key.probe.len(), 5),
    );
    let _ = writeln!(
        o,
        "{:wa$}  {:wi$}  {:wp$}  {:4}  {:>8}  {:5}  MESSAGE",
        "APP", "INSTANCE", "PROBE", "OK", "LATENCY", "CODE"
    );
    for r in results {
        let ok = match r.error_kind {
            None => "ok".to_string(),
            Some(k) => k.to_string(),
        };
        let _ = writeln!(
            o,
            "{:wa$}  {:wi$}  {:wp$}  {:4}  {:>6.1}ms  {:5}  {}",
            r.key.app,
            r.key.instance,
            r.key.probe,
            if r.ok { "yes" } else { "NO" },
            r.latency_ms,
            r.code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            // What an endpoint or a command answered: never raw.
            if r.ok {
                printable(&r.message).into_owned()
            } else {
                format!("{ok}: {}", printable(&r.message))
            },
        );
    }
    rollguard::printable::write_stdout(&o)
}

/// The config (see [`load`]) and the history (see [`history`]).
fn load_with_history(cli: &Cli) -> Result<(Fleet, Location), ExitCode> {
    let fleet = load(cli.config.as_deref())?;
    let db = history(cli, Some(&fleet))?;
    Ok((fleet, db))
}

/// The config when there is one that loads (see [`optional_fleet`]), and
/// the history (see [`history`]).
fn optional_fleet_with_history(cli: &Cli) -> Result<(Option<Fleet>, Location), ExitCode> {
    let fleet = optional_fleet(cli);
    let db = history(cli, fleet.as_ref())?;
    Ok((fleet, db))
}

/// Where the history is: `--db`, else `$ROLLGUARD_DB`, else `[store] url`
/// of `fleet`, else the default file. One that cannot be used is printed
/// (`E_USAGE` for `--db` and `$ROLLGUARD_DB`, `E_CONFIG` at its place for
/// `[store] url`) and its exit code returned; nothing is created.
fn history(cli: &Cli, fleet: Option<&Fleet>) -> Result<Location, ExitCode> {
    if let Some(db) = given_history(cli, true)? {
        return Ok(db);
    }
    match fleet {
        Some(fleet) => configured_history(fleet),
        None => Ok(Location::File(config::default_db_path())),
    }
}

/// The history given to this command: `--db`, else (when `environment`)
/// `$ROLLGUARD_DB`; `None` when neither is. An unusable one is printed as
/// `E_USAGE`.
fn given_history(cli: &Cli, environment: bool) -> Result<Option<Location>, ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    let (text, source) = match (&cli.db, environment.then(|| env("ROLLGUARD_DB")).flatten()) {
        (Some(text), _) => (text.clone(), LocationSource::CommandLine),
        (None, Some(text)) if !text.trim().is_empty() => (text, LocationSource::Environment),
        _ => return Ok(None),
    };
    Location::parse(&text, source, &env).map(Some).map_err(|e| {
        eprintln!("{}", UserError::new(Code::Usage, e.to_string()));
        ExitCode::from(EXIT_USAGE)
    })
}

/// The history `fleet`'s `[store] url` names, else the default file. An
/// unusable one is printed as `E_CONFIG` at its place in the config, its
/// message with the config's secrets masked.
fn configured_history(fleet: &Fleet) -> Result<Location, ExitCode> {
    let Some(url) = &fleet.store else {
        return Ok(Location::File(config::default_db_path()));
    };
    let env = |name: &str| std::env::var(name).ok();
    Location::parse(url.text(), LocationSource::Config, &env).map_err(|e| {
        let message = match fleet.apps.first() {
            Some(app) => app.secrets.mask(&e.message),
            None => e.message,
        };
        let at = url.error(format!("{}: {message}", e.source_words), None);
        eprintln!("{}", UserError::new(Code::Config, at.to_string()));
        ExitCode::from(EXIT_USAGE)
    })
}

/// The console's theme: `--theme`, else `mono` under `NO_COLOR`, else
/// `[console] theme` (see [`tui::Theme::pick`]); the error is for the
/// caller to print (exit code [`EXIT_USAGE`]).
fn theme(cli: &Cli, fleet: &Fleet) -> Result<tui::Theme, UserError> {
    let no_color = std::env::var_os("NO_COLOR");
    let name = tui::Theme::pick(
        cli.theme.as_deref(),
        &fleet.console.theme,
        no_color.as_deref(),
    );
    let dirs = tui::Theme::search_dirs(&fleet.source);
    tui::Theme::load(name, &dirs).map_err(|e| {
        UserError::new(Code::Config, e.to_string()).hint(format!(
            "built-in themes: {}; or a file NAME.toml in {}; or a path to a theme file",
            tui::BUILTIN_THEMES.join(", "),
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ))
    })
}

async fn console(cli: &Cli) -> ExitCode {
    let (fleet, db) = match load_with_history(cli) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let theme = match theme(cli, &fleet) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let opts = tui::RunOptions {
        theme,
        title: fleet.source.display().to_string(),
        read_only: cli.read_only || fleet.console.read_only,
        mouse: cli.mouse || fleet.console.mouse,
        ..tui::RunOptions::default()
    };
    let kind = rollguard::monitor::HolderKind::Console;
    watch_in_console(Arc::new(fleet), &db, kind, opts, None).await
}

/// Watches `fleet` in the console, its history at `db`. A screen shown
/// while the fleet was set up is handed over to the console, or given
/// back before an error is printed.
async fn watch_in_console(
    fleet: Arc<Fleet>,
    db: &Location,
    kind: rollguard::monitor::HolderKind,
    opts: tui::RunOptions,
    setting_up: Option<tui::SettingUp>,
) -> ExitCode {
    tui::init_logging();
    let monitor = match Monitor::start_as(fleet.clone(), db, kind) {
        Ok(m) => m,
        Err(e) => {
            drop(setting_up);
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = tui::RunOptions {
        db: Some(db.clone()),
        theme_dirs: tui::Theme::search_dirs(&fleet.source),
        ..opts
    };
    if let Some(s) = setting_up {
        s.hand_over();
    }
    let result = tui::run(
        fleet,
        monitor.state.clone(),
        opts,
        monitor.shutdown_signal(),
    )
    .await;
    monitor.stop().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: the terminal may be gone, and that panics.
            use std::io::Write;
            let e = UserError::new(Code::Terminal, e.to_string())
                .hint("run rollguard in an interactive terminal");
            let _ = writeln!(std::io::stderr(), "{e}");
            ExitCode::FAILURE
        }
    }
}

async fn demo_cmd(cli: &Cli, headless: bool, duration: Duration) -> ExitCode {
    // `--db`, else the demo's own file: never $ROLLGUARD_DB or a config's
    // `[store] url`, which may be a real fleet's history.
    let given = match given_history(cli, false) {
        Ok(given) => given,
        Err(code) => return code,
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "{}",
                UserError::new(Code::Demo, format!("cannot find the rollguard binary: {e}"))
            );
            return ExitCode::FAILURE;
        }
    };
    // Starting nine instances takes a moment: say so at once.
    let setting_up = (!headless).then(|| tui::SettingUp::show(&DEMO_SETTING_UP));
    let say = if headless {
        demo::receiver::Say::Stderr
    } else {
        demo::receiver::Say::Log
    };
    let demo = match demo::start(&exe, say).await {
        Ok(d) => d,
        Err(e) => {
            drop(setting_up);
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let fleet = match config::load(&demo.config) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            drop(setting_up);
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let db = given.unwrap_or_else(|| Location::File(demo.db.clone()));
    if !headless {
        let theme = match theme(cli, &fleet) {
            Ok(t) => t,
            Err(e) => {
                drop(setting_up);
                eprintln!("{e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let opts = tui::RunOptions {
            theme,
            title: "demo".into(),
            banner: Some(demo.banner()),
            read_only: cli.read_only || fleet.console.read_only,
            mouse: cli.mouse || fleet.console.mouse,
            ..tui::RunOptions::default()
        };
        let kind = rollguard::monitor::HolderKind::Demo;
        return watch_in_console(fleet, &db, kind, opts, setting_up).await;
    }
    headless_demo(fleet, &db, duration).await
}

/// `rollguard demo --headless`: the demo monitored for `duration` (or
/// until Ctrl-C), then a summary in JSON on standard output.
async fn headless_demo(fleet: Arc<Fleet>, db: &Location, duration: Duration) -> ExitCode {
    let monitor = match Monitor::start_as(fleet.clone(), db, rollguard::monitor::HolderKind::Demo) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let apps: Vec<_> = {
        let st = monitor.state.lock().unwrap_or_else(|p| p.into_inner());
        fleet
            .apps
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let (healthy, total) = st.tracker().healthy_count(i);
                serde_json::json!({
                    "name": a.name,
                    "status": st.tracker().app_status(i).as_str(),
                    "healthy": healthy,
                    "instances": total,
                })
            })
            .collect()
    };
    let counters = monitor.counters.clone();
    let stats = monitor.stop().await;
    let by_kind: serde_json::Map<_, _> = counters
        .failures_by_kind()
        .into_iter()
        .map(|(k, n)| (k.as_str().to_string(), serde_json::json!(n)))
        .collect();
    let summary = serde_json::json!({
        "duration_ms": started.elapsed().as_millis() as u64,
        "apps": apps,
        "probes_run": counters.probes.load(std::sync::atomic::Ordering::Relaxed),
        "failures_seen": counters.failures.load(std::sync::atomic::Ordering::Relaxed),
        "failures_by_kind": by_kind,
        "results_stored": stats.written,
    });
    println!("{summary}");
    ExitCode::SUCCESS
}
