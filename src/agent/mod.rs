//! `rollguard agent`: the fleet watched without a console. The agent asks
//! for the prober's lease like any console ([`crate::monitor`]) and, while
//! it holds it, probes, judges, stores history and verdicts and opens and
//! resolves incidents; consoles opened on the same history then read what
//! it writes and probe nothing. It logs one line per event to standard
//! error, each starting with a `<N>` syslog priority that journald reads,
//! with control characters made visible; a status line every
//! [`STATUS_EVERY`]. SIGTERM or SIGINT stop it cleanly (probes end, the
//! history is flushed, the lease is given up); SIGHUP is logged and
//! ignored. [`UNIT`] is an example systemd unit.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::Fleet;
use crate::error::{Code, UserError};
use crate::monitor::{HolderKind, Monitor};
use crate::printable::printable;
use crate::store::Location;

/// An example systemd unit for the agent (`rollguard agent --systemd-unit`).
pub const UNIT: &str = include_str!("rollguard-agent.service");

/// How often the agent logs what it does.
pub const STATUS_EVERY: Duration = Duration::from_secs(60);

/// `rollguard agent`'s options.
#[derive(clap::Args, Debug, Default)]
pub struct AgentArgs {
    /// Print an example systemd unit for the agent and exit.
    #[arg(long)]
    pub systemd_unit: bool,
}

/// Log lines for journald: `<priority>LEVEL message key=value…`.
struct Journal;

/// The syslog priority of a level, as journald reads it from a `<N>`
/// prefix.
fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = event.metadata().level();
        let mut fields = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut fields), event)?;
        writeln!(w, "<{}>{level} {}", priority(level), printable(&fields))
    }
}

/// Routes logs to standard error in the agent's format; `ROLLGUARD_LOG`
/// filters them (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLLGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Journal)
        .try_init();
}

/// Runs the agent on `fleet` with the history at `db` until SIGTERM or
/// SIGINT.
pub async fn run(fleet: Arc<Fleet>, db: &Location) -> Result<(), UserError> {
    let signals = |kind| {
        signal(kind).map_err(|e| UserError::new(Code::Exec, format!("cannot watch signals: {e}")))
    };
    let (mut term, mut int, mut hup) = (
        signals(SignalKind::terminate())?,
        signals(SignalKind::interrupt())?,
        signals(SignalKind::hangup())?,
    );
    let monitor = Monitor::start_as(fleet.clone(), db, HolderKind::Agent)?;
    let instances: usize = fleet.apps.iter().map(|a| a.instances.len()).sum();
    tracing::info!(
        "agent started: {} apps, {instances} instances, history {}",
        fleet.apps.len(),
        db
    );
    let mut status = tokio::time::interval(STATUS_EVERY);
    status.tick().await;
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => tracing::info!("SIGHUP ignored: restart the agent to read a changed config"),
            _ = status.tick() => {
                let now = monitor.counters.probes.load(Ordering::Relaxed);
                let w = monitor.writer_stats();
                tracing::info!(
                    "{}: {:.1} results/s, {} failed so far; history: {} written, {} waiting, {} lost",
                    monitor.role().borrow().describe(),
                    (now - seen) as f64 / STATUS_EVERY.as_secs_f64(),
                    monitor.counters.failures.load(Ordering::Relaxed),
                    w.written,
                    w.pending,
                    w.failed,
                );
                seen = now;
            }
        }
    }
    tracing::info!("stopping");
    let stats = monitor.stop().await;
    tracing::info!(
        "agent stopped: {} results written, {} lost",
        stats.written,
        stats.failed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_agent_and_stops_it_with_sigterm() {
        assert!(UNIT.contains("ExecStart=/usr/local/bin/rollguard agent"));
        assert!(UNIT.contains("KillSignal=SIGTERM"));
        assert!(UNIT.contains("[Install]"));
        assert_eq!(priority(&Level::WARN), 4);
    }
}
