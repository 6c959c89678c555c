//! Steering a rollout from the console: `approve`, `hold`, `fire`,
//! `abort`, `pause` and `resume`, the same commands as the CLI's, sent
//! through the rollout service ([`service::send`]) for the detached
//! rollout worker to take (within a second). This module says whether one
//! applies to a rollout as last read (by the rollout's own rule,
//! [`service::refusal`]), words the question the console asks before
//! sending one, and sends it, bound to the deployment it named.

use crate::model::Outcome;
use crate::rollout::service;
use crate::rollout::watch::{ActiveRollout, AppRollouts};
use crate::store::Location;
use crate::store::Store;

pub use crate::model::Verb;

/// The console's words for a [`Verb`]: where it applies and the question
/// asked before it is sent.
impl Verb {
    /// Whether it applies to `r` as last read; if not, why not, in words
    /// the console shows (naming `app`). The rule is the rollout's own
    /// ([`service::refusal`]), which [`service::send`] checks again.
    pub fn check(self, app: &str, r: Option<&ActiveRollout>) -> Result<(), String> {
        let Some(r) = r else {
            return Err(format!("no rollout of {app} is running"));
        };
        if r.interrupted {
            return Err(format!(
                "the rollout of {app} was interrupted: run `rollguard recover {app} --resume` or `--rollback`"
            ));
        }
        match service::refusal(app, self, r.state) {
            None => Ok(()),
            Some(why) => Err(why),
        }
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

/// Why a command for deployment `id` of `app` goes nowhere: it is not the
/// one running (it has ended, with `outcome` when read).
pub fn not_running(app: &str, id: i64, outcome: Option<Outcome>) -> String {
    match outcome {
        Some(o) => format!(
            "deployment {id} of {app} has ended ({}): there is nothing to send it",
            o.words()
        ),
        None => format!("deployment {id} of {app} is not running, as last read"),
    }
}

/// Whether `verb` for deployment `id` of `app` still applies, by the
/// rollouts as last read (`r`, `None` before the first read): an open
/// question checks this as they change, and says so once it does not.
pub fn still_applies(
    app: &str,
    id: i64,
    verb: Verb,
    r: Option<&AppRollouts>,
) -> Result<(), String> {
    let Some(r) = r else {
        return Ok(());
    };
    match &r.active {
        Some(a) if a.id == id => verb.check(app, Some(a)),
        Some(a) => Err(format!(
            "{}; deployment {} runs now",
            not_running(app, id, ended(r, id)),
            a.id
        )),
        None => Err(not_running(app, id, ended(r, id))),
    }
}

/// How deployment `id` ended, if it is the newest ended one.
fn ended(r: &AppRollouts, id: i64) -> Option<Outcome> {
    r.last.as_ref().filter(|l| l.id == id).map(|l| l.outcome)
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
    /// Sends it through the rollout service ([`service::send`]) to the
    /// history at `db`, as `actor`: only to [`Request::deployment`], and
    /// only if it still applies there. Blocking: call it off the async
    /// runtime.
    pub fn send(&self, db: &Location, actor: &str) -> Result<(), String> {
        let store = Store::open_at(db).map_err(|e| e.message())?;
        service::send(
            &store,
            &self.app,
            Some(self.deployment),
            self.verb,
            actor,
            self.reason.as_deref(),
        )
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.code, e.message))
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
    use crate::model::DeploymentState;

    fn rollout(state: &str) -> ActiveRollout {
        ActiveRollout {
            id: 4,
            from: Some("v2".into()),
            to: "v3".into(),
            strategy: crate::config::Strategy::Canary,
            state: DeploymentState::parse(state).expect("a known state"),
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
