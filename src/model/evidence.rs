//! What a health gate saw when it decided: the probe, its thresholds, the
//! counts, the rule that fired and the last samples. Stored as the payload
//! of gate events and shown in progress, reports and the console. Fields
//! added after the first release read as their default from older records.

use serde::{Deserialize, Serialize};

use crate::model::{FailureBudget, Side};

/// One probe result kept as evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it started.
    pub at_ms: i64,
    /// Passed.
    pub ok: bool,
    /// Milliseconds.
    pub latency_ms: f64,
    /// HTTP status or exit code.
    pub code: Option<i64>,
    /// Why it failed.
    pub error_kind: Option<String>,
    /// What was seen.
    pub message: String,
}

/// What made a gate decide, for the audit log and `--json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    /// The instance.
    pub instance: String,
    /// Its side.
    pub side: Side,
    /// The port probed.
    pub port: u16,
    /// The probe that decided (on a pass: the last one to pass).
    pub probe: String,
    /// Passes in a row needed.
    pub success_threshold: u32,
    /// Failures in a row that fail.
    pub failure_threshold: u32,
    /// Passes in a row seen.
    pub consecutive_ok: u32,
    /// Failures in a row seen.
    pub consecutive_fail: u32,
    /// Failures counted in this window, in a row or not.
    pub failures: u32,
    /// Failures in the window that fail (`max_failures`).
    pub max_failures: u32,
    /// The rule that failed the probe; `None` unless it failed.
    pub rule: Option<FailRule>,
    /// The failure in words, "3 failures in a row" or "2 of 2 failures in
    /// the window"; `None` unless it failed.
    pub reason: Option<String>,
    /// The newest samples of that probe, oldest first.
    pub last_samples: Vec<Sample>,
    /// A comparison's `[CANARY]`, the new side's value, when it had one;
    /// absent for other probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<f64>,
    /// A comparison's `[BASELINE]`, the old side's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The old side's instances a comparison asked (its new side's are
    /// `instance`, comma-separated); empty for other probes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline_instances: Vec<String>,
}

impl Evidence {
    /// A comparison's two values and what was asked: "canary 0.31 on web-1
    /// · baseline 0.05 on web-1, web-2, web-3"; `None` for other probes.
    pub fn comparison(&self) -> Option<String> {
        if self.baseline_instances.is_empty() {
            return None;
        }
        let value = |v: Option<f64>| v.map_or("no data".into(), crate::condition::shown);
        Some(format!(
            "canary {} on {} · baseline {} on {}",
            value(self.canary),
            self.instance,
            value(self.baseline),
            self.baseline_instances.join(", ")
        ))
    }

    /// How much of the failure budget the window spent: "1 of 3 failures".
    pub fn budget(&self) -> String {
        FailureBudget {
            failures: self.failures,
            max_failures: self.max_failures,
        }
        .to_string()
    }
}

/// Which rule failed a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailRule {
    /// `failure_threshold` failures in a row.
    Consecutive,
    /// `max_failures` failures within the window.
    Budget,
}

/// How a gate ended. Stored flat: a failure is `{"result": "failed",
/// "instance": …, "probe": …}`, a pass or a deadline lists its slots under
/// `instances`. Records written before that (the evidence nested under
/// `evidence`) are lifted by [`crate::model::event::EventKind::from_stored`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GateOutcome {
    /// Every slot healthy (deploy) or no failure in time (monitor).
    Passed {
        /// How long it took, ms.
        elapsed_ms: u64,
        /// One entry per slot.
        #[serde(rename = "instances", alias = "evidence", default)]
        evidence: Vec<Evidence>,
    },
    /// A probe failed `failure_threshold` times in a row, or `max_failures`
    /// times in the window (its evidence says which).
    Failed {
        /// The failing probe's evidence.
        #[serde(flatten)]
        evidence: Evidence,
    },
    /// Some slot was not healthy by the deadline.
    Deadline {
        /// Deadline, ms.
        deadline_ms: u64,
        /// The slots that were not healthy, with their last samples.
        #[serde(rename = "instances", alias = "evidence", default)]
        evidence: Vec<Evidence>,
    },
    /// Stopped from outside (operator abort).
    Cancelled,
}

