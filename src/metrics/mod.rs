//! `/metrics` for Prometheus: when `[metrics] listen` is set, the process
//! that holds the prober's lease serves what it sees of the fleet in
//! Prometheus' text format, as it runs the notifier and the event stream
//! (`monitor/lease.rs`).
//!
//! - `probes`: what the hub counts of each result (the last one, a
//!   latency histogram, failures per error kind), in a slot per (app,
//!   instance, probe) found by position: atomics, no lock, no allocation.
//! - `history`: deployments, rollbacks and incidents counted in the
//!   history every 10 s on a blocking task, kept for the scrapes.
//! - `exposition`: the text (pure).
//! - `serve`: the listener.
//!
//! A scrape copies the counts, the verdicts and the rollouts (the fleet
//! state's lock held only while copying), then writes the text, on a
//! blocking task: the probe pipeline does not wait for it. The text goes
//! out in pieces of 64 KiB as it is written, so a scrape of a large fleet
//! never holds the whole of it.

pub mod exposition;
pub mod history;
pub mod probes;
pub mod serve;

use std::sync::{Arc, Mutex};

pub use probes::{BUCKETS, ProbeCounters, ProbeCounts};
pub use serve::Server;

use crate::config::Fleet;
use crate::health::ProbeLoc;
use crate::state::FleetState;
use exposition::{AppSeries, InstanceSeries, ProbeSeries, RolloutSeries, Scrape};

/// rollguard's version, as `rollguard_build_info` says it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The text of one scrape of `fleet`, handed to `out` in pieces (see
/// [`exposition::render_pieces`]): `counters` as the hub counted, verdicts
/// and rollouts as `state` has them, `history` as last read.
pub fn scrape(
    fleet: &Fleet,
    state: &Mutex<FleetState>,
    counters: &ProbeCounters,
    history: &history::LastRead,
    out: &mut dyn FnMut(String),
) {
    let mut probes = Vec::with_capacity(fleet.probe_count());
    for (ai, a) in fleet.apps.iter().enumerate() {
        for (ii, i) in a.instances.iter().enumerate() {
            for (pi, p) in a.probes.iter().enumerate() {
                let loc = ProbeLoc {
                    app: ai,
                    instance: ii,
                    probe: pi,
                };
                probes.push(ProbeSeries {
                    app: &a.name,
                    instance: &i.name,
                    probe: &p.name,
                    kind: p.kind.type_name(),
                    counts: counters.read(loc),
                });
            }
        }
    }
    let (instances, apps) = health(fleet, state);
    let history = history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(Arc::clone);
    let scrape = Scrape {
        version: VERSION,
        probes,
        instances,
        apps,
        history: history.as_deref().map(Vec::as_slice),
    };
    exposition::render_pieces(&scrape, out);
}

/// Every instance's verdict and every app's health, releases and rollout,
/// copied from `state` under its lock.
fn health<'a>(
    fleet: &'a Fleet,
    state: &Mutex<FleetState>,
) -> (Vec<InstanceSeries<'a>>, Vec<AppSeries<'a>>) {
    let st = state.lock().unwrap_or_else(|p| p.into_inner());
    let tracker = st.tracker();
    let mut instances = Vec::new();
    let mut apps = Vec::with_capacity(fleet.apps.len());
    for (ai, a) in fleet.apps.iter().enumerate() {
        for (ii, i) in a.instances.iter().enumerate() {
            instances.push(InstanceSeries {
                app: &a.name,
                instance: &i.name,
                verdict: tracker.instance_verdict(ai, ii),
            });
        }
        let rollouts = st.rollouts(ai);
        let (healthy, total) = tracker.healthy_count(ai);
        apps.push(AppSeries {
            app: &a.name,
            status: tracker.app_status(ai),
            healthy,
            instances: total,
            releases: rollouts.map(|r| r.versions.clone()).unwrap_or_default(),
            rollout: rollouts
                .and_then(|r| r.active.as_ref())
                .map(|r| RolloutSeries {
                    deployment: r.id,
                    strategy: r.strategy,
                    state: r.state,
                    release: r.to.clone(),
                    stage: r.stage,
                    stages: r.stages,
                }),
        });
    }
    (instances, apps)
}
