//! The one queue of what arrives from background tasks: the outcome of a
//! command sent to the history today; a deploy's preflight report, a
//! history page or a worker's log lines later. Tasks post an [`Arrival`];
//! the run loop drains the queue and hands each one to
//! [`App::arrive`](super::App::arrive), so the view state is only ever
//! changed on the loop's own task.

use tokio::sync::mpsc;

use super::control::Request;

/// Something a background task reports to the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// A rollout command was written to the history, or could not be.
    Sent {
        /// The command.
        request: Request,
        /// What came of it: the error in words.
        result: Result<(), String>,
    },
}

/// Where background tasks post what they have; cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue(mpsc::UnboundedSender<Arrival>);

impl Queue {
    /// A queue and the receiver the run loop drains.
    pub fn new() -> (Queue, mpsc::UnboundedReceiver<Arrival>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Queue(tx), rx)
    }

    /// Posts `arrival`; dropped when the console has stopped.
    pub fn post(&self, arrival: Arrival) {
        let _ = self.0.send(arrival);
    }
}
