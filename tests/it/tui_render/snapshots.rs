//! Every view and modal of the console drawn at 80x24 and 160x48 into
//! snapshot files (`tests/tui_render/snapshots/`, one per screen, read
//! and reviewed like code), and the colours and symbols that carry
//! meaning checked cell by cell (a snapshot holds only the text).
//!
//! One story of the test fleet fills every screen, at [`now`]:
//!
//! - web is degraded (web-3 fails) and its rollout, deployment 7 (v2 →
//!   v3), failed its gate on web-3: the rollback is armed and fires in
//!   about a minute; its incident is open;
//! - api's canary, deployment 8 (v5 → v6), is under way;
//! - worker is down, with an incident the prober opened (and deployment
//!   4, its v12, was rolled back three hours ago when its gate failed);
//!   batch has no probe results yet;
//! - History also holds a rollback that failed (1), a blue-green deploy
//!   (2), an install (3), web's v3 (5) and web's rollback by hand to v2
//!   (6, its stored plan of kind `rollback`).
//!
//! The history is a real one: written through the store's API into a file
//! of its own, in the shapes the rollout engine writes (typed events, the
//! planner's own plans), and read back as the console reads it
//! (`tui::load::read`). The deploy question comes from the console's own
//! check of `:deploy web v3` (the preflight runs web's `current` command
//! here).
//!
//! Times are drawn in local time. The snapshots hold them in UTC whatever
//! `TZ` says: every time of the story is kept ([`kept`]: each time written
//! to the history, each sample's), and each screen's text has the local
//! form of those times replaced by the UTC form before it is compared
//! ([`in_utc`]).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ratatui::style::Modifier;

use rollguard::config::{App as AppConfig, CommandSpec, Host, Receiver, ReceiverKind, Secrets};
use rollguard::model::event::EventKind;
use rollguard::model::evidence::{Evidence, FailRule, GateOutcome, Sample};
use rollguard::model::incident::IncidentCause;
use rollguard::model::topic::Topic;
use rollguard::model::{
    BatchState, ChangeAction, ChangeState, DeploymentKind, DeploymentState, Outcome, Side, Trigger,
    Version,
};
use rollguard::rollout::plan::{self, InstanceNow, Plan, Stage};
use rollguard::rollout::service::{Check, RollbackCheck};
use rollguard::rollout::watch::{ActiveRollout, AppRollouts, EndedRollout};
use rollguard::rollout::worker::StoredPlan;
use rollguard::store::Location;
use rollguard::store::{LockOwner, NewBatch, NewDeployment, StartEvent, Store};
use rollguard::tui::load::{self, Load};
use rollguard::tui::{Arrival, Queue, Service};

use super::*;

/// The sizes every screen is drawn at.
const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

// ----- times -----

thread_local! {
    /// Every time of a story made on this thread.
    static TIMES: RefCell<BTreeSet<i64>> = const { RefCell::new(BTreeSet::new()) };
}

/// `t`, kept as a time of the story so that [`in_utc`] knows it.
fn kept(t: i64) -> i64 {
    TIMES.with(|times| times.borrow_mut().insert(t));
    t
}

/// The time `ms` before [`now`].
fn ago_ms(ms: i64) -> i64 {
    kept(now() - ms)
}

/// The time `secs` seconds before [`now`].
fn ago(secs: i64) -> i64 {
    ago_ms(secs * 1000)
}

/// `text` with every story time drawn in local time (as the views draw
/// them: `YYYY-MM-DD HH:MM:SS`, `MM-DD HH:MM:SS`, `HH:MM:SS`) written in
/// UTC instead. One pass: a time once replaced is not replaced again.
fn in_utc(text: &str) -> String {
    use chrono::{DateTime, Local};
    let times: Vec<i64> = TIMES.with(|t| t.borrow().iter().copied().collect());
    let mut pairs = Vec::new();
    for format in ["%Y-%m-%d %H:%M:%S", "%m-%d %H:%M:%S", "%H:%M:%S"] {
        for &ms in &times {
            let utc = DateTime::from_timestamp_millis(ms).expect("a time of the story");
            let local = utc.with_timezone(&Local).format(format).to_string();
            let utc = utc.format(format).to_string();
            if local != utc {
                pairs.push((local, utc));
            }
        }
    }
    let mut out = text.to_string();
    for (i, (local, _)) in pairs.iter().enumerate() {
        out = out.replace(local.as_str(), &format!("\u{1}{i}\u{2}"));
    }
    for (i, (_, utc)) in pairs.iter().enumerate() {
        out = out.replace(&format!("\u{1}{i}\u{2}"), utc);
    }
    out
}

// ----- snapshots -----

/// The screen as text: its lines without trailing blanks, times in UTC.
fn plain(buf: &Buffer) -> String {
    let lines: Vec<String> = lines(buf)
        .iter()
        .map(|l| l.trim_end().to_string())
        .collect();
    in_utc(&lines.join("\n"))
}

/// Draws `app` at each of [`SIZES`] and compares the screen with the
/// snapshot `NAME_WxH`, whose header says `what`.
fn snap(name: &str, what: &str, app: &App, state: &FleetState) {
    for (w, h) in SIZES {
        let text = plain(&render(app, state, w, h));
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!("{what}; {w}x{h}, times in UTC"));
        settings.bind(|| insta::assert_snapshot!(format!("{name}_{w}x{h}"), text));
    }
}

// ----- the fleet -----

/// The test fleet, with what the story needs on top: web is deployed by
/// commands run on this machine (so `:deploy web v3` is checked for real:
/// its `current` prints v2), and api's instances have alternate ports (its
/// canary and blue-green deploys start beside the old release).
fn story_fleet() -> Arc<Fleet> {
    let mut f = (*fleet()).clone();
    f.hosts = vec![Host {
        name: "node1".into(),
        address: "127.0.0.1".into(),
        ssh: None,
    }];
    f.apps[0].driver = DriverKind::Command;
    f.apps[0].command = Some(CommandSpec {
        start: "true".into(),
        stop: "true".into(),
        current: Some("echo v2".into()),
        present: Some("true".into()),
    });
    for (i, inst) in f.apps[1].instances.iter_mut().enumerate() {
        inst.alt_port = Some(9001 + i as u16);
    }
    // Two receivers hear of web.
    f.apps[0].notify = ["oncall-slack", "pager"]
        .iter()
        .enumerate()
        .map(|(order, name)| {
            Arc::new(Receiver {
                name: name.to_string(),
                order,
                kind: ReceiverKind::Slack {
                    url: "http://127.0.0.1:9/".into(),
                },
                on: Topic::DEFAULT.to_vec(),
                apps: None,
                timeout: std::time::Duration::from_secs(5),
                retry_for: std::time::Duration::from_secs(60),
                secrets: Secrets::new([]),
            })
        })
        .collect();
    Arc::new(f)
}

