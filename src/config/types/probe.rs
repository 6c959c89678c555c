//! `[[app.probe]]`: the probe types (http, tcp, command, docker,
//! prometheus) and what each checks.

use std::time::Duration;

use crate::condition::Condition;

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
