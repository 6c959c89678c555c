//! Commands over SSH. Each host gets one multiplexed master connection
//! (`ssh -M`, driven by the `openssh` crate's native mux client), made on
//! first use, shared by every concurrent run and remade when it drops.
//!
//! A remote command is wrapped so that it reports its process id first
//! (on stderr, removed from the output); on timeout a second command over
//! the same master kills its whole process group, because closing an SSH
//! channel does not stop the remote process.
//!
//! The wrapper also ends both output streams with a marker once the script
//! has exited. sshd may send the exit status before the script's last
//! output, and when the mux client leaves (which it does on taking the exit
//! status) the master shuts the session's output pipes, dropping any output
//! still to come. So the exit status is only taken once both markers have
//! arrived, or both streams have ended.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::time::Instant;

use super::host_key;
use super::local::{Capped, drive};
use super::{ExecError, Output};
use crate::config::{HostKeyCheck, Ssh};
use crate::shell::quote;

/// At most this many commands run at once per host; more wait their turn.
/// sshd refuses more than `MaxSessions` (default 10) channels on one
/// connection; two are left for the kill commands sent on timeout.
const MAX_CHANNELS: usize = 8;

/// Printed by the wrapper (with the remote pid) before the script starts.
const PID_MARKER: &[u8] = b"rollguard-remote-pid=";

/// Start of the marker the wrapper prints on stdout and on stderr once the
/// script has exited; a random tail makes it unique to the run.
const END_MARKER: &str = "rollguard-remote-end-";

/// How long after a timeout we still wait for the remote pid to arrive.
const PID_GRACE: Duration = Duration::from_secs(2);

/// How long the remote kill command may take.
const KILL_TIMEOUT: Duration = Duration::from_secs(3);

/// A master that has had no clients for this long exits; the next run
/// reconnects. Keeps a crashed rollguard from leaving masters forever.
const IDLE_PERSIST_SECS: usize = 600;

/// One remote host and its master connection.
#[derive(Debug)]
pub struct SshHost {
    name: String,
    address: String,
    ssh: Ssh,
    session: Arc<Mutex<Option<Arc<Session>>>>,
    /// Limits commands running at once over the master.
    permits: Semaphore,
}

/// How one attempt ended.
enum Attempt {
    /// Final answer.
    Done(Result<Output, ExecError>),
    /// The connection failed before the script started; try once more.
    Retry(ExecError),
}

impl SshHost {
    /// Describes host `name` at `address`; connects on first use.
    pub fn new(name: &str, address: &str, ssh: Ssh) -> SshHost {
        SshHost {
            name: name.into(),
            address: address.into(),
            ssh,
            session: Arc::new(Mutex::new(None)),
            permits: Semaphore::new(MAX_CHANNELS),
        }
    }

    /// The host's name from the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `script` remotely with `sh -c`. The `timeout` covers connecting
    /// too; when it passes, the remote process group is killed and the result
    /// is [`ExecError::Timeout`]. A connection that has dropped is remade and
    /// the run retried once, but only when the script cannot have started.
    pub async fn run(&self, script: &str, timeout: Duration) -> Result<Output, ExecError> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        for _ in 0..2 {
            match self.attempt(script, timeout, deadline).await {
                Attempt::Done(r) => return r,
                Attempt::Retry(e) => {
                    tracing::debug!(host = %self.name, error = %e, "ssh: reconnecting");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| self.connect_err("connection failed".into())))
    }

    /// Closes the master connection (a later run connects again).
    pub async fn close(&self) {
        let session = self.session.lock().await.take();
        if let Some(s) = session {
            // Runs still in flight hold clones; the last one to finish drops
            // the session, which also shuts the master down.
            if let Ok(s) = Arc::try_unwrap(s)
                && let Err(e) = s.close().await
            {
                tracing::debug!(host = %self.name, error = %e, "ssh: close");
            }
        }
        // Only succeeds once no host has a master left in it.
        let _ = std::fs::remove_dir(control_dir_path());
    }

