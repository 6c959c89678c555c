//! Where the console's actions are carried out, always on a blocking task,
//! never on the draw or input path; what comes of them arrives on the
//! [`Queue`]. [`Service::perform`] holds the one `match` over
//! [`ConfirmAction`]: each arm goes through the rollout service (a command
//! written for the detached worker, a start that records and spawns a
//! detached worker, a stale lock broken). [`Service::prepare`] checks a
//! deploy or a rollback before it is asked; [`Service::load`] reads what a
//! view shows.

use std::sync::Arc;

use crate::config::Fleet;
use crate::printable::printable;
use crate::rollout::lock;
use crate::rollout::service::{self, DeployRequest};
use crate::store::{Location, Store};

use super::action::{ConfirmAction, ConfirmedAction, Prepared};
use super::control::Request;
use super::load::{self, Load};
use super::prepare::{self, Intent};
use super::queue::{Arrival, Queue};

/// The console's way into the rollout service: the fleet, the history it
/// writes to, who acts, and where outcomes go.
#[derive(Clone, Debug)]
pub struct Service {
    fleet: Arc<Fleet>,
    db: Option<Location>,
    actor: String,
    queue: Queue,
}

impl Service {
    /// Actions go to the history at `db` (none: they are refused) as
    /// `actor`; outcomes are posted on `queue`.
    pub fn new(fleet: Arc<Fleet>, db: Option<Location>, actor: String, queue: Queue) -> Self {
        Service {
            fleet,
            db,
            actor,
            queue,
        }
    }

    fn db(&self, what: &str) -> Result<Location, String> {
        self.db
            .clone()
            .ok_or_else(|| format!("cannot {what}: this console keeps no history"))
    }

    /// Carries out `confirmed` in the background. Returns what to say at
    /// once: that it is under way, or why it cannot be done. Needs a tokio
    /// runtime.
    pub fn perform(&self, confirmed: ConfirmedAction) -> Result<String, String> {
        let ConfirmedAction { action, reason } = confirmed;
        let queue = self.queue.clone();
        match action {
            ConfirmAction::Rollout {
                app,
                deployment,
                verb,
            } => {
                let request = Request {
                    app,
                    deployment,
                    verb,
                    reason,
                };
                let db = self.db(&format!("send {}", verb.as_str()))?;
                let said = format!("sending {} to {}…", verb.as_str(), request.app);
                let actor = self.actor.clone();
                tokio::task::spawn_blocking(move || {
                    let result = request.send(&db, &actor);
                    match &result {
                        Ok(()) => tracing::info!("{actor} sent {verb} to {}", request.app),
                        Err(e) => {
                            tracing::warn!(
                                "{actor} could not send {verb} to {}: {}",
                                request.app,
                                printable(e)
                            )
                        }
                    }
                    queue.post(Arrival::Sent { request, result });
                });
                Ok(said)
            }
            ConfirmAction::Start(prepared) => {
                let db = self.db(action_name(&prepared))?;
                let said = format!(
                    "starting: {} {} {}…",
                    action_name(&prepared),
                    prepared.app,
                    prepared.version
                );
                let (fleet, actor) = (self.fleet.clone(), self.actor.clone());
                tokio::task::spawn_blocking(move || {
                    let result = start(&fleet, &db, &prepared, reason);
                    match &result {
                        Ok(said) => tracing::info!("{actor}: {said}"),
                        Err(e) => tracing::warn!(
                            "{actor} could not {} {} {}: {}",
                            action_name(&prepared),
                            prepared.app,
                            prepared.version,
                            printable(e)
                        ),
                    }
                    queue.post(Arrival::Done(result));
                });
                Ok(said)
            }
            ConfirmAction::BreakLock { app } => {
                let db = self.db("break a lock")?;
                let actor = self.actor.clone();
                let why = reason.unwrap_or_default();
                tokio::task::spawn_blocking(move || {
                    let result = break_lock(&db, &app, &actor, &why);
                    match &result {
                        Ok(said) => tracing::info!("{actor}: {said} ({})", printable(&why)),
                        Err(e) => tracing::warn!(
                            "{actor} could not break the lock of {app}: {}",
                            printable(e)
                        ),
                    }
                    queue.post(Arrival::Done(result));
                });
                Ok("breaking the lock…".into())
            }
        }
    }

