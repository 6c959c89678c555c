//! rollguard: a terminal console that watches a fleet of applications,
//! judges their health, and (from the rollout modules on) deploys and rolls
//! them back. The binary in `main.rs` is a thin command line over this
//! library; tests use the library directly.

pub mod config;
pub mod demo;
pub mod driver;
pub mod error;
pub mod exec;
pub mod health;
pub mod model;
pub mod monitor;
pub mod probe;
pub mod rollout;
pub mod store;
pub mod traffic;
pub mod tui;