impl GateOutcome {
    /// The instances a passed gate found healthy, each once (in the order
    /// of its evidence: one entry per probe of each slot); none for any
    /// other outcome.
    pub fn healthy_instances(&self) -> Vec<&str> {
        let mut who: Vec<&str> = Vec::new();
        if let GateOutcome::Passed { evidence, .. } = self {
            for ev in evidence {
                if !who.contains(&ev.instance.as_str()) {
                    who.push(&ev.instance);
                }
            }
        }
        who
    }

    /// How much of its failure budget a gate spent, for progress lines and the
    /// console: the probe that spent the largest share, e.g. "health on web-2:
    /// 2 of 3 failures". `None` when no probe failed.
    pub fn budget_words(&self) -> Option<String> {
        let entries: &[Evidence] = match self {
            GateOutcome::Passed { evidence, .. } | GateOutcome::Deadline { evidence, .. } => {
                evidence
            }
            GateOutcome::Failed { evidence } => std::slice::from_ref(evidence),
            GateOutcome::Cancelled => return None,
        };
        let mut worst: Option<(&Evidence, FailureBudget)> = None;
        for e in entries.iter().filter(|e| e.failures > 0) {
            let spent = FailureBudget {
                failures: e.failures,
                max_failures: e.max_failures.max(1),
            };
            // f/m > wf/wm, without division; the first of equals stays.
            let more = |w: &FailureBudget| {
                u64::from(spent.failures) * u64::from(w.max_failures)
                    > u64::from(w.failures) * u64::from(spent.max_failures)
            };
            if worst.as_ref().is_none_or(|(_, w)| more(w)) {
                worst = Some((e, spent));
            }
        }
        let (e, budget) = worst?;
        Some(format!("{} on {}: {budget}", e.probe, e.instance))
    }
}

impl Default for Evidence {
    fn default() -> Self {
        Evidence {
            instance: String::new(),
            side: Side::Main,
            port: 0,
            probe: String::new(),
            success_threshold: 0,
            failure_threshold: 0,
            consecutive_ok: 0,
            consecutive_fail: 0,
            failures: 0,
            max_failures: 0,
            rule: None,
            reason: None,
            last_samples: Vec::new(),
            canary: None,
            baseline: None,
            baseline_instances: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_words_name_the_probe_that_spent_the_most() {
        let entry = |instance: &str, failures: u32, max_failures: u32| Evidence {
            instance: instance.into(),
            probe: "health".into(),
            failures,
            max_failures,
            ..Evidence::default()
        };
        let json = |o: &GateOutcome| serde_json::to_value(o).unwrap();
        let failed = GateOutcome::Failed {
            evidence: Evidence {
                rule: Some(FailRule::Budget),
                reason: Some("2 of 2 failures in the window".into()),
                ..entry("web-2", 2, 2)
            },
        };
        assert_eq!(json(&failed)["rule"], "budget", "stored flat");
        assert_eq!(
            failed.budget_words().as_deref(),
            Some("health on web-2: 2 of 2 failures")
        );
        // 2 of 5 is a smaller share than 1 of 2.
        let passed = GateOutcome::Passed {
            elapsed_ms: 900,
            evidence: vec![
                entry("web-1", 0, 3),
                entry("web-2", 2, 5),
                entry("web-3", 1, 2),
            ],
        };
        assert_eq!(
            passed.budget_words().as_deref(),
            Some("health on web-3: 1 of 2 failures")
        );
        let clean = GateOutcome::Passed {
            elapsed_ms: 900,
            evidence: vec![entry("web-1", 0, 3)],
        };
        assert_eq!(clean.budget_words(), None);
        assert_eq!(GateOutcome::Cancelled.budget_words(), None);
    }
}
