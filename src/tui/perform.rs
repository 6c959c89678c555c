//! Where confirmed actions are carried out: [`Service::perform`] holds the
//! one `match` over [`ConfirmAction`], and each arm goes through the
//! rollout service (today [`Request::send`], which writes the command to
//! the history for the detached worker) on a blocking task, never on the
//! draw or input path. What comes of it arrives on the [`Queue`].

use std::path::PathBuf;

use super::action::{ConfirmAction, ConfirmedAction};
use super::control::Request;
use super::queue::{Arrival, Queue};

/// The console's way into the rollout service: the history it writes to,
/// who acts, and where outcomes go.
#[derive(Clone, Debug)]
pub struct Service {
    db: Option<PathBuf>,
    actor: String,
    queue: Queue,
}

impl Service {
    /// Actions go to the history at `db` (none: they are refused) as
    /// `actor`; outcomes are posted on `queue`.
    pub fn new(db: Option<PathBuf>, actor: String, queue: Queue) -> Self {
        Service { db, actor, queue }
    }

    /// Carries out `confirmed` in the background. Returns what to say at
    /// once: that it is under way, or why it cannot be done. Needs a tokio
    /// runtime.
    pub fn perform(&self, confirmed: ConfirmedAction) -> Result<String, String> {
        let ConfirmedAction { action, reason } = confirmed;
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
                let Some(db) = self.db.clone() else {
                    return Err(format!(
                        "cannot send {}: this console keeps no history",
                        verb.as_str()
                    ));
                };
                let said = format!("sending {} to {}…", verb.as_str(), request.app);
                let (actor, queue) = (self.actor.clone(), self.queue.clone());
                tokio::task::spawn_blocking(move || {
                    let result = request.send(&db, &actor);
                    queue.post(Arrival::Sent { request, result });
                });
                Ok(said)
            }
        }
    }
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

    #[tokio::test]
    async fn without_a_history_nothing_is_sent() {
        let (queue, mut rx) = Queue::new();
        let service = Service::new(None, "ana".into(), queue);
        assert_eq!(
            service.perform(abort()),
            Err("cannot send abort: this console keeps no history".into())
        );
        drop(service);
        assert!(rx.recv().await.is_none(), "nothing arrives");
    }

    #[tokio::test]
    async fn the_outcome_arrives_on_the_queue() {
        // A history that cannot be opened: its folder is a device.
        let db = PathBuf::from("/dev/null/history.db");
        let (queue, mut rx) = Queue::new();
        let service = Service::new(Some(db), "ana".into(), queue);
        assert_eq!(service.perform(abort()), Ok("sending abort to web…".into()));
        match rx.recv().await {
            Some(Arrival::Sent { request, result }) => {
                assert_eq!(request.reason.as_deref(), Some("v3 fails"));
                assert!(result.is_err(), "no history there: {result:?}");
            }
            None => panic!("nothing arrived"),
        }
    }
}
