//! Traffic through user command hooks. (being written)

use super::{Routing, TrafficError};
use crate::config::{CommandTraffic, Fleet};
use crate::exec::Executors;

/// Moves an app's traffic with `drain`, `undrain` and `weight` hooks.
#[derive(Clone, Debug)]
pub struct CommandHooks {
    spec: CommandTraffic,
}

impl CommandHooks {
    /// A mover for `spec`.
    pub fn new(spec: CommandTraffic) -> CommandHooks {
        CommandHooks { spec }
    }

    /// See [`super::Traffic::apply`].
    pub async fn apply(
        &self,
        _fleet: &Fleet,
        _execs: &Executors,
        _app: &str,
        _from: &Routing,
        _to: &Routing,
    ) -> Result<(), TrafficError> {
        let _ = &self.spec;
        Err(TrafficError::Failed {
            what: "command hooks".into(),
            detail: "not available yet".into(),
        })
    }
}
