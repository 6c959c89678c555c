//! The app lock: at most one rollout of an app at a time, across processes,
//! users and hosts. The lock is a row in the store (see
//! [`Store::try_lock`]); this file says who takes it, when it counts as
//! abandoned, and how it is taken, refreshed and broken.
//!
//! A lock is taken by the process that starts a rollout (in the start's
//! transaction, [`Store::start_deployment`]), handed to the rollout's
//! worker, refreshed by the worker every [`HEARTBEAT`], and released by the
//! engine before it records the outcome. Its holder is its host, pid and
//! the start time of that process, so a pid given to another process after
//! the holder died is not taken for the holder. A lock may be broken only
//! when it is abandoned ([`stale_reason`]): its heartbeat is older than
//! [`STALE_AFTER`], wherever it is held and whatever runs with its pid; or
//! it is held on this host and no process runs with its pid and start
//! time. A worker that cannot refresh its lock for [`FENCE_AFTER`] (a
//! full disk, a history locked by another program) stops at once, before
//! anyone may break it (`worker.rs`).

use std::time::Duration;

use crate::error::{Code, UserError};
use crate::host::{self, Pid, hostname, whoami};
use crate::model::now_ms;
use crate::store::{Lock, LockOwner, Store, StoreError};

/// A lock whose heartbeat is older than this may be broken, whatever its
/// pid says.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// How often the worker refreshes its lock.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A worker that could not refresh its lock for this long stops acting.
/// With the time one store call may wait for the history
/// ([`crate::store::BUSY_TIMEOUT`]) and the worker's grace to stop
/// (`worker::FENCE_GRACE`), it has stopped before [`STALE_AFTER`], when its
/// lock may be broken.
pub const FENCE_AFTER: Duration = Duration::from_secs(15);

/// Who this process is, as a lock owner.
pub fn me() -> LockOwner {
    LockOwner {
        user: whoami(),
        host: hostname(),
        pid: std::process::id(),
        start: host::own_start(),
    }
}

/// Why `lock` may be broken (stale heartbeat, or its process here gone),
/// or `None` while its holder is alive. Its heartbeat's age is judged by
/// the store's clock when the lock was read (the server's, for a shared
/// history), never by this machine's against another's.
pub fn breakable(lock: &Lock) -> Option<String> {
    stale_reason(lock, read_at(lock), &hostname(), host::pid)
}

/// The store's clock when `lock` was read; this machine's for a lock not
/// read from a store.
fn read_at(lock: &Lock) -> i64 {
    if lock.read_ms > 0 {
        lock.read_ms
    } else {
        now_ms()
    }
}

/// [`breakable`] with the clock, host and process check given: pure.
/// `pid` says what runs with a pid on this host.
///
/// - Held on this host: abandoned when no live process has its pid, or
///   the one that has it started at another time than the holder (the pid
///   was given to another process).
/// - Anywhere: abandoned when its heartbeat is older than [`STALE_AFTER`]
///   (a holder that cannot refresh it has stopped by then, see
///   [`FENCE_AFTER`]; a heartbeat from a clock ahead of ours is fresh).
pub fn stale_reason(
    lock: &Lock,
    now_ms: i64,
    this_host: &str,
    pid: impl Fn(i64) -> Pid,
) -> Option<String> {
    let p = lock.owner_pid;
    if lock.owner_host == this_host {
        match pid(p) {
            Pid::Gone => return Some(format!("its process {p} is gone")),
            Pid::Live { start: Some(now) }
                if lock
                    .owner_start
                    .is_some_and(|then| u64::try_from(then) != Ok(now)) =>
            {
                return Some(format!(
                    "its process {p} is gone (pid {p} now belongs to a process started later)"
                ));
            }
            Pid::Live { .. } => {}
        }
    }
    let age = now_ms.saturating_sub(lock.heartbeat_ms);
    (age > STALE_AFTER.as_millis() as i64).then(|| format!("its heartbeat is {}s old", age / 1000))
}

