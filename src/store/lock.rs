//! The per-app deployment lock: taken in an IMMEDIATE transaction (of two
//! processes trying at once exactly one wins), tied to its deployment,
//! handed to the worker, heartbeated, released by its holder, broken by
//! an operator. Who counts as gone is decided in `rollout::lock`.

use serde::Serialize;

use super::db::{DbError, Dialect, Optional, Row, args};
use super::queries::{int, text};
use super::{Store, StoreError, schema};

/// The lock that lets at most one deployment per app run at a time,
/// across processes and users. Two locks are equal when their rows are:
/// the clock they were read at does not count.
#[derive(Clone, Debug, Serialize)]
pub struct Lock {
    /// The app locked.
    pub app: String,
    /// The deployment holding it, once created.
    pub deployment_id: Option<i64>,
    /// The user who took it.
    pub owner_user: String,
    /// The host it was taken on.
    pub owner_host: String,
    /// The process holding it (it may be handed to a worker process).
    pub owner_pid: i64,
    /// When that process started, in clock ticks after its host's boot
    /// (`None` when not known: locks recorded before schema 5): with the
    /// host and pid, it tells the holder from a later process that was
    /// given the same pid.
    pub owner_start: Option<i64>,
    /// Why it was taken.
    pub reason: String,
    /// When it was taken.
    pub acquired_ms: i64,
    /// When its holder last said it is alive (by the store's clock).
    pub heartbeat_ms: i64,
    /// The store's clock when the row was read (0 when not read from a
    /// store): what the heartbeat's age is judged against, so bastions
    /// whose clocks disagree judge a lock alike.
    #[serde(skip)]
    pub read_ms: i64,
}

impl PartialEq for Lock {
    fn eq(&self, other: &Lock) -> bool {
        let row = |l: &Lock| {
            (
                l.app.clone(),
                l.deployment_id,
                l.owner_user.clone(),
                l.owner_host.clone(),
                l.owner_pid,
                l.owner_start,
                l.reason.clone(),
                l.acquired_ms,
                l.heartbeat_ms,
            )
        };
        row(self) == row(other)
    }
}

impl Eq for Lock {}

impl Lock {
    /// Whether the holder has not sent a heartbeat for more than
    /// `stale_after_ms` at `now_ms`. A heartbeat in the future (clocks of
    /// two hosts disagree) is not stale. A stale lock is never broken
    /// automatically; the console offers [`Store::break_lock`].
    pub fn is_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        now_ms.saturating_sub(self.heartbeat_ms) > stale_after_ms
    }
}

/// Who takes a lock: recorded so others can see who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockOwner {
    /// User name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// The process's start time (see [`Lock::owner_start`]), when known.
    pub start: Option<u64>,
}

impl LockOwner {
    /// The start time as stored (an integer column).
    fn stored_start(&self) -> Option<i64> {
        self.start.and_then(|s| i64::try_from(s).ok())
    }
}

pub(super) const LOCK_COLS: &str = "app, deployment_id, owner_user, owner_host, owner_pid, reason, \
     acquired_ms, heartbeat_ms, owner_start";

/// [`LOCK_COLS`] (or `cols`) and the store's clock, as [`lock_from_row`]
/// reads them.
fn lock_select(dialect: Dialect, cols: &str) -> String {
    format!("{cols}, {}", dialect.now_ms())
}

/// [`LOCK_COLS`] for a file older than [`schema::LOCK_START_FROM`]
/// (opened read-only, not migrated): no start time.
const LOCK_COLS_BEFORE_START: &str = "app, deployment_id, owner_user, owner_host, owner_pid, reason, \
     acquired_ms, heartbeat_ms, NULL";

impl Store {
    /// Takes the deployment lock of `app` if nobody holds it: `Ok(Ok(()))`.
    /// If someone does, returns their lock as `Ok(Err(lock))` and changes
    /// nothing — a lock is never stolen, even a stale one (see
    /// [`Store::break_lock`]). Runs in an IMMEDIATE transaction, so of two
    /// processes trying at once exactly one wins.
    pub fn try_lock(
        &self,
        app: &str,
        owner: &LockOwner,
        reason: &str,
        deployment_id: Option<i64>,
    ) -> Result<Result<(), Lock>, StoreError> {
        let op = "take the deployment lock";
        let tx = self.immediate(op)?;
        let existing = tx
            .query_row(
                &format!(
                    "SELECT {} FROM locks WHERE app = ?1",
                    lock_select(tx.dialect(), LOCK_COLS)
                ),
                args![app],
                lock_from_row,
            )
            .optional()
            .map_err(self.sql_err(op))?;
        if let Some(lock) = existing {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(Err(lock));
        }
        tx.execute(
            &format!(
                "INSERT INTO locks (app, deployment_id, owner_user, owner_host, owner_pid, \
                 reason, acquired_ms, heartbeat_ms, owner_start) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, {now}, {now}, ?7)",
                now = tx.dialect().now_ms()
            ),
            args![
                app,
                deployment_id,
                owner.user,
                owner.host,
                i64::from(owner.pid),
                reason,
                owner.stored_start()
            ],
        )
        .map_err(self.sql_err(op))?;
        tx.commit().map_err(self.sql_err(op))?;
        Ok(Ok(()))
    }

