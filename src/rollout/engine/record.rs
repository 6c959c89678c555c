//! What the engine writes: events, changes before and after their effect,
//! the states of the deployment, its batches and instances, and what a
//! record it could not write means for the rollout (it stops at the next
//! safe point).

use serde_json::Value;

use super::{ACTOR, Engine, Failure};
use crate::driver::Side;
use crate::model::event::EventKind;
use crate::model::{
    BatchState, ChangeAction, ChangeState, DeploymentState, Outcome, Trigger, now_ms,
};
use crate::rollout::decide::Observation;

impl Engine {
    /// Records an event of this deployment. One that cannot be written
    /// stops the rollout at the next safe point.
    pub(super) fn event(&self, event: EventKind, reason: Option<&str>) {
        self.event_by(ACTOR, event, reason);
    }

    /// [`Engine::event`] with the actor who caused it (an operator).
    pub(super) fn event_by(&self, actor: &str, event: EventKind, reason: Option<&str>) {
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
    pub(super) fn incident(&self, failed: &[crate::model::evidence::Evidence]) {
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
    pub(super) fn try_change(
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
    pub(super) fn try_change_to(
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

    pub(super) fn change_done(&self, id: i64, state: ChangeState, detail: Value) {
        let detail = (!detail.is_null()).then_some(detail);
        if let Err(e) = self.store.set_change_state(id, state, detail.as_ref()) {
            self.lost_record(format!("could not record that a change is {state}: {e}"));
        }
    }

    /// Ends the deployment: the lock is released first, so whoever sees
    /// the outcome can deploy again at once.
    pub(super) fn finish(&self, state: DeploymentState, outcome: Outcome) {
        let app = self.app().name.clone();
        if let Ok(true) = self.store.unlock(&app, &crate::rollout::lock::me()) {
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
    pub(super) fn lost_record(&self, what: String) {
        // With its code: a follower that finds this worker gone reads it.
        tracing::error!("{}: {what}", crate::error::Code::Store);
        let _ = self.store_error.set(what);
    }

    /// At a safe point: the failure to report when a record was lost.
    pub(super) fn stop_for_lost_record(&mut self) -> Option<Observation> {
        let f = self.store_failure()?;
        self.failure = Some(f);
        Some(Observation::StageFailed {
            trigger: Trigger::Store,
            retryable: false,
        })
    }

    /// The failure of a rollout that lost a record, if it did.
    pub(super) fn store_failure(&self) -> Option<Failure> {
        self.store_error.get().map(|what| Failure {
            trigger: Trigger::Store,
            reason: format!("a record of the rollout could not be written ({what}); stopping here"),
            evidence: Value::Null,
        })
    }

    pub(super) fn set_batch_state(&self, batch: Option<i64>, state: BatchState) {
        if let Some(b) = batch
            && let Err(e) = self.store.set_batch_state(b, state)
        {
            self.lost_record(format!("could not record batch {b} as {state}: {e}"));
        }
    }

    pub(super) fn set_instance_state(&self, instance: &str, version: Option<&str>, side: Side) {
        let app = self.app().name.clone();
        if let Err(e) = self
            .store
            .set_instance_state(&app, instance, version, Some(side.as_str()))
        {
            self.lost_record(format!("could not record what {instance} runs: {e}"));
        }
    }

    pub(super) fn set_state(&self, state: DeploymentState) {
        if let Err(e) = self.store.set_deployment_state(self.deployment, state) {
            self.lost_record(format!("could not record the deployment's state: {e}"));
        }
    }

    /// Records what each instance runs and which side is live, as this
    /// rollout leaves them without a rollback: the next deploy plans from
    /// it.
    pub(super) fn record_as_left(&self) {
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

    /// Records the failure that [`decide`] answers with a rollback, an
    /// armed rollback or nothing (`auto_rollback = "off"`).
    pub(super) fn record_failure(&mut self) {
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

    /// Records why an armed rollback fires: its window, or who fired it.
    pub(super) fn record_fired(&mut self, seen: Observation) {
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
}
