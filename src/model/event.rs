//! Every event rollguard records in its audit log, each with its typed
//! payload. The store keeps an event as its kind (e.g. `gate_failed`) and
//! its payload as JSON (the `evidence` column); [`EventKind::to_stored`]
//! and [`EventKind::from_stored`] are the only places where the two meet.
//! A stored kind this version does not know, or a payload that does not
//! fit its kind, reads as an [`UnknownEvent`] error, never a panic.
//!
//! Payloads that are other modules' documents (a plan, a stage, a routing,
//! a rollback's checks) are carried as JSON values; everything else is
//! typed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::evidence::{Evidence, GateOutcome};
use super::incident::IncidentCause;
use super::rollout::{DeploymentKind, Outcome, Side, Trigger, Verb};

/// An event and its payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "evidence", rename_all = "snake_case")]
pub enum EventKind {
    /// A deploy (or manual rollback) was asked for and recorded.
    DeployRequested {
        /// The release running before, when one ran everywhere.
        #[serde(default)]
        from: Option<String>,
        /// The release deployed.
        to: String,
        /// The strategy, as stored.
        #[serde(default)]
        strategy: Value,
        /// A deploy or a manual rollback.
        #[serde(default = "deploy_kind")]
        kind: DeploymentKind,
    },
    /// A manual rollback was asked for, with its checks.
    RollbackRequested {
        /// The checks and what they found.
        #[serde(default)]
        checks: Value,
        /// Whether failed checks were overridden.
        #[serde(default)]
        forced: bool,
    },
    /// The app's lock was taken.
    LockTaken,
    /// An abandoned lock was broken.
    LockBroken {
        /// The lock as it was.
        #[serde(default)]
        lock: Value,
    },
    /// The lock was released at the end.
    LockReleased,
    /// The lock was broken or taken by another process while the rollout
    /// ran: its worker stopped there.
    LockLost,
    /// The deployment was interrupted and a later one of the app started.
    DeploymentSuperseded,
    /// `rollguard recover` started a new worker (the reason says how).
    RecoverRequested,
    /// The worker began the plan.
    RolloutStarted {
        /// The plan.
        #[serde(default)]
        plan: Value,
        /// The strategy.
        #[serde(default)]
        strategy: Value,
    },
    /// A new worker picked up an interrupted deployment.
    RecoveryStarted {
        /// `resume` or `rollback`.
        mode: String,
        /// The first stage that had not passed.
        from_stage: usize,
        /// How many slots the records say were replaced.
        #[serde(default)]
        replaced: usize,
    },
    /// A stage began.
    StageStarted {
        /// Its position, from 0.
        index: usize,
        /// The stage.
        #[serde(default)]
        stage: Value,
        /// What it does, in words.
        #[serde(default)]
        describe: String,
    },
    /// Traffic is about to move.
    TrafficChanging {
        /// The routing asked for.
        #[serde(default)]
        to: Value,
    },
    /// Traffic moved.
    TrafficChanged {
        /// How long the balancer took.
        elapsed_ms: u64,
        /// The split, in words, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        describe: Option<String>,
    },
    /// Traffic switched to the new sides (blue-green, or a surge batch).
    TrafficSwitched {
        /// Each instance's live side after the switch.
        live: Vec<Side>,
        /// The instances switched (a surge batch); all when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instances: Option<Vec<String>>,
    },
    /// A gate passed.
    GatePassed(GateOutcome),
    /// A gate failed.
    GateFailed(GateOutcome),
    /// A gate's deadline passed.
    DeadlineExceeded(GateOutcome),
    /// Pausing between batches (`pause`).
    Paused {
        /// For how long.
        ms: u64,
    },
    /// A manual step waits for `approve`.
    WaitingApproval,
    /// An operator paused the rollout; it waits for `resume`.
    PausedByOperator {
        /// The stage that runs on resume.
        next_stage: usize,
        /// Who paused it.
        #[serde(default)]
        actor: Option<String>,
    },
    /// An operator resumed the rollout.
    Resumed {
        /// The stage that runs now.
        next_stage: usize,
        /// Who resumed it.
        #[serde(default)]
        actor: Option<String>,
    },
    /// A failed batch was undone to be tried again.
    BatchRetried {
        /// What failed.
        trigger: Trigger,
        /// Its code.
        code: String,
        /// What the failure saw, its keys beside the trigger's (for a
        /// gate: its flat outcome).
        #[serde(flatten)]
        evidence: Value,
        /// Failed attempts so far.
        failed_batches: u32,
    },
    /// The rollout failed; what follows is its rollback, an armed
    /// rollback, or nothing (`auto_rollback = "off"`).
    RolloutFailed {
        /// What failed.
        trigger: Trigger,
        /// Its code.
        code: String,
        /// What the failure saw, its keys beside the trigger's (for a
        /// gate: its flat outcome, `{"result": "failed", "instance": …}`).
        #[serde(flatten)]
        evidence: Value,
    },
    /// The rollback is armed and fires unless held.
    RollbackArmed {
        /// When it fires.
        fires_in_ms: u64,
    },
    /// The armed rollback fired (the reason says by whom or why).
    RollbackFired,
    /// The armed rollback was held by an operator.
    RollbackHeld,
    /// The rollback began.
    RollbackStarted {
        /// What started it.
        trigger: Trigger,
        /// Its code.
        code: String,
    },
    /// `auto_rollback = "off"`: nothing was undone.
    RollbackSkipped,
    /// Traffic could not be put back during the rollback.
    RollbackTrafficFailed,
    /// An instance's slot was restored.
    InstanceRestored {
        /// The instance.
        instance: String,
        /// Its side.
        side: Side,
        /// What runs there again, when anything does.
        #[serde(default)]
        version: Option<String>,
    },
    /// An instance's slot could not be restored (the reason says why).
    InstanceNotRestored {
        /// The instance.
        instance: String,
        /// Its side.
        side: Side,
    },
    /// Stopping an old side after success failed (reported only).
    RetireFailed,
    /// The rollback ended with every instance restored.
    RollbackCompleted {
        /// Instances not restored (none).
        #[serde(default)]
        unrestored: Vec<String>,
        /// The outcome.
        outcome: Outcome,
    },
    /// The rollback ended with instances or traffic not restored.
    RollbackFailed {
        /// Instances not restored.
        #[serde(default)]
        unrestored: Vec<String>,
        /// The outcome.
        outcome: Outcome,
    },
    /// Every stage passed.
    RolloutCompleted {
        /// The release now running.
        version: String,
    },
    /// An operator approved a manual step.
    CommandApprove(Sender),
    /// An operator held an armed rollback.
    CommandHold(Sender),
    /// An operator fired an armed rollback.
    CommandFire(Sender),
    /// An operator aborted the rollout.
    CommandAbort(Sender),
    /// An operator paused the rollout.
    CommandPause(Sender),
    /// An operator resumed the rollout.
    CommandResume(Sender),
    /// An instance turned unhealthy, or a rollout's gate failed, while the
    /// app had no open incident: an outage began.
    IncidentOpened {
        /// The incident's id.
        incident: i64,
        /// What opened it.
        #[serde(default)]
        cause: IncidentCause,
        /// What failed: the probe, its thresholds, the counts, the last
        /// samples, per instance and probe.
        #[serde(default)]
        evidence: Vec<Evidence>,
    },
    /// More instances or probes failed during an open incident.
    IncidentWidened {
        /// The incident's id.
        incident: i64,
        /// What failed since it opened.
        #[serde(default)]
        evidence: Vec<Evidence>,
    },
    /// The app stayed healthy for its `resolve_after`: the outage ended.
    IncidentResolved {
        /// The incident's id.
        incident: i64,
        /// When it opened.
        opened_ms: i64,
        /// When the app was healthy again.
        healthy_ms: i64,
        /// The outage's length: from opening to healthy again.
        outage_ms: u64,
        /// The instances that failed during it.
        #[serde(default)]
        instances: Vec<String>,
    },
    /// A notification reached its receiver.
    NotificationSent {
        /// The receiver's name.
        receiver: String,
        /// The notification's id (its outbox row).
        notification: i64,
        /// What it told of (`incident_opened`, ...).
        topic: String,
        /// Attempts it took.
        attempts: u32,
    },
    /// A notification was given up after its retries (the reason says
    /// what its receiver last answered).
    NotificationFailed {
        /// The receiver's name.
        receiver: String,
        /// The notification's id (its outbox row).
        notification: i64,
        /// What it told of.
        topic: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// Who sent an operator's command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The user.
    #[serde(default)]
    pub actor: String,
}

fn deploy_kind() -> DeploymentKind {
    DeploymentKind::Deploy
}

/// A stored event this version cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {kind:?} cannot be read: {why}")]
pub struct UnknownEvent {
    /// The stored kind.
    pub kind: String,
    /// What does not fit.
    pub why: String,
}

impl EventKind {
    /// The command event of `verb`, sent by `actor`.
    pub fn command(verb: Verb, actor: &str) -> EventKind {
        let sender = Sender {
            actor: actor.to_string(),
        };
        match verb {
            Verb::Approve => EventKind::CommandApprove(sender),
            Verb::Hold => EventKind::CommandHold(sender),
            Verb::Fire => EventKind::CommandFire(sender),
            Verb::Abort => EventKind::CommandAbort(sender),
            Verb::Pause => EventKind::CommandPause(sender),
            Verb::Resume => EventKind::CommandResume(sender),
        }
    }

