//! The health gate of a rollout: probes the slots a stage started, directly
//! (not through the console's monitor), until every one of them has passed
//! `success_threshold` times in a row — or one of them fails, or the
//! deadline passes. The same loop, with [`GateMode::Monitor`], watches
//! slots for a fixed time: a step's pause, a manual step, and the app's
//! `monitor` time after the last stage.
//!
//! A probe on a slot fails by either of two rules:
//!
//! - `failure_threshold` failures in a row ("3 failures in a row"), or
//! - `max_failures` failures within the window, in a row or not
//!   ("2 of 2 failures in the window"): the failure budget, which catches
//!   a release that fails every other check, where a pass in between keeps
//!   resetting the streak. It defaults to `failure_threshold`.
//!
//! The window is one run of this gate: a deploy gate until it passes (or
//! its deadline), one pause or watch, the monitor time. Each starts with an
//! unspent budget, so failures a deploy gate forgave do not count against
//! the watch after it.
//!
//! The budget is per probe on each slot (instance and side), like the
//! streak, not one total for the gate. That is what its evidence can name
//! ("health on web-2: 2 of 3 failures"), and it does not tighten as the
//! fleet grows: with one shared budget, ten instances that each drop a
//! single check would roll back a good release, and the more instances and
//! probes an app has, the likelier that gets. An instance that flaps spends
//! its own budget, whatever the others do. With `require = "any"` a slot
//! fails when every probe has failed by either rule.
//!
//! `initial_delay` spares failures of a deploy gate only, from both rules
//! (a failure within it is not counted, but still breaks a run of passes);
//! a watch counts every failure from its start.
//!
//! Every round of each slot's own probes is recorded in the rollout's
//! [`Seen`]: from it the engine takes a slot whose probe failed out of
//! traffic at once (before the thresholds fail the gate), and a rollback
//! decides who may serve while it restores.
//!
//! A failure returns at once with its evidence (the probe, its thresholds,
//! the counts, the rule that fired and the last samples), so the rollback
//! starts within one probe interval of the result that crossed the line. A
//! deploy gate never passes with a slot that has spent its budget.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{App, Fleet, Health, Require};
use crate::driver::Side;
use crate::health::ProbeCounter;
pub use crate::model::evidence::{Evidence, FailRule, GateOutcome, Sample};
use crate::model::{FailureBudget, ProbeResult, Verdict};
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

/// What the results of one window add up to for one probe on one slot.
/// Pure: fed results, read for a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tally {
    counter: ProbeCounter,
    budget: FailureBudget,
}

impl Tally {
    fn new(health: &Health) -> Self {
        Tally {
            counter: ProbeCounter::new(),
            budget: FailureBudget::new(health.failure_budget()),
        }
    }

    /// Records one result; `counts = false` is `initial_delay`'s grace.
    fn observe(&mut self, ok: bool, counts: bool, health: &Health) {
        self.counter.observe(
            ok,
            counts,
            health.success_threshold,
            health.failure_threshold,
        );
        self.budget.observe(ok, counts);
    }

    /// The rule that failed it, if one did. A streak is named first: it
    /// is the plainer account when both rules fire on the same result.
    fn failed(&self) -> Option<FailRule> {
        if self.counter.verdict == Verdict::Unhealthy {
            Some(FailRule::Consecutive)
        } else if self.budget.spent() {
            Some(FailRule::Budget)
        } else {
            None
        }
    }

    /// The streak's verdict, except that a spent budget is unhealthy.
    fn verdict(&self) -> Verdict {
        if self.failed().is_some() {
            Verdict::Unhealthy
        } else {
            self.counter.verdict
        }
    }

    /// The failure in words, when it failed.
    fn reason(&self) -> Option<String> {
        self.failed().map(|rule| match rule {
            FailRule::Consecutive => {
                format!("{} failures in a row", self.counter.consecutive_fail)
            }
            FailRule::Budget => format!("{} in the window", self.budget),
        })
    }
}

struct Track {
    /// The slot probed; for a comparison, the gate's first slot.
    slot: GateSlot,
    /// A comparison of the gate's slots with the old side: it belongs to
    /// every slot, and can fail them but never holds a deploy gate.
    compares: bool,
    probe: usize,
    tally: Tally,
    samples: VecDeque<Sample>,
    /// A comparison's last `[CANARY]` and `[BASELINE]`.
    values: (Option<f64>, Option<f64>),
}

