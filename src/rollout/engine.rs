//! The rollout engine: executes a [`Plan`] stage by stage and, when health
//! says no or an operator aborts, rolls back what it did in reverse order.
//!
//! Write before act: each change (snapshot, start, stop, routing) is stored
//! with state `started` before its side effect and updated to `done` or
//! `failed` after, so after a crash the store tells what may be half done.
//! Every decision (gate passed, gate failed, deadline, start failed) is an
//! event with its evidence. The engine runs in the detached worker process
//! (`rollguard worker`); commands from consoles and the CLI (`approve`,
//! `hold`, `fire`, `abort`) reach it through the store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::gate::{self, GateMode, GateOutcome, GateSlot};
use super::plan::{Plan, Stage};
use super::routing::{self, Route};
use crate::config::{App, AutoRollback, Fleet, StepPause};
use crate::driver::{Driver, Side, Slot, Snapshot};
use crate::exec::Executor;
use crate::model::{Verb, Version, now_ms};
use crate::probe::Prober;
use crate::store::Store;
use crate::store::rollout::Command;
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

/// Messages from the command poller to the engine.
#[derive(Debug)]
pub enum Signal {
    /// An operator command.
    Command(Command),
    /// The lock is no longer ours.
    LockLost,
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
    aborted: Option<(String, Option<String>)>,
    approved: bool,
    /// A rollback is under way: an abort is recorded but cancels nothing.
    rolling_back: bool,
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

/// A manual step is watched in windows this long until it is approved
/// (each window that passes is recorded as a passed gate).
const APPROVAL_WATCH: Duration = Duration::from_secs(3600);

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
            rolling_back: false,
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

    /// Records an event of this deployment; a store error is logged, never
    /// fatal (the rollout must not stop because the disk is slow).
    fn event(&self, kind: &str, reason: Option<&str>, evidence: Value) {
        self.event_by(ACTOR, kind, reason, evidence);
    }

    /// [`Engine::event`] with the actor who caused it (an operator).
    fn event_by(&self, actor: &str, kind: &str, reason: Option<&str>, evidence: Value) {
        let app = self.app().name.clone();
        let evidence = (!evidence.is_null()).then_some(evidence);
        if let Err(e) = self.store.record_deployment_event(
            &app,
            Some(self.deployment),
            kind,
            actor,
            reason,
            evidence.as_ref(),
        ) {
            tracing::warn!("could not record event {kind}: {e}");
        }
    }

    /// Records a change about to be made; -1 (and a warning) when the
    /// store refuses, for changes that go on regardless (cleanup, restore).
    fn change(
        &self,
        batch: Option<i64>,
        instance: usize,
        action: &str,
        from: Option<&str>,
        detail: Value,
    ) -> i64 {
        self.try_change(batch, instance, action, from, detail)
            .unwrap_or_else(|e| {
                tracing::warn!("could not record a change: {e}");
                -1
            })
    }

    fn try_change(
        &self,
        batch: Option<i64>,
        instance: usize,
        action: &str,
        from: Option<&str>,
        detail: Value,
    ) -> Result<i64, crate::store::StoreError> {
        let name = self.app().instances[instance].name.clone();
        let to = self.plan.to.to_string();
        let detail = (!detail.is_null()).then_some(detail);
        self.store.record_change(
            self.deployment,
            batch,
            &name,
            action,
            from,
            Some(&to),
            "started",
            detail.as_ref(),
        )
    }

    fn change_done(&self, id: i64, state: &str, detail: Value) {
        if id < 0 {
            return;
        }
        let detail = (!detail.is_null()).then_some(detail);
        if let Err(e) = self.store.set_change_state(id, state, detail.as_ref()) {
            tracing::warn!("could not update a change: {e}");
        }
    }