    /// The deployment lock of `app`, if held.
    pub fn lock(&self, app: &str) -> Result<Option<Lock>, StoreError> {
        let err = || self.sql_err("read the deployment lock");
        let cols = if self.schema >= schema::LOCK_START_FROM {
            LOCK_COLS
        } else {
            LOCK_COLS_BEFORE_START
        };
        self.db
            .query_row(
                &format!(
                    "SELECT {} FROM locks WHERE app = ?1",
                    lock_select(self.db.dialect(), cols)
                ),
                args![app],
                lock_from_row,
            )
            .optional()
            .map_err(err())
    }

    /// Ties the lock of `app` to a deployment (once it has been created).
    /// Does not check who holds the lock. Fails if `app` is not locked.
    pub fn set_lock_deployment(&self, app: &str, deployment_id: i64) -> Result<(), StoreError> {
        let op = "tie the deployment lock to a deployment";
        let n = self
            .db
            .execute(
                "UPDATE locks SET deployment_id = ?2 WHERE app = ?1",
                args![app, deployment_id],
            )
            .map_err(self.sql_err(op))?;
        self.expect_row(
            n,
            "tie the deployment lock to a deployment: the app is not locked",
        )
    }

    /// Hands the lock of `app` to `owner`'s process (the worker that runs
    /// the deployment) and counts that as a heartbeat. Does not check who
    /// holds the lock now; user and host are kept. Fails if `app` is not
    /// locked.
    pub fn set_lock_owner(&self, app: &str, owner: &LockOwner) -> Result<(), StoreError> {
        let op = "hand the deployment lock over";
        let n = self
            .db
            .execute(
                &format!(
                    "UPDATE locks SET owner_pid = ?2, owner_start = ?3, heartbeat_ms = {} \
                     WHERE app = ?1",
                    self.db.dialect().now_ms()
                ),
                args![app, i64::from(owner.pid), owner.stored_start()],
            )
            .map_err(self.sql_err(op))?;
        self.expect_row(n, "hand the deployment lock over: the app is not locked")
    }

    /// Says that `owner` (its host, pid and start time) still holds the
    /// lock of `app`. Returns `false` if the lock is gone or held by
    /// another process (it was broken): the caller must then stop touching
    /// the app.
    pub fn heartbeat(&self, app: &str, owner: &LockOwner) -> Result<bool, StoreError> {
        let op = "refresh the deployment lock";
        let n = self
            .db
            .execute(
                &format!(
                    "UPDATE locks SET heartbeat_ms = {} WHERE app = ?1 AND owner_host = ?2 \
                     AND owner_pid = ?3 AND owner_start IS NOT DISTINCT FROM ?4",
                    self.db.dialect().now_ms()
                ),
                args![app, owner.host, i64::from(owner.pid), owner.stored_start()],
            )
            .map_err(self.sql_err(op))?;
        Ok(n > 0)
    }

    /// Releases the lock of `app` if `owner` (its host, pid and start
    /// time) holds it; returns whether it did. A lock held by another
    /// process is left alone.
    pub fn unlock(&self, app: &str, owner: &LockOwner) -> Result<bool, StoreError> {
        let op = "release the deployment lock";
        let n = self
            .db
            .execute(
                "DELETE FROM locks WHERE app = ?1 AND owner_host = ?2 AND owner_pid = ?3 \
                 AND owner_start IS NOT DISTINCT FROM ?4",
                args![app, owner.host, i64::from(owner.pid), owner.stored_start()],
            )
            .map_err(self.sql_err(op))?;
        Ok(n > 0)
    }

    /// Deletes the lock of `app`, whoever holds it, and returns what it
    /// was (`None` if there was none), in one statement. For an operator
    /// clearing a stale lock; the caller records the event.
    pub fn break_lock(&self, app: &str) -> Result<Option<Lock>, StoreError> {
        let err = || self.sql_err("break the deployment lock");
        self.db
            .query_row(
                &format!(
                    "DELETE FROM locks WHERE app = ?1 RETURNING {}",
                    lock_select(self.db.dialect(), LOCK_COLS)
                ),
                args![app],
                lock_from_row,
            )
            .optional()
            .map_err(err())
    }
}

pub(super) fn lock_from_row(row: &Row<'_>) -> Result<Lock, DbError> {
    Ok(Lock {
        app: text(row.get_ref(0)?),
        deployment_id: int(row.get_ref(1)?),
        owner_user: text(row.get_ref(2)?),
        owner_host: text(row.get_ref(3)?),
        owner_pid: int(row.get_ref(4)?).unwrap_or(0),
        reason: text(row.get_ref(5)?),
        acquired_ms: int(row.get_ref(6)?).unwrap_or(0),
        heartbeat_ms: int(row.get_ref(7)?).unwrap_or(0),
        owner_start: int(row.get_ref(8)?),
        read_ms: row.get_ref(9).ok().and_then(int).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness() {
        let lock = Lock {
            app: "a".into(),
            deployment_id: None,
            owner_user: "u".into(),
            owner_host: "h".into(),
            owner_pid: 1,
            reason: String::new(),
            acquired_ms: 0,
            heartbeat_ms: 1_000,
            owner_start: None,
            read_ms: 0,
        };
        assert!(!lock.is_stale(1_000, 500));
        assert!(!lock.is_stale(1_500, 500));
        assert!(lock.is_stale(1_501, 500));
        // A heartbeat from a clock ahead of ours is fresh.
        assert!(!lock.is_stale(0, 500));
        assert!(!lock.is_stale(i64::MIN, 500));
        assert!(lock.is_stale(i64::MAX, 500));
    }
}
