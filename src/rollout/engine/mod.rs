//! The rollout engine: carries out what [`decide`] says, stage by stage,
//! and reports what it saw back to it. It runs a [`Plan`]'s stages (drain,
//! snapshot, start, gate, traffic), undoes a failed batch for a retry, arms
//! a rollback and waits for the window or an operator, and restores what
//! it did in the order [`undo_steps`](super::decide::undo_steps) gives,
//! several slots at once (`restore.rs`). A slot whose probe fails leaves
//! traffic while its gate judges it, and while a rollback waits for a
//! person (`rest.rs`).
//!
//! Write before act: each change (snapshot, start, stop, restore, routing)
//! is stored with state `started` before its side effect and updated to
//! `done` or `failed` after, so after a crash the store tells what may be
//! half done. Every decision (gate passed, gate failed, deadline, start
//! failed) is an event with its evidence. The engine runs in the detached
//! worker process (`rollguard worker`); commands from consoles and the CLI
//! (`approve`, `hold`, `fire`, `abort`, `pause`, `resume`) reach it through
//! the store.

mod rest;
mod restore;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::decide::{
    Decision, Observation, Phase, Policy, State, decide, failed_stage, resume_from,
};
use super::eject::{Eject, Ejected};
use super::gate::{self, GateMode, GateOutcome, GateSlot};
use super::plan::{Plan, Stage};
use super::routing::{self, Route};
use crate::config::{App, Fleet, StepPause};
use crate::driver::{Driver, Side, Slot, Snapshot};
use crate::error::UserError;
use crate::exec::Executor;
use crate::model::event::EventKind;
use crate::model::{BatchState, ChangeAction, ChangeState, DeploymentState, Verb, Version, now_ms};
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
    store: Store,
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
            store,
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
        let host = self
            .fleet
            .host(&inst.host)
            .expect("config validation guarantees every instance's host exists");
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

    /// Records an event of this deployment. One that cannot be written
    /// stops the rollout at the next safe point.
    fn event(&self, event: EventKind, reason: Option<&str>) {
        self.event_by(ACTOR, event, reason);
    }

    /// [`Engine::event`] with the actor who caused it (an operator).
    fn event_by(&self, actor: &str, event: EventKind, reason: Option<&str>) {
        let app = self.app().name.clone();
        if let Err(e) = self
            .store
            .record(&app, Some(self.deployment), actor, reason, &event)
        {
            let (kind, _) = event.to_stored();
            self.lost_record(format!("could not record event {kind}: {e}"));
        }
    }

    /// Opens the app's incident for a failed gate (or widens the open
    /// one), tied to this deployment, so the failure and the outage it
    /// caused are one story.
    fn incident(&self, failed: &[crate::model::evidence::Evidence]) {
        let app = &self.app().name;
        let cause = crate::model::incident::IncidentCause::Gate;
        let opened = self
            .store
            .open_incident(app, Some(self.deployment), cause, failed, now_ms());
        match opened {
            Ok(crate::store::Opened::New(id)) => {
                tracing::warn!(app = %app, incident = id, "incident opened by a failed gate");
            }
            Ok(_) => {}
            Err(e) => self.lost_record(format!("could not record the incident: {e}")),
        }
    }

    /// Records a change of `instance` from release `from` to the plan's
    /// release, before it is made.
    fn try_change(
        &self,
        batch: Option<i64>,
        instance: usize,
        action: ChangeAction,
        from: Option<&str>,
        detail: Value,
    ) -> Result<i64, crate::store::StoreError> {
        let to = self.plan.to.to_string();
        self.try_change_to(batch, instance, action, from, Some(&to), detail)
    }

    /// [`Self::try_change`] to release `to`.
    fn try_change_to(
        &self,
        batch: Option<i64>,
        instance: usize,
        action: ChangeAction,
        from: Option<&str>,
        to: Option<&str>,
        detail: Value,
    ) -> Result<i64, crate::store::StoreError> {
        let name = self.app().instances[instance].name.clone();
        let detail = (!detail.is_null()).then_some(detail);
        self.store.record_change(
            self.deployment,
            batch,
            &name,
            action,
            from,
            to,
            ChangeState::Started,
            detail.as_ref(),
        )
    }

    fn change_done(&self, id: i64, state: ChangeState, detail: Value) {
        let detail = (!detail.is_null()).then_some(detail);
        if let Err(e) = self.store.set_change_state(id, state, detail.as_ref()) {
            self.lost_record(format!("could not record that a change is {state}: {e}"));
        }
    }

    /// Ends the deployment: the lock is released first, so whoever sees
    /// the outcome can deploy again at once.
    fn finish(&self, state: DeploymentState, outcome: Outcome) {
        let app = self.app().name.clone();
        if let Ok(true) = self.store.unlock(&app, &super::lock::me()) {
            self.event(EventKind::LockReleased, None);
        }
        if let Err(e) = self
            .store
            .finish_deployment(self.deployment, state, outcome)
        {
            self.lost_record(format!("could not record the end of the deployment: {e}"));
        }
    }

    /// Notes a record that could not be written: logged, and the rollout
    /// stops going forward at the next safe point (write before act).
    fn lost_record(&self, what: String) {
        // With its code: a follower that finds this worker gone reads it.
        tracing::error!("{}: {what}", crate::error::Code::Store);
        let _ = self.store_error.set(what);
    }

    /// At a safe point: the failure to report when a record was lost.
    fn stop_for_lost_record(&mut self) -> Option<Observation> {
        let f = self.store_failure()?;
        self.failure = Some(f);
        Some(Observation::StageFailed {
            trigger: Trigger::Store,
            retryable: false,
        })
    }

    /// The failure of a rollout that lost a record, if it did.
    fn store_failure(&self) -> Option<Failure> {
        self.store_error.get().map(|what| Failure {
            trigger: Trigger::Store,
            reason: format!("a record of the rollout could not be written ({what}); stopping here"),
            evidence: Value::Null,
        })
    }

    fn set_batch_state(&self, batch: Option<i64>, state: BatchState) {
        if let Some(b) = batch
            && let Err(e) = self.store.set_batch_state(b, state)
        {
            self.lost_record(format!("could not record batch {b} as {state}: {e}"));
        }
    }

    fn set_instance_state(&self, instance: &str, version: Option<&str>, side: Side) {
        let app = self.app().name.clone();
        if let Err(e) = self
            .store
            .set_instance_state(&app, instance, version, Some(side.as_str()))
        {
            self.lost_record(format!("could not record what {instance} runs: {e}"));
        }
    }

    fn set_state(&self, state: DeploymentState) {
        if let Err(e) = self.store.set_deployment_state(self.deployment, state) {
            self.lost_record(format!("could not record the deployment's state: {e}"));
        }
    }

    /// Reads pending signals without waiting. An abort cancels gates.
    fn drain_signals(&mut self) {
        while let Ok(sig) = self.signals.try_recv() {
            self.handle_signal(sig);
        }
    }

    /// Records a command and takes what [`decide`] makes of it while a
    /// stage runs: an abort cancels the stage's gates, an approval ends a
    /// manual step, a pause is taken after the stage.
    fn handle_signal(&mut self, sig: Signal) {
        let Some(verb) = self.record_signal(sig) else {
            return;
        };
        let (state, decision) = decide(self.state, &self.policy, Observation::Command(verb));
        self.state = state;
        match decision {
            Decision::CancelStage => {
                let _ = self.cancel_tx.send(true);
            }
            Decision::Approve => self.approved = true,
            _ => {}
        }
    }

    /// Records `sig` (a command as its sender's event) and returns the
    /// command's verb (one this version does not know never reaches the
    /// engine: the store leaves it out as it takes it).
    fn record_signal(&mut self, sig: Signal) -> Option<Verb> {
        match sig {
            Signal::Command(c) => {
                let verb = c.verb;
                self.event_by(
                    &c.actor,
                    EventKind::command(verb, &c.actor),
                    c.reason.as_deref(),
                );
                if verb == Verb::Abort && self.aborted.is_none() {
                    self.aborted = Some((c.actor.clone(), c.reason.clone()));
                }
                self.last_command = Some((c.actor, c.reason));
                Some(verb)
            }
        }
    }

    /// Waits for the next known command; `until` ends the wait as
    /// [`Observation::WindowEnded`].
    async fn next_command(&mut self, until: Option<tokio::time::Instant>) -> Observation {
        loop {
            let sleep = async {
                match until {
                    Some(end) => tokio::time::sleep_until(end).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = sleep => return Observation::WindowEnded,
                sig = self.signals.recv() => match sig {
                    Some(sig) => {
                        if let Some(verb) = self.record_signal(sig) {
                            return Observation::Command(verb);
                        }
                    }
                    // The poller is gone: nothing more can arrive.
                    None => {
                        if until.is_none() {
                            std::future::pending::<()>().await;
                        }
                        tokio::time::sleep_until(until.unwrap_or_else(tokio::time::Instant::now)).await;
                        return Observation::WindowEnded;
                    }
                },
            }
        }
    }

    fn abort_failure(&self) -> Option<Failure> {
        self.aborted.as_ref().map(|(actor, reason)| Failure {
            trigger: Trigger::Abort,
            reason: format!(
                "aborted by {actor}{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            evidence: json!({"actor": actor}),
        })
    }

    async fn apply_routes(&mut self, routes: Vec<Route>) -> Result<(), Failure> {
        let fleet = self.fleet.clone();
        let app = &fleet.apps[self.app];
        // Unknown routing (after a crash) is stated in full: an empty
        // `from` makes every server count as changed.
        let from = if self.routes_unknown {
            crate::traffic::Routing::default()
        } else {
            routing::to_routing(&fleet, app, &self.routes)
        };
        let to = routing::to_routing(&fleet, app, &routes);
        if from == to {
            return Ok(());
        }
        self.event(
            EventKind::TrafficChanging {
                to: serde_json::to_value(&to).unwrap_or(Value::Null),
            },
            None,
        );
        let began = std::time::Instant::now();
        match self
            .traffic
            .apply(&fleet, self.prober.executors(), &app.name, &from, &to)
            .await
        {
            Ok(()) => {
                self.routes = routes;
                self.routes_unknown = false;
                let elapsed_ms = began.elapsed().as_millis() as u64;
                self.event(
                    EventKind::TrafficChanged {
                        elapsed_ms,
                        describe: Some(routing::describe(&to)),
                    },
                    None,
                );
                Ok(())
            }
            Err(e) => Err(Failure {
                trigger: Trigger::Traffic,
                reason: e.to_string(),
                evidence: json!({"routing": to}),
            }),
        }
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

    /// The instances a failure's evidence names (by index): the failed
    /// probe's (a comparison names its new side's, comma-separated), a
    /// deadline's late ones, or the one whose start failed.
    fn failed_instances(&self, f: &Failure) -> Vec<usize> {
        let e = &f.evidence;
        let named: Vec<&Value> = match e.get("instances").and_then(Value::as_array) {
            Some(late) => late.iter().collect(),
            None => vec![e],
        };
        let app = self.app();
        named
            .iter()
            .filter_map(|x| x.get("instance").and_then(Value::as_str))
            .flat_map(|names| names.split(','))
            .filter_map(|n| app.instances.iter().position(|i| i.name == n.trim()))
            .collect()
    }

    /// Undo entries from the store: steady routing at the start, then one
    /// restore per slot that was started, with the first snapshot taken of
    /// that slot in this deployment (what ran before it).
    fn rebuild_undo(&mut self) -> Result<(), crate::store::StoreError> {
        self.undo.clear();
        self.undo.push(Undo::Routed {
            routes: routing::steady(&self.orig_live),
            live: self.orig_live.clone(),
        });
        let changes = self.store.changes(self.deployment)?;
        let snapshots = self.store.deployment_snapshots(self.deployment)?;
        let side_of = |v: &Value| match v["side"].as_str() {
            Some("alt") => Side::Alt,
            _ => Side::Main,
        };
        let mut seen: Vec<(usize, Side)> = Vec::new();
        for c in changes.iter().filter(|c| c.action == ChangeAction::Start) {
            let Some(i) = self
                .app()
                .instances
                .iter()
                .position(|x| x.name == c.instance)
            else {
                continue;
            };
            let side = c.detail.as_ref().map_or(Side::Main, side_of);
            if seen.contains(&(i, side)) {
                continue;
            }
            seen.push((i, side));
            let snapshot = snapshots
                .iter()
                .find(|s| s.instance == c.instance && side_of(&s.data) == side)
                .and_then(|s| serde_json::from_value::<Snapshot>(s.data["snapshot"].clone()).ok());
            self.undo.push(Undo::Replaced {
                instance: i,
                side,
                snapshot,
            });
        }
        Ok(())
    }

    /// Records what each instance runs and which side is live, as this
    /// rollout leaves them without a rollback: the next deploy plans from
    /// it.
    fn record_as_left(&self) {
        let app = self.app().name.clone();
        let to = self.plan.to.to_string();
        let known = self.store.instance_states(&app).unwrap_or_else(|e| {
            self.lost_record(format!("could not read what the instances ran: {e}"));
            Vec::new()
        });
        for (i, inst) in self.app().instances.iter().enumerate() {
            let side = self.live[i];
            let version = if self.started_at((i, side)).is_some() {
                Some(to.clone())
            } else {
                known
                    .iter()
                    .find(|k| k.instance == inst.name)
                    .and_then(|k| k.version.clone())
            };
            self.set_instance_state(&inst.name, version.as_deref(), side);
        }
    }

    fn finish_deployed(self) -> Finished {
        let app = self.app().name.clone();
        let to = self.plan.to.to_string();
        if let Err(e) = self.store.mark_release_healthy(&app, &to, now_ms()) {
            self.lost_record(format!("could not record {to} as healthy: {e}"));
        }
        for (i, inst) in self.app().instances.iter().enumerate() {
            self.set_instance_state(&inst.name, Some(&to), self.live[i]);
        }
        self.event(EventKind::RolloutCompleted { version: to }, None);
        self.finish(DeploymentState::Done, Outcome::Deployed);
        Finished {
            outcome: Outcome::Deployed,
            unrestored: Vec::new(),
        }
    }

    async fn stage(
        &mut self,
        index: usize,
        stage: &Stage,
        batch: Option<i64>,
    ) -> Result<(), Failure> {
        let last_replace = self
            .plan
            .stages
            .iter()
            .rposition(|s| matches!(s, Stage::Replace { .. }));
        match stage {
            Stage::Replace { instances } => {
                self.check_min_healthy(instances).await?;
                // Traffic first off the sides being replaced, so no request
                // meets a restart. Only those sides: a canary beside one of
                // them keeps its share until that instance is promoted.
                let before = self.routes.clone();
                let mut drained = before.clone();
                for &i in instances {
                    drained[i].set(self.live[i], None);
                }
                self.undo.push(Undo::Routed {
                    routes: before.clone(),
                    live: self.live.clone(),
                });
                let pairs = instances.iter().map(|&i| (i, self.live[i])).collect();
                self.replace_watched(batch, pairs, Some(drained)).await?;
                // The gate watches every live slot replaced so far, not only
                // this batch: a release that goes bad later is caught at the
                // next batch, not after the whole fleet runs it.
                let slots = self.replaced_live_slots();
                self.gate(&slots, self.deadline()).await?;
                // Back with the weight it had (1 if a canary step had taken
                // it all); a canary beside it leaves traffic now.
                let mut up = self.routes.clone();
                for &i in instances {
                    let live = self.live[i];
                    let weight = before[i].get(live).unwrap_or(1);
                    up[i] = Route::weights(live, Some(weight), None);
                }
                self.apply_routes(up).await?;
                if Some(index) != last_replace {
                    let pause = self.app().rollout.pause;
                    if !pause.is_zero() {
                        self.event(
                            EventKind::Paused {
                                ms: pause.as_millis() as u64,
                            },
                            None,
                        );
                        self.watch(&slots, pause).await?;
                    }
                }
                Ok(())
            }
            Stage::StartIdle { instances } => {
                let pairs = instances
                    .iter()
                    .map(|&i| (i, self.live[i].other()))
                    .collect();
                self.replace_watched(batch, pairs, None).await?;
                // The new idle sides, and (with surge) every live slot
                // switched to the new release so far.
                let mut slots: Vec<GateSlot> = instances
                    .iter()
                    .map(|&i| (i, self.live[i].other()))
                    .collect();
                slots.extend(self.replaced_live_slots());
                self.gate(&slots, self.deadline()).await
            }
            Stage::SwitchBatch { instances } => {
                self.undo.push(Undo::Routed {
                    routes: self.routes.clone(),
                    live: self.live.clone(),
                });
                let mut routes = self.routes.clone();
                let mut live = self.live.clone();
                for &i in instances {
                    // From the side at the start, so a resume does not
                    // switch back.
                    live[i] = self.orig_live[i].other();
                    routes[i] = Route::on(live[i]);
                }
                self.apply_routes(routes).await?;
                self.live = live;
                let names: Vec<String> = instances
                    .iter()
                    .map(|&i| self.app().instances[i].name.clone())
                    .collect();
                self.event(
                    EventKind::TrafficSwitched {
                        live: self.live.clone(),
                        instances: Some(names),
                    },
                    None,
                );
                let last_switch = self
                    .plan
                    .stages
                    .iter()
                    .rposition(|s| matches!(s, Stage::SwitchBatch { .. }));
                let pause = self.app().rollout.pause;
                if Some(index) != last_switch && !pause.is_zero() {
                    self.event(
                        EventKind::Paused {
                            ms: pause.as_millis() as u64,
                        },
                        None,
                    );
                    let slots = self.replaced_live_slots();
                    self.watch(&slots, pause).await?;
                }
                Ok(())
            }
            Stage::Shift { percent } => {
                let canary: Vec<usize> = self
                    .plan
                    .stages
                    .iter()
                    .find_map(|s| match s {
                        Stage::StartIdle { instances } => Some(instances.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                self.undo.push(Undo::Routed {
                    routes: self.routes.clone(),
                    live: self.live.clone(),
                });
                let routes = routing::canary(&self.live, &canary, *percent);
                self.apply_routes(routes).await?;
                let slots: Vec<GateSlot> =
                    canary.iter().map(|&i| (i, self.live[i].other())).collect();
                match self.app().rollout.step_pause {
                    StepPause::After(d) => self.watch(&slots, d).await,
                    StepPause::Manual => self.wait_for_approval(&slots).await,
                }
            }
            Stage::Switch => {
                self.undo.push(Undo::Routed {
                    routes: self.routes.clone(),
                    live: self.live.clone(),
                });
                // From the sides at the start, so running it twice (resume)
                // does not switch back.
                let new_live: Vec<Side> = self.orig_live.iter().map(|s| s.other()).collect();
                self.apply_routes(routing::steady(&new_live)).await?;
                self.live = new_live;
                self.event(
                    EventKind::TrafficSwitched {
                        live: self.live.clone(),
                        instances: None,
                    },
                    None,
                );
                Ok(())
            }
            Stage::Monitor => {
                let length = self.app().health.monitor;
                if length.is_zero() {
                    return Ok(());
                }
                let slots: Vec<GateSlot> =
                    (0..self.live.len()).map(|i| (i, self.live[i])).collect();
                self.watch(&slots, length).await.map_err(|mut f| {
                    if f.trigger == Trigger::GateFailed {
                        f.trigger = Trigger::Monitor;
                    }
                    f
                })
            }
            Stage::Retire { instances, sides } => {
                for (&i, side) in instances.iter().zip(sides) {
                    let Some(exec) = self.exec(i) else { continue };
                    // Write before act: an unrecorded retire is not made.
                    let id = match self.try_change(
                        batch,
                        i,
                        ChangeAction::Retire,
                        None,
                        json!({"side": side}),
                    ) {
                        Ok(id) => id,
                        Err(e) => {
                            self.lost_record(format!("could not record a retire: {e}"));
                            continue;
                        }
                    };
                    let slot = self.slot(i, *side);
                    match self.driver.stop(&exec, slot).await {
                        Ok(()) => self.change_done(id, ChangeState::Done, Value::Null),
                        Err(e) => {
                            // Retiring is cleanup after success: report, go on.
                            self.change_done(
                                id,
                                ChangeState::Failed,
                                json!({"error": e.to_string()}),
                            );
                            self.event(EventKind::RetireFailed, Some(&e.to_string()));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Replaces `pairs` (instance, side), after moving traffic to
    /// `drained` when given, while the live slots replaced before keep
    /// being probed: a release that goes bad between two gates is seen
    /// while the next batch starts, not only once its gate begins. The
    /// work in flight is finished (a start is never cut in half), but a
    /// slot seen failing meanwhile leaves traffic at once when others still
    /// serve ([`Eject`]); the failure then fails the stage.
    async fn replace_watched(
        &mut self,
        batch: Option<i64>,
        pairs: Vec<(usize, Side)>,
        drained: Option<Vec<Route>>,
    ) -> Result<(), Failure> {
        // Not the slots being replaced now: a resumed batch replaces again
        // a slot it replaced before, and its restart is no failure.
        let watched: Vec<GateSlot> = (self.replaced_live_slots().into_iter())
            .filter(|s| !pairs.contains(s))
            .collect();
        let baseline = self.baseline_slots();
        let (fleet, prober, cancel, app, seen) = (
            self.fleet.clone(),
            self.prober.clone(),
            self.cancel.clone(),
            self.app,
            self.seen.clone(),
        );
        let mut eject = Eject {
            fleet: fleet.clone(),
            app,
            prober: prober.clone(),
            db: self.store.path().to_owned(),
            deployment: self.deployment,
            actor: ACTOR,
            routes_unknown: self.routes_unknown && drained.is_none(),
            routes: drained.clone().unwrap_or_else(|| self.routes.clone()),
            standby: self.standby(),
        };
        // The drain is in force: a failing slot may leave traffic.
        let (in_force, drain_done) = tokio::sync::oneshot::channel::<()>();
        let drain_done = futures_util::FutureExt::shared(drain_done);
        let ejecting = std::sync::atomic::AtomicBool::new(false);
        // What the watch moved: the last routes, whether the balancer's
        // state became unknown, and the slots it rested.
        let moved = std::cell::RefCell::new((None::<Vec<Route>>, false, Vec::new()));
        let watch = async {
            if watched.is_empty() {
                return std::future::pending::<GateOutcome>().await;
            }
            let length = OPEN_WATCH;
            let sides = gate::Sides {
                new: &watched,
                old: &baseline,
            };
            let mode = GateMode::Monitor { length };
            let gate = gate::run(
                &prober,
                &fleet,
                &fleet.apps[app],
                sides,
                mode,
                cancel,
                &seen,
            );
            tokio::pin!(gate);
            // Takes `slots` out one by one once the drain is in force (no
            // drain in force, it failed: nothing moves).
            let mut take_out = async |slots: Vec<GateSlot>| {
                if slots.is_empty() || drain_done.clone().await.is_err() {
                    return;
                }
                ejecting.store(true, std::sync::atomic::Ordering::SeqCst);
                for slot in slots {
                    let ejected = eject.run(slot).await;
                    let mut m = moved.borrow_mut();
                    match ejected {
                        Ejected::Out(routes, rested) => {
                            m.2.push(rested);
                            eject.routes = routes.clone();
                            eject.routes_unknown = false;
                            m.0 = Some(routes);
                        }
                        Ejected::Unknown => m.1 = true,
                        Ejected::Nothing => {}
                    }
                }
                ejecting.store(false, std::sync::atomic::Ordering::SeqCst);
            };
            loop {
                tokio::select! {
                    outcome = &mut gate => {
                        // The slot that failed leaves for good.
                        if let GateOutcome::Failed { evidence } = &outcome
                            && let Some(i) = fleet.apps[app]
                                .instances
                                .iter()
                                .position(|i| i.name == evidence.instance)
                        {
                            take_out(vec![(i, evidence.side)]).await;
                        }
                        break outcome;
                    }
                    // A slot whose last probe failed rests until its gate
                    // passes.
                    () = seen.round() => {
                        let failing = (watched.iter().copied())
                            .filter(|&slot| seen.of(slot).failing())
                            .collect();
                        take_out(failing).await;
                    }
                }
            }
        };
        let (result, outcome) = {
            let work = async {
                if let Some(routes) = drained {
                    self.apply_routes(routes).await?;
                }
                let _ = in_force.send(());
                for (i, side) in pairs {
                    self.replace(batch, i, side).await?;
                }
                Ok(())
            };
            tokio::pin!(work, watch);
            let mut outcome = None;
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    o = &mut watch, if outcome.is_none() => outcome = Some(o),
                }
            };
            // A traffic change under way is finished, never dropped.
            while outcome.is_none() && ejecting.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::select! {
                    o = &mut watch => outcome = Some(o),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
            (result, outcome)
        };
        let (routes, unknown, rested) = moved.into_inner();
        if unknown {
            self.routes_unknown = true;
        } else if let Some(routes) = routes {
            self.routes = routes;
            self.routes_unknown = false;
        }
        self.rested(rested);
        match outcome {
            // What went bad first is why the stage fails.
            Some(o @ (GateOutcome::Failed { .. } | GateOutcome::Deadline { .. })) => {
                self.judge_gate(o)
            }
            _ => result,
        }
    }

    /// The old release's slots that still serve: the live side of every
    /// instance this rollout has not replaced there (none on an install).
    /// A comparison probe
    /// compares a gate's slots with them; none once the new release serves
    /// everywhere (the last batch, after a blue-green switch).
    fn baseline_slots(&self) -> Vec<GateSlot> {
        // An install has nothing old serving.
        if self.plan.install {
            return Vec::new();
        }
        let replaced = self.replaced_live_slots();
        (0..self.live.len())
            .map(|i| (i, self.live[i]))
            .filter(|slot| !replaced.contains(slot))
            .collect()
    }

    /// Slots this rollout has replaced so far, in order, each once.
    fn replaced_slots(&self) -> Vec<GateSlot> {
        let mut slots: Vec<GateSlot> = Vec::new();
        for u in &self.undo {
            if let Undo::Replaced { instance, side, .. } = u
                && !slots.contains(&(*instance, *side))
            {
                slots.push((*instance, *side));
            }
        }
        slots
    }

    /// Live slots this rollout has replaced so far, in order.
    fn replaced_live_slots(&self) -> Vec<GateSlot> {
        let mut slots = self.replaced_slots();
        slots.retain(|(i, side)| self.live[*i] == *side);
        slots
    }

    /// Where in the undo list this rollout last started its release on
    /// `slot` (later is larger); `None` when it did not replace it.
    fn started_at(&self, slot: GateSlot) -> Option<usize> {
        self.undo.iter().rposition(
            |u| matches!(u, Undo::Replaced { instance, side, .. } if (*instance, *side) == slot),
        )
    }

    fn deadline(&self) -> GateMode {
        GateMode::Deploy {
            deadline: self.app().health.deadline,
        }
    }

    /// Snapshots what runs on (instance, side), stores it, then starts the
    /// target version there.
    async fn replace(&mut self, batch: Option<i64>, i: usize, side: Side) -> Result<(), Failure> {
        let exec = self.exec(i).ok_or_else(|| Failure {
            trigger: Trigger::StartFailed,
            reason: format!("no executor for instance {}", self.app().instances[i].name),
            evidence: Value::Null,
        })?;
        let slot = self.slot(i, side);
        let label = slot.label();
        // A slot this rollout replaced before (a resumed batch) keeps the
        // snapshot of what ran before the rollout: never one of the release
        // the rollout itself started.
        let before = self.undo.iter().find_map(|u| match u {
            Undo::Replaced {
                instance,
                side: s,
                snapshot,
            } if *instance == i && *s == side => Some(snapshot.clone()),
            _ => None,
        });
        if let Some(snapshot) = before {
            return self.start_on(batch, i, side, &exec, snapshot, false).await;
        }
        let mut snapshot = self
            .driver
            .snapshot(&exec, slot)
            .await
            .map_err(|e| Failure {
                trigger: Trigger::StartFailed,
                reason: format!("cannot snapshot {label}: {e}"),
                evidence: Value::Null,
            })?;
        let app_name = self.app().name.clone();
        let inst_name = self.app().instances[i].name.clone();
        // A driver that cannot tell what runs (a command driver with no
        // `current`): the live side runs what rollguard recorded there.
        if !self.driver.tells_current()
            && side == self.live[i]
            && let Some(s) = snapshot.as_mut()
            && s.version.is_none()
        {
            let recorded = super::preflight::recorded_versions(&self.fleet, self.app, &self.store)
                .map_err(|e| Failure {
                    trigger: Trigger::Store,
                    reason: format!("cannot read what {label} runs: {e}"),
                    evidence: Value::Null,
                })?;
            s.version = recorded.into_iter().nth(i).flatten();
        }
        if let Some(s) = &snapshot {
            let data = json!({"side": side, "snapshot": s});
            if let Err(e) = self.store.save_snapshot(
                Some(self.deployment),
                &app_name,
                &inst_name,
                &s.driver,
                &data,
            ) {
                // No stored snapshot, no safe way back: do not go on.
                return Err(Failure {
                    trigger: Trigger::StartFailed,
                    reason: format!("cannot store the snapshot of {label}: {e}"),
                    evidence: Value::Null,
                });
            }
        }
        self.start_on(batch, i, side, &exec, snapshot, true).await
    }

    /// Records the start of the target on (instance, side), then starts it.
    /// `new_undo`: the slot was not replaced before in this rollout, so its
    /// restore is added to the undo list.
    async fn start_on(
        &mut self,
        batch: Option<i64>,
        i: usize,
        side: Side,
        exec: &Executor,
        snapshot: Option<Snapshot>,
        new_undo: bool,
    ) -> Result<(), Failure> {
        let label = self.slot(i, side).label();
        let inst_name = self.app().instances[i].name.clone();
        let from = snapshot
            .as_ref()
            .and_then(|s| s.version.as_ref())
            .map(Version::to_string);
        // Recovery rebuilds its way back from these records: no record, no
        // start.
        let id = self
            .try_change(
                batch,
                i,
                ChangeAction::Start,
                from.as_deref(),
                json!({"side": side}),
            )
            .map_err(|e| Failure {
                trigger: Trigger::StartFailed,
                reason: format!("cannot record the start of {label}: {e}"),
                evidence: Value::Null,
            })?;
        // What the gates saw of it was of the release it ran before.
        self.seen.forget((i, side));
        if new_undo {
            self.undo.push(Undo::Replaced {
                instance: i,
                side,
                snapshot,
            });
        }
        let to = self.plan.to.clone();
        let slot = self.slot(i, side);
        match self.driver.start(exec, slot, &to).await {
            Ok(()) => {
                self.change_done(id, ChangeState::Done, Value::Null);
                Ok(())
            }
            Err(e) => {
                self.change_done(id, ChangeState::Failed, json!({"error": e.to_string()}));
                Err(Failure {
                    trigger: Trigger::StartFailed,
                    reason: e.to_string(),
                    evidence: json!({"instance": inst_name, "side": side, "version": to}),
                })
            }
        }
    }

    async fn gate(&mut self, slots: &[GateSlot], mode: GateMode) -> Result<(), Failure> {
        self.gate_until(slots, mode, false).await
    }

    /// Runs a gate; with `until_approved`, an operator's approval also
    /// ends it, at once (nothing is recorded for the gate then: the
    /// approval is).
    async fn gate_until(
        &mut self,
        slots: &[GateSlot],
        mode: GateMode,
        until_approved: bool,
    ) -> Result<(), Failure> {
        let outcome = {
            let fleet = self.fleet.clone();
            let prober = self.prober.clone();
            let app = &fleet.apps[self.app];
            let cancel = self.cancel.clone();
            let baseline = self.baseline_slots();
            let sides = gate::Sides {
                new: slots,
                old: &baseline,
            };
            let seen = self.seen.clone();
            let gate = gate::run(&prober, &fleet, app, sides, mode, cancel, &seen);
            tokio::pin!(gate);
            loop {
                tokio::select! {
                    o = &mut gate => break o,
                    Some(sig) = self.signals.recv() => {
                        self.handle_signal(sig);
                        if until_approved && self.approved {
                            return Ok(());
                        }
                    }
                    () = seen.round() => self.follow_probes(slots).await?,
                }
            }
        };
        let passed = matches!(outcome, GateOutcome::Passed { .. });
        self.judge_gate(outcome)?;
        if passed {
            self.readmit(slots).await?;
        }
        Ok(())
    }

    /// Records a gate's outcome as its event and turns it into a result.
    fn judge_gate(&self, outcome: GateOutcome) -> Result<(), Failure> {
        let evidence = serde_json::to_value(&outcome).unwrap_or(Value::Null);
        match &outcome {
            GateOutcome::Passed { .. } => {
                self.event(EventKind::GatePassed(outcome.clone()), None);
                Ok(())
            }
            GateOutcome::Failed { evidence: e } => {
                // Which rule fired: the streak or the window's budget.
                let rule = match e.rule {
                    Some(super::gate::FailRule::Budget) => {
                        format!("spent its failure budget: {} in the window", e.budget())
                    }
                    _ => format!(
                        "failed {} times in a row (threshold {})",
                        e.consecutive_fail, e.failure_threshold
                    ),
                };
                let reason = format!(
                    "{} on {} {rule}: {}",
                    e.probe,
                    e.instance,
                    e.last_samples
                        .last()
                        .map(|s| s.message.as_str())
                        .unwrap_or("")
                );
                self.event(EventKind::GateFailed(outcome.clone()), Some(&reason));
                self.incident(std::slice::from_ref(e));
                Err(Failure {
                    trigger: Trigger::GateFailed,
                    reason,
                    evidence,
                })
            }
            GateOutcome::Deadline {
                deadline_ms,
                evidence: late,
            } => {
                let reason = format!("not healthy within the deadline of {deadline_ms} ms");
                self.event(EventKind::DeadlineExceeded(outcome.clone()), Some(&reason));
                self.incident(late);
                Err(Failure {
                    trigger: Trigger::Deadline,
                    reason,
                    evidence,
                })
            }
            GateOutcome::Cancelled => Err(self.abort_failure().unwrap_or(Failure {
                trigger: Trigger::Abort,
                reason: "cancelled".into(),
                evidence: Value::Null,
            })),
        }
    }

    /// Watches `slots` for `length`; fails on a probe failure streak.
    async fn watch(&mut self, slots: &[GateSlot], length: Duration) -> Result<(), Failure> {
        if length.is_zero() {
            return Ok(());
        }
        self.gate(slots, GateMode::Monitor { length }).await
    }

    /// Manual step: keep watching health, as one unbroken watch, until an
    /// operator approves (taken as soon as the worker reads it).
    async fn wait_for_approval(&mut self, slots: &[GateSlot]) -> Result<(), Failure> {
        self.approved = false;
        self.set_state(DeploymentState::WaitingApproval);
        self.event(EventKind::WaitingApproval, None);
        self.drain_signals();
        while !self.approved {
            if let Some(f) = self.abort_failure() {
                return Err(f);
            }
            let length = OPEN_WATCH;
            self.gate_until(slots, GateMode::Monitor { length }, true)
                .await?;
        }
        self.set_state(DeploymentState::Running);
        Ok(())
    }

    /// Before a batch: enough instances outside it must be healthy.
    async fn check_min_healthy(&mut self, batch: &[usize]) -> Result<(), Failure> {
        let min = self.app().rollout.min_healthy as usize;
        // An install has nothing serving yet to keep serving.
        if min == 0 || self.plan.install {
            return Ok(());
        }
        let others: Vec<usize> = (0..self.live.len())
            .filter(|i| !batch.contains(i))
            .collect();
        let fleet = self.fleet.clone();
        let app = &fleet.apps[self.app];
        let mut healthy = Vec::new();
        for &i in &others {
            let inst = &app.instances[i];
            let Some(host) = fleet.host(&inst.host) else {
                continue;
            };
            let target = crate::probe::Target {
                app,
                instance: inst,
                host,
                port: self.slot(i, self.live[i]).port().unwrap_or(inst.port),
            };
            let mut verdicts = Vec::new();
            for p in app.probes.iter().filter(|p| !p.compares()) {
                verdicts.push(if self.prober.run(target, p).await.ok {
                    crate::model::Verdict::Healthy
                } else {
                    crate::model::Verdict::Unhealthy
                });
            }
            let combined = crate::health::combine_probes(app.health.require, verdicts);
            if combined == crate::model::Verdict::Healthy {
                healthy.push(inst.name.clone());
            }
        }
        if healthy.len() >= min {
            Ok(())
        } else {
            Err(Failure {
                trigger: Trigger::MinHealthy,
                reason: format!(
                    "only {} instance(s) outside the batch are healthy; min_healthy is {min}",
                    healthy.len()
                ),
                evidence: json!({"healthy": healthy, "min_healthy": min}),
            })
        }
    }

    /// Records the failure that [`decide`] answers with a rollback, an
    /// armed rollback or nothing (`auto_rollback = "off"`).
    fn record_failure(&mut self) {
        let f = match self.failure.clone() {
            Some(f) => f,
            None => self.abort_failure().unwrap_or(Failure {
                trigger: Trigger::Abort,
                reason: "aborted".into(),
                evidence: Value::Null,
            }),
        };
        self.set_state(DeploymentState::Failing);
        self.event(
            EventKind::RolloutFailed {
                trigger: f.trigger,
                code: f.trigger.code().as_str().into(),
                evidence: f.evidence.clone(),
            },
            Some(&f.reason),
        );
        self.failure = Some(f);
    }

    /// `confirm` mode: arms the rollback and waits for the window, `fire`,
    /// `hold` or `abort`.
    async fn arm(&mut self) -> Observation {
        // Waiting for a person must not mean serving errors meanwhile.
        self.rest_seen_failing().await;
        let window = self.app().rollout.confirm_window;
        self.set_state(DeploymentState::RollbackArmed);
        self.event(
            EventKind::RollbackArmed {
                fires_in_ms: window.as_millis() as u64,
            },
            None,
        );
        self.window_end = Some(tokio::time::Instant::now() + window);
        self.wait_watching(self.window_end).await
    }

    /// Records why an armed rollback fires: its window, or who fired it.
    fn record_fired(&mut self, seen: Observation) {
        if seen == Observation::WindowEnded {
            self.event(EventKind::RollbackFired, Some("the confirm window elapsed"));
            return;
        }
        let (by, why) = self.last_command.clone().unwrap_or_default();
        let reason = match why {
            Some(w) => format!("fired by {by}: {w}"),
            None => format!("fired by {by}"),
        };
        self.event_by(&by, EventKind::RollbackFired, Some(&reason));
    }

    /// Undoes everything the rollout did; says how many of the instances
    /// it touched could not be restored.
    async fn roll_back(&mut self) -> Observation {
        let (reason, trigger) = match &self.failure {
            Some(f) => (Some(f.reason.clone()), f.trigger),
            None => (None, Trigger::Abort),
        };
        self.set_state(DeploymentState::RollingBack);
        self.event(
            EventKind::RollbackStarted {
                trigger,
                code: trigger.code().as_str().into(),
            },
            reason.as_deref(),
        );
        let unrestored = self.rollback_to(0).await;
        let touched = self
            .plan
            .stages
            .iter()
            .flat_map(|s| s.instances(self.live.len()))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        self.unrestored = unrestored.clone();
        Observation::RollbackDone {
            unrestored: unrestored.len(),
            touched,
            traffic_restored: !self.traffic_unrestored,
        }
    }

    /// `auto_rollback = "off"`: reports the failure and leaves what runs.
    fn leave_as_is(self) -> Finished {
        self.event(
            EventKind::RollbackSkipped,
            Some("auto_rollback = \"off\": reported only"),
        );
        self.record_as_left();
        self.finish(DeploymentState::Failed, Outcome::Failed);
        Finished {
            outcome: Outcome::Failed,
            unrestored: Vec::new(),
        }
    }

    /// Ends a rolled-back rollout with `outcome`.
    fn finish_rollback(self, outcome: Outcome) -> Finished {
        let unrestored = self.unrestored.clone();
        let ended = |unrestored: Vec<String>| match outcome.code() {
            None => EventKind::RollbackCompleted {
                unrestored,
                outcome,
            },
            Some(_) => EventKind::RollbackFailed {
                unrestored,
                outcome,
            },
        };
        let reason = outcome.code().map(|code| {
            if unrestored.is_empty() {
                format!("{code}: traffic could not be put back as it was")
            } else {
                format!("{code}: not restored: {}", unrestored.join(", "))
            }
        });
        self.event(ended(unrestored.clone()), reason.as_deref());
        self.finish(DeploymentState::Done, outcome);
        Finished {
            outcome,
            unrestored,
        }
    }
}
