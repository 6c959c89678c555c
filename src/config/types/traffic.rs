//! `[app.traffic]`: how traffic reaches instances, and how it is moved
//! (nginx, HAProxy, command hooks).

use std::time::Duration;

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
