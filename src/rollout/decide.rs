//! What a rollout does next: one pure function of the rollout's state and
//! what was just observed, for rolling, blue-green and canary alike.
//!
//! The engine ([`super::engine`]) carries a [`Decision`] out (runs a stage,
//! undoes a batch, arms a rollback, restores what it did) and reports what
//! it saw as the next [`Observation`]; [`decide`] alone chooses the next
//! stage, a retry, when to roll back and how, and which outcome a rollout
//! ends with. [`undo_steps`] says what to restore and in which order;
//! [`failed_stage`] which batch a failure belongs to; [`recovery`] whether
//! a recovered rollout may go on at all, and [`resume_from`] where. No
//! processes, sockets or files here, so every choice has a unit test.

use super::plan::{Plan, Stage};
use crate::config::AutoRollback;
use crate::model::{BatchState, DeploymentState, Outcome, Trigger, Verb};

/// The app's settings that steer decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// What a failure does: roll back at once, arm and wait, or only report.
    pub auto_rollback: AutoRollback,
    /// A batch may fail this many times (each undone and tried again)
    /// before the rollout rolls back; 1 means no retry.
    pub max_failed_batches: u32,
}

/// Where a rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Stage `stage` runs (or is next).
    Running {
        /// Index into the plan's stages.
        stage: usize,
    },
    /// Paused by an operator after a stage; `next` runs on resume.
    Paused {
        /// The stage that runs on resume.
        next: usize,
    },
    /// Failed with `auto_rollback = "confirm"`: the rollback fires when
    /// the window ends or an operator fires it.
    Armed,
    /// An armed rollback held by an operator: it waits for fire or abort.
    Held,
    /// Restoring what the rollout did.
    RollingBack,
    /// Ended.
    Ended(Outcome),
}

/// The rollout's state as decisions see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// Where it is.
    pub phase: Phase,
    /// How many stages the plan has.
    pub stages: usize,
    /// Failed attempts of batches so far.
    pub failed_batches: u32,
    /// What failed, once something did.
    pub failure: Option<Trigger>,
    /// An operator asked to abort.
    pub abort: bool,
    /// An operator asked to pause at the next safe point.
    pub pause: bool,
}

impl State {
    /// A rollout of `stages` stages that has not begun.
    pub fn new(stages: usize) -> State {
        State {
            phase: Phase::Running { stage: 0 },
            stages,
            failed_batches: 0,
            failure: None,
            abort: false,
            pause: false,
        }
    }
}

/// What the engine saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Begin (or, after a crash, resume) at stage `from`.
    Begin {
        /// The first stage to run.
        from: usize,
    },
    /// The running stage passed.
    StagePassed,
    /// The running stage failed. `retryable`: it replaces a batch of live
    /// sides (rolling, canary promotion), so undoing it and trying again
    /// is possible.
    StageFailed {
        /// Why.
        trigger: Trigger,
        /// Whether the stage may be tried again.
        retryable: bool,
    },
    /// The worker died before the end and recovery rolls it back.
    Interrupted,
    /// The failed batch was undone for a retry; `unrestored` instances
    /// could not be put back.
    BatchUndone {
        /// Instances not restored.
        unrestored: usize,
    },
    /// An operator's command arrived.
    Command(Verb),
    /// The confirm window of an armed rollback ended.
    WindowEnded,
    /// The rollback ended: `unrestored` of the `touched` instances could
    /// not be restored, and traffic was or was not put back as it was.
    RollbackDone {
        /// Instances not restored.
        unrestored: usize,
        /// Instances the rollout changed.
        touched: usize,
        /// Every routing change was undone.
        traffic_restored: bool,
    },
}

/// What the engine does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run stage `stage`.
    RunStage {
        /// Index into the plan's stages.
        stage: usize,
    },
    /// Undo what the failed stage did, then (on [`Observation::BatchUndone`]
    /// with nothing unrestored) run it again.
    RetryStage {
        /// The stage.
        stage: usize,
    },
    /// Wait for `resume` (or `abort`) before stage `next`.
    Pause {
        /// The stage that runs on resume.
        next: usize,
    },
    /// Arm the rollback and wait for the window, fire, hold or abort.
    Arm,
    /// Keep waiting: a hold, or a command with no effect now.
    Wait,
    /// Roll back everything the rollout did, because of `trigger`.
    RollBack {
        /// What started it.
        trigger: Trigger,
    },
    /// Stop the stage that runs (its gates) so the abort is taken at once.
    CancelStage,
    /// End a manual step: the operator approved it.
    Approve,
    /// Leave everything as it is (`auto_rollback = "off"`) and end failed.
    LeaveAsIs,
    /// The rollout has ended with this outcome.
    Finish(Outcome),
    /// Nothing to do.
    Nothing,
}