    /// The verb and sender of a command event.
    pub fn as_command(&self) -> Option<(Verb, &Sender)> {
        match self {
            EventKind::CommandApprove(s) => Some((Verb::Approve, s)),
            EventKind::CommandHold(s) => Some((Verb::Hold, s)),
            EventKind::CommandFire(s) => Some((Verb::Fire, s)),
            EventKind::CommandAbort(s) => Some((Verb::Abort, s)),
            EventKind::CommandPause(s) => Some((Verb::Pause, s)),
            EventKind::CommandResume(s) => Some((Verb::Resume, s)),
            _ => None,
        }
    }

    /// The stored form: the kind, and the payload (`None` for none).
    pub fn to_stored(&self) -> (String, Option<Value>) {
        let mut v = match serde_json::to_value(self) {
            Ok(v) => v,
            // Every payload is plain data: serializing cannot fail.
            Err(e) => return ("unencodable".into(), Some(Value::String(e.to_string()))),
        };
        let kind = v["kind"].as_str().unwrap_or("unknown").to_string();
        let evidence = v
            .as_object_mut()
            .and_then(|o| o.remove("evidence"))
            .filter(|e| !e.is_null());
        (kind, evidence)
    }

    /// Reads a stored event back; a payload in the nested form older
    /// versions wrote is lifted first (see `lifted`).
    pub fn from_stored(kind: &str, evidence: Option<&Value>) -> Result<EventKind, UnknownEvent> {
        let mut doc = serde_json::Map::new();
        doc.insert("kind".into(), Value::String(kind.to_string()));
        if let Some(e) = evidence.filter(|e| !e.is_null()) {
            doc.insert("evidence".into(), lifted(kind, e.clone()));
        }
        serde_json::from_value(Value::Object(doc)).map_err(|e| UnknownEvent {
            kind: kind.to_string(),
            why: e.to_string(),
        })
    }
}

/// A payload in the form versions before the flat one wrote, made flat:
/// a failed gate's `{"result": "failed", "evidence": {…}}` becomes
/// `{"result": "failed", …}`, and a failure's `{"trigger", "code",
/// "evidence": outcome}` gets the outcome's keys beside its own. Other
/// payloads are returned as they are.
fn lifted(kind: &str, mut payload: Value) -> Value {
    type Object = serde_json::Map<String, Value>;
    fn failed(o: &Object) -> bool {
        o.get("result").and_then(Value::as_str) == Some("failed")
    }
    /// Moves the keys of `o["evidence"]` (an object) beside its own.
    fn merge_nested(o: &mut Object) {
        if let Some(Value::Object(inner)) = o.remove("evidence") {
            for (k, v) in inner {
                o.entry(k).or_insert(v);
            }
        }
    }
    let Some(outer) = payload.as_object_mut() else {
        return payload;
    };
    match kind {
        "gate_passed" | "gate_failed" | "deadline_exceeded" if failed(outer) => merge_nested(outer),
        "rollout_failed" | "batch_retried" => match outer.get_mut("evidence") {
            Some(Value::Object(inner)) => {
                if failed(inner) {
                    merge_nested(inner);
                }
                merge_nested(outer);
            }
            Some(Value::Null) => {
                outer.remove("evidence");
            }
            _ => {}
        },
        _ => {}
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_keep_their_stored_names_and_shapes() {
        let e = EventKind::RollbackArmed { fires_in_ms: 5000 };
        assert_eq!(
            e.to_stored(),
            (
                "rollback_armed".to_string(),
                Some(json!({"fires_in_ms": 5000}))
            )
        );
        assert_eq!(
            EventKind::LockTaken.to_stored(),
            ("lock_taken".to_string(), None)
        );
        let c = EventKind::command(Verb::Fire, "ana");
        assert_eq!(
            c.to_stored(),
            ("command_fire".to_string(), Some(json!({"actor": "ana"})))
        );
        assert_eq!(
            c.as_command().map(|(v, s)| (v, s.actor.as_str())),
            Some((Verb::Fire, "ana"))
        );
    }

    #[test]
    fn stored_events_read_back_and_unknown_ones_are_errors() {
        for e in [
            EventKind::LockTaken,
            EventKind::Paused { ms: 2000 },
            EventKind::RolloutFailed {
                trigger: Trigger::GateFailed,
                code: crate::error::Code::GateFailed.as_str().into(),
                evidence: json!({"x": 1}),
            },
            EventKind::InstanceRestored {
                instance: "web-1".into(),
                side: Side::Alt,
                version: Some("v1".into()),
            },
            EventKind::command(Verb::Abort, "bo"),
        ] {
            let (kind, evidence) = e.to_stored();
            assert_eq!(EventKind::from_stored(&kind, evidence.as_ref()), Ok(e));
        }
        // Written by an older version, without the fields added since.
        let old = EventKind::from_stored("deploy_requested", Some(&json!({"to": "v2"})));
        assert!(matches!(
            old,
            Ok(EventKind::DeployRequested {
                kind: DeploymentKind::Deploy,
                ..
            })
        ));
        let err = EventKind::from_stored("teleported", None).unwrap_err();
        assert_eq!(err.kind, "teleported");
        assert!(EventKind::from_stored("paused", Some(&json!({"ms": "soon"}))).is_err());
        assert!(EventKind::from_stored("paused", None).is_err());
    }

    #[test]
    fn a_gates_evidence_is_stored_flat_and_old_nested_records_read_the_same() {
        use crate::model::evidence::Evidence;
        let gate_failed = crate::error::Code::GateFailed.as_str();
        let evidence = Evidence {
            instance: "web-2".into(),
            probe: "health".into(),
            failures: 2,
            ..Evidence::default()
        };
        let failed = GateOutcome::Failed {
            evidence: evidence.clone(),
        };
        let (kind, stored) = EventKind::GateFailed(failed.clone()).to_stored();
        let stored = stored.unwrap();
        assert_eq!(kind, "gate_failed");
        assert_eq!(stored["result"], "failed");
        assert_eq!(stored["probe"], "health", "{stored}");
        assert!(stored.get("evidence").is_none(), "{stored}");
        let rollout = EventKind::RolloutFailed {
            trigger: Trigger::GateFailed,
            code: gate_failed.into(),
            evidence: serde_json::to_value(&failed).unwrap(),
        };
        let (_, flat) = rollout.to_stored();
        let flat = flat.unwrap();
        assert_eq!(flat["trigger"], "gate_failed");
        assert_eq!(flat["instance"], "web-2", "{flat}");
        assert_eq!(
            EventKind::from_stored("rollout_failed", Some(&flat)),
            Ok(rollout.clone())
        );

        // The nested forms an older version wrote.
        let nested_gate = json!({"result": "failed", "evidence": evidence});
        assert_eq!(
            EventKind::from_stored("gate_failed", Some(&nested_gate)),
            Ok(EventKind::GateFailed(failed.clone()))
        );
        let nested_rollout =
            json!({"trigger": "gate_failed", "code": gate_failed, "evidence": nested_gate});
        assert_eq!(
            EventKind::from_stored("rollout_failed", Some(&nested_rollout)),
            Ok(rollout)
        );
        let passed =
            json!({"result": "passed", "elapsed_ms": 5, "evidence": [{"instance": "web-1"}]});
        let Ok(EventKind::GatePassed(GateOutcome::Passed { evidence, .. })) =
            EventKind::from_stored("gate_passed", Some(&passed))
        else {
            panic!("an old pass reads");
        };
        assert_eq!(evidence[0].instance, "web-1");
        let (_, now) = EventKind::GatePassed(GateOutcome::Passed {
            elapsed_ms: 5,
            evidence,
        })
        .to_stored();
        assert_eq!(now.unwrap()["instances"][0]["instance"], "web-1");
    }

    #[test]
    fn a_failure_with_nothing_seen_reads_back() {
        let aborted = crate::error::Code::Aborted.as_str();
        let e = EventKind::RolloutFailed {
            trigger: Trigger::Abort,
            code: aborted.into(),
            evidence: Value::Null,
        };
        let (kind, stored) = e.to_stored();
        assert_eq!(stored, Some(json!({"trigger": "abort", "code": aborted})));
        let back = EventKind::from_stored(&kind, stored.as_ref()).unwrap();
        let EventKind::RolloutFailed { trigger, .. } = back else {
            panic!("{back:?}")
        };
        assert_eq!(trigger, Trigger::Abort);
        let old = json!({"trigger": "abort", "code": aborted, "evidence": null});
        assert!(EventKind::from_stored(&kind, Some(&old)).is_ok());
    }
}
