//! Probes. (in progress)
pub mod condition;
