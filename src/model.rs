//! Domain types shared by every module: probe results, error kinds and
//! verdicts. Nothing here does I/O.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a probe failed. A fixed set, stored in history and shown to users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No answer within the probe's timeout.
    Timeout,
    /// The connection was refused or reset.
    Refused,
    /// The name did not resolve.
    Dns,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The HTTP status was not one of `expect_status`.
    Status,
    /// The body did not contain `body_contains` (or a TCP `expect`).
    Body,
    /// A condition evaluated to false.
    Condition,
    /// A command exited with an unexpected code.
    ExitCode,
    /// The container is not running.
    NotRunning,
    /// The container's own health check says unhealthy (or still starting).
    Unhealthy,
    /// The probe could not be run at all (spawn, SSH, docker CLI).
    Exec,
}

impl ErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Timeout,
        ErrorKind::Refused,
        ErrorKind::Dns,
        ErrorKind::Tls,
        ErrorKind::Status,
        ErrorKind::Body,
        ErrorKind::Condition,
        ErrorKind::ExitCode,
        ErrorKind::NotRunning,
        ErrorKind::Unhealthy,
        ErrorKind::Exec,
    ];

    /// The stored and printed name, e.g. `exit_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Condition => "condition",
            ErrorKind::ExitCode => "exit_code",
            ErrorKind::NotRunning => "not_running",
            ErrorKind::Unhealthy => "unhealthy",
            ErrorKind::Exec => "exec",
        }
    }

    /// Parses a stored name back.
    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one probe of one instance of one app.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeKey {
    /// App name.
    pub app: Arc<str>,
    /// Instance name.
    pub instance: Arc<str>,
    /// Probe name.
    pub probe: Arc<str>,
}

/// The outcome of running one probe once.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeResult {
    /// Which probe.
    pub key: ProbeKey,
    /// When the probe started, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// HTTP status or exit code, when there is one.
    pub code: Option<i64>,
    /// Why it failed; `None` when `ok`.
    pub error_kind: Option<ErrorKind>,
    /// A short human-readable line: what was seen.
    pub message: String,
}

impl ProbeResult {
    /// The JSON shape printed by `rollguard probe --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "app": &*self.key.app,
            "instance": &*self.key.instance,
            "probe": &*self.key.probe,
            "ok": self.ok,
            "latency_ms": (self.latency_ms * 10.0).round() / 10.0,
            "code": self.code,
            "error_kind": self.error_kind.map(ErrorKind::as_str),
            "message": self.message,
        })
    }
}

/// What health says of one instance (or of one probe on one instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Not enough results yet to say.
    Unknown,
    /// Passed `success_threshold` times in a row.
    Healthy,
    /// Failed `failure_threshold` times in a row.
    Unhealthy,
}

impl Verdict {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Healthy => "healthy",
            Verdict::Unhealthy => "unhealthy",
        }
    }
}

/// What health says of a whole app, from its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    /// No instance has a verdict yet.
    Unknown,
    /// Every instance is healthy.
    Healthy,
    /// Some instances are healthy, some are not.
    Degraded,
    /// No instance is healthy.
    Down,
}

impl AppStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Unknown => "unknown",
            AppStatus::Healthy => "healthy",
            AppStatus::Degraded => "degraded",
            AppStatus::Down => "down",
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
