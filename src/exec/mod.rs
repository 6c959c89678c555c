//! Running shell commands on a host: on this machine, or over SSH with one
//! multiplexed master connection per host. Callers hand in a finished shell
//! command line (built with [`crate::shell::render`], which quotes every value) and
//! get back its exit code and capped output. A host key that ssh refuses
//! is read into what changed and what to do ([`host_key`]).

pub mod host_key;
pub mod local;
pub mod ssh;

/// Shell templates with quoting, at their old place (a leaf of their own:
/// [`crate::shell`]).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Host;

/// At most this many bytes of stdout (and of stderr) are kept.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// What a finished command left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output, lossily decoded, capped at [`MAX_OUTPUT`].
    pub stdout: String,
    /// Standard error, lossily decoded, capped at [`MAX_OUTPUT`].
    pub stderr: String,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
}

/// Why a command produced no [`Output`].
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// It ran longer than its timeout and was killed.
    #[error("command timed out after {0:?} and was killed")]
    Timeout(Duration),
    /// The SSH connection could not be made.
    #[error("ssh to {host}: {message}")]
    Connect {
        /// Host name from the config.
        host: String,
        /// What ssh said.
        message: String,
    },
    /// The host key is not known or has changed: said in one line, ssh's
    /// own banner left out (it goes to the log).
    #[error("ssh to {host}: {refusal}")]
    HostKey {
        /// Host name from the config.
        host: String,
        /// What ssh refused, and what the host offers (boxed: it is the
        /// largest error by far).
        refusal: Box<host_key::HostKeyRefusal>,
    },
    /// The command could not be started.
    #[error("could not start command: {0}")]
    Spawn(String),
}

/// Runs commands on one host.
#[derive(Clone, Debug)]
pub enum Executor {
    /// On this machine.
    Local(local::Local),
    /// On a remote host over SSH.
    Ssh(Arc<ssh::SshHost>),
}

impl Executor {
    /// Builds the executor a host's config asks for. Connects lazily.
    pub fn for_host(host: &Host) -> Executor {
        match &host.ssh {
            None => Executor::Local(local::Local),
            Some(ssh) => Executor::Ssh(Arc::new(ssh::SshHost::new(
                &host.name,
                &host.address,
                ssh.clone(),
            ))),
        }
    }

    /// Runs `script` with `sh -c`; kills it (remotely too) after `timeout`.
    pub async fn run(&self, script: &str, timeout: Duration) -> Result<Output, ExecError> {
        match self {
            Executor::Local(l) => l.run(script, timeout).await,
            Executor::Ssh(s) => s.run(script, timeout).await,
        }
    }
}

/// One executor per configured host, shared by all probes and drivers.
#[derive(Clone, Debug, Default)]
pub struct Executors {
    by_host: HashMap<String, Executor>,
}

impl Executors {
    /// One executor for each host.
    pub fn new(hosts: &[Host]) -> Executors {
        Executors {
            by_host: hosts
                .iter()
                .map(|h| (h.name.clone(), Executor::for_host(h)))
                .collect(),
        }
    }

    /// The executor of the host named `host` (validated to exist at load).
    pub fn get(&self, host: &str) -> Option<&Executor> {
        self.by_host.get(host)
    }

    /// Closes every SSH master connection.
    pub async fn close(&self) {
        for e in self.by_host.values() {
            if let Executor::Ssh(s) = e {
                s.close().await;
            }
        }
    }
}
