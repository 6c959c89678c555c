//! Health judgement: turning a stream of probe results into verdicts.
//!
//! This module is pure: it does no I/O and never reads a clock. Callers pass
//! the time in, which keeps it easy to test and lets the same code judge
//! live probes (the console) and gate rollouts (a new instance must reach
//! `success_threshold` passes before its deadline).
//!
//! - [`ProbeCounter`] counts consecutive passes and failures of one probe on
//!   one instance and turns them into a [`Verdict`](crate::model::Verdict).
//! - [`Tracker`] holds a counter per (app, instance, probe) of a
//!   [`Fleet`](crate::config::Fleet), combines probes into instance verdicts
//!   (`require = all | any`) and instances into an
//!   [`AppStatus`](crate::model::AppStatus).
//! - [`good_release`] says which release of an app is good now (one release
//!   on every instance, every one healthy); [`ReleaseMarks`] says when to
//!   record it again.
//! - [`AppIncident`] says when an app's outage begins, widens and ends
//!   (one incident per outage, flaps included).

mod counter;
pub mod incident;
mod release;
mod tracker;

pub use counter::ProbeCounter;
pub use incident::{AppIncident, IncidentStep};
pub use release::{ReleaseMarks, good_release};
pub use tracker::{Change, ProbeLoc, Tracker, combine_instances, combine_probes};
