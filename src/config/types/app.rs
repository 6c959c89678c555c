//! `[[app]]`: its driver and strategy, its instances and `[app.health]`.
//! Its probes, driver sections, traffic and rollout have their own files.

use std::sync::Arc;
use std::time::Duration;

use super::{CommandSpec, DockerSpec, Probe, ProcessSpec, Rollout, Traffic};
use crate::config::{Receiver, Secrets};

/// How an app's versions run (used by rollouts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DriverKind {
    /// Docker containers.
    Docker,
    /// Supervised processes.
    #[default]
    Process,
    /// User commands.
    Command,
}

/// How a rollout replaces instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Batch by batch.
    #[default]
    Rolling,
    /// New set beside the old, switch at once.
    BlueGreen,
    /// Traffic share in steps.
    Canary,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: &'static [Strategy] =
        &[Strategy::Rolling, Strategy::BlueGreen, Strategy::Canary];

    /// `rolling`, `blue-green` or `canary`: as written in the config and
    /// stored with a deployment.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen => "blue-green",
            Strategy::Canary => "canary",
        }
    }

    /// Parses a stored name; `None` when it is not known.
    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// `[[app]]`.
#[derive(Clone, Debug, Default)]
pub struct App {
    /// Unique name.
    pub name: String,
    /// How versions run.
    pub driver: DriverKind,
    /// How rollouts proceed.
    pub strategy: Strategy,
    /// A protected app's destructive actions (deploy, rollback, abort,
    /// fire) are confirmed by typing its name: in the console's question,
    /// at the CLI's prompt, or with `--yes --confirm-app NAME`.
    pub protected: bool,
    /// `[[app.instance]]`.
    pub instances: Vec<Instance>,
    /// `[[app.probe]]`.
    pub probes: Vec<Probe>,
    /// `[app.health]`.
    pub health: Health,
    /// `[app.docker]`: required by `driver = "docker"` to deploy.
    pub docker: Option<DockerSpec>,
    /// `[app.process]`: required by `driver = "process"` to deploy.
    pub process: Option<ProcessSpec>,
    /// `[app.command]`: required by `driver = "command"` to deploy.
    pub command: Option<CommandSpec>,
    /// `[app.traffic]` (default: none).
    pub traffic: Traffic,
    /// `[app.rollout]`.
    pub rollout: Rollout,
    /// Every value `${NAME}` put into the config (anywhere in the file):
    /// drivers keep them out of what they store and log.
    pub secrets: Secrets,
    /// The `[[notify]]` receivers told about this app, in file order.
    pub notify: Vec<Arc<Receiver>>,
}

impl App {
    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The probes whose `no_data` results go uncounted (`on_no_data =
    /// "skip"`), by name.
    pub fn uncounted_probes(&self) -> Vec<String> {
        (self.probes.iter())
            .filter(|p| p.skips_no_data())
            .map(|p| p.name.clone())
            .collect()
    }
}

/// `[[app.instance]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Unique within the app.
    pub name: String,
    /// Name of the host it runs on (validated to exist).
    pub host: String,
    /// The port it serves on.
    pub port: u16,
    /// The idle port used by blue-green and canary.
    pub alt_port: Option<u16>,
}

/// Combine probes of an instance: all must pass, or any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Require {
    /// Every probe must be healthy.
    All,
    /// One healthy probe is enough.
    Any,
}

/// `[app.health]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    /// Time between the starts of two runs of one probe.
    pub interval: Duration,
    /// After an instance is (re)started, failures within this long do not count.
    pub initial_delay: Duration,
    /// Consecutive passes that make an instance healthy.
    pub success_threshold: u32,
    /// Consecutive failures that make an instance unhealthy.
    pub failure_threshold: u32,
    /// Failures of one probe on one instance, in a row or not, that fail a
    /// rollout gate's window; `None`: `failure_threshold`. Read it with
    /// [`Health::failure_budget`].
    pub max_failures: Option<u32>,
    /// How probes combine.
    pub require: Require,
    /// How long a new instance has to become healthy during a rollout.
    pub deadline: Duration,
    /// How long gating goes on after the last batch.
    pub monitor: Duration,
    /// How long an app with an open incident must stay healthy for the
    /// incident to be resolved.
    pub resolve_after: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            interval: Duration::from_secs(10),
            initial_delay: Duration::ZERO,
            success_threshold: 1,
            failure_threshold: 3,
            max_failures: None,
            require: Require::All,
            deadline: Duration::from_secs(120),
            monitor: Duration::from_secs(300),
            resolve_after: Duration::from_secs(60),
        }
    }
}

impl Health {
    /// `max_failures`, or `failure_threshold` when it is not set; at least 1.
    pub fn failure_budget(&self) -> u32 {
        self.max_failures.unwrap_or(self.failure_threshold).max(1)
    }
}
