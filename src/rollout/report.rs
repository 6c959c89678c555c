//! A deployment's report: what was planned and done, typed, read in one
//! place. `history --json` prints it; the console's History view reads it.
//!
//! Reading fails when the store fails: a damaged database gives an error,
//! never a report with no batches.

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use serde_json::Value;

use super::plan::Stage;
use crate::error::UserError;
use crate::model::event::EventKind;
use crate::model::{BatchState, DeploymentKind, Trigger, Verb};
use crate::store::{Deployment, Event, InstanceChange, Store};

/// One batch or step as reported.
#[derive(Clone, Debug, Serialize)]
pub struct BatchReport {
    /// Position, from 0.
    pub index: i64,
    /// `batch` or `step`.
    pub kind: String,
    /// The instances it changes.
    pub instances: Vec<String>,
    /// Where it is; a batch the rollout never reached before it ended is
    /// `skipped`.
    pub state: BatchState,
    /// The new side's traffic share in this step.
    pub traffic_percent: Option<f64>,
    /// When it started.
    pub started_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
    /// What the plan has it do; `None` when the stored plan does not say
    /// (or says it in a form this version cannot read).
    pub stage: Option<Stage>,
}

/// An operator's command, with who sent it and why.
#[derive(Clone, Debug, Serialize)]
pub struct CommandReport {
    /// When the rollout took it.
    pub at_ms: i64,
    /// What was asked.
    pub verb: Verb,
    /// Who asked.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
}

/// Why a rollout rolled back (or failed).
#[derive(Clone, Debug, Serialize)]
pub struct RollbackReport {
    /// What started it, e.g. `gate_failed`.
    pub trigger: Trigger,
    /// The stable code, e.g. `E_GATE_FAILED`.
    pub code: String,
    /// What happened, in words.
    pub reason: Option<String>,
    /// What the decision saw: for a failed gate, flat, the probe, its
    /// thresholds, the counts and the last samples beside `"result":
    /// "failed"`; for a deadline, the slots not healthy under `instances`.
    pub evidence: Value,
}

/// Everything recorded of one deployment.
///
/// Its JSON (`history --json`, `deploy --wait --json`) has the row's
/// fields at the top level beside what the report adds: `id`, `app`,
/// `kind`, `from`, `to`, `strategy`, `state`, `outcome`, `actor`,
/// `reason`, `started_at_ms`, `ended_at_ms`, `duration_ms`, `batches`,
/// `changes`, `commands`, `rollback`, `events`, `warnings` (the stored
/// plan is left out).
#[derive(Clone, Debug)]
pub struct DeploymentReport {
    /// Its row: the app, the versions, strategy, state, outcome, who
    /// started it and why, when, its plan and its warnings (from planning
    /// and preflight).
    pub deployment: Deployment,
    /// Its batches or steps, in order.
    pub batches: Vec<BatchReport>,
    /// Every change made to an instance, in order.
    pub changes: Vec<InstanceChange>,
    /// Operators' commands, in order.
    pub commands: Vec<CommandReport>,
    /// Why it rolled back, when it did.
    pub rollback: Option<RollbackReport>,
    /// Every event, in order.
    pub events: Vec<Event>,
}

impl DeploymentReport {
    /// A deploy, or a manual rollback.
    pub fn kind(&self) -> DeploymentKind {
        self.deployment.kind()
    }

    /// How long it took; `None` while it runs.
    pub fn duration_ms(&self) -> Option<i64> {
        let d = &self.deployment;
        d.ended_at_ms.map(|e| e - d.started_at_ms)
    }
}

impl Serialize for DeploymentReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let d = &self.deployment;
        let mut s = serializer.serialize_struct("DeploymentReport", 19)?;
        s.serialize_field("id", &d.id)?;
        s.serialize_field("app", &d.app)?;
        s.serialize_field("kind", &self.kind())?;
        s.serialize_field("from", &d.from_version)?;
        s.serialize_field("to", &d.to_version)?;
        s.serialize_field("strategy", &d.strategy)?;
        s.serialize_field("state", &d.state)?;
        s.serialize_field("outcome", &d.outcome)?;
        s.serialize_field("actor", &d.actor)?;
        s.serialize_field("reason", &d.reason)?;
        s.serialize_field("started_at_ms", &d.started_at_ms)?;
        s.serialize_field("ended_at_ms", &d.ended_at_ms)?;
        s.serialize_field("duration_ms", &self.duration_ms())?;
        s.serialize_field("batches", &self.batches)?;
        s.serialize_field("changes", &self.changes)?;
        s.serialize_field("commands", &self.commands)?;
        s.serialize_field("rollback", &self.rollback)?;
        s.serialize_field("events", &self.events)?;
        s.serialize_field("warnings", &d.warnings)?;
        s.end()
    }
}

