//! Planning a rollout: a pure function from the app's config, what runs now
//! and the target version to an ordered list of [`Stage`]s. No I/O: the
//! engine executes the plan, and `--dry-run` prints it.
//!
//! - rolling: `Replace` batches on each instance's live side, then `Monitor`;
//! - blue-green: `StartIdle` on every instance's idle side, `Switch`,
//!   `Monitor`, then `Retire` the old side (stopped, kept);
//! - canary: `StartIdle` on the first `canary` instances, one `Shift` per
//!   step, then `Replace` batches of every live side (promotion), `Monitor`,
//!   and `Retire` the canary.

use serde::{Deserialize, Serialize};

use crate::config::{App, BatchSize, Strategy};
use crate::driver::Side;
use crate::model::Version;

/// What runs on one instance now, as the engine found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceNow {
    /// The version on the live side; `None` when nothing runs.
    pub version: Option<Version>,
    /// Which side takes traffic.
    pub live: Side,
}

/// One step of a plan. Instances are indices into the app's instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Drain, replace on the live side, gate, undrain; then pause.
    Replace {
        /// Which instances, in order.
        instances: Vec<usize>,
    },
    /// Start the new version on the idle side and gate it (no traffic yet).
    StartIdle {
        /// Which instances.
        instances: Vec<usize>,
    },
    /// Canary: send this share of traffic to the idle sides, gate, pause.
    Shift {
        /// Percentage, 1..=100.
        percent: u32,
    },
    /// Blue-green: move all traffic to the idle sides at once.
    Switch,
    /// Rolling with `surge`: move these instances' traffic to the idle
    /// sides that a `StartIdle` just started; the old sides keep running,
    /// out of traffic, until they are retired after `monitor`.
    SwitchBatch {
        /// Which instances.
        instances: Vec<usize>,
    },
    /// Keep gating every new instance for the app's `monitor` time.
    Monitor,
    /// Stop the old side (blue-green) or the canary (kept, not removed).
    Retire {
        /// Which instances.
        instances: Vec<usize>,
        /// Which side of each (in the order of `instances`), as sides were
        /// when the rollout started: instances may be live on different
        /// sides.
        sides: Vec<Side>,
    },
}

impl Stage {
    /// `batch` or `step` (as stored).
    pub fn kind(&self) -> &'static str {
        match self {
            Stage::Shift { .. } => "step",
            _ => "batch",
        }
    }

    /// One line for people: what this stage does, naming instances.
    pub fn describe(&self, app: &App) -> String {
        let names = |ix: &[usize]| {
            ix.iter()
                .filter_map(|i| app.instances.get(*i))
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Stage::Replace { instances } => format!("replace {}", names(instances)),
            Stage::StartIdle { instances } => {
                format!("start beside the old version: {}", names(instances))
            }
            Stage::Shift { percent } => format!("send {percent}% of traffic to the canary"),
            Stage::Switch => "switch all traffic to the new version".into(),
            Stage::SwitchBatch { instances } => format!(
                "switch traffic to the new version (the old keeps running): {}",
                names(instances)
            ),
            Stage::Monitor => format!(
                "monitor for {}",
                crate::config::format_duration(app.health.monitor)
            ),
            Stage::Retire { instances, sides } => {
                let side = match sides.first() {
                    Some(s) if sides.iter().all(|x| x == s) => format!("{s} side"),
                    _ => "side of each".to_string(),
                };
                format!("stop the old {side} (kept): {}", names(instances))
            }
        }
    }

    /// The instances this stage touches.
    pub fn instances(&self, all: usize) -> Vec<usize> {
        match self {
            Stage::Replace { instances }
            | Stage::StartIdle { instances }
            | Stage::SwitchBatch { instances }
            | Stage::Retire { instances, .. } => instances.clone(),
            Stage::Shift { .. } | Stage::Switch | Stage::Monitor => (0..all).collect(),
        }
    }
}

