//! This machine as locks and leases see it: its name, the user running
//! rollguard, a random token that tells this process's leases and claims
//! apart, its processes (a pid is only trusted together with the start
//! time of the process that has it now, so a pid handed to another process
//! after its holder died is told apart), and whether the disk holding a
//! file is full. One home for `/proc/PID/stat`, read the way the process
//! driver's scripts read it on its hosts.
//!
//! It is also the one module that talks to libc: signals, process groups
//! and sessions, the effective user, a file's write access, whether
//! standard output hung up. Every `unsafe` block of the crate is here,
//! each a single system call with its reason; the rest of the crate
//! calls the safe functions below (`unsafe_code` is denied elsewhere).
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

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

/// What `/proc/PID/stat` says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its state letter: `R`, `S`, `D`, `Z` (ended, not reaped), ...
    pub state: char,
    /// Its parent's pid.
    pub ppid: i32,
    /// Its process group.
    pub pgid: i32,
    /// When it started, in clock ticks after boot: two processes that had
    /// the same pid one after the other differ here.
    pub start: u64,
}

impl Stat {
    /// Whether it has ended (a zombie, or dead).
    pub fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses a `/proc/PID/stat` line. The command name comes in parentheses
/// and may hold anything, so the fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = line.get(line.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/stat` of process `pid` of this machine, when it is readable.
pub fn stat(pid: i64) -> Option<Stat> {
    let p = i32::try_from(pid).ok().filter(|p| *p > 0)?;
    parse_stat(&std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?)
}

/// What this machine says of a pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pid {
    /// No live process has it (none, or one that ended and is not reaped:
    /// an orphaned worker whose init does not reap).
    Gone,
    /// A live process has it, started at `start` (ticks after boot; `None`
    /// where `/proc` cannot say).
    Live {
        /// Its start time.
        start: Option<u64>,
    },
}

impl Pid {
    /// The start time of the live process, when known.
    pub fn start(self) -> Option<u64> {
        match self {
            Pid::Live { start } => start,
            Pid::Gone => None,
        }
    }
}

/// Whether a live process of this machine has `pid`, and since when.
pub fn pid(pid: i64) -> Pid {
    let Ok(p) = i32::try_from(pid) else {
        return Pid::Gone;
    };
    // Signal 0 only checks that the process exists (EPERM: it does, and
    // is another user's).
    if p <= 0 || signal(p, 0).is_err_and(|e| e.raw_os_error() != Some(libc::EPERM)) {
        return Pid::Gone;
    }
    match stat(pid) {
        Some(s) if s.ended() => Pid::Gone,
        Some(s) => Pid::Live {
            start: Some(s.start),
        },
        None if std::path::Path::new("/proc/self/stat").exists() => Pid::Gone,
        None => Pid::Live { start: None },
    }
}

/// Whether process `pid` runs on this machine (a zombie counts as gone).
pub fn pid_alive(p: i64) -> bool {
    matches!(pid(p), Pid::Live { .. })
}

/// The start time of this process (see [`Stat::start`]).
pub fn own_start() -> Option<u64> {
    pid(i64::from(std::process::id())).start()
}

/// Below this much free space a disk counts as full: SQLite and a log
/// need a few pages at once.
pub const FULL_BELOW: u64 = 256 * 1024;

/// Whether the disk holding `path` (or the nearest folder above it that
/// exists) is full: less than [`FULL_BELOW`] free to this user, or no
/// free inode. `false` when it cannot be told.
pub fn disk_full(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let Some(existing) = abs.ancestors().find(|p| p.exists()) else {
        return false;
    };
    let Ok(c) = std::ffi::CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs writes only into `st`; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let root = euid() == 0;
    let blocks = if root { st.f_bfree } else { st.f_bavail };
    #[allow(clippy::unnecessary_cast)]
    let free = (blocks as u64).saturating_mul(st.f_frsize as u64);
    #[allow(clippy::unnecessary_cast)]
    let no_inode = st.f_files > 0 && (st.f_favail as u64) == 0;
    free < FULL_BELOW || no_inode
}

/// The words for a full disk: "the disk holding PATH is full".
pub fn full_disk_words(path: &Path) -> String {
    format!("the disk holding {} is full", path.display())
}

/// 16 random hex digits (from the kernel; the clock and pid if it fails):
/// what tells this process's leases and claims apart from another's.
pub fn token() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ (u64::from(std::process::id()) << 40)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// This process's parent's pid.
pub fn parent_pid() -> i32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

/// This process's process group.
pub fn own_group() -> i32 {
    // SAFETY: getpgrp has no preconditions and cannot fail.
    unsafe { libc::getpgrp() }
}

/// The process group of process `pid`; `None` when it is gone.
pub fn group_of(pid: i32) -> Option<i32> {
    // SAFETY: a query of another process's ids; -1 when it is gone.
    let g = unsafe { libc::getpgid(pid) };
    (g >= 0).then_some(g)
}

/// The session of process `pid` (0: this process); `None` when it is gone.
pub fn session_of(pid: i32) -> Option<i32> {
    // SAFETY: a query of a process's ids; -1 when it is gone.
    let s = unsafe { libc::getsid(pid) };
    (s >= 0).then_some(s)
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sends `sig` to process `pid` (signal 0: asks whether it exists).
/// Refuses pids below 1, which would name groups or every process.
pub fn signal(pid: i32, sig: i32) -> std::io::Result<()> {
    if pid < 1 {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    match unsafe { libc::kill(pid, sig) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sends `sig` to the process group `pgid` leads (signal 0: asks whether
/// any process of it is left). Never group 0 (this process's own) or 1
/// (`-1` would signal every process).
pub fn signal_group(pgid: i32, sig: i32) -> std::io::Result<()> {
    if pgid <= 1 {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    match unsafe { libc::kill(-pgid, sig) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sends `sig` to this process's own group (SIGTSTP: stops this job as
/// the terminal would; returns once it is continued).
pub fn signal_own_group(sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(0, sig);
    }
}

/// Sends `sig` to this very process.
pub fn signal_self(sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), sig);
    }
}

/// Whether this process may write the file at `path` (`faccessat` with
/// the effective ids: permissions, a read-only file system), without
/// opening it.
pub fn may_write(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path; faccessat only reads it.
    let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether standard output has hung up (its reader is gone), asked
/// without waiting.
pub fn stdout_hung_up() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid, initialised pollfd and its count; no timeout.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}

/// Makes the process `cmd` starts lead a session of its own, detached
/// from the terminal's, so that a hang-up does not reach it.
pub fn in_own_session(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe; nothing else runs in pre_exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// Makes the process `cmd` starts receive `sig` when the thread that
/// started it ends (Linux; elsewhere nothing).
pub fn signalled_when_parent_ends(cmd: &mut Command, sig: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; nothing else runs in pre_exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, sig);
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (cmd, sig);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_the_command_name() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                ppid: 1,
                pgid: 4242,
                start: 987_654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn this_process_is_live_with_a_start_time_and_pid_0_is_gone() {
        let me = i64::from(std::process::id());
        assert!(matches!(pid(me), Pid::Live { start: Some(_) }));
        assert!(own_start().is_some());
        assert_eq!(pid(0), Pid::Gone);
        assert_eq!(pid(-5), Pid::Gone);
        assert_eq!(pid(i64::MAX), Pid::Gone);
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(token(), token());
        assert_eq!(token().len(), 16);
    }
}