/// The next decision for `state` after `seen`, and the state it leads to.
pub fn decide(state: State, policy: &Policy, seen: Observation) -> (State, Decision) {
    let mut s = state;
    let decision = match (state.phase, seen) {
        (Phase::Ended(_), _) => Decision::Nothing,
        (_, Observation::Interrupted) => fail(&mut s, policy, Trigger::Recovered),
        (_, Observation::Begin { from }) => next_stage(&mut s, from),
        (Phase::Running { stage }, Observation::StagePassed) => next_stage(&mut s, stage + 1),
        (Phase::Running { stage }, Observation::StageFailed { trigger, retryable }) => {
            s.failed_batches += 1;
            let retry = retryable
                && !matches!(trigger, Trigger::Abort | Trigger::Monitor | Trigger::Store)
                && !s.abort
                && s.failed_batches < policy.max_failed_batches;
            if retry {
                s.failure = Some(trigger);
                Decision::RetryStage { stage }
            } else {
                fail(&mut s, policy, trigger)
            }
        }
        (Phase::Running { stage }, Observation::BatchUndone { unrestored }) => {
            match (unrestored, s.failure) {
                (0, _) if s.abort => fail(&mut s, policy, Trigger::Abort),
                (0, _) => Decision::RunStage { stage },
                (_, trigger) => fail(&mut s, policy, trigger.unwrap_or(Trigger::GateFailed)),
            }
        }
        (phase, Observation::Command(verb)) => command(&mut s, phase, verb),
        (Phase::Armed, Observation::WindowEnded) => roll_back(&mut s),
        (
            Phase::RollingBack,
            Observation::RollbackDone {
                unrestored,
                touched,
                traffic_restored,
            },
        ) => {
            let outcome = if unrestored == 0 && !traffic_restored {
                // Every instance is back, but traffic is not as it was.
                Outcome::RollbackPartial
            } else if unrestored == 0 {
                if s.failure == Some(Trigger::Abort) {
                    Outcome::Aborted
                } else {
                    Outcome::RolledBack
                }
            } else if unrestored >= touched {
                Outcome::RollbackFailed
            } else {
                Outcome::RollbackPartial
            };
            s.phase = Phase::Ended(outcome);
            Decision::Finish(outcome)
        }
        // Anything else does not belong to this phase (a late window end,
        // a stage result after an abort was taken): nothing to do.
        _ => Decision::Nothing,
    };
    (s, decision)
}

/// Run stage `next`, unless an abort or pause is waiting, or the plan is
/// done.
fn next_stage(s: &mut State, next: usize) -> Decision {
    if s.abort {
        return fail(s, &Policy::AUTO, Trigger::Abort);
    }
    if next >= s.stages {
        s.phase = Phase::Ended(Outcome::Deployed);
        return Decision::Finish(Outcome::Deployed);
    }
    if s.pause {
        s.pause = false;
        s.phase = Phase::Paused { next };
        return Decision::Pause { next };
    }
    s.phase = Phase::Running { stage: next };
    Decision::RunStage { stage: next }
}

impl Policy {
    /// The policy of an abort or a recovery: roll back at once, whatever
    /// the app says (a person asked for it).
    const AUTO: Policy = Policy {
        auto_rollback: AutoRollback::Auto,
        max_failed_batches: 1,
    };
}

/// A failure: roll back now, arm the rollback, or leave it as it is.
fn fail(s: &mut State, policy: &Policy, trigger: Trigger) -> Decision {
    s.failure = Some(trigger);
    let policy = match trigger {
        Trigger::Abort | Trigger::Recovered => AutoRollback::Auto,
        _ => policy.auto_rollback,
    };
    match policy {
        AutoRollback::Auto => roll_back(s),
        AutoRollback::Confirm => {
            s.phase = Phase::Armed;
            Decision::Arm
        }
        AutoRollback::Off => {
            s.phase = Phase::Ended(Outcome::Failed);
            Decision::LeaveAsIs
        }
    }
}

fn roll_back(s: &mut State) -> Decision {
    s.phase = Phase::RollingBack;
    Decision::RollBack {
        trigger: s.failure.unwrap_or(Trigger::GateFailed),
    }
}

/// An operator's command in `phase`.
fn command(s: &mut State, phase: Phase, verb: Verb) -> Decision {
    match (phase, verb) {
        // A rollback under way is what an abort asks for: it goes on, and
        // its health checks are not cut short.
        (Phase::RollingBack, _) => Decision::Nothing,
        (Phase::Running { .. }, Verb::Abort) => {
            s.abort = true;
            Decision::CancelStage
        }
        (Phase::Running { .. }, Verb::Approve) => Decision::Approve,
        (Phase::Running { .. }, Verb::Pause) => {
            s.pause = true;
            Decision::Nothing
        }
        (Phase::Running { .. }, Verb::Resume) => {
            s.pause = false;
            Decision::Nothing
        }
        (Phase::Paused { next }, Verb::Resume) => {
            s.phase = Phase::Running { stage: next };
            Decision::RunStage { stage: next }
        }
        (Phase::Paused { .. }, Verb::Abort) => {
            s.abort = true;
            fail(s, &Policy::AUTO, Trigger::Abort)
        }
        (Phase::Armed | Phase::Held, Verb::Fire | Verb::Abort) => roll_back(s),
        (Phase::Armed, Verb::Hold) => {
            s.phase = Phase::Held;
            Decision::Wait
        }
        (Phase::Paused { .. } | Phase::Armed | Phase::Held, _) => Decision::Wait,
        _ => Decision::Nothing,
    }
}

