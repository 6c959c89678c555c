//! Domain types shared by every module: probe results, error kinds and
//! verdicts here, the words of a rollout in [`rollout`], a failure budget
//! in [`budget`], what a gate saw in [`evidence`], the topics a receiver
//! listens to in [`topic`]. Nothing here does I/O.

pub mod budget;
pub mod event;
pub mod evidence;
pub mod incident;
pub mod rollout;
pub mod topic;

pub use budget::FailureBudget;
pub use rollout::{
    BatchState, ChangeAction, ChangeState, DeploymentKind, DeploymentState, Outcome, Side, Trigger,
    Verb,
};

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
    /// The answer was not valid HTTP, or broke off after its head.
    Protocol,
    /// A Prometheus query gave no value (no series, or `NaN`).
    NoData,
    /// ssh refused the host's key: it changed, or none is known.
    HostKey,
}

impl ErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: [ErrorKind; 14] = [
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
        ErrorKind::Protocol,
        ErrorKind::NoData,
        ErrorKind::HostKey,
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
            ErrorKind::Protocol => "protocol",
            ErrorKind::NoData => "no_data",
            ErrorKind::HostKey => "host_key",
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

    /// Parses a stored name; `None` when it is not known.
    pub fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Unknown, Verdict::Healthy, Verdict::Unhealthy]
            .into_iter()
            .find(|v| v.as_str() == s)
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

/// A release version as operators type it: an image tag, a release folder
/// name. Validated so it can never carry shell syntax or a path:
/// `^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Version(String);

/// Why a version string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid version {shown}: a version starts with a letter or digit and has at most 128 of A-Z a-z 0-9 . _ + -"
)]
pub struct InvalidVersion {
    /// The refused text, quoted and shortened for display.
    pub shown: String,
}

impl Version {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Version, InvalidVersion> {
        let mut chars = s.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.len() <= 128
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
        if ok {
            Ok(Version(s.to_string()))
        } else {
            let short: String = s.chars().take(40).collect();
            Err(InvalidVersion {
                shown: format!("{short:?}"),
            })
        }
    }

    /// The version text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The leading major number, if the version looks like `v1.2.3` or
    /// `12.0` (a number, a dot, more): used to warn about major-version
    /// jumps. Release names such as `v1` or `42` have none.
    pub fn major(&self) -> Option<u64> {
        let s = self.0.strip_prefix(['v', 'V']).unwrap_or(&self.0);
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        if !s[digits.len()..].starts_with('.') {
            return None;
        }
        digits.parse().ok()
    }

    /// Whether both have a major number and they differ.
    pub fn major_differs(&self, other: &Version) -> bool {
        matches!((self.major(), other.major()), (Some(a), Some(b)) if a != b)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "v1",
            "1.2.3",
            "2024-01-01_rc+build.7",
            "a",
            &"x".repeat(128),
        ] {
            assert!(Version::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-v1",
            ".hidden",
            "v1;rm -rf /",
            "$(touch x)",
            "v1 v2",
            "../etc",
            "v1/x",
            "`id`",
            "v1\n",
            &"x".repeat(129),
            "é1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Version::parse("v12.1").unwrap().major(), Some(12));
        // Release names without a dot are not semantic versions: no major.
        assert_eq!(Version::parse("3").unwrap().major(), None);
        assert_eq!(Version::parse("v2").unwrap().major(), None);
        assert_eq!(Version::parse("1.4").unwrap().major(), Some(1));
        let (v1, v2) = (Version::parse("v1").unwrap(), Version::parse("v2").unwrap());
        assert!(!v2.major_differs(&v1));
        let (a, b) = (
            Version::parse("v1.9.0").unwrap(),
            Version::parse("v2.0.0").unwrap(),
        );
        assert!(b.major_differs(&a));
        assert_eq!(Version::parse("main").unwrap().major(), None);
    }
}