/// The probes of the test fleet (web degraded, api healthy, worker down,
/// batch unknown), web's armed rollback (deployment 7, built by
/// `with_rollout`: it fires 57.5 s from now) and api's canary
/// (deployment 8) at its second step; worker runs v11.
fn story_state(f: &Arc<Fleet>) -> FleetState {
    let mut s = with_rollout(f, "rollback_armed", "v3", "rolling");
    let web = s.rollouts(0).cloned().unwrap_or_default();
    let api = AppRollouts {
        versions: vec!["v5".into()],
        active: Some(ActiveRollout {
            id: 8,
            from: Some("v5".into()),
            to: "v6".into(),
            strategy: rollguard::config::Strategy::Canary,
            state: rollguard::model::DeploymentState::Running,
            stage: 2,
            stages: 9,
            latest: Some("10% of traffic to v6 (180 ms)".into()),
            ..ActiveRollout::default()
        }),
        last: None,
        ..AppRollouts::default()
    };
    let worker = AppRollouts {
        versions: vec!["v11".into()],
        ..AppRollouts::default()
    };
    s.set_rollouts(vec![web, api, worker, AppRollouts::default()]);
    s
}

/// A folder of its own under the system's temporary folder, removed at
/// the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("rollguard-snapshots-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- the history -----

/// The time columns the store stamps with its own clock.
const STAMPED: [(&str, &str); 7] = [
    ("deployments", "started_at_ms"),
    ("deployments", "ended_at_ms"),
    ("events", "at_ms"),
    ("batches", "started_at_ms"),
    ("batches", "ended_at_ms"),
    ("instance_changes", "at_ms"),
    ("releases", "first_seen_ms"),
];

/// The story's history, written through the store's API.
struct History {
    store: Store,
    /// A second connection to the file, to set the time of what was
    /// written.
    clock: rusqlite::Connection,
    fleet: Arc<Fleet>,
}

/// One deployment being written.
struct Deploy {
    id: i64,
    app: usize,
    name: String,
    plan: Plan,
    batches: Vec<i64>,
}

impl History {
    fn create(db: &Path, fleet: Arc<Fleet>) -> History {
        let store = Store::open(db).unwrap();
        let clock = rusqlite::Connection::open(db).unwrap();
        clock.busy_timeout(Duration::from_secs(5)).unwrap();
        History {
            store,
            clock,
            fleet,
        }
    }

    /// Runs `write` as if the clock read `t`. The store stamps what it
    /// writes with the real clock, years after the story's [`now`]: every
    /// such time is set to `t` afterwards.
    fn at<R>(&self, t: i64, write: impl FnOnce(&Store) -> R) -> R {
        let t = kept(t);
        let r = write(&self.store);
        for (table, column) in STAMPED {
            self.clock
                .execute(
                    &format!("UPDATE {table} SET {column} = ?1 WHERE {column} > ?2"),
                    rusqlite::params![t, now()],
                )
                .unwrap();
        }
        r
    }

    fn app(&self, d: &Deploy) -> &AppConfig {
        &self.fleet.apps[d.app]
    }

    /// An event of `d` by the rollout (`rollguard`), at `t`.
    fn event(&self, t: i64, d: &Deploy, reason: Option<&str>, kind: EventKind) {
        self.at(t, |s| {
            s.record(&d.name, Some(d.id), "rollguard", reason, &kind)
                .unwrap()
        });
    }

