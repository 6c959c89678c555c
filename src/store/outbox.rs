//! The notification outbox: every notification is a row here before it is
//! sent. Rows are made from the audit log in one transaction that moves
//! the `notify_cursor` past the events it read, so two processes never
//! make a notification twice (and `UNIQUE (receiver, event_id)` would
//! refuse it); a sender claims due rows in one transaction with a lease
//! (`claimed_until_ms`), so of several senders one sends each row, and a
//! sender killed mid-delivery leaves a claim that lapses and is taken by
//! the next. A row is marked sent, put back with its next attempt's time,
//! or given up, each only by the sender whose claim it holds; the last two
//! outcomes that people must see (sent, given up) are events in the same
//! transaction.
//!
//! This is at-least-once: a sender that dies after its receiver answered
//! and before it marked the row sent leaves a row that is sent again once
//! its claim lapses. Receivers tell a repeat by its notification id (the
//! `X-Rollguard-Delivery` header, PagerDuty by its dedup key).

use serde::Serialize;
use serde_json::Value;

use super::db::{DbError, Optional, Row, args};
use super::{Event, Store, StoreError};
use crate::model::event::EventKind;

/// Who records notification events.
pub const NOTIFY_ACTOR: &str = "rollguard";

/// A notification to make: one receiver, one event.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// The receiver's name.
    pub receiver: String,
    /// The topic's name.
    pub topic: String,
    /// Groups an incident's or a deployment's notifications.
    pub dedup_key: String,
    /// The body as it will be sent, without secrets.
    pub payload: Value,
}

/// Where a notification is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Claimed by a sender.
    Sending,
    /// Its receiver took it.
    Sent,
    /// Given up.
    Failed,
}

impl NotificationState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Sending => "sending",
            NotificationState::Sent => "sent",
            NotificationState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> NotificationState {
        match s {
            "sending" => NotificationState::Sending,
            "sent" => NotificationState::Sent,
            "failed" => NotificationState::Failed,
            _ => NotificationState::Pending,
        }
    }
}

/// One outbox row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    /// Its id.
    pub id: i64,
    /// The receiver's name.
    pub receiver: String,
    /// The event it tells of.
    pub event_id: i64,
    /// The event's app.
    pub app: String,
    /// The event's deployment, if any.
    pub deployment_id: Option<i64>,
    /// The topic's name.
    pub topic: String,
    /// Groups an incident's or a deployment's notifications.
    pub dedup_key: String,
    /// The body, as stored.
    pub payload: Value,
    /// Where it is.
    pub state: NotificationState,
    /// Attempts begun so far.
    pub attempts: u32,
    /// When it may be tried next.
    pub next_attempt_ms: i64,
    /// The sender that holds or last held it.
    pub claimed_by: Option<String>,
    /// Until when that sender's claim holds.
    pub claimed_until_ms: Option<i64>,
    /// What the last failed attempt met (no secrets).
    pub last_error: Option<String>,
    /// When it was made.
    pub created_ms: i64,
    /// When its receiver took it.
    pub sent_ms: Option<i64>,
}

const COLS: &str = "id, receiver, event_id, app, deployment_id, topic, dedup_key, payload, \
                    state, attempts, next_attempt_ms, claimed_by, claimed_until_ms, last_error, \
                    created_ms, sent_ms";

fn from_row(r: &Row<'_>) -> Result<Notification, DbError> {
    let payload: String = r.get(7)?;
    let state: String = r.get(8)?;
    Ok(Notification {
        id: r.get(0)?,
        receiver: r.get(1)?,
        event_id: r.get(2)?,
        app: r.get(3)?,
        deployment_id: r.get(4)?,
        topic: r.get(5)?,
        dedup_key: r.get(6)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        state: NotificationState::parse(&state),
        attempts: u32::try_from(r.get::<i64>(9)?).unwrap_or(0),
        next_attempt_ms: r.get(10)?,
        claimed_by: r.get(11)?,
        claimed_until_ms: r.get(12)?,
        last_error: r.get(13)?,
        created_ms: r.get(14)?,
        sent_ms: r.get(15)?,
    })
}

