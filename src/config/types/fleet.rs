//! The fleet as a whole: its apps and hosts, `[console]`, `[metrics]`, `[store]`,
//! and how commands reach a host (`ssh`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{App, Instance, StoreUrl};
use crate::config::Receiver;
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
    /// `[store] url`: where the history is; `None` when absent (then
    /// `$ROLLGUARD_DB` or the default file, unless `--db` is given).
    pub store: Option<StoreUrl>,
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

    /// The host `instance` runs on. Validation refuses an instance whose
    /// host the file does not define, and a `Fleet` is only built by it,
    /// so every instance of a `Fleet` has its host.
    #[allow(
        clippy::expect_used,
        reason = "validation guarantees every instance's host exists"
    )]
    pub fn host_of(&self, instance: &Instance) -> &Host {
        self.host(&instance.host)
            .expect("validation guarantees every instance's host exists")
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
