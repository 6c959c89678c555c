//! What this process does for the fleet now: it probes (it holds the
//! prober's lease, or probes alone where the history cannot be written),
//! or it reads what another process probes. The monitor's lease loop
//! (`monitor::lease`) decides it; the fleet state keeps it for the header
//! and the logs.

use crate::store::LeaseHolder;

/// What this process does for the fleet now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reading what is already stored, before the lease is asked for.
    Starting,
    /// It holds the lease and probes.
    Prober,
    /// Another process probes; this one reads what it writes.
    Reader {
        /// Who probes.
        holder: LeaseHolder,
        /// It probes another fleet (its config differs from this one's):
        /// what only this config names is probed by nobody.
        other_fleet: bool,
    },
    /// It probes without a lease: the history cannot be written, so no
    /// other process can be told apart (the reason says why).
    Alone(String),
}

impl Role {
    /// Whether this process runs the probes.
    pub fn probes(&self) -> bool {
        matches!(self, Role::Prober | Role::Alone(_))
    }

    /// The role in a few words, for the header and logs.
    pub fn describe(&self) -> String {
        match self {
            Role::Starting => "starting".into(),
            Role::Prober => "probing".into(),
            Role::Reader {
                holder,
                other_fleet: false,
            } => format!("reading · {} probes", describe_holder(holder)),
            Role::Reader {
                holder,
                other_fleet: true,
            } => format!(
                "reading · {} probes another config",
                describe_holder(holder)
            ),
            Role::Alone(_) => "probing alone (history unusable)".into(),
        }
    }
}

/// "agent ana@db-1 (pid 42)".
pub fn describe_holder(h: &LeaseHolder) -> String {
    format!("{} {}@{} (pid {})", h.kind, h.user, h.host, h.pid)
}
