//! What a receiver listens to: the names a `[[notify]]` entry's `on`
//! takes, and which recorded event is which. Pure.

use super::event::EventKind;

/// A kind of notification, named in `on = [...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// An outage of an app began (`incident_opened`).
    IncidentOpened,
    /// It ended (`incident_resolved`).
    IncidentResolved,
    /// A rollback is armed and fires unless held (`rollback_armed`).
    RollbackArmed,
    /// A rollback began (`rollback_started`).
    RollbackStarted,
    /// A rollback ended, restored or not (`rollback_completed`,
    /// `rollback_failed`).
    RollbackFinished,
    /// A deploy or a manual rollback was asked for (`deploy_requested`).
    DeployStarted,
    /// Every stage of a rollout passed (`rollout_completed`).
    DeployFinished,
    /// A rollout failed (`rollout_failed`).
    RolloutFailed,
}

impl Topic {
    /// Every topic, in the order the README lists them.
    pub const ALL: [Topic; 8] = [
        Topic::IncidentOpened,
        Topic::IncidentResolved,
        Topic::RollbackArmed,
        Topic::RollbackStarted,
        Topic::RollbackFinished,
        Topic::DeployStarted,
        Topic::DeployFinished,
        Topic::RolloutFailed,
    ];

    /// What a receiver without `on` listens to: everything but
    /// `deploy_started`, which would page on every deploy.
    pub const DEFAULT: [Topic; 7] = [
        Topic::IncidentOpened,
        Topic::IncidentResolved,
        Topic::RollbackArmed,
        Topic::RollbackStarted,
        Topic::RollbackFinished,
        Topic::DeployFinished,
        Topic::RolloutFailed,
    ];

    /// The name written in `on`.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::IncidentOpened => "incident_opened",
            Topic::IncidentResolved => "incident_resolved",
            Topic::RollbackArmed => "rollback_armed",
            Topic::RollbackStarted => "rollback_started",
            Topic::RollbackFinished => "rollback_finished",
            Topic::DeployStarted => "deploy_started",
            Topic::DeployFinished => "deploy_finished",
            Topic::RolloutFailed => "rollout_failed",
        }
    }

    /// The topic named `s`.
    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The topic of a recorded event, if it is one anybody is told of.
    pub fn of(event: &EventKind) -> Option<Topic> {
        Some(match event {
            EventKind::IncidentOpened { .. } => Topic::IncidentOpened,
            EventKind::IncidentResolved { .. } => Topic::IncidentResolved,
            EventKind::RollbackArmed { .. } => Topic::RollbackArmed,
            EventKind::RollbackStarted { .. } => Topic::RollbackStarted,
            EventKind::RollbackCompleted { .. } | EventKind::RollbackFailed { .. } => {
                Topic::RollbackFinished
            }
            EventKind::DeployRequested { .. } => Topic::DeployStarted,
            EventKind::RolloutCompleted { .. } => Topic::DeployFinished,
            EventKind::RolloutFailed { .. } => Topic::RolloutFailed,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_back_and_events_map_to_them() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
        assert_eq!(Topic::parse("incident_widened"), None);
        assert_eq!(
            Topic::of(&EventKind::RollbackArmed { fires_in_ms: 1 }),
            Some(Topic::RollbackArmed)
        );
        assert_eq!(Topic::of(&EventKind::LockTaken), None);
        let widened = EventKind::IncidentWidened {
            incident: 1,
            evidence: vec![],
        };
        // A widening is part of the incident already told of.
        assert_eq!(Topic::of(&widened), None);
        assert!(!Topic::DEFAULT.contains(&Topic::DeployStarted));
    }
}
