//! The engine's way back: undoing a rollout in the order
//! [`undo_steps`] gives, restore groups in waves, and each restored slot
//! back in traffic as soon as it passes its own gate. Who serves meanwhile
//! is decided by the pure rules of [`routing`] ([`routing::held_back`],
//! [`routing::while_restoring`]) from what is known of each live slot: a
//! [`Standing`] built here from the routes, the undo list and what the
//! rollout's gates have seen.

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::{Engine, Undo};
use crate::driver::{Side, Slot, Snapshot};
use crate::model::event::EventKind;
use crate::model::{ChangeAction, ChangeState, Version};
use crate::rollout::decide::{Done, UndoStep, undo_steps};
use crate::rollout::gate;
use crate::rollout::routing::{self, Route, Standing};

/// A slot restored (or not) and gated (when live): instance, side, its
/// snapshot, the restore's change id, the driver's result, the gate's.
type Restored = (
    usize,
    Side,
    Option<Snapshot>,
    i64,
    Result<(), String>,
    Option<gate::GateOutcome>,
);

impl Engine {
    /// Undoes everything after `mark` ([`undo_steps`] says in which
    /// order and which slots together). Returns the names of instances
    /// that could not be restored.
    pub(super) async fn rollback_to(&mut self, mark: usize) -> Vec<String> {
        // Health checks cut short by an abort start again: a rollback is
        // what an abort asks for.
        let _ = self.cancel_tx.send(false);
        self.cancel = self.cancel_tx.subscribe();
        let done: Vec<Done> = self
            .undo
            .iter()
            .enumerate()
            .map(|(k, u)| match u {
                Undo::Routed { .. } => Done::Routed { routing: k },
                Undo::Replaced { instance, side, .. } => Done::Replaced {
                    slot: k,
                    in_place: self.orig_live.get(*instance) == Some(side),
                },
            })
            .collect();
        let steps = undo_steps(&done, mark, self.rollback_batch());
        self.restored.clear();
        let mut unrestored = Vec::new();
        for step in steps {
            match step {
                UndoStep::Route { routing } => {
                    if let Some(Undo::Routed { routes, live }) = self.undo.get(routing).cloned() {
                        self.live = live;
                        if let Err(f) = self.apply_routes(routes).await {
                            self.traffic_unrestored = true;
                            self.event(EventKind::RollbackTrafficFailed, Some(&f.reason));
                        }
                    }
                }
                UndoStep::Restore { slots } => {
                    let group: Vec<(usize, Side, Option<Snapshot>)> = slots
                        .iter()
                        .filter_map(|k| match self.undo.get(*k) {
                            Some(Undo::Replaced {
                                instance,
                                side,
                                snapshot,
                            }) => Some((*instance, *side, snapshot.clone())),
                            _ => None,
                        })
                        .collect();
                    for (name, reason, side) in self.restore_group(group).await {
                        self.event(
                            EventKind::InstanceNotRestored {
                                instance: name.clone(),
                                side,
                            },
                            Some(&reason),
                        );
                        if !unrestored.contains(&name) {
                            unrestored.push(name);
                        }
                    }
                }
            }
        }
        self.undo.truncate(mark);
        unrestored
    }

    /// How many slots a rollback restores at once: `rollback_batch`, by
    /// default every slot the rollout replaced.
    fn rollback_batch(&self) -> usize {
        match self.app().rollout.rollback_batch {
            Some(n) => n as usize,
            None => self.undo.len().max(1),
        }
    }

    /// Restores a group of slots together: each restore recorded first,
    /// traffic off them in one change, the snapshots put back (or what an
    /// install started stopped) at once, the live ones gated at once, and
    /// traffic back on the healthy ones in one change. When nothing good
    /// serves, the group's [`routing::held_back`] slot (the stand-in: the
    /// live slot that started the failed release last and was never seen
    /// failing) serves alone while the rest is restored, and follows once
    /// something restored serves. Returns the slots that could not be
    /// restored: (instance, why, side).
    async fn restore_group(
        &mut self,
        group: Vec<(usize, Side, Option<Snapshot>)>,
    ) -> Vec<(String, String, Side)> {
        let mut failed = Vec::new();
        let mut rest = group;
        while !rest.is_empty() {
            let live: Vec<usize> = rest
                .iter()
                .filter(|(i, side, _)| self.live[*i] == *side)
                .map(|(i, ..)| *i)
                .collect();
            let held = routing::held_back(&self.standings(&self.routes), &live).and_then(|h| {
                rest.iter()
                    .position(|(i, side, _)| *i == h && self.live[h] == *side)
            });
            let wave: Vec<_> = match held {
                Some(k) => {
                    let kept = rest.remove(k);
                    std::mem::replace(&mut rest, vec![kept])
                }
                None => std::mem::take(&mut rest),
            };
            failed.extend(self.restore_wave(wave).await);
        }
        failed
    }

