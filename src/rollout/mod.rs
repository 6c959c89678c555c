//! Rollouts: planning (pure), routing (pure), the health gate, and the
//! engine that executes a plan and rolls it back.

pub mod plan;
pub mod routing;
pub mod gate;
