//! The release watch: learns which release runs on each instance (from
//! the app's driver, or from the versions rollguard recorded when the
//! driver cannot tell) and records a release seen healthy on every
//! instance as a good one. Runs only in the process that probes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{RELEASES_EVERY, ROLLOUTS_EVERY, SharedStore, with_store};
use crate::config::Fleet;
use crate::driver::{Driver, Side, Slot};
use crate::health::{ReleaseMarks, good_release};
use crate::model::{Verdict, Version, now_ms};
use crate::probe::Prober;
use crate::rollout::preflight::recorded_versions;
use crate::rollout::watch::AppRollouts;
use crate::shutdown::Shutdown;
use crate::state::FleetState;
use crate::store::Location;
use crate::store::{Store, StoreError};

/// How soon a failed reading or record of releases is tried again.
const RELEASES_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// A good release is recorded only from a reading at most this old; an
/// older one is read again first, so a release started by hand since is
/// never taken for the one read before.
const RELEASES_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// What the history says of an app's rollouts: one has not ended (running
/// or interrupted), or which one ended last (`None`: none ever ran). What
/// a reading of versions was taken under; it holds while this is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RolloutMark {
    Unsettled,
    Settled(Option<i64>),
}

impl RolloutMark {
    /// The mark of what the console last read (see [`read_rollouts`]).
    fn of(r: &AppRollouts) -> RolloutMark {
        match &r.active {
            Some(_) => RolloutMark::Unsettled,
            None => RolloutMark::Settled(r.last.as_ref().map(|l| l.id)),
        }
    }

    /// The mark of what the history says now, read as [`read_rollouts`]
    /// reads it.
    fn read(store: &Store, app: &str) -> Result<RolloutMark, StoreError> {
        if !store.unfinished_deployments(Some(app))?.is_empty() {
            return Ok(RolloutMark::Unsettled);
        }
        let last = store
            .deployments(Some(app), 5)?
            .into_iter()
            .find(|d| d.outcome.is_some());
        Ok(RolloutMark::Settled(last.map(|d| d.id)))
    }
}

/// Which release runs on each instance of an app (config order; `None`
/// where it is not known or nothing runs), as read under `rollouts` and
/// finished `at`.
struct Reading {
    versions: Vec<Option<Version>>,
    rollouts: RolloutMark,
    at: Instant,
}

/// The release watch's knowledge of one app.
struct AppReleases {
    /// `None` when the app's driver cannot be built or cannot tell what
    /// runs: the versions rollguard recorded are read instead.
    driver: Option<Driver>,
    reading: Option<Reading>,
    reading_now: bool,
    next_read: Instant,
    /// No record is tried before this (after a failed one).
    next_record: Instant,
    /// The good release last recorded, for the log.
    last_good: Option<Version>,
}

/// A reading that finished: the app, the mark it was taken under, the
/// versions, and what went wrong on the way.
type ReadDone = (usize, RolloutMark, Vec<Option<Version>>, Vec<String>);

/// How recording a good release went.
enum Recorded {
    Yes,
    /// The app's rollouts changed since its versions were read.
    Stale,
    Failed(String),
}

/// Until `shutdown`: learns which release runs on each instance (from the
/// app's driver, on the side the probes watch, or from the versions
/// rollguard recorded when the driver cannot tell) at start, every
/// [`RELEASES_EVERY`] and soon after a rollout of the app ends; and every
/// [`ROLLOUTS_EVERY`] records with [`Store::mark_release_healthy`] an app's
/// release that [`good_release`] finds good, at most once per release per
/// [`RELEASES_EVERY`] and only from a reading at most [`RELEASES_FRESH`]
/// old. Nothing is read or recorded while a rollout of the app has not
/// ended, nor from a reading older than its last rollout.
/// Readings run in their own tasks and the history in blocking tasks, so
/// neither probes nor the console wait; failures are logged and retried.
pub(super) async fn watch_releases(
    fleet: Arc<Fleet>,
    db: Location,
    state: Arc<Mutex<FleetState>>,
    prober: Arc<Prober>,
    mut shutdown: Shutdown,
) {
    let mut watch = Watch::new(fleet, db, state, prober);
    let mut tick = tokio::time::interval(ROLLOUTS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(done) = watch.reads.join_next_with_id(), if !watch.reads.is_empty() => {
                watch.read_done(done);
                continue;
            }
            _ = shutdown.wait() => return,
        }
        let due = watch.due();
        if due.is_empty() {
            continue;
        }
        watch.record(due).await;
    }
}

/// A good release to record: the app, the release, and the mark of the
/// reading that found it.
type Due = (usize, Version, RolloutMark);