    /// What is known of each instance's live slot with `routes` in force:
    /// whether it serves, still runs the failed release, was seen failing
    /// or passed by the rollout's gates, and when it started the failed
    /// release.
    fn standings(&self, routes: &[Route]) -> Vec<Standing> {
        (0..self.live.len())
            .map(|i| {
                let side = self.live[i];
                let seen = self.seen.of((i, side));
                let started = self.started_at((i, side));
                Standing {
                    serving: routes.get(i).is_some_and(|r| r.get(side).is_some()),
                    failed_release: self.runs_failed_release(i, side),
                    seen_failing: seen.failed,
                    passed: seen.passed,
                    started,
                }
            })
            .collect()
    }

    /// `routes` with each instance's live side in or out of traffic as
    /// `serve` says (a side coming in gets weight 1, one staying keeps its
    /// weight).
    fn serving_as(&self, routes: &mut [Route], serve: &[bool]) {
        for (i, route) in routes.iter_mut().enumerate() {
            let side = self.live[i];
            match (serve.get(i).copied().unwrap_or(false), route.get(side)) {
                (true, None) => route.set(side, Some(1)),
                (false, Some(_)) => route.set(side, None),
                _ => {}
            }
        }
    }

    /// Whether (instance, side) still runs the release being rolled back:
    /// replaced by this rollout and not restored yet.
    fn runs_failed_release(&self, i: usize, side: Side) -> bool {
        !self.restored.contains(&(i, side)) && self.started_at((i, side)).is_some()
    }

    /// Restores a wave of slots: each restore recorded first (write before
    /// act: no record, no restore), traffic off the wave in one change (and
    /// off every live slot still running the failed release once something
    /// good serves), then every slot restored and gated on its own, all at
    /// once. Each live slot comes back into traffic as soon as it passes
    /// its gate, and every live slot still running the failed release
    /// leaves with it: the first good instance back ends the errors.
    async fn restore_wave(
        &mut self,
        wave: Vec<(usize, Side, Option<Snapshot>)>,
    ) -> Vec<(String, String, Side)> {
        let mut failed = Vec::new();
        let from = Some(self.plan.to.to_string());
        let mut todo = Vec::new();
        for (i, side, snapshot) in wave {
            let Some(exec) = self.exec(i) else {
                failed.push((self.name(i), "no executor".to_string(), side));
                continue;
            };
            // What is put back: the release the snapshot saw, else the
            // plan's way back.
            let restored = snapshot
                .as_ref()
                .and_then(|s| s.version.as_ref())
                .or(self.plan.from.as_ref())
                .map(ToString::to_string);
            match self.try_change_to(
                None,
                i,
                ChangeAction::Restore,
                from.as_deref(),
                restored.as_deref(),
                json!({"side": side}),
            ) {
                Ok(id) => todo.push((i, side, snapshot, exec, id)),
                Err(e) => failed.push((
                    self.name(i),
                    format!("cannot record the restore, so it was not made: {e}"),
                    side,
                )),
            }
        }
        if todo.is_empty() {
            return failed;
        }
        let mut off = self.routes.clone();
        for (i, side, ..) in &todo {
            off[*i].set(*side, None);
        }
        let restoring: Vec<usize> = (todo.iter())
            .filter(|(i, side, ..)| self.live[*i] == *side)
            .map(|(i, ..)| *i)
            .collect();
        let serve = routing::while_restoring(&self.standings(&self.routes), &restoring);
        self.serving_as(&mut off, &serve);
        for (i, side, ..) in &todo {
            self.seen.forget((*i, *side));
        }
        if let Err(f) = self.apply_routes(off).await {
            for (i, side, _, _, id) in todo {
                self.change_done(id, ChangeState::Failed, json!({"error": f.reason}));
                failed.push((self.name(i), f.reason.clone(), side));
            }
            return failed;
        }
        // Every slot restored, then gated when it is live, on its own.
        let mut pending: FuturesUnordered<_> = todo
            .into_iter()
            .map(|(i, side, snapshot, exec, id)| {
                let (fleet, driver, prober) =
                    (self.fleet.clone(), self.driver.clone(), self.prober.clone());
                let (app, mode, cancel) = (self.app, self.deadline(), self.cancel.clone());
                let seen = self.seen.clone();
                let live = self.live[i] == side;
                async move {
                    let app = &fleet.apps[app];
                    let inst = &app.instances[i];
                    let slot = Slot {
                        app,
                        instance: inst,
                        host: fleet.host_of(inst),
                        side,
                    };
                    let label = slot.label();
                    let result = match &snapshot {
                        Some(s) if s.version.is_some() || s.driver == "docker" => {
                            driver.restore(&exec, slot, s).await
                        }
                        _ => driver.stop(&exec, slot).await,
                    };
                    // Driver errors already name the slot, except config ones.
                    let result = result.map_err(|e| match e {
                        crate::driver::DriverError::Config(m) => format!("{label}: {m}"),
                        other => other.to_string(),
                    });
                    let gated = match (&result, &snapshot) {
                        (Ok(()), Some(_)) if live => {
                            // A restored old release has nothing to compare with.
                            let slots = [(i, side)];
                            let sides = gate::Sides::alone(&slots);
                            Some(gate::run(&prober, &fleet, app, sides, mode, cancel, &seen).await)
                        }
                        _ => None,
                    };
                    (i, side, snapshot, id, result, gated)
                }
            })
            .collect();
        while !pending.is_empty() {
            tokio::select! {
                Some(first) = pending.next() => {
                    // Those done by now share one traffic change.
                    let mut done = vec![first];
                    while let Some(Some(more)) = pending.next().now_or_never() {
                        done.push(more);
                    }
                    failed.extend(self.back_in_traffic(done).await);
                }
                Some(sig) = self.signals.recv() => self.handle_signal(sig),
            }
        }
        failed
    }

