//! The rollout engine: carries out what [`decide`] says, stage by stage,
//! and reports what it saw back to it. It runs a [`Plan`]'s stages (drain,
//! snapshot, start, gate, traffic), undoes a failed batch for a retry, arms
//! a rollback and waits for the window or an operator, and restores what
//! it did in the order [`undo_steps`](super::decide::undo_steps) gives,
//! several slots at once (`restore.rs`). A slot whose probe fails leaves
//! traffic while its gate judges it, and while a rollback waits for a
//! person (`rest.rs`).
//!
//! This file holds the engine's state and its loop (`drive`: ask
//! [`decide`], carry the decision out, observe). The rest, a file each:
//! - `record.rs`: what the engine writes (events, changes before and after
//!   their effect, the deployment's, batches' and instances' states) and
//!   what a record it could not write means;
//! - `command.rs`: operators' commands and the worker's signals taken in;
//! - `stage.rs`: each kind of stage carried out (a batch, a start beside
//!   the old release, a switch, a canary step, the monitor, a retire),
//!   the pauses the plan asks for and `min_healthy`;
//! - `replace.rs`: a batch's slots replaced while the slots replaced
//!   before stay watched;
//! - `judge.rs`: the gates a stage waits on and their outcome;
//! - `rollback.rs`: a rollback armed, fired or left, the undo list rebuilt
//!   on recovery, and the end of a rollout;
//! - `restore.rs` and `rest.rs`, above.
//!
//! Write before act: each change (snapshot, start, stop, restore, routing)
//! is stored with state `started` before its side effect and updated to
//! `done` or `failed` after, so after a crash the store tells what may be
//! half done. Every decision (gate passed, gate failed, deadline, start
//! failed) is an event with its evidence. The engine runs in the detached
//! worker process (`rollguard worker`); commands from consoles and the CLI
//! (`approve`, `hold`, `fire`, `abort`, `pause`, `resume`) reach it through
//! the store.

mod command;
mod judge;
mod record;
mod replace;
mod rest;
mod restore;
mod rollback;
mod stage;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::decide::{
    Decision, Observation, Phase, Policy, State, decide, failed_stage, resume_from,
};
use super::gate::{self, GateSlot};
use super::plan::{Plan, Stage};
use super::routing::{self, Route};
use crate::config::{App, Fleet};
use crate::driver::{Driver, Side, Slot, Snapshot};
use crate::error::UserError;
use crate::exec::Executor;
use crate::model::event::EventKind;
use crate::model::{BatchState, DeploymentState};
use crate::probe::Prober;
use crate::store::Command;
use crate::store::Store;
use crate::traffic::Traffic;

pub use crate::model::{Outcome, Trigger};

/// A failure that asks for a rollback.
#[derive(Clone, Debug)]
struct Failure {
    trigger: Trigger,
    reason: String,
    evidence: Value,
}

/// What the engine did and must undo on a rollback, newest last.
#[derive(Clone, Debug)]
enum Undo {
    /// Routing was changed from `routes` with `live` sides.
    Routed { routes: Vec<Route>, live: Vec<Side> },
    /// `version` replaced what `snapshot` describes on (instance, side).
    Replaced {
        instance: usize,
        side: Side,
        snapshot: Option<Snapshot>,
    },
}

/// Messages from the worker's lock keeper to the engine. (A lock that is
/// no longer the worker's stops the engine where it stands: see
/// `worker.rs`.)
#[derive(Debug)]
pub enum Signal {
    /// An operator command.
    Command(Command),
}