/// The `E_LOCKED` error for `app` held by `lock`, with what to do.
pub fn locked_error(app: &str, lock: &Lock) -> UserError {
    let e = UserError::new(
        Code::Locked,
        format!(
            "{app} is locked by {}@{} (pid {}) since {}: {}",
            lock.owner_user,
            lock.owner_host,
            lock.owner_pid,
            crate::clock::clock_time(lock.acquired_ms),
            lock.reason
        ),
    );
    match breakable(lock) {
        Some(why) => e.hint(format!(
            "the lock looks abandoned ({why}); pass --break-lock to take it"
        )),
        None => e.hint("wait for that rollout to end, or abort it with `rollguard abort`"),
    }
}

/// Why `lock` is live, in words, for a refusal to break it: how old its
/// heartbeat is and, on this host, that its process still runs.
pub fn live_because(lock: &Lock) -> String {
    let age = read_at(lock).saturating_sub(lock.heartbeat_ms).max(0) / 1000;
    let limit = STALE_AFTER.as_secs();
    if lock.owner_host == hostname() {
        format!(
            "its heartbeat is {age}s old (under {limit}s) and its process {} still runs here",
            lock.owner_pid
        )
    } else {
        format!(
            "its heartbeat is {age}s old (under {limit}s), from {}",
            lock.owner_host
        )
    }
}

/// Takes the lock of `app` for `owner`, tied to `deployment`; `E_LOCKED`
/// when someone holds it.
pub fn take(
    store: &Store,
    app: &str,
    owner: &LockOwner,
    reason: &str,
    deployment: Option<i64>,
) -> Result<(), UserError> {
    match store.try_lock(app, owner, reason, deployment) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(lock)) => Err(locked_error(app, &lock)),
        Err(e) => Err(UserError::from(e)),
    }
}

/// Refreshes the lock of `app` held by `owner`; `false` when it is no
/// longer theirs (it was broken).
pub fn heartbeat(store: &Store, app: &str, owner: &LockOwner) -> Result<bool, StoreError> {
    store.heartbeat(app, owner)
}