impl Track {
    fn new(slot: GateSlot, probe: usize, compares: bool, health: &Health) -> Track {
        Track {
            slot,
            compares,
            probe,
            tally: Tally::new(health),
            samples: VecDeque::new(),
            values: (None, None),
        }
    }

    /// Whether it judges `slot`.
    fn judges(&self, slot: &GateSlot) -> bool {
        self.compares || self.slot == *slot
    }
}

/// What one round of results decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judgement {
    /// This track failed its slot.
    Failed(usize),
    /// Every slot is healthy.
    Healthy,
    /// Neither yet.
    Pending,
}

/// Judges the tracks after a round. A slot fails when a probe it needs has
/// failed: with `all`, any probe; with `any`, every probe. A failure wins
/// over every other slot being healthy. A comparison counts for every slot
/// when it fails, but a slot is healthy on its own probes: a comparison
/// that has not passed yet (no traffic on the new side to compare) holds
/// no gate, unless the slot has no probe but comparisons.
fn judge(require: Require, slots: &[GateSlot], tracks: &[Track]) -> Judgement {
    for slot in slots {
        let of_slot: Vec<usize> = (0..tracks.len())
            .filter(|&i| tracks[i].judges(slot))
            .collect();
        let failing: Vec<usize> = of_slot
            .iter()
            .copied()
            .filter(|&i| tracks[i].tally.failed().is_some())
            .collect();
        // A failed probe is unhealthy; one not failed (yet) says nothing.
        let verdicts = of_slot.iter().map(|i| {
            if failing.contains(i) {
                Verdict::Unhealthy
            } else {
                Verdict::Unknown
            }
        });
        if crate::health::combine_probes(require, verdicts) == Verdict::Unhealthy {
            return Judgement::Failed(failing[0]);
        }
    }
    let healthy = |slot: &GateSlot| {
        let own: Vec<Verdict> = (tracks.iter())
            .filter(|t| t.slot == *slot && !t.compares)
            .map(|t| t.tally.verdict())
            .collect();
        // A slot with no probe of its own is judged by the comparisons.
        let verdicts = if own.is_empty() {
            (tracks.iter())
                .filter(|t| t.compares)
                .map(|t| t.tally.verdict())
                .collect()
        } else {
            own
        };
        crate::health::combine_probes(require, verdicts) == Verdict::Healthy
    };
    if slots.iter().all(healthy) {
        Judgement::Healthy
    } else {
        Judgement::Pending
    }
}

const KEEP_SAMPLES: usize = 5;

fn evidence(app: &App, sides: &Sides<'_>, t: &Track) -> Evidence {
    let inst = &app.instances[t.slot.0];
    let names = |slots: &[GateSlot]| -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (i, _) in slots {
            let name = &app.instances[*i].name;
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    };
    let (instance, baseline_instances) = if t.compares {
        (names(sides.new).join(", "), names(sides.old))
    } else {
        (inst.name.clone(), Vec::new())
    };
    Evidence {
        instance,
        side: t.slot.1,
        port: port_of(app, t.slot),
        probe: app.probes[t.probe].name.clone(),
        success_threshold: app.health.success_threshold,
        failure_threshold: app.health.failure_threshold,
        consecutive_ok: t.tally.counter.consecutive_ok,
        consecutive_fail: t.tally.counter.consecutive_fail,
        failures: t.tally.budget.failures,
        max_failures: t.tally.budget.max_failures,
        rule: t.tally.failed(),
        reason: t.tally.reason(),
        last_samples: t.samples.iter().cloned().collect(),
        canary: t.values.0,
        baseline: t.values.1,
        baseline_instances,
    }
}

/// A probe's result and, for a comparison, its `[CANARY]` and
/// `[BASELINE]`.
type Probed = (ProbeResult, (Option<f64>, Option<f64>));

/// The tracks of a gate over `slots`: each probe on each slot, except a
/// comparison, which is one track for the gate, and only when there is an
/// old side to compare with (`compare`).
fn tracks_of(app: &App, slots: &[GateSlot], compare: bool) -> Vec<Track> {
    let Some(&first) = slots.first() else {
        return Vec::new();
    };
    let (comparisons, own): (Vec<usize>, Vec<usize>) =
        (0..app.probes.len()).partition(|&p| app.probes[p].compares());
    let mut tracks: Vec<Track> = slots
        .iter()
        .flat_map(|&slot| {
            own.iter()
                .map(move |&p| Track::new(slot, p, false, &app.health))
        })
        .collect();
    if compare {
        tracks.extend(
            comparisons
                .iter()
                .map(|&p| Track::new(first, p, true, &app.health)),
        );
    }
    tracks
}

