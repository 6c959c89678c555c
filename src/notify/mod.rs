//! Telling people: notifications of incidents, failed rollouts and
//! rollbacks sent to Slack, Discord, webhooks, PagerDuty, email and local
//! commands, without losing one and without delaying anything else.
//!
//! The flow: events are recorded in the audit log as ever; the notifier
//! ([`sender`]) turns those after the outbox's cursor into outbox rows
//! ([`enqueue`]: one per receiver that listens to the event's topic for
//! its app, with the body it will be sent), then claims due rows and sends
//! each in its own task ([`deliver`]), retrying with backoff ([`retry`])
//! for the receiver's `retry_for`, then giving up with a
//! `notification_failed` event. A row is written before it is sent (write
//! before act), so a process killed mid-delivery loses nothing: its claim
//! lapses and the next notifier sends it. Delivery is at least once (see
//! `store::outbox`); receivers tell a repeat by `X-Rollguard-Delivery`.
//!
//! - [`crate::model::topic`] (in `model`, as config reads it too): the
//!   names `on = [...]` takes, and which event is which.
//! - [`message`]: what a notification says (pure).
//! - [`payload`]: each receiver type's body (pure).
//! - [`email`]: an email's subject, thread headers and text (pure).
//! - [`signature`]: the webhook's HMAC-SHA256 signature (pure).
//! - [`retry`]: the backoff schedule and when to give up (pure).
//! - [`enqueue`]: events into outbox rows.
//! - [`deliver`]: one attempt, over HTTP or a local command.
//! - [`smtp`]: one attempt at an email, through its SMTP server.
//! - [`sender`]: the [`Notifier`] task, run by the prober's lease holder
//!   and by every rollout worker while it runs.
//! - [`stream`]: `websocket` receivers, the audit log streamed live to
//!   clients with a token (no outbox), run by the prober's lease holder.
//! - [`cli`]: `rollguard notify test NAME`.

pub mod cli;
pub mod deliver;
pub mod email;
pub mod enqueue;
pub mod message;
pub mod payload;
pub mod retry;
pub mod sender;
pub mod signature;
pub mod smtp;
pub mod stream;

pub use sender::Notifier;
pub use stream::Stream;
