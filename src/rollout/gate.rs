//! The health gate of a rollout: probes the slots a stage started, directly
//! (not through the console's monitor), until every one of them has passed
//! `success_threshold` times in a row — or one of them fails
//! `failure_threshold` times in a row, or the deadline passes. The same
//! loop, with [`GateMode::Monitor`], keeps watching new slots for the
//! app's `monitor` time after the last stage.
//!
//! A failure returns at once with its evidence (the probe, its thresholds,
//! the counts and the last samples), so the rollback starts within one
//! probe interval of the result that crossed the threshold.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{App, Fleet, Require};
use crate::driver::Side;
use crate::health::ProbeCounter;
use crate::model::{ProbeResult, Verdict};
use crate::probe::{Prober, Target};

/// One slot under the gate: an instance index and a side.
pub type GateSlot = (usize, Side);

/// Pass when healthy, or watch for a fixed time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateMode {
    /// Pass as soon as every slot is healthy; fail at `deadline`.
    Deploy {
        /// How long the slots have.
        deadline: Duration,
    },
    /// Pass when `length` has passed without a failure.
    Monitor {
        /// How long to watch.
        length: Duration,
    },
}

/// One probe result kept as evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// When it started.
    pub at_ms: i64,
    /// Passed.
    pub ok: bool,
    /// Milliseconds.
    pub latency_ms: f64,
    /// HTTP status or exit code.
    pub code: Option<i64>,
    /// Why it failed.
    pub error_kind: Option<String>,
    /// What was seen.
    pub message: String,
}

/// What made a gate decide, for the audit log and `--json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// The instance.
    pub instance: String,
    /// Its side.
    pub side: Side,
    /// The port probed.
    pub port: u16,
    /// The probe that decided (on a pass: the last one to pass).
    pub probe: String,
    /// Passes in a row needed.
    pub success_threshold: u32,
    /// Failures in a row that fail.
    pub failure_threshold: u32,
    /// Passes in a row seen.
    pub consecutive_ok: u32,
    /// Failures in a row seen.
    pub consecutive_fail: u32,
    /// The newest samples of that probe, oldest first.
    pub last_samples: Vec<Sample>,
}

/// How a gate ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GateOutcome {
    /// Every slot healthy (deploy) or no failure in time (monitor).
    Passed {
        /// How long it took, ms.
        elapsed_ms: u64,
        /// One entry per slot.
        evidence: Vec<Evidence>,
    },
    /// A probe failed `failure_threshold` times in a row.
    Failed {
        /// The failing probe's evidence.
        evidence: Evidence,
    },
    /// Some slot was not healthy by the deadline.
    Deadline {
        /// Deadline, ms.
        deadline_ms: u64,
        /// The slots that were not healthy, with their last samples.
        evidence: Vec<Evidence>,
    },
    /// Stopped from outside (operator abort).
    Cancelled,
}

struct Track {
    slot: GateSlot,
    probe: usize,
    counter: ProbeCounter,
    samples: VecDeque<Sample>,
}

const KEEP_SAMPLES: usize = 5;

fn evidence(app: &App, t: &Track) -> Evidence {
    let inst = &app.instances[t.slot.0];
    Evidence {
        instance: inst.name.clone(),
        side: t.slot.1,
        port: port_of(app, t.slot),
        probe: app.probes[t.probe].name.clone(),
        success_threshold: app.health.success_threshold,
        failure_threshold: app.health.failure_threshold,
        consecutive_ok: t.counter.consecutive_ok,
        consecutive_fail: t.counter.consecutive_fail,
        last_samples: t.samples.iter().cloned().collect(),
    }
}

fn port_of(app: &App, (i, side): GateSlot) -> u16 {
    let inst = &app.instances[i];
    match side {
        Side::Main => inst.port,
        Side::Alt => inst.alt_port.unwrap_or(inst.port),
    }
}

fn slot_healthy(app: &App, tracks: &[Track], slot: GateSlot) -> bool {
    let verdicts = tracks
        .iter()
        .filter(|t| t.slot == slot)
        .map(|t| t.counter.verdict);
    let v = crate::health::combine_probes(app.health.require, verdicts);
    v == Verdict::Healthy
}

