//! `rollguard report` and `rollguard incident` on the command line: their
//! options, the history opened read-only (never created), an unknown app
//! or id told as `E_USAGE` with what exists, and the output written to
//! standard output (or, for `incident -o FILE`, to a file). Each returns
//! the process exit code.

use std::io::{self, Write};
use std::path::PathBuf;

use super::Since;
use super::availability::{self, AppReport};
use super::render::{self, Report};
use super::timeline::{self, Subject};
use crate::config::Fleet;
use crate::error::{Code, UserError};
use crate::model::now_ms;
use crate::store::Location;
use crate::store::{Store, StoreError};

/// `rollguard report` options.
#[derive(Clone, Debug, clap::Args)]
pub struct ReportArgs {
    /// Only this app.
    #[arg(add = clap_complete::ArgValueCandidates::new(crate::completion::apps))]
    pub app: Option<String>,
    /// The window: a length of time before now (30m, 24h, 7d) or an RFC
    /// 3339 time (2026-12-01T00:00:00Z).
    #[arg(long, value_name = "WHEN", default_value = "24h", value_parser = Since::parse)]
    pub since: Since,
    /// Print one JSON document (its shape is in the README).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV: a header, then a row per app and per instance.
    #[arg(long)]
    pub csv: bool,
}

/// `rollguard incident` options.
#[derive(Clone, Debug, clap::Args)]
pub struct IncidentArgs {
    /// The incident (12, incident:12) or deployment (deployment:7).
    #[arg(value_name = "ID", value_parser = Subject::parse)]
    pub subject: Subject,
    /// Write the Markdown to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Prints `e` and returns its exit code.
fn fail(e: &UserError) -> u8 {
    eprintln!("{e}");
    e.code.exit_code()
}

/// The history at `db` opened read-only; `None` when there is no file.
fn open_existing(db: &Location) -> Result<Option<Store>, UserError> {
    match Store::open_read_only_at(db) {
        Ok(store) => Ok(Some(store)),
        Err(StoreError::NoHistory { .. }) => Ok(None),
        Err(e) => Err(UserError::from(e)),
    }
}

/// `rollguard report [APP] [--since WHEN] [--json|--csv]`. `fleet` (when
/// the config loads) gives the apps and instances to report, even those
/// without results; an app only the history knows is reported too.
pub fn report(fleet: Option<&Fleet>, db: &Location, args: &ReportArgs) -> u8 {
    match run_report(fleet, db, args) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn run_report(fleet: Option<&Fleet>, db: &Location, args: &ReportArgs) -> Result<(), UserError> {
    let configured = |name: &str| fleet.and_then(|f| f.app(name));
    let Some(store) = open_existing(db)? else {
        if let (Some(name), Some(fleet)) = (&args.app, fleet)
            && configured(name).is_none()
        {
            return Err(UserError::unknown_app(name, &fleet_names(Some(fleet))));
        }
        eprintln!("{}", crate::store::StoreError::no_history(db).message());
        return Ok(());
    };
    let now = now_ms();
    let window = args.since.window(now);
    let mut apps: Vec<(String, bool)> = match &args.app {
        Some(name) if configured(name).is_some() => vec![(name.clone(), true)],
        Some(name) if store.knows_app(name).map_err(UserError::from)? => vec![(name.clone(), true)],
        Some(name) => {
            let names = store
                .known_apps(fleet_names(fleet))
                .map_err(UserError::from)?;
            return Err(UserError::unknown_app(name, &names));
        }
        None => fleet_names(fleet).into_iter().map(|n| (n, true)).collect(),
    };
    if args.app.is_none() {
        for a in store.history_apps().map_err(UserError::from)? {
            if !apps.iter().any(|(n, _)| *n == a) {
                // Only the history knows it: shown when it has something.
                apps.push((a, false));
            }
        }
    }
    let mut reports: Vec<AppReport> = Vec::new();
    for (app, always) in apps {
        // As health counts: a `skip` probe's no_data results are not.
        let uncounted = configured(&app)
            .map(|a| a.uncounted_probes())
            .unwrap_or_default();
        let history =
            availability::load(&store, &app, window, &uncounted).map_err(UserError::from)?;
        if !always && history.is_empty() {
            continue;
        }
        let instances: Vec<String> = configured(&app)
            .map(|a| a.instances.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        reports.push(availability::app_report(&app, &instances, &history, now));
    }
    let report = Report {
        since: args.since,
        window,
        apps: reports,
    };
    let text = if args.json {
        render::json(&report)
    } else if args.csv {
        render::csv(&report)
    } else {
        render::text(&report)
    };
    write_stdout(&text)
}

/// The config's app names, in its order.
fn fleet_names(fleet: Option<&Fleet>) -> Vec<String> {
    fleet
        .map(|f| f.apps.iter().map(|a| a.name.clone()).collect())
        .unwrap_or_default()
}

/// Writes `text` to standard output; a reader that went away (`| head`)
/// is not an error.
fn write_stdout(text: &str) -> Result<(), UserError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(UserError::new(
            Code::Terminal,
            format!("cannot write to standard output: {e}"),
        )),
        _ => Ok(()),
    }
}

/// `rollguard incident ID [-o FILE]`: the Markdown timeline of an
/// incident or a deployment.
pub fn incident(db: &Location, args: &IncidentArgs) -> u8 {
    match run_incident(db, args) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn run_incident(db: &Location, args: &IncidentArgs) -> Result<(), UserError> {
    let Some(store) = open_existing(db)? else {
        let e = timeline::unknown(args.subject);
        return Err(UserError::new(
            e.code,
            format!("{}: there is no history database at {}", e.message, db),
        )
        .hint("point --db at the history (or --config at the fleet whose history it is)"));
    };
    let markdown = timeline::timeline(&store, args.subject)?;
    match &args.output {
        None => write_stdout(&markdown),
        Some(path) => std::fs::write(path, markdown).map_err(|e| {
            UserError::new(
                Code::Usage,
                format!("cannot write the timeline to {}: {e}", path.display()),
            )
            .hint("name a file in a folder that exists and that you may write")
        }),
    }
}
