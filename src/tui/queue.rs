//! The one queue of what arrives from background tasks: the outcome of a
//! command or a start, a deploy's or rollback's checked question, and the
//! records a view asked for. Tasks post an [`Arrival`]; the run loop
//! drains the queue and hands each one to
//! [`App::arrive`](super::App::arrive), so the view state is only ever
//! changed on the loop's own task.

use tokio::sync::mpsc;

use super::control::Request;
use super::load::Loaded;
use super::prepare::Question;
use super::theme::Theme;

/// Something a background task reports to the console.
#[derive(Clone, Debug)]
pub enum Arrival {
    /// A rollout command was written to the history, or could not be.
    Sent {
        /// The command.
        request: Request,
        /// What came of it: the error in words.
        result: Result<(), String>,
    },
    /// A deploy or a rollback by hand was checked: the question to ask,
    /// or why it cannot be done. `token` is the one the console waits on;
    /// a question it no longer waits for (Esc) is dropped.
    Prepared {
        /// Which check this answers.
        token: u64,
        /// The question, or why not.
        result: Result<Box<Question>, String>,
    },
    /// A confirmed action other than a command was done, or failed: what
    /// to say.
    Done(Result<String, String>),
    /// Records a view asked for, or why they could not be read.
    Loaded(Result<Loaded, String>),
    /// A theme `:theme` asked for was read, or could not be.
    Theme {
        /// Its name.
        name: String,
        /// The theme, or why not.
        result: Result<Box<Theme>, String>,
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
