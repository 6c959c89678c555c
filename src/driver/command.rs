//! The command driver: the user's own commands start, stop and inspect an
//! instance, for anything rollguard has no adapter for (systemd units,
//! Kubernetes deployments, a vendor CLI).
//!
//! Each operation renders one `[app.command]` template with the slot's
//! values (`{app} {instance} {host} {port}` and, where it makes sense,
//! `{version}`), every value shell-quoted by [`render`], and runs it through
//! the slot host's [`Executor`]. A non-zero exit is a failure carrying the
//! exit code and the last line of output.
//!
//! Without a `current` command rollguard cannot know what runs, so
//! snapshots carry no version and cannot be restored.

use std::time::Duration;

use super::{DriverError, Slot, Snapshot};
use crate::config::{CommandSpec, Secrets};
use crate::exec::{Executor, Output};
use crate::model::Version;
use crate::shell::{placeholders, render};

/// Time for `start` and `stop`.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Time for `current` and `present`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// At most this many characters of an output line go into an error.
const DETAIL_CHARS: usize = 300;

/// The command driver of one app.
#[derive(Clone, Debug)]
pub struct Command {
    spec: CommandSpec,
    secrets: Secrets,
}

impl Command {
    /// A driver for `spec`.
    pub fn new(spec: CommandSpec) -> Command {
        Command {
            spec,
            secrets: Secrets::default(),
        }
    }

    /// The same driver, keeping `secrets` out of what it stores and logs.
    pub fn with_secrets(mut self, secrets: Secrets) -> Command {
        self.secrets = secrets;
        self
    }

    /// The values it keeps out of what it stores and logs.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Whether a `current` command is configured.
    pub fn tells_current(&self) -> bool {
        self.spec.current.is_some()
    }