/// What the release watch keeps between its rounds.
struct Watch {
    fleet: Arc<Fleet>,
    db: Location,
    state: Arc<Mutex<FleetState>>,
    prober: Arc<Prober>,
    apps: Vec<AppReleases>,
    marks: ReleaseMarks,
    store: SharedStore,
    /// The readings under way, and the app of each.
    reads: JoinSet<ReadDone>,
    reading_ids: HashMap<tokio::task::Id, usize>,
}

impl Watch {
    /// Nothing known yet: every app is read at once.
    fn new(
        fleet: Arc<Fleet>,
        db: Location,
        state: Arc<Mutex<FleetState>>,
        prober: Arc<Prober>,
    ) -> Watch {
        let start = Instant::now();
        let apps = fleet
            .apps
            .iter()
            .map(|a| AppReleases {
                driver: match Driver::for_app(a) {
                    Ok(d) if d.tells_current() => Some(d),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(app = %a.name, "the recorded versions stand in for the driver's: {e}");
                        None
                    }
                },
                reading: None,
                reading_now: false,
                next_read: start,
                next_record: start,
                last_good: None,
            })
            .collect();
        let marks = ReleaseMarks::new(fleet.apps.len(), RELEASES_EVERY);
        Watch {
            fleet,
            db,
            state,
            prober,
            apps,
            marks,
            store: SharedStore::default(),
            reads: JoinSet::new(),
            reading_ids: HashMap::new(),
        }
    }

    /// Takes in a reading that finished (or whose task failed), and when
    /// to read that app again.
    fn read_done(&mut self, done: Result<(tokio::task::Id, ReadDone), tokio::task::JoinError>) {
        let (a, read) = match done {
            Ok((id, (a, mark, versions, errors))) => {
                self.reading_ids.remove(&id);
                (a, Ok((mark, versions, errors)))
            }
            Err(e) => match self.reading_ids.remove(&e.id()) {
                Some(a) => (a, Err(e.to_string())),
                None => return,
            },
        };
        let w = &mut self.apps[a];
        w.reading_now = false;
        let errors = match read {
            Ok((mark, versions, errors)) => {
                w.reading = Some(Reading {
                    versions,
                    rollouts: mark,
                    at: Instant::now(),
                });
                errors
            }
            Err(e) => vec![e],
        };
        let again = if errors.is_empty() {
            RELEASES_EVERY
        } else {
            tracing::warn!(
                app = %self.fleet.apps[a].name,
                "cannot tell which release runs: {}",
                errors.join("; ")
            );
            RELEASES_RETRY
        };
        w.next_read = Instant::now() + again;
    }

    /// What the console knows now: each app's rollouts and verdicts
    /// (`None` for an app whose rollouts are not read yet).
    fn seen(&self) -> Vec<Option<(RolloutMark, Vec<Verdict>)>> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let t = st.tracker();
        (0..self.fleet.apps.len())
            .map(|a| {
                let mark = RolloutMark::of(st.rollouts(a)?);
                let verdicts = (0..t.instance_count(a))
                    .map(|i| t.instance_verdict(a, i))
                    .collect();
                Some((mark, verdicts))
            })
            .collect()
    }

    /// One round: drops readings a rollout made old, starts the readings
    /// that are due, and returns the good releases due to be recorded.
    fn due(&mut self) -> Vec<Due> {
        let now = Instant::now();
        let seen = self.seen();
        let mut due = Vec::new();
        for (a, w) in self.apps.iter_mut().enumerate() {
            let Some((mark, verdicts)) = &seen[a] else {
                continue;
            };
            if w.reading.as_ref().is_some_and(|r| r.rollouts != *mark) {
                // A rollout started or ended since: read again once it ends.
                w.reading = None;
                w.next_read = now;
            }
            if *mark == RolloutMark::Unsettled {
                continue;
            }
            if let Some(r) = &w.reading
                && let Some(v) = good_release(
                    r.versions
                        .iter()
                        .map(Option::as_ref)
                        .zip(verdicts.iter().copied()),
                )
                && now >= w.next_record
                && self.marks.due(a, v, now_ms())
            {
                if now.saturating_duration_since(r.at) <= RELEASES_FRESH {
                    due.push((a, v.clone(), r.rollouts));
                } else {
                    // Recorded once a reading confirms what runs.
                    w.next_read = w.next_read.min(now);
                }
            }
            if !w.reading_now && now >= w.next_read {
                w.reading_now = true;
                let task = self.reads.spawn(read_versions(
                    self.fleet.clone(),
                    a,
                    w.driver.clone(),
                    self.prober.clone(),
                    self.db.clone(),
                    self.store.clone(),
                    *mark,
                ));
                self.reading_ids.insert(task.id(), a);
            }
        }
        due
    }

    /// Records each of `due` as a good release in a blocking task, unless
    /// the app's rollouts changed since its reading; says so in the log.
    async fn record(&mut self, due: Vec<Due>) {
        let at_ms = now_ms();
        let (job_fleet, job_db, job_store) =
            (self.fleet.clone(), self.db.clone(), self.store.clone());
        let outcomes = tokio::task::spawn_blocking(move || {
            due.into_iter()
                .map(|(a, v, mark)| {
                    let name = &job_fleet.apps[a].name;
                    let outcome = with_store(&job_db, &job_store, |s| {
                        if RolloutMark::read(s, name).map_err(|e| e.message())? != mark {
                            return Ok(Recorded::Stale);
                        }
                        s.mark_release_healthy(name, v.as_str(), at_ms)
                            .map_err(|e| e.message())?;
                        Ok(Recorded::Yes)
                    })
                    .unwrap_or_else(Recorded::Failed);
                    (a, v, outcome)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (a, v, outcome) in outcomes {
            let (name, w) = (&self.fleet.apps[a].name, &mut self.apps[a]);
            match outcome {
                Recorded::Yes => {
                    self.marks.recorded(a, &v, at_ms);
                    if w.last_good.as_ref() != Some(&v) {
                        tracing::info!(app = %name, version = %v, "healthy on every instance: recorded as a good release");
                        w.last_good = Some(v);
                    }
                }
                // The console sees the new rollout within a second; the
                // reading is dropped then.
                Recorded::Stale => {}
                Recorded::Failed(e) => {
                    tracing::warn!(app = %name, version = %v, "cannot record a good release: {e}");
                    w.next_record = Instant::now() + RELEASES_RETRY;
                }
            }
        }
    }
}

/// Reads which release runs on each instance of app `app`: from `driver`
/// on the main side (the one the probes watch), one instance after the
/// other, or, without a driver that tells, from the versions rollguard
/// recorded.
async fn read_versions(
    fleet: Arc<Fleet>,
    app: usize,
    driver: Option<Driver>,
    prober: Arc<Prober>,
    db: Location,
    store: SharedStore,
    mark: RolloutMark,
) -> ReadDone {
    let a = &fleet.apps[app];
    let Some(driver) = driver else {
        let f = fleet.clone();
        let read = tokio::task::spawn_blocking(move || {
            with_store(&db, &store, |s| {
                recorded_versions(&f, app, s).map_err(|e| e.to_string())
            })
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        return match read {
            Ok(versions) => (app, mark, versions, Vec::new()),
            Err(e) => (app, mark, vec![None; a.instances.len()], vec![e]),
        };
    };
    let mut versions = Vec::with_capacity(a.instances.len());
    let mut errors = Vec::new();
    for inst in &a.instances {
        let (Some(host), Some(exec)) = (fleet.host(&inst.host), prober.executors().get(&inst.host))
        else {
            errors.push(format!("{}: no executor for host {}", inst.name, inst.host));
            versions.push(None);
            continue;
        };
        let slot = Slot {
            app: a,
            instance: inst,
            host,
            side: Side::Main,
        };
        match driver.current(exec, slot).await {
            Ok(v) => versions.push(v),
            Err(e) => {
                errors.push(e.to_string());
                versions.push(None);
            }
        }
    }
    (app, mark, versions, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::watch::read_app;

    /// The mark read from the history is the one the console's reading
    /// gives, before, during and after a rollout.
    #[test]
    fn rollout_marks_agree_with_what_the_console_reads() {
        let dir = std::env::temp_dir().join(format!("rg-monitor-marks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Store::open(&dir.join("history.db")).unwrap();
        let both = |s: &Store| {
            (
                RolloutMark::read(s, "web").unwrap(),
                RolloutMark::of(&read_app(s, "web")),
            )
        };
        let none = RolloutMark::Settled(None);
        assert_eq!(both(&s), (none, none));
        let id = s
            .create_deployment(
                "web",
                Some("v1"),
                "v2",
                crate::config::Strategy::Rolling,
                "ana",
                None,
                &serde_json::json!({}),
                &[],
            )
            .unwrap();
        let running = RolloutMark::Unsettled;
        assert_eq!(both(&s), (running, running));
        s.finish_deployment(
            id,
            crate::model::DeploymentState::Done,
            crate::model::Outcome::Deployed,
        )
        .unwrap();
        let ended = RolloutMark::Settled(Some(id));
        assert_eq!(both(&s), (ended, ended));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
