//! Before a deploy or a rollback by hand is asked, it is planned and
//! checked, off the input path: [`prepare`] runs the rollout service's
//! preflight (and a rollback's safety checks) and words the question from
//! what they found, so the operator sees the plan, what runs where, the
//! way back and the warnings before anything moves. What it finds comes
//! back through the [`Queue`](super::Queue) as a [`Question`].

use std::sync::Arc;

use crate::config::{Fleet, Strategy};
use crate::error::{Code, UserError};
use crate::model::Version;
use crate::printable::printable;
use crate::rollout::lock;
use crate::rollout::service::{self, DeployRequest, RollbackRequest};
use crate::store::Location;
use crate::store::Store;

use super::action::{ConfirmAction, Prepared};

/// What the console asks to have checked before it asks the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Deploy `version` of `app`.
    Deploy {
        /// The app.
        app: String,
        /// The release.
        version: Version,
        /// A strategy other than the app's.
        strategy: Option<Strategy>,
    },
    /// Roll `app` back by hand: to the last good release, or to what `to`
    /// names (a deployment id or a version, as `rollguard rollback --to`).
    Rollback {
        /// The app.
        app: String,
        /// The target as typed; `None` is the last good release.
        to: Option<String>,
    },
}

impl Intent {
    /// The app it is about.
    pub fn app(&self) -> &str {
        match self {
            Intent::Deploy { app, .. } | Intent::Rollback { app, .. } => app,
        }
    }

    /// What is being checked, for the line shown while it is.
    pub fn checking(&self) -> String {
        match self {
            Intent::Deploy { app, version, .. } => {
                format!("checking the deploy of {app} {version}…")
            }
            Intent::Rollback { app, to: None } => format!("checking a rollback of {app}…"),
            Intent::Rollback { app, to: Some(to) } => {
                format!("checking a rollback of {app} to {to}…")
            }
        }
    }
}

/// A question ready to ask: the action and its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// What a confirmation does.
    pub action: ConfirmAction,
    /// The question.
    pub question: String,
    /// What happens then.
    pub then: String,
    /// The report: plan, checks, what runs where, warnings.
    pub details: Vec<String>,
    /// Whether the app's name must be typed.
    pub protected: bool,
}

/// Plans and checks `intent` against the history at `db`. Blocking (it
/// runs the preflight's remote checks on `handle`): call it on a blocking
/// task.
pub fn prepare(
    fleet: &Fleet,
    db: &Location,
    intent: &Intent,
    handle: &tokio::runtime::Handle,
) -> Result<Question, String> {
    let said = |e: UserError| in_words(&e, intent.app());
    let index = fleet.app_index(intent.app()).map_err(said)?;
    let at = At {
        fleet,
        store: &Store::open_at(db).map_err(|e| e.message())?,
        handle,
        protected: fleet.apps[index].protected,
        said: &said,
    };
    match intent {
        Intent::Deploy {
            app: name,
            version,
            strategy,
        } => deploy(&at, name, version, *strategy),
        Intent::Rollback { app: name, to } => rollback(&at, name, to),
    }
}

/// Where a question is prepared: the fleet, the history, the runtime
/// the preflight runs on, whether the app is protected, and how an error
/// is said.
struct At<'a> {
    fleet: &'a Fleet,
    store: &'a Store,
    handle: &'a tokio::runtime::Handle,
    protected: bool,
    said: &'a dyn Fn(UserError) -> String,
}

/// The question of deploying `version` of `name`: the preflight's report,
/// its first line the question.
fn deploy(
    at: &At<'_>,
    name: &str,
    version: &Version,
    strategy: Option<Strategy>,
) -> Result<Question, String> {
    let (fleet, store, handle, said) = (at.fleet, at.store, at.handle, at.said);
    let req = DeployRequest {
        app: name.to_string(),
        version: version.clone(),
        strategy,
        reason: None,
        break_lock: false,
        owner: lock::me(),
    };
    let pre = handle
        .block_on(service::preflight(fleet, store, &req, true))
        .map_err(said)?;
    // The report's first line ("Deploy web v1 → v3 (rolling, 3
    // instances)") is the question itself.
    let mut details: Vec<String> = pre
        .lines(fleet)
        .iter()
        .map(|l| printable(l).into_owned())
        .collect();
    let question = if details.is_empty() {
        format!("Deploy {name} {version}?")
    } else {
        format!("{}?", details.remove(0))
    };
    Ok(Question {
        question,
        then: "A detached worker runs it; quitting the console stops nothing.".into(),
        action: ConfirmAction::Start(Prepared {
            app: name.to_string(),
            version: version.clone(),
            preflight: Arc::new(pre),
            rollback: None,
            strategy,
        }),
        details,
        protected: at.protected,
    })
}