/// The slots under a gate (of the new release) and the old release's
/// slots that still serve: what a comparison probe compares them with.
#[derive(Clone, Copy, Debug)]
pub struct Sides<'a> {
    /// The slots judged.
    pub new: &'a [GateSlot],
    /// The old slots compared with; none leaves comparisons out.
    pub old: &'a [GateSlot],
}

impl<'a> Sides<'a> {
    /// `slots` alone, compared with nothing.
    pub fn alone(slots: &'a [GateSlot]) -> Sides<'a> {
        Sides {
            new: slots,
            old: &[],
        }
    }
}

/// What one slot's own probes showed in a rollout's gates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotSeen {
    /// A round of its probes failed (outside `initial_delay`) since it was
    /// last forgotten, i.e. since the release it runs started.
    pub failed: bool,
    /// Its last round passed.
    pub passed: bool,
    /// How many rounds of it were recorded.
    pub rounds: u64,
}

impl SlotSeen {
    /// Its last round failed, and counted (outside `initial_delay`).
    pub fn failing(&self) -> bool {
        self.failed && !self.passed
    }
}

/// What the gates of one rollout have seen of each slot, shared by all of
/// them (the engine keeps one): a rollback decides from it who may serve
/// while it restores, and each round wakes [`Seen::round`].
#[derive(Clone, Debug, Default)]
pub struct Seen {
    slots: std::sync::Arc<std::sync::Mutex<Vec<(GateSlot, SlotSeen)>>>,
    round: std::sync::Arc<tokio::sync::Notify>,
}

impl Seen {
    /// Records one round of `slot`'s probes; a failure that `counts`
    /// (outside `initial_delay`) marks it failed.
    pub fn record(&self, slot: GateSlot, ok: bool, counts: bool) {
        let failed = !ok && counts;
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let k = match slots.iter().position(|(s, _)| *s == slot) {
                Some(k) => k,
                None => {
                    slots.push((slot, SlotSeen::default()));
                    slots.len() - 1
                }
            };
            let seen = &mut slots[k].1;
            seen.passed = ok;
            seen.failed |= failed;
            seen.rounds += 1;
        }
        self.round.notify_one();
    }

    /// What was seen of `slot` (nothing yet: the default).
    pub fn of(&self, slot: GateSlot) -> SlotSeen {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or_else(SlotSeen::default, |(_, seen)| *seen)
    }

    /// Forgets `slot`: a release starts on it.
    pub fn forget(&self, slot: GateSlot) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|(s, _)| *s != slot);
    }

    /// Resolves after the next round of any slot (or at once when one was
    /// recorded since the last call).
    pub async fn round(&self) {
        self.round.notified().await;
    }
}

fn port_of(app: &App, (i, side): GateSlot) -> u16 {
    let inst = &app.instances[i];
    match side {
        Side::Main => inst.port,
        Side::Alt => inst.alt_port.unwrap_or(inst.port),
    }
}

