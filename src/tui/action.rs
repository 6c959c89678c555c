//! The actions that change something and are therefore asked first. A key
//! (or a `:` command) builds a [`ConfirmAction`]; the confirm modal
//! ([`Confirm`](super::components::Confirm)) shows it and takes a reason;
//! Enter turns it into a [`ConfirmedAction`], which
//! [`Service::perform`](super::perform::Service::perform) carries out in
//! its one `match`. Nothing destructive is done any other way.
//!
//! A deploy and a rollback by hand are checked before they are asked
//! ([`Prepared`]: the plan and the preflight report, made in the
//! background by [`Service::prepare`](super::perform::Service::prepare)),
//! so the question shows what will run before anything does.

use std::sync::Arc;

use super::control::Verb;
use crate::model::Version;
use crate::rollout::preflight::Preflight;
use crate::rollout::service::RollbackCheck;

/// An action waiting for the operator to confirm it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfirmAction {
    /// A command to an app's rollout in flight.
    Rollout {
        /// The app.
        app: String,
        /// The deployment it is meant for (a newer one ignores it).
        deployment: i64,
        /// What to do.
        verb: Verb,
    },
    /// Start a deploy or a rollback by hand, as checked.
    Start(Prepared),
    /// Break an app's abandoned lock.
    BreakLock {
        /// The app.
        app: String,
    },
}

/// A deploy or a rollback by hand, planned and checked, waiting to start.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The app.
    pub app: String,
    /// The release to start.
    pub version: Version,
    /// The preflight report the question showed.
    pub preflight: Arc<Preflight>,
    /// A rollback's checks; `None` for a deploy.
    pub rollback: Option<Arc<RollbackCheck>>,
    /// A strategy other than the app's (a deploy's).
    pub strategy: Option<crate::config::Strategy>,
}

impl PartialEq for Prepared {
    fn eq(&self, other: &Self) -> bool {
        self.app == other.app
            && self.version == other.version
            && Arc::ptr_eq(&self.preflight, &other.preflight)
    }
}

impl Eq for Prepared {}

impl ConfirmAction {
    /// The app it acts on.
    pub fn app(&self) -> &str {
        match self {
            ConfirmAction::Rollout { app, .. } | ConfirmAction::BreakLock { app } => app,
            ConfirmAction::Start(p) => &p.app,
        }
    }

    /// A word for the modal's title: `approve`, `abort`, `deploy`, ….
    pub fn name(&self) -> &'static str {
        match self {
            ConfirmAction::Rollout { verb, .. } => verb.as_str(),
            ConfirmAction::Start(p) if p.rollback.is_some() => "roll back",
            ConfirmAction::Start(_) => "deploy",
            ConfirmAction::BreakLock { .. } => "break the lock",
        }
    }

    /// Whether it needs a reason: aborting, firing a rollback, a rollback
    /// by hand and breaking a lock do; the others take one if given.
    pub fn needs_reason(&self) -> bool {
        match self {
            ConfirmAction::Rollout { verb, .. } => matches!(verb, Verb::Abort | Verb::Fire),
            ConfirmAction::Start(p) => p.rollback.is_some(),
            ConfirmAction::BreakLock { .. } => true,
        }
    }

    /// The word on the modal's button that confirms it: `Approve`, `Abort`, ….
    pub fn button(&self) -> &'static str {
        match self {
            ConfirmAction::Rollout { verb, .. } => match verb {
                Verb::Approve => "Approve",
                Verb::Hold => "Hold",
                Verb::Fire => "Fire",
                Verb::Abort => "Abort",
                Verb::Pause => "Pause",
                Verb::Resume => "Resume",
            },
            ConfirmAction::Start(p) if p.rollback.is_some() => "Roll back",
            ConfirmAction::Start(_) => "Deploy",
            ConfirmAction::BreakLock { .. } => "Break lock",
        }
    }

    /// The action confirmed with `reason` (blank is none).
    pub fn confirmed(self, reason: &str) -> ConfirmedAction {
        let reason = reason.trim();
        ConfirmedAction {
            action: self,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
        }
    }
}

/// An action the operator confirmed, with the reason given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmedAction {
    /// What to do.
    pub action: ConfirmAction,
    /// Why, if the operator said (stored with the actor).
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_reason_is_none() {
        let a = ConfirmAction::Rollout {
            app: "web".into(),
            deployment: 3,
            verb: Verb::Abort,
        };
        assert_eq!(a.name(), "abort");
        assert_eq!(a.app(), "web");
        assert!(a.needs_reason());
        assert_eq!(a.clone().confirmed("  ").reason, None);
        assert_eq!(
            a.confirmed(" v3 fails ").reason.as_deref(),
            Some("v3 fails")
        );
    }

    #[test]
    fn breaking_a_lock_needs_a_reason() {
        let a = ConfirmAction::BreakLock { app: "web".into() };
        assert!(a.needs_reason());
        assert_eq!(a.button(), "Break lock");
    }
}
