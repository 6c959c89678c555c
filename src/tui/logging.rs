//! Logging for the console. While the console owns the terminal nothing
//! may be printed to stdout or stderr, so `tracing` events go to
//! tui-logger's buffer and are shown in the log pane (`l`) instead.

use std::sync::Once;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Environment variable with a `tracing` filter for the log pane, e.g.
/// `ROLLGUARD_LOG=debug` or `ROLLGUARD_LOG=rollguard::probe=trace`.
/// `RUST_LOG` is used when it is not set; the default is `info`.
pub const LOG_ENV: &str = "ROLLGUARD_LOG";

/// Routes `tracing` events (and `log` records) to the log pane.
///
/// Installs a global subscriber made of an [`EnvFilter`] (see [`LOG_ENV`])
/// and tui-logger's tracing layer, and starts tui-logger. Prints nothing,
/// ever. Only the first call does anything; if another global subscriber
/// was installed first, that one stays and the log pane stays empty.
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = EnvFilter::try_from_env(LOG_ENV)
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(tui_logger::TuiTracingSubscriberLayer)
            .try_init();
        let _ = tui_logger::init_logger(tui_logger::LevelFilter::Trace);
        tui_logger::set_default_level(tui_logger::LevelFilter::Trace);
    });
}