/// Runs the gate of `sides.new` of `app` (slots of the new release).
/// `sides.old` are the slots of the old release that still serve: a
/// comparison probe ([`crate::config::Probe::compares`]) compares the new
/// slots with them, once a round; with none, comparisons are left out.
/// Each round of each slot's own probes is recorded in `seen`. `cancel`
/// turning true stops it.
pub async fn run(
    prober: &Prober,
    fleet: &Fleet,
    app: &App,
    sides: Sides<'_>,
    mode: GateMode,
    mut cancel: watch::Receiver<bool>,
    seen: &Seen,
) -> GateOutcome {
    let (slots, baseline) = (sides.new, sides.old);
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
    let mut tracks = tracks_of(app, slots, !baseline.is_empty());
    // Every probe compares and no old side serves: nothing here can judge
    // the new release (the comparisons did while an old side served).
    if tracks.is_empty()
        && !app.probes.is_empty()
        && let GateMode::Deploy { .. } = mode
    {
        return GateOutcome::Passed {
            elapsed_ms: 0,
            evidence: Vec::new(),
        };
    }
    let targets = Targets {
        new: probe_targets(fleet, app, slots),
        old: probe_targets(fleet, app, baseline),
    };
    loop {
        let round = Instant::now();
        let results = tokio::select! {
            r = probe_round(prober, fleet, app, &tracks, &targets) => r,
            _ = cancel.wait_for(|c| *c) => return GateOutcome::Cancelled,
        };
        let counts = Instant::now() >= grace_until;
        let rounds = take_round(app, &mut tracks, results, counts);
        for slot in slots {
            let mut own = rounds.iter().filter(|(s, _)| s == slot).map(|(_, ok)| *ok);
            let ok = match app.health.require {
                Require::All => own.clone().all(|ok| ok),
                Require::Any => own.clone().any(|ok| ok),
            };
            if own.next().is_some() {
                seen.record(*slot, ok, counts);
            }
        }
        let judgement = judge(app.health.require, slots, &tracks);
        let ended = Instant::now() >= end;
        if let Some(outcome) = conclude(app, &sides, mode, &tracks, judgement, ended, started) {
            return outcome;
        }
        let next = (round + app.health.interval).min(end);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = cancel.wait_for(|c| *c) => return GateOutcome::Cancelled,
        }
    }
}

/// The probe targets of a gate's new slots and of the old ones beside.
struct Targets<'a> {
    new: Vec<Target<'a>>,
    old: Vec<Target<'a>>,
}

/// The probe target of each of `slots` whose host the fleet knows.
fn probe_targets<'a>(fleet: &'a Fleet, app: &'a App, slots: &[GateSlot]) -> Vec<Target<'a>> {
    slots
        .iter()
        .filter_map(|&slot| {
            let instance = &app.instances[slot.0];
            Some(Target {
                app,
                instance,
                host: fleet.host(&instance.host)?,
                port: port_of(app, slot),
            })
        })
        .collect()
}

/// One round: every probe of every slot, and every comparison,
/// concurrently; a result per track (`None`: nothing to probe).
async fn probe_round(
    prober: &Prober,
    fleet: &Fleet,
    app: &App,
    tracks: &[Track],
    targets: &Targets<'_>,
) -> Vec<Option<Probed>> {
    let mut futures: Vec<Pin<Box<dyn Future<Output = Option<Probed>> + '_>>> = Vec::new();
    for t in tracks {
        let probe = &app.probes[t.probe];
        if t.compares {
            let (new, old) = (&targets.new, &targets.old);
            futures.push(Box::pin(async move {
                let (r, c) = prober.compare(probe, new, old).await?;
                Some((r, (c.canary, c.baseline)))
            }));
            continue;
        }
        let Some(target) = probe_targets(fleet, app, std::slice::from_ref(&t.slot)).pop() else {
            futures.push(Box::pin(async { None }));
            continue;
        };
        futures.push(Box::pin(async move {
            Some((prober.run(target, probe).await, (None, None)))
        }));
    }
    crate::probe::join_all(futures).await
}

