//! The command driver. (being written)

use super::{DriverError, Slot, Snapshot};
use crate::config::CommandSpec;
use crate::exec::Executor;
use crate::model::Version;

/// The command driver of one app.
#[derive(Clone, Debug)]
pub struct Command {
    spec: CommandSpec,
}

impl Command {
    /// A driver for `spec`.
    pub fn new(spec: CommandSpec) -> Command {
        Command { spec }
    }

    fn todo(&self) -> DriverError {
        let _ = &self.spec;
        DriverError::Config("the command driver is not available yet".into())
    }

    /// See [`super::Driver::current`].
    pub async fn current(
        &self,
        _exec: &Executor,
        _slot: Slot<'_>,
    ) -> Result<Option<Version>, DriverError> {
        Err(self.todo())
    }

    /// See [`super::Driver::present`].
    pub async fn present(
        &self,
        _exec: &Executor,
        _slot: Slot<'_>,
        _version: &Version,
    ) -> Result<bool, DriverError> {
        Err(self.todo())
    }

    /// See [`super::Driver::snapshot`].
    pub async fn snapshot(
        &self,
        _exec: &Executor,
        _slot: Slot<'_>,
    ) -> Result<Option<Snapshot>, DriverError> {
        Err(self.todo())
    }

    /// See [`super::Driver::start`].
    pub async fn start(
        &self,
        _exec: &Executor,
        _slot: Slot<'_>,
        _version: &Version,
    ) -> Result<(), DriverError> {
        Err(self.todo())
    }

    /// See [`super::Driver::stop`].
    pub async fn stop(&self, _exec: &Executor, _slot: Slot<'_>) -> Result<(), DriverError> {
        Err(self.todo())
    }

    /// See [`super::Driver::restore`].
    pub async fn restore(
        &self,
        _exec: &Executor,
        _slot: Slot<'_>,
        _snapshot: &Snapshot,
    ) -> Result<(), DriverError> {
        Err(self.todo())
    }
}
