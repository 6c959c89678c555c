//! What a console shows of each app's releases and rollouts. Everything is
//! read from the store, where the detached rollout worker writes it, so any
//! number of consoles watch the same rollout and none of them runs it.

use std::time::Duration;

use super::gate::GateOutcome;
use crate::config::{Fleet, Strategy};
use crate::store::Store;

use super::lock::breakable;
use crate::model::event::EventKind;
use crate::model::{BatchState, DeploymentState, Outcome, Side};

/// One app's releases and rollouts, as last read from the store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppRollouts {
    /// The versions its instances run, as recorded, each once, in instance
    /// order (empty when rollguard never deployed it).
    pub versions: Vec<String>,
    /// The instances whose live side is their `alt_port`, as recorded (a
    /// blue-green switch, or a surge, left it there): the side to probe.
    pub alt_live: Vec<String>,
    /// The rollout that has not ended, if any.
    pub active: Option<ActiveRollout>,
    /// The newest rollout that ended.
    pub last: Option<EndedRollout>,
}

/// A rollout that has not ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActiveRollout {
    /// Deployment id.
    pub id: i64,
    /// The version before, when known.
    pub from: Option<String>,
    /// The version being deployed.
    pub to: String,
    /// How it deploys.
    pub strategy: Strategy,
    /// The deployment's state.
    pub state: DeploymentState,
    /// The stage being worked on, from 1 (0 before the first starts).
    pub stage: usize,
    /// How many stages the plan has.
    pub stages: usize,
    /// The newest progress worth a line, e.g. "healthy: web-1 (512 ms)"
    /// (not that a rollback was armed, held or started: why).
    pub latest: Option<String>,
    /// When an armed rollback fires unless held, ms since the epoch.
    pub fires_at_ms: Option<i64>,
    /// Its worker is gone (crashed or killed): `rollguard recover` it.
    pub interrupted: bool,
    /// The instances it has started, stopped or restored something on so
    /// far, each once: while it runs, its gates judge them.
    pub changed: Vec<String>,
}

/// How the newest ended rollout ended.
#[derive(Clone, Debug, PartialEq)]
pub struct EndedRollout {
    /// Deployment id.
    pub id: i64,
    /// The version it deployed.
    pub to: String,
    /// How it ended.
    pub outcome: Outcome,
    /// When it ended, ms since the epoch.
    pub ended_at_ms: Option<i64>,
}

/// Reads every app of `fleet`, in fleet order. A read that fails leaves
/// that part empty: a console never stops over it.
pub fn read(store: &Store, fleet: &Fleet) -> Vec<AppRollouts> {
    fleet
        .apps
        .iter()
        .map(|a| read_app(store, &a.name))
        .collect()
}

/// Whether the worker of deployment `id` of `app`, not ended, is gone:
/// the app's lock is no longer held for it, or is held by a process that
/// has stopped (see [`breakable`]). A lock held for another deployment (a
/// newer start taking the app over) is not this one's worker gone.
pub fn interrupted(store: &Store, app: &str, id: i64) -> bool {
    match store.lock(app).ok().flatten() {
        Some(l) => l.deployment_id == Some(id) && breakable(&l).is_some(),
        None => true,
    }
}

/// Reads one app.
pub fn read_app(store: &Store, app: &str) -> AppRollouts {
    let mut versions: Vec<String> = Vec::new();
    let mut alt_live = Vec::new();
    for s in store.instance_states(app).unwrap_or_default() {
        if s.live_side.as_deref() == Some(Side::Alt.as_str()) {
            alt_live.push(s.instance.clone());
        }
        if let Some(v) = s.version
            && !versions.contains(&v)
        {
            versions.push(v);
        }
    }
    let active = store
        .unfinished_deployments(Some(app))
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|d| {
            let batches = store.batches(d.id).unwrap_or_default();
            let stage = batches
                .iter()
                .rposition(|b| b.state != BatchState::Pending)
                .map_or(0, |i| i + 1);
            let events = store.deployment_events(d.id, 0).unwrap_or_default();
            // Once a rollback is armed, held or started, why matters more
            // than that it was (the state already says so).
            let latest = events
                .iter()
                .rev()
                .filter(|e| {
                    !matches!(
                        e.typed(),
                        Ok(EventKind::RollbackArmed { .. }
                            | EventKind::RollbackHeld
                            | EventKind::RollbackStarted { .. })
                    )
                })
                .find_map(progress_text);
            let fires_at_ms = (d.state == DeploymentState::RollbackArmed)
                .then(|| {
                    events.iter().rev().find_map(|e| match e.typed() {
                        Ok(EventKind::RollbackArmed { fires_in_ms }) => {
                            Some(e.at_ms + i64::try_from(fires_in_ms).unwrap_or(i64::MAX))
                        }
                        _ => None,
                    })
                })
                .flatten();
            let interrupted = interrupted(store, app, d.id);
            let mut changed: Vec<String> = Vec::new();
            for c in store.changes(d.id).unwrap_or_default() {
                if !changed.contains(&c.instance) {
                    changed.push(c.instance);
                }
            }
            ActiveRollout {
                id: d.id,
                from: d.from_version,
                to: d.to_version,
                strategy: d.strategy,
                state: d.state,
                stage,
                stages: batches.len(),
                latest,
                fires_at_ms,
                interrupted,
                changed,
            }
        });
    let last = store
        .deployments(Some(app), 5)
        .unwrap_or_default()
        .into_iter()
        .find_map(|d| {
            Some(EndedRollout {
                id: d.id,
                to: d.to_version,
                outcome: d.outcome?,
                ended_at_ms: d.ended_at_ms,
            })
        });
    AppRollouts {
        versions,
        alt_live,
        active,
        last,
    }
}

