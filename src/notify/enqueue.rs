//! Turning the audit log into notifications: every event recorded after
//! the outbox's cursor is read once, in order, and each receiver that
//! listens to its topic for its app gets a row with the body it will be
//! sent (its secrets masked). Reading and writing happen in one
//! transaction ([`Store::enqueue_notifications`]), so whichever process
//! does it, each event is turned into notifications once.

use super::message::{Context, DeploymentFacts, message};
use super::payload;
use crate::config::Fleet;
use crate::model::DeploymentKind;
use crate::model::event::EventKind;
use crate::model::topic::Topic;
use crate::store::{Event, NewNotification, Store, StoreError};

/// Events read per transaction.
pub const PAGE: usize = 200;

/// The notifications `fleet`'s receivers get for `event`; reads the
/// event's deployment from `store`.
pub fn plan(fleet: &Fleet, store: &Store, event: &Event) -> Vec<NewNotification> {
    let Ok(kind) = event.typed() else {
        return Vec::new();
    };
    let Some(topic) = Topic::of(&kind) else {
        return Vec::new();
    };
    let Some(app) = fleet.app(&event.app) else {
        return Vec::new();
    };
    let receivers: Vec<_> = app
        .notify
        .iter()
        .filter(|r| r.listens(topic, &app.name))
        .collect();
    if receivers.is_empty() {
        return Vec::new();
    }
    let row = event
        .deployment_id
        .and_then(|id| store.deployment(id).ok().flatten());
    let started_ms = row.as_ref().map(|d| d.started_at_ms);
    let deployment = row.map(|d| {
        let rollback = d.kind() == DeploymentKind::Rollback;
        DeploymentFacts {
            id: d.id,
            from: d.from_version,
            to: d.to_version,
            rollback,
            actor: d.actor,
            reason: d.reason,
        }
    });
    let since_ms = match &kind {
        EventKind::IncidentOpened { incident, .. } => store
            .incident(*incident)
            .ok()
            .flatten()
            .map(|i| i.opened_ms),
        EventKind::IncidentResolved { opened_ms, .. } => Some(*opened_ms),
        _ => started_ms,
    };
    let cx = Context {
        event_id: event.id,
        at_ms: event.at_ms,
        app: &event.app,
        actor: &event.actor,
        reason: event.reason.as_deref(),
        deployment,
        auto_rollback: Some(app.rollout.auto_rollback),
        since_ms,
    };
    let Some(m) = message(&kind, &cx) else {
        return Vec::new();
    };
    receivers
        .into_iter()
        .filter_map(|r| {
            let m = m.clone().masked(&r.secrets);
            let body = payload::body(&r.kind, &m)?;
            Some(NewNotification {
                receiver: r.name.clone(),
                topic: topic.as_str().to_string(),
                dedup_key: m.dedup_key,
                payload: body,
            })
        })
        .collect()
}

/// Turns every event after the cursor into notifications for `fleet`'s
/// receivers, a page per transaction; returns how many were made.
pub fn enqueue(fleet: &Fleet, store: &Store, now_ms: i64) -> Result<usize, StoreError> {
    let mut made = 0;
    loop {
        let (n, read) = store.enqueue_notifications(PAGE, |s, e| plan(fleet, s, e), now_ms)?;
        made += n;
        if read < PAGE {
            return Ok(made);
        }
    }
}