/// A rollout plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The app.
    pub app: String,
    /// The strategy.
    pub strategy: Strategy,
    /// The version that runs now on every live side, if they agree.
    pub from: Option<Version>,
    /// The target.
    pub to: Version,
    /// Nothing runs yet: no rollback target; a failure stops what started.
    pub install: bool,
    /// In order.
    pub stages: Vec<Stage>,
    /// Things the operator should know (batch size clamped, mixed versions).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether the rollout pauses (`[app.rollout] pause`) after stage
    /// `index`: after each batch that replaces instances or switches their
    /// traffic, except the last of its kind, after which the monitor or
    /// the retire follows.
    pub fn pauses_after(&self, index: usize) -> bool {
        let last_of = |kind: fn(&Stage) -> bool| self.stages.iter().rposition(kind);
        match self.stages.get(index) {
            Some(Stage::Replace { .. }) => {
                Some(index) != last_of(|s| matches!(s, Stage::Replace { .. }))
            }
            Some(Stage::SwitchBatch { .. }) => {
                Some(index) != last_of(|s| matches!(s, Stage::SwitchBatch { .. }))
            }
            _ => false,
        }
    }

    /// The canary's instances in a canary plan: those its first start
    /// beside the old release starts (none when no stage starts one).
    pub fn canary(&self) -> Vec<usize> {
        self.stages
            .iter()
            .find_map(|s| match s {
                Stage::StartIdle { instances } => Some(instances.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// Why no plan can be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `min_healthy` leaves no instance free to replace.
    #[error(
        "min_healthy = {min_healthy} leaves no instance of {total} free to replace; lower min_healthy in [app.rollout]"
    )]
    MinHealthy {
        /// Configured.
        min_healthy: u32,
        /// Instances of the app.
        total: usize,
    },
    /// The strategy needs an alt port that an instance lacks.
    #[error("instance \"{0}\" has no alt_port, which this strategy needs")]
    NoAltPort(String),
    /// Every instance already runs the target.
    #[error("every instance of {app} already runs {version}")]
    NothingToDo {
        /// The app.
        app: String,
        /// The version.
        version: String,
    },
    /// The app has no instances.
    #[error("app {0} has no instances")]
    NoInstances(String),
}

/// The rolling batch size for `total` instances, before `min_healthy`.
pub fn batch_size(batch: BatchSize, total: usize) -> usize {
    match batch {
        BatchSize::Count(n) => (n as usize).min(total),
        BatchSize::Percent(p) => (total * p as usize).div_ceil(100).clamp(1, total.max(1)),
    }
}

/// Plans a rollout of `app` to `to` with `strategy`, given what runs now
/// (`now[i]` for instance `i`).
pub fn plan(
    app: &App,
    strategy: Strategy,
    now: &[InstanceNow],
    to: &Version,
) -> Result<Plan, PlanError> {
    let total = app.instances.len();
    if total == 0 {
        return Err(PlanError::NoInstances(app.name.clone()));
    }
    let mut warnings = Vec::new();
    let running: Vec<&Version> = now.iter().filter_map(|n| n.version.as_ref()).collect();
    let install = running.is_empty();
    let from = from_version(&running, total, &mut warnings);
    if !install && running.len() == total && running.iter().all(|v| *v == to) {
        return Err(PlanError::NothingToDo {
            app: app.name.clone(),
            version: to.to_string(),
        });
    }
    let live: Vec<Side> = (0..total)
        .map(|i| now.get(i).map_or(Side::Main, |n| n.live))
        .collect();
    let mut stages = Vec::new();
    match strategy {
        Strategy::Rolling if app.rollout.surge && !install => {
            stages = surge_stages(app, &live)?;
        }
        Strategy::Rolling => {
            if app.rollout.surge {
                warnings.push(
                    "nothing runs yet: surge has no old side to keep; installing batch by batch"
                        .into(),
                );
            }
            stages.extend(replace_batches(app, install, &mut warnings)?);
            stages.push(Stage::Monitor);
        }
        Strategy::BlueGreen => stages = blue_green_stages(app, &live, install, &mut warnings)?,
        Strategy::Canary => stages = canary_stages(app, &live, install, &mut warnings)?,
    }
    Ok(Plan {
        app: app.name.clone(),
        strategy,
        from,
        to: to.clone(),
        install,
        stages,
        warnings,
    })
}

/// The release every instance runs, when they all run one; a warning
/// when they run different ones or some run nothing.
fn from_version(running: &[&Version], total: usize, warnings: &mut Vec<String>) -> Option<Version> {
    match running.first() {
        Some(first) if running.iter().all(|v| v == first) && running.len() == total => {
            Some((*first).clone())
        }
        Some(_) => {
            let mut seen: Vec<String> = running.iter().map(|v| v.to_string()).collect();
            seen.sort();
            seen.dedup();
            warnings.push(format!(
                "instances run different versions ({}) or some run nothing; each is rolled back to what it ran",
                seen.join(", ")
            ));
            None
        }
        None => None,
    }
}

/// An error unless each of `instances` has an `alt_port` to start beside
/// the old release on.
fn needs_alt(app: &App, instances: &[usize]) -> Result<(), PlanError> {
    for &i in instances {
        if app.instances[i].alt_port.is_none() {
            return Err(PlanError::NoAltPort(app.instances[i].name.clone()));
        }
    }
    Ok(())
}

/// Every instance replaced in place, batch by batch: the batch size
/// lowered (with a warning) to keep `min_healthy` serving, unless nothing
/// runs yet.
fn replace_batches(
    app: &App,
    install: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Stage>, PlanError> {
    let total = app.instances.len();
    let wanted = batch_size(app.rollout.batch, total);
    let size = if install {
        wanted
    } else {
        let room = total.saturating_sub(app.rollout.min_healthy as usize);
        if room == 0 {
            return Err(PlanError::MinHealthy {
                min_healthy: app.rollout.min_healthy,
                total,
            });
        }
        if wanted > room {
            warnings.push(format!(
                "batch size lowered from {wanted} to {room} to keep min_healthy = {} instances serving",
                app.rollout.min_healthy
            ));
        }
        wanted.min(room)
    };
    Ok((0..total)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(|c| Stage::Replace {
            instances: c.to_vec(),
        })
        .collect())
}

/// A rolling rollout with `surge`: each batch starts beside the old side,
/// which keeps serving until the switch and keeps running until after
/// `monitor`; no instance leaves traffic, so `min_healthy` needs no room.
fn surge_stages(app: &App, live: &[Side]) -> Result<Vec<Stage>, PlanError> {
    let total = app.instances.len();
    let all: Vec<usize> = (0..total).collect();
    needs_alt(app, &all)?;
    let size = batch_size(app.rollout.batch, total).max(1);
    let mut stages = Vec::new();
    for chunk in all.chunks(size) {
        stages.push(Stage::StartIdle {
            instances: chunk.to_vec(),
        });
        stages.push(Stage::SwitchBatch {
            instances: chunk.to_vec(),
        });
    }
    stages.push(Stage::Monitor);
    stages.push(Stage::Retire {
        sides: live.to_vec(),
        instances: all,
    });
    Ok(stages)
}

/// Blue-green: every instance starts on its idle side, traffic switches
/// at once, and the old sides stop after the monitor (none on an install).
fn blue_green_stages(
    app: &App,
    live: &[Side],
    install: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Stage>, PlanError> {
    let all: Vec<usize> = (0..app.instances.len()).collect();
    needs_alt(app, &all)?;
    let sides = live.to_vec();
    if sides.iter().any(|s| *s != sides[0]) {
        warnings
            .push("instances are live on different sides; each switches to its idle side".into());
    }
    let mut stages = vec![
        Stage::StartIdle {
            instances: all.clone(),
        },
        Stage::Switch,
        Stage::Monitor,
    ];
    if !install {
        stages.push(Stage::Retire {
            instances: all,
            sides,
        });
    }
    Ok(stages)
}

/// A canary: it starts beside the old release, takes each step's share of
/// traffic, then every instance is replaced batch by batch and the
/// canary's side stops; on an install (nothing to compare with), batch by
/// batch.
fn canary_stages(
    app: &App,
    live: &[Side],
    install: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Stage>, PlanError> {
    let total = app.instances.len();
    let canary: Vec<usize> = (0..(app.rollout.canary as usize).clamp(1, total)).collect();
    needs_alt(app, &canary)?;
    let mut stages = Vec::new();
    if install {
        warnings.push(
            "nothing runs yet: a canary has nothing to compare with; installing batch by batch"
                .into(),
        );
        stages.extend(replace_batches(app, install, warnings)?);
        stages.push(Stage::Monitor);
        return Ok(stages);
    }
    stages.push(Stage::StartIdle {
        instances: canary.clone(),
    });
    for &p in &app.rollout.steps {
        stages.push(Stage::Shift { percent: p });
    }
    stages.extend(replace_batches(app, install, warnings)?);
    stages.push(Stage::Monitor);
    stages.push(Stage::Retire {
        sides: canary.iter().map(|&i| live[i].other()).collect(),
        instances: canary,
    });
    Ok(stages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Instance, Rollout};

    fn app(n: usize, rollout: Rollout, alt: bool) -> App {
        App {
            name: "web".into(),
            instances: (0..n)
                .map(|i| Instance {
                    name: format!("web-{i}"),
                    host: "local".into(),
                    port: 8000 + i as u16,
                    alt_port: alt.then_some(9000 + i as u16),
                })
                .collect(),
            rollout,
            ..Default::default()
        }
    }

    fn running(n: usize, v: &str) -> Vec<InstanceNow> {
        (0..n)
            .map(|_| InstanceNow {
                version: Some(Version::parse(v).unwrap()),
                live: Side::Main,
            })
            .collect()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn a_pause_follows_every_batch_but_the_last_of_its_kind() {
        let r = Rollout {
            batch: BatchSize::Count(1),
            min_healthy: 1,
            ..Rollout::default()
        };
        let p = plan(
            &app(3, r.clone(), false),
            Strategy::Rolling,
            &running(3, "v1"),
            &v("v2"),
        )
        .unwrap();
        let pauses: Vec<bool> = (0..p.stages.len()).map(|i| p.pauses_after(i)).collect();
        // Three batches, then the monitor.
        assert_eq!(pauses, [true, true, false, false]);
        assert!(!p.pauses_after(99));
        let p = plan(
            &app(2, r, true),
            Strategy::BlueGreen,
            &running(2, "v1"),
            &v("v2"),
        )
        .unwrap();
        for (i, stage) in p.stages.iter().enumerate() {
            let last_switch = !p.stages[i + 1..]
                .iter()
                .any(|s| matches!(s, Stage::SwitchBatch { .. }));
            let expected = matches!(stage, Stage::SwitchBatch { .. }) && !last_switch;
            assert_eq!(p.pauses_after(i), expected, "stage {i}: {stage:?}");
        }
    }

    #[test]
    fn rolling_batches_by_percent_and_count() {
        let mut r = Rollout {
            batch: BatchSize::Percent(25),
            min_healthy: 1,
            ..Rollout::default()
        };
        let p = plan(
            &app(4, r.clone(), false),
            Strategy::Rolling,
            &running(4, "v1"),
            &v("v2"),
        )
        .unwrap();
        assert_eq!(p.from, Some(v("v1")));
        assert!(!p.install);
        assert_eq!(
            p.stages,
            vec![
                Stage::Replace { instances: vec![0] },
                Stage::Replace { instances: vec![1] },
                Stage::Replace { instances: vec![2] },
                Stage::Replace { instances: vec![3] },
                Stage::Monitor
            ]
        );
        r.batch = BatchSize::Count(3);
        let p = plan(
            &app(5, r, false),
            Strategy::Rolling,
            &running(5, "v1"),
            &v("v2"),
        )
        .unwrap();
        assert_eq!(
            p.stages[0],
            Stage::Replace {
                instances: vec![0, 1, 2]
            }
        );
        assert_eq!(
            p.stages[1],
            Stage::Replace {
                instances: vec![3, 4]
            }
        );
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn min_healthy_clamps_or_refuses() {
        let r = Rollout {
            batch: BatchSize::Percent(100),
            min_healthy: 2,
            ..Rollout::default()
        };
        let p = plan(
            &app(4, r.clone(), false),
            Strategy::Rolling,
            &running(4, "v1"),
            &v("v2"),
        )
        .unwrap();
        assert_eq!(
            p.stages[0],
            Stage::Replace {
                instances: vec![0, 1]
            }
        );
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        let e = plan(
            &app(2, r.clone(), false),
            Strategy::Rolling,
            &running(2, "v1"),
            &v("v2"),
        )
        .unwrap_err();
        assert!(matches!(e, PlanError::MinHealthy { .. }));
        // An install has nothing healthy to keep.
        let nothing = vec![
            InstanceNow {
                version: None,
                live: Side::Main
            };
            2
        ];
        let p = plan(&app(2, r, false), Strategy::Rolling, &nothing, &v("v2")).unwrap();
        assert!(p.install);
        assert_eq!(
            p.stages[0],
            Stage::Replace {
                instances: vec![0, 1]
            }
        );
    }

    #[test]
    fn blue_green_needs_alt_ports_and_retires_old_side() {
        let e = plan(
            &app(2, Rollout::default(), false),
            Strategy::BlueGreen,
            &running(2, "v1"),
            &v("v2"),
        );
        assert!(matches!(e, Err(PlanError::NoAltPort(_))));
        let p = plan(
            &app(2, Rollout::default(), true),
            Strategy::BlueGreen,
            &running(2, "v1"),
            &v("v2"),
        )
        .unwrap();
        assert_eq!(
            p.stages,
            vec![
                Stage::StartIdle {
                    instances: vec![0, 1]
                },
                Stage::Switch,
                Stage::Monitor,
                Stage::Retire {
                    instances: vec![0, 1],
                    sides: vec![Side::Main, Side::Main]
                },
            ]
        );

        // Instances live on different sides: each retires its own old side.
        let mut now = running(2, "v1");
        now[1].live = Side::Alt;
        let p = plan(
            &app(2, Rollout::default(), true),
            Strategy::BlueGreen,
            &now,
            &v("v2"),
        )
        .unwrap();
        assert_eq!(
            p.stages.last(),
            Some(&Stage::Retire {
                instances: vec![0, 1],
                sides: vec![Side::Main, Side::Alt]
            })
        );
        assert_eq!(
            p.stages
                .last()
                .unwrap()
                .describe(&app(2, Rollout::default(), true)),
            "stop the old side of each (kept): web-0, web-1"
        );
    }

    #[test]
    fn surge_starts_each_batch_beside_the_old_switches_and_retires_after_monitor() {
        let r = Rollout {
            batch: BatchSize::Count(2),
            min_healthy: 2,
            surge: true,
            ..Rollout::default()
        };
        let e = plan(
            &app(3, r.clone(), false),
            Strategy::Rolling,
            &running(3, "v1"),
            &v("v2"),
        );
        assert!(matches!(e, Err(PlanError::NoAltPort(_))));
        // min_healthy needs no room: nothing leaves traffic.
        let p = plan(
            &app(3, r.clone(), true),
            Strategy::Rolling,
            &running(3, "v1"),
            &v("v2"),
        )
        .unwrap();
        assert_eq!(
            p.stages,
            vec![
                Stage::StartIdle {
                    instances: vec![0, 1]
                },
                Stage::SwitchBatch {
                    instances: vec![0, 1]
                },
                Stage::StartIdle { instances: vec![2] },
                Stage::SwitchBatch { instances: vec![2] },
                Stage::Monitor,
                Stage::Retire {
                    instances: vec![0, 1, 2],
                    sides: vec![Side::Main, Side::Main, Side::Main]
                },
            ]
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        // An install has no old side to keep: plain batches.
        let none: Vec<InstanceNow> = (0..3)
            .map(|_| InstanceNow {
                version: None,
                live: Side::Main,
            })
            .collect();
        let p = plan(&app(3, r, true), Strategy::Rolling, &none, &v("v2")).unwrap();
        assert!(matches!(p.stages[0], Stage::Replace { .. }));
        assert!(p.warnings.iter().any(|w| w.contains("surge")));
    }

    #[test]
    fn canary_steps_then_promotion() {
        let r = Rollout {
            canary: 1,
            steps: vec![10, 50],
            batch: BatchSize::Count(2),
            min_healthy: 1,
            ..Rollout::default()
        };
        let p = plan(
            &app(3, r, true),
            Strategy::Canary,
            &running(3, "v1"),
            &v("v2"),
        )
        .unwrap();
        assert_eq!(
            p.stages,
            vec![
                Stage::StartIdle { instances: vec![0] },
                Stage::Shift { percent: 10 },
                Stage::Shift { percent: 50 },
                Stage::Replace {
                    instances: vec![0, 1]
                },
                Stage::Replace { instances: vec![2] },
                Stage::Monitor,
                Stage::Retire {
                    instances: vec![0],
                    sides: vec![Side::Alt]
                },
            ]
        );
        assert_eq!(p.canary(), [0]);
        // A pause after the first promotion batch, none after the last.
        let pauses: Vec<bool> = (0..p.stages.len()).map(|i| p.pauses_after(i)).collect();
        assert_eq!(pauses, [false, false, false, true, false, false, false]);
    }

    #[test]
    fn nothing_to_do_and_mixed_versions() {
        let e = plan(
            &app(2, Rollout::default(), false),
            Strategy::Rolling,
            &running(2, "v2"),
            &v("v2"),
        );
        assert!(matches!(e, Err(PlanError::NothingToDo { .. })));
        let mut now = running(2, "v1");
        now[1].version = Some(v("v2"));
        let p = plan(
            &app(2, Rollout::default(), false),
            Strategy::Rolling,
            &now,
            &v("v2"),
        )
        .unwrap();
        assert_eq!(p.from, None);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn batch_sizes() {
        assert_eq!(batch_size(BatchSize::Percent(25), 4), 1);
        assert_eq!(batch_size(BatchSize::Percent(25), 5), 2);
        assert_eq!(batch_size(BatchSize::Percent(100), 3), 3);
        assert_eq!(batch_size(BatchSize::Percent(1), 3), 1);
        assert_eq!(batch_size(BatchSize::Count(10), 3), 3);
    }
}