    fn connect_err(&self, message: String) -> ExecError {
        ExecError::Connect {
            host: self.name.clone(),
            message,
        }
    }

    async fn attempt(&self, script: &str, timeout: Duration, deadline: Instant) -> Attempt {
        let _permit = match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Err(_) => return Attempt::Done(Err(ExecError::Timeout(timeout))),
            Ok(Err(_)) => return Attempt::Done(Err(self.connect_err("host closed".into()))),
            Ok(Ok(p)) => p,
        };
        let session = match tokio::time::timeout_at(deadline, self.session()).await {
            Err(_) => return Attempt::Done(Err(ExecError::Timeout(timeout))),
            Ok(Err(e)) => return Attempt::Done(Err(e)),
            Ok(Ok(s)) => s,
        };
        let end = end_marker();
        let wrapped = wrap(script, &end);
        let spawned = tokio::time::timeout_at(
            deadline,
            session
                .clone()
                .arc_raw_command(&wrapped)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn(),
        )
        .await;
        let mut child = match spawned {
            Err(_) => return Attempt::Done(Err(ExecError::Timeout(timeout))),
            Ok(Err(openssh::Error::InvalidCommand)) => {
                return Attempt::Done(Err(ExecError::Spawn(
                    "the command contains a NUL byte".into(),
                )));
            }
            Ok(Err(e)) => {
                let err = self.connect_err(format!("starting the command: {}", chain(&e)));
                if session.check().await.is_ok() {
                    // The master is fine; the server refused this channel.
                    return Attempt::Done(Err(err));
                }
                self.forget(&session).await;
                return Attempt::Retry(err);
            }
            Ok(Ok(c)) => c,
        };

        let (pid_tx, pid_rx) = watch::channel(None::<u32>);
        // Kills the remote command if this future is dropped mid-run.
        let mut guard = KillOnDrop {
            host: self.name.clone(),
            session: session.clone(),
            pid: pid_rx.clone(),
            armed: true,
        };
        let mut stdout = Capped::default();
        // Each turns true when its stream has shown the end marker; its
        // sender is dropped when the stream ends.
        let (out_end_tx, mut out_end) = watch::channel(false);
        let (err_end_tx, mut err_end) = watch::channel(false);
        let mut err_task = tokio::spawn(read_stderr(
            child.stderr().take(),
            pid_tx,
            EndScan::new(&end, err_end_tx),
        ));
        let mut stderr = None;
        let out_pipe = child.stdout().take();
        let status = drive(
            child.wait(),
            // Taking the exit status ends the session, and the master drops
            // what output it still holds: first have all of it.
            async {
                let _ = out_end.wait_for(|&seen| seen).await;
                let _ = err_end.wait_for(|&seen| seen).await;
            },
            read_stdout(out_pipe, &mut stdout, EndScan::new(&end, out_end_tx)),
            async {
                stderr = (&mut err_task).await.ok();
            },
            deadline,
        )
        .await;
        let started = pid_rx.borrow().is_some();

        let Some(status) = status else {
            // Timed out. The child future (and with it the mux channel) is
            // gone; the remote process is not, so kill it, and wait for that.
            guard.armed = false;
            kill_remote(self.name.clone(), session.clone(), pid_rx).await;
            err_task.abort();
            return Attempt::Done(Err(ExecError::Timeout(timeout)));
        };
        guard.armed = false;
        // Ends the stderr reader if the drain grace ran out.
        err_task.abort();
        let stderr = stderr.unwrap_or_default();