/// Breaks the lock of `app` when it is abandoned and records who broke it
/// and why (`lock_broken`). `E_LOCKED` when its holder is alive.
pub fn break_abandoned(
    store: &Store,
    app: &str,
    actor: &str,
    why: &str,
) -> Result<Option<Lock>, UserError> {
    let Some(lock) = store.lock(app).map_err(UserError::from)? else {
        return Ok(None);
    };
    let Some(stale) = breakable(&lock) else {
        return Err(locked_error(app, &lock).hint(format!(
            "its holder is alive ({}): wait for that rollout, or abort it with `rollguard abort`",
            live_because(&lock)
        )));
    };
    store.break_lock(app).map_err(UserError::from)?;
    store
        .record(
            app,
            lock.deployment_id,
            actor,
            Some(&format!("{why}: {stale}")),
            &crate::model::event::EventKind::LockBroken {
                lock: crate::store::lock_evidence(&lock),
            },
        )
        .map_err(UserError::from)?;
    Ok(Some(lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 5_000;

    fn lock(host: &str, pid: i64, heartbeat_ms: i64) -> Lock {
        Lock {
            app: "a".into(),
            deployment_id: None,
            owner_user: "u".into(),
            owner_host: host.into(),
            owner_pid: pid,
            owner_start: Some(START),
            reason: "r".into(),
            acquired_ms: 0,
            heartbeat_ms,
            read_ms: 0,
        }
    }

    /// A process with pid 7 started at `start` runs here.
    fn live(start: i64) -> impl Fn(i64) -> Pid {
        move |p| match p {
            7 => Pid::Live {
                start: Some(start as u64),
            },
            _ => Pid::Gone,
        }
    }

    #[test]
    fn a_live_holder_here_with_a_fresh_heartbeat_keeps_its_lock() {
        let now = 100_000;
        let fresh = lock("here", 7, now - 1_000);
        assert_eq!(stale_reason(&fresh, now, "here", live(START)), None);
        // Its heartbeat just at the limit is still fresh.
        let at_limit = lock("here", 7, now - 30_000);
        assert_eq!(stale_reason(&at_limit, now, "here", live(START)), None);
        // Where /proc cannot say when it started, the pid alone counts.
        let unknown = |_| Pid::Live { start: None };
        assert_eq!(stale_reason(&fresh, now, "here", unknown), None);
        // A lock from before start times were recorded: the pid alone.
        let old_row = Lock {
            owner_start: None,
            ..fresh.clone()
        };
        assert_eq!(stale_reason(&old_row, now, "here", live(START + 1)), None);
    }

    #[test]
    fn a_holder_here_whose_pid_is_gone_or_given_to_another_process_is_abandoned() {
        let now = 100_000;
        let fresh = lock("here", 7, now - 1_000);
        let gone = stale_reason(&fresh, now, "here", |_| Pid::Gone).unwrap();
        assert!(gone.contains("process 7 is gone"), "{gone}");
        // Pid 7 is alive, but it is another process: started later.
        let reused = stale_reason(&fresh, now, "here", live(START + 4_200)).unwrap();
        assert!(reused.contains("process 7 is gone"), "{reused}");
        assert!(reused.contains("started later"), "{reused}");
    }

    #[test]
    fn a_heartbeat_older_than_the_limit_is_stale_whatever_the_pid_says() {
        let now = 100_000;
        // The holder's own process still runs here, same start time: a
        // holder that cannot refresh its lock has stopped by now.
        let lagging = lock("here", 7, now - 31_000);
        let why = stale_reason(&lagging, now, "here", live(START)).unwrap();
        assert!(why.contains("31s"), "{why}");
        // The issue's case: a reused pid and a 42 s old heartbeat.
        let reused = lock("here", 7, now - 42_000);
        assert!(stale_reason(&reused, now, "here", live(START + 1)).is_some());
        // On another host, too.
        let there = lock("there", 7, now - 600_000);
        let why = stale_reason(&there, now, "here", live(START)).unwrap();
        assert!(why.contains("600s"), "{why}");
    }

    #[test]
    fn a_lock_is_judged_by_the_stores_clock_it_was_read_at() {
        // Another bastion's clock is an hour behind: by this machine's
        // clock its fresh heartbeat would look an hour old.
        let hour = 3_600_000;
        let mut l = lock("bastion-b", 7, now_ms() - hour);
        l.read_ms = l.heartbeat_ms + 1_000;
        assert_eq!(breakable(&l), None);
        l.read_ms = l.heartbeat_ms + STALE_AFTER.as_millis() as i64 + 1;
        assert!(breakable(&l).is_some_and(|why| why.contains("heartbeat is")));
        assert!(live_because(&l).contains("from bastion-b"));
    }

    #[test]
    fn a_holder_on_another_host_with_a_fresh_heartbeat_keeps_its_lock() {
        let now = 100_000;
        let fresh = lock("there", 7, now - 1_000);
        // Its pid says nothing here: it is not a process of this host.
        assert_eq!(stale_reason(&fresh, now, "here", |_| Pid::Gone), None);
        assert_eq!(stale_reason(&fresh, now, "here", live(START + 9)), None);
        // A heartbeat from the future (clocks disagree) is not stale.
        let ahead = lock("there", 7, now + 60_000);
        assert_eq!(stale_reason(&ahead, now, "here", |_| Pid::Gone), None);
    }

    #[test]
    fn a_worker_stops_before_its_lock_may_be_broken() {
        let worst = FENCE_AFTER
            + crate::store::BUSY_TIMEOUT
            + super::super::worker::COMMAND_POLL
            + super::super::worker::FENCE_GRACE;
        assert!(worst + Duration::from_secs(1) < STALE_AFTER, "{worst:?}");
    }

    #[test]
    fn the_refusal_says_why_and_what_to_do() {
        let now = now_ms();
        let mine = Lock {
            owner_pid: i64::from(std::process::id()),
            owner_start: host::own_start().map(|s| s as i64),
            ..lock(&hostname(), 0, now)
        };
        let e = locked_error("a", &mine);
        assert_eq!(e.code, Code::Locked);
        assert!(e.hint.as_deref().unwrap().contains("wait"), "{e}");
        assert!(live_because(&mine).contains("still runs here"));
        let stale = Lock {
            heartbeat_ms: now - 42_000,
            ..mine
        };
        let e = locked_error("a", &stale);
        let hint = e.hint.as_deref().unwrap();
        assert!(hint.contains("heartbeat is 42s old"), "{hint}");
        assert!(hint.contains("--break-lock"), "{hint}");
    }
}
