//! Watching a fleet: starts the probe scheduler and one hub task that hands
//! every result to the console state (which keeps health verdicts and
//! sparklines) and to the history writer, and a task that reads each app's
//! releases and rollouts from the history every second (the rollout
//! workers write them there). Used by the console, the demo and the
//! headless demo alike.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Fleet;
use crate::error::{Code, UserError};
use crate::model::ErrorKind;
use crate::probe::{Prober, scheduler};
use crate::rollout::watch::read as read_rollouts;
use crate::store::Store;
use crate::store::writer::{ResultWriter, WriterStats};
use crate::tui::state::FleetState;

/// Counters of what the monitor has seen.
#[derive(Debug, Default)]
pub struct Counters {
    /// Probe runs finished.
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
}

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
    probes: JoinSet<()>,
    hub: tokio::task::JoinHandle<()>,
    rollouts: tokio::task::JoinHandle<()>,
}

/// How often the console reads the rollouts from the history.
pub const ROLLOUTS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Monitor {
    /// Opens the history at `db` and starts probing `fleet`.
    pub fn start(fleet: Arc<Fleet>, db: &Path) -> Result<Monitor, UserError> {
        let writer = ResultWriter::spawn(db.to_path_buf(), fleet.console.retention)
            .map_err(|e| UserError::new(Code::Store, e.message()).hint(e.hint()))?;
        let prober = Arc::new(Prober::new(&fleet).map_err(|e| UserError::new(Code::Exec, e))?);
        let state = Arc::new(Mutex::new(FleetState::new(fleet.clone())));
        let counters = Arc::new(Counters::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let probes = scheduler::spawn(fleet.clone(), prober.clone(), tx, shutdown_rx);
        let sender = writer.sender();
        let hub_state = state.clone();
        let hub_counters = counters.clone();
        let hub = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            while rx.recv_many(&mut batch, 256).await > 0 {
                {
                    let mut st = hub_state.lock().unwrap_or_else(|p| p.into_inner());
                    for r in &batch {
                        st.observe(r);
                    }
                }
                for r in batch.drain(..) {
                    hub_counters.probes.fetch_add(1, Ordering::Relaxed);
                    if let Some(kind) = r.error_kind {
                        hub_counters.failures.fetch_add(1, Ordering::Relaxed);
                        let i = ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                        hub_counters.failures_by_kind[i].fetch_add(1, Ordering::Relaxed);
                    }
                    sender.send(r);
                }
            }
        });
        let rollouts = tokio::spawn(watch_rollouts(
            fleet.clone(),
            db.to_path_buf(),
            state.clone(),
            shutdown.subscribe(),
        ));
        Ok(Monitor {
            fleet,
            state,
            counters,
            prober,
            writer,
            shutdown,
            probes,
            hub,
            rollouts,
        })
    }

    /// A receiver that turns true when the monitor stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The history writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    /// Stops probing, flushes history and closes SSH connections.
    pub async fn stop(mut self) -> WriterStats {
        let _ = self.shutdown.send(true);
        while self.probes.join_next().await.is_some() {}
        let _ = (&mut self.hub).await;
        let _ = (&mut self.rollouts).await;
        self.prober.executors().close().await;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.shutdown())
            .await
            .unwrap_or_default()
    }
}

/// Every [`ROLLOUTS_EVERY`] until `shutdown`: reads each app's releases and
/// rollouts into `state`. The history is opened on first use (the writer
/// creates it); a read that fails is tried again on the next round.
async fn watch_rollouts(
    fleet: Arc<Fleet>,
    db: PathBuf,
    state: Arc<Mutex<FleetState>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut store: Option<Store> = None;
    let mut tick = tokio::time::interval(ROLLOUTS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow_and_update() {
                    return;
                }
                continue;
            }
        }
        let (fleet, db, open) = (fleet.clone(), db.clone(), store.take());
        let read = tokio::task::spawn_blocking(move || {
            let s = match open {
                Some(s) => s,
                None => Store::open(&db).ok()?,
            };
            let rollouts = read_rollouts(&s, &fleet);
            Some((s, rollouts))
        })
        .await;
        if let Ok(Some((s, rollouts))) = read {
            store = Some(s);
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_rollouts(rollouts);
        }
    }
}
