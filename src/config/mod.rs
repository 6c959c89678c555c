//! Configuration. (in progress)
mod types;
pub use types::*;
