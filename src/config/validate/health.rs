//! Validating `[app.health]`: how often probes run, how many results
//! turn a verdict, and how long a new instance and a rollout wait.

use super::bounds::{DEADLINE, INITIAL_DELAY, INTERVAL, ROLLOUT_WAIT};
use super::context::Ctx;
use crate::config::raw::RawHealth;
use crate::config::{Health, Require};

/// `[app.health]`, with the defaults for what it leaves out.
pub(super) fn health(cx: &mut Ctx<'_>, h: &RawHealth) -> Health {
    let d = Health::default();
    Health {
        interval: cx.duration(&h.interval, "interval", d.interval, INTERVAL),
        initial_delay: cx.duration(
            &h.initial_delay,
            "initial_delay",
            d.initial_delay,
            INITIAL_DELAY,
        ),
        success_threshold: cx.threshold(&h.success_threshold, "success_threshold", 1),
        failure_threshold: cx.threshold(&h.failure_threshold, "failure_threshold", 3),
        max_failures: (h.max_failures.is_some())
            .then(|| cx.threshold(&h.max_failures, "max_failures", 1)),
        require: cx.choice(
            &h.require,
            "require",
            &[("all", Require::All), ("any", Require::Any)],
            Require::All,
        ),
        deadline: cx.duration(&h.deadline, "deadline", d.deadline, DEADLINE),
        monitor: cx.duration(&h.monitor, "monitor", d.monitor, ROLLOUT_WAIT),
        resolve_after: cx.duration(
            &h.resolve_after,
            "resolve_after",
            d.resolve_after,
            ROLLOUT_WAIT,
        ),
    }
}
