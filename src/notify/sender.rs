//! The notifier: a background task that, every [`POLL`], turns new events
//! into outbox rows ([`enqueue`]) and sends the rows that are due. Each
//! receiver gets at most [`IN_FLIGHT`] attempts at once, each in its own
//! task bounded by the receiver's `timeout`, so a receiver that hangs or
//! fails delays nothing but itself; the task that probes, gates or rolls
//! back never waits for it. A row is claimed for the attempt's timeout
//! plus [`CLAIM_MARGIN`]: if this process dies mid-delivery, another
//! notifier takes the row once that lapses.
//!
//! Who runs it: the process that holds the prober's lease (a console,
//! `rollguard agent`, the demo) while it holds it, and every rollout
//! worker while its rollout runs, so a rollout's own notifications go out
//! when no console or agent is open. Several notifiers on one history are
//! safe: making rows and claiming them are transactions.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::deliver::{attempt, client};
use super::enqueue::enqueue;
use super::retry::{Judgement, Next, after_failure};
use crate::config::{Fleet, Receiver, ReceiverKind};
use crate::model::now_ms;
use crate::shutdown::Shutdown;
use crate::store::Location;
use crate::store::{Notification, Store};

/// How often the outbox is looked at.
pub const POLL: Duration = Duration::from_millis(500);

/// How long a claim outlives its attempt's timeout.
pub const CLAIM_MARGIN: Duration = Duration::from_secs(2);

/// Attempts one receiver may have in flight at once.
pub const IN_FLIGHT: usize = 4;

use crate::store::{SharedStore as Shared, with_store};

/// Runs `f` on the history in a blocking task.
async fn blocking<T: Send + 'static>(
    db: &Location,
    store: &Shared,
    f: impl FnOnce(&Store) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (db, store) = (db.clone(), store.clone());
    tokio::task::spawn_blocking(move || with_store(&db, &store, f))
        .await
        .map_err(|e| e.to_string())?
}

/// A running notifier. [`Notifier::stop`] ends it.
pub struct Notifier {
    db: Location,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Starts notifying `fleet`'s receivers from the history at `db`;
    /// `None` when the config has no receiver told through the outbox
    /// (this process then leaves the audit log to notifiers that have
    /// some).
    pub fn start(fleet: Arc<Fleet>, db: &Location) -> Option<Notifier> {
        Notifier::start_every(fleet, db, POLL)
    }

    /// [`Notifier::start`], looking every `poll`.
    pub fn start_every(fleet: Arc<Fleet>, db: &Location, poll: Duration) -> Option<Notifier> {
        if !fleet.receivers().iter().any(|r| r.kind.outbox()) {
            return None;
        }
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(run(fleet, db.clone(), poll, Shutdown::new(rx)));
        Some(Notifier {
            db: db.clone(),
            shutdown,
            task,
        })
    }

    /// Stops looking for rows, and waits for the attempts in flight
    /// (each ends within its receiver's timeout).
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.task).await;
    }

    /// Goes on until no notification is waiting to be sent, or `within`
    /// has passed, then stops: a rollout worker's last notifications go
    /// out before it exits. What is left is sent by the next notifier.
    pub async fn finish(self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let store: Shared = Arc::default();
        loop {
            tokio::time::sleep(POLL).await;
            let waiting = blocking(&self.db, &store, |s| {
                s.unsent_notifications().map_err(|e| e.message())
            })
            .await;
            if matches!(waiting, Ok(0)) || tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        self.stop().await;
    }
}

/// A random name for this notifier's claims.
fn token() -> String {
    format!(
        "{}:{}:{}",
        crate::host::hostname(),
        std::process::id(),
        crate::host::token()
    )
}