    /// Starts a deploy (or a rollback by hand) of app `app` from `from`
    /// to `to` at `t`, as the rollout service records it: the planner's
    /// plan, its batches, the lock, the request; then the worker's
    /// `rollout_started` a second later.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        t: i64,
        app: usize,
        from: Option<&str>,
        to: &str,
        strategy: Strategy,
        (actor, reason): (&str, &str),
        rollback: Option<&RollbackCheck>,
    ) -> Deploy {
        let a = &self.fleet.apps[app];
        let now_running: Vec<InstanceNow> = a
            .instances
            .iter()
            .map(|_| InstanceNow {
                version: from.map(|v| Version::parse(v).unwrap()),
                live: Side::Main,
            })
            .collect();
        let plan = plan::plan(a, strategy, &now_running, &Version::parse(to).unwrap()).unwrap();
        let kind = match rollback {
            Some(_) => DeploymentKind::Rollback,
            None => DeploymentKind::Deploy,
        };
        let stored = StoredPlan {
            kind,
            plan: plan.clone(),
            live: vec![Side::Main; a.instances.len()],
            config: self.fleet.source.clone(),
        };
        let mut events = Vec::new();
        if let Some(r) = rollback {
            events.push(StartEvent {
                event: EventKind::RollbackRequested {
                    checks: serde_json::to_value(r).unwrap(),
                    forced: r.forced,
                },
                reason: Some(reason.into()),
            });
        }
        events.push(StartEvent {
            event: EventKind::DeployRequested {
                from: from.map(str::to_string),
                to: to.into(),
                strategy: serde_json::to_value(strategy).unwrap(),
                kind,
            },
            reason: Some(reason.into()),
        });
        let record = NewDeployment {
            app: a.name.clone(),
            owner: LockOwner {
                user: actor.into(),
                host: "ops-1".into(),
                pid: 4242,
                start: None,
            },
            reason: reason.into(),
            break_lock: None,
            from_version: from.map(str::to_string),
            to_version: to.into(),
            strategy,
            plan: serde_json::to_value(&stored).unwrap(),
            warnings: plan.warnings.clone(),
            batches: plan
                .stages
                .iter()
                .map(|s| NewBatch {
                    kind: s.kind(),
                    instances: s
                        .instances(a.instances.len())
                        .iter()
                        .map(|i| a.instances[*i].name.clone())
                        .collect(),
                    traffic_percent: match s {
                        Stage::Shift { percent } => Some(f64::from(*percent)),
                        _ => None,
                    },
                })
                .collect(),
            events,
        };
        let id = self.at(t, |s| {
            let started = s.start_deployment(&record).unwrap();
            started.expect("the app is not locked").deployment
        });
        let d = Deploy {
            id,
            app,
            name: a.name.clone(),
            batches: self
                .store
                .batches(id)
                .unwrap()
                .iter()
                .map(|b| b.id)
                .collect(),
            plan,
        };
        self.at(t + 1000, |s| {
            s.set_deployment_state(id, DeploymentState::Running)
                .unwrap()
        });
        self.event(
            t + 1000,
            &d,
            None,
            EventKind::RolloutStarted {
                plan: serde_json::to_value(&d.plan).unwrap(),
                strategy: serde_json::to_value(strategy).unwrap(),
            },
        );
        d
    }

    /// Stage `i` of `d` from `t` to `end`: it starts, its instances get
    /// the new release, and (`pass`) its gate passes or is left waiting.
    fn stage(&self, d: &Deploy, i: usize, (t, end): (i64, i64), pass: bool) {
        let a = self.app(d).clone();
        let stage = d.plan.stages[i].clone();
        let batch = d.batches[i];
        self.event(
            t,
            d,
            None,
            EventKind::StageStarted {
                index: i,
                stage: serde_json::to_value(&stage).unwrap(),
                describe: stage.describe(&a),
            },
        );
        self.at(t, |s| {
            s.set_batch_state(batch, BatchState::Running).unwrap()
        });
        let from = d.plan.from.as_ref().map(Version::to_string);
        let to = d.plan.to.to_string();
        let started: Vec<usize> = match &stage {
            Stage::Replace { instances } | Stage::StartIdle { instances } => instances.clone(),
            _ => Vec::new(),
        };
        let side = match stage {
            Stage::StartIdle { .. } => Side::Alt,
            _ => Side::Main,
        };
        for &n in &started {
            self.at(t + 2000, |s| {
                let c = s
                    .record_change(
                        d.id,
                        Some(batch),
                        &a.instances[n].name,
                        ChangeAction::Start,
                        from.as_deref(),
                        Some(&to),
                        ChangeState::Started,
                        Some(&serde_json::json!({ "side": side })),
                    )
                    .unwrap();
                s.set_change_state(c, ChangeState::Done, None).unwrap();
            });
        }
        match stage {
            Stage::Shift { percent } => self.event(
                t + 1000,
                d,
                None,
                EventKind::TrafficChanged {
                    elapsed_ms: 180,
                    describe: Some(format!("{percent}% of traffic to {to}")),
                },
            ),
            Stage::Switch => self.event(
                t + 1000,
                d,
                None,
                EventKind::TrafficSwitched {
                    live: vec![Side::Alt; a.instances.len()],
                    instances: None,
                },
            ),
            _ => {}
        }
        if !pass {
            return;
        }
        let checked: Vec<usize> = if started.is_empty() {
            (0..a.instances.len()).collect()
        } else {
            started
        };
        let evidence = checked.iter().map(|&n| healthy(&a, n, side, end)).collect();
        self.event(
            end,
            d,
            None,
            EventKind::GatePassed(GateOutcome::Passed {
                elapsed_ms: (end - t) as u64,
                evidence,
            }),
        );
        self.at(end, |s| {
            s.set_batch_state(batch, BatchState::Passed).unwrap()
        });
    }

    /// Every stage of `d` passes, one a minute from `t`; then it ends,
    /// deployed.
    fn deployed(&self, d: &Deploy, t: i64) {
        let n = d.plan.stages.len() as i64;
        for i in 0..d.plan.stages.len() {
            let at = t + i as i64 * 60_000;
            self.stage(d, i, (at, at + 40_000), true);
        }
        let end = t + n * 60_000;
        self.event(
            end,
            d,
            None,
            EventKind::RolloutCompleted {
                version: d.plan.to.to_string(),
            },
        );
        self.finish(d, end, DeploymentState::Done, Outcome::Deployed);
    }

    /// The gate of stage `i` of `d` fails at `t` on instance `n`'s probe
    /// `probe`, whose last samples are `samples`: the gate's event, the
    /// incident, the rollout's failure.
    fn gate_fails(
        &self,
        d: &Deploy,
        i: usize,
        t: i64,
        n: usize,
        probe: &str,
        samples: Vec<Sample>,
    ) {
        let a = self.app(d).clone();
        let e = failing(&a, n, probe, samples);
        let reason = format!(
            "{} on {} failed {} times in a row (threshold {}): {}",
            e.probe,
            e.instance,
            e.consecutive_fail,
            e.failure_threshold,
            e.last_samples
                .last()
                .map(|s| s.message.as_str())
                .unwrap_or("")
        );
        let outcome = GateOutcome::Failed {
            evidence: e.clone(),
        };
        self.event(t, d, Some(&reason), EventKind::GateFailed(outcome.clone()));
        self.at(t, |s| {
            s.open_incident(&d.name, Some(d.id), IncidentCause::Gate, &[e], t)
                .unwrap()
        });
        self.at(t, |s| {
            s.set_batch_state(d.batches[i], BatchState::Failed).unwrap();
            s.set_deployment_state(d.id, DeploymentState::Failing)
                .unwrap();
        });
        self.event(
            t,
            d,
            Some(&reason),
            EventKind::RolloutFailed {
                trigger: Trigger::GateFailed,
                code: Trigger::GateFailed.code().as_str().into(),
                evidence: serde_json::to_value(&outcome).unwrap(),
            },
        );
    }

    /// `d` rolls back from `t`: each of `instances` is restored to what
    /// ran before (or, `restored` false, the first of them is not).
    fn roll_back(&self, d: &Deploy, t: i64, instances: &[usize], restored: bool) -> i64 {
        let a = self.app(d).clone();
        let code = Trigger::GateFailed.code().as_str().to_string();
        self.at(t, |s| {
            s.set_deployment_state(d.id, DeploymentState::RollingBack)
                .unwrap()
        });
        self.event(
            t,
            d,
            None,
            EventKind::RollbackStarted {
                trigger: Trigger::GateFailed,
                code,
            },
        );
        let to = d.plan.to.to_string();
        let back = d.plan.from.as_ref().map(Version::to_string);
        let mut at = t;
        let mut unrestored = Vec::new();
        for (k, &n) in instances.iter().enumerate() {
            at += 6000;
            let name = a.instances[n].name.clone();
            let ok = restored || k > 0;
            self.at(at, |s| {
                let c = s
                    .record_change(
                        d.id,
                        None,
                        &name,
                        ChangeAction::Restore,
                        Some(&to),
                        Some(&to),
                        ChangeState::Started,
                        Some(&serde_json::json!({ "side": Side::Main })),
                    )
                    .unwrap();
                let (state, detail) = if ok {
                    (ChangeState::Done, None)
                } else {
                    (
                        ChangeState::Failed,
                        Some(serde_json::json!({ "error": "start command exited 1" })),
                    )
                };
                s.set_change_state(c, state, detail.as_ref()).unwrap();
            });
            let kind = if ok {
                EventKind::InstanceRestored {
                    instance: name.clone(),
                    side: Side::Main,
                    version: back.clone(),
                }
            } else {
                unrestored.push(name.clone());
                EventKind::InstanceNotRestored {
                    instance: name.clone(),
                    side: Side::Main,
                }
            };
            let why = (!ok).then_some("start command exited 1: port 8001 is in use");
            self.event(at, d, why, kind);
        }
        at += 2000;
        let outcome = if unrestored.is_empty() {
            self.event(
                at,
                d,
                None,
                EventKind::RollbackCompleted {
                    unrestored: vec![],
                    outcome: Outcome::RolledBack,
                },
            );
            Outcome::RolledBack
        } else {
            self.event(
                at,
                d,
                None,
                EventKind::RollbackFailed {
                    unrestored,
                    outcome: Outcome::RollbackFailed,
                },
            );
            Outcome::RollbackFailed
        };
        self.finish(d, at, DeploymentState::Done, outcome);
        at
    }

    /// `d` ends at `t`: the lock is released, then the deployment ends.
    fn finish(&self, d: &Deploy, t: i64, state: DeploymentState, outcome: Outcome) {
        let holder = LockOwner {
            user: String::new(),
            host: "ops-1".into(),
            pid: 4242,
            start: None,
        };
        self.at(t, |s| assert!(s.unlock(&d.name, &holder).unwrap()));
        self.event(t, d, None, EventKind::LockReleased);
        self.at(t, |s| s.finish_deployment(d.id, state, outcome).unwrap());
    }

    /// Release `version` of app `app`, first seen at `seen`, healthy
    /// everywhere at `healthy` when given.
    fn release(&self, app: &str, version: &str, seen: i64, healthy: Option<i64>) {
        self.at(seen, |s| s.touch_release(app, version).unwrap());
        if let Some(h) = healthy {
            self.at(seen, |s| s.mark_release_healthy(app, version, h).unwrap());
        }
    }
}

/// A sample of a probe at `t` that passed in `ms`.
fn passed(t: i64, ms: f64) -> Sample {
    Sample {
        at_ms: kept(t),
        ok: true,
        latency_ms: ms,
        code: Some(0),
        error_kind: None,
        message: String::new(),
    }
}

