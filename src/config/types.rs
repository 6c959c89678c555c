//! The validated fleet: what the rest of rollguard reads. Built only by
//! [`super::load`], so every value here has passed validation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Receiver, Secrets};
use crate::condition::Condition;
use crate::error::{Code, UserError};
pub use crate::keys::KeyRemap;

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
    /// `[metrics]`: `None` when absent (nothing is served).
    pub metrics: Option<Metrics>,
}

/// `[metrics]`: the address where the prober's lease holder serves
/// Prometheus' `GET /metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// `listen`: an IP address and port.
    pub listen: std::net::SocketAddr,
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

    /// The index of the app named `name`, or `E_USAGE` naming the apps
    /// there are.
    pub fn app_index(&self, name: &str) -> Result<usize, UserError> {
        self.apps
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| {
                let names: Vec<_> = self.apps.iter().map(|a| a.name.as_str()).collect();
                UserError::new(Code::Usage, format!("no app named \"{name}\""))
                    .hint(format!("apps: {}", names.join(", ")))
            })
    }

    /// Every `[[notify]]` receiver, in file order. (A receiver is kept by
    /// each app it is told about, in [`App::notify`].)
    pub fn receivers(&self) -> Vec<Arc<Receiver>> {
        let mut all: Vec<Arc<Receiver>> = Vec::new();
        for r in self.apps.iter().flat_map(|a| &a.notify) {
            if !all.iter().any(|x| x.name == r.name) {
                all.push(r.clone());
            }
        }
        all.sort_by_key(|r| r.order);
        all
    }

    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<Arc<Receiver>> {
        self.apps
            .iter()
            .flat_map(|a| &a.notify)
            .find(|r| r.name == name)
            .cloned()
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
    /// The console only watches: no key or `:` command acts (as with
    /// `--read-only`).
    pub read_only: bool,
    /// `[console.keys]`: the keys given to actions, in file order (checked
    /// by [`remapped`](crate::keys::remapped) when the file loads).
    pub keys: Vec<KeyRemap>,
    /// The console takes the mouse: a click selects, the wheel scrolls (as
    /// `--mouse`).
    pub mouse: bool,
}

impl Default for Console {
    fn default() -> Self {
        Console {
            refresh: Duration::from_secs(1),
            theme: "default".into(),
            retention: Duration::from_secs(30 * 86_400),
            read_only: false,
            keys: Vec::new(),
            mouse: false,
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
    /// `type = "prometheus"`.
    Prometheus(PrometheusProbe),
}

impl ProbeKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProbeKind::Http(_) => "http",
            ProbeKind::Tcp(_) => "tcp",
            ProbeKind::Command(_) => "command",
            ProbeKind::Docker(_) => "docker",
            ProbeKind::Prometheus(_) => "prometheus",
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

/// `type = "prometheus"`: a PromQL query judged by its conditions.
#[derive(Clone, Debug)]
pub struct PrometheusProbe {
    /// The Prometheus server, e.g. `http://prometheus:9090`.
    pub url: String,
    /// The query; `{app}` `{instance}` `{host}` `{port}` stand inside its
    /// string literals (see [`crate::promql::fill`]).
    pub query: String,
    /// Conditions on `[VALUE]` (and `[RESPONSE_TIME]`), or, for a
    /// comparison, on `[CANARY]` and `[BASELINE]`; at least one.
    pub conditions: Vec<Condition>,
    /// What an answer without a value means.
    pub on_no_data: NoData,
    /// How to authenticate.
    pub auth: PromAuth,
    /// Accept any TLS certificate (explicit per probe).
    pub insecure_tls: bool,
}

/// What a Prometheus probe makes of an answer without a value (no
/// series, or `NaN`): `on_no_data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoData {
    /// A failure of kind `no_data` (the default).
    #[default]
    Fail,
    /// A pass.
    Pass,
    /// Recorded as `no_data`, but counted neither way by health or a gate.
    Skip,
}

impl NoData {
    /// The name written in `on_no_data`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoData::Fail => "fail",
            NoData::Pass => "pass",
            NoData::Skip => "skip",
        }
    }
}

/// How a Prometheus probe authenticates. Its `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum PromAuth {
    /// None.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN` (`bearer_token`).
    Bearer(String),
    /// Basic auth (`username`, `password`).
    Basic {
        /// The user name.
        username: String,
        /// The password (a secret).
        password: String,
    },
}

impl std::fmt::Debug for PromAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PromAuth::None => "None",
            PromAuth::Bearer(_) => "Bearer(***)",
            PromAuth::Basic { .. } => "Basic(***)",
        })
    }
}