/// Runs the gate of `slots` of `app`. `cancel` turning true stops it.
pub async fn run(
    prober: &Prober,
    fleet: &Fleet,
    app: &App,
    slots: &[GateSlot],
    mode: GateMode,
    mut cancel: watch::Receiver<bool>,
) -> GateOutcome {
    let started = Instant::now();
    // `initial_delay` is for instances that just started; a watch comes
    // after their gate passed, so every failure counts from its start.
    let grace_until = match mode {
        GateMode::Deploy { .. } => started + app.health.initial_delay,
        GateMode::Monitor { .. } => started,
    };
    let end = started
        + match mode {
            GateMode::Deploy { deadline } => deadline,
            GateMode::Monitor { length } => length,
        };
    let mut tracks: Vec<Track> = slots
        .iter()
        .flat_map(|&slot| {
            (0..app.probes.len()).map(move |probe| Track {
                slot,
                probe,
                counter: ProbeCounter::new(),
                samples: VecDeque::new(),
            })
        })
        .collect();
    let interval = app.health.interval;
    loop {
        let round = Instant::now();
        // One round: every probe of every slot, concurrently.
        let results: Vec<ProbeResult> = {
            let mut futures = Vec::new();
            for t in &tracks {
                let inst = &app.instances[t.slot.0];
                let Some(host) = fleet.host(&inst.host) else {
                    continue;
                };
                let target = Target {
                    app,
                    instance: inst,
                    host,
                    port: port_of(app, t.slot),
                };
                futures.push(prober.run(target, &app.probes[t.probe]));
            }
            tokio::select! {
                r = crate::probe::join_all(futures) => r,
                _ = cancel.wait_for(|c| *c) => return GateOutcome::Cancelled,
            }
        };
        let counts = Instant::now() >= grace_until;
        for (t, r) in tracks.iter_mut().zip(results) {
            t.counter.observe(
                r.ok,
                counts || r.ok,
                app.health.success_threshold,
                app.health.failure_threshold,
            );
            if t.samples.len() == KEEP_SAMPLES {
                t.samples.pop_front();
            }
            t.samples.push_back(Sample {
                at_ms: r.at_ms,
                ok: r.ok,
                latency_ms: (r.latency_ms * 10.0).round() / 10.0,
                code: r.code,
                error_kind: r.error_kind.map(|k| k.as_str().to_string()),
                message: r.message,
            });
        }
        // A slot fails when a probe it needs is unhealthy: with `all`, any
        // probe; with `any`, every probe.
        for slot in slots {
            let of_slot: Vec<&Track> = tracks.iter().filter(|t| t.slot == *slot).collect();
            let failing = of_slot
                .iter()
                .filter(|t| t.counter.verdict == Verdict::Unhealthy)
                .collect::<Vec<_>>();
            let failed = match app.health.require {
                Require::All => !failing.is_empty(),
                Require::Any => failing.len() == of_slot.len(),
            };
            if failed {
                return GateOutcome::Failed {
                    evidence: evidence(app, failing[0]),
                };
            }
        }
        let all_healthy = slots.iter().all(|s| slot_healthy(app, &tracks, *s));
        let now = Instant::now();
        match mode {
            GateMode::Deploy { .. } if all_healthy => {
                return GateOutcome::Passed {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    evidence: slots
                        .iter()
                        .filter_map(|s| tracks.iter().rev().find(|t| t.slot == *s))
                        .map(|t| evidence(app, t))
                        .collect(),
                };
            }
            GateMode::Deploy { deadline } if now >= end => {
                return GateOutcome::Deadline {
                    deadline_ms: deadline.as_millis() as u64,
                    evidence: tracks
                        .iter()
                        .filter(|t| t.counter.verdict != Verdict::Healthy)
                        .map(|t| evidence(app, t))
                        .collect(),
                };
            }
            GateMode::Monitor { .. } if now >= end => {
                return GateOutcome::Passed {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    evidence: tracks.iter().map(|t| evidence(app, t)).collect(),
                };
            }
            _ => {}
        }
        let next = (round + interval).min(end);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = cancel.wait_for(|c| *c) => return GateOutcome::Cancelled,
        }
    }
}
