//! `[app.rollout]`: batches, canary steps, pauses, and what a failure
//! does.

use std::time::Duration;

/// How many instances a rolling batch replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    /// This many.
    Count(u32),
    /// This percentage of the instances, rounded up.
    Percent(u32),
}

/// What happens between canary steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPause {
    /// Go on after this long (if health holds).
    After(Duration),
    /// Wait for an operator to approve.
    Manual,
}

/// What a failure does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoRollback {
    /// Roll back at once.
    Auto,
    /// Arm a countdown that an operator can fire early or hold.
    Confirm,
    /// Only report.
    Off,
}

/// `[app.rollout]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    /// Rolling batch size.
    pub batch: BatchSize,
    /// Pause between batches.
    pub pause: Duration,
    /// Never take the app below this many healthy instances.
    pub min_healthy: u32,
    /// Failed batches tolerated before rolling back.
    pub max_failed_batches: u32,
    /// Instances that run the canary.
    pub canary: u32,
    /// Canary traffic percentages, ascending.
    pub steps: Vec<u32>,
    /// Between canary steps.
    pub step_pause: StepPause,
    /// What a failure does.
    pub auto_rollback: AutoRollback,
    /// With `Confirm`: the armed rollback fires after this long.
    pub confirm_window: Duration,
    /// How many slots a rollback restores at once; `None`: every slot the
    /// rollout replaced.
    pub rollback_batch: Option<u32>,
    /// Rolling: start each batch beside the old side (on `alt_port`),
    /// switch traffic, and keep the old side until `monitor` ends, so a
    /// rollback is a traffic switch.
    pub surge: bool,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            batch: BatchSize::Percent(25),
            pause: Duration::from_secs(30),
            min_healthy: 1,
            max_failed_batches: 1,
            canary: 1,
            steps: vec![10, 25, 50, 100],
            step_pause: StepPause::After(Duration::from_secs(300)),
            auto_rollback: AutoRollback::Auto,
            confirm_window: Duration::from_secs(30),
            rollback_batch: None,
            surge: false,
        }
    }
}
