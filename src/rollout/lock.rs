//! The app lock: at most one rollout of an app at a time, across processes,
//! users and hosts. The lock is a row in the store (see
//! [`Store::try_lock`]); this file says who takes it, when it counts as
//! abandoned, and how it is taken, refreshed and broken.
//!
//! A lock is taken by the process that starts a rollout (in the start's
//! transaction, [`Store::start_deployment`]), handed to the rollout's
//! worker, refreshed by the worker every [`HEARTBEAT`], and released by the
//! engine before it records the outcome. A lock may be broken only when it
//! is abandoned: held on this host by a process that is gone, or held on
//! another host with a heartbeat older than [`STALE_AFTER`].

use std::time::Duration;

use crate::error::{Code, UserError};
use crate::model::now_ms;
use crate::store::{Lock, LockOwner, Store, StoreError};

/// A lock whose heartbeat is older than this may be broken.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// How often the worker refreshes its lock.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Who this process is, as a lock owner.
pub fn me() -> LockOwner {
    LockOwner {
        user: whoami(),
        host: hostname(),
        pid: std::process::id(),
    }
}

/// The user running rollguard: `$USER`, else the password database.
pub fn whoami() -> String {
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"))
        && !u.is_empty()
    {
        return u;
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; the
    // name is copied out at once.
    unsafe {
        let uid = libc::getuid();
        let pw = libc::getpwuid(uid);
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid{uid}")
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` runs on this machine. A zombie (exited, not yet
/// reaped: an orphaned worker whose init does not reap) counts as gone.
pub fn pid_alive(pid: i64) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    if p <= 0 || unsafe { libc::kill(p, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{p}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Why `lock` may be broken (stale heartbeat, or a dead pid here), or
/// `None` while its holder is alive.
pub fn breakable(lock: &Lock) -> Option<String> {
    stale_reason(lock, now_ms(), &hostname(), pid_alive)
}

/// [`breakable`] with the clock, host and process check given: pure.
pub fn stale_reason(
    lock: &Lock,
    now_ms: i64,
    this_host: &str,
    alive: impl Fn(i64) -> bool,
) -> Option<String> {
    // On this host the process itself says: a live holder keeps its lock
    // even when its heartbeat lags (a full disk stops heartbeats, not the
    // rollout), and a dead one has abandoned it at once.
    if lock.owner_host == this_host {
        return (!alive(lock.owner_pid)).then(|| format!("its process {} is gone", lock.owner_pid));
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
            clock_time(lock.acquired_ms),
            lock.reason
        ),
    );
    let lagging =
        crate::model::now_ms().saturating_sub(lock.heartbeat_ms) > STALE_AFTER.as_millis() as i64;
    match breakable(lock) {
        Some(why) => e.hint(format!(
            "the lock looks abandoned ({why}); pass --break-lock to take it"
        )),
        None if lagging => e.hint(format!(
            "its process {} still runs here but has not refreshed the lock for a while \
             (is the history database's disk full?); abort it with `rollguard abort`, or \
             stop that process and pass --break-lock",
            lock.owner_pid
        )),
        None => e.hint("wait for that rollout to end, or abort it with `rollguard abort`"),
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
        Err(e) => Err(store_error(e)),
    }
}

/// Refreshes the lock of `app` held by `pid`; `false` when it is no longer
/// ours (it was broken).
pub fn heartbeat(store: &Store, app: &str, pid: u32) -> Result<bool, StoreError> {
    store.heartbeat(app, pid)
}

/// Breaks the lock of `app` when it is abandoned and records who broke it
/// and why (`lock_broken`). `E_LOCKED` when its holder is alive.
pub fn break_abandoned(
    store: &Store,
    app: &str,
    actor: &str,
    why: &str,
) -> Result<Option<Lock>, UserError> {
    let Some(lock) = store.lock(app).map_err(store_error)? else {
        return Ok(None);
    };
    let Some(stale) = breakable(&lock) else {
        return Err(locked_error(app, &lock).hint(
            "its holder is alive: wait for that rollout, or abort it with `rollguard abort`",
        ));
    };
    store.break_lock(app).map_err(store_error)?;
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
        .map_err(store_error)?;
    Ok(Some(lock))
}

/// A store error as the user sees it (`E_STORE`, with the store's hint).
pub fn store_error(e: StoreError) -> UserError {
    UserError::new(Code::Store, e.message()).hint(e.hint())
}

/// `YYYY-MM-DD HH:MM:SS` local time of `ms` (as `history` and `events`
/// print it), or `?`.
pub fn local_time(ms: i64) -> String {
    local(ms, "%Y-%m-%d %H:%M:%S")
}

/// `MM-DD HH:MM:SS` local time of `ms` (the console's History), or `?`.
pub fn day_time(ms: i64) -> String {
    local(ms, "%m-%d %H:%M:%S")
}

/// `HH:MM:SS` local time of `ms`, or `?`.
pub fn clock_time(ms: i64) -> String {
    local(ms, "%H:%M:%S")
}

/// The local time of `ms` in `format`, or `?` when `ms` is no time.
fn local(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format(format).to_string())
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(host: &str, pid: i64, heartbeat_ms: i64) -> Lock {
        Lock {
            app: "a".into(),
            deployment_id: None,
            owner_user: "u".into(),
            owner_host: host.into(),
            owner_pid: pid,
            reason: "r".into(),
            acquired_ms: 0,
            heartbeat_ms,
        }
    }

    #[test]
    fn a_lock_is_abandoned_when_stale_or_its_process_here_is_gone() {
        let now = 100_000;
        let fresh = lock("here", 7, now - 1_000);
        assert_eq!(stale_reason(&fresh, now, "here", |_| true), None);
        assert!(
            stale_reason(&fresh, now, "here", |_| false)
                .unwrap()
                .contains("process 7")
        );
        // A dead-looking pid on another host says nothing: it is not ours.
        assert_eq!(stale_reason(&fresh, now, "there", |_| false), None);
        let old = lock("there", 7, now - 31_000);
        assert!(
            stale_reason(&old, now, "here", |_| true)
                .unwrap()
                .contains("31s")
        );
        // A live holder on this host keeps its lock, however old its
        // heartbeat (it may only be failing to write).
        let lagging = lock("here", 7, now - 600_000);
        assert_eq!(stale_reason(&lagging, now, "here", |_| true), None);
        // A heartbeat from the future (clocks disagree) is not stale.
        let ahead = lock("there", 7, now + 60_000);
        assert_eq!(stale_reason(&ahead, now, "here", |_| true), None);
    }
}
