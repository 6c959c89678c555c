//! Traffic through nginx. (being written)

use super::{Routing, TrafficError};
use crate::config::{Fleet, NginxTraffic};
use crate::exec::Executors;

/// Moves an app's traffic through nginx.
#[derive(Clone, Debug)]
pub struct Nginx {
    spec: NginxTraffic,
}

impl Nginx {
    /// A mover for `spec`.
    pub fn new(spec: NginxTraffic) -> Nginx {
        Nginx { spec }
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
            what: "nginx".into(),
            detail: "not available yet".into(),
        })
    }
}