    /// Checks `intent` in the background; the question (or why not)
    /// arrives as [`Arrival::Prepared`] with `token`.
    pub fn prepare(&self, token: u64, intent: Intent) {
        let queue = self.queue.clone();
        let db = match self.db("deploy or roll back") {
            Ok(db) => db,
            Err(why) => {
                queue.post(Arrival::Prepared {
                    token,
                    result: Err(why),
                });
                return;
            }
        };
        let fleet = self.fleet.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let result = prepare::prepare(&fleet, &db, &intent, &handle).map(Box::new);
            queue.post(Arrival::Prepared { token, result });
        });
    }

    /// Lists the releases whose artifacts are on the hosts of the app at
    /// fleet index `app`, in the background; they arrive as
    /// [`Loaded::Available`](super::load::Loaded::Available).
    pub fn available(&self, app: usize) {
        let Some(name) = self.fleet.apps.get(app).map(|a| a.name.clone()) else {
            return;
        };
        let (fleet, queue) = (self.fleet.clone(), self.queue.clone());
        tokio::spawn(async move {
            let execs = crate::exec::Executors::new(&fleet.hosts);
            let found = crate::rollout::preflight::available(&fleet, &execs, app).await;
            execs.close().await;
            queue.post(Arrival::Loaded(Ok(super::load::Loaded::Available {
                app: name,
                versions: found.iter().map(ToString::to_string).collect(),
            })));
        });
    }

    /// Reads what `load` asks in the background; it arrives as
    /// [`Arrival::Loaded`]. Returns false (and reads nothing) without a
    /// history.
    pub fn load(&self, load: Load) -> bool {
        let Some(db) = self.db.clone() else {
            return false;
        };
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || {
            queue.post(Arrival::Loaded(load::read(&db, &load)));
        });
        true
    }
}

/// Breaks the abandoned lock of `app` as `actor` for `why`; what to say.
fn break_lock(db: &Location, app: &str, actor: &str, why: &str) -> Result<String, String> {
    let store = Store::open_at(db).map_err(|e| e.message())?;
    let broken = lock::break_abandoned(&store, app, actor, why)
        .map_err(|e| super::prepare::in_words(&e, app))?;
    Ok(match broken {
        Some(l) => format!(
            "the lock of {app} held by {}@{} (pid {}) is broken",
            l.owner_user, l.owner_host, l.owner_pid
        ),
        None => format!("{app} was not locked"),
    })
}

fn action_name(p: &Prepared) -> &'static str {
    if p.rollback.is_some() {
        "roll back"
    } else {
        "deploy"
    }
}

/// Records the start of `p` and spawns its detached worker, through the
/// rollout service; what to say of it.
fn start(
    fleet: &Fleet,
    db: &Location,
    p: &Prepared,
    reason: Option<String>,
) -> Result<String, String> {
    let store = Store::open_at(db).map_err(|e| e.message())?;
    let req = match &p.rollback {
        Some(check) => {
            service::rollback_request(&p.app, check, reason.as_deref().unwrap_or(""), lock::me())
        }
        None => DeployRequest {
            app: p.app.clone(),
            version: p.version.clone(),
            strategy: p.strategy,
            reason,
            break_lock: false,
            owner: lock::me(),
        },
    };
    let started = service::start(fleet, db, &store, &p.preflight, &req, p.rollback.as_deref())
        .map_err(|e| super::prepare::in_words(&e, &p.app))?;
    Ok(format!(
        "{} {} {}: deployment {} started (worker {}; it goes on if the console quits)",
        action_name(p),
        started.app,
        p.version,
        started.id,
        started.worker_pid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::control::Verb;

    fn abort() -> ConfirmedAction {
        ConfirmAction::Rollout {
            app: "web".into(),
            deployment: 7,
            verb: Verb::Abort,
        }
        .confirmed("v3 fails")
    }

    fn fleet() -> Arc<Fleet> {
        let text = "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = 8080\n[[app.probe]]\nname = \"up\"\ntype = \"tcp\"\n";
        Arc::new(crate::config::parse(std::path::Path::new("t.toml"), text, &|_| None).unwrap())
    }

    #[tokio::test]
    async fn without_a_history_nothing_is_sent() {
        let (queue, mut rx) = Queue::new();
        let service = Service::new(fleet(), None, "ana".into(), queue);
        assert_eq!(
            service.perform(abort()),
            Err("cannot send abort: this console keeps no history".into())
        );
        assert!(!service.load(Load::History), "nothing to read");
        drop(service);
        assert!(rx.recv().await.is_none(), "nothing arrives");
    }

    #[tokio::test]
    async fn the_outcome_arrives_on_the_queue() {
        // A history that cannot be opened: its folder is a device.
        let db = Location::File(std::path::PathBuf::from("/dev/null/history.db"));
        let (queue, mut rx) = Queue::new();
        let service = Service::new(fleet(), Some(db), "ana".into(), queue);
        assert_eq!(service.perform(abort()), Ok("sending abort to web…".into()));
        match rx.recv().await {
            Some(Arrival::Sent { request, result }) => {
                assert_eq!(request.reason.as_deref(), Some("v3 fails"));
                assert!(result.is_err(), "no history there: {result:?}");
            }
            other => panic!("not the command's outcome: {other:?}"),
        }
    }
}
