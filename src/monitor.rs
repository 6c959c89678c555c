//! Watching a fleet: starts the probe scheduler and one hub task that hands
//! every result to the console state (which keeps health verdicts and
//! sparklines) and to the history writer. Used by the console, the demo and
//! the headless demo alike.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Fleet;
use crate::error::{Code, UserError};
use crate::model::ErrorKind;
use crate::probe::{Prober, scheduler};
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
}

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
        Ok(Monitor {
            fleet,
            state,
            counters,
            prober,
            writer,
            shutdown,
            probes,
            hub,
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
        self.prober.executors().close().await;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.shutdown())
            .await
            .unwrap_or_default()
    }
}