/// A sample of a probe at `t` that failed (`kind`, `code`) in `ms`,
/// saying `message`.
fn failed(t: i64, ms: f64, (kind, code): (&str, i64), message: &str) -> Sample {
    Sample {
        at_ms: kept(t),
        ok: false,
        latency_ms: ms,
        code: Some(code),
        error_kind: Some(kind.into()),
        message: message.into(),
    }
}

/// What a gate saw of instance `n` of `a` healthy on `side` at `t`.
fn healthy(a: &AppConfig, n: usize, side: Side, t: i64) -> Evidence {
    let inst = &a.instances[n];
    Evidence {
        instance: inst.name.clone(),
        side,
        port: match side {
            Side::Main => inst.port,
            Side::Alt => inst.alt_port.unwrap_or(inst.port),
        },
        probe: a.probes.last().map(|p| p.name.clone()).unwrap_or_default(),
        success_threshold: a.health.success_threshold,
        failure_threshold: a.health.failure_threshold,
        consecutive_ok: a.health.success_threshold,
        max_failures: a.health.failure_budget(),
        last_samples: vec![passed(t - 10_000, 38.0), passed(t, 41.0)],
        ..Evidence::default()
    }
}

/// What a gate saw of instance `n` of `a` when its `probe` failed, with
/// its last `samples`.
fn failing(a: &AppConfig, n: usize, probe: &str, samples: Vec<Sample>) -> Evidence {
    let inst = &a.instances[n];
    let in_a_row = samples.iter().rev().take_while(|s| !s.ok).count() as u32;
    Evidence {
        instance: inst.name.clone(),
        side: Side::Main,
        port: inst.port,
        probe: probe.into(),
        success_threshold: a.health.success_threshold,
        failure_threshold: a.health.failure_threshold,
        consecutive_ok: 0,
        consecutive_fail: in_a_row,
        failures: samples.iter().filter(|s| !s.ok).count() as u32,
        max_failures: a.health.failure_budget(),
        rule: Some(FailRule::Consecutive),
        reason: Some(format!("{in_a_row} failures in a row")),
        last_samples: samples,
        ..Evidence::default()
    }
}

/// The story's history at `db` (see the module's docs).
fn write_story(db: &Path, fleet: &Arc<Fleet>) {
    let h = History::create(db, fleet.clone());
    let (web, api, worker, batch) = (0, 1, 2, 3);
    let day = 86_400;

    h.release("web", "v1", ago(20 * day), Some(ago(9 * day)));
    h.release("web", "v2", ago(9 * day), Some(ago(150)));
    h.release("web", "v3", ago(7300), Some(ago(3700)));
    h.release("api", "v4", ago(3 * day), Some(ago(day)));
    h.release("api", "v5", ago(day), Some(ago(60)));
    h.release("worker", "v11", ago(12 * day), Some(ago(600)));
    h.release("worker", "v12", ago(10_900), None);
    h.release("batch", "v1", ago(21_700), Some(ago(21_000)));

    // 1: api's v4 fails its gate; api-1 cannot be put back.
    let t = ago(2 * day);
    let d = h.start(
        t,
        api,
        Some("v3"),
        "v4",
        Strategy::Rolling,
        ("ana", "connection pool settings"),
        None,
    );
    h.stage(&d, 0, (t + 2000, 0), false);
    let fail = |s: i64| {
        let why = "connection refused by api-1:8001 (ECONNREFUSED)";
        failed(t + s * 1000, 2.0, ("refused", 7), why)
    };
    h.gate_fails(&d, 0, t + 40_000, 0, "tcp", vec![fail(30), fail(40)]);
    let end = h.roll_back(&d, t + 41_000, &[0], false);
    // api-1 is put back by hand; the incident ends a minute after.
    h.at(end + 600_000, |s| {
        let id = s.incidents(Some("api"), 1).unwrap()[0].id;
        assert!(
            s.resolve_incident(id, end + 540_000, end + 600_000)
                .unwrap()
        );
    });

    // 2: api's v5, blue-green.
    let t = ago(day);
    let d = h.start(
        t,
        api,
        Some("v4"),
        "v5",
        Strategy::BlueGreen,
        ("ana", "tls library update"),
        None,
    );
    h.deployed(&d, t + 2000);

    // 3: batch's first release.
    let t = ago(21_600);
    let d = h.start(
        t,
        batch,
        None,
        "v1",
        Strategy::Rolling,
        ("cy", "first release"),
        None,
    );
    h.deployed(&d, t + 2000);

    // 4: worker's v12 fails its gate on worker-2 and is rolled back.
    let t = ago(10_800);
    let d = h.start(
        t,
        worker,
        Some("v11"),
        "v12",
        Strategy::Rolling,
        ("ana", "weekly release"),
        None,
    );
    h.stage(&d, 0, (t + 2000, t + 42_000), true);
    h.stage(&d, 1, (t + 62_000, 0), false);
    let at = |secs: i64| t + secs * 1000;
    let queue = "exit 1, expected 0: queue not reachable";
    let samples = vec![
        passed(at(72), 120.0),
        passed(at(82), 131.0),
        failed(at(92), 35.0, ("exit_code", 1), queue),
        failed(at(102), 34.0, ("exit_code", 1), queue),
    ];
    h.gate_fails(&d, 1, t + 102_000, 1, "alive", samples);
    let end = h.roll_back(&d, t + 103_000, &[1, 0], true);
    // The incident ends once worker is healthy again for a minute.
    h.at(end + 60_000, |s| {
        let id = s.incidents(Some("worker"), 1).unwrap()[0].id;
        assert!(s.resolve_incident(id, end, end + 60_000).unwrap());
    });

    // 5: web's v3.
    let t = ago(7200);
    let d = h.start(
        t,
        web,
        Some("v2"),
        "v3",
        Strategy::Rolling,
        ("bo", "release 3"),
        None,
    );
    h.deployed(&d, t + 2000);

    // 6: web rolled back by hand to v2.
    let t = ago(3600);
    let checks = RollbackCheck {
        target: Version::parse("v2").unwrap(),
        took: "the last good release".into(),
        current: vec![Version::parse("v3").unwrap()],
        checks: vec![
            Check {
                check: "known",
                ok: true,
                detail: "v2 is a release of web".into(),
            },
            Check {
                check: "was_healthy",
                ok: true,
                detail: "v2 was healthy at 12:59:40".into(),
            },
            Check {
                check: "artifact_present",
                ok: true,
                detail: "v2 is present on web-1, web-2, web-3".into(),
            },
        ],
        warnings: vec![],
        forced: false,
    };
    let d = h.start(
        t,
        web,
        Some("v3"),
        "v2",
        Strategy::Rolling,
        ("bo", "v3 leaks memory under load"),
        Some(&checks),
    );
    h.deployed(&d, t + 2000);

    // 7: web's v3 again, batch by batch.
    let t = ago(140);
    let d = h.start(
        t,
        web,
        Some("v2"),
        "v3",
        Strategy::Rolling,
        ("ana", "v3 with the leak fixed"),
        None,
    );
    h.stage(&d, 0, (ago(138), ago(112)), true);
    h.event(ago(111), &d, None, EventKind::Paused { ms: 30_000 });
    h.stage(&d, 1, (ago(81), ago(55)), true);
    h.event(ago(54), &d, None, EventKind::Paused { ms: 30_000 });
    let web_v3 = d;

    // 8: api's canary: v6 started beside v5 on api-1, then 10% of traffic.
    let t = ago(50);
    let d = h.start(
        t,
        api,
        Some("v5"),
        "v6",
        Strategy::Canary,
        ("cy", "pricing endpoint"),
        None,
    );
    h.stage(&d, 0, (ago(48), ago(30)), true);
    h.stage(&d, 1, (ago(29), 0), false);
    h.event(ago(27), &d, None, EventKind::Paused { ms: 300_000 });

    // 7 goes on: web-3 gets v3.
    let d = web_v3;
    h.stage(&d, 2, (ago(24), 0), false);

    // worker is down now: the prober's incident.
    let worker_app = &fleet.apps[worker];
    let down: Vec<Evidence> = (0..2)
        .map(|n| {
            let queue = "exit 1, expected 0: queue not reachable";
            let s = |secs| failed(ago(secs), 33.0, ("exit_code", 1), queue);
            failing(worker_app, n, "alive", vec![s(20), s(10)])
        })
        .collect();
    h.at(ago(10), |s| {
        s.open_incident("worker", None, IncidentCause::Probe, &down, ago(10))
            .unwrap()
    });

    // 7: web-3 fails its ready probe; the rollback is armed and fires in
    // 57.5 s.
    let refused = "connection refused by web-3:8003 (ECONNREFUSED)";
    let samples = vec![
        passed(ago(23), 41.0),
        failed(ago(13), 1.2, ("refused", 7), refused),
        failed(ago(3), 0.9, ("refused", 7), refused),
    ];
    h.gate_fails(&d, 2, ago(3), 2, "ready", samples);
    h.at(ago_ms(2500), |s| {
        s.set_deployment_state(d.id, DeploymentState::RollbackArmed)
            .unwrap()
    });
    h.event(
        ago_ms(2500),
        &d,
        None,
        EventKind::RollbackArmed {
            fires_in_ms: 60_000,
        },
    );

    // The armed rollback was told: Slack took it; the pager answered 500
    // until it was given up.
    let told = |_: &Store, e: &rollguard::store::Event| {
        if e.kind != "rollback_armed" {
            return Vec::new();
        }
        ["oncall-slack", "pager"]
            .map(|r| rollguard::store::NewNotification {
                receiver: r.into(),
                topic: "rollback_armed".into(),
                dedup_key: "deployment-7".into(),
                payload: serde_json::json!({}),
            })
            .to_vec()
    };
    h.at(ago(2), |s| {
        s.enqueue_notifications(1000, told, ago(2)).unwrap()
    });
    h.at(ago(1), |s| {
        for n in s
            .claim_notifications("oncall-slack", "t", ago(2), 10_000, 5)
            .unwrap()
        {
            assert!(s.mark_notification_sent(n.id, "t", ago(1)).unwrap());
        }
        for n in s
            .claim_notifications("pager", "t", ago(2), 10_000, 5)
            .unwrap()
        {
            let e = "HTTP 500: upstream down";
            assert!(s.give_up_notification(n.id, "t", ago(1), e).unwrap());
        }
    });
}

