//! Operators' commands and the worker's signals, as the engine takes them:
//! read from the store in order, recorded, and handed to `decide` as
//! observations.

use serde_json::json;

use super::{Engine, Failure, Signal};
use crate::model::event::EventKind;
use crate::model::{Trigger, Verb};
use crate::rollout::decide::{Decision, Observation, decide};

impl Engine {
    /// Reads pending signals without waiting. An abort cancels gates.
    pub(super) fn drain_signals(&mut self) {
        while let Ok(sig) = self.signals.try_recv() {
            self.handle_signal(sig);
        }
    }

    /// Records a command and takes what [`decide`] makes of it while a
    /// stage runs: an abort cancels the stage's gates, an approval ends a
    /// manual step, a pause is taken after the stage.
    pub(super) fn handle_signal(&mut self, sig: Signal) {
        let Some(verb) = self.record_signal(sig) else {
            return;
        };
        let (state, decision) = decide(self.state, &self.policy, Observation::Command(verb));
        self.state = state;
        match decision {
            Decision::CancelStage => {
                let _ = self.cancel_tx.send(true);
            }
            Decision::Approve => self.approved = true,
            _ => {}
        }
    }

    /// Records `sig` (a command as its sender's event) and returns the
    /// command's verb (one this version does not know never reaches the
    /// engine: the store leaves it out as it takes it).
    pub(super) fn record_signal(&mut self, sig: Signal) -> Option<Verb> {
        match sig {
            Signal::Command(c) => {
                let verb = c.verb;
                self.event_by(
                    &c.actor,
                    EventKind::command(verb, &c.actor),
                    c.reason.as_deref(),
                );
                if verb == Verb::Abort && self.aborted.is_none() {
                    self.aborted = Some((c.actor.clone(), c.reason.clone()));
                }
                self.last_command = Some((c.actor, c.reason));
                Some(verb)
            }
        }
    }

    /// Waits for the next known command; `until` ends the wait as
    /// [`Observation::WindowEnded`].
    pub(super) async fn next_command(
        &mut self,
        until: Option<tokio::time::Instant>,
    ) -> Observation {
        loop {
            let sleep = async {
                match until {
                    Some(end) => tokio::time::sleep_until(end).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = sleep => return Observation::WindowEnded,
                sig = self.signals.recv() => match sig {
                    Some(sig) => {
                        if let Some(verb) = self.record_signal(sig) {
                            return Observation::Command(verb);
                        }
                    }
                    // The poller is gone: nothing more can arrive.
                    None => {
                        if until.is_none() {
                            std::future::pending::<()>().await;
                        }
                        tokio::time::sleep_until(until.unwrap_or_else(tokio::time::Instant::now)).await;
                        return Observation::WindowEnded;
                    }
                },
            }
        }
    }

    pub(super) fn abort_failure(&self) -> Option<Failure> {
        self.aborted.as_ref().map(|(actor, reason)| Failure {
            trigger: Trigger::Abort,
            reason: format!(
                "aborted by {actor}{}",
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            evidence: json!({"actor": actor}),
        })
    }
}