/// Takes a round's results into the tracks (their tallies, counted once
/// the grace is over, and their last samples); returns, per slot's own
/// probe, whether it passed this round.
fn take_round(
    app: &App,
    tracks: &mut [Track],
    results: Vec<Option<Probed>>,
    counts: bool,
) -> Vec<(GateSlot, bool)> {
    let mut rounds: Vec<(GateSlot, bool)> = Vec::new();
    for (t, probed) in tracks.iter_mut().zip(results) {
        let Some((r, values)) = probed else { continue };
        if t.compares {
            t.values = values;
        }
        let uncounted = r.error_kind == Some(crate::model::ErrorKind::NoData)
            && app.probes[t.probe].skips_no_data();
        if !uncounted {
            t.tally.observe(r.ok, counts, &app.health);
            if !t.compares {
                rounds.push((t.slot, r.ok));
            }
        }
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
    rounds
}

/// The gate's outcome after a round, if it has one: failed, passed (a
/// deploy gate once every slot is healthy, a watch once it ran its
/// length), or out of time.
fn conclude(
    app: &App,
    sides: &Sides<'_>,
    mode: GateMode,
    tracks: &[Track],
    judgement: Judgement,
    ended: bool,
    started: Instant,
) -> Option<GateOutcome> {
    if let Judgement::Failed(i) = judgement {
        return Some(GateOutcome::Failed {
            evidence: evidence(app, sides, &tracks[i]),
        });
    }
    let all_healthy = judgement == Judgement::Healthy;
    match mode {
        GateMode::Deploy { .. } if all_healthy => Some(GateOutcome::Passed {
            elapsed_ms: started.elapsed().as_millis() as u64,
            // Per slot, the probe that spent the most of its budget (the
            // last probe when none failed).
            evidence: sides
                .new
                .iter()
                .filter_map(|s| {
                    tracks
                        .iter()
                        .filter(|t| t.slot == *s && !t.compares)
                        .max_by_key(|t| t.tally.budget.failures)
                })
                .chain(tracks.iter().filter(|t| t.compares))
                .map(|t| evidence(app, sides, t))
                .collect(),
        }),
        GateMode::Deploy { deadline } if ended => Some(GateOutcome::Deadline {
            deadline_ms: deadline.as_millis() as u64,
            evidence: tracks
                .iter()
                .filter(|t| !t.compares && t.tally.verdict() != Verdict::Healthy)
                .map(|t| evidence(app, sides, t))
                .collect(),
        }),
        GateMode::Monitor { .. } if ended => Some(GateOutcome::Passed {
            elapsed_ms: started.elapsed().as_millis() as u64,
            evidence: tracks.iter().map(|t| evidence(app, sides, t)).collect(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(success: u32, failure: u32, max_failures: Option<u32>) -> Health {
        Health {
            success_threshold: success,
            failure_threshold: failure,
            max_failures,
            ..Health::default()
        }
    }

    /// `probes` tracks on each of `slots`, slot by slot.
    fn tracks(h: &Health, slots: &[GateSlot], probes: usize) -> Vec<Track> {
        slots
            .iter()
            .flat_map(|&slot| (0..probes).map(move |probe| Track::new(slot, probe, false, h)))
            .collect()
    }

    /// Feeds one round (a result per track, in order) and judges it.
    fn round(h: &Health, slots: &[GateSlot], t: &mut [Track], ok: &[bool]) -> Judgement {
        assert_eq!(t.len(), ok.len());
        for (t, ok) in t.iter_mut().zip(ok) {
            t.tally.observe(*ok, true, h);
        }
        judge(h.require, slots, t)
    }

    const ONE: [GateSlot; 1] = [(0, Side::Main)];

    /// Watches one probe on one slot through `results`, one a round,
    /// until it fails: the rounds it took, the last judgement, evidence.
    fn watch(h: &Health, results: &[bool]) -> (usize, Judgement, Evidence) {
        let mut t = tracks(h, &ONE, 1);
        let mut rounds = 0;
        let mut j = Judgement::Pending;
        for ok in results {
            rounds += 1;
            j = round(h, &ONE, &mut t, &[*ok]);
            if matches!(j, Judgement::Failed(_)) {
                break;
            }
        }
        (rounds, j, evidence_of(&t[0]))
    }

    /// The budget part of [`Evidence`], without an app to name things.
    fn evidence_of(t: &Track) -> Evidence {
        Evidence {
            instance: String::new(),
            side: t.slot.1,
            port: 0,
            probe: String::new(),
            success_threshold: 0,
            failure_threshold: 0,
            consecutive_ok: t.tally.counter.consecutive_ok,
            consecutive_fail: t.tally.counter.consecutive_fail,
            failures: t.tally.budget.failures,
            max_failures: t.tally.budget.max_failures,
            rule: t.tally.failed(),
            reason: t.tally.reason(),
            ..Evidence::default()
        }
    }

    /// Fails every other check, starting with a pass.
    fn flapping(n: usize) -> Vec<bool> {
        (0..n).map(|i| i % 2 == 0).collect()
    }

    #[test]
    fn a_flapping_probe_spends_its_budget() {
        // The release: a pass between failures keeps the streak
        // at 1, so failure_threshold = 2 alone never fires.
        let streak_only = health(1, 2, Some(u32::MAX));
        let (rounds, j, e) = watch(&streak_only, &flapping(40));
        assert_eq!((rounds, j), (40, Judgement::Healthy), "the streak alone");
        assert_eq!(e.failures, 20);

        // The budget catches it on the second failure.
        let h = health(1, 2, Some(2));
        let (rounds, j, e) = watch(&h, &flapping(40));
        assert_eq!(
            (rounds, j),
            (4, Judgement::Failed(0)),
            "pass, fail, pass, fail"
        );
        assert_eq!(e.rule, Some(FailRule::Budget));
        assert_eq!((e.failures, e.max_failures, e.consecutive_fail), (2, 2, 1));
        assert_eq!(e.reason.as_deref(), Some("2 of 2 failures in the window"));
        assert_eq!(e.budget(), "2 of 2 failures");
    }

    #[test]
    fn a_single_dropped_check_is_forgiven() {
        let h = health(1, 2, Some(2));
        let mut results = vec![true; 30];
        results[11] = false;
        let (rounds, j, e) = watch(&h, &results);
        assert_eq!((rounds, j), (30, Judgement::Healthy));
        assert_eq!((e.rule, e.reason.as_deref()), (None, None));
        assert_eq!(e.budget(), "1 of 2 failures");
    }

    #[test]
    fn the_budget_defaults_to_failure_threshold() {
        let h = health(3, 3, None);
        assert_eq!(h.failure_budget(), 3);
        // Three failures, never two in a row.
        let (rounds, j, e) = watch(&h, &[false, true, false, true, false, true]);
        assert_eq!((rounds, j), (5, Judgement::Failed(0)));
        assert_eq!(e.reason.as_deref(), Some("3 of 3 failures in the window"));
    }

    #[test]
    fn a_streak_is_named_before_the_budget() {
        let h = health(1, 2, Some(2));
        let (rounds, j, e) = watch(&h, &[true, false, false]);
        assert_eq!((rounds, j), (3, Judgement::Failed(0)));
        assert_eq!(e.rule, Some(FailRule::Consecutive));
        assert_eq!(e.reason.as_deref(), Some("2 failures in a row"));
        assert_eq!(e.budget(), "2 of 2 failures");
    }

    #[test]
    fn a_budget_larger_than_the_streak_leaves_the_streak_rule_in_force() {
        let h = health(1, 2, Some(5));
        let (_, j, e) = watch(&h, &[false, false]);
        assert_eq!(j, Judgement::Failed(0));
        assert_eq!(e.reason.as_deref(), Some("2 failures in a row"));
        assert_eq!(e.budget(), "2 of 5 failures");
    }

    #[test]
    fn grace_failures_count_toward_neither_rule() {
        let h = health(1, 2, Some(2));
        let mut t = tracks(&h, &ONE, 1);
        for _ in 0..5 {
            t[0].tally.observe(false, false, &h);
            assert_eq!(judge(h.require, &ONE, &t), Judgement::Pending);
        }
        assert_eq!(t[0].tally.budget.failures, 0);
        assert_eq!(round(&h, &ONE, &mut t, &[false]), Judgement::Pending);
        assert_eq!(round(&h, &ONE, &mut t, &[true]), Judgement::Healthy);
    }

    #[test]
    fn a_deploy_gate_does_not_pass_with_a_spent_budget() {
        // Slot 0 lost two checks with a pass between: its streak says
        // healthy (failure_threshold 3 is not reached), its budget is
        // spent. Slot 1 is healthy.
        let h = health(1, 3, Some(2));
        let slots = [(0, Side::Main), (1, Side::Main)];
        let mut t = tracks(&h, &slots, 1);
        t[1].tally.observe(true, true, &h);
        for ok in [true, false, true] {
            t[0].tally.observe(ok, true, &h);
        }
        assert_eq!(judge(h.require, &slots, &t), Judgement::Healthy);
        t[0].tally.observe(false, true, &h);
        assert_eq!(t[0].tally.counter.verdict, Verdict::Healthy);
        assert_eq!(t[0].tally.verdict(), Verdict::Unhealthy);
        assert_eq!(judge(h.require, &slots, &t), Judgement::Failed(0));
    }

    #[test]
    fn budgets_are_per_probe_and_slot() {
        // Each of three slots (two probes each) drops one check of one
        // probe: six failures in all, none of them a second on its probe.
        let h = health(1, 2, Some(2));
        let slots = [(0, Side::Main), (1, Side::Main), (2, Side::Alt)];
        let mut t = tracks(&h, &slots, 2);
        for drop in 0..t.len() {
            let ok: Vec<bool> = (0..t.len()).map(|i| i != drop).collect();
            let j = round(&h, &slots, &mut t, &ok);
            assert!(!matches!(j, Judgement::Failed(_)), "{j:?}");
        }
        assert!(t.iter().all(|t| t.tally.budget.failures == 1));
        // A second failure of the probe on slot 2 fails it, and names it.
        let ok: Vec<bool> = (0..t.len()).map(|i| i != 3).collect();
        assert_eq!(round(&h, &slots, &mut t, &ok), Judgement::Failed(3));
        assert_eq!((t[3].slot, t[3].probe), ((1, Side::Main), 1));
    }

    #[test]
    fn with_require_any_a_slot_fails_when_every_probe_failed() {
        let h = Health {
            require: Require::Any,
            ..health(1, 5, Some(2))
        };
        let mut t = tracks(&h, &ONE, 2);
        // Probe 0 spends its budget; probe 1 still holds the slot up.
        round(&h, &ONE, &mut t, &[false, true]);
        assert_eq!(round(&h, &ONE, &mut t, &[false, true]), Judgement::Healthy);
        assert_eq!(t[0].tally.failed(), Some(FailRule::Budget));
        round(&h, &ONE, &mut t, &[true, false]);
        assert_eq!(
            round(&h, &ONE, &mut t, &[true, false]),
            Judgement::Failed(0)
        );
    }

    #[test]
    fn a_failed_comparison_fails_every_slot_but_holds_no_gate() {
        let h = health(2, 2, None);
        let slots = [(0, Side::Alt), (1, Side::Alt)];
        // One probe on each slot, and one comparison for the gate.
        let mut t = tracks(&h, &slots, 1);
        t.push(Track::new(slots[0], 1, true, &h));
        // The slots' own probes pass; the comparison has no data yet
        // (skipped: nothing fed). Healthy on their own probes.
        for tr in t.iter_mut().take(2) {
            tr.tally.observe(true, true, &h);
            tr.tally.observe(true, true, &h);
        }
        assert_eq!(judge(h.require, &slots, &t), Judgement::Healthy);
        // The comparison fails twice in a row: the gate fails, on it.
        t[2].tally.observe(false, true, &h);
        assert_eq!(judge(h.require, &slots, &t), Judgement::Healthy);
        t[2].tally.observe(false, true, &h);
        assert_eq!(judge(h.require, &slots, &t), Judgement::Failed(2));
        // With `any`, a slot whose own probe passes is not failed by it.
        let any = Health {
            require: Require::Any,
            ..h.clone()
        };
        assert_eq!(judge(any.require, &slots, &t), Judgement::Healthy);
    }

    #[test]
    fn a_comparison_is_one_track_and_only_with_an_old_side() {
        use crate::condition::Condition;
        use crate::config::{NoData, Probe, ProbeKind, PromAuth, PrometheusProbe};
        let prom = |name: &str, condition: &str| Probe {
            name: name.into(),
            timeout: Duration::from_secs(1),
            kind: ProbeKind::Prometheus(PrometheusProbe {
                url: "http://127.0.0.1:9090".into(),
                query: "up{instance=\"{port}\"}".into(),
                conditions: vec![Condition::parse(condition).unwrap()],
                on_no_data: NoData::Fail,
                auth: PromAuth::None,
                insecure_tls: false,
            }),
        };
        let app = App {
            probes: vec![
                prom("value", "[VALUE] < 1"),
                prom("errors", "[CANARY] <= [BASELINE] * 1.2"),
            ],
            ..App::default()
        };
        let slots = [(0, Side::Alt), (1, Side::Alt)];
        let t = tracks_of(&app, &slots, true);
        let shape: Vec<(GateSlot, usize, bool)> =
            t.iter().map(|t| (t.slot, t.probe, t.compares)).collect();
        assert_eq!(
            shape,
            [
                (slots[0], 0, false),
                (slots[1], 0, false),
                (slots[0], 1, true)
            ]
        );
        // No old side serving (the last batch, after a switch): no
        // comparison.
        assert_eq!(tracks_of(&app, &slots, false).len(), 2);
    }

    #[test]
    fn a_slot_without_probes_of_its_own_is_judged_by_the_comparison() {
        let h = health(2, 2, None);
        let slots = [(0, Side::Alt)];
        let mut t = vec![Track::new(slots[0], 0, true, &h)];
        assert_eq!(judge(h.require, &slots, &t), Judgement::Pending);
        t[0].tally.observe(true, true, &h);
        t[0].tally.observe(true, true, &h);
        assert_eq!(judge(h.require, &slots, &t), Judgement::Healthy);
    }
}
