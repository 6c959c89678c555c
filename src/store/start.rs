//! Starting a deployment in one transaction: the lock, the deployment row,
//! its batches and its first events are written together or not at all.
//!
//! It exists because a rollout that starts must be recoverable from its
//! records: a worker is only spawned once all of them are on disk, and a
//! start that cannot be recorded leaves nothing behind (no lock without a
//! deployment, no deployment without batches).
//!
//! Breaking an abandoned lock happens in the same transaction, and so does
//! settling what that lock's holder left: its deployment, if unfinished,
//! is marked `superseded`, so recovery never undoes the newer deployment to
//! finish the older one. (Only the broken lock's deployment: a worker that
//! has just released its lock and is about to record its outcome is never
//! touched.)

use serde_json::{Value, json};

use super::db::{Optional, args};
use super::lock::{LOCK_COLS, lock_from_row};
use super::{Lock, LockOwner, Store, StoreError};
use crate::config::Strategy;
use crate::model::Outcome;
use crate::model::event::EventKind;

/// One event written with the start, tied to the new deployment.
#[derive(Clone, Debug)]
pub struct StartEvent {
    /// The event.
    pub event: EventKind,
    /// Why, as the actor gave it.
    pub reason: Option<String>,
}

/// One batch (rolling) or step (canary, blue-green) to record.
#[derive(Clone, Debug)]
pub struct NewBatch {
    /// `batch` or `step`.
    pub kind: &'static str,
    /// The instances it changes, by name.
    pub instances: Vec<String>,
    /// The new side's share of traffic in this step, when it shifts traffic.
    pub traffic_percent: Option<f64>,
}

/// Everything a deployment's start records.
#[derive(Clone, Debug)]
pub struct NewDeployment {
    /// The app.
    pub app: String,
    /// Who takes the lock.
    pub owner: LockOwner,
    /// The lock's reason and the deployment's.
    pub reason: String,
    /// A lock to break first: only this exact lock (same holder and time),
    /// so a lock taken by someone else since it was judged stale is never
    /// broken. The text says why it could be broken.
    pub break_lock: Option<(Lock, String)>,
    /// The version running before, when known.
    pub from_version: Option<String>,
    /// The version deployed.
    pub to_version: String,
    /// The strategy.
    pub strategy: Strategy,
    /// The stored plan (JSON).
    pub plan: Value,
    /// Warnings from planning and preflight.
    pub warnings: Vec<String>,
    /// The batches, in order.
    pub batches: Vec<NewBatch>,
    /// The first events, after `lock_taken`, in order.
    pub events: Vec<StartEvent>,
}

/// What a start wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartRecord {
    /// The new deployment's id.
    pub deployment: i64,
    /// The broken lock's deployment, when it was unfinished and is now
    /// `superseded`.
    pub superseded: Vec<i64>,
}

