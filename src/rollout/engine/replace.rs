//! A batch's slots replaced: each snapshotted, recorded and started with
//! the new release, while the slots replaced before stay watched and one
//! seen failing meanwhile leaves traffic at once.

use super::{ACTOR, Engine, Failure, OPEN_WATCH, Undo};
use crate::config::Fleet;
use crate::driver::{Side, Snapshot};
use crate::exec::Executor;
use crate::model::{ChangeAction, ChangeState, Trigger, Version};
use crate::probe::Prober;
use crate::rollout::eject::{Eject, Ejected};
use crate::rollout::gate::{self, GateMode, GateOutcome, GateSlot};
use crate::rollout::routing::{self, Route};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::Shared;
use tokio::sync::{oneshot, watch};

impl Engine {
    /// Replaces `pairs` (instance, side), after moving traffic to
    /// `drained` when given, while the live slots replaced before keep
    /// being probed: a release that goes bad between two gates is seen
    /// while the next batch starts, not only once its gate begins. The
    /// work in flight is finished (a start is never cut in half), but a
    /// slot seen failing meanwhile leaves traffic at once when others still
    /// serve ([`Eject`]); the failure then fails the stage.
    pub(super) async fn replace_watched(
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
        // The drain is in force: a failing slot may leave traffic.
        let (in_force, drain_done) = tokio::sync::oneshot::channel::<()>();
        let eject = self.eject(drained.as_ref());
        let beside = Beside {
            fleet: self.fleet.clone(),
            prober: self.prober.clone(),
            app: self.app,
            cancel: self.cancel.clone(),
            seen: self.seen.clone(),
            baseline: self.baseline_slots(),
            watched,
            drain_done: futures_util::FutureExt::shared(drain_done),
            ejecting: AtomicBool::new(false),
            moved: RefCell::new(Moved::default()),
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
            let watch = beside.watch(eject);
            tokio::pin!(work, watch);
            let mut outcome = None;
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    o = &mut watch, if outcome.is_none() => outcome = Some(o),
                }
            };
            // A traffic change under way is finished, never dropped.
            while outcome.is_none() && beside.ejecting.load(Ordering::SeqCst) {
                tokio::select! {
                    o = &mut watch => outcome = Some(o),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
            (result, outcome)
        };
        self.take_moved(beside.moved.into_inner());
        match outcome {
            // What went bad first is why the stage fails.
            Some(o @ (GateOutcome::Failed { .. } | GateOutcome::Deadline { .. })) => {
                self.judge_gate(o)
            }
            _ => result,
        }
    }

    /// What takes a failing slot out of traffic while a batch is
    /// replaced: from `drained` once that is in force, else from the
    /// routes in force.
    fn eject(&self, drained: Option<&Vec<Route>>) -> Eject {
        Eject {
            fleet: self.fleet.clone(),
            app: self.app,
            prober: self.prober.clone(),
            store: self.store.clone(),
            deployment: self.deployment,
            actor: ACTOR,
            routes_unknown: self.routes_unknown && drained.is_none(),
            routes: drained.cloned().unwrap_or_else(|| self.routes.clone()),
            standby: self.standby(),
        }
    }

    /// Takes over what the watch beside a replacement moved.
    fn take_moved(&mut self, moved: Moved) {
        if moved.unknown {
            self.routes_unknown = true;
        } else if let Some(routes) = moved.routes {
            self.routes = routes;
            self.routes_unknown = false;
        }
        self.rested(moved.rested);
    }

    /// Snapshots what runs on (instance, side), stores it, then starts the
    /// target version there.
    pub(super) async fn replace(
        &mut self,
        batch: Option<i64>,
        i: usize,
        side: Side,
    ) -> Result<(), Failure> {
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
            let recorded =
                crate::rollout::preflight::recorded_versions(&self.fleet, self.app, &self.store)
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
    pub(super) async fn start_on(
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
}

/// What the watch beside a replacement moved: the last routes, whether
/// the balancer's state became unknown, and the slots it rested.
#[derive(Default)]
struct Moved {
    routes: Option<Vec<Route>>,
    unknown: bool,
    rested: Vec<routing::Rested>,
}

/// The watch kept beside a batch being replaced: the live slots replaced
/// before, judged against the old ones, each taken out of traffic when
/// its last probe fails (and the one a failed gate names, for good), once
/// the drain is in force.
struct Beside {
    fleet: Arc<Fleet>,
    prober: Arc<Prober>,
    app: usize,
    cancel: watch::Receiver<bool>,
    seen: gate::Seen,
    watched: Vec<GateSlot>,
    baseline: Vec<GateSlot>,
    drain_done: Shared<oneshot::Receiver<()>>,
    /// A traffic change is under way.
    ejecting: AtomicBool,
    moved: RefCell<Moved>,
}

impl Beside {
    /// Runs until its gate fails or runs out; never when nothing is
    /// watched. `eject` moves traffic.
    async fn watch(&self, mut eject: Eject) -> GateOutcome {
        if self.watched.is_empty() {
            return std::future::pending::<GateOutcome>().await;
        }
        let sides = gate::Sides {
            new: &self.watched,
            old: &self.baseline,
        };
        let mode = GateMode::Monitor { length: OPEN_WATCH };
        let app = &self.fleet.apps[self.app];
        let gate = gate::run(
            &self.prober,
            &self.fleet,
            app,
            sides,
            mode,
            self.cancel.clone(),
            &self.seen,
        );
        tokio::pin!(gate);
        loop {
            tokio::select! {
                outcome = &mut gate => {
                    // The slot that failed leaves for good.
                    if let GateOutcome::Failed { evidence } = &outcome
                        && let Some(i) = app.instances.iter().position(|i| i.name == evidence.instance)
                    {
                        self.take_out(&mut eject, vec![(i, evidence.side)]).await;
                    }
                    break outcome;
                }
                // A slot whose last probe failed rests until its gate
                // passes.
                () = self.seen.round() => {
                    let failing = (self.watched.iter().copied())
                        .filter(|&slot| self.seen.of(slot).failing())
                        .collect();
                    self.take_out(&mut eject, failing).await;
                }
            }
        }
    }

    /// Takes `slots` out one by one once the drain is in force (no drain
    /// in force, it failed: nothing moves).
    async fn take_out(&self, eject: &mut Eject, slots: Vec<GateSlot>) {
        if slots.is_empty() || self.drain_done.clone().await.is_err() {
            return;
        }
        self.ejecting.store(true, Ordering::SeqCst);
        for slot in slots {
            let ejected = eject.run(slot).await;
            let mut m = self.moved.borrow_mut();
            match ejected {
                Ejected::Out(routes, rested) => {
                    m.rested.push(rested);
                    eject.routes = routes.clone();
                    eject.routes_unknown = false;
                    m.routes = Some(routes);
                }
                Ejected::Unknown => m.unknown = true,
                Ejected::Nothing => {}
            }
        }
        self.ejecting.store(false, Ordering::SeqCst);
    }
}
