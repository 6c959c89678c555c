//! What the console reads from the history for the view shown, off the
//! draw and input path: the view says what it wants ([`Load`], from
//! [`App::wanted`](super::App::wanted)), the run loop has it read on a
//! blocking task at most about once a second, and what was read comes
//! back through the [`Queue`](super::Queue) as [`Loaded`]. The probe
//! results and the rollouts of the fleet view come from the monitor
//! instead; these are the records only some views show.

use crate::report::{HourBucket, Window, hourly_availability};
use crate::rollout::report::{self, DeploymentReport};
use crate::store::Location;
use crate::store::{Deployment, Event, Incident, Notification, Release, Store};

/// How many deployments the History view lists.
pub const HISTORY_ROWS: usize = 200;
/// How many events the Events view keeps.
pub const EVENTS_KEPT: usize = 2_000;

/// What a view wants read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Load {
    /// The newest deployments of every app (History).
    History,
    /// One deployment's report and its incident (a rollout, a "why").
    Report(ReportOf),
    /// Events newer than `after` (0: the newest [`EVENTS_KEPT`]).
    Events {
        /// The last event id already shown.
        after: i64,
    },
    /// An app's releases and recent deployments (the App view).
    AppRecords(String),
    /// The end of a deployment's worker log (the Logs view).
    WorkerLog(i64),
    /// The releases the history knows of these apps (completion).
    Releases(Vec<String>),
    /// These apps' hourly availability over the last 24 hours (History's
    /// chart), at this time.
    Availability {
        /// The apps, in fleet order, each with its probes whose `no_data`
        /// results are not counted.
        apps: Vec<(String, Vec<String>)>,
        /// Now, ms since the epoch.
        now_ms: i64,
    },
}

/// Which deployment's report to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportOf {
    /// This deployment.
    Id(i64),
    /// The newest deployment of this app, whatever its id (the Rollout
    /// view follows it).
    NewestOf(String),
}

/// An app's releases and deployments, as the App view shows them.
#[derive(Clone, Debug, Default)]
pub struct AppRecords {
    /// The app.
    pub app: String,
    /// Its releases, newest first.
    pub releases: Vec<Release>,
    /// The last release seen healthy everywhere.
    pub last_good: Option<String>,
    /// Its newest deployments, newest first.
    pub deployments: Vec<Deployment>,
    /// The release each instance runs, as rollguard last recorded it
    /// (instances it never deployed are not there).
    pub running: Vec<(String, String)>,
    /// Each receiver's newest notification about the app, by receiver.
    pub told: Vec<Notification>,
}

/// What was read.
#[derive(Clone, Debug)]
pub enum Loaded {
    /// The newest deployments, newest first.
    History(Vec<Deployment>),
    /// A deployment's report (`None`: there is no such deployment) and the
    /// incident it belongs to.
    Report {
        /// The deployment asked for.
        of: ReportOf,
        /// Its report.
        report: Option<Box<DeploymentReport>>,
        /// The incident opened during it, if one was.
        incident: Option<Incident>,
    },
    /// Events newer than those shown, oldest first.
    Events(Vec<Event>),
    /// An app's records.
    AppRecords(AppRecords),
    /// Each app's releases, newest first (completion).
    Releases(Vec<(String, Vec<String>)>),
    /// Each app's availability per hour, oldest first (History's chart),
    /// or why it could not be read.
    Availability {
        /// When it was read.
        at_ms: i64,
        /// Per app, in fleet order.
        apps: Result<Vec<(String, Vec<HourBucket>)>, String>,
    },
    /// The releases whose artifacts are on an app's hosts (completion).
    Available {
        /// The app.
        app: String,
        /// The releases.
        versions: Vec<String>,
    },
    /// The last lines of a deployment's worker log, made printable.
    WorkerLog {
        /// The deployment.
        id: i64,
        /// Its lines, oldest first (at most [`WORKER_LOG_LINES`]).
        lines: Vec<String>,
    },
}

/// The hours History's chart shows.
pub const CHART_HOURS: i64 = 24;

/// The window of History's chart at `now_ms`: the current hour and the
/// [`CHART_HOURS`] − 1 before it.
pub fn chart_window(now_ms: i64) -> Window {
    const HOUR: i64 = 3_600_000;
    let this_hour = now_ms - now_ms.rem_euclid(HOUR);
    Window {
        from_ms: this_hour - (CHART_HOURS - 1) * HOUR,
        to_ms: now_ms.max(this_hour + 1),
    }
}

/// How many lines of a worker's log the Logs view shows.
pub const WORKER_LOG_LINES: usize = 500;
/// How much of the end of a worker's log is read.
const WORKER_LOG_TAIL: u64 = 256 * 1024;