impl Store {
    /// Records the start of a deployment in one IMMEDIATE transaction:
    /// breaks `break_lock` if it is still the lock held (superseding its
    /// deployment when unfinished), takes the lock, inserts the
    /// deployment, its batches and its first events. Returns
    /// `Ok(Err(lock))`, writing nothing, when someone else holds the lock.
    pub fn start_deployment(
        &self,
        d: &NewDeployment,
    ) -> Result<Result<StartRecord, Lock>, StoreError> {
        let op = "record the start of a deployment";
        let err = || self.sql_err(op);
        let tx = self.immediate(op)?;
        let now = self.clock_ms()?;
        // Read at `now`, the store's clock this start stamps with.
        let held = tx
            .query_row(
                &format!("SELECT {LOCK_COLS} FROM locks WHERE app = ?1"),
                args![d.app],
                lock_from_row,
            )
            .optional()
            .map_err(err())?
            .map(|lock| Lock {
                read_ms: now,
                ..lock
            });
        let event = |deployment: Option<i64>, event: &EventKind, reason: Option<&str>| {
            let (kind, evidence) = event.to_stored();
            tx.execute(
                "INSERT INTO events (at_ms, app, deployment_id, kind, actor, reason, evidence) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                args![
                    now,
                    d.app,
                    deployment,
                    kind,
                    d.owner.user,
                    reason,
                    evidence.as_ref().map(Value::to_string)
                ],
            )
            .map_err(self.sql_err(op))
        };
        let mut broken_deployment = None;
        if let Some(lock) = held {
            match &d.break_lock {
                Some((stale, why)) if *stale == lock => {
                    tx.execute("DELETE FROM locks WHERE app = ?1", args![d.app])
                        .map_err(err())?;
                    event(
                        lock.deployment_id,
                        &EventKind::LockBroken {
                            lock: lock_evidence(&lock),
                        },
                        Some(why),
                    )?;
                    broken_deployment = lock.deployment_id;
                }
                // Dropping the transaction rolls it back: nothing written.
                _ => return Ok(Err(lock)),
            }
        }
        tx.execute(
            "INSERT INTO locks (app, deployment_id, owner_user, owner_host, owner_pid, reason, \
             acquired_ms, heartbeat_ms, owner_start) VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
            args![
                d.app,
                d.owner.user,
                d.owner.host,
                d.owner.pid,
                d.reason,
                now,
                d.owner.start.and_then(|s| i64::try_from(s).ok())
            ],
        )
        .map_err(err())?;
        event(None, &EventKind::LockTaken, Some(&d.reason))?;
        let superseded: Vec<i64> = tx
            .query_map(
                "UPDATE deployments SET state = 'superseded', outcome = 'superseded', \
                 ended_at_ms = ?2 WHERE app = ?1 AND id = ?3 AND ended_at_ms IS NULL \
                 RETURNING id",
                args![d.app, now, broken_deployment],
                |r| r.get(0),
            )
            .map_err(err())?;
        for old in &superseded {
            super::batch::settle_batches(&tx, *old, Outcome::Superseded, now).map_err(err())?;
            event(
                Some(*old),
                &EventKind::DeploymentSuperseded,
                Some("its worker was gone and a new deployment of the app started"),
            )?;
        }
        let warnings = Value::from(d.warnings.clone()).to_string();
        let id: i64 = tx
            .query_row(
                "INSERT INTO deployments (app, from_version, to_version, strategy, state, \
                 actor, reason, started_at_ms, plan, warnings) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9) RETURNING id",
                args![
                    d.app,
                    d.from_version,
                    d.to_version,
                    d.strategy.as_str(),
                    d.owner.user,
                    d.reason,
                    now,
                    d.plan.to_string(),
                    warnings
                ],
                |r| r.get(0),
            )
            .map_err(err())?;
        for (idx, b) in d.batches.iter().enumerate() {
            let instances = Value::from(b.instances.clone()).to_string();
            tx.execute(
                "INSERT INTO batches (deployment_id, idx, kind, instances, traffic_percent, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
                args![id, idx, b.kind, instances, b.traffic_percent],
            )
            .map_err(err())?;
        }
        tx.execute(
            "UPDATE locks SET deployment_id = ?2 WHERE app = ?1",
            args![d.app, id],
        )
        .map_err(err())?;
        for e in &d.events {
            event(Some(id), &e.event, e.reason.as_deref())?;
        }
        tx.commit().map_err(err())?;
        Ok(Ok(StartRecord {
            deployment: id,
            superseded,
        }))
    }
}

/// A lock as an event's evidence.
pub fn lock_evidence(l: &Lock) -> Value {
    json!({"user": l.owner_user, "host": l.owner_host, "pid": l.owner_pid, "start": l.owner_start,
           "reason": l.reason, "acquired_ms": l.acquired_ms, "heartbeat_ms": l.heartbeat_ms,
           "deployment_id": l.deployment_id})
}
