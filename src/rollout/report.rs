//! A deployment's report: what was planned and done, typed, read in one
//! place. `history --json` prints it; the console's History view reads it.
//!
//! Reading fails when the store fails: a damaged database gives an error,
//! never a report with no batches.

use serde::Serialize;
use serde_json::Value;

use super::plan::Stage;
use crate::config::Strategy;
use crate::error::UserError;
use crate::model::event::EventKind;
use crate::model::{BatchState, DeploymentKind, DeploymentState, Outcome, Trigger, Verb};
use crate::store::{Event, InstanceChange, Store};

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
#[derive(Clone, Debug, Serialize)]
pub struct DeploymentReport {
    /// The deployment id.
    pub id: i64,
    /// The app.
    pub app: String,
    /// A deploy, or a manual rollback.
    pub kind: DeploymentKind,
    /// The version before, when one ran everywhere.
    pub from: Option<String>,
    /// The version deployed (or rolled back to).
    pub to: String,
    /// The strategy.
    pub strategy: Strategy,
    /// Where it is.
    pub state: DeploymentState,
    /// How it ended; `None` while it runs.
    pub outcome: Option<Outcome>,
    /// Who started it.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When it started.
    pub started_at_ms: i64,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
    /// How long it took.
    pub duration_ms: Option<i64>,
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
    /// Warnings from planning and preflight.
    pub warnings: Vec<String>,
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
    let kind = d.kind();
    Ok(Some(DeploymentReport {
        id: d.id,
        app: d.app,
        kind,
        from: d.from_version,
        to: d.to_version,
        strategy: d.strategy,
        state: d.state,
        outcome: d.outcome,
        actor: d.actor,
        reason: d.reason,
        started_at_ms: d.started_at_ms,
        ended_at_ms: d.ended_at_ms,
        duration_ms: d.ended_at_ms.map(|e| e - d.started_at_ms),
        batches,
        changes,
        commands,
        rollback,
        events,
        warnings: d.warnings,
    }))
}