/// A day of probe results for History's chart: web lost a fifth of an
/// hour five hours ago and one result two hours ago, api has an hour
/// without results, worker fails half of this hour; batch has none.
fn write_results(db: &Path) {
    let mut store = Store::open(db).unwrap();
    let hour = 3_600_000;
    let this_hour = now() - now().rem_euclid(hour);
    let mut rows = Vec::new();
    for h in 0..24 {
        let start = this_hour - (23 - h) * hour;
        for m in 0..60 {
            let at = start + m * 50_000;
            if at > now() {
                break;
            }
            let web_fails = (h == 18 && m < 12) || (h == 21 && m == 0);
            rows.push(result("web", "web-1", "tcp", at, !web_fails, 20.0));
            if h != 13 {
                rows.push(result("api", "api-1", "tcp", at, true, 10.0));
            }
            let worker_fails = h == 23 && m % 2 == 0;
            rows.push(result(
                "worker",
                "worker-1",
                "alive",
                at,
                !worker_fails,
                30.0,
            ));
        }
    }
    store.insert_results(&rows).unwrap();
}

/// The story: its fleet, its state, and its history in a folder of its
/// own.
struct Story {
    fleet: Arc<Fleet>,
    state: FleetState,
    db: PathBuf,
    _dir: Scratch,
}

fn story(name: &str) -> Story {
    let fleet = story_fleet();
    let dir = Scratch::new(name);
    let db = dir.0.join("history.db");
    write_story(&db, &fleet);
    write_results(&db);
    Story {
        state: story_state(&fleet),
        fleet,
        db,
        _dir: dir,
    }
}

impl Story {
    /// A console on the fleet view with the default theme.
    fn console(&self) -> App {
        new_app(&self.fleet)
    }

    /// Reads what the view shown wants from the history and hands it to
    /// the console, as the run loop does.
    fn feed(&self, a: &mut App) {
        let wanted = a.wanted().expect("the view reads the history");
        a.arrive(Arrival::Loaded(load::read(
            &Location::File(self.db.clone()),
            &wanted,
        )));
    }

    /// Reads the releases the command line asked for when it opened.
    fn feed_releases(&self, a: &mut App) {
        let wanted = a.take_releases_wanted().expect("the command line asks");
        a.arrive(Arrival::Loaded(load::read(
            &Location::File(self.db.clone()),
            &wanted,
        )));
    }

    fn key(&self, a: &mut App, k: KeyEvent) -> Action {
        a.handle_key(k, &self.state)
    }

    fn keys(&self, a: &mut App, text: &str) {
        for c in text.chars() {
            a.handle_key(key(c), &self.state);
        }
    }
}

// ----- the views -----

