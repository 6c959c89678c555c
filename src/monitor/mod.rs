//! Watching a fleet. Of all the consoles, agents and demos open on one
//! history, the one that holds the prober's lease ([`lease`]) probes the
//! fleet: its scheduler's results go through one hub task to the fleet
//! state ([`crate::state`]: verdicts, sparklines) and the history writer, and it runs the
//! release watch (`releases`: which release runs, and which is good) and
//! the incident watch (`incidents`). Every other one probes nothing and
//! reads the results the holder writes (`reader`), so any number of
//! consoles add no load on the fleet and all show the same verdicts. Every
//! process reads each app's releases and rollouts from the history every
//! second (the rollout workers write them there). Used by the console, the
//! agent, the demo and the headless demo alike.

mod incidents;
pub mod lease;
mod probing;
mod reader;
mod releases;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::Fleet;
use crate::error::{Code, UserError};
use crate::metrics::ProbeCounters;
use crate::model::ErrorKind;
use crate::probe::Prober;
use crate::probe::scheduler::{LivePorts, ResultSender};
use crate::rollout::watch::read as read_rollouts;
use crate::shutdown::Shutdown;
use crate::state::FleetState;
use crate::store::Location;
use crate::store::Store;
use crate::store::writer::{ResultWriter, WriterStats};

use crate::state::Role;
pub use lease::HolderKind;

/// Counters of what the monitor has seen.
#[derive(Debug, Default)]
pub struct Counters {
    /// Probe results seen (probed here, or read from the history while
    /// another process probes).
    pub probes: AtomicU64,
    /// Of which failed.
    pub failures: AtomicU64,
    failures_by_kind: [AtomicU64; ErrorKind::ALL.len()],
}

