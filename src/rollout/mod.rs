//! Rollouts: planning (pure), routing (pure), the health gate, the engine
//! that executes a plan and rolls it back, the lock, and the service that
//! starts, rolls back, recovers and steers them.

pub mod cli;
pub mod consent;
pub mod decide;
pub mod eject;
pub mod engine;
pub mod gate;
pub mod lock;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod routing;
pub mod service;
pub mod watch;
pub mod worker;
