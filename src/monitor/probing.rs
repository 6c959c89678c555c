//! What runs while this process holds the prober's lease: the probe
//! scheduler (its results go to the hub), the release watch and the
//! incident watch. Started when the lease is taken, stopped when it is
//! lost or the monitor stops.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::{Ctx, incidents, releases};
use crate::model::now_ms;
use crate::probe::scheduler;
use crate::shutdown::Shutdown;

/// The running probe tasks.
pub(super) struct Probing {
    stop: watch::Sender<bool>,
    probes: JoinSet<()>,
    releases: JoinHandle<()>,
    incidents: JoinHandle<()>,
}

impl Probing {
    /// Starts probing `ctx`'s fleet now.
    pub(super) fn start(ctx: Arc<Ctx>) -> Probing {
        let (stop, rx) = watch::channel(false);
        let shutdown = Shutdown::new(rx.clone());
        let probes = scheduler::spawn(
            ctx.fleet.clone(),
            ctx.prober.clone(),
            ctx.ports.clone(),
            ctx.results.clone(),
            rx.clone(),
        );
        let releases = tokio::spawn(releases::watch_releases(
            ctx.fleet.clone(),
            ctx.db.clone(),
            ctx.state.clone(),
            ctx.prober.clone(),
            shutdown.clone(),
        ));
        let incidents = tokio::spawn(incidents::watch(ctx, now_ms(), shutdown));
        Probing {
            stop,
            probes,
            releases,
            incidents,
        }
    }

    /// Stops every task and waits for them.
    pub(super) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.probes.join_next().await.is_some() {}
        let _ = (&mut self.releases).await;
        let _ = (&mut self.incidents).await;
    }
}