/// Whether an operator's `verb` means something to a deployment recorded
/// in `state`: the one rule the console and the CLI check before a
/// command is sent (through [`super::service::send`]), the same one
/// [`decide`] carries out when the command arrives (a command that does
/// not apply changes nothing there). A deployment that has ended takes
/// none.
pub fn accepts(state: DeploymentState, verb: Verb) -> bool {
    use DeploymentState as S;
    match verb {
        Verb::Approve => state == S::WaitingApproval,
        Verb::Hold => state == S::RollbackArmed,
        Verb::Fire => matches!(state, S::RollbackArmed | S::RollbackHeld),
        Verb::Abort => matches!(
            state,
            S::Pending
                | S::Running
                | S::WaitingApproval
                | S::Paused
                | S::RollbackArmed
                | S::RollbackHeld
        ),
        // A pause asked before the first stage is taken at the first
        // safe point, like one asked while it runs.
        Verb::Pause => matches!(state, S::Pending | S::Running | S::WaitingApproval),
        Verb::Resume => state == S::Paused,
    }
}

/// One thing a rollout did, as its undo needs it (newest last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Traffic was changed; undoing puts back routing number `routing`
    /// (the engine keeps the routings).
    Routed {
        /// The engine's index of the routing from before the change.
        routing: usize,
    },
    /// A slot was replaced; undoing restores it.
    Replaced {
        /// The engine's index of what to restore.
        slot: usize,
        /// The slot served when it was replaced (rolling, canary
        /// promotion), rather than being an idle side started beside the
        /// one that served (blue-green, canary, surge).
        in_place: bool,
    },
}

/// One step of undoing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoStep {
    /// Put back this routing (the oldest of a run of routing changes:
    /// canary steps go straight back, 50% → 0, not 50 → 25 → 0).
    Route {
        /// The engine's index of the routing.
        routing: usize,
    },
    /// Restore these slots, each drained, restored, gated and put back,
    /// all at once (up to the rollback batch).
    Restore {
        /// The engine's indices of what to restore, newest first.
        slots: Vec<usize>,
    },
}

/// What undoing `done[mark..]` takes, in order, newest first:
/// - slots replaced in place (rolling batches, canary promotion) are
///   restored in groups of at most `batch` (at least 1), each slot drained
///   and put back by its own restore; the routing changes between them (the
///   drain of each batch) are not replayed one by one;
/// - idle sides started beside a serving one (blue-green, canary, surge)
///   are restored only after traffic is back where it was: a run of
///   routing changes goes straight to the oldest of them (50% → 0, not
///   50 → 25 → 0; every surge switch at once), then the idle sides are
///   restored together, up to `batch` at a time.
pub fn undo_steps(done: &[Done], mark: usize, batch: usize) -> Vec<UndoStep> {
    let batch = batch.max(1);
    let mut steps: Vec<UndoStep> = Vec::new();
    let mut route: Option<usize> = None;
    let mut idle: Vec<usize> = Vec::new();
    let restore = |steps: &mut Vec<UndoStep>, slot: usize, grouped: bool| match steps.last_mut() {
        Some(UndoStep::Restore { slots }) if grouped && slots.len() < batch => slots.push(slot),
        _ => steps.push(UndoStep::Restore { slots: vec![slot] }),
    };
    let flush = |steps: &mut Vec<UndoStep>, route: &mut Option<usize>, idle: &mut Vec<usize>| {
        if let Some(routing) = route.take() {
            steps.push(UndoStep::Route { routing });
        }
        for (n, slot) in idle.drain(..).enumerate() {
            restore(steps, slot, n > 0);
        }
    };
    for d in done.iter().skip(mark).rev() {
        match *d {
            Done::Routed { routing } => route = Some(routing),
            Done::Replaced {
                slot,
                in_place: false,
            } => idle.push(slot),
            Done::Replaced {
                slot,
                in_place: true,
            } => {
                let grouped = matches!(steps.last(), Some(UndoStep::Restore { .. }));
                if !idle.is_empty() || (route.is_some() && !grouped) {
                    flush(&mut steps, &mut route, &mut idle);
                    restore(&mut steps, slot, false);
                } else {
                    restore(&mut steps, slot, grouped);
                }
            }
        }
    }
    flush(&mut steps, &mut route, &mut idle);
    steps
}

/// How a recovery picks up a deployment whose worker died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Go on from where it stopped ([`resume_from`]).
    Resume,
    /// Undo everything the rollout did.
    RollBack,
}

/// How a recovery goes on with a deployment its worker left in
/// `left_in`, when an operator asked to `resume` (or to roll back). A
/// rollout that had seen a failure (its rollback failing, armed, held or
/// under way) is never resumed forward, whatever was asked: going on would
/// start the failed release again, on instances that may never have run
/// it. Its rollback is carried on instead.
pub fn recovery(resume: bool, left_in: DeploymentState) -> Recovery {
    let failed = matches!(
        left_in,
        DeploymentState::Failing
            | DeploymentState::RollbackArmed
            | DeploymentState::RollbackHeld
            | DeploymentState::RollingBack
    );
    if resume && !failed {
        Recovery::Resume
    } else {
        Recovery::RollBack
    }
}