    /// Takes restored slots' results: each recorded as failed, or put back
    /// into traffic (the live ones, in one change, which also takes out
    /// every live slot still running the failed release) and recorded as
    /// restored. Returns the slots that failed: (instance, why, side).
    async fn back_in_traffic(&mut self, done: Vec<Restored>) -> Vec<(String, String, Side)> {
        let mut failed = Vec::new();
        let mut healthy = Vec::new();
        for (i, side, snapshot, id, result, gated) in done {
            let label = self.slot(i, side).label();
            let failure = match (result, gated.map(|o| self.judge_gate(o))) {
                (Err(reason), _) => Some(reason),
                (Ok(()), Some(Err(f))) => {
                    Some(format!("{label}: restored but not healthy: {}", f.reason))
                }
                (Ok(()), _) => None,
            };
            match failure {
                Some(reason) => {
                    self.change_done(id, ChangeState::Failed, json!({"error": reason}));
                    failed.push((self.name(i), reason, side));
                }
                None => healthy.push((i, side, snapshot, id)),
            }
        }
        let mut on = self.routes.clone();
        for (i, side, snapshot, _) in &healthy {
            self.restored.push((*i, *side));
            if snapshot.is_some() && self.live[*i] == *side {
                on[*i].set(*side, Some(1));
            }
        }
        // The failed release leaves once something good serves (never
        // nothing); until then the stand-in serves.
        let serve = routing::while_restoring(&self.standings(&on), &[]);
        self.serving_as(&mut on, &serve);
        if let Err(f) = self.apply_routes(on).await {
            for (i, side, _, id) in healthy {
                self.restored.retain(|s| *s != (i, side));
                self.change_done(id, ChangeState::Failed, json!({"error": f.reason}));
                failed.push((self.name(i), f.reason.clone(), side));
            }
            return failed;
        }
        for (i, side, snapshot, id) in healthy {
            self.change_done(id, ChangeState::Done, Value::Null);
            let version = snapshot
                .as_ref()
                .and_then(|s| s.version.as_ref())
                .map(Version::to_string);
            let inst = self.name(i);
            if self.live[i] == side {
                self.set_instance_state(&inst, version.as_deref(), side);
            }
            self.event(
                EventKind::InstanceRestored {
                    instance: inst,
                    side,
                    version,
                },
                None,
            );
        }
        failed
    }

    fn name(&self, i: usize) -> String {
        self.app().instances[i].name.clone()
    }
}
