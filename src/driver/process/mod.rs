//! The process driver: rollguard itself starts each version as a detached
//! process on the slot's host and tracks it with small files, for apps that
//! run from a release folder without docker or systemd.
//!
//! Everything happens through the slot host's [`Executor`] (local `sh -c` or
//! SSH), one shell script per operation, so local and remote hosts share one
//! code path. Every value in those scripts is shell-quoted with
//! [`quote`]; the user's `run` and `present` templates go through
//! [`render`].
//!
//! # Files on the host
//!
//! Under `{run_dir}/{app}/`, for each instance and side (`main`/`alt`):
//!
//! - `{instance}-{side}.pid`: the pid of the process group leader (just the
//!   number, so `kill $(cat ...)` works by hand);
//! - `{instance}-{side}.start`: the leader's start time (from
//!   `/proc/PID/stat`, or `ps -o lstart=` where there is no `/proc`). A pid
//!   is only trusted when the process that has it now has the same start
//!   time, so a pid reused by an unrelated process is never signalled;
//! - `{instance}-{side}.version`: the version that runs;
//! - `{instance}-{side}.last-version`: after a stop, the version that ran;
//! - `{instance}-{side}.log`: stdout and stderr of every start, appended.
//!
//! Every file is written atomically (temporary file, then `mv`).
//!
//! # Starting
//!
//! The process is started with `setsid` (when the host has it) and `nohup`,
//! stdin from `/dev/null` and output appended to the log, so it is the
//! leader of its own session and process group: it survives rollguard, the
//! executor's `sh`, and the SSH connection. Before it becomes the release
//! (`exec`, which keeps its pid and start time) it writes the slot's start,
//! version and pid files itself, so they say what runs even when whoever
//! started it dies mid-start. Stopping signals the whole
//! group: SIGTERM, up to `grace` of polling every 100 ms, then SIGKILL.
//! Zombies count as gone (a host's init may be slow to reap them).
//!
//! The scripts themselves, and the markers they print, are in `script.rs`.

mod script;

use std::time::Duration;

use super::command::failure_detail;
use super::{DriverError, Slot, Snapshot};
use crate::config::{ProcessSpec, Secrets};
use crate::exec::{Executor, Output};
use crate::model::Version;
use crate::shell::{quote, render};
use script::{PRELUDE, START, STATUS, WRAP, log_tail, marker};

/// Time for `current`, `snapshot` and the default `present` check.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Time for a user `present` command.
const PRESENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Time for a start beyond the grace of the stop it begins with.
const START_EXTRA: Duration = Duration::from_secs(60);

/// Time for a stop beyond its grace (SIGKILL and the wait after it).
const STOP_EXTRA: Duration = Duration::from_secs(10);

/// How many lines of the log a failed start reports.
const LOG_TAIL_LINES: usize = 20;

/// What a status script found.
struct Status {
    pid: u32,
    version: Version,
}

/// The process driver of one app.
#[derive(Clone, Debug)]
pub struct Process {
    spec: ProcessSpec,
    secrets: Secrets,
}

impl Process {
    /// A driver for `spec`.
    pub fn new(spec: ProcessSpec) -> Process {
        Process {
            spec,
            secrets: Secrets::default(),
        }
    }

    /// The same driver, keeping `secrets` out of what it stores and logs.
    pub fn with_secrets(mut self, secrets: Secrets) -> Process {
        self.secrets = secrets;
        self
    }

