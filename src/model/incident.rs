//! What a health incident holds: why it opened (the prober saw an instance
//! turn unhealthy, or a rollout's gate failed) and every instance and probe
//! that failed during it, each with the gate-style [`Evidence`] (the probe,
//! its thresholds, the counts and the last samples). Stored in the
//! `incidents` row and in the payloads of the incident events.

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;

/// Why an incident opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentCause {
    /// The prober saw an instance cross its `failure_threshold`.
    #[default]
    Probe,
    /// A rollout's gate failed (the incident names the deployment).
    Gate,
}

impl IncidentCause {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentCause::Probe => "probe",
            IncidentCause::Gate => "gate",
        }
    }
}

/// The evidence an incident row keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentEvidence {
    /// Why it opened.
    pub cause: IncidentCause,
    /// One entry per instance and probe that failed during it, in the
    /// order they failed first, each as seen when it first failed.
    pub failed: Vec<Evidence>,
}

impl IncidentEvidence {
    /// Adds the entries of `more` whose instance and probe are not there
    /// yet; returns those it added.
    pub fn widen(&mut self, more: &[Evidence]) -> Vec<Evidence> {
        let mut added = Vec::new();
        for e in more {
            if !self
                .failed
                .iter()
                .any(|f| f.instance == e.instance && f.probe == e.probe)
            {
                self.failed.push(e.clone());
                added.push(e.clone());
            }
        }
        added
    }

    /// The instances named, each once, in order.
    pub fn instances(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.failed {
            if !out.contains(&e.instance) {
                out.push(e.instance.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(instance: &str, probe: &str) -> Evidence {
        Evidence {
            instance: instance.into(),
            probe: probe.into(),
            ..Evidence::default()
        }
    }

    #[test]
    fn widening_adds_each_instance_and_probe_once() {
        let mut i = IncidentEvidence {
            cause: IncidentCause::Probe,
            failed: vec![ev("web-1", "health")],
        };
        let added = i.widen(&[
            ev("web-1", "health"),
            ev("web-2", "health"),
            ev("web-1", "tcp"),
        ]);
        assert_eq!(added.len(), 2);
        assert!(i.widen(&[ev("web-2", "health")]).is_empty());
        assert_eq!(i.instances(), ["web-1", "web-2"]);
    }
}