#[test]
fn snapshot_fleet_view() {
    let s = story("fleet");
    let a = s.console();
    snap(
        "fleet",
        "fleet view: web degraded with its rollback armed, api's canary under way, worker down, batch unknown",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_app_view() {
    let s = story("app");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, code(KeyCode::Enter)), Action::Open);
    assert_eq!(a.wanted(), Some(Load::AppRecords("web".into())));
    s.feed(&mut a);
    snap(
        "app_view",
        "app view of web: its rollback armed, each probe of each instance, its releases and deployments",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_history_view() {
    let s = story("history");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, key('H')), Action::ShowHistory);
    assert_eq!(a.wanted(), Some(Load::History));
    s.feed(&mut a);
    snap(
        "history",
        "History: two rollouts in flight (8, 7), a rollback by hand (6), deploys (5, 3, 2), a rollback (4), a rollback that failed (1)",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_history_with_its_availability_chart() {
    let s = story("history-chart");
    let mut a = s.console();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    let wanted = a.wanted();
    assert!(
        matches!(wanted, Some(Load::Availability { .. })),
        "{wanted:?}"
    );
    s.feed(&mut a);
    assert_eq!(a.wanted(), Some(Load::History), "read once a minute");
    snap(
        "history_chart",
        "History with each app's availability over 24 hours: web's bad hour five hours ago, api's hour without results, worker failing now, batch without results",
        &a,
        &s.state,
    );
}

/// A click in History lands on the row under it, below the chart and
/// below the error line when one shows.
#[test]
fn a_click_in_history_under_its_chart_and_its_error_line() {
    let s = story("history-click");
    let mut a = s.console();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    s.feed(&mut a);
    let area = ratatui::layout::Rect::new(0, 0, 100, 30);
    for error in [false, true] {
        if error {
            a.arrive(Arrival::Loaded(Err("database is locked".into())));
        }
        let buf = render(&a, &s.state, 100, 30);
        let text = lines(&buf).join("\n");
        assert!(text.contains("availability"), "{text}");
        assert_eq!(text.contains("cannot read the history"), error, "{text}");
        let y = row_of(&buf, "v11 → v12");
        assert!(a.click(20, y, area, &s.state), "{text}");
        assert_eq!(a.selected(), 4, "deployment 4's row:\n{text}");
        let y = row_of(&buf, "v5 → v6");
        assert!(a.click(20, y, area, &s.state));
        assert_eq!(a.selected(), 0);
    }
}

// ----- what the console acts on is what it shows -----

/// The footer's words at 160 columns.
fn footer(a: &App, state: &FleetState) -> String {
    lines(&render(a, state, 160, 48)).pop().unwrap_or_default()
}

/// `R` opens the app's newest deployment as the history has it, even
/// while the rollouts as last read still say an earlier one was the last
/// (a deploy just started): "reading" until it is read, never the earlier
/// one; and the rollout keys act on it only once the rollouts read agree.
#[test]
fn the_rollout_view_opens_on_the_newest_deployment_and_acts_only_on_it() {
    let mut s = story("bound_newest");
    // As read a moment ago: web's deployment 6 ended, nothing runs.
    let mut stale = story_state(&s.fleet);
    let mut web = stale.rollouts(0).cloned().unwrap_or_default();
    web.active = None;
    web.last = Some(EndedRollout {
        id: 6,
        to: "v2".into(),
        outcome: rollguard::model::Outcome::Deployed,
        ended_at_ms: Some(ago(3000)),
    });
    let mut all: Vec<AppRollouts> = (0..s.fleet.apps.len())
        .map(|i| stale.rollouts(i).cloned().unwrap_or_default())
        .collect();
    all[0] = web;
    stale.set_rollouts(all);
    let fresh = std::mem::replace(&mut s.state, stale);

    let mut a = s.console();
    assert_eq!(s.key(&mut a, key('R')), Action::ShowRollout);
    assert_eq!(a.view(), View::Deployment(Shown::Newest(0)));
    let text = screen(&render(&a, &s.state, 100, 30));
    assert!(
        text.contains("reading the newest deployment of web"),
        "{text}"
    );
    assert!(
        !text.contains("deployment 6") && !text.contains("deploy 6"),
        "{text}"
    );
    s.feed(&mut a);
    let text = screen(&render(&a, &s.state, 160, 48));
    assert!(text.contains("v2 → v3"), "deployment 7 is shown:\n{text}");
    // The rollouts read say nothing runs: nothing is offered or asked.
    assert!(
        !footer(&a, &s.state).contains("fire"),
        "{}",
        footer(&a, &s.state)
    );
    s.key(&mut a, key('f'));
    assert!(a.confirm().is_none());
    let said = a.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(said.contains("deployment 7 of web"), "{said}");
    // Read again: deployment 7 runs, its rollback armed. Now `f` asks
    // about deployment 7, the one shown (once the notice has faded, the
    // footer offers it).
    s.state = fresh;
    a.now_ms += tui::NOTICE_MS;
    assert!(
        footer(&a, &s.state).contains("fire"),
        "{}",
        footer(&a, &s.state)
    );
    s.key(&mut a, key('f'));
    let question = a.confirm().map(|c| c.question.clone()).unwrap_or_default();
    assert_eq!(question, "Roll web back now (deployment 7)?");
}

/// A deployment opened from History that has ended takes no command, even
/// while another deployment of its app runs: the keys are for what the
/// screen shows.
#[test]
fn a_deployment_that_ended_takes_no_command_while_another_runs() {
    let s = story("bound_ended");
    let mut a = s.console();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    // Deployment 6 (web's rollback by hand) is the third row.
    s.key(&mut a, key('j'));
    s.key(&mut a, key('j'));
    s.key(&mut a, code(KeyCode::Enter));
    assert_eq!(a.view(), View::Deployment(Shown::Id(6)));
    s.feed(&mut a);
    let shown = footer(&a, &s.state);
    for word in ["fire", "hold", "abort"] {
        assert!(!shown.contains(word), "{word} offered: {shown}");
    }
    for k in ['f', 'h', 'x'] {
        s.key(&mut a, key(k));
        assert!(a.confirm().is_none(), "{k} asked about another deployment");
        let said = a.notice().map(|n| n.text.clone()).unwrap_or_default();
        assert!(
            said.contains("deployment 6 of web has ended"),
            "{k}: {said}"
        );
    }
}

/// A question left open while its deployment ends says so, and its
/// button sends nothing.
#[test]
fn a_question_about_a_deployment_that_ended_meanwhile_sends_nothing() {
    let mut s = story("bound_question");
    let mut a = s.console();
    s.key(&mut a, key('f'));
    assert!(a.confirm().is_some());
    s.keys(&mut a, "bad gate");
    // The rollback fired by itself and finished.
    let mut web = s.state.rollouts(0).cloned().unwrap_or_default();
    web.active = None;
    web.last = Some(EndedRollout {
        id: 7,
        to: "v3".into(),
        outcome: rollguard::model::Outcome::RolledBack,
        ended_at_ms: Some(now()),
    });
    let mut all: Vec<AppRollouts> = (0..s.fleet.apps.len())
        .map(|i| s.state.rollouts(i).cloned().unwrap_or_default())
        .collect();
    all[0] = web;
    s.state.set_rollouts(all);
    a.recheck(&s.state);
    let text = screen(&render(&a, &s.state, 100, 30));
    assert!(
        text.contains("deployment 7 of web has ended (rolled back)"),
        "{text}"
    );
    assert!(!text.contains("fires by itself"), "{text}");
    s.key(&mut a, code(KeyCode::Tab));
    s.key(&mut a, code(KeyCode::Enter));
    assert_eq!(a.take_confirmed(), None, "nothing is sent");
    let c = a.confirm().expect("the question stays, saying why");
    assert!(
        c.refusal().is_some_and(|r| r.contains("nothing was sent")),
        "{:?}",
        c.refusal()
    );
}

/// History opened again says it is reading until its rows are read anew:
/// never an earlier count.
#[test]
fn history_opened_again_reads_before_it_shows_rows() {
    let s = story("bound_history");
    let mut a = s.console();
    s.key(&mut a, key('H'));
    let text = screen(&render(&a, &s.state, 100, 30));
    assert!(text.contains("History · reading…"), "{text}");
    s.feed(&mut a);
    let text = screen(&render(&a, &s.state, 100, 30));
    assert!(text.contains("History · 8 deployments"), "{text}");
    // The chart is read after the rows, not before.
    assert!(matches!(a.wanted(), Some(Load::Availability { .. })));
    s.key(&mut a, code(KeyCode::Esc));
    s.key(&mut a, key('H'));
    assert_eq!(a.wanted(), Some(Load::History));
    let text = screen(&render(&a, &s.state, 100, 30));
    assert!(text.contains("History · reading…"), "{text}");
    assert!(!text.contains("8 deployments"), "{text}");
}

/// A chart that could not be read is tried again within seconds, not a
/// minute later.
#[test]
fn an_availability_chart_that_could_not_be_read_is_tried_again_soon() {
    let s = story("bound_chart");
    let mut a = s.console();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    assert!(matches!(a.wanted(), Some(Load::Availability { .. })));
    a.arrive(Arrival::Loaded(Ok(load::Loaded::Availability {
        at_ms: a.now_ms,
        apps: Err("database is locked".into()),
    })));
    assert_eq!(a.wanted(), Some(Load::History), "not at once");
    a.now_ms += 5_000;
    assert!(
        matches!(a.wanted(), Some(Load::Availability { .. })),
        "again after 5 s"
    );
    s.feed(&mut a);
    let text = screen(&render(&a, &s.state, 100, 30));
    assert!(text.contains("availability, last 24 h"), "{text}");
}

/// Completing `:deploy web ` offers releases to go to, never the one every
/// instance runs already.
#[test]
fn deploy_completion_leaves_out_the_release_that_runs_everywhere() {
    let s = story("bound_completion");
    let mut a = s.console();
    let worker = s
        .fleet
        .apps
        .iter()
        .position(|x| x.name == "worker")
        .unwrap();
    assert_eq!(
        s.state.rollouts(worker).map(|r| r.versions.clone()),
        Some(vec!["v11".to_string()])
    );
    s.key(&mut a, key(':'));
    s.keys(&mut a, "deploy worker ");
    s.feed_releases(&mut a);
    s.key(&mut a, code(KeyCode::Tab));
    let Mode::Command(line) = a.mode() else {
        panic!("the command line closed");
    };
    assert_eq!(line.text(), "deploy worker v12 ");
}

#[test]
fn snapshot_rollout_view_of_an_armed_rollback() {
    let s = story("rollout");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, key('R')), Action::ShowRollout);
    assert_eq!(a.view(), View::Deployment(Shown::Newest(0)));
    s.feed(&mut a);
    snap(
        "rollout_armed",
        "Rollout view (R on web): deployment 7's gate failed on web-3, its rollback armed, the why card and the timeline",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_deployment_view_of_a_rollback() {
    let s = story("deployment");
    let mut a = s.console();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    // Deployment 4 is the fifth row, newest first.
    for _ in 0..4 {
        s.key(&mut a, key('j'));
    }
    assert_eq!(s.key(&mut a, code(KeyCode::Enter)), Action::Open);
    assert_eq!(a.view(), View::Deployment(Shown::Id(4)));
    s.feed(&mut a);
    snap(
        "deployment_rolled_back",
        "deployment 4 opened from History: worker's v12 rolled back after its gate failed on worker-2, the why card with its incident",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_events_view() {
    let s = story("events");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, key('E')), Action::ShowEvents);
    assert_eq!(a.wanted(), Some(Load::Events { after: 0 }));
    s.feed(&mut a);
    snap(
        "events",
        "Events: the audit log of every app, newest at the bottom",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_help() {
    let s = story("help");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, key('?')), Action::Help);
    snap("help", "the help over the fleet view", &a, &s.state);
}

#[test]
fn snapshot_abort_question() {
    let s = story("abort");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, key('x')), Action::Rollout(Verb::Abort));
    s.keys(&mut a, "web-3 refuses connections on v3");
    snap(
        "confirm_abort",
        "the question before aborting web's rollout, its reason typed, Cancel focused",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_deploy_question_and_its_check() {
    let f = story_fleet();
    let s = state(&f);
    let dir = Scratch::new("deploy");
    let db = dir.0.join("history.db");
    let mut a = new_app(&f);
    a.handle_key(key(':'), &s);
    for c in "deploy web v3".chars() {
        a.handle_key(key(c), &s);
    }
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Deploy);
    snap(
        "deploy_checking",
        "`:deploy web v3` is being checked",
        &a,
        &s,
    );

    // The console's own check: the preflight runs web's commands here.
    let (token, intent) = a.take_check().expect("a check to run");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let arrival = rt.block_on(async {
        let (queue, mut rx) = Queue::new();
        Service::new(f.clone(), Some(Location::File(db)), "ana".into(), queue)
            .prepare(token, intent);
        rx.recv().await.expect("the check answers")
    });
    assert!(
        matches!(&arrival, Arrival::Prepared { result: Ok(_), .. }),
        "{arrival:?}"
    );
    a.arrive(arrival);
    assert!(matches!(a.mode(), Mode::Confirm(_)), "{:?}", a.mode());
    snap(
        "deploy_question",
        "the question before deploying web v3: the plan, what runs where, the way back",
        &a,
        &s,
    );
}

#[test]
fn snapshot_command_line_completion() {
    let s = story("command");
    let mut a = s.console();
    assert_eq!(s.key(&mut a, key(':')), Action::Command);
    s.keys(&mut a, "dep");
    assert_eq!(s.key(&mut a, code(KeyCode::Tab)), Action::Complete);
    s.keys(&mut a, "we");
    s.key(&mut a, code(KeyCode::Tab));
    assert_eq!(
        a.mode().input().map(|l| l.text()).as_deref(),
        Some("deploy web ")
    );
    snap(
        "command_completed",
        "the command line: `dep` Tab `we` Tab completed to `deploy web `",
        &a,
        &s.state,
    );
    // Two releases of web start with v: the line keeps the v, the
    // candidates are offered.
    s.keys(&mut a, "v");
    s.key(&mut a, code(KeyCode::Tab));
    assert_eq!(
        a.mode().input().map(|l| l.text()).as_deref(),
        Some("deploy web v")
    );
    snap(
        "command_candidates",
        "the command line: `v` Tab after `deploy web `, where v2 and v3 both fit",
        &a,
        &s.state,
    );
}

#[test]
fn snapshot_read_only_console() {
    let s = story("read-only");
    let mut a = s.console();
    a.read_only = true;
    snap(
        "read_only",
        "a read-only console: no action offered",
        &a,
        &s.state,
    );
}

// ----- colours and symbols -----

/// Where `needle` starts on the screen, in cells.
fn cell_of(buf: &Buffer, needle: &str) -> (u16, u16) {
    let (w, h) = (buf.area.width, buf.area.height);
    for y in 0..h {
        for x in 0..w {
            let rest: String = (x..w).map(|x| buf[(x, y)].symbol()).collect();
            if rest.starts_with(needle) {
                return (x, y);
            }
        }
    }
    panic!("no {needle:?} on the screen\n{}", screen(buf));
}

/// The foreground of every cell of `needle` (where it starts) is `fg`,
/// with `modifier` among its modifiers.
fn assert_drawn(buf: &Buffer, needle: &str, fg: Color, modifier: Modifier) {
    let (x, y) = cell_of(buf, needle);
    for dx in 0..needle.chars().count() as u16 {
        let c = &buf[(x + dx, y)];
        assert_eq!(c.fg, fg, "{needle:?} at {}\n{}", x + dx, screen(buf));
        assert!(
            c.modifier.contains(modifier),
            "{needle:?} at {} is {:?}\n{}",
            x + dx,
            c.modifier,
            screen(buf)
        );
    }
}

#[test]
fn an_armed_rollback_counts_down_in_the_failure_colour() {
    let s = story("armed");
    let mut a = s.console();
    let t = Theme::default();
    let buf = render(&a, &s.state, 80, 24);
    assert_drawn(&buf, "⚠ rollback of v3 in 58s", t.down, Modifier::BOLD);
    assert_drawn(&buf, "▶ v5→v6 2/9", t.rollout, Modifier::empty());

    s.key(&mut a, key('R'));
    s.feed(&mut a);
    let buf = render(&a, &s.state, 160, 48);
    assert_drawn(&buf, "⚠ rollback fires in ", t.down, Modifier::BOLD);
    // An instance whose gate passed; the why card.
    assert_drawn(&buf, "● web-1 healthy", t.healthy, Modifier::empty());
    assert_drawn(
        &buf,
        "WHY gate failed (E_GATE_FAILED)",
        t.down,
        Modifier::BOLD,
    );
}

#[test]
fn history_outcomes_read_by_colour_and_by_symbol() {
    let s = story("outcomes");
    let mut a = s.console();
    let t = Theme::default();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    let buf = render(&a, &s.state, 160, 48);
    let row = |id: &str| {
        let y = lines(&buf)
            .iter()
            .position(|l| {
                l.strip_prefix('│')
                    .unwrap_or(l)
                    .trim_start()
                    .starts_with(id)
            })
            .unwrap_or_else(|| panic!("no row {id}\n{}", screen(&buf)));
        lines(&buf)[y].clone()
    };
    for (id, outcome) in [
        ("8 ", "▶ running"),
        ("7 ", "⚠ rollback armed"),
        ("6 ", "✔ deployed"),
        ("4 ", "↩ rolled back"),
        ("1 ", "✖ rollback"),
    ] {
        assert!(row(id).contains(outcome), "{id}: {}", row(id));
    }
    assert_drawn(&buf, "✔ deployed", t.healthy, Modifier::empty());
    assert_drawn(&buf, "↩ rolled back", t.degraded, Modifier::empty());
    assert_drawn(&buf, "✖ rollback", t.down, Modifier::BOLD);
    assert_drawn(&buf, "▶ running", t.rollout, Modifier::empty());
    assert_drawn(&buf, "⚠ rollback armed", t.down, Modifier::BOLD);
    assert!(row("6 ").contains("rollback"), "a rollback by hand says so");
    let (x, y) = cell_of(&buf, "rollback v3 → v2");
    for dx in 0..8 {
        assert_eq!(buf[(x + dx, y)].fg, t.degraded, "{}", screen(&buf));
    }
    assert_ne!(buf[(x + 9, y)].fg, t.degraded, "the change is plain");
}

#[test]
fn a_deployment_view_reads_by_colour_and_by_symbol() {
    let s = story("symbols");
    let t = Theme::default();
    let open = |id: i64, rows_down: usize| {
        let mut a = s.console();
        s.key(&mut a, key('H'));
        s.feed(&mut a);
        for _ in 0..rows_down {
            s.key(&mut a, key('j'));
        }
        s.key(&mut a, code(KeyCode::Enter));
        assert_eq!(a.view(), View::Deployment(Shown::Id(id)));
        s.feed(&mut a);
        render(&a, &s.state, 160, 48)
    };
    // Rolled back: its instances restored, the why card's samples.
    let buf = open(4, 4);
    assert_drawn(&buf, "↩ rolled back", t.degraded, Modifier::empty());
    assert_drawn(&buf, "↩ worker-1 restored", t.degraded, Modifier::empty());
    assert_drawn(&buf, "↩ worker-2 restored", t.degraded, Modifier::empty());
    assert_drawn(
        &buf,
        "WHY gate failed (E_GATE_FAILED)",
        t.down,
        Modifier::BOLD,
    );
    let text = screen(&buf);
    assert_eq!(text.matches("  ✔ ").count(), 2, "{text}");
    assert_eq!(text.matches("  ✖ ").count(), 2, "{text}");
    let (x, y) = cell_of(&buf, "  ✖ ");
    assert_eq!(buf[(x + 2, y)].fg, t.down);
    let (x, y) = cell_of(&buf, "  ✔ ");
    assert_eq!(buf[(x + 2, y)].fg, t.healthy);
    // Deployed: every instance healthy.
    let buf = open(6, 2);
    assert_drawn(&buf, "✔ deployed", t.healthy, Modifier::empty());
    assert_drawn(&buf, "● web-3 healthy", t.healthy, Modifier::empty());
    // Its rollback failed: the instance left behind.
    let buf = open(1, 7);
    assert_drawn(&buf, "✖ rollback failed", t.down, Modifier::BOLD);
    assert_drawn(&buf, "✖ api-1 failed", t.down, Modifier::BOLD);
}

#[test]
fn mono_history_and_deployments_keep_their_meaning_without_colour() {
    let s = story("mono");
    let mut a = App::new(s.fleet.clone(), Theme::load("mono", &[]).unwrap());
    a.now_ms = now();
    let marker = a.theme.selection_marker.clone();
    s.key(&mut a, key('H'));
    s.feed(&mut a);
    s.key(&mut a, key('j'));
    let buf = render(&a, &s.state, 160, 48);
    let text = screen(&buf);
    assert_no_color(&buf);
    for symbol in [
        "▶ running",
        "⚠ rollback armed",
        "✔ deployed",
        "↩ rolled back",
        "✖ rollback",
    ] {
        assert!(text.contains(symbol), "{symbol}\n{text}");
    }
    // The selected row (deployment 7), and only it, is marked and
    // reversed.
    let marked: Vec<usize> = lines(&buf)
        .iter()
        .enumerate()
        .filter(|(_, l)| l.strip_prefix('│').unwrap_or(l).starts_with(&marker))
        .map(|(y, _)| y)
        .collect();
    assert_eq!(marked.len(), 1, "{text}");
    let y = marked[0] as u16;
    assert!(lines(&buf)[y as usize].contains("web"), "{text}");
    for x in 1..100 {
        assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED), "{x}");
        assert!(
            !buf[(x, y + 1)].modifier.contains(Modifier::REVERSED),
            "{x}"
        );
    }

    // The armed rollback, opened: its countdown, its instances and the
    // why card's samples by their symbols.
    s.key(&mut a, code(KeyCode::Enter));
    assert_eq!(a.view(), View::Deployment(Shown::Id(7)));
    s.feed(&mut a);
    let buf = render(&a, &s.state, 160, 48);
    let text = screen(&buf);
    assert_no_color(&buf);
    for symbol in [
        "⚠ rollback fires in",
        "● web-1 healthy",
        "WHY gate failed",
        "  ✔ ",
        "  ✖ ",
    ] {
        assert!(text.contains(symbol), "{symbol}\n{text}");
    }
}

/// Every command a screen suggests (in backticks, as the snapshots show
/// them) is one the command line takes: `rollguard ARGS --help` parses
/// ARGS and exits 0 only if they are valid.
#[test]
fn every_command_a_screen_suggests_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tui_render/snapshots");
    let mut commands = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for piece in text.split('`').skip(1).step_by(2) {
            if let Some(args) = piece.strip_prefix("rollguard ")
                && !piece.contains('\n')
            {
                commands.insert(args.to_string());
            }
        }
    }
    assert!(
        !commands.is_empty(),
        "no command found in {}",
        dir.display()
    );
    for args in &commands {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollguard"))
            .args(args.split_whitespace())
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`rollguard {args}` does not run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