/// The stage whose batch failed when stage `running` of `plan` failed
/// because of the instances `failed` (by index; none when the failure
/// names none). A stage that starts instances (a batch of a rolling
/// rollout, the idle sides of a blue-green or a canary) also watches those
/// earlier stages started: when none of `failed` is its own, the failure
/// is the latest earlier stage's that started one of them, and the running
/// stage was only cut short. Any other failure is the running stage's.
pub fn failed_stage(plan: &Plan, running: usize, failed: &[usize]) -> usize {
    fn started(s: &Stage) -> Option<&[usize]> {
        match s {
            Stage::Replace { instances } | Stage::StartIdle { instances } => Some(instances),
            _ => None,
        }
    }
    let names = |own: &[usize]| failed.iter().any(|i| own.contains(i));
    match plan.stages.get(running).and_then(started) {
        Some(own) if !failed.is_empty() && !names(own) => plan.stages[..running]
            .iter()
            .rposition(|s| started(s).is_some_and(names))
            .unwrap_or(running),
        _ => running,
    }
}

/// The stage a recovered rollout goes on from, given its batches' states
/// in order (`None`: a state this version does not know): the stage that
/// ran last, or the one after it when it passed. Stages run in order, so
/// the last one that began is the one that ran when the worker stopped,
/// even when an earlier batch was recorded failed meanwhile
/// ([`failed_stage`]).
pub fn resume_from(states: &[Option<BatchState>]) -> usize {
    match states.iter().rposition(|s| *s != Some(BatchState::Pending)) {
        None => 0,
        Some(k) if states[k] == Some(BatchState::Passed) => k + 1,
        Some(k) => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_whose_rollback_started_is_never_resumed_forward() {
        use DeploymentState as D;
        for left_in in [D::Pending, D::Running, D::WaitingApproval, D::Paused] {
            assert_eq!(recovery(true, left_in), Recovery::Resume, "{left_in}");
            assert_eq!(recovery(false, left_in), Recovery::RollBack, "{left_in}");
        }
        for left_in in [
            D::Failing,
            D::RollbackArmed,
            D::RollbackHeld,
            D::RollingBack,
        ] {
            assert_eq!(recovery(true, left_in), Recovery::RollBack, "{left_in}");
            assert_eq!(recovery(false, left_in), Recovery::RollBack, "{left_in}");
        }
    }

    /// The phase a deployment recorded in `state` is in, as [`decide`]
    /// sees it; `None` where it decides nothing (pending, failing, ended).
    fn phase_of(state: DeploymentState) -> Option<Phase> {
        use DeploymentState as D;
        match state {
            D::Running | D::WaitingApproval => Some(Phase::Running { stage: 1 }),
            D::Paused => Some(Phase::Paused { next: 1 }),
            D::RollbackArmed => Some(Phase::Armed),
            D::RollbackHeld => Some(Phase::Held),
            D::RollingBack => Some(Phase::RollingBack),
            D::Pending | D::Failing | D::Done | D::Failed | D::Superseded => None,
        }
    }

    #[test]
    fn a_command_accepted_before_sending_is_one_the_rollout_acts_on() {
        use DeploymentState as D;
        let verbs = [
            Verb::Approve,
            Verb::Hold,
            Verb::Fire,
            Verb::Abort,
            Verb::Pause,
            Verb::Resume,
        ];
        let states = [
            D::Pending,
            D::Running,
            D::WaitingApproval,
            D::Paused,
            D::Failing,
            D::RollbackArmed,
            D::RollbackHeld,
            D::RollingBack,
            D::Done,
            D::Failed,
            D::Superseded,
        ];
        for state in states {
            for verb in verbs {
                let Some(phase) = phase_of(state) else {
                    // Before the first stage an abort or a pause is taken
                    // when the worker begins; an ended rollout takes
                    // nothing, nor one deciding what to do on a failure.
                    assert_eq!(
                        accepts(state, verb),
                        state == D::Pending && matches!(verb, Verb::Abort | Verb::Pause),
                        "{state} {verb}"
                    );
                    continue;
                };
                let mut s = State::new(3);
                s.phase = phase;
                let before = s;
                let (after, d) = decide(s, &AUTO, Observation::Command(verb));
                let acts = after != before || !matches!(d, Decision::Nothing | Decision::Wait);
                if accepts(state, verb) {
                    assert!(acts, "{state} accepts {verb} but decide does nothing");
                }
            }
        }
        // What the console and the CLI refuse, decide ignores as well.
        let ignored = |phase: Phase, verb| {
            let mut s = State::new(3);
            s.phase = phase;
            let (after, d) = decide(s, &AUTO, Observation::Command(verb));
            after == s && matches!(d, Decision::Nothing | Decision::Wait)
        };
        assert!(ignored(Phase::RollingBack, Verb::Abort) && !accepts(D::RollingBack, Verb::Abort));
        assert!(ignored(Phase::Held, Verb::Hold) && !accepts(D::RollbackHeld, Verb::Hold));
        assert!(ignored(Phase::Armed, Verb::Pause) && !accepts(D::RollbackArmed, Verb::Pause));
        assert!(
            ignored(Phase::Paused { next: 1 }, Verb::Pause) && !accepts(D::Paused, Verb::Pause)
        );
    }

    const AUTO: Policy = Policy {
        auto_rollback: AutoRollback::Auto,
        max_failed_batches: 1,
    };
    const CONFIRM: Policy = Policy {
        auto_rollback: AutoRollback::Confirm,
        max_failed_batches: 1,
    };
    const OFF: Policy = Policy {
        auto_rollback: AutoRollback::Off,
        max_failed_batches: 1,
    };
    const RETRY: Policy = Policy {
        auto_rollback: AutoRollback::Auto,
        max_failed_batches: 2,
    };

    /// Feeds `seen` in order; returns every decision.
    fn run(stages: usize, policy: Policy, seen: &[Observation]) -> (State, Vec<Decision>) {
        let mut s = State::new(stages);
        let mut out = Vec::new();
        for o in seen {
            let (next, d) = decide(s, &policy, *o);
            s = next;
            out.push(d);
        }
        (s, out)
    }

    use Decision as D;
    use Observation as O;

    fn failed(trigger: Trigger, retryable: bool) -> Observation {
        O::StageFailed { trigger, retryable }
    }

    #[test]
    fn rolling_runs_every_batch_then_monitor_and_is_deployed() {
        // Rolling: three Replace batches, then Monitor.
        let (s, d) = run(
            4,
            AUTO,
            &[
                O::Begin { from: 0 },
                O::StagePassed,
                O::StagePassed,
                O::StagePassed,
                O::StagePassed,
            ],
        );
        assert_eq!(
            d,
            [
                D::RunStage { stage: 0 },
                D::RunStage { stage: 1 },
                D::RunStage { stage: 2 },
                D::RunStage { stage: 3 },
                D::Finish(Outcome::Deployed),
            ]
        );
        assert_eq!(s.phase, Phase::Ended(Outcome::Deployed));
    }

    #[test]
    fn a_failed_gate_rolls_back_and_the_outcome_counts_what_was_restored() {
        let seen = [
            O::Begin { from: 0 },
            O::StagePassed,
            failed(Trigger::GateFailed, true),
        ];
        let (s, d) = run(4, AUTO, &seen);
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::GateFailed
            }
        );
        for (unrestored, outcome) in [
            (0, Outcome::RolledBack),
            (1, Outcome::RollbackPartial),
            (2, Outcome::RollbackFailed),
        ] {
            let (end, d) = decide(
                s,
                &AUTO,
                O::RollbackDone {
                    unrestored,
                    touched: 2,
                    traffic_restored: true,
                },
            );
            assert_eq!(d, D::Finish(outcome));
            assert_eq!(end.phase, Phase::Ended(outcome));
        }
    }

    #[test]
    fn traffic_that_could_not_be_put_back_makes_the_rollback_partial() {
        let seen = [O::Begin { from: 0 }, failed(Trigger::GateFailed, true)];
        let (s, _) = run(4, AUTO, &seen);
        let done = O::RollbackDone {
            unrestored: 0,
            touched: 2,
            traffic_restored: false,
        };
        assert_eq!(
            decide(s, &AUTO, done).1,
            D::Finish(Outcome::RollbackPartial)
        );
    }

    #[test]
    fn a_retryable_batch_is_undone_and_run_again_within_max_failed_batches() {
        let seen = [
            O::Begin { from: 0 },
            failed(Trigger::Deadline, true),
            O::BatchUndone { unrestored: 0 },
            failed(Trigger::Deadline, true),
        ];
        let (_, d) = run(3, RETRY, &seen);
        assert_eq!(
            d,
            [
                D::RunStage { stage: 0 },
                D::RetryStage { stage: 0 },
                D::RunStage { stage: 0 },
                D::RollBack {
                    trigger: Trigger::Deadline
                },
            ]
        );
        // A batch that cannot be put back for its retry rolls back all.
        let seen = [
            O::Begin { from: 0 },
            failed(Trigger::StartFailed, true),
            O::BatchUndone { unrestored: 1 },
        ];
        let (_, d) = run(3, RETRY, &seen);
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::StartFailed
            }
        );
    }

    #[test]
    fn monitor_abort_store_and_non_replace_failures_are_never_retried() {
        for (trigger, retryable) in [
            (Trigger::Monitor, true),
            (Trigger::Abort, true),
            (Trigger::Store, true),
            (Trigger::GateFailed, false),
        ] {
            let (_, d) = run(
                3,
                RETRY,
                &[O::Begin { from: 0 }, failed(trigger, retryable)],
            );
            assert_eq!(d[1], D::RollBack { trigger }, "{trigger}");
        }
    }

    #[test]
    fn blue_green_switch_failure_and_canary_step_failure_roll_back() {
        // Blue-green: StartIdle, Switch, Monitor, Retire.
        let (_, d) = run(
            4,
            AUTO,
            &[
                O::Begin { from: 0 },
                O::StagePassed,
                failed(Trigger::Traffic, false),
            ],
        );
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::Traffic
            }
        );
        // Canary: StartIdle, Shift 25, Shift 50, Replace…, Monitor, Retire.
        let (_, d) = run(
            7,
            RETRY,
            &[
                O::Begin { from: 0 },
                O::StagePassed,
                failed(Trigger::GateFailed, false),
            ],
        );
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::GateFailed
            }
        );
    }

    #[test]
    fn confirm_arms_then_fires_on_the_window_on_fire_or_on_abort() {
        let armed = [O::Begin { from: 0 }, failed(Trigger::GateFailed, true)];
        let (s, d) = run(2, CONFIRM, &armed);
        assert_eq!(d[1], D::Arm);
        assert_eq!(s.phase, Phase::Armed);
        for ending in [
            O::WindowEnded,
            O::Command(Verb::Fire),
            O::Command(Verb::Abort),
        ] {
            let (after, d) = decide(s, &CONFIRM, ending);
            assert_eq!(
                d,
                D::RollBack {
                    trigger: Trigger::GateFailed
                },
                "{ending:?}"
            );
            assert_eq!(after.phase, Phase::RollingBack);
        }
        // Approve, pause or resume change nothing while armed.
        let (after, d) = decide(s, &CONFIRM, O::Command(Verb::Approve));
        assert_eq!((after.phase, d), (Phase::Armed, D::Wait));
    }

    #[test]
    fn a_held_rollback_waits_past_the_window_for_fire_or_abort() {
        let (s, d) = run(
            2,
            CONFIRM,
            &[
                O::Begin { from: 0 },
                failed(Trigger::GateFailed, true),
                O::Command(Verb::Hold),
            ],
        );
        assert_eq!(d[2], D::Wait);
        assert_eq!(s.phase, Phase::Held);
        let (s, d) = decide(s, &CONFIRM, O::WindowEnded);
        assert_eq!((s.phase, d), (Phase::Held, D::Nothing));
        let (s, d) = decide(s, &CONFIRM, O::Command(Verb::Fire));
        assert_eq!(
            (s.phase, d),
            (
                Phase::RollingBack,
                D::RollBack {
                    trigger: Trigger::GateFailed
                }
            )
        );
    }

    #[test]
    fn with_auto_rollback_off_a_failure_is_left_as_it_is() {
        let (s, d) = run(
            3,
            OFF,
            &[O::Begin { from: 0 }, failed(Trigger::GateFailed, true)],
        );
        assert_eq!(d[1], D::LeaveAsIs);
        assert_eq!(s.phase, Phase::Ended(Outcome::Failed));
        // An operator's abort still rolls back, whatever the policy.
        let (_, d) = run(
            3,
            OFF,
            &[
                O::Begin { from: 0 },
                O::Command(Verb::Abort),
                failed(Trigger::Abort, true),
            ],
        );
        assert_eq!(d[1], D::CancelStage);
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::Abort
            }
        );
    }

    #[test]
    fn an_abort_cancels_the_stage_and_ends_aborted_once_restored() {
        let (s, d) = run(
            3,
            AUTO,
            &[
                O::Begin { from: 0 },
                O::Command(Verb::Abort),
                failed(Trigger::Abort, true),
            ],
        );
        assert_eq!(d[1], D::CancelStage);
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::Abort
            }
        );
        let (_, d) = decide(
            s,
            &AUTO,
            O::RollbackDone {
                unrestored: 0,
                touched: 1,
                traffic_restored: true,
            },
        );
        assert_eq!(d, D::Finish(Outcome::Aborted));
        // A stage that passes although an abort came rolls back next.
        let (_, d) = run(
            3,
            AUTO,
            &[
                O::Begin { from: 0 },
                O::Command(Verb::Abort),
                O::StagePassed,
            ],
        );
        assert_eq!(
            d[2],
            D::RollBack {
                trigger: Trigger::Abort
            }
        );
    }

    #[test]
    fn an_abort_during_the_rollback_changes_nothing() {
        let (s, _) = run(
            2,
            AUTO,
            &[O::Begin { from: 0 }, failed(Trigger::GateFailed, true)],
        );
        let (s, d) = decide(s, &AUTO, O::Command(Verb::Abort));
        assert_eq!((s.phase, d), (Phase::RollingBack, D::Nothing));
        let (_, d) = decide(
            s,
            &AUTO,
            O::RollbackDone {
                unrestored: 0,
                touched: 1,
                traffic_restored: true,
            },
        );
        assert_eq!(
            d,
            D::Finish(Outcome::RolledBack),
            "still a rollback, not an abort"
        );
    }

    #[test]
    fn approve_ends_a_manual_step() {
        let (_, d) = run(3, AUTO, &[O::Begin { from: 0 }, O::Command(Verb::Approve)]);
        assert_eq!(d[1], D::Approve);
    }

    #[test]
    fn pause_stops_after_the_stage_and_resume_goes_on() {
        let (s, d) = run(
            3,
            AUTO,
            &[
                O::Begin { from: 0 },
                O::Command(Verb::Pause),
                O::StagePassed,
            ],
        );
        assert_eq!(d[2], D::Pause { next: 1 });
        assert_eq!(s.phase, Phase::Paused { next: 1 });
        let (resumed, d) = decide(s, &AUTO, O::Command(Verb::Resume));
        assert_eq!(d, D::RunStage { stage: 1 });
        assert_eq!(resumed.phase, Phase::Running { stage: 1 });
        let (_, d) = decide(s, &AUTO, O::Command(Verb::Abort));
        assert_eq!(
            d,
            D::RollBack {
                trigger: Trigger::Abort
            }
        );
        // A resume before the stage ends cancels the pause.
        let (_, d) = run(
            3,
            AUTO,
            &[
                O::Begin { from: 0 },
                O::Command(Verb::Pause),
                O::Command(Verb::Resume),
                O::StagePassed,
            ],
        );
        assert_eq!(d[3], D::RunStage { stage: 1 });
    }

    #[test]
    fn recovery_resumes_from_a_stage_or_rolls_back_at_once() {
        let (_, d) = run(4, CONFIRM, &[O::Begin { from: 2 }]);
        assert_eq!(d[0], D::RunStage { stage: 2 });
        // Rolling back after a crash does not wait for a confirmation.
        let (s, d) = run(4, CONFIRM, &[O::Interrupted]);
        assert_eq!(
            d[0],
            D::RollBack {
                trigger: Trigger::Recovered
            }
        );
        let (_, d) = decide(
            s,
            &CONFIRM,
            O::RollbackDone {
                unrestored: 0,
                touched: 3,
                traffic_restored: true,
            },
        );
        assert_eq!(d, D::Finish(Outcome::RolledBack));
        // Resuming past the last stage is done.
        let (_, d) = run(4, AUTO, &[O::Begin { from: 4 }]);
        assert_eq!(d[0], D::Finish(Outcome::Deployed));
    }

    #[test]
    fn after_the_end_nothing_happens() {
        let (s, _) = run(1, AUTO, &[O::Begin { from: 0 }, O::StagePassed]);
        for o in [O::Command(Verb::Abort), O::WindowEnded, O::StagePassed] {
            assert_eq!(decide(s, &AUTO, o).1, D::Nothing);
        }
    }

    use Done::{Replaced, Routed};

    fn restore(slots: &[usize]) -> UndoStep {
        UndoStep::Restore {
            slots: slots.to_vec(),
        }
    }

    fn route(routing: usize) -> UndoStep {
        UndoStep::Route { routing }
    }

    /// Rolling, three batches of one: each drained (routing), then replaced
    /// in place. Indices are positions in the list, as the engine's are.
    const ROLLING: [Done; 6] = [
        Routed { routing: 0 },
        Replaced {
            slot: 1,
            in_place: true,
        },
        Routed { routing: 2 },
        Replaced {
            slot: 3,
            in_place: true,
        },
        Routed { routing: 4 },
        Replaced {
            slot: 5,
            in_place: true,
        },
    ];

    #[test]
    fn rolling_restores_newest_first_in_groups_then_puts_the_first_routing_back() {
        assert_eq!(
            undo_steps(&ROLLING, 0, 1),
            [restore(&[5]), restore(&[3]), restore(&[1]), route(0)]
        );
        assert_eq!(undo_steps(&ROLLING, 0, 3), [restore(&[5, 3, 1]), route(0)]);
        assert_eq!(
            undo_steps(&ROLLING, 0, 2),
            [restore(&[5, 3]), restore(&[1]), route(0)]
        );
        // Only what came after the mark (a retried batch).
        assert_eq!(undo_steps(&ROLLING, 4, 8), [restore(&[5]), route(4)]);
    }

    #[test]
    fn blue_green_switches_back_before_it_stops_the_new_sides() {
        let done = [
            Replaced {
                slot: 0,
                in_place: false,
            },
            Replaced {
                slot: 1,
                in_place: false,
            },
            Replaced {
                slot: 2,
                in_place: false,
            },
            Routed { routing: 3 },
        ];
        assert_eq!(undo_steps(&done, 0, 3), [route(3), restore(&[2, 1, 0])]);
        assert_eq!(
            undo_steps(&done, 0, 2),
            [route(3), restore(&[2, 1]), restore(&[0])]
        );
    }

    #[test]
    fn canary_goes_straight_to_its_first_routing_then_stops_the_canary() {
        let done = [
            Replaced {
                slot: 0,
                in_place: false,
            },
            Routed { routing: 1 },
            Routed { routing: 2 },
            Routed { routing: 3 },
        ];
        assert_eq!(undo_steps(&done, 0, 0), [route(1), restore(&[0])]);
    }

    #[test]
    fn surge_is_one_traffic_switch_then_the_new_sides_stop_together() {
        // Per batch: the new side started beside the old, then switched.
        let done = [
            Replaced {
                slot: 0,
                in_place: false,
            },
            Routed { routing: 1 },
            Replaced {
                slot: 2,
                in_place: false,
            },
            Routed { routing: 3 },
        ];
        assert_eq!(undo_steps(&done, 0, 8), [route(1), restore(&[2, 0])]);
    }
}