/// The question of rolling `name` back (to what `to` names): the
/// rollback's checks, then the preflight's report; refused with the
/// checks when they refuse.
fn rollback(at: &At<'_>, name: &str, to: &Option<String>) -> Result<Question, String> {
    let (fleet, store, handle, said) = (at.fleet, at.store, at.handle, at.said);
    let req = RollbackRequest {
        app: name.to_string(),
        to: to.clone(),
        force: false,
    };
    let check = handle
        .block_on(service::check_rollback(fleet, store, &req))
        .map_err(said)?;
    let mut details: Vec<String> = check
        .checks
        .iter()
        .map(|c| format!("{} {}", if c.ok { "✔" } else { "✖" }, printable(&c.detail)))
        .collect();
    details.extend(
        check
            .warnings
            .iter()
            .map(|w| format!("warning: {}", printable(w))),
    );
    if let Some(refusal) = check.refusal() {
        let mut why = refusal.to_string();
        if !details.is_empty() {
            why.push_str(" (");
            why.push_str(&details.join("; "));
            why.push(')');
        }
        return Err(why);
    }
    let deploy = service::rollback_request(name, &check, "", lock::me());
    let pre = handle
        .block_on(service::preflight(fleet, store, &deploy, !check.forced))
        .map_err(said)?;
    details.extend(pre.lines(fleet).iter().map(|l| printable(l).into_owned()));
    let from: Vec<String> = check.current.iter().map(Version::to_string).collect();
    let target = check.target.clone();
    Ok(Question {
        question: format!(
            "Roll {name} back {} → {target}?",
            if from.is_empty() {
                "-".to_string()
            } else {
                from.join(", ")
            }
        ),
        then: format!(
            "Every instance goes back to {target} ({}); a detached worker runs it.",
            check.took
        ),
        action: ConfirmAction::Start(Prepared {
            app: name.to_string(),
            version: target,
            preflight: Arc::new(pre),
            rollback: Some(Arc::new(check)),
            strategy: None,
        }),
        details,
        protected: at.protected,
    })
}

/// An error as the console's footer says it: one line, its code, what
/// happened and what to do, that next step the console's way where the
/// command line's hint names one of its flags (a rollback's `--to` and
/// `--force`). Made printable.
pub fn in_words(e: &UserError, app: &str) -> String {
    let hint = match e.code {
        Code::RollbackTargetMissing => Some(format!(
            "name one with `:rollback {app} VERSION`, or open a deployment in History and roll back to it"
        )),
        Code::RollbackUnsafe => Some(format!(
            "pick another target with `:rollback {app} VERSION`; forcing one is left to `rollguard rollback {app} --to VERSION --force`"
        )),
        _ => e.hint.clone(),
    };
    let what = format!("{}: {}", e.code, e.message.replace('\n', " "));
    printable(&match hint {
        Some(h) => format!("{what} — {h}"),
        None => what,
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_one_line_with_the_consoles_next_step() {
        let e = UserError::new(
            Code::RollbackTargetMissing,
            "no earlier good release of checkout is known",
        )
        .hint("name one with --to VERSION (see `rollguard history`)");
        let said = in_words(&e, "checkout");
        assert_eq!(
            said,
            format!(
                "{}: no earlier good release of checkout is known — name one with `:rollback \
                 checkout VERSION`, or open a deployment in History and roll back to it",
                Code::RollbackTargetMissing
            )
        );
        assert!(!said.contains('\n') && !said.contains("\\n") && !said.contains("--to"));
        let e = UserError::new(Code::Locked, "web is locked\nby bob").hint("wait");
        assert_eq!(
            in_words(&e, "web"),
            format!("{}: web is locked by bob — wait", Code::Locked)
        );
    }
}
