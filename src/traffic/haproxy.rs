//! Traffic through haproxy. (being written)

use super::{Routing, TrafficError};
use crate::config::{Fleet, HaproxyTraffic};
use crate::exec::Executors;

/// Moves an app's traffic through haproxy.
#[derive(Clone, Debug)]
pub struct Haproxy {
    spec: HaproxyTraffic,
}

impl Haproxy {
    /// A mover for `spec`.
    pub fn new(spec: HaproxyTraffic) -> Haproxy {
        Haproxy { spec }
    }

    /// See [`super::Traffic::apply`].
    pub async fn apply(
        &self,
        _fleet: &Fleet,
        _execs: &Executors,
        _from: &Routing,
        _to: &Routing,
    ) -> Result<(), TrafficError> {
        let _ = &self.spec;
        Err(TrafficError::Failed {
            what: "haproxy".into(),
            detail: "not available yet".into(),
        })
    }
}