    /// The values it keeps out of what it stores and logs.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// See [`super::Driver::current`]: the version file's content when the
    /// pidfile names a live process that we started, else `None`.
    pub async fn current(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Version>, DriverError> {
        Ok(self.status(exec, slot).await?.map(|s| s.version))
    }

    /// See [`super::Driver::available`]: when the program `run` starts
    /// names `{version}` as a part of its path (`/srv/app/{version}/run`),
    /// the release folders on the host whose program is there; `None`
    /// otherwise.
    pub async fn available(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Vec<Version>>, DriverError> {
        let Some(script) = self.available_script(slot)? else {
            return Ok(None);
        };
        let out = run(exec, slot, &script, QUERY_TIMEOUT).await?;
        Ok(Some(super::docker::release_names(&out.stdout)))
    }

    /// The script that lists the release folders: the program's path
    /// before and after `{version}`, as the shell reads them, around a
    /// `*` (a name with a `/` is no release, and nothing else is run).
    fn available_script(&self, slot: Slot<'_>) -> Result<Option<String>, DriverError> {
        let Some(word) = first_word(&self.spec.run) else {
            return Ok(None);
        };
        let Some((before, after)) = word.split_once("{version}") else {
            return Ok(None);
        };
        if after.contains("{version}") || after.is_empty() && before.is_empty() {
            return Ok(None);
        }
        let vars = slot.vars(None);
        let before = self.render(slot, "run", before, &vars)?;
        let after = self.render(slot, "run", after, &vars)?;
        Ok(Some(format!(
            "pre={before}\nsuf={after}\n\
             for p in \"$pre\"*\"$suf\"; do\n\
             v=${{p#\"$pre\"}}; v=${{v%\"$suf\"}}\n\
             case $v in */*) continue ;; esac\n\
             [ -f \"$p\" ] && [ -x \"$p\" ] && printf '%s\\n' \"$v\"\n\
             done\n"
        )))
    }

    /// See [`super::Driver::present`]: runs `present` if set (exit 0 means
    /// present), else checks that the first word of the rendered `run` is
    /// an executable file (or, without a `/`, a command on the PATH).
    pub async fn present(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<bool, DriverError> {
        let vars = slot.vars(Some(version));
        let (script, timeout) = match &self.spec.present {
            Some(t) => (self.render(slot, "present", t, &vars)?, PRESENT_TIMEOUT),
            None => {
                let word = first_word(&self.spec.run).ok_or_else(|| {
                    DriverError::Config(format!(
                        "app \"{}\": cannot tell which program `run` starts; set [app.process] present",
                        slot.app.name
                    ))
                })?;
                let check = if word.contains('/') {
                    format!("set -- {word}\n[ -f \"$1\" ] && [ -x \"$1\" ]")
                } else {
                    format!("set -- {word}\ncommand -v \"$1\" >/dev/null 2>&1")
                };
                (self.render(slot, "run", &check, &vars)?, QUERY_TIMEOUT)
            }
        };
        let out = run(exec, slot, &script, timeout).await?;
        if out.code != Some(0) && self.spec.present.is_some() {
            let detail = self.secrets.mask(&failure_detail(&out));
            tracing::debug!(slot = %slot.label(), %version, %detail, "present command: not present");
        }
        Ok(out.code == Some(0))
    }

    /// See [`super::Driver::snapshot`]: `None` when nothing of ours runs,
    /// else the version with `{"pid", "command", "port"}` as data. The
    /// command holds each secret as its `${NAME}`; a restore renders `run`
    /// from the config again and does not read it.
    pub async fn snapshot(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Snapshot>, DriverError> {
        let Some(st) = self.status(exec, slot).await? else {
            return Ok(None);
        };
        let command = self.secrets.template(&self.render_run(slot, &st.version)?);
        Ok(Some(Snapshot {
            driver: "process".into(),
            version: Some(st.version),
            data: serde_json::json!({
                "pid": st.pid,
                "command": command,
                "port": slot.port(),
            }),
        }))
    }

    /// See [`super::Driver::start`]: stops what runs on the slot, starts
    /// `version` detached, records it, and fails (with the end of its log)
    /// when it is gone again after about 200 ms.
    pub async fn start(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<(), DriverError> {
        if slot.port().is_none() {
            return Err(DriverError::Config(format!(
                "{}: the instance has no alt_port",
                slot.label()
            )));
        }
        let run_line = self.render_run(slot, version)?;
        let script = format!(
            "{}run={}\nversion={}\nrg_wrap={}\n{PRELUDE}{}",
            self.vars_script(slot),
            quote(&run_line),
            quote(version.as_str()),
            quote(WRAP),
            START.replace("TAIL", &LOG_TAIL_LINES.to_string()),
        );
        let out = run(exec, slot, &script, self.spec.grace + START_EXTRA).await?;
        log_stop(slot, &out);
        match out.code {
            Some(0) if marker(&out.stdout, "rollguard-started").is_some() => {
                tracing::info!(slot = %slot.label(), %version, "process started");
                Ok(())
            }
            Some(3) | Some(4) => {
                let tail = log_tail(&out.stdout);
                let what = if out.code == Some(3) {
                    "it exited at once"
                } else {
                    "it did not report its pid"
                };
                Err(DriverError::Failed {
                    slot: slot.label(),
                    what: format!("starting {version}"),
                    detail: if tail.is_empty() {
                        format!("{what} (its log is empty)")
                    } else {
                        format!("{what}; end of its log:\n{tail}")
                    },
                })
            }
            _ => Err(self.stop_or_other_failure(slot, "start", &out)),
        }
    }

    /// See [`super::Driver::stop`]: SIGTERM to the process group we
    /// started, SIGKILL after `grace`; a pid that now belongs to another
    /// process is left alone. Removes the pidfile and keeps the version as
    /// `.last-version`.
    pub async fn stop(&self, exec: &Executor, slot: Slot<'_>) -> Result<(), DriverError> {
        let script = format!("{}{PRELUDE}rg_stop\n", self.vars_script(slot));
        let out = run(exec, slot, &script, self.spec.grace + STOP_EXTRA).await?;
        log_stop(slot, &out);
        if out.code == Some(0) {
            Ok(())
        } else {
            Err(self.stop_or_other_failure(slot, "stop", &out))
        }
    }

    /// See [`super::Driver::restore`]: starts the snapshot's version.
    pub async fn restore(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        snapshot: &Snapshot,
    ) -> Result<(), DriverError> {
        if snapshot.driver != "process" {
            return Err(DriverError::Config(format!(
                "{}: cannot restore a snapshot of the {} driver with the process driver",
                slot.label(),
                snapshot.driver
            )));
        }
        let Some(version) = &snapshot.version else {
            return Err(DriverError::Config(format!(
                "{}: cannot restore: the snapshot does not say which version ran",
                slot.label()
            )));
        };
        self.start(exec, slot, version).await
    }

    /// Runs the status script and parses its answer.
    async fn status(&self, exec: &Executor, slot: Slot<'_>) -> Result<Option<Status>, DriverError> {
        let script = format!("{}{PRELUDE}{STATUS}", self.vars_script(slot));
        let out = run(exec, slot, &script, QUERY_TIMEOUT).await?;
        let failed = |detail: String| DriverError::Failed {
            slot: slot.label(),
            what: "reading the pidfile".into(),
            detail,
        };
        if out.code != Some(0) {
            return Err(failed(failure_detail(&out)));
        }
        if marker(&out.stdout, "rollguard-not-running").is_some() {
            return Ok(None);
        }
        let pid = marker(&out.stdout, "rollguard-running").and_then(|p| p.parse::<u32>().ok());
        let version = marker(&out.stdout, "rollguard-version");
        match (pid, version) {
            (Some(pid), Some(v)) => match Version::parse(v) {
                Ok(version) => Ok(Some(Status { pid, version })),
                Err(e) => Err(failed(format!(
                    "process {pid} runs, but its version file holds no valid version: {e}"
                ))),
            },
            _ => Err(failed(format!(
                "unexpected output: {:?}",
                out.stdout.chars().take(200).collect::<String>()
            ))),
        }
    }

    /// The error for a failed stop (or the stop inside a start), or for any
    /// other unexpected exit.
    fn stop_or_other_failure(&self, slot: Slot<'_>, op: &str, out: &Output) -> DriverError {
        let detail = if let Some(pid) = marker(&out.stdout, "rollguard-unkillable") {
            format!(
                "process group {pid} still runs after SIGTERM, {:?} of grace and SIGKILL",
                self.spec.grace
            )
        } else {
            failure_detail(out)
        };
        DriverError::Failed {
            slot: slot.label(),
            what: format!("process {op}"),
            detail,
        }
    }

    /// Renders `run` for `version`.
    fn render_run(&self, slot: Slot<'_>, version: &Version) -> Result<String, DriverError> {
        self.render(slot, "run", &self.spec.run, &slot.vars(Some(version)))
    }

    /// Renders a template of `[app.process]` named `what`.
    fn render(
        &self,
        slot: Slot<'_>,
        what: &str,
        template: &str,
        vars: &[(&'static str, String)],
    ) -> Result<String, DriverError> {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        render(template, &vars).map_err(|e| {
            DriverError::Config(format!(
                "app \"{}\": [app.process] {what}: {e}",
                slot.app.name
            ))
        })
    }
}

/// Runs `script` on the slot's host.
async fn run(
    exec: &Executor,
    slot: Slot<'_>,
    script: &str,
    timeout: Duration,
) -> Result<Output, DriverError> {
    exec.run(script, timeout)
        .await
        .map_err(|source| DriverError::Exec {
            slot: slot.label(),
            source,
        })
}

/// Logs what a stop (or the stop at the start of a start) did.
fn log_stop(slot: Slot<'_>, out: &Output) {
    if let Some(rest) = marker(&out.stdout, "rollguard-stopped") {
        let mut f = rest.split_whitespace();
        let pid = f.next().unwrap_or("?");
        if f.next() == Some("kill") {
            tracing::warn!(slot = %slot.label(), pid, "process ignored SIGTERM for its grace; sent SIGKILL");
        } else {
            tracing::info!(slot = %slot.label(), pid, "process stopped");
        }
    }
}

/// The program a `run` template starts: its first shell word, skipping
/// `exec`, `env`, `nohup` and `NAME=value` assignments. Quotes and
/// backslashes are kept, so the word can be rendered and read by the shell
/// as it would be in `run`. `None` when the line starts with an operator.
fn first_word(template: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote_char: Option<char> = None;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match quote_char {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote_char = None;
                } else if c == '\\' && q == '"' {
                    cur.extend(chars.next());
                }
            }
            None => match c {
                '\'' | '"' => {
                    cur.push(c);
                    quote_char = Some(c);
                }
                '\\' => {
                    cur.push(c);
                    cur.extend(chars.next());
                }
                c if c.is_whitespace() || ";&|<>()".contains(c) => {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    if !c.is_whitespace() {
                        break;
                    }
                }
                c => cur.push(c),
            },
        }
    }
    if !cur.is_empty() && quote_char.is_none() {
        words.push(cur);
    }
    words.into_iter().find(|w| {
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        !assignment && !matches!(w.as_str(), "exec" | "env" | "nohup")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_word_finds_the_program() {
        let w = |t: &str| first_word(t);
        assert_eq!(
            w("/srv/checkout/{version}/bin/checkout --port {port}").as_deref(),
            Some("/srv/checkout/{version}/bin/checkout")
        );
        assert_eq!(
            w("  exec env A=1 B_2=x nohup ./bin/app {port}").as_deref(),
            Some("./bin/app")
        );
        assert_eq!(
            w("'/opt/my app'/{version}/run;x").as_deref(),
            Some("'/opt/my app'/{version}/run")
        );
        assert_eq!(w("a\\ b c").as_deref(), Some("a\\ b"));
        assert_eq!(w("; x"), None);
        assert_eq!(w(""), None);
        assert_eq!(w("java -jar x.jar").as_deref(), Some("java"));
    }
}