impl App {
    /// The probes whose `no_data` results go uncounted (`on_no_data =
    /// "skip"`), by name.
    pub fn uncounted_probes(&self) -> Vec<String> {
        (self.probes.iter())
            .filter(|p| p.skips_no_data())
            .map(|p| p.name.clone())
            .collect()
    }
}

impl Probe {
    /// Whether its `no_data` results go uncounted, by health and by a gate
    /// (`on_no_data = "skip"`).
    pub fn skips_no_data(&self) -> bool {
        matches!(&self.kind, ProbeKind::Prometheus(p) if p.on_no_data == NoData::Skip)
    }

    /// Whether it compares a rollout's new side with its old one (a
    /// `prometheus` probe whose conditions read `[CANARY]` or
    /// `[BASELINE]`). Such a probe judges no instance on its own: only a
    /// rollout's gates run it, while an old side serves, and health, the
    /// prober and `rollguard probe` leave it out.
    pub fn compares(&self) -> bool {
        matches!(&self.kind, ProbeKind::Prometheus(p) if p.compares())
    }
}

impl PrometheusProbe {
    /// Whether a condition reads `[CANARY]` or `[BASELINE]`.
    pub fn compares(&self) -> bool {
        self.conditions.iter().any(|c| {
            c.placeholders().iter().any(|p| {
                matches!(
                    p,
                    crate::condition::Placeholder::Canary | crate::condition::Placeholder::Baseline
                )
            })
        })
    }
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

/// Placeholders that driver and traffic templates may use.
pub const DRIVER_PLACEHOLDERS: &[&str] = &["app", "instance", "host", "port", "version"];

/// `[app.docker]`: the version is the image tag.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerSpec {
    /// Image repository, e.g. `registry.local/checkout`; runs `IMAGE:VERSION`.
    pub image: String,
    /// Container name template (default `{app}-{instance}`).
    pub container: String,
    /// The port inside the container that the instance's port maps to
    /// (default: the same as the instance's port).
    pub port: Option<u16>,
    /// Extra `docker run` arguments, each one word (templated, quoted).
    pub args: Vec<String>,
    /// How many replaced containers are kept stopped for rollback.
    pub keep: u32,
    /// `docker stop --time`.
    pub stop_timeout: Duration,
}

/// `[app.process]`: rollguard starts and supervises the process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSpec {
    /// Shell template of the command that runs one instance.
    pub run: String,
    /// Shell template that exits 0 when a version's release is present
    /// (default: the first word of `run` is executable).
    pub present: Option<String>,
    /// SIGTERM, then SIGKILL after this long.
    pub grace: Duration,
    /// Folder on the host for pidfiles and logs.
    pub run_dir: String,
}

/// `[app.command]`: user commands do the work.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    /// Starts `{version}` of an instance.
    pub start: String,
    /// Stops an instance.
    pub stop: String,
    /// Prints the version an instance runs (optional).
    pub current: Option<String>,
    /// Exits 0 when `{version}` can be started (optional).
    pub present: Option<String>,
}

/// How traffic reaches instances, and how it is moved.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Traffic {
    /// Nothing to move.
    #[default]
    None,
    /// An nginx upstream file, validated and reloaded.
    Nginx(NginxTraffic),
    /// HAProxy's runtime API.
    Haproxy(HaproxyTraffic),
    /// User hooks.
    Command(CommandTraffic),
}

/// `type = "nginx"`.
#[derive(Clone, Debug, PartialEq)]
pub struct NginxTraffic {
    /// The host nginx runs on (default: this machine).
    pub host: String,
    /// The file holding the upstream's `server` lines.
    pub upstream_file: String,
    /// Checks the config (default `nginx -t`).
    pub validate: String,
    /// Reloads gracefully (default `nginx -s reload`).
    pub reload: String,
}

/// `type = "haproxy"`.
#[derive(Clone, Debug, PartialEq)]
pub struct HaproxyTraffic {
    /// The host HAProxy runs on (default: this machine).
    pub host: String,
    /// The admin socket.
    pub socket: String,
    /// The backend whose servers are named after the instances.
    pub backend: String,
    /// How long a drain waits for sessions to end.
    pub drain_timeout: Duration,
}

/// `type = "command"`.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandTraffic {
    /// The host the hooks run on (default: this machine).
    pub host: String,
    /// Takes an instance out of traffic.
    pub drain: String,
    /// Puts it back.
    pub undrain: String,
    /// Sets its share: `{weight}` is 0-100 (optional; needed by canary).
    pub weight: Option<String>,
}

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