        let code = match status {
            Ok(st) => st.code(),
            // The native mux client reports exit 127 as this error.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
            Err(e) => {
                let lost =
                    matches!(e, openssh::Error::Disconnected) || session.check().await.is_err();
                if !lost && matches!(e, openssh::Error::RemoteProcessTerminated) {
                    // Killed by a signal.
                    None
                } else {
                    self.forget(&session).await;
                    let err = self.connect_err(format!("connection lost: {}", chain(&e)));
                    return if started {
                        Attempt::Done(Err(err))
                    } else {
                        Attempt::Retry(err)
                    };
                }
            }
        };
        let truncated = stdout.truncated || stderr.truncated;
        Attempt::Done(Ok(Output {
            code,
            stdout: stdout.into_string(),
            stderr: stderr.into_string(),
            truncated,
        }))
    }

    /// Drops `session` from the cache if it is still the cached one.
    async fn forget(&self, session: &Arc<Session>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
            *slot = None;
        }
    }

    /// The live master connection, made if needed. Connecting runs in its
    /// own task so a caller's timeout cannot abandon a half-made master.
    async fn session(&self) -> Result<Arc<Session>, ExecError> {
        let slot = self.session.clone();
        let name = self.name.clone();
        let address = self.address.clone();
        let ssh = self.ssh.clone();
        let task = tokio::spawn(async move {
            let mut guard = slot.lock().await;
            if let Some(s) = guard.as_ref() {
                if s.check().await.is_ok() {
                    return Ok(s.clone());
                }
                tracing::info!(host = %name, "ssh: master connection dropped; reconnecting");
                *guard = None;
            }
            let s = Arc::new(connect(&name, &address, &ssh).await?);
            *guard = Some(s.clone());
            Ok(s)
        });
        match task.await {
            Ok(r) => r,
            Err(e) => Err(self.connect_err(format!("connect task failed: {e}"))),
        }
    }
}

/// Kills the remote command that reports (or has reported) its pid on
/// `pid` if dropped while armed; for runs whose future is cancelled.
struct KillOnDrop {
    host: String,
    session: Arc<Session>,
    pid: watch::Receiver<Option<u32>>,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(kill_remote(
                self.host.clone(),
                self.session.clone(),
                self.pid.clone(),
            ));
        }
    }
}

