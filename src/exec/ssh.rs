//! Commands over SSH. (stub, replaced by the exec work)
use std::time::Duration;

use super::{ExecError, Output};
use crate::config::Ssh;

/// One remote host and its master connection.
#[derive(Debug)]
pub struct SshHost {
    name: String,
}

impl SshHost {
    /// Describes a host; connects on first use.
    pub fn new(name: &str, _address: &str, _ssh: Ssh) -> SshHost {
        SshHost { name: name.into() }
    }
    /// Runs `script` remotely.
    pub async fn run(&self, _script: &str, _timeout: Duration) -> Result<Output, ExecError> {
        Err(ExecError::Spawn(self.name.clone()))
    }
    /// Closes the master connection.
    pub async fn close(&self) {}
}
