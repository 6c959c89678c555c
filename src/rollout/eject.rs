//! Taking a slot that fails out of traffic while the engine is busy with
//! something it does not cut in half (a batch's start under way): the
//! watch that saw the failure does it at once, instead of leaving the
//! instance to answer errors until the start ends and the rollback begins.
//!
//! It holds its own handles (fleet, prober, and the engine's connection to
//! the history, shared: the watch runs in the engine's task, so the two
//! never use it at once), because the engine is borrowed by the work in
//! flight. It acts
//! only after the batch's drain is in force (the one traffic change that
//! work makes), so two changes never race on the balancer, and it records
//! before it acts, like every traffic change.

use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;

use super::routing::{self, Route};
use crate::config::Fleet;
use crate::driver::Side;
use crate::model::event::EventKind;
use crate::probe::Prober;
use crate::store::Store;
use crate::traffic::{Routing, Traffic};

/// What the engine lends a watch so that it can take a failing slot out.
pub struct Eject {
    /// The fleet.
    pub fleet: Arc<Fleet>,
    /// The app's index.
    pub app: usize,
    /// Its executors.
    pub prober: Arc<Prober>,
    /// The history to record the change in: the engine's own connection
    /// (the watch runs in the engine's task, one step at a time).
    pub store: Rc<Store>,
    /// The deployment the change belongs to.
    pub deployment: i64,
    /// The actor recorded.
    pub actor: &'static str,
    /// What serves once the drain is in force.
    pub routes: Vec<Route>,
    /// Whether the balancer's state is unknown (the change then states
    /// every server).
    pub routes_unknown: bool,
    /// Per instance, its other side when that still runs the old release
    /// and may take a failing side's traffic ([`routing::rest_failing`]).
    pub standby: Vec<Option<Side>>,
}

/// What came of it.
#[derive(Debug, PartialEq)]
pub enum Ejected {
    /// Nothing changed: the slot did not take traffic, it was the last one
    /// serving, or the change could not be recorded.
    Nothing,
    /// Traffic now follows these routes; the slot is out as `rested` says.
    Out(Vec<Route>, routing::Rested),
    /// The balancer failed mid-change: what it holds is not known.
    Unknown,
}

impl Eject {
    /// Takes `slot` out of traffic when something else still serves (its
    /// old side beside it, or another instance).
    pub async fn run(&self, slot: (usize, Side)) -> Ejected {
        let (to_routes, rested) = routing::rest_failing(&self.routes, &[slot], &[], &self.standby);
        let Some(rested) = rested.first().copied() else {
            return Ejected::Nothing;
        };
        let app = &self.fleet.apps[self.app];
        let from = if self.routes_unknown {
            Routing::default()
        } else {
            routing::to_routing(&self.fleet, app, &self.routes)
        };
        let to = routing::to_routing(&self.fleet, app, &to_routes);
        let name = &app.instances[slot.0].name;
        let reason = format!("{name} fails: out of traffic while the start under way ends");
        // Write before act: no record, no change.
        let store = &self.store;
        let changing = EventKind::TrafficChanging {
            to: serde_json::to_value(&to).unwrap_or(Value::Null),
        };
        let record = |event: &EventKind, reason: Option<&str>| {
            store.record(&app.name, Some(self.deployment), self.actor, reason, event)
        };
        if let Err(e) = record(&changing, Some(&reason)) {
            tracing::warn!("{name} stays in traffic: cannot record the change: {e}");
            return Ejected::Nothing;
        }
        let began = std::time::Instant::now();
        let traffic = Traffic::new(&app.traffic);
        match traffic
            .apply(&self.fleet, self.prober.executors(), &app.name, &from, &to)
            .await
        {
            Ok(()) => {
                let changed = EventKind::TrafficChanged {
                    elapsed_ms: began.elapsed().as_millis() as u64,
                    describe: Some(routing::describe(&to)),
                };
                if let Err(e) = record(&changed, None) {
                    tracing::warn!("could not record that {name} left traffic: {e}");
                }
                Ejected::Out(to_routes, rested)
            }
            Err(e) => {
                tracing::warn!("taking {name} out of traffic failed: {e}");
                Ejected::Unknown
            }
        }
    }
}
