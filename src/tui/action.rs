//! The actions that change something and are therefore asked first. A key
//! (or a `:` command) builds a [`ConfirmAction`]; the confirm modal
//! ([`Confirm`](super::components::Confirm)) shows it and takes a reason;
//! Enter turns it into a [`ConfirmedAction`], which
//! [`Service::perform`](super::perform::Service::perform) carries out in
//! its one `match`. Nothing destructive is done any other way.
//!
//! Today the actions are the commands to a rollout in flight (approve,
//! hold, fire, abort). Deploy, a rollback by hand, pause and resume and
//! breaking a stale lock become more variants here, the words of their
//! question where the console asks it (`App::ask`), and an arm of that
//! `match`.

use super::control::Verb;

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
}

impl ConfirmAction {
    /// The app it acts on.
    pub fn app(&self) -> &str {
        match self {
            ConfirmAction::Rollout { app, .. } => app,
        }
    }

    /// A word for the modal's title: `approve`, `abort`, ….
    pub fn name(&self) -> &'static str {
        match self {
            ConfirmAction::Rollout { verb, .. } => verb.as_str(),
        }
    }

    /// Whether it needs a reason: aborting and firing a rollback do (a
    /// rollback by hand will); approving and holding take one if given.
    pub fn needs_reason(&self) -> bool {
        match self {
            ConfirmAction::Rollout { verb, .. } => matches!(verb, Verb::Abort | Verb::Fire),
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
            },
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
}
