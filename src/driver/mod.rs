//! Drivers: how a version runs on an instance. One interface, three
//! adapters: docker (containers, snapshots from `docker inspect`), process
//! (supervised processes with pidfiles) and command (user commands). Every
//! command a driver runs goes through an [`Executor`] (local or SSH) and is
//! built from templates whose values are shell-quoted.
//!
//! A driver works on a [`Slot`]: one instance on one of its two ports (the
//! main port, or the alt port used by blue-green and canary). The rollout
//! engine calls [`Driver::snapshot`] and stores the snapshot before it calls
//! [`Driver::start`], so a rollback can put back exactly what ran.
//!
//! Values that came from the environment (the app's [`Secrets`]) never
//! leave a driver as they are: snapshots hold them as the `${NAME}` they
//! came from (a restore fills them in from the config again), and the
//! errors of [`Driver`]'s operations, with the command output they quote,
//! hold them as `***`.

pub mod command;
pub mod docker;
pub mod process;

use serde::{Deserialize, Serialize};

use crate::config::{App, DriverKind, Host, Instance, Secrets};
use crate::exec::{ExecError, Executor};
use crate::model::Version;

pub use crate::model::Side;

/// One instance on one of its ports: where a driver starts or stops a version.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'a> {
    /// The app.
    pub app: &'a App,
    /// The instance.
    pub instance: &'a Instance,
    /// Its host.
    pub host: &'a Host,
    /// Which port.
    pub side: Side,
}

impl Slot<'_> {
    /// The port of this side (`None`: the instance has no alt port).
    pub fn port(&self) -> Option<u16> {
        match self.side {
            Side::Main => Some(self.instance.port),
            Side::Alt => self.instance.alt_port,
        }
    }

    /// Template values: `{app} {instance} {host} {port}` and, when given,
    /// `{version}`. `{host}` is the host's address.
    pub fn vars(&self, version: Option<&Version>) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("app", self.app.name.clone()),
            ("instance", self.instance.name.clone()),
            ("host", self.host.address.clone()),
            ("port", self.port().unwrap_or(0).to_string()),
        ];
        if let Some(version) = version {
            v.push(("version", version.to_string()));
        }
        v
    }

    /// `app/instance` or `app/instance (alt)`, for messages.
    pub fn label(&self) -> String {
        match self.side {
            Side::Main => format!("{}/{}", self.app.name, self.instance.name),
            Side::Alt => format!("{}/{} (alt)", self.app.name, self.instance.name),
        }
    }
}

/// What ran on a slot before a change: enough to put it back exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Which driver took it.
    pub driver: String,
    /// The version that ran, when known.
    pub version: Option<Version>,
    /// Driver-specific detail (for docker: the container's configuration).
    pub data: serde_json::Value,
}

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The command could not be run at all (SSH down, timeout).
    #[error("{slot}: {source}")]
    Exec {
        /// Which slot.
        slot: String,
        /// What the executor said.
        #[source]
        source: ExecError,
    },
    /// A command ran and failed.
    #[error("{slot}: {what} failed: {detail}")]
    Failed {
        /// Which slot.
        slot: String,
        /// What was being done, e.g. `docker run`.
        what: String,
        /// Exit code and the end of the output.
        detail: String,
    },
    /// The app's config does not allow this (e.g. no `[app.docker]`).
    #[error("{0}")]
    Config(String),
}

impl DriverError {
    /// The same error with every secret in its text masked.
    pub fn masked(self, secrets: &Secrets) -> DriverError {
        if secrets.is_empty() {
            return self;
        }
        let m = |s: String| secrets.mask(&s);
        match self {
            DriverError::Exec { slot, source } => DriverError::Exec {
                slot: m(slot),
                source: match source {
                    ExecError::Connect { host, message } => ExecError::Connect {
                        host: m(host),
                        message: m(message),
                    },
                    ExecError::HostKey { host, refusal } => ExecError::HostKey {
                        host: m(host),
                        refusal: Box::new(refusal.masked(&m)),
                    },
                    ExecError::Spawn(message) => ExecError::Spawn(m(message)),
                    timeout @ ExecError::Timeout(_) => timeout,
                },
            },
            DriverError::Failed { slot, what, detail } => DriverError::Failed {
                slot: m(slot),
                what: m(what),
                detail: m(detail),
            },
            DriverError::Config(message) => DriverError::Config(m(message)),
        }
    }
}

/// The driver of one app. Its operations' errors have the app's secrets
/// masked (see [`DriverError::masked`]).
#[derive(Clone, Debug)]
pub enum Driver {
    /// `driver = "docker"`.
    Docker(docker::Docker),
    /// `driver = "process"`.
    Process(process::Process),
    /// `driver = "command"`.
    Command(command::Command),
}

