//! Commands on this machine. (stub, replaced by the exec work)
use std::time::Duration;

use super::{ExecError, Output};

/// Runs commands on this machine with `sh -c`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Local {
    /// Runs `script`; kills it after `timeout`.
    pub async fn run(&self, _script: &str, timeout: Duration) -> Result<Output, ExecError> {
        Err(ExecError::Timeout(timeout))
    }
}