/// Kills the remote process group of the command whose pid arrives on
/// `pid` (waiting [`PID_GRACE`] for it), over the same master.
async fn kill_remote(host: String, session: Arc<Session>, mut pid: watch::Receiver<Option<u32>>) {
    let known = *pid.borrow();
    let pid = match known {
        Some(p) => p,
        None => {
            let got = tokio::time::timeout(PID_GRACE, pid.wait_for(Option::is_some)).await;
            match got.ok().and_then(|r| r.ok().and_then(|p| *p)) {
                Some(p) => p,
                None => {
                    tracing::warn!(
                        host = %host,
                        "ssh: command stopped before it reported its pid; it may still run"
                    );
                    return;
                }
            }
        }
    };
    let cmd = format!(
        "kill -s KILL -- -{pid} 2>/dev/null || kill -9 -{pid} 2>/dev/null; \
         kill -s KILL {pid} 2>/dev/null; exit 0"
    );
    let res = tokio::time::timeout(
        KILL_TIMEOUT,
        session
            .raw_command(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    )
    .await;
    match res {
        Ok(Ok(_)) => tracing::debug!(host = %host, pid, "ssh: killed the stopped command"),
        Ok(Err(e)) => {
            tracing::warn!(host = %host, pid, error = %chain(&e), "ssh: could not kill the stopped command")
        }
        Err(_) => tracing::warn!(host = %host, pid, "ssh: killing the stopped command timed out"),
    }
}

/// Makes a master connection to `address`.
async fn connect(name: &str, address: &str, ssh: &Ssh) -> Result<Session, ExecError> {
    let err = |message: String| ExecError::Connect {
        host: name.into(),
        message,
    };
    if address.is_empty() || address.starts_with('-') {
        return Err(err(format!("invalid address {address:?}")));
    }
    let dir = control_dir().map_err(|e| err(format!("control directory: {e}")))?;
    let mut b = SessionBuilder::default();
    if let Some(user) = &ssh.user {
        b.user(user.clone());
    }
    b.port(ssh.port);
    if let Some(key) = &ssh.identity {
        b.keyfile(key);
    }
    b.known_hosts_check(match ssh.host_key_check {
        HostKeyCheck::Strict => KnownHosts::Strict,
        HostKeyCheck::AcceptNew => KnownHosts::Add,
        HostKeyCheck::Off => KnownHosts::Accept,
    });
    if let Some(kh) = &ssh.known_hosts {
        b.user_known_hosts_file(kh);
    }
    b.connect_timeout(ssh.connect_timeout.max(Duration::from_secs(1)));
    b.server_alive_interval(Duration::from_secs(15));
    if let Some(n) = NonZeroUsize::new(IDLE_PERSIST_SECS) {
        b.control_persist(ControlPersist::IdleFor(n));
    }
    b.control_directory(&dir);
    match b.connect_mux(address).await {
        Ok(s) => {
            tracing::debug!(host = %name, "ssh: master connected");
            Ok(s)
        }
        Err(e) => Err(classify(name, address, ssh, &e)),
    }
}

/// Sorts a failure to connect to host `name` at `address` into host key
/// trouble, read out of ssh's banner (which goes to the log only, made
/// printable by `?`), or anything else.
fn classify(name: &str, address: &str, ssh: &Ssh, e: &openssh::Error) -> ExecError {
    let said = said(e);
    match host_key::read(&said, address, ssh.port, ssh.known_hosts.as_deref()) {
        Some(refusal) => {
            tracing::debug!(host = %name, ssh = ?said, "ssh: host key refused");
            ExecError::HostKey {
                host: name.into(),
                refusal: Box::new(refusal),
            }
        }
        None => ExecError::Connect {
            host: name.into(),
            message: chain(e),
        },
    }
}

/// An error and its sources, one after the other, their lines kept: what
/// ssh wrote, for [`host_key::read`].
fn said(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push('\n');
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// An error and its sources, joined with `: `, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where [`control_dir`] lives.
fn control_dir_path() -> PathBuf {
    std::env::temp_dir().join(format!("rollguard-ssh-{}", std::process::id()))
}

/// A private (0700) folder for control sockets, one per rollguard process.
fn control_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = control_dir_path();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private folder of ours",
            dir.display()
        )));
    }
    Ok(dir)
}

/// A fresh end marker: [`END_MARKER`] and 64 random bits in hex.
fn end_marker() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    // Each RandomState has its own random keys.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(RUNS.fetch_add(1, Ordering::Relaxed));
    format!("{END_MARKER}{:016x}", h.finish())
}

/// The line sent to the remote login shell. The wrapper reports its pid
/// (the session and process group leader, as sshd starts each command in a
/// new session; the script runs in that group), runs `sh -c script`, prints
/// `end` on stdout and on stderr, and exits as the script did. A script
/// killed by a signal that ends a process by default is reported as killed
/// (by SIGKILL): sh cannot tell it from `exit 128+n`, which is taken as a
/// signal too.
fn wrap(script: &str, end: &str) -> String {
    let marker = std::str::from_utf8(PID_MARKER).unwrap_or("rollguard-remote-pid=");
    let end = quote(end);
    let inner = format!(
        "printf '{marker}%s\\n' \"$$\" >&2; sh -c \"$1\"; rg_rc=$?; \
         printf %s {end}; printf %s {end} >&2; \
         if [ \"$rg_rc\" -gt 128 ]; then \
         case $(kill -l \"$rg_rc\" 2>/dev/null) in \
         HUP|INT|QUIT|ILL|TRAP|ABRT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|SYS) \
         kill -s KILL \"$$\";; esac; fi; exit \"$rg_rc\""
    );
    format!("exec sh -c {} rollguard {}", quote(&inner), quote(script))
}