    /// Ends the deployment: the lock is released first, so whoever sees
    /// the outcome can deploy again at once.
    fn finish(&self, state: &str, outcome: Outcome) {
        let app = self.app().name.clone();
        if let Ok(true) = self.store.unlock(&app, std::process::id()) {
            self.event("lock_released", None, Value::Null);
        }
        if let Err(e) = self
            .store
            .finish_deployment(self.deployment, state, outcome.as_str())
        {
            tracing::error!("could not record the end of the deployment: {e}");
        }
    }

    fn set_state(&self, state: &str) {
        if let Err(e) = self.store.set_deployment_state(self.deployment, state) {
            tracing::warn!("could not set the deployment state: {e}");
        }
    }

    /// Reads pending signals without waiting. An abort cancels gates.
    fn drain_signals(&mut self) {
        while let Ok(sig) = self.signals.try_recv() {
            self.handle_signal(sig);
        }
    }

    fn handle_signal(&mut self, sig: Signal) {
        match sig {
            Signal::Command(c) => {
                self.event_by(
                    &c.actor,
                    &format!("command_{}", c.verb),
                    c.reason.as_deref(),
                    json!({"actor": c.actor}),
                );
                match Verb::parse(&c.verb) {
                    Some(Verb::Abort) => {
                        self.aborted = Some((c.actor, c.reason));
                        // A rollback under way is what an abort asks for:
                        // its health checks must not be cut short.
                        if !self.rolling_back {
                            let _ = self.cancel_tx.send(true);
                        }
                    }
                    Some(Verb::Approve) => self.approved = true,
                    // Hold and fire are read where a rollback is armed;
                    // pause and resume are not steps of this engine yet.
                    Some(Verb::Hold | Verb::Fire | Verb::Pause | Verb::Resume) => {}
                    None => tracing::warn!("ignoring an unknown command {:?}", c.verb),
                }
            }
            Signal::LockLost => {
                self.event(
                    "lock_lost",
                    Some("the lock was broken by someone else; finishing anyway"),
                    Value::Null,
                );
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
        self.event("traffic_changing", None, json!({"to": to}));
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
                self.event("traffic_changed", None, json!({"elapsed_ms": elapsed_ms}));
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
        self.set_state("running");
        self.event(
            "rollout_started",
            None,
            json!({"plan": self.plan, "strategy": self.plan.strategy}),
        );
        self.run_from(0).await
    }

    /// Picks up a deployment whose worker died: rebuilds what was done
    /// from the stored changes and snapshots, then rolls it all back
    /// (`resume = false`) or goes on from the first stage that had not
    /// passed.
    pub async fn recover(mut self, resume: bool) -> Finished {
        self.rebuild_undo();
        let batches = self.store.batches(self.deployment).unwrap_or_default();
        let first_open = batches
            .iter()
            .position(|b| b.state != "passed")
            .unwrap_or(batches.len());
        for stage in self.plan.stages.iter().take(first_open) {
            if matches!(stage, Stage::Switch) {
                self.live = self.orig_live.iter().map(|s| s.other()).collect();
            }
        }
        // Routing after a crash is unknown. Changes are computed from the
        // steady routing of the live sides, and the first one is applied
        // in full, whatever the balancer holds.
        self.routes = routing::steady(&self.live);
        self.routes_unknown = true;
        self.event(
            "recovery_started",
            None,
            json!({"mode": if resume { "resume" } else { "rollback" }, "from_stage": first_open,
                   "replaced": self.undo.len().saturating_sub(1)}),
        );
        if resume {
            self.set_state("running");
            return self.run_from(first_open).await;
        }
        let f = Failure {
            trigger: Trigger::Recovered,
            reason: "the rollout's worker stopped before the end; rolling back what it did".into(),
            evidence: json!({"from_stage": first_open}),
        };
        self.fail(f).await
    }

    /// Undo entries from the store: steady routing at the start, then one
    /// restore per slot that was started, with the first snapshot taken of
    /// that slot in this deployment (what ran before it).
    fn rebuild_undo(&mut self) {
        self.undo.clear();
        self.undo.push(Undo::Routed {
            routes: routing::steady(&self.orig_live),
            live: self.orig_live.clone(),
        });
        let changes = self.store.changes(self.deployment).unwrap_or_default();
        let snapshots = self
            .store
            .deployment_snapshots(self.deployment)
            .unwrap_or_default();
        let side_of = |v: &Value| match v["side"].as_str() {
            Some("alt") => Side::Alt,
            _ => Side::Main,
        };
        let mut seen: Vec<(usize, Side)> = Vec::new();
        for c in changes.iter().filter(|c| c.action == "start") {
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
    }

    async fn run_from(mut self, first: usize) -> Finished {
        let batch_ids = self
            .store
            .batches(self.deployment)
            .map(|b| b.into_iter().map(|b| b.id).collect::<Vec<_>>())
            .unwrap_or_default();
        let stages = self.plan.stages.clone();
        let mut failed_batches = 0u32;
        let mut i = first;
        while i < stages.len() {
            let batch = batch_ids.get(i).copied();
            let mark = self.undo.len();
            self.drain_signals();
            if let Some(f) = self.abort_failure() {
                return self.fail(f).await;
            }
            if let Some(b) = batch {
                let _ = self.store.set_batch_state(b, "running");
            }
            let describe = stages[i].describe(self.app());
            self.event(
                "stage_started",
                None,
                json!({"index": i, "stage": stages[i], "describe": describe}),
            );
            match self.stage(i, &stages[i], batch).await {
                Ok(()) => {
                    if let Some(b) = batch {
                        let _ = self.store.set_batch_state(b, "passed");
                    }
                    i += 1;
                }
                Err(f) => {
                    if let Some(b) = batch {
                        let _ = self.store.set_batch_state(b, "failed");
                    }
                    failed_batches += 1;
                    let retry = f.trigger != Trigger::Abort
                        && f.trigger != Trigger::Monitor
                        && matches!(stages[i], Stage::Replace { .. })
                        && failed_batches < self.app().rollout.max_failed_batches;
                    if !retry {
                        return self.fail(f).await;
                    }
                    self.event(
                        "batch_retried",
                        Some(&f.reason),
                        json!({"trigger": f.trigger, "code": f.trigger.code().as_str(), "evidence": f.evidence,
                               "failed_batches": failed_batches}),
                    );
                    let unrestored = self.rollback_to(mark).await;
                    if !unrestored.is_empty() {
                        return self.fail(f).await;
                    }
                }
            }
        }
        self.finish_deployed()
    }

    /// Records what each instance runs and which side is live, as this
    /// rollout leaves them without a rollback: the next deploy plans from
    /// it.
    fn record_as_left(&self) {
        let app = self.app().name.clone();
        let to = self.plan.to.to_string();
        let known = self.store.instance_states(&app).unwrap_or_default();
        for (i, inst) in self.app().instances.iter().enumerate() {
            let side = self.live[i];
            let replaced = self.undo.iter().any(|u| {
                matches!(u, Undo::Replaced { instance, side: s, .. } if *instance == i && *s == side)
            });
            let version = if replaced {
                Some(to.clone())
            } else {
                known
                    .iter()
                    .find(|k| k.instance == inst.name)
                    .and_then(|k| k.version.clone())
            };
            let _ = self.store.set_instance_state(
                &app,
                &inst.name,
                version.as_deref(),
                Some(side.as_str()),
            );
        }
    }

    fn finish_deployed(self) -> Finished {
        let app = self.app().name.clone();
        let to = self.plan.to.to_string();
        let _ = self.store.mark_release_healthy(&app, &to, now_ms());
        for (i, inst) in self.app().instances.iter().enumerate() {
            let _ = self.store.set_instance_state(
                &app,
                &inst.name,
                Some(&to),
                Some(self.live[i].as_str()),
            );
        }
        self.event("rollout_completed", None, json!({"version": to}));
        self.finish("done", Outcome::Deployed);
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
                self.apply_routes(drained).await?;
                for &i in instances {
                    self.replace(batch, i, self.live[i]).await?;
                }
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
                        self.event("paused", None, json!({"ms": pause.as_millis() as u64}));
                        self.watch(&slots, pause).await?;
                    }
                }
                Ok(())
            }
            Stage::StartIdle { instances } => {
                for &i in instances {
                    self.replace(batch, i, self.live[i].other()).await?;
                }
                let slots: Vec<GateSlot> = instances
                    .iter()
                    .map(|&i| (i, self.live[i].other()))
                    .collect();
                self.gate(&slots, self.deadline()).await
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
                self.event("traffic_switched", None, json!({"live": self.live}));
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
                    let id = self.change(batch, i, "retire", None, json!({"side": side}));
                    let slot = self.slot(i, *side);
                    match self.driver.stop(&exec, slot).await {
                        Ok(()) => self.change_done(id, "done", Value::Null),
                        Err(e) => {
                            // Retiring is cleanup after success: report, go on.
                            self.change_done(id, "failed", json!({"error": e.to_string()}));
                            self.event("retire_failed", Some(&e.to_string()), Value::Null);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Live slots this rollout has replaced so far, in order.
    fn replaced_live_slots(&self) -> Vec<GateSlot> {
        let mut slots: Vec<GateSlot> = Vec::new();
        for u in &self.undo {
            if let Undo::Replaced { instance, side, .. } = u
                && self.live[*instance] == *side
                && !slots.contains(&(*instance, *side))
            {
                slots.push((*instance, *side));
            }
        }
        slots
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
        let from = snapshot
            .as_ref()
            .and_then(|s| s.version.as_ref())
            .map(Version::to_string);
        // Recovery rebuilds its way back from these records: no record, no
        // start.
        let id = self
            .try_change(batch, i, "start", from.as_deref(), json!({"side": side}))
            .map_err(|e| Failure {
                trigger: Trigger::StartFailed,
                reason: format!("cannot record the start of {label}: {e}"),
                evidence: Value::Null,
            })?;
        self.undo.push(Undo::Replaced {
            instance: i,
            side,
            snapshot,
        });
        let to = self.plan.to.clone();
        let slot = self.slot(i, side);
        match self.driver.start(&exec, slot, &to).await {
            Ok(()) => {
                self.change_done(id, "done", Value::Null);
                Ok(())
            }
            Err(e) => {
                self.change_done(id, "failed", json!({"error": e.to_string()}));
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
            let gate = gate::run(&prober, &fleet, app, slots, mode, cancel);
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
                }
            }
        };
        let evidence = serde_json::to_value(&outcome).unwrap_or(Value::Null);
        match outcome {
            GateOutcome::Passed { .. } => {
                self.event("gate_passed", None, evidence);
                Ok(())
            }
            GateOutcome::Failed { evidence: e } => {
                // Which rule fired: the streak or the window's budget.
                let rule = match e.rule {
                    Some(super::gate::FailRule::Budget) => format!(
                        "failed {} of {} checks allowed in the window",
                        e.failures, e.max_failures
                    ),
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
                self.event("gate_failed", Some(&reason), evidence.clone());
                Err(Failure {
                    trigger: Trigger::GateFailed,
                    reason,
                    evidence,
                })
            }
            GateOutcome::Deadline { deadline_ms, .. } => {
                let reason = format!("not healthy within the deadline of {deadline_ms} ms");
                self.event("deadline_exceeded", Some(&reason), evidence.clone());
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
        self.set_state("waiting_approval");
        self.event("waiting_approval", None, Value::Null);
        self.drain_signals();
        while !self.approved {
            if let Some(f) = self.abort_failure() {
                return Err(f);
            }
            let length = APPROVAL_WATCH;
            self.gate_until(slots, GateMode::Monitor { length }, true)
                .await?;
        }
        self.set_state("running");
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
            for p in &app.probes {
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

    /// A failure: roll back (now, after confirmation, or not at all).
    async fn fail(mut self, f: Failure) -> Finished {
        let code = f.trigger.code().as_str();
        self.set_state("failing");
        self.event(
            "rollout_failed",
            Some(&f.reason),
            json!({"trigger": f.trigger, "code": code, "evidence": f.evidence}),
        );
        let policy = if matches!(f.trigger, Trigger::Abort | Trigger::Recovered) {
            AutoRollback::Auto
        } else {
            self.app().rollout.auto_rollback
        };
        match policy {
            AutoRollback::Off => {
                self.event(
                    "rollback_skipped",
                    Some("auto_rollback = \"off\": reported only"),
                    Value::Null,
                );
                self.record_as_left();
                self.finish("failed", Outcome::Failed);
                return Finished {
                    outcome: Outcome::Failed,
                    unrestored: Vec::new(),
                };
            }
            AutoRollback::Confirm => self.confirm().await,
            AutoRollback::Auto => {}
        }
        self.set_state("rolling_back");
        self.event(
            "rollback_started",
            Some(&f.reason),
            json!({"trigger": f.trigger, "code": code}),
        );
        let unrestored = self.rollback_to(0).await;
        let total = self
            .plan
            .stages
            .iter()
            .flat_map(|s| s.instances(self.live.len()))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let outcome = if unrestored.is_empty() {
            if f.trigger == Trigger::Abort {
                Outcome::Aborted
            } else {
                Outcome::RolledBack
            }
        } else if unrestored.len() >= total {
            Outcome::RollbackFailed
        } else {
            Outcome::RollbackPartial
        };
        let kind = if unrestored.is_empty() {
            "rollback_completed"
        } else {
            "rollback_failed"
        };
        let reason = (!unrestored.is_empty()).then(|| {
            let code = outcome
                .code()
                .unwrap_or(crate::error::Code::RollbackPartial);
            format!("{code}: not restored: {}", unrestored.join(", "))
        });
        self.event(
            kind,
            reason.as_deref(),
            json!({"unrestored": unrestored, "outcome": outcome}),
        );
        self.finish("done", outcome);
        Finished {
            outcome,
            unrestored,
        }
    }

    /// `confirm` mode: arm the rollback and wait for `fire`, the window, or
    /// `hold` (which then waits for `fire` or `abort`). Returns when the
    /// rollback should run.
    async fn confirm(&mut self) {
        let window = self.app().rollout.confirm_window;
        self.set_state("rollback_armed");
        self.event(
            "rollback_armed",
            None,
            json!({"fires_in_ms": window.as_millis() as u64}),
        );
        let end = tokio::time::Instant::now() + window;
        let mut held = false;
        loop {
            let sleep = async {
                if held {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep_until(end).await
                }
            };
            tokio::select! {
                _ = sleep => {
                    self.event("rollback_fired", Some("the confirm window elapsed"), Value::Null);
                    return;
                }
                Some(sig) = self.signals.recv() => {
                    if let Signal::Command(c) = &sig {
                        match Verb::parse(&c.verb) {
                            Some(Verb::Fire | Verb::Abort) => {
                                let (by, why) = (c.actor.clone(), c.reason.clone());
                                self.handle_signal(sig);
                                let reason = match why {
                                    Some(w) => format!("fired by {by}: {w}"),
                                    None => format!("fired by {by}"),
                                };
                                self.event_by(&by, "rollback_fired", Some(&reason), Value::Null);
                                return;
                            }
                            Some(Verb::Hold) => {
                                let (by, why) = (c.actor.clone(), c.reason.clone());
                                held = true;
                                self.set_state("rollback_held");
                                self.handle_signal(sig);
                                self.event_by(&by, "rollback_held", why.as_deref(), Value::Null);
                                continue;
                            }
                            _ => {}
                        }
                    }
                    self.handle_signal(sig);
                }
            }
        }
    }

    /// Undoes everything after `mark` in reverse order. Returns the names
    /// of instances that could not be restored.
    async fn rollback_to(&mut self, mark: usize) -> Vec<String> {
        let _ = self.cancel_tx.send(false);
        self.cancel = self.cancel_tx.subscribe();
        self.rolling_back = true;
        let unrestored = self.undo_to(mark).await;
        self.rolling_back = false;
        unrestored
    }

    async fn undo_to(&mut self, mark: usize) -> Vec<String> {
        let mut unrestored = Vec::new();
        while self.undo.len() > mark {
            let Some(step) = self.undo.pop() else { break };
            match step {
                Undo::Routed {
                    mut routes,
                    mut live,
                } => {
                    // Routing changes in a row (canary steps) are undone in
                    // one go, straight to the oldest: 50% → 0, not → 25 → 0.
                    while self.undo.len() > mark
                        && let Some(Undo::Routed { .. }) = self.undo.last()
                    {
                        if let Some(Undo::Routed { routes: r, live: l }) = self.undo.pop() {
                            (routes, live) = (r, l);
                        }
                    }
                    self.live = live;
                    if let Err(f) = self.apply_routes(routes).await {
                        self.event("rollback_traffic_failed", Some(&f.reason), Value::Null);
                    }
                }
                Undo::Replaced {
                    instance,
                    side,
                    snapshot,
                } => {
                    if let Err(reason) = self.restore(instance, side, snapshot).await {
                        let name = self.app().instances[instance].name.clone();
                        self.event(
                            "instance_not_restored",
                            Some(&reason),
                            json!({"instance": name, "side": side}),
                        );
                        if !unrestored.contains(&name) {
                            unrestored.push(name);
                        }
                    }
                }
            }
        }
        unrestored
    }

    /// Restores one slot: traffic off it, the snapshot back (or stop what
    /// an install started), gate, traffic back on if it is a live side.
    async fn restore(
        &mut self,
        i: usize,
        side: Side,
        snapshot: Option<Snapshot>,
    ) -> Result<(), String> {
        let exec = self.exec(i).ok_or("no executor")?;
        let mut off = self.routes.clone();
        off[i].set(side, None);
        if let Err(f) = self.apply_routes(off).await {
            return Err(f.reason);
        }
        let from = Some(self.plan.to.to_string());
        let id = self.change(None, i, "restore", from.as_deref(), json!({"side": side}));
        let slot = self.slot(i, side);
        let label = slot.label();
        let result = match &snapshot {
            Some(s) if s.version.is_some() || s.driver == "docker" => {
                self.driver.restore(&exec, slot, s).await
            }
            _ => self.driver.stop(&exec, slot).await,
        };
        if let Err(e) = result {
            self.change_done(id, "failed", json!({"error": e.to_string()}));
            // Driver errors already name the slot, except config ones.
            return Err(match e {
                crate::driver::DriverError::Config(m) => format!("{label}: {m}"),
                other => other.to_string(),
            });
        }
        let restored_something = snapshot.is_some();
        let is_live = self.live[i] == side;
        if restored_something && is_live {
            if let Err(f) = self.gate(&[(i, side)], self.deadline()).await {
                self.change_done(id, "failed", json!({"error": f.reason}));
                return Err(format!("{label}: restored but not healthy: {}", f.reason));
            }
            let mut on = self.routes.clone();
            on[i].set(side, Some(1));
            if let Err(f) = self.apply_routes(on).await {
                self.change_done(id, "failed", json!({"error": f.reason}));
                return Err(f.reason);
            }
        }
        self.change_done(id, "done", Value::Null);
        let version = snapshot
            .as_ref()
            .and_then(|s| s.version.as_ref())
            .map(Version::to_string);
        let name = self.app().instances[i].name.clone();
        if is_live {
            let app = self.app().name.clone();
            let _ =
                self.store
                    .set_instance_state(&app, &name, version.as_deref(), Some(side.as_str()));
        }
        self.event(
            "instance_restored",
            None,
            json!({"instance": name, "side": side, "version": version}),
        );
        Ok(())
    }
}