    /// See [`super::Driver::current`]: the trimmed output of `current`
    /// when it is a valid version; `None` (with a warning) when it is empty
    /// or not a version, and `None` when there is no `current` command. A
    /// non-zero exit is an error (append `|| true` to a command that fails
    /// when nothing runs).
    pub async fn current(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Version>, DriverError> {
        let Some(template) = &self.spec.current else {
            return Ok(None);
        };
        let script = self.render(slot, "current", template, None)?;
        let out = self
            .run(exec, slot, "current command", &script, QUERY_TIMEOUT)
            .await?;
        let text = out.stdout.trim();
        if text.is_empty() {
            tracing::warn!(slot = %slot.label(), "current command printed nothing; taking it as: nothing runs");
            return Ok(None);
        }
        match Version::parse(text) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let error = self.secrets.mask(&e.to_string());
                tracing::warn!(slot = %slot.label(), %error, "current command printed no valid version; taking it as unknown");
                Ok(None)
            }
        }
    }

    /// See [`super::Driver::present`]: whether `present` exits 0; `true`
    /// when there is no `present` command.
    pub async fn present(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<bool, DriverError> {
        let Some(template) = &self.spec.present else {
            return Ok(true);
        };
        let script = self.render(slot, "present", template, Some(version))?;
        let out = exec
            .run(&script, QUERY_TIMEOUT)
            .await
            .map_err(|source| DriverError::Exec {
                slot: slot.label(),
                source,
            })?;
        if out.code != Some(0) {
            let detail = self.secrets.mask(&failure_detail(&out));
            tracing::debug!(slot = %slot.label(), %version, %detail, "present command: not present");
        }
        Ok(out.code == Some(0))
    }

    /// See [`super::Driver::snapshot`]: the current version. With a
    /// `current` command, `None` when it reports nothing; without one, a
    /// snapshot with no version (which cannot be restored).
    pub async fn snapshot(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Snapshot>, DriverError> {
        let version = self.current(exec, slot).await?;
        if version.is_none() && self.spec.current.is_some() {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            driver: "command".into(),
            version,
            data: serde_json::json!({}),
        }))
    }

    /// See [`super::Driver::start`]: runs `start` with `{version}`; the
    /// command itself replaces what runs.
    pub async fn start(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<(), DriverError> {
        let script = self.render(slot, "start", &self.spec.start, Some(version))?;
        self.run(exec, slot, "start command", &script, CHANGE_TIMEOUT)
            .await?;
        tracing::info!(slot = %slot.label(), %version, "start command done");
        Ok(())
    }

    /// See [`super::Driver::stop`]: runs `stop`. A `stop` template that
    /// uses `{version}` gets the current version (needs `current`).
    pub async fn stop(&self, exec: &Executor, slot: Slot<'_>) -> Result<(), DriverError> {
        let version = if placeholders(&self.spec.stop).iter().any(|p| p == "version") {
            match self.current(exec, slot).await? {
                Some(v) => Some(v),
                None => {
                    return Err(DriverError::Config(format!(
                        "{}: the stop command uses {{version}}, but the running version is unknown (no `current` command, or it printed none)",
                        slot.label()
                    )));
                }
            }
        } else {
            None
        };
        let script = self.render(slot, "stop", &self.spec.stop, version.as_ref())?;
        self.run(exec, slot, "stop command", &script, CHANGE_TIMEOUT)
            .await?;
        Ok(())
    }

    /// See [`super::Driver::restore`]: starts the snapshot's version.
    pub async fn restore(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        snapshot: &Snapshot,
    ) -> Result<(), DriverError> {
        let Some(version) = &snapshot.version else {
            return Err(DriverError::Config(format!(
                "{}: cannot restore: the command driver has no `current` command, so the previous version is unknown",
                slot.label()
            )));
        };
        self.start(exec, slot, version).await
    }

    /// Renders the `[app.command]` template `what`.
    fn render(
        &self,
        slot: Slot<'_>,
        what: &str,
        template: &str,
        version: Option<&Version>,
    ) -> Result<String, DriverError> {
        let vars = slot.vars(version);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        render(template, &vars).map_err(|e| {
            DriverError::Config(format!(
                "app \"{}\": [app.command] {what}: {e}",
                slot.app.name
            ))
        })
    }

    /// Runs `script`; a non-zero exit is [`DriverError::Failed`].
    async fn run(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        what: &str,
        script: &str,
        timeout: Duration,
    ) -> Result<Output, DriverError> {
        let out = exec
            .run(script, timeout)
            .await
            .map_err(|source| DriverError::Exec {
                slot: slot.label(),
                source,
            })?;
        if out.code == Some(0) {
            Ok(out)
        } else {
            Err(DriverError::Failed {
                slot: slot.label(),
                what: what.into(),
                detail: failure_detail(&out),
            })
        }
    }
}

/// `exit code N: LAST LINE` (or `killed by a signal`) for a failed command:
/// the last non-empty line of stderr, else of stdout, shortened.
pub(crate) fn failure_detail(out: &Output) -> String {
    let how = match out.code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".into(),
    };
    let last = |s: &str| {
        s.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    match last(&out.stderr).or_else(|| last(&out.stdout)) {
        Some(line) => {
            let mut short: String = line.chars().take(DETAIL_CHARS).collect();
            if short.len() < line.len() {
                short.push('…');
            }
            format!("{how}: {short}")
        }
        None => how,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_detail_shows_code_and_last_line() {
        let out = Output {
            code: Some(3),
            stdout: "a\nb\n".into(),
            stderr: "x\nlast words\n\n".into(),
            truncated: false,
        };
        assert_eq!(failure_detail(&out), "exit code 3: last words");
        let out = Output {
            code: Some(1),
            stdout: "only out\n".into(),
            ..Output::default()
        };
        assert_eq!(failure_detail(&out), "exit code 1: only out");
        assert_eq!(failure_detail(&Output::default()), "killed by a signal");
        let out = Output {
            code: Some(2),
            stderr: "é".repeat(400),
            ..Output::default()
        };
        assert!(failure_detail(&out).ends_with('…'));
    }
}
