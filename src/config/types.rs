//! The validated fleet: what the rest of rollguard reads. Built only by
//! [`super::load`], so every value here has passed validation.

use std::path::PathBuf;
use std::time::Duration;

use crate::probe::condition::Condition;

/// The whole configuration, validated and immutable.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// The file it was read from.
    pub source: PathBuf,
    /// `[console]`.
    pub console: Console,
    /// `[[host]]`, in file order.
    pub hosts: Vec<Host>,
    /// `[[app]]`, in file order.
    pub apps: Vec<App>,
}

impl Fleet {
    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The app named `name`.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// Total number of (instance, probe) pairs: how many probe tasks run.
    pub fn probe_count(&self) -> usize {
        self.apps
            .iter()
            .map(|a| a.instances.len() * a.probes.len())
            .sum()
    }
}

/// `[console]`: how the console looks and how long history is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Console {
    /// How often views that are not pushed (summaries) are recomputed.
    pub refresh: Duration,
    /// Theme name: a file `themes/NAME.toml` or a built-in.
    pub theme: String,
    /// Probe results older than this are pruned from history.
    pub retention: Duration,
}

impl Default for Console {
    fn default() -> Self {
        Console {
            refresh: Duration::from_secs(1),
            theme: "default".into(),
            retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// `[[host]]`: a machine that instances run on.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// Unique name, referenced by instances.
    pub name: String,
    /// Where probes connect (IP or DNS name).
    pub address: String,
    /// How commands reach it; `None` runs them on this machine.
    pub ssh: Option<Ssh>,
}

/// How strictly an SSH host key is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Only keys already in known_hosts are accepted (the default).
    Strict,
    /// Unknown hosts are added on first contact; changed keys are refused.
    AcceptNew,
    /// No check at all. Only ever set explicitly per host.
    Off,
}

/// `ssh = { ... }` of a host.
#[derive(Clone, Debug, PartialEq)]
pub struct Ssh {
    /// Remote user; `None` uses ssh's default.
    pub user: Option<String>,
    /// Remote port.
    pub port: u16,
    /// Private key file, `~` expanded.
    pub identity: Option<PathBuf>,
    /// known_hosts file to check against; `None` uses ssh's default.
    pub known_hosts: Option<PathBuf>,
    /// Host key policy.
    pub host_key_check: HostKeyCheck,
    /// How long to wait for the connection.
    pub connect_timeout: Duration,
}

/// How an app's versions run (used by rollouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverKind {
    /// Docker containers.
    Docker,
    /// Supervised processes.
    Process,
    /// User commands.
    Command,
}

/// How a rollout replaces instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Batch by batch.
    Rolling,
    /// New set beside the old, switch at once.
    BlueGreen,
    /// Traffic share in steps.
    Canary,
}

/// `[[app]]`.
#[derive(Clone, Debug)]
pub struct App {
    /// Unique name.
    pub name: String,
    /// How versions run.
    pub driver: DriverKind,
    /// How rollouts proceed.
    pub strategy: Strategy,
    /// Protected apps ask for stronger confirmation.
    pub protected: bool,
    /// `[[app.instance]]`.
    pub instances: Vec<Instance>,
    /// `[[app.probe]]`.
    pub probes: Vec<Probe>,
    /// `[app.health]`.
    pub health: Health,
}

impl App {
    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
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
    /// How probes combine.
    pub require: Require,
    /// How long a new instance has to become healthy during a rollout.
    pub deadline: Duration,
    /// How long gating goes on after the last batch.
    pub monitor: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            interval: Duration::from_secs(10),
            initial_delay: Duration::ZERO,
            success_threshold: 1,
            failure_threshold: 3,
            require: Require::All,
            deadline: Duration::from_secs(120),
            monitor: Duration::from_secs(300),
        }
    }
}

/// `[[app.probe]]`.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Unique within the app.
    pub name: String,
    /// A run that takes longer fails with `timeout`.
    pub timeout: Duration,
    /// What it checks.
    pub kind: ProbeKind,
}

/// The four probe types.
#[derive(Clone, Debug)]
pub enum ProbeKind {
    /// `type = "http"`.
    Http(HttpProbe),
    /// `type = "tcp"`.
    Tcp(TcpProbe),
    /// `type = "command"`.
    Command(CommandProbe),
    /// `type = "docker"`.
    Docker(DockerProbe),
}

impl ProbeKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProbeKind::Http(_) => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Command(_) => "command",
            ProbeKind::Docker(_) => "docker",
        }
    }
}

/// Where an HTTP probe goes.
#[derive(Clone, Debug, PartialEq)]
pub enum HttpTarget {
    /// A path on the instance: `{scheme}://{host address}:{port}{path}`.
    Path {
        /// `http` or `https`.
        scheme: String,
        /// Starts with `/`.
        path: String,
    },
    /// A full URL template; `{host}`, `{port}`, `{app}`, `{instance}` are filled in.
    Url(String),
}

/// An inclusive range of HTTP status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted.
    pub lo: u16,
    /// Highest accepted.
    pub hi: u16,
}

impl StatusRange {
    /// Whether `code` is inside.
    pub fn contains(&self, code: u16) -> bool {
        (self.lo..=self.hi).contains(&code)
    }
}

/// `type = "http"`.
#[derive(Clone, Debug)]
pub struct HttpProbe {
    /// Request method, upper case.
    pub method: String,
    /// Where to send it.
    pub target: HttpTarget,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Accepted statuses (default 200-399).
    pub expect_status: Vec<StatusRange>,
    /// The body must contain this.
    pub body_contains: Option<String>,
    /// Conditions, parsed at load.
    pub conditions: Vec<Condition>,
    /// Accept any TLS certificate (explicit per probe).
    pub insecure_tls: bool,
}

/// `type = "tcp"`.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpProbe {
    /// Port to connect to; `None` means the instance's port.
    pub port: Option<u16>,
    /// Bytes to send after connecting.
    pub send: Option<String>,
    /// The reply must contain this.
    pub expect: Option<String>,
}

/// `type = "command"`.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandProbe {
    /// Shell template; `{app} {instance} {host} {port}` are filled in quoted.
    pub command: String,
    /// Exit code that passes.
    pub expect_exit: i32,
    /// Output (stdout and stderr) must contain this.
    pub output_contains: Option<String>,
}

/// `type = "docker"`.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerProbe {
    /// Container name template (default `{app}-{instance}`).
    pub container: String,
}
