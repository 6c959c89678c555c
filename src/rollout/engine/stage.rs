//! A stage carried out: a batch replaced (snapshot, start, gate, traffic),
//! a traffic step, a pause; `min_healthy` checked before a batch leaves.

use serde_json::{Value, json};

use super::{Engine, Failure, Undo};
use crate::config::StepPause;
use crate::driver::Side;
use crate::model::event::EventKind;
use crate::model::{ChangeAction, ChangeState, Trigger};
use crate::rollout::gate::GateSlot;
use crate::rollout::plan::Stage;
use crate::rollout::routing::{self, Route};

impl Engine {
    /// Carries out stage `index` of the plan, with `batch` its batch row.
    pub(super) async fn stage(
        &mut self,
        index: usize,
        stage: &Stage,
        batch: Option<i64>,
    ) -> Result<(), Failure> {
        match stage {
            Stage::Replace { instances } => self.replace_batch(index, instances, batch).await,
            Stage::StartIdle { instances } => self.start_idle(instances, batch).await,
            Stage::SwitchBatch { instances } => self.switch_batch(index, instances).await,
            Stage::Shift { percent } => self.shift(*percent).await,
            Stage::Switch => self.switch_all().await,
            Stage::Monitor => self.monitor().await,
            Stage::Retire { instances, sides } => {
                self.retire(instances, sides, batch).await;
                Ok(())
            }
        }
    }

    /// A rolling batch: its instances leave traffic, are replaced and
    /// gated (with every live slot replaced before), come back with the
    /// weight they had, and the rollout pauses when the plan says so.
    async fn replace_batch(
        &mut self,
        index: usize,
        instances: &[usize],
        batch: Option<i64>,
    ) -> Result<(), Failure> {
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
        if self.plan.pauses_after(index) {
            self.pause(&slots).await?;
        }
        Ok(())
    }

    /// `[app.rollout] pause`, taken while `slots` stay watched.
    async fn pause(&mut self, slots: &[GateSlot]) -> Result<(), Failure> {
        let pause = self.app().rollout.pause;
        if pause.is_zero() {
            return Ok(());
        }
        self.event(
            EventKind::Paused {
                ms: pause.as_millis() as u64,
            },
            None,
        );
        self.watch(slots, pause).await
    }

    /// The new release started beside the old one (blue-green, surge, a
    /// canary) and gated with every live slot switched to it so far.
    async fn start_idle(&mut self, instances: &[usize], batch: Option<i64>) -> Result<(), Failure> {
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

    /// Traffic of a batch of instances switched to the side the new
    /// release started on; the old keeps running.
    async fn switch_batch(&mut self, index: usize, instances: &[usize]) -> Result<(), Failure> {
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
        if self.plan.pauses_after(index) {
            let slots = self.replaced_live_slots();
            self.pause(&slots).await?;
        }
        Ok(())
    }

    /// A canary step: `percent` of traffic to the canary, then its
    /// watch or an operator's approval.
    async fn shift(&mut self, percent: u32) -> Result<(), Failure> {
        let canary = self.plan.canary();
        self.undo.push(Undo::Routed {
            routes: self.routes.clone(),
            live: self.live.clone(),
        });
        let routes = routing::canary(&self.live, &canary, percent);
        self.apply_routes(routes).await?;
        let slots: Vec<GateSlot> = canary.iter().map(|&i| (i, self.live[i].other())).collect();
        match self.app().rollout.step_pause {
            StepPause::After(d) => self.watch(&slots, d).await,
            StepPause::Manual => self.wait_for_approval(&slots).await,
        }
    }

    /// Every instance's traffic switched to the other side at once.
    async fn switch_all(&mut self) -> Result<(), Failure> {
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

    /// `[app.health] monitor`: every live slot watched; a failure then
    /// is the monitor's.
    async fn monitor(&mut self) -> Result<(), Failure> {
        let length = self.app().health.monitor;
        if length.is_zero() {
            return Ok(());
        }
        let slots: Vec<GateSlot> = (0..self.live.len()).map(|i| (i, self.live[i])).collect();
        self.watch(&slots, length).await.map_err(|mut f| {
            if f.trigger == Trigger::GateFailed {
                f.trigger = Trigger::Monitor;
            }
            f
        })
    }

    /// The old sides stopped after a rollout that kept them running.
    /// Cleanup after success: a stop that fails is reported, not fatal.
    async fn retire(&mut self, instances: &[usize], sides: &[Side], batch: Option<i64>) {
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
                    self.change_done(id, ChangeState::Failed, json!({"error": e.to_string()}));
                    self.event(EventKind::RetireFailed, Some(&e.to_string()));
                }
            }
        }
    }

    pub(super) async fn apply_routes(&mut self, routes: Vec<Route>) -> Result<(), Failure> {
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

    /// Before a batch: enough instances outside it must be healthy.
    pub(super) async fn check_min_healthy(&mut self, batch: &[usize]) -> Result<(), Failure> {
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
}