async fn run(fleet: Arc<Fleet>, db: Location, poll: Duration, mut shutdown: Shutdown) {
    let receivers: Vec<Arc<Receiver>> = fleet
        .receivers()
        .into_iter()
        .filter(|r| r.kind.outbox())
        .collect();
    let token = token();
    let store: Shared = Arc::default();
    let http = client();
    let busy: HashMap<String, Arc<AtomicUsize>> = receivers
        .iter()
        .map(|r| (r.name.clone(), Arc::default()))
        .collect();
    let mut tasks = JoinSet::new();
    let mut warned = false;
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !shutdown.tick(&mut tick).await {
            break;
        }
        while tasks.try_join_next().is_some() {}
        let f = fleet.clone();
        let made = blocking(&db, &store, move |s| {
            enqueue(&f, s, now_ms()).map_err(|e| e.message())
        })
        .await;
        match made {
            Ok(_) => warned = false,
            Err(e) => {
                if !warned {
                    tracing::warn!("cannot make notifications from the history: {e}");
                    warned = true;
                }
                continue;
            }
        }
        for r in &receivers {
            let Some(count) = busy.get(&r.name) else {
                continue;
            };
            let free = IN_FLIGHT.saturating_sub(count.load(Ordering::Relaxed));
            if free == 0 {
                continue;
            }
            let (name, tok) = (r.name.clone(), token.clone());
            let lease = (r.timeout + CLAIM_MARGIN).as_millis() as i64;
            let claimed = blocking(&db, &store, move |s| {
                // By the store's clock, as every sender on every bastion.
                let now = s.clock_ms().map_err(|e| e.message())?;
                s.claim_notifications(&name, &tok, now, lease, free)
                    .map_err(|e| e.message())
            })
            .await;
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(receiver = %r.name, "cannot claim notifications: {e}");
                    continue;
                }
            };
            for n in claimed {
                count.fetch_add(1, Ordering::Relaxed);
                let job = Job {
                    receiver: r.clone(),
                    http: http.clone(),
                    db: db.clone(),
                    store: store.clone(),
                    token: token.clone(),
                    busy: count.clone(),
                };
                tasks.spawn(job.send(n));
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// What one attempt needs.
struct Job {
    receiver: Arc<Receiver>,
    http: reqwest::Client,
    db: Location,
    store: Shared,
    token: String,
    busy: Arc<AtomicUsize>,
}

impl Job {
    /// A command receiver's body with, in its `timeline`, the incident's
    /// (else the deployment's) whole timeline as the history has it now,
    /// as `rollguard incident` writes it; the message's own Markdown when
    /// it cannot be read.
    async fn with_timeline(&self, payload: &serde_json::Value) -> serde_json::Value {
        use crate::report::{Subject, timeline};
        let event = &payload["event"];
        let subject = match (event["incident"].as_i64(), event["deployment"].as_i64()) {
            (Some(i), _) => Subject::Incident(i),
            (None, Some(d)) => Subject::Deployment(d),
            (None, None) => return payload.clone(),
        };
        let read = blocking(&self.db, &self.store, move |s| {
            timeline(s, subject).map_err(|e| e.to_string())
        })
        .await;
        let mut payload = payload.clone();
        match read {
            Ok(markdown) => payload["timeline"] = serde_json::Value::String(markdown),
            Err(e) => tracing::debug!("the timeline of {subject} cannot be read: {e}"),
        }
        payload
    }

    /// Sends `n` once and records how it went.
    async fn send(self, n: Notification) {
        let r = &self.receiver;
        let payload = match r.kind {
            ReceiverKind::Command { .. } => self.with_timeline(&n.payload).await,
            _ => n.payload.clone(),
        };
        let a = attempt(&self.http, r, n.id, &n.topic, &n.app, &payload).await;
        let (judgement, attempts, created, retry_for) =
            (a.judgement, n.attempts, n.created_ms, r.retry_for);
        let (id, token, answer) = (n.id, self.token.clone(), a.answer.clone());
        let recorded = blocking(&self.db, &self.store, move |s| {
            let e = |e: crate::store::StoreError| e.message();
            // Retries are timed by the store's clock, which claims read.
            let now = s.clock_ms().map_err(e)?;
            let next = match judgement {
                Judgement::Delivered => None,
                j => Some(after_failure(j, attempts, created, now, retry_for)),
            };
            let done = match &next {
                None => s.mark_notification_sent(id, &token, now),
                Some(Next::RetryAt(at)) => s.retry_notification(id, &token, *at, &answer),
                Some(Next::GiveUp) => s.give_up_notification(id, &token, now, &answer),
            }
            .map_err(e)?;
            Ok((next, now, done))
        })
        .await;
        let (name, topic, tries) = (&r.name, &n.topic, n.attempts);
        match recorded {
            Err(e) => tracing::warn!(
                receiver = %name,
                notification = id,
                "cannot record a notification's attempt ({}): {e}",
                a.answer
            ),
            Ok((_, _, false)) => tracing::warn!(
                receiver = %name,
                notification = id,
                "another notifier took this notification over during its attempt"
            ),
            Ok((None, _, true)) => {
                tracing::info!(receiver = %name, notification = id, "{topic} sent ({})", a.answer)
            }
            Ok((Some(Next::RetryAt(at)), now, true)) => tracing::warn!(
                receiver = %name,
                notification = id,
                "{topic} not sent (attempt {tries}: {}); trying again in {} ms",
                a.answer,
                at - now
            ),
            Ok((Some(Next::GiveUp), _, true)) => tracing::error!(
                receiver = %name,
                notification = id,
                "{topic} given up after {tries} attempts: {}",
                a.answer
            ),
        }
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }
}
