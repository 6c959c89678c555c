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

pub mod command;
pub mod docker;
pub mod process;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{App, DriverKind, Host, Instance};
use crate::exec::{ExecError, Executor};
use crate::model::Version;

/// Which of an instance's two ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The instance's `port`.
    Main,
    /// The instance's `alt_port` (blue-green, canary).
    Alt,
}

impl Side {
    /// `main` or `alt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Main => "main",
            Side::Alt => "alt",
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Main => Side::Alt,
            Side::Alt => Side::Main,
        }
    }
}

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

/// The driver of one app.
#[derive(Clone, Debug)]
pub enum Driver {
    /// `driver = "docker"`.
    Docker(docker::Docker),
    /// `driver = "process"`.
    Process(process::Process),
    /// `driver = "command"`.
    Command(command::Command),
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
            DriverKind::Docker => Driver::Docker(docker::Docker::new(
                app.docker.clone().ok_or_else(|| missing("docker"))?,
            )),
            DriverKind::Process => Driver::Process(process::Process::new(
                app.process.clone().ok_or_else(|| missing("process"))?,
            )),
            DriverKind::Command => Driver::Command(command::Command::new(
                app.command.clone().ok_or_else(|| missing("command"))?,
            )),
        })
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
        match self {
            Driver::Docker(d) => d.current(exec, slot).await,
            Driver::Process(d) => d.current(exec, slot).await,
            Driver::Command(d) => d.current(exec, slot).await,
        }
    }

    /// Whether `version`'s artifact (image, release) is present on `slot`'s host.
    pub async fn present(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<bool, DriverError> {
        match self {
            Driver::Docker(d) => d.present(exec, slot, version).await,
            Driver::Process(d) => d.present(exec, slot, version).await,
            Driver::Command(d) => d.present(exec, slot, version).await,
        }
    }

    /// What runs on `slot` now, `None` when nothing does.
    pub async fn snapshot(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Snapshot>, DriverError> {
        match self {
            Driver::Docker(d) => d.snapshot(exec, slot).await,
            Driver::Process(d) => d.snapshot(exec, slot).await,
            Driver::Command(d) => d.snapshot(exec, slot).await,
        }
    }

    /// Replaces whatever runs on `slot` with `version` (the old one is
    /// stopped and, where the driver can, kept for a rollback).
    pub async fn start(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<(), DriverError> {
        match self {
            Driver::Docker(d) => d.start(exec, slot, version).await,
            Driver::Process(d) => d.start(exec, slot, version).await,
            Driver::Command(d) => d.start(exec, slot, version).await,
        }
    }

    /// Stops what runs on `slot` (kept, not removed, where the driver can).
    pub async fn stop(&self, exec: &Executor, slot: Slot<'_>) -> Result<(), DriverError> {
        match self {
            Driver::Docker(d) => d.stop(exec, slot).await,
            Driver::Process(d) => d.stop(exec, slot).await,
            Driver::Command(d) => d.stop(exec, slot).await,
        }
    }

    /// Puts `snapshot` back on `slot`, replacing what runs there now.
    pub async fn restore(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        snapshot: &Snapshot,
    ) -> Result<(), DriverError> {
        match self {
            Driver::Docker(d) => d.restore(exec, slot, snapshot).await,
            Driver::Process(d) => d.restore(exec, slot, snapshot).await,
            Driver::Command(d) => d.restore(exec, slot, snapshot).await,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