#[cfg(test)]
mod canary_promotion {
    use super::*;

    #[test]
    fn a_promoted_canary_is_stopped_after_traffic_is_back() {
        use Done::*;
        // Canary start (idle side), two shifts, then promotion of two live
        // sides in place, each drained first.
        let done = [
            Replaced {
                slot: 0,
                in_place: false,
            },
            Routed { routing: 1 },
            Routed { routing: 2 },
            Routed { routing: 3 },
            Replaced {
                slot: 4,
                in_place: true,
            },
            Routed { routing: 5 },
            Replaced {
                slot: 6,
                in_place: true,
            },
        ];
        assert_eq!(
            undo_steps(&done, 0, 8),
            [
                UndoStep::Restore { slots: vec![6, 4] },
                UndoStep::Route { routing: 1 },
                UndoStep::Restore { slots: vec![0] },
            ]
        );
    }
}

#[cfg(test)]
mod batch_records {
    use super::*;
    use crate::config::Strategy;
    use crate::model::Version;

    fn plan(stages: Vec<Stage>) -> Plan {
        Plan {
            app: "web".into(),
            strategy: Strategy::Rolling,
            from: None,
            to: Version::parse("v2").unwrap(),
            install: false,
            stages,
            warnings: Vec::new(),
        }
    }

