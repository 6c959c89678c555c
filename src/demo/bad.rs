//! When the demo's bad release ([`BAD`], `v3`) turns bad: once the rollout
//! that deploys it has replaced every instance, each passing its gate,
//! and monitors them. Then its instances fail their health checks, well
//! inside the `monitor` time, and the rollout rolls back because of what
//! the monitor saw, as the README tells; whatever the time each batch
//! took, on a loaded machine too (a bad release that failed a fixed time
//! after its start failed the gate of a later batch, or none, depending on
//! the machine's speed).
//!
//! The demo watches its own history for that ([`watch`]): an app's mark in
//! [`MARKS`] is made when the newest rollout of `v3` on that app has begun
//! its monitor, and taken away when a new rollout of `v3` starts. `v3`'s
//! start script hands its instances the mark's path (`--fail-if-exists`),
//! so they fail while it exists.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::teardown::Teardown;
use crate::model::BatchState;
use crate::store::{Batch, Deployment, Store};

/// The demo's bad release.
pub const BAD: &str = "v3";

/// The folder (in the demo's) of the marks that make [`BAD`] fail, one
/// per app, named after it.
pub const MARKS: &str = "bad";

/// How often the history is read.
const POLL: Duration = Duration::from_millis(200);

/// Whether [`BAD`] fails on the app whose newest deployment is `d`, with
/// its batches `batches`: `Some(true)` once a rollout of it has begun its
/// monitor (and from then on, the way back included), `Some(false)` while
/// a rollout of it has yet to; `None` (as it was) for anything else.
pub fn fails(d: &Deployment, batches: &[Batch]) -> Option<bool> {
    if d.to_version != BAD {
        return None;
    }
    let stages = d.plan.pointer("/plan/stages")?.as_array()?;
    let monitor = stages.iter().position(|s| s["stage"] == "monitor")?;
    let state = batches
        .iter()
        .find(|b| usize::try_from(b.idx).ok() == Some(monitor))?
        .state;
    match state {
        BatchState::Pending if d.ended_at_ms.is_none() => Some(false),
        BatchState::Pending | BatchState::Skipped => None,
        _ => Some(true),
    }
}

/// Reads the history at `db` every `POLL` and makes or takes away each
/// of `apps`' marks under `dir`'s [`MARKS`] as [`fails`] says, until the
/// teardown begins.
pub fn watch(dir: &Path, db: PathBuf, apps: Vec<String>, teardown: Arc<Teardown>) {
    let marks = dir.join(MARKS);
    let spawned = std::thread::Builder::new()
        .name("demo-bad-release".into())
        .spawn(move || {
            let mut store = None;
            while !teardown.ending() {
                std::thread::sleep(POLL);
                if store.is_none() && db.exists() {
                    store = Store::open_read_only(&db).ok();
                }
                let Some(s) = &store else { continue };
                for app in &apps {
                    let Some(d) = s.deployments(Some(app), 1).ok().and_then(|d| d.into_iter().next())
                    else {
                        continue;
                    };
                    let Ok(batches) = s.batches(d.id) else {
                        continue;
                    };
                    let Some(bad) = fails(&d, &batches) else {
                        continue;
                    };
                    let mark = marks.join(app);
                    // Not while the teardown removes the folder.
                    teardown.unless_ending(|| {
                        if bad && !mark.exists() {
                            tracing::info!(
                                "demo: {app} {BAD} is monitored: from now on its instances fail their health checks"
                            );
                            let _ = std::fs::write(&mark, b"");
                        } else if !bad {
                            let _ = std::fs::remove_file(&mark);
                        }
                    });
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("the demo's {BAD} will not fail: cannot watch its history: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeploymentState, Outcome};
    use serde_json::json;

    fn deployment(to: &str, ended: bool) -> Deployment {
        Deployment {
            id: 1,
            app: "checkout".into(),
            from_version: Some("v1".into()),
            to_version: to.into(),
            strategy: crate::config::Strategy::Rolling,
            state: if ended {
                DeploymentState::Done
            } else {
                DeploymentState::Running
            },
            outcome: ended.then_some(Outcome::RolledBack),
            actor: "me".into(),
            reason: None,
            started_at_ms: 0,
            ended_at_ms: ended.then_some(1),
            plan: json!({"kind": "deploy", "plan": {"stages": [
                {"stage": "replace", "instances": [0]},
                {"stage": "replace", "instances": [1]},
                {"stage": "monitor"},
            ]}}),
            warnings: vec![],
        }
    }

    fn batches(states: &[&str]) -> Vec<Batch> {
        (0..)
            .zip(states)
            .map(|(idx, s)| Batch {
                id: idx + 10,
                deployment_id: 1,
                idx,
                kind: "batch".into(),
                instances: vec![],
                traffic_percent: None,
                state: BatchState::parse(s).expect("a known state"),
                started_at_ms: None,
                ended_at_ms: None,
            })
            .collect()
    }

    #[test]
    fn the_demos_bad_release_fails_once_its_rollout_monitors_it() {
        let running = deployment("v3", false);
        // Every batch's gate sees it sound.
        for states in [
            ["pending", "pending", "pending"],
            ["passed", "running", "pending"],
        ] {
            assert_eq!(fails(&running, &batches(&states)), Some(false));
        }
        // The monitor (and the way back) sees it fail.
        assert_eq!(
            fails(&running, &batches(&["passed", "passed", "running"])),
            Some(true)
        );
        let ended = deployment("v3", true);
        assert_eq!(
            fails(&ended, &batches(&["rolled_back", "rolled_back", "failed"])),
            Some(true)
        );
        // Ended before its monitor (aborted): left as it was.
        assert_eq!(
            fails(&ended, &batches(&["failed", "skipped", "skipped"])),
            None
        );
        // Another release: left as it was.
        assert_eq!(
            fails(
                &deployment("v2", false),
                &batches(&["passed", "passed", "running"])
            ),
            None
        );
    }
}