/// Everything the engine needs, built by the worker.
pub struct Engine {
    fleet: Arc<Fleet>,
    app: usize,
    store: Rc<Store>,
    driver: Driver,
    traffic: Traffic,
    prober: Arc<Prober>,
    deployment: i64,
    plan: Plan,
    live: Vec<Side>,
    /// Each instance's live side when the rollout started.
    orig_live: Vec<Side>,
    routes: Vec<Route>,
    undo: Vec<Undo>,
    signals: mpsc::UnboundedReceiver<Signal>,
    cancel_tx: watch::Sender<bool>,
    cancel: watch::Receiver<bool>,
    /// Who aborted, and why.
    aborted: Option<(String, Option<String>)>,
    approved: bool,
    /// Where the rollout is, as [`decide`] sees it.
    state: State,
    /// The app's settings that steer [`decide`].
    policy: Policy,
    /// The failure being handled, once something failed.
    failure: Option<Failure>,
    /// Who sent the command that ended the last wait, and why.
    last_command: Option<(String, Option<String>)>,
    /// When an armed rollback fires by itself.
    window_end: Option<tokio::time::Instant>,
    /// The instances the rollback could not restore.
    unrestored: Vec<String>,
    /// A routing change could not be undone.
    traffic_unrestored: bool,
    /// Slots put back by the rollback under way.
    restored: Vec<GateSlot>,
    /// What every gate of this rollout saw of each slot.
    seen: gate::Seen,
    /// Slots taken out of traffic because their release failed a probe,
    /// each with the rounds seen of it then (see `rest.rs`).
    resting: Vec<(routing::Rested, u64)>,
    /// The first record of this rollout that could not be written: the
    /// rollout stops at the next safe point (`E_STORE`).
    store_error: std::sync::OnceLock<String>,
    /// What the balancer holds is not known (after a crash): the next
    /// traffic change states every server.
    routes_unknown: bool,
}

/// What `run` returns.
#[derive(Clone, Debug)]
pub struct Finished {
    /// How it ended.
    pub outcome: Outcome,
    /// The instances that could not be restored (partial rollback).
    pub unrestored: Vec<String>,
}

const ACTOR: &str = "rollguard";

/// A watch that something else ends (an approval of a manual step, a
/// batch's start under way) runs in windows this long (each window that
/// passes is recorded as a passed gate).
const OPEN_WATCH: Duration = Duration::from_secs(3600);