    fn replace(instances: &[usize]) -> Stage {
        Stage::Replace {
            instances: instances.to_vec(),
        }
    }

    #[test]
    fn a_failure_belongs_to_the_batch_whose_instance_failed() {
        // Four batches of one and the monitor: d1 fails while d4 starts.
        let rolling = plan(vec![
            replace(&[0]),
            replace(&[1]),
            replace(&[2]),
            replace(&[3]),
            Stage::Monitor,
        ]);
        assert_eq!(failed_stage(&rolling, 3, &[0]), 0);
        assert_eq!(failed_stage(&rolling, 3, &[1]), 1);
        // Its own instance, or one of its own among others: the running one.
        assert_eq!(failed_stage(&rolling, 3, &[3]), 3);
        assert_eq!(failed_stage(&rolling, 3, &[0, 3]), 3);
        // Several earlier ones (a deadline): the latest of them.
        assert_eq!(failed_stage(&rolling, 3, &[0, 2]), 2);
        // No instance named (a traffic change, a lost record): the running one.
        assert_eq!(failed_stage(&rolling, 3, &[]), 3);
        // The monitor watches every instance: its failure is its own.
        assert_eq!(failed_stage(&rolling, 4, &[0]), 4);
        // An instance no stage started (not in the plan): the running one.
        assert_eq!(failed_stage(&rolling, 3, &[9]), 3);

        // Surge: batches start beside the old side, then switch.
        let surge = plan(vec![
            Stage::StartIdle {
                instances: vec![0, 1],
            },
            Stage::SwitchBatch {
                instances: vec![0, 1],
            },
            Stage::StartIdle {
                instances: vec![2, 3],
            },
            Stage::SwitchBatch {
                instances: vec![2, 3],
            },
            Stage::Monitor,
        ]);
        assert_eq!(failed_stage(&surge, 2, &[1]), 0);
        assert_eq!(failed_stage(&surge, 2, &[3]), 2);
        // A switch starts nothing: its failure is its own.
        assert_eq!(failed_stage(&surge, 3, &[1]), 3);

        // A canary promoted batch by batch: the canary is the first stage.
        let canary = plan(vec![
            Stage::StartIdle { instances: vec![0] },
            Stage::Shift { percent: 50 },
            replace(&[1]),
            replace(&[2]),
        ]);
        assert_eq!(failed_stage(&canary, 3, &[0]), 0);
        assert_eq!(failed_stage(&canary, 1, &[0]), 1);
    }

    #[test]
    fn a_recovered_rollout_goes_on_from_the_stage_that_ran_last() {
        use BatchState::*;
        let s = |states: &[BatchState]| -> Vec<Option<BatchState>> {
            states.iter().copied().map(Some).collect()
        };
        assert_eq!(resume_from(&s(&[Pending, Pending])), 0);
        assert_eq!(resume_from(&s(&[Running, Pending])), 0);
        assert_eq!(resume_from(&s(&[Passed, Running, Pending])), 1);
        assert_eq!(resume_from(&s(&[Passed, Passed, Pending])), 2);
        assert_eq!(resume_from(&s(&[Passed, Passed])), 2);
        assert_eq!(resume_from(&s(&[Passed, Failed, Pending])), 1);
        // An earlier batch failed while a later one ran: the later one.
        assert_eq!(
            resume_from(&s(&[Failed, Passed, Passed, Interrupted, Pending])),
            3
        );
        // A state this version does not know counts as begun.
        assert_eq!(resume_from(&[Some(Passed), None, Some(Pending)]), 1);
        assert_eq!(resume_from(&[]), 0);
    }
}