impl Store {
    /// Turns the events after the outbox's cursor (at most `page` of them)
    /// into notifications: `plan` says which to make for each event (it
    /// may read the store, e.g. the event's deployment). One IMMEDIATE
    /// transaction that moves the cursor past the events read; returns
    /// how many notifications were made and the events read.
    pub fn enqueue_notifications(
        &self,
        page: usize,
        mut plan: impl FnMut(&Store, &Event) -> Vec<NewNotification>,
        now_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        let op = "make notifications";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let cursor: i64 = self
            .db
            .query_row(
                "SELECT event_id FROM notify_cursor WHERE id = 1",
                &[],
                |r| r.get(0),
            )
            .optional()
            .map_err(err())?
            .unwrap_or(0);
        let events = self.events_after(cursor, None, None, page)?;
        let mut made = 0;
        for e in &events {
            for n in plan(self, e) {
                made += self
                    .db
                    .execute(
                        "INSERT INTO notifications (receiver, event_id, app, \
                         deployment_id, topic, dedup_key, payload, next_attempt_ms, created_ms) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                         ON CONFLICT (receiver, event_id) DO NOTHING",
                        args![
                            n.receiver,
                            e.id,
                            e.app,
                            e.deployment_id,
                            n.topic,
                            n.dedup_key,
                            n.payload.to_string(),
                            now_ms
                        ],
                    )
                    .map_err(err())?;
            }
        }
        if let Some(last) = events.last() {
            self.db
                .execute(
                    "INSERT INTO notify_cursor (id, event_id) VALUES (1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET event_id = CASE \
                       WHEN notify_cursor.event_id > excluded.event_id \
                       THEN notify_cursor.event_id ELSE excluded.event_id END",
                    args![last.id],
                )
                .map_err(err())?;
        }
        tx.commit().map_err(err())?;
        Ok((made, events.len()))
    }

    /// Claims up to `limit` of `receiver`'s due notifications for sender
    /// `token` until `now_ms + lease_ms`, oldest first: pending ones whose
    /// time has come, and those whose sender's claim lapsed. A row waits
    /// while an older one of its receiver and dedup key is unfinished, so
    /// a receiver hears of an incident's end after its start. Counts the
    /// attempt. One IMMEDIATE transaction.
    pub fn claim_notifications(
        &self,
        receiver: &str,
        token: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let op = "claim notifications";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let claimed = self
            .db
            .query_map(
                &format!(
                    "UPDATE notifications SET state = 'sending', claimed_by = ?2, \
                 claimed_until_ms = ?3 + ?4, attempts = attempts + 1 \
                 WHERE id IN (SELECT n.id FROM notifications n WHERE n.receiver = ?1 AND \
                   ((n.state = 'pending' AND n.next_attempt_ms <= ?3) OR \
                    (n.state = 'sending' AND n.claimed_until_ms < ?3)) AND \
                   NOT EXISTS (SELECT 1 FROM notifications o WHERE o.receiver = n.receiver \
                     AND o.dedup_key = n.dedup_key AND o.id < n.id \
                     AND o.state IN ('pending', 'sending')) \
                   ORDER BY n.id LIMIT ?5) \
                 RETURNING {COLS}"
                ),
                args![receiver, token, now_ms, lease_ms, limit],
                from_row,
            )
            .map_err(err())?;
        tx.commit().map_err(err())?;
        let mut claimed = claimed;
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }

    /// Marks notification `id` sent at `now_ms` and records
    /// `notification_sent`, if `token` still holds its claim; `false`
    /// when another sender took it over meanwhile.
    pub fn mark_notification_sent(
        &self,
        id: i64,
        token: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.finish(id, token, "sent", now_ms, None, None)
    }