impl Engine {
    /// Builds an engine for deployment `deployment` of `fleet.apps[app]`.
    /// `live` is each instance's live side when the rollout starts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        fleet: Arc<Fleet>,
        app: usize,
        store: Store,
        driver: Driver,
        prober: Arc<Prober>,
        deployment: i64,
        plan: Plan,
        live: Vec<Side>,
        signals: mpsc::UnboundedReceiver<Signal>,
    ) -> Engine {
        let traffic = Traffic::new(&fleet.apps[app].traffic);
        let stages = plan.stages.len();
        let rollout = &fleet.apps[app].rollout;
        let policy = Policy {
            auto_rollback: rollout.auto_rollback,
            max_failed_batches: rollout.max_failed_batches,
        };
        let routes = routing::steady(&live);
        let (cancel_tx, cancel) = watch::channel(false);
        Engine {
            fleet,
            app,
            store: Rc::new(store),
            driver,
            traffic,
            prober,
            deployment,
            plan,
            orig_live: live.clone(),
            live,
            routes,
            undo: Vec::new(),
            signals,
            cancel_tx,
            cancel,
            aborted: None,
            approved: false,
            state: State::new(stages),
            policy,
            failure: None,
            last_command: None,
            window_end: None,
            unrestored: Vec::new(),
            traffic_unrestored: false,
            restored: Vec::new(),
            seen: gate::Seen::default(),
            resting: Vec::new(),
            store_error: std::sync::OnceLock::new(),
            routes_unknown: false,
        }
    }

    fn app(&self) -> &App {
        &self.fleet.apps[self.app]
    }

    fn slot(&self, instance: usize, side: Side) -> Slot<'_> {
        let app = &self.fleet.apps[self.app];
        let inst = &app.instances[instance];
        let host = self.fleet.host_of(inst);
        Slot {
            app,
            instance: inst,
            host,
            side,
        }
    }

    fn exec(&self, instance: usize) -> Option<Executor> {
        let inst = &self.app().instances[instance];
        self.prober.executors().get(&inst.host).cloned()
    }

    /// Runs the plan to the end: deployed, or rolled back.
    pub async fn run(self) -> Finished {
        self.set_state(DeploymentState::Running);
        self.event(
            EventKind::RolloutStarted {
                plan: serde_json::to_value(&self.plan).unwrap_or(Value::Null),
                strategy: serde_json::to_value(self.plan.strategy).unwrap_or(Value::Null),
            },
            None,
        );
        self.drive(Observation::Begin { from: 0 }).await
    }

    /// Picks up a deployment whose worker died: rebuilds what was done
    /// from the stored changes and snapshots, then rolls it all back
    /// (`resume = false`) or goes on from the stage that ran last (the one
    /// after it when it passed: [`resume_from`]). Records that cannot be
    /// read are an error (`E_STORE`): the deployment stays interrupted
    /// rather than be recovered from half of what it did.
    pub async fn recover(mut self, resume: bool) -> Result<Finished, UserError> {
        let unreadable = |e: crate::store::StoreError| {
            UserError::from(e)
                .hint("nothing was recovered; fix the history database, then run recover again")
        };
        self.rebuild_undo().map_err(unreadable)?;
        let batches = self.store.batches(self.deployment).map_err(unreadable)?;
        let states: Vec<Option<BatchState>> = batches.iter().map(|b| Some(b.state)).collect();
        let first_open = resume_from(&states);
        for stage in self.plan.stages.iter().take(first_open) {
            match stage {
                Stage::Switch => self.live = self.orig_live.iter().map(|s| s.other()).collect(),
                Stage::SwitchBatch { instances } => {
                    for &i in instances {
                        self.live[i] = self.orig_live[i].other();
                    }
                }
                _ => {}
            }
        }
        // Routing after a crash is unknown. Changes are computed from the
        // steady routing of the live sides, and the first one is applied
        // in full, whatever the balancer holds.
        self.routes = routing::steady(&self.live);
        self.routes_unknown = true;
        if !resume {
            // Nothing that runs the failed release (or that the dead
            // worker's rollback may have stopped) is taken to serve: an
            // instance comes back into traffic when it runs and passed its
            // gate.
            for slot in self.replaced_live_slots() {
                self.routes[slot.0].set(slot.1, None);
            }
        }
        self.event(
            EventKind::RecoveryStarted {
                mode: if resume { "resume" } else { "rollback" }.into(),
                from_stage: first_open,
                replaced: self.undo.len().saturating_sub(1),
            },
            None,
        );
        if resume {
            self.set_state(DeploymentState::Running);
            return Ok(self.drive(Observation::Begin { from: first_open }).await);
        }
        self.failure = Some(Failure {
            trigger: Trigger::Recovered,
            reason: "the rollout's worker stopped before the end; rolling back what it did".into(),
            evidence: json!({"from_stage": first_open}),
        });
        Ok(self.drive(Observation::Interrupted).await)
    }

    /// Carries out what [`decide`] says, observation by observation, until
    /// the rollout ends.
    async fn drive(mut self, first: Observation) -> Finished {
        let batch_ids = match self.store.batches(self.deployment) {
            Ok(b) => b.into_iter().map(|b| b.id).collect::<Vec<_>>(),
            Err(e) => {
                // Nothing moves without its records: the first stage stops.
                self.lost_record(format!("could not read the batches: {e}"));
                Vec::new()
            }
        };
        let stages = self.plan.stages.clone();
        // Where the undo stack stood when the running stage began.
        let mut mark = self.undo.len();
        let mut seen = first;
        loop {
            let before = self.state.phase;
            let (state, decision) = decide(self.state, &self.policy, seen);
            self.state = state;
            if matches!(
                decision,
                Decision::Arm | Decision::RollBack { .. } | Decision::LeaveAsIs
            ) && matches!(before, Phase::Running { .. } | Phase::Paused { .. })
            {
                self.record_failure();
            }
            seen = match decision {
                Decision::RunStage { stage } => {
                    if matches!(before, Phase::Paused { .. }) {
                        self.set_state(DeploymentState::Running);
                        let by = self.last_command.clone().map(|(a, _)| a);
                        self.event(
                            EventKind::Resumed {
                                next_stage: stage,
                                actor: by,
                            },
                            None,
                        );
                    }
                    mark = self.undo.len();
                    self.run_stage(stage, &stages[stage], &batch_ids).await
                }
                Decision::RetryStage { .. } => {
                    if let Some(f) = &self.failure {
                        self.event(
                            EventKind::BatchRetried {
                                trigger: f.trigger,
                                code: f.trigger.code().as_str().into(),
                                evidence: f.evidence.clone(),
                                failed_batches: self.state.failed_batches,
                            },
                            Some(&f.reason),
                        );
                    }
                    let unrestored = self.rollback_to(mark).await;
                    Observation::BatchUndone {
                        unrestored: unrestored.len(),
                    }
                }
                Decision::Pause { next } => {
                    self.set_state(DeploymentState::Paused);
                    let by = self.last_command.clone().map(|(a, _)| a);
                    self.event(
                        EventKind::PausedByOperator {
                            next_stage: next,
                            actor: by,
                        },
                        None,
                    );
                    self.next_command(None).await
                }
                Decision::Arm => self.arm().await,
                Decision::Wait => match self.state.phase {
                    Phase::Held if before == Phase::Armed => {
                        self.set_state(DeploymentState::RollbackHeld);
                        let (by, why) = self.last_command.clone().unwrap_or_default();
                        self.event_by(&by, EventKind::RollbackHeld, why.as_deref());
                        self.wait_watching(None).await
                    }
                    Phase::Held => self.wait_watching(None).await,
                    Phase::Armed => self.wait_watching(self.window_end).await,
                    _ => self.next_command(None).await,
                },
                Decision::RollBack { .. } => {
                    if matches!(before, Phase::Armed | Phase::Held) {
                        self.record_fired(seen);
                    }
                    self.roll_back().await
                }
                Decision::LeaveAsIs => {
                    // Reported only: traffic as the rollout planned it.
                    self.readmit_all().await;
                    return self.leave_as_is();
                }
                Decision::Finish(Outcome::Deployed) => {
                    self.readmit_all().await;
                    return self.finish_deployed();
                }
                Decision::Finish(outcome) => return self.finish_rollback(outcome),
                // Only while a stage runs (taken in `handle_signal`), or a
                // late observation: nothing to carry out here.
                Decision::CancelStage | Decision::Approve | Decision::Nothing => {
                    self.next_command(None).await
                }
            };
        }
    }

    /// Runs stage `i` (its batch: `batches[i]`) and says how it went. A
    /// failure is recorded on the batch whose instance failed
    /// ([`failed_stage`]): this one, or an earlier one whose instance went
    /// bad while this one ran (this one is then interrupted). The failure
    /// is kept for the events that follow.
    async fn run_stage(&mut self, i: usize, stage: &Stage, batches: &[i64]) -> Observation {
        let batch = batches.get(i).copied();
        self.drain_signals();
        if let Some(stop) = self.stop_for_lost_record() {
            return stop;
        }
        if let Some(f) = self.abort_failure() {
            self.failure = Some(f);
            return Observation::StageFailed {
                trigger: Trigger::Abort,
                retryable: false,
            };
        }
        self.set_batch_state(batch, BatchState::Running);
        let describe = stage.describe(self.app());
        self.event(
            EventKind::StageStarted {
                index: i,
                stage: serde_json::to_value(stage).unwrap_or(Value::Null),
                describe,
            },
            None,
        );
        match self.stage(i, stage, batch).await {
            Ok(()) => {
                self.set_batch_state(batch, BatchState::Passed);
                self.drain_signals();
                // A safe point: a lost record stops the rollout here.
                if let Some(stop) = self.stop_for_lost_record() {
                    return stop;
                }
                Observation::StagePassed
            }
            Err(f) => {
                let failed = failed_stage(&self.plan, i, &self.failed_instances(&f));
                if failed != i {
                    self.set_batch_state(batches.get(failed).copied(), BatchState::Failed);
                    self.set_batch_state(batch, BatchState::Interrupted);
                } else {
                    self.set_batch_state(batch, BatchState::Failed);
                }
                let seen = Observation::StageFailed {
                    trigger: f.trigger,
                    // Running this batch again cannot mend an earlier one.
                    retryable: failed == i && matches!(stage, Stage::Replace { .. }),
                };
                self.failure = Some(f);
                seen
            }
        }
    }
}
