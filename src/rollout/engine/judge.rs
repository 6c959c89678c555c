//! The gates a stage waits on: which slots a gate judges and against
//! which old ones, its deadline, its outcome turned into a failure or a
//! pass, the monitor and the wait for an approval.

use std::time::Duration;

use serde_json::Value;

use super::{Engine, Failure, OPEN_WATCH, Undo};
use crate::model::event::EventKind;
use crate::model::{DeploymentState, Trigger};
use crate::rollout::gate::{self, GateMode, GateOutcome, GateSlot};

impl Engine {
    /// The old release's slots that still serve: the live side of every
    /// instance this rollout has not replaced there (none on an install).
    /// A comparison probe
    /// compares a gate's slots with them; none once the new release serves
    /// everywhere (the last batch, after a blue-green switch).
    pub(super) fn baseline_slots(&self) -> Vec<GateSlot> {
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
    pub(super) fn replaced_slots(&self) -> Vec<GateSlot> {
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
    pub(super) fn replaced_live_slots(&self) -> Vec<GateSlot> {
        let mut slots = self.replaced_slots();
        slots.retain(|(i, side)| self.live[*i] == *side);
        slots
    }

    /// Where in the undo list this rollout last started its release on
    /// `slot` (later is larger); `None` when it did not replace it.
    pub(super) fn started_at(&self, slot: GateSlot) -> Option<usize> {
        self.undo.iter().rposition(
            |u| matches!(u, Undo::Replaced { instance, side, .. } if (*instance, *side) == slot),
        )
    }

    pub(super) fn deadline(&self) -> GateMode {
        GateMode::Deploy {
            deadline: self.app().health.deadline,
        }
    }

    pub(super) async fn gate(&mut self, slots: &[GateSlot], mode: GateMode) -> Result<(), Failure> {
        self.gate_until(slots, mode, false).await
    }

    /// Runs a gate; with `until_approved`, an operator's approval also
    /// ends it, at once (nothing is recorded for the gate then: the
    /// approval is).
    pub(super) async fn gate_until(
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
    pub(super) fn judge_gate(&self, outcome: GateOutcome) -> Result<(), Failure> {
        let evidence = serde_json::to_value(&outcome).unwrap_or(Value::Null);
        match &outcome {
            GateOutcome::Passed { .. } => {
                self.event(EventKind::GatePassed(outcome.clone()), None);
                Ok(())
            }
            GateOutcome::Failed { evidence: e } => {
                // Which rule fired: the streak or the window's budget.
                let rule = match e.rule {
                    Some(crate::rollout::gate::FailRule::Budget) => {
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
    pub(super) async fn watch(
        &mut self,
        slots: &[GateSlot],
        length: Duration,
    ) -> Result<(), Failure> {
        if length.is_zero() {
            return Ok(());
        }
        self.gate(slots, GateMode::Monitor { length }).await
    }

    /// Manual step: keep watching health, as one unbroken watch, until an
    /// operator approves (taken as soon as the worker reads it).
    pub(super) async fn wait_for_approval(&mut self, slots: &[GateSlot]) -> Result<(), Failure> {
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
}