/// What an event says as progress, or `None` for events not worth a line.
pub(crate) fn progress_text(e: &crate::store::Event) -> Option<String> {
    use crate::model::event::EventKind as K;
    let reason = e.reason.clone().unwrap_or_default();
    let with_reason = |what: &str| {
        if reason.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {reason}")
        }
    };
    let event = match e.typed() {
        Ok(event) => event,
        // Written by a newer version: say what it is called.
        Err(_) => return Some(with_reason(&e.kind.replace('_', " "))),
    };
    let text = match &event {
        K::DeployRequested { .. } | K::LockTaken | K::TrafficChanging { .. } | K::LockReleased => {
            return None;
        }
        K::TrafficChanged {
            elapsed_ms,
            describe,
        } => match describe {
            Some(split) => format!("traffic: {split} ({elapsed_ms} ms)"),
            None => format!("traffic moved ({elapsed_ms} ms)"),
        },
        K::RollbackRequested { .. } => format!(
            "rollback requested by {}: {}",
            e.actor,
            reason.strip_prefix("rollback: ").unwrap_or(&reason)
        ),
        K::RolloutStarted { .. } => "rollout started".to_string(),
        K::StageStarted {
            index, describe, ..
        } => format!("stage {}: {describe}", index + 1),
        K::GatePassed(outcome) => {
            let elapsed_ms = match outcome {
                GateOutcome::Passed { elapsed_ms, .. } => *elapsed_ms,
                _ => 0,
            };
            let who = outcome.healthy_instances();
            let spent = outcome
                .budget_words()
                .map(|b| format!(" · {b}"))
                .unwrap_or_default();
            format!("healthy: {} ({elapsed_ms} ms){spent}", who.join(", "))
        }
        K::InstanceRestored {
            instance,
            side,
            version,
        } => match version {
            Some(v) => format!("restored {instance} to {v}"),
            None => format!("stopped the new version on {instance} ({side} side)"),
        },
        K::GateFailed(outcome) => match outcome.budget_words() {
            Some(b) => format!("gate failed: {reason} ({b})"),
            None => format!("gate failed: {reason}"),
        },
        K::DeadlineExceeded(_) => format!("deadline exceeded: {reason}"),
        K::Paused { ms } => format!(
            "pausing {}",
            crate::config::format_duration(Duration::from_millis(*ms))
        ),
        K::TrafficSwitched {
            instances: Some(names),
            ..
        } => format!("traffic switched to the new version: {}", names.join(", ")),
        K::TrafficSwitched { .. } => "traffic switched".into(),
        K::RolloutFailed { code, .. } => format!("{code}: {reason}"),
        K::RollbackArmed { fires_in_ms } => format!(
            "rollback armed: fires in {} unless held (`rollguard hold`), or now with `rollguard fire`",
            crate::config::format_duration(Duration::from_millis(*fires_in_ms))
        ),
        K::RollbackStarted { .. } => "rolling back".into(),
        K::InstanceNotRestored { instance, .. } => {
            format!("could not restore {instance}: {reason}")
        }
        K::RollbackCompleted { .. } => "rollback completed".into(),
        K::RollbackFailed { .. } => format!("rollback failed: {reason}"),
        K::RolloutCompleted { .. } => "deployed".into(),
        K::PausedByOperator { actor, .. } => match actor {
            Some(a) => format!("paused by {a}; `rollguard resume` goes on"),
            None => "paused; `rollguard resume` goes on".into(),
        },
        K::Resumed { actor, .. } => match actor {
            Some(a) => format!("resumed by {a}"),
            None => "resumed".into(),
        },
        other => match other.as_command() {
            Some((verb, sender)) => with_reason(&format!("{verb} by {}", sender.actor)),
            None => with_reason(&other.to_stored().0.replace('_', " ")),
        },
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LockOwner;
    use serde_json::json;

    struct Db(std::path::PathBuf);

    impl Drop for Db {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn store(tag: &str) -> (Db, Store) {
        let dir = std::env::temp_dir().join(format!("rg-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Store::open(&dir.join("history.db")).unwrap();
        (Db(dir), s)
    }

    fn deployment(s: &Store, to: &str) -> i64 {
        let id = s
            .create_deployment(
                "web",
                Some("v2"),
                to,
                crate::config::Strategy::Rolling,
                "ana",
                None,
                &json!({}),
                &[],
            )
            .unwrap();
        let one = |i: &str| ("batch", vec![i.to_string()], None);
        let b = s
            .insert_batches(id, &[one("web-1"), one("web-2"), one("web-3")])
            .unwrap();
        s.set_batch_state(b[0], BatchState::Passed).unwrap();
        s.set_batch_state(b[1], BatchState::Running).unwrap();
        id
    }

    #[test]
    fn an_armed_rollback_reads_with_its_stage_countdown_and_progress() {
        let (_db, s) = store("armed");
        assert_eq!(read_app(&s, "web"), AppRollouts::default());
        let id = deployment(&s, "v3");
        let me = LockOwner {
            user: "ana".into(),
            ..crate::rollout::lock::me()
        };
        s.try_lock("web", &me, "deploy v3", Some(id))
            .unwrap()
            .unwrap();
        s.set_instance_state("web", "web-1", Some("v3"), None)
            .unwrap();
        s.set_instance_state("web", "web-2", Some("v2"), None)
            .unwrap();
        s.set_instance_state("web", "web-3", Some("v2"), None)
            .unwrap();
        let healthy =
            json!({"result": "passed", "evidence": [{"instance": "web-1"}], "elapsed_ms": 512});
        s.record_deployment_event(
            "web",
            Some(id),
            "gate_passed",
            "rollguard",
            None,
            Some(&healthy),
        )
        .unwrap();
        let armed = json!({"fires_in_ms": 30_000});
        let ev = s
            .record_deployment_event(
                "web",
                Some(id),
                "rollback_armed",
                "rollguard",
                None,
                Some(&armed),
            )
            .unwrap();
        s.set_deployment_state(id, DeploymentState::RollbackArmed)
            .unwrap();

        let r = read_app(&s, "web");
        assert_eq!(r.versions, ["v3", "v2"]);
        assert_eq!(r.last, None);
        let a = r.active.expect("active");
        assert_eq!(
            (a.id, a.to.as_str(), a.from.as_deref()),
            (id, "v3", Some("v2"))
        );
        assert_eq!((a.stage, a.stages), (2, 3));
        assert_eq!(a.state, DeploymentState::RollbackArmed);
        assert!(!a.interrupted, "its worker (this process) runs");
        let armed_at = s
            .deployment_events(id, ev - 1)
            .unwrap()
            .first()
            .unwrap()
            .at_ms;
        assert_eq!(a.fires_at_ms, Some(armed_at + 30_000));
        assert_eq!(a.latest.as_deref(), Some("healthy: web-1 (512 ms)"));

        // The worker dies: the lock's pid is gone.
        s.break_lock("web").unwrap();
        let dead = LockOwner {
            pid: 0x7fff_fff0,
            ..me
        };
        s.try_lock("web", &dead, "deploy v3", Some(id))
            .unwrap()
            .unwrap();
        assert!(read_app(&s, "web").active.unwrap().interrupted);

        // It ends: the last rollout, nothing active.
        s.finish_deployment(id, DeploymentState::Done, Outcome::RolledBack)
            .unwrap();
        let r = read_app(&s, "web");
        assert_eq!(r.active, None);
        let l = r.last.unwrap();
        assert_eq!(
            (l.id, l.to.as_str(), l.outcome),
            (id, "v3", Outcome::RolledBack)
        );
        assert!(l.ended_at_ms.is_some());
    }
}
