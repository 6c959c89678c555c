//! Moving traffic between instances: nginx (rewrite the upstream file,
//! validate, reload), HAProxy (runtime API on the admin socket), user
//! command hooks, or nothing.
//!
//! The engine says what it wants, not how: a [`Routing`] lists every server
//! of the app (each instance's main and, where used, alt port) with a share
//! of traffic or `Down`. [`Traffic::apply`] moves from the routing in force
//! to the wanted one, draining servers that go down before it returns (so
//! the caller may stop them), and leaves the old routing in place when it
//! fails.

pub mod command;
pub mod haproxy;
pub mod nginx;

use serde::{Deserialize, Serialize};

use crate::config::{Fleet, Traffic as TrafficConfig};
use crate::exec::{ExecError, Executors};
use crate::model::Side;

/// One server of an app's upstream/backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Instance name; HAProxy servers are named `{instance}` and `{instance}-alt`.
    pub instance: String,
    /// Main or alt port.
    pub side: Side,
    /// Host address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Share of traffic: `Some(w)` with `w` 1..=100 (relative weight), or
    /// `None` when drained (nginx `down`, HAProxy `drain` then `maint`).
    pub weight: Option<u32>,
}

impl Server {
    /// The HAProxy server name: `{instance}` or `{instance}-alt`.
    pub fn haproxy_name(&self) -> String {
        match self.side {
            Side::Main => self.instance.clone(),
            Side::Alt => format!("{}-alt", self.instance),
        }
    }
}

/// Every server of one app and its share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// In config order: main sides, then alt sides.
    pub servers: Vec<Server>,
}

impl Routing {
    /// The server of `instance` on `side`.
    pub fn get(&self, instance: &str, side: Side) -> Option<&Server> {
        self.servers
            .iter()
            .find(|s| s.instance == instance && s.side == side)
    }
}

/// Why traffic could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The command could not be run (SSH down, timeout).
    #[error("traffic: {0}")]
    Exec(#[from] ExecError),
    /// nginx refused the new upstream file; the previous file was put back.
    #[error("nginx refused the new upstream file (the previous one was restored): {0}")]
    Invalid(String),
    /// A command or runtime API call failed.
    #[error("traffic: {what} failed: {detail}")]
    Failed {
        /// What was being done.
        what: String,
        /// What came back.
        detail: String,
    },
}

/// The traffic mover of one app.
#[derive(Clone, Debug)]
pub enum Traffic {
    /// Nothing to move.
    None,
    /// nginx.
    Nginx(nginx::Nginx),
    /// HAProxy.
    Haproxy(haproxy::Haproxy),
    /// Hooks.
    Command(command::CommandHooks),
}

impl Traffic {
    /// The mover for an app's `[app.traffic]`.
    pub fn new(config: &TrafficConfig) -> Traffic {
        match config {
            TrafficConfig::None => Traffic::None,
            TrafficConfig::Nginx(n) => Traffic::Nginx(nginx::Nginx::new(n.clone())),
            TrafficConfig::Haproxy(h) => Traffic::Haproxy(haproxy::Haproxy::new(h.clone())),
            TrafficConfig::Command(c) => Traffic::Command(command::CommandHooks::new(c.clone())),
        }
    }

    /// Whether traffic is really moved (not `None`).
    pub fn moves_traffic(&self) -> bool {
        !matches!(self, Traffic::None)
    }

    /// Moves from `from` (the routing in force, as last applied) to `to`.
    /// Servers that go to `None` are drained before this returns.
    pub async fn apply(
        &self,
        fleet: &Fleet,
        execs: &Executors,
        app: &str,
        from: &Routing,
        to: &Routing,
    ) -> Result<(), TrafficError> {
        let (host, what) = match self {
            Traffic::None => return Ok(()),
            Traffic::Nginx(t) => (t.host(), "nginx"),
            Traffic::Haproxy(t) => (t.host(), "haproxy"),
            Traffic::Command(t) => (t.host(), "traffic hooks"),
        };
        let exec = execs.get(host).ok_or_else(|| TrafficError::Failed {
            what: what.into(),
            detail: format!("no executor for host \"{host}\""),
        })?;
        match self {
            Traffic::None => Ok(()),
            Traffic::Nginx(t) => t.apply(fleet, exec, from, to).await,
            Traffic::Haproxy(t) => t.apply(fleet, exec, from, to).await,
            Traffic::Command(t) => t.apply(fleet, exec, app, from, to).await,
        }
    }
}