/// Takes the end marker out of a stream as it passes, and reports it.
struct EndScan {
    marker: Vec<u8>,
    /// Bytes that may be the start of the marker, not yet passed on.
    pending: Vec<u8>,
    seen: bool,
    tx: watch::Sender<bool>,
}

impl EndScan {
    fn new(marker: &str, tx: watch::Sender<bool>) -> EndScan {
        EndScan {
            marker: marker.as_bytes().to_vec(),
            pending: Vec::new(),
            seen: false,
            tx,
        }
    }

    /// Passes `data` on to `into`, less the marker (the first one only).
    fn feed(&mut self, data: &[u8], into: &mut Capped) {
        if self.seen || self.marker.is_empty() {
            into.push(data);
            return;
        }
        self.pending.extend_from_slice(data);
        if let Some(at) = find(&self.pending, &self.marker) {
            into.push(&self.pending[..at]);
            into.push(&self.pending[at + self.marker.len()..]);
            self.pending = Vec::new();
            self.seen = true;
            let _ = self.tx.send(true);
        } else {
            let keep = (self.marker.len() - 1).min(self.pending.len());
            let cut = self.pending.len() - keep;
            into.push(&self.pending[..cut]);
            self.pending.drain(..cut);
        }
    }

    /// At the end of the stream: passes on what was held back.
    fn finish(self, into: &mut Capped) {
        into.push(&self.pending);
    }
}

/// Reads remote stdout to its end into `into`, through `scan`.
async fn read_stdout<R: AsyncRead + Unpin>(pipe: Option<R>, into: &mut Capped, mut scan: EndScan) {
    if let Some(mut pipe) = pipe {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => scan.feed(&chunk[..n], into),
            }
        }
    }
    scan.finish(into);
}

