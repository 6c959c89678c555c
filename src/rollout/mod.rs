//! Rollouts: planning (pure), routing (pure), the health gate, and the
//! engine that executes a plan and rolls it back.

pub mod cli;
pub mod engine;
pub mod gate;
pub mod plan;
pub mod preflight;
pub mod routing;
pub mod watch;
pub mod worker;
