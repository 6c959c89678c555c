//! Lease rows: which process holds a role (today only the prober's) for
//! this history. This file reads and writes the `leases` table in short
//! IMMEDIATE transactions; when a holder counts as gone is decided by the
//! caller (see `monitor::lease`), passed in as a function.

use serde::Serialize;

use super::db::{DbError, Optional, Row, args};
use super::{Store, StoreError};

/// A process that holds or asks for a lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseHolder {
    /// What it is: `console`, `agent` or `demo`.
    pub kind: String,
    /// The user running it.
    pub user: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Random per process, telling holders apart when a pid is reused.
    pub token: String,
    /// A fingerprint of the fleet it probes (see `monitor::lease`).
    pub fleet: String,
    /// When it took the lease, ms since the epoch.
    pub acquired_ms: i64,
    /// Its last heartbeat, ms since the epoch.
    pub heartbeat_ms: i64,
}

/// What [`Store::take_lease`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseTake {
    /// The caller holds the lease now: it was free, already the caller's,
    /// or its holder was gone (`took_over` names that holder).
    Held {
        /// The holder the lease was taken from, if any.
        took_over: Option<LeaseHolder>,
    },
    /// Another live process holds it.
    HeldBy(LeaseHolder),
}

const COLS: &str =
    "holder_kind, owner_user, owner_host, owner_pid, token, fleet, acquired_ms, heartbeat_ms";

fn holder_from_row(r: &Row<'_>) -> Result<LeaseHolder, DbError> {
    Ok(LeaseHolder {
        kind: r.get(0)?,
        user: r.get(1)?,
        host: r.get(2)?,
        pid: u32::try_from(r.get::<i64>(3)?).unwrap_or(0),
        token: r.get(4)?,
        fleet: r.get(5)?,
        acquired_ms: r.get(6)?,
        heartbeat_ms: r.get(7)?,
    })
}

impl Store {
    /// The holder of `role`'s lease, if anyone ever took it (perhaps one
    /// that is gone).
    pub fn lease(&self, role: &str) -> Result<Option<LeaseHolder>, StoreError> {
        self.db
            .query_row(
                &format!("SELECT {COLS} FROM leases WHERE role = ?1"),
                args![role],
                holder_from_row,
            )
            .optional()
            .map_err(self.sql_err("read a lease"))
    }

    /// Takes `role`'s lease for `me` at `now_ms` when it is free, already
    /// held by `me` (same token: then only the heartbeat moves), or held by
    /// a holder that `gone` says has gone; otherwise reports the holder.
    /// One IMMEDIATE transaction, so of two processes asking at once one
    /// gets it.
    pub fn take_lease(
        &self,
        role: &str,
        me: &LeaseHolder,
        now_ms: i64,
        gone: impl Fn(&LeaseHolder) -> bool,
    ) -> Result<LeaseTake, StoreError> {
        let op = "take a lease";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let current = tx
            .query_row(
                &format!("SELECT {COLS} FROM leases WHERE role = ?1"),
                args![role],
                holder_from_row,
            )
            .optional()
            .map_err(err())?;
        let took_over = match current {
            Some(h) if h.token == me.token => {
                tx.execute(
                    "UPDATE leases SET heartbeat_ms = ?2 WHERE role = ?1",
                    args![role, now_ms],
                )
                .map_err(err())?;
                tx.commit().map_err(err())?;
                return Ok(LeaseTake::Held { took_over: None });
            }
            Some(h) if !gone(&h) => return Ok(LeaseTake::HeldBy(h)),
            other => other,
        };
        tx.execute(
            &format!(
                "INSERT INTO leases (role, {COLS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                 ON CONFLICT (role) DO UPDATE SET holder_kind = excluded.holder_kind, \
                   owner_user = excluded.owner_user, owner_host = excluded.owner_host, \
                   owner_pid = excluded.owner_pid, token = excluded.token, \
                   fleet = excluded.fleet, acquired_ms = excluded.acquired_ms, \
                   heartbeat_ms = excluded.heartbeat_ms"
            ),
            args![
                role,
                me.kind,
                me.user,
                me.host,
                i64::from(me.pid),
                me.token,
                me.fleet,
                now_ms
            ],
        )
        .map_err(err())?;
        tx.commit().map_err(err())?;
        Ok(LeaseTake::Held { took_over })
    }

    /// Moves the heartbeat of `role`'s lease held with `token` to `now_ms`.
    /// `false` when the lease is no longer held with that token (another
    /// process took it over): the caller must stop acting on it.
    pub fn renew_lease(&self, role: &str, token: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE leases SET heartbeat_ms = ?3 WHERE role = ?1 AND token = ?2",
                args![role, token, now_ms],
            )
            .map_err(self.sql_err("renew a lease"))?;
        Ok(n == 1)
    }

    /// Gives up `role`'s lease if it is still held with `token`, so the
    /// next process takes it at once.
    pub fn release_lease(&self, role: &str, token: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "DELETE FROM leases WHERE role = ?1 AND token = ?2",
                args![role, token],
            )
            .map_err(self.sql_err("release a lease"))?;
        Ok(())
    }
}