    /// Puts notification `id` back to be tried at `next_attempt_ms`,
    /// keeping what it met (`error`, without secrets), if `token` still
    /// holds its claim.
    pub fn retry_notification(
        &self,
        id: i64,
        token: &str,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let changed = self
            .db
            .execute(
                "UPDATE notifications SET state = 'pending', next_attempt_ms = ?3, \
                 last_error = ?4, claimed_until_ms = NULL \
                 WHERE id = ?1 AND claimed_by = ?2 AND state = 'sending'",
                args![id, token, next_attempt_ms, error],
            )
            .map_err(self.sql_err("put a notification back"))?;
        Ok(changed > 0)
    }

    /// Gives notification `id` up with `error` (without secrets) and
    /// records `notification_failed`, if `token` still holds its claim.
    pub fn give_up_notification(
        &self,
        id: i64,
        token: &str,
        now_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.finish(id, token, "failed", now_ms, Some(error), Some(error))
    }

    fn finish(
        &self,
        id: i64,
        token: &str,
        state: &str,
        now_ms: i64,
        error: Option<&str>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let op = "record a notification's outcome";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let sent_ms = (state == "sent").then_some(now_ms);
        let row = self
            .db
            .query_row(
                &format!(
                    "UPDATE notifications SET state = ?3, sent_ms = ?4, \
                     last_error = coalesce(?5, last_error), claimed_until_ms = NULL \
                     WHERE id = ?1 AND claimed_by = ?2 AND state = 'sending' RETURNING {COLS}"
                ),
                args![id, token, state, sent_ms, error],
                from_row,
            )
            .optional()
            .map_err(err())?;
        let Some(n) = row else {
            return Ok(false);
        };
        let event = if state == "sent" {
            EventKind::NotificationSent {
                receiver: n.receiver.clone(),
                notification: n.id,
                topic: n.topic.clone(),
                attempts: n.attempts,
            }
        } else {
            EventKind::NotificationFailed {
                receiver: n.receiver.clone(),
                notification: n.id,
                topic: n.topic.clone(),
                attempts: n.attempts,
            }
        };
        self.record(&n.app, n.deployment_id, NOTIFY_ACTOR, reason, &event)?;
        tx.commit().map_err(err())?;
        Ok(true)
    }

    /// How many notifications wait to be sent (pending or being sent).
    pub fn unsent_notifications(&self) -> Result<usize, StoreError> {
        self.db
            .query_row(
                "SELECT count(*) FROM notifications WHERE state IN ('pending', 'sending')",
                &[],
                |r| r.get::<i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(self.sql_err("count notifications"))
    }

    /// Notification `id`, if there is one.
    pub fn notification(&self, id: i64) -> Result<Option<Notification>, StoreError> {
        self.db
            .query_row(
                &format!("SELECT {COLS} FROM notifications WHERE id = ?1"),
                args![id],
                from_row,
            )
            .optional()
            .map_err(self.sql_err("read a notification"))
    }

    /// The newest `limit` notifications, oldest first; only `receiver`'s
    /// when given.
    pub fn notifications(
        &self,
        receiver: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let err = || self.sql_err("read notifications");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = self
            .db
            .query_map(
                &format!(
                    "SELECT {COLS} FROM notifications WHERE CAST(?1 AS TEXT) IS NULL OR receiver = ?1 \
                 ORDER BY id DESC LIMIT ?2"
                ),
                args![receiver, limit],
                from_row,
            )
            .map_err(err())?;
        rows.reverse();
        Ok(rows)
    }

    /// Each receiver's newest notification about `app`, by receiver name.
    pub fn latest_notifications(&self, app: &str) -> Result<Vec<Notification>, StoreError> {
        self.db
            .query_map(
                &format!(
                    "SELECT {COLS} FROM notifications WHERE id IN \
                 (SELECT max(id) FROM notifications WHERE app = ?1 GROUP BY receiver) \
                 ORDER BY receiver"
                ),
                args![app],
                from_row,
            )
            .map_err(self.sql_err("read the latest notifications"))
    }
}