impl Counters {
    /// Failures per error kind, omitting kinds never seen.
    pub fn failures_by_kind(&self) -> Vec<(ErrorKind, u64)> {
        ErrorKind::ALL
            .iter()
            .zip(&self.failures_by_kind)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Counts one result seen.
    fn count(&self, error_kind: Option<ErrorKind>) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = error_kind {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let i = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
            self.failures_by_kind[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// When an instance of each app last turned unhealthy (the time of the
/// result that did it), marked by the hub, which wakes the incident watch,
/// so no failure is missed between two of its looks.
#[derive(Debug, Default)]
struct Turns {
    at: Mutex<Vec<Option<i64>>>,
    wake: tokio::sync::Notify,
}

impl Turns {
    fn new(apps: usize) -> Turns {
        Turns {
            at: Mutex::new(vec![None; apps]),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn mark(&self, app: usize, at_ms: i64) {
        let mut at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = at.get_mut(app) {
            *slot = Some(slot.map_or(at_ms, |t| t.max(at_ms)));
        }
    }

    fn get(&self, app: usize) -> Option<i64> {
        let at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        at.get(app).copied().flatten()
    }
}

/// What the monitor's tasks share.
struct Ctx {
    fleet: Arc<Fleet>,
    db: Location,
    state: Arc<Mutex<FleetState>>,
    counters: Arc<Counters>,
    prober: Arc<Prober>,
    /// Where the scheduler sends its results: the hub.
    results: ResultSender,
    /// Instances turned unhealthy, for the incident watch.
    turns: Arc<Turns>,
    /// What the hub counts for `/metrics`.
    probe_counters: Arc<ProbeCounters>,
    /// The side each instance serves on, for the scheduler.
    ports: Arc<LivePorts>,
}

impl Ctx {
    fn state_mut(&self) -> MutexGuard<'_, FleetState> {
        // A task that panicked while holding the lock leaves usable data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

use crate::store::{SharedStore, with_store};

/// A running monitor. Call [`Monitor::stop`] to end it cleanly.
pub struct Monitor {
    /// The fleet being watched.
    pub fleet: Arc<Fleet>,
    /// Verdicts and recent samples, read by the console.
    pub state: Arc<Mutex<FleetState>>,
    /// What has been seen so far.
    pub counters: Arc<Counters>,
    prober: Arc<Prober>,
    writer: ResultWriter,
    shutdown: watch::Sender<bool>,
    role: watch::Receiver<Role>,
    lease: tokio::task::JoinHandle<()>,
    hub: tokio::task::JoinHandle<()>,
    rollouts: tokio::task::JoinHandle<()>,
}

/// How often the console reads the rollouts from the history.
pub const ROLLOUTS_EVERY: Duration = Duration::from_secs(1);

/// How often the monitor asks each app's driver which release runs on its
/// instances, and at most how often it records the same good release
/// again. It also asks at start and soon after a rollout of the app ends.
/// A release is good when every instance runs it and every instance's
/// verdict is healthy (`success_threshold` passes in a row).
pub const RELEASES_EVERY: Duration = Duration::from_secs(30);

impl Monitor {
    /// Opens the history at `db` and watches `fleet` as a console.
    pub fn start(fleet: Arc<Fleet>, db: &Location) -> Result<Monitor, UserError> {
        Monitor::start_as(fleet, db, HolderKind::Console)
    }

    /// Opens the history at `db` and watches `fleet` as a `kind`: reads the
    /// recent past, then probes while it holds the prober's lease and
    /// reads what the holder writes otherwise.
    pub fn start_as(
        fleet: Arc<Fleet>,
        db: &Location,
        kind: HolderKind,
    ) -> Result<Monitor, UserError> {
        let writer = ResultWriter::spawn(db, fleet.console.retention)
            .map_err(|e| UserError::new(Code::Store, e.message()).hint(e.hint()))?;
        let prober = Arc::new(Prober::new(&fleet).map_err(|e| UserError::new(Code::Exec, e))?);
        let state = Arc::new(Mutex::new(FleetState::new(fleet.clone())));
        let counters = Arc::new(Counters::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (tx, rx) = mpsc::unbounded_channel::<crate::model::ProbeResult>();
        let turns = Arc::new(Turns::new(fleet.apps.len()));
        let probe_counters = Arc::new(ProbeCounters::new(&fleet));
        let hub = tokio::spawn(hub(
            rx,
            Hub {
                state: state.clone(),
                counters: counters.clone(),
                turns: turns.clone(),
                probe_counters: probe_counters.clone(),
                writer: writer.sender(),
            },
        ));
        let ports = Arc::new(LivePorts::new(&fleet));
        let ctx = Arc::new(Ctx {
            fleet: fleet.clone(),
            db: db.clone(),
            state: state.clone(),
            counters: counters.clone(),
            prober: prober.clone(),
            results: tx,
            turns,
            probe_counters,
            ports: ports.clone(),
        });
        let (role_tx, role) = watch::channel(Role::Starting);
        let lease = tokio::spawn(lease::run(
            ctx,
            lease::me(kind, &fleet),
            role_tx,
            Shutdown::new(shutdown_rx),
        ));
        let rollouts = tokio::spawn(watch_rollouts(
            fleet.clone(),
            db.clone(),
            state.clone(),
            ports,
            Shutdown::new(shutdown.subscribe()),
        ));
        Ok(Monitor {
            fleet,
            state,
            counters,
            prober,
            writer,
            shutdown,
            role,
            lease,
            hub,
            rollouts,
        })
    }

    /// A receiver that turns true when the monitor stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// What this process does for the fleet now; changes are sent on it.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// The history writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Stops probing or reading, gives the lease up, flushes history and
    /// closes SSH connections.
    pub async fn stop(mut self) -> WriterStats {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.lease).await;
        let _ = (&mut self.rollouts).await;
        // The lease task held the last sender of the hub's channel.
        let _ = (&mut self.hub).await;
        self.prober.executors().close().await;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.shutdown())
            .await
            .unwrap_or_default()
    }
}

/// Where the hub hands each probe result.
struct Hub {
    state: Arc<Mutex<FleetState>>,
    counters: Arc<Counters>,
    turns: Arc<Turns>,
    probe_counters: Arc<ProbeCounters>,
    writer: crate::store::writer::ResultSender,
}

/// The hub: takes the results from `rx` a batch at a time into the fleet
/// state and `/metrics`' slots, marks the apps an instance of turned
/// unhealthy (and wakes the incident watch), counts them and hands them
/// to the history writer. Ends when every sender is gone.
async fn hub(mut rx: mpsc::UnboundedReceiver<crate::model::ProbeResult>, to: Hub) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut turned = false;
        {
            let mut st = to.state.lock().unwrap_or_else(|p| p.into_inner());
            for r in &batch {
                if let Some(loc) = st.locate(&r.key) {
                    to.probe_counters.record(loc, r);
                }
                if let Some(c) = st.observe(r)
                    && c.to == crate::model::Verdict::Unhealthy
                {
                    to.turns.mark(c.app, r.at_ms);
                    turned = true;
                }
            }
        }
        if turned {
            to.turns.wake.notify_one();
        }
        for r in batch.drain(..) {
            to.counters.count(r.error_kind);
            to.writer.send(r);
        }
    }
}

/// Every [`ROLLOUTS_EVERY`] until `shutdown`: reads each app's releases and
/// rollouts into `state`, and the side each instance serves on into
/// `ports`. The history is opened on first use (the writer creates it); a
/// read that fails is tried again on the next round.
async fn watch_rollouts(
    fleet: Arc<Fleet>,
    db: Location,
    state: Arc<Mutex<FleetState>>,
    ports: Arc<LivePorts>,
    mut shutdown: Shutdown,
) {
    let mut store: Option<Store> = None;
    let mut tick = tokio::time::interval(ROLLOUTS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if !shutdown.tick(&mut tick).await {
            return;
        }
        let (all, db, open) = (fleet.clone(), db.clone(), store.take());
        let read = tokio::task::spawn_blocking(move || {
            let s = match open {
                Some(s) => s,
                None => Store::open_at(&db).ok()?,
            };
            let rollouts = read_rollouts(&s, &all);
            Some((s, rollouts))
        })
        .await;
        if let Ok(Some((s, rollouts))) = read {
            store = Some(s);
            let alt: Vec<&[String]> = rollouts.iter().map(|r| r.alt_live.as_slice()).collect();
            ports.set_recorded(&fleet, &alt);
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_rollouts(rollouts);
        }
    }
}
