//! The validated fleet: what the rest of rollguard reads. Built only by
//! [`super::load`], so every value here has passed validation. One file
//! per part: the fleet with its hosts and `[console]` (`fleet.rs`), an app
//! with its instances and health (`app.rs`), its probes (`probe.rs`), its
//! driver section (`driver.rs`), its traffic (`traffic.rs`) and its
//! rollout (`rollout.rs`); where the history is (`store.rs`).

mod app;
mod driver;
mod fleet;
mod probe;
mod rollout;
mod store;
mod traffic;

pub use app::*;
pub use driver::*;
pub use fleet::*;
pub use probe::*;
pub use rollout::*;
pub use store::*;
pub use traffic::*;