/// Reads remote stderr into a capped buffer, taking out the pid marker line
/// (sent on `pid`) that the wrapper prints before the script starts, and
/// then the end marker, through `scan`.
async fn read_stderr<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    pid: watch::Sender<Option<u32>>,
    mut scan: EndScan,
) -> Capped {
    let mut into = Capped::default();
    let Some(mut pipe) = pipe else {
        scan.finish(&mut into);
        return into;
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut searching = true;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !searching {
            scan.feed(&chunk[..n], &mut into);
            continue;
        }
        pending.extend_from_slice(&chunk[..n]);
        if let Some(at) = find(&pending, PID_MARKER)
            && let Some(nl) = pending[at..].iter().position(|&b| b == b'\n')
        {
            let digits = &pending[at + PID_MARKER.len()..at + nl];
            let parsed = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.trim().parse::<u32>().ok());
            if let Some(p) = parsed.filter(|&p| p > 1) {
                let _ = pid.send(Some(p));
            }
            into.push(&pending[..at]);
            scan.feed(&pending[at + nl + 1..], &mut into);
            pending.clear();
            searching = false;
        } else if pending.len() > 8 * 1024 {
            // Something printed a lot before the wrapper could; give up.
            scan.feed(&pending, &mut into);
            pending.clear();
            searching = false;
        }
    }
    scan.feed(&pending, &mut into);
    scan.finish(&mut into);
    into
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn markers_are_removed_and_reported() {
        let end = "rollguard-remote-end-0123456789abcdef";
        let data = format!("motd\nrollguard-remote-pid=4242\nreal error\n{end}late\n");
        let (tx, rx) = watch::channel(None);
        let (end_tx, end_rx) = watch::channel(false);
        let out = read_stderr(Some(data.as_bytes()), tx, EndScan::new(end, end_tx)).await;
        assert_eq!(*rx.borrow(), Some(4242));
        assert!(*end_rx.borrow());
        assert_eq!(out.into_string(), "motd\nreal error\nlate\n");

        let (tx, rx) = watch::channel(None);
        let (end_tx, end_rx) = watch::channel(false);
        let out = read_stderr(Some(&b"no marker \xff"[..]), tx, EndScan::new(end, end_tx)).await;
        assert_eq!(*rx.borrow(), None);
        assert!(!*end_rx.borrow());
        assert_eq!(out.into_string(), "no marker \u{fffd}");
    }

    #[test]
    fn end_marker_is_found_across_reads() {
        let end = end_marker();
        assert_ne!(end, end_marker());
        let data = format!("out{end}after");
        for split in 0..data.len() {
            let (tx, rx) = watch::channel(false);
            let mut scan = EndScan::new(&end, tx);
            let mut into = Capped::default();
            for part in data.as_bytes()[..split].chunks(3) {
                scan.feed(part, &mut into);
            }
            scan.feed(&data.as_bytes()[split..], &mut into);
            assert!(*rx.borrow(), "split at {split}");
            scan.finish(&mut into);
            assert_eq!(into.into_string(), "outafter");
        }
        // A near miss is passed on whole.
        let (tx, rx) = watch::channel(false);
        let mut scan = EndScan::new(&end, tx);
        let mut into = Capped::default();
        scan.feed(&end.as_bytes()[..end.len() - 1], &mut into);
        scan.feed(b"!", &mut into);
        scan.finish(&mut into);
        assert!(!*rx.borrow());
        assert_eq!(into.into_string(), format!("{}!", &end[..end.len() - 1]));
    }

    fn run_wrapped(script: &str, end: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(wrap(script, end))
            .output()
            .unwrap()
    }

    #[test]
    fn wrapper_runs_the_script_and_reports_pid_and_end() {
        use std::os::unix::process::ExitStatusExt;
        let end = end_marker();
        let script = "printf '%s\\n' \"it's\" '$HOME'; echo e >&2; exit 5";
        let out = run_wrapped(script, &end);
        assert_eq!(out.status.code(), Some(5));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("it's\n$HOME\n{end}")
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("rollguard-remote-pid="), "{err}");
        assert!(err.ends_with(&format!("\ne\n{end}")), "{err}");

        // The script stays in the wrapper's process group (which sshd makes
        // the wrapper lead; here it is ours), so killing the group kills it.
        let out = run_wrapped("ps -o pgid= -p $$", &end);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // SAFETY: getpgrp has no preconditions and cannot fail.
        let own = unsafe { libc::getpgrp() };
        assert_eq!(
            stdout.trim_end_matches(end.as_str()).trim(),
            own.to_string()
        );

        let out = run_wrapped("kill -s KILL $$", &end);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL));
        assert_eq!(String::from_utf8_lossy(&out.stdout), end);
        let out = run_wrapped("exit 127", &end);
        assert_eq!(out.status.code(), Some(127));
        let out = run_wrapped("exit 200", &end);
        assert_eq!(out.status.code(), Some(200));
        let out = run_wrapped("exec >&- 2>&-; exit 3", &end);
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), end);
    }

    #[test]
    fn host_key_errors_are_recognised() {
        let ssh = Ssh {
            user: None,
            port: 2222,
            identity: None,
            known_hosts: Some("/kh".into()),
            host_key_check: HostKeyCheck::Strict,
            connect_timeout: Duration::from_secs(5),
        };
        let e = openssh::Error::Connect(std::io::Error::other(
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.",
        ));
        match classify("h", "127.0.0.1", &ssh, &e) {
            ExecError::HostKey { host, refusal } => {
                assert_eq!(host, "h");
                assert_eq!(refusal.refusal, host_key::Refusal::Unknown);
                assert_eq!(
                    (refusal.address.as_str(), refusal.port),
                    ("127.0.0.1", 2222)
                );
                assert_eq!(refusal.known_hosts.as_deref(), Some("/kh"));
            }
            other => panic!("{other:?}"),
        }
        let e = openssh::Error::Connect(std::io::Error::other(
            "connect to host x port 22: Connection refused",
        ));
        assert!(matches!(
            classify("h", "x", &ssh, &e),
            ExecError::Connect { .. }
        ));
    }
}