/// Reads what `load` asks from the history at `db`, opened read-only.
/// Blocking.
pub fn read(db: &Location, load: &Load) -> Result<Loaded, String> {
    let open = || Store::open_read_only_at(db).map_err(|e| e.message());
    Ok(match load {
        Load::WorkerLog(id) => Loaded::WorkerLog {
            id: *id,
            lines: worker_log(db, *id)?,
        },
        Load::History => Loaded::History(open()?.deployments(None, HISTORY_ROWS).map_err(err)?),
        Load::Report(of) => report_of(&open()?, of)?,
        Load::Events { after: 0 } => Loaded::Events(
            open()?
                .newest_events(None, None, EVENTS_KEPT)
                .map_err(err)?,
        ),
        Load::Events { after } => Loaded::Events(
            open()?
                .events_after(*after, None, None, EVENTS_KEPT)
                .map_err(err)?,
        ),
        // Only completion reads these: a failure leaves it without them
        // (and is logged), rather than showing as the view's error.
        Load::Releases(apps) => {
            let read = || releases(&open()?, apps);
            Loaded::Releases(read().unwrap_or_else(|e| {
                tracing::debug!("cannot read the releases for completion: {e}");
                Vec::new()
            }))
        }
        // A chart that cannot be read is logged and tried again soon; the
        // table goes on being read meanwhile.
        Load::Availability { apps, now_ms } => {
            let read = || -> Result<Vec<_>, String> {
                let store = open()?;
                let window = chart_window(*now_ms);
                apps.iter()
                    .map(|(app, uncounted)| {
                        let hours = hourly_availability(&store, app, window, uncounted);
                        Ok((app.clone(), hours.map_err(err)?))
                    })
                    .collect()
            };
            let apps = read();
            if let Err(e) = &apps {
                tracing::warn!("cannot read the availability chart: {e}");
            }
            Loaded::Availability {
                at_ms: *now_ms,
                apps,
            }
        }
        Load::AppRecords(app) => Loaded::AppRecords(app_records(&open()?, app)?),
    })
}

/// A store error in words.
fn err(e: crate::store::StoreError) -> String {
    e.message()
}

/// The report of the deployment `of` names (none when the app has none),
/// with its incident.
fn report_of(store: &Store, of: &ReportOf) -> Result<Loaded, String> {
    let id = match of {
        ReportOf::Id(id) => Some(*id),
        ReportOf::NewestOf(app) => store
            .deployments(Some(app), 1)
            .map_err(err)?
            .first()
            .map(|d| d.id),
    };
    let report = match id {
        Some(id) => report::read(store, id).map_err(|e| e.to_string())?,
        None => None,
    };
    let incident = match &report {
        Some(r) => incident_of(store, r).map_err(err)?,
        None => None,
    };
    Ok(Loaded::Report {
        of: of.clone(),
        report: report.map(Box::new),
        incident,
    })
}

/// The releases the history knows of each of `apps`, for completion.
fn releases(store: &Store, apps: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out = Vec::with_capacity(apps.len());
    for app in apps {
        let versions = store.releases(app).map_err(err)?;
        out.push((
            app.clone(),
            versions.into_iter().map(|r| r.version).collect(),
        ));
    }
    Ok(out)
}

/// What the app view shows of `app` from the history.
fn app_records(store: &Store, app: &str) -> Result<AppRecords, String> {
    let releases = store.releases(app).map_err(err)?;
    Ok(AppRecords {
        app: app.to_string(),
        last_good: store
            .last_good_release(app, None)
            .map_err(err)?
            .map(|r| r.version),
        releases,
        deployments: store.deployments(Some(app), 10).map_err(err)?,
        running: store
            .instance_states(app)
            .map_err(err)?
            .into_iter()
            .filter_map(|i| Some((i.instance, i.version?)))
            .collect(),
        // A history older than the outbox (read as it is) has none.
        told: if store.schema_version().map_err(err)? >= 3 {
            store.latest_notifications(app).map_err(err)?
        } else {
            Vec::new()
        },
    })
}

/// The incident a deployment belongs to: one recorded as opened during it,
/// else the app's incident open while it ran.
fn incident_of(
    store: &Store,
    r: &DeploymentReport,
) -> Result<Option<Incident>, crate::store::StoreError> {
    let r = &r.deployment;
    let incidents = store.incidents(Some(&r.app), 50)?;
    let end = r.ended_at_ms.unwrap_or(i64::MAX);
    Ok(incidents
        .iter()
        .find(|i| i.deployment_id == Some(r.id))
        .or_else(|| {
            incidents.iter().find(|i| {
                i.opened_ms <= end && i.resolved_ms.is_none_or(|res| res >= r.started_at_ms)
            })
        })
        .cloned())
}

/// The last lines of the worker log of deployment `id`, each made
/// printable without colour codes (a worker's log holds what drivers and
/// hosts printed).
fn worker_log(db: &Location, id: i64) -> Result<Vec<String>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let path = crate::rollout::service::worker_log(db, id);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(WORKER_LOG_TAIL);
    file.seek(SeekFrom::Start(from))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(WORKER_LOG_TAIL)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // cut in the middle
    }
    let skip = lines.len().saturating_sub(WORKER_LOG_LINES);
    Ok(lines[skip..]
        .iter()
        .map(|l| crate::printable::printable_uncoloured(l).into_owned())
        .collect())
}
