//! Steering a rollout from the console: `approve`, `hold`, `fire`,
//! `abort`, `pause` and `resume`, the same commands as the CLI's, written to the history for the
//! detached rollout worker to take (within a second). This module decides
//! which of them applies to a rollout as last read, words the question the
//! console asks before sending one, and sends it.

use std::path::Path;

use crate::rollout::watch::ActiveRollout;
use crate::store::Store;

pub use crate::model::Verb;

/// The console's words for a [`Verb`]: where it applies and the question
/// asked before it is sent.
impl Verb {
    /// Whether it applies to `r` as last read; if not, why not, in words
    /// the console shows (naming `app`).
    pub fn check(self, app: &str, r: Option<&ActiveRollout>) -> Result<(), String> {
        let Some(r) = r else {
            return Err(format!("no rollout of {app} is running"));
        };
        if r.interrupted {
            return Err(format!(
                "the rollout of {app} was interrupted: run `rollguard recover {app} --resume` or `--rollback`"
            ));
        }
        let state = r.state.as_str();
        let ok = match self {
            Verb::Approve => state == "waiting_approval",
            Verb::Hold => state == "rollback_armed",
            Verb::Fire => matches!(state, "rollback_armed" | "rollback_held"),
            Verb::Abort => !matches!(state, "rolling_back" | "failing"),
            Verb::Pause => matches!(state, "running" | "waiting_approval"),
            Verb::Resume => state == "paused",
        };
        if ok {
            return Ok(());
        }
        let now = state.replace('_', " ");
        Err(match self {
            Verb::Approve => format!("nothing to approve: the rollout of {app} is {now}"),
            Verb::Hold if state == "rollback_held" => {
                format!("the rollback of {app} is already held")
            }
            Verb::Hold | Verb::Fire => {
                format!("no rollback of {app} is armed: the rollout is {now}")
            }
            Verb::Abort => format!("the rollout of {app} is already {now}"),
            Verb::Pause if state == "paused" => format!("the rollout of {app} is already paused"),
            Verb::Pause => format!("the rollout of {app} cannot pause now: it is {now}"),
            Verb::Resume => format!("the rollout of {app} is not paused: it is {now}"),
        })
    }

    /// The question asked before sending it to `r`, and what happens then.
    pub fn question(self, app: &str, r: &ActiveRollout) -> (String, String) {
        let from = r.from.as_deref().unwrap_or("what ran before");
        let change = match &r.from {
            Some(f) => format!("{f} → {}", r.to),
            None => format!("install of {}", r.to),
        };
        let id = r.id;
        match self {
            Verb::Approve => (
                format!("Approve deployment {id} of {app} ({change})?"),
                "The rollout goes on to its next step.".into(),
            ),
            Verb::Hold => (
                format!("Hold the rollback of {app} (deployment {id})?"),
                format!("{} stays until someone fires or aborts.", r.to),
            ),
            Verb::Fire => (
                format!("Roll {app} back now (deployment {id})?"),
                format!("Traffic and instances go back to {from}."),
            ),
            Verb::Abort => (
                format!("Abort deployment {id} of {app} ({change})?"),
                if r.from.is_some() {
                    format!("It stops and rolls back to {from}.")
                } else {
                    "It stops and removes what it started.".into()
                },
            ),
            Verb::Pause => (
                format!("Pause deployment {id} of {app} ({change})?"),
                "It stops at the next safe point and waits for resume.".into(),
            ),
            Verb::Resume => (
                format!("Resume deployment {id} of {app} ({change})?"),
                "It goes on from where it paused.".into(),
            ),
        }
    }
}

/// A command the operator confirmed, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The app.
    pub app: String,
    /// The deployment it is meant for (a newer one ignores it).
    pub deployment: i64,
    /// What to do.
    pub verb: Verb,
    /// Why, if the operator said.
    pub reason: Option<String>,
}

impl Request {
    /// Writes it to the history at `db` for the rollout worker, as `actor`.
    /// Blocking: call it off the async runtime.
    pub fn send(&self, db: &Path, actor: &str) -> Result<(), String> {
        let store = Store::open(db).map_err(|e| e.message())?;
        store
            .send_command(
                &self.app,
                Some(self.deployment),
                self.verb.as_str(),
                actor,
                self.reason.as_deref(),
            )
            .map(|_| ())
            .map_err(|e| e.message())
    }

    /// What the console says once it is sent.
    pub fn sent_text(&self) -> String {
        format!(
            "{} sent to deployment {} of {}; the rollout takes it within a second",
            self.verb.as_str(),
            self.deployment,
            self.app
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(state: &str) -> ActiveRollout {
        ActiveRollout {
            id: 4,
            from: Some("v2".into()),
            to: "v3".into(),
            strategy: "canary".into(),
            state: state.into(),
            ..ActiveRollout::default()
        }
    }

    #[test]
    fn each_verb_applies_only_where_it_means_something() {
        let ok = |v: Verb, s: &str| v.check("web", Some(&rollout(s))).is_ok();
        assert!(ok(Verb::Approve, "waiting_approval"));
        assert!(!ok(Verb::Approve, "running"));
        assert!(ok(Verb::Hold, "rollback_armed"));
        assert!(!ok(Verb::Hold, "rollback_held"));
        assert!(ok(Verb::Fire, "rollback_armed") && ok(Verb::Fire, "rollback_held"));
        assert!(!ok(Verb::Fire, "running"));
        for s in [
            "running",
            "waiting_approval",
            "rollback_armed",
            "rollback_held",
        ] {
            assert!(ok(Verb::Abort, s), "{s}");
        }
        assert!(!ok(Verb::Abort, "rolling_back") && !ok(Verb::Abort, "failing"));

        assert_eq!(
            Verb::Abort.check("web", None).unwrap_err(),
            "no rollout of web is running"
        );
        assert_eq!(
            Verb::Approve
                .check("web", Some(&rollout("running")))
                .unwrap_err(),
            "nothing to approve: the rollout of web is running"
        );
        assert_eq!(
            Verb::Hold
                .check("web", Some(&rollout("rollback_held")))
                .unwrap_err(),
            "the rollback of web is already held"
        );
        let mut gone = rollout("running");
        gone.interrupted = true;
        assert!(
            Verb::Abort
                .check("web", Some(&gone))
                .unwrap_err()
                .contains("rollguard recover web")
        );
    }

    #[test]
    fn questions_name_the_deployment_and_the_way_back() {
        let r = rollout("rollback_armed");
        assert_eq!(
            Verb::Fire.question("web", &r),
            (
                "Roll web back now (deployment 4)?".to_string(),
                "Traffic and instances go back to v2.".to_string()
            )
        );
        let mut install = rollout("running");
        install.from = None;
        let (q, then) = Verb::Abort.question("web", &install);
        assert_eq!(q, "Abort deployment 4 of web (install of v3)?");
        assert_eq!(then, "It stops and removes what it started.");
    }
}