/// `$call` on whichever driver `$driver` is, the driver bound to `$d`:
/// the one place the three are told apart (each arm its own type, so no
/// boxing and no dynamic dispatch).
macro_rules! each {
    ($driver:expr, $d:ident => $call:expr) => {
        match $driver {
            Driver::Docker($d) => $call,
            Driver::Process($d) => $call,
            Driver::Command($d) => $call,
        }
    };
}

impl Driver {
    /// The driver `app` asks for, or why it has none.
    pub fn for_app(app: &App) -> Result<Driver, DriverError> {
        let missing = |section: &str| {
            DriverError::Config(format!(
                "app \"{}\" uses driver \"{section}\" but has no [app.{section}] section; add one (see config.example.toml)",
                app.name
            ))
        };
        Ok(match app.driver {
            DriverKind::Docker => Driver::Docker(
                docker::Docker::new(app.docker.clone().ok_or_else(|| missing("docker"))?)
                    .with_secrets(app.secrets.clone()),
            ),
            DriverKind::Process => Driver::Process(
                process::Process::new(app.process.clone().ok_or_else(|| missing("process"))?)
                    .with_secrets(app.secrets.clone()),
            ),
            DriverKind::Command => Driver::Command(
                command::Command::new(app.command.clone().ok_or_else(|| missing("command"))?)
                    .with_secrets(app.secrets.clone()),
            ),
        })
    }

    /// The values the driver keeps out of what it stores and logs.
    pub fn secrets(&self) -> &Secrets {
        each!(self, d => d.secrets())
    }

    /// Whether [`Driver::current`] can tell what runs: false for the
    /// command driver without a `current` command, whose `None` means
    /// "unknown", not "nothing runs".
    pub fn tells_current(&self) -> bool {
        match self {
            Driver::Command(d) => d.tells_current(),
            Driver::Docker(_) | Driver::Process(_) => true,
        }
    }

    /// The version running on `slot`, `None` when nothing runs there.
    pub async fn current(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Version>, DriverError> {
        self.masked(each!(self, d => d.current(exec, slot).await))
    }

    /// Whether `version`'s artifact (image, release) is present on `slot`'s host.
    pub async fn present(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<bool, DriverError> {
        self.masked(each!(self, d => d.present(exec, slot, version).await))
    }

    /// The releases whose artifact is on `slot`'s host, for completion:
    /// the docker image's tags, or the process driver's release folders
    /// (when `run`'s program names `{version}` as a part of its path).
    /// `None` when the driver cannot list them (the command driver).
    pub async fn available(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Vec<Version>>, DriverError> {
        let result = match self {
            Driver::Docker(d) => d.available(exec, slot).await.map(Some),
            Driver::Process(d) => d.available(exec, slot).await,
            Driver::Command(_) => Ok(None),
        };
        self.masked(result)
    }

    /// What runs on `slot` now, `None` when nothing does.
    pub async fn snapshot(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Snapshot>, DriverError> {
        self.masked(each!(self, d => d.snapshot(exec, slot).await))
    }

    /// Replaces whatever runs on `slot` with `version` (the old one is
    /// stopped and, where the driver can, kept for a rollback).
    pub async fn start(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<(), DriverError> {
        self.masked(each!(self, d => d.start(exec, slot, version).await))
    }

    /// Stops what runs on `slot` (kept, not removed, where the driver can).
    pub async fn stop(&self, exec: &Executor, slot: Slot<'_>) -> Result<(), DriverError> {
        self.masked(each!(self, d => d.stop(exec, slot).await))
    }

    /// Puts `snapshot` back on `slot`, replacing what runs there now.
    pub async fn restore(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        snapshot: &Snapshot,
    ) -> Result<(), DriverError> {
        self.masked(each!(self, d => d.restore(exec, slot, snapshot).await))
    }

    /// `result` with the driver's secrets masked in its error.
    fn masked<T>(&self, result: Result<T, DriverError>) -> Result<T, DriverError> {
        result.map_err(|e| e.masked(self.secrets()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_masked_in_every_part() {
        let secrets = Secrets::new([("TOKEN".to_string(), "hunter2-token".to_string())]);
        let e = DriverError::Failed {
            slot: "web/a".into(),
            what: "start".into(),
            detail: "exit code 1: bad token hunter2-token".into(),
        }
        .masked(&secrets);
        assert_eq!(
            e.to_string(),
            "web/a: start failed: exit code 1: bad token ***"
        );
        let e = DriverError::Exec {
            slot: "web/a".into(),
            source: ExecError::Connect {
                host: "h".into(),
                message: "refused for hunter2-token".into(),
            },
        }
        .masked(&secrets);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = DriverError::Config("uses hunter2-token".into()).masked(&secrets);
        assert_eq!(e.to_string(), "uses ***");
    }
}
