//! Validating `[app.rollout]`: the batch size (a count or a share), how
//! many instances stay healthy, the canary's instances and steps, the
//! waits, when to roll back, and a rollback's batch.

use std::time::Duration;

use super::bounds::ROLLOUT_WAIT;
use super::context::Ctx;
use crate::config::raw::{RawRollout, S};
use crate::config::{AutoRollback, BatchSize, Rollout, StepPause};

/// The hint of a batch size that does not read.
const BATCH_HINT: &str = "write a count like 1 or a share like \"25%\" (1% to 100%)";

/// `[app.rollout]` of an app with `instances` instances, with the
/// defaults for what it leaves out.
pub(super) fn rollout(cx: &mut Ctx<'_>, r: &RawRollout, instances: usize) -> Rollout {
    let d = Rollout::default();
    let batch = r.batch.as_ref().map_or(d.batch, |b| batch(cx, b, d.batch));
    let min_healthy = min_healthy(cx, r, instances, d.min_healthy);
    let canary = canary(cx, r, instances, d.canary);
    let steps = match &r.steps {
        None => d.steps,
        Some(list) => steps(cx, list),
    };
    let step_pause = match &r.step_pause {
        Some(s) if s.get_ref() == "manual" => StepPause::Manual,
        Some(_) => StepPause::After(cx.duration(
            &r.step_pause,
            "step_pause",
            Duration::from_secs(300),
            ROLLOUT_WAIT,
        )),
        None => d.step_pause,
    };
    Rollout {
        batch,
        pause: cx.duration(&r.pause, "pause", d.pause, ROLLOUT_WAIT),
        min_healthy,
        max_failed_batches: count(cx, &r.max_failed_batches, "max_failed_batches", 1, 1),
        canary,
        steps,
        step_pause,
        auto_rollback: cx.choice(
            &r.auto_rollback,
            "auto_rollback",
            &[
                ("auto", AutoRollback::Auto),
                ("confirm", AutoRollback::Confirm),
                ("off", AutoRollback::Off),
            ],
            AutoRollback::Auto,
        ),
        confirm_window: cx.duration(
            &r.confirm_window,
            "confirm_window",
            d.confirm_window,
            ROLLOUT_WAIT,
        ),
        rollback_batch: r
            .rollback_batch
            .as_ref()
            .map(|_| count(cx, &r.rollback_batch, "rollback_batch", 1, 1)),
        surge: r.surge.as_ref().is_some_and(|s| *s.get_ref()),
    }
}

/// `batch`: a count like 1 or a share like "25%".
fn batch(cx: &mut Ctx<'_>, b: &S<toml::Value>, default: BatchSize) -> BatchSize {
    match b.get_ref() {
        toml::Value::Integer(n) if *n >= 1 && *n <= i64::from(u32::MAX) => {
            BatchSize::Count(*n as u32)
        }
        toml::Value::String(s) => match s
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<u32>().ok())
        {
            Some(p) if (1..=100).contains(&p) => BatchSize::Percent(p),
            _ => {
                cx.error(
                    b.span(),
                    format!("\"{s}\" is not a batch size"),
                    Some(BATCH_HINT.into()),
                );
                default
            }
        },
        other => {
            cx.error(
                b.span(),
                format!("{other} is not a batch size"),
                Some(BATCH_HINT.into()),
            );
            default
        }
    }
}

/// A count `key` of at least `min`; `default` when left out or wrong.
fn count(cx: &mut Ctx<'_>, v: &Option<S<i64>>, key: &str, min: u32, default: u32) -> u32 {
    let Some(v) = v else { return default };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if n >= min => n,
        _ => {
            cx.err(v.span(), format!("{key} must be at least {min}"));
            default
        }
    }
}

/// `min_healthy`, which must leave an instance of the app's `instances`
/// free to replace.
fn min_healthy(cx: &mut Ctx<'_>, r: &RawRollout, instances: usize, default: u32) -> u32 {
    let min_healthy = count(cx, &r.min_healthy, "min_healthy", 0, default);
    if let Some(m) = &r.min_healthy
        && instances > 0
        && min_healthy as usize >= instances
    {
        cx.error(
            m.span(),
            format!(
                "min_healthy = {min_healthy} leaves no instance free to replace (the app has {instances})"
            ),
            Some(format!(
                "set min_healthy to at most {}",
                instances.saturating_sub(1)
            )),
        );
    }
    min_healthy
}

/// `canary`: how many of the app's `instances` run the new version first.
fn canary(cx: &mut Ctx<'_>, r: &RawRollout, instances: usize, default: u32) -> u32 {
    let canary = count(cx, &r.canary, "canary", 1, default);
    if let Some(c) = &r.canary
        && canary as usize > instances
    {
        cx.err(
            c.span(),
            format!("canary = {canary} but the app has {instances} instances"),
        );
    }
    canary
}

/// `steps`: percentages from 1 to 100 that go up.
fn steps(cx: &mut Ctx<'_>, list: &S<Vec<S<i64>>>) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for s in list.get_ref() {
        let v = *s.get_ref();
        if !(1..=100).contains(&v) {
            cx.err(
                s.span(),
                format!("step {v} is not a percentage from 1 to 100"),
            );
        } else if out.last().is_some_and(|l| i64::from(*l) >= v) {
            cx.err(s.span(), "steps must go up, e.g. [10, 25, 50, 100]");
        } else {
            out.push(v as u32);
        }
    }
    if list.get_ref().is_empty() {
        cx.err(list.span(), "steps is empty; list at least one percentage");
    }
    out
}