/// The report of deployment `id`, or `None` when there is none.
pub fn read(store: &Store, id: i64) -> Result<Option<DeploymentReport>, UserError> {
    let Some(d) = store.deployment(id).map_err(UserError::from)? else {
        return Ok(None);
    };
    let ended = d.ended_at_ms.is_some();
    let stages: Vec<Option<Stage>> = d
        .plan
        .pointer("/plan/stages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| serde_json::from_value(v.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    let batches = store
        .batches(id)
        .map_err(UserError::from)?
        .into_iter()
        .map(|b| BatchReport {
            index: b.idx,
            kind: b.kind,
            instances: b.instances,
            state: if ended && b.state == BatchState::Pending {
                BatchState::Skipped
            } else {
                b.state
            },
            traffic_percent: b.traffic_percent,
            started_at_ms: b.started_at_ms,
            ended_at_ms: b.ended_at_ms,
            stage: usize::try_from(b.idx)
                .ok()
                .and_then(|i| stages.get(i).cloned().flatten()),
        })
        .collect();
    let changes = store.changes(id).map_err(UserError::from)?;
    let mut events = store.deployment_events(id, 0).map_err(UserError::from)?;
    let typed: Vec<Option<EventKind>> = events.iter().map(|e| e.typed().ok()).collect();
    // Each payload in the form this version writes, whatever version
    // wrote it: a gate's evidence flat, never nested in its outcome.
    for (e, t) in events.iter_mut().zip(&typed) {
        if let Some(t) = t {
            e.evidence = t.to_stored().1;
        }
    }
    let commands = events
        .iter()
        .zip(&typed)
        .filter_map(|(e, t)| {
            let (verb, sender) = t.as_ref()?.as_command()?;
            Some(CommandReport {
                at_ms: e.at_ms,
                verb,
                actor: sender.actor.clone(),
                reason: e.reason.clone(),
            })
        })
        .collect();
    let rollback = events.iter().zip(&typed).find_map(|(e, t)| match t {
        Some(EventKind::RolloutFailed {
            trigger,
            code,
            evidence,
        }) => Some(RollbackReport {
            trigger: *trigger,
            code: code.clone(),
            reason: e.reason.clone(),
            evidence: evidence.clone(),
        }),
        _ => None,
    });
    Ok(Some(DeploymentReport {
        deployment: d,
        batches,
        changes,
        commands,
        rollback,
        events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::model::{DeploymentState, Outcome};

    #[test]
    fn its_json_names_the_rows_fields_as_it_always_did_and_leaves_out_the_plan() {
        let report = DeploymentReport {
            deployment: Deployment {
                id: 7,
                app: "web".into(),
                from_version: Some("v2".into()),
                to_version: "v3".into(),
                strategy: Strategy::Rolling,
                state: DeploymentState::Done,
                outcome: Some(Outcome::Deployed),
                actor: "ana".into(),
                reason: Some("release 3".into()),
                started_at_ms: 1_000,
                ended_at_ms: Some(4_500),
                plan: serde_json::json!({"kind": "rollback", "plan": {"stages": []}}),
                warnings: vec!["w".into()],
            },
            batches: Vec::new(),
            changes: Vec::new(),
            commands: Vec::new(),
            rollback: None,
            events: Vec::new(),
        };
        assert_eq!(report.kind(), DeploymentKind::Rollback);
        assert_eq!(report.duration_ms(), Some(3_500));
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            "{\"id\":7,\"app\":\"web\",\"kind\":\"rollback\",\"from\":\"v2\",\"to\":\"v3\",\
             \"strategy\":\"rolling\",\"state\":\"done\",\"outcome\":\"deployed\",\
             \"actor\":\"ana\",\"reason\":\"release 3\",\"started_at_ms\":1000,\
             \"ended_at_ms\":4500,\"duration_ms\":3500,\"batches\":[],\"changes\":[],\
             \"commands\":[],\"rollback\":null,\"events\":[],\"warnings\":[\"w\"]}"
        );
    }
}
