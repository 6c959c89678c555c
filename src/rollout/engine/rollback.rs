//! The way back once `decide` says so: a rollback armed and fired, or
//! left as it is; the engine's undo list rebuilt on recovery; the end of
//! a rollout that deployed or rolled back.

use serde_json::Value;

use super::{Engine, Failure, Finished, Undo};
use crate::driver::{Side, Snapshot};
use crate::model::event::EventKind;
use crate::model::{ChangeAction, DeploymentState, Outcome, Trigger, now_ms};
use crate::rollout::decide::Observation;
use crate::rollout::routing;

impl Engine {
    /// `confirm` mode: arms the rollback and waits for the window, `fire`,
    /// `hold` or `abort`.
    pub(super) async fn arm(&mut self) -> Observation {
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

    /// Undoes everything the rollout did; says how many of the instances
    /// it touched could not be restored.
    pub(super) async fn roll_back(&mut self) -> Observation {
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
    pub(super) fn leave_as_is(self) -> Finished {
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
    pub(super) fn finish_rollback(self, outcome: Outcome) -> Finished {
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

    pub(super) fn finish_deployed(self) -> Finished {
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

    /// The instances a failure's evidence names (by index): the failed
    /// probe's (a comparison names its new side's, comma-separated), a
    /// deadline's late ones, or the one whose start failed.
    pub(super) fn failed_instances(&self, f: &Failure) -> Vec<usize> {
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
    pub(super) fn rebuild_undo(&mut self) -> Result<(), crate::store::StoreError> {
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
}
