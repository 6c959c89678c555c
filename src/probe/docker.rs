//! The `docker` probe: reads the container's `.State` with `docker inspect`
//! on the instance's host. `starting` is not yet healthy; `unhealthy` and a
//! stopped container are failures; a running container without a health
//! check passes.

use std::time::Duration;

use serde::Deserialize;

use super::{Outcome, Target};
use crate::config::DockerProbe;
use crate::exec::Executor;
use crate::model::ErrorKind;
use crate::shell;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct State {
    running: bool,
    #[serde(default)]
    status: String,
    #[serde(default)]
    exit_code: i64,
    health: Option<HealthState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthState {
    status: String,
    #[serde(default)]
    failing_streak: i64,
}

/// Runs one docker probe within `timeout`.
pub async fn run(
    exec: &Executor,
    target: Target<'_>,
    p: &DockerProbe,
    timeout: Duration,
) -> Outcome {
    let vars = target.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let container = match shell::render_plain(&p.container, &vars) {
        Ok(c) => c,
        Err(e) => return Outcome::fail(ErrorKind::Exec, None, e.to_string()),
    };
    let script = match shell::render(
        "docker inspect --type container --format {format} {container}",
        &[("format", "{{json .State}}"), ("container", &container)],
    ) {
        Ok(s) => s,
        Err(e) => return Outcome::fail(ErrorKind::Exec, None, e.to_string()),
    };
    let out = match exec.run(&script, timeout).await {
        Ok(o) => o,
        Err(e) => return super::command::exec_failure(&e, timeout),
    };
    if out.code != Some(0) {
        let err = out.stderr.trim();
        if err.contains("No such container") || err.contains("No such object") {
            return Outcome::fail(
                ErrorKind::NotRunning,
                None,
                format!("no container named \"{container}\""),
            );
        }
        let first = err.lines().next().unwrap_or("docker inspect failed");
        return Outcome::fail(ErrorKind::Exec, out.code.map(i64::from), first.to_string());
    }
    judge(&container, out.stdout.trim())
}

/// Judges the JSON of `.State` (pure).
pub fn judge(container: &str, state_json: &str) -> Outcome {
    let state: State = match serde_json::from_str(state_json) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::fail(
                ErrorKind::Exec,
                None,
                format!("cannot read docker inspect output: {e}"),
            );
        }
    };
    if !state.running {
        return Outcome::fail(
            ErrorKind::NotRunning,
            Some(state.exit_code),
            format!("{container} is {} (exit {})", state.status, state.exit_code),
        );
    }
    match state.health.as_ref().map(|h| h.status.as_str()) {
        None => Outcome::pass(None, format!("{container} running (no health check)")),
        Some("healthy") => Outcome::pass(None, format!("{container} healthy")),
        Some("starting") => Outcome::fail(
            ErrorKind::Unhealthy,
            None,
            format!("{container} starting (not yet healthy)"),
        ),
        Some(other) => Outcome::fail(
            ErrorKind::Unhealthy,
            None,
            format!(
                "{container} {other} (failing streak {})",
                state.health.as_ref().map_or(0, |h| h.failing_streak)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let j = |s: &str| judge("c", s).error;
        assert_eq!(j(r#"{"Running":true,"Status":"running"}"#), None);
        assert_eq!(
            j(r#"{"Running":true,"Health":{"Status":"healthy","FailingStreak":0}}"#),
            None
        );
        assert_eq!(
            j(r#"{"Running":true,"Health":{"Status":"starting"}}"#),
            Some(ErrorKind::Unhealthy)
        );
        assert_eq!(
            j(r#"{"Running":true,"Health":{"Status":"unhealthy","FailingStreak":3}}"#),
            Some(ErrorKind::Unhealthy)
        );
        assert_eq!(
            j(r#"{"Running":false,"Status":"exited","ExitCode":137}"#),
            Some(ErrorKind::NotRunning)
        );
        assert_eq!(j("garbage"), Some(ErrorKind::Exec));
    }
}
