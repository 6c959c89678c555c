//! The timeline of one incident or one deployment, for `rollguard
//! incident` and a notification's `{timeline}` file: [`load`] reads its
//! rows from the history, [`render`] (pure, in `postmortem`) writes them as
//! a Markdown document that can start a postmortem, and [`timeline`] does
//! both.
//!
//! What is read:
//! - an incident: its row, every event of its app from its opening to its
//!   resolution (to now while open), its own events and its
//!   notifications' outcomes whenever they were written, the deployments
//!   that ran during it (or the one before it, for the release that ran),
//!   and the failed probe results of the app during the outage, counted
//!   per instance and probe;
//! - a deployment: its row, its events (gates, decisions, traffic,
//!   commands, notifications), its changes to instances, and the
//!   incidents of its app while it ran.

use std::fmt;

use crate::error::{Code, UserError};
use crate::store::{Deployment, Event, FailureSpan, Incident, InstanceChange, Store, StoreError};

pub use super::postmortem::render;

/// What a timeline is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// An incident, by id.
    Incident(i64),
    /// A deployment (or manual rollback), by id.
    Deployment(i64),
}

impl Subject {
    /// Reads `12` or `incident:12` (an incident), `deployment:7` (a
    /// deployment, as the console and `rollback --to` name one).
    pub fn parse(s: &str) -> Result<Subject, String> {
        let s = s.trim();
        let (kind, id) = match s.split_once(':') {
            Some((kind, id)) => (kind, id),
            None => ("incident", s),
        };
        let id: i64 = id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(|| {
            format!("`{s}` names no incident or deployment; write 12, incident:12 or deployment:7")
        })?;
        match kind {
            "incident" => Ok(Subject::Incident(id)),
            "deployment" => Ok(Subject::Deployment(id)),
            _ => Err(format!(
                "`{s}`: write incident:ID or deployment:ID (or the incident's id alone)"
            )),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Incident(id) => write!(f, "incident {id}"),
            Subject::Deployment(id) => write!(f, "deployment {id}"),
        }
    }
}

/// Everything a timeline shows, as read from the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// What it is of.
    pub subject: Subject,
    /// The incident, for an incident's timeline.
    pub incident: Option<Incident>,
    /// The deployment, for a deployment's timeline.
    pub deployment: Option<Deployment>,
    /// The deployments that ran during the incident.
    pub deployments: Vec<Deployment>,
    /// The app's newest deployment before the incident, when none ran
    /// during it: what ran.
    pub before: Option<Deployment>,
    /// The incidents of the app while the deployment ran.
    pub incidents: Vec<Incident>,
    /// The events, oldest first, each once.
    pub events: Vec<Event>,
    /// The deployment's changes to instances, in order.
    pub changes: Vec<InstanceChange>,
    /// The app's failed probe results during the incident.
    pub failures: Vec<FailureSpan>,
    /// When it was read: the end of what is still open.
    pub now_ms: i64,
}

/// Reads the rows of `subject`'s timeline; `None` when there is no such
/// incident or deployment.
pub fn load(store: &Store, subject: Subject, now_ms: i64) -> Result<Option<Rows>, StoreError> {
    let mut rows = Rows {
        subject,
        incident: None,
        deployment: None,
        deployments: Vec::new(),
        before: None,
        incidents: Vec::new(),
        events: Vec::new(),
        changes: Vec::new(),
        failures: Vec::new(),
        now_ms,
    };
    match subject {
        Subject::Incident(id) => {
            let Some(i) = store.incident(id)? else {
                return Ok(None);
            };
            let end = i.resolved_ms.unwrap_or(now_ms);
            let mut events = store.app_events_between(&i.app, i.opened_ms, end)?;
            events.extend(store.incident_events(&i.app, id)?);
            events.sort_by_key(|e| (e.at_ms, e.id));
            events.dedup_by_key(|e| e.id);
            rows.events = events;
            rows.deployments = store.deployments_between(&i.app, i.opened_ms, end)?;
            if rows.deployments.is_empty() {
                rows.before = store.deployment_before(&i.app, i.opened_ms)?;
            }
            let first_failure = i
                .evidence
                .failed
                .iter()
                .flat_map(|e| &e.last_samples)
                .filter(|s| !s.ok)
                .map(|s| s.at_ms)
                .min()
                .unwrap_or(i.opened_ms)
                .min(i.opened_ms);
            let healthy = i.healthy_ms.unwrap_or(end);
            rows.failures = store.failure_spans(&i.app, first_failure, healthy)?;
            rows.incident = Some(i);
        }
        Subject::Deployment(id) => {
            let Some(d) = store.deployment(id)? else {
                return Ok(None);
            };
            let end = d.ended_at_ms.unwrap_or(now_ms);
            rows.events = store.deployment_events(id, 0)?;
            rows.events.sort_by_key(|e| (e.at_ms, e.id));
            rows.changes = store.changes(id)?;
            rows.incidents = store.incidents_between(&d.app, d.started_at_ms, end)?;
            rows.deployment = Some(d);
        }
    }
    Ok(Some(rows))
}

/// The Markdown timeline of `subject`, read from `store` now. An
/// incident or deployment the history does not hold is `E_USAGE`.
pub fn timeline(store: &Store, subject: Subject) -> Result<String, UserError> {
    match load(store, subject, crate::model::now_ms()).map_err(UserError::from)? {
        Some(rows) => Ok(render(&rows)),
        None => Err(unknown(subject)),
    }
}

/// `E_USAGE`: no such incident or deployment.
pub fn unknown(subject: Subject) -> UserError {
    let hint = match subject {
        Subject::Incident(_) => {
            "`rollguard events` lists incidents (incident_opened); a deployment is deployment:ID"
        }
        Subject::Deployment(_) => "`rollguard history` lists deployments with their ids",
    };
    UserError::new(Code::Usage, format!("the history holds no {subject}")).hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_named_as_the_console_names_them() {
        assert_eq!(Subject::parse("12"), Ok(Subject::Incident(12)));
        assert_eq!(Subject::parse("incident:12"), Ok(Subject::Incident(12)));
        assert_eq!(Subject::parse("deployment:7"), Ok(Subject::Deployment(7)));
        assert!(Subject::parse("deploy:7").is_err());
        assert!(
            Subject::parse("twelve")
                .unwrap_err()
                .contains("deployment:7")
        );
        assert!(Subject::parse("0").is_err());
        assert_eq!(Subject::Deployment(7).to_string(), "deployment 7");
        let e = unknown(Subject::Incident(99));
        assert_eq!(e.code, Code::Usage);
        assert!(e.message.contains("incident 99"));
    }
}
