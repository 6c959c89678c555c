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
//!
//! The master connection is made in `master.rs`; the wrapper, and the
//! reading of its markers out of the output, are in `wrapper.rs`.

mod master;
mod wrapper;

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use openssh::{Child, Session, Stdio};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::time::Instant;

use super::local::{Capped, drive};
use super::{ExecError, Output};
use crate::config::Ssh;
use master::{chain, connect, control_dir_path};
use wrapper::{EndScan, end_marker, read_stderr, read_stdout, wrap};

/// At most this many commands run at once per host; more wait their turn.
/// sshd refuses more than `MaxSessions` (default 10) channels on one
/// connection; two are left for the kill commands sent on timeout.
const MAX_CHANNELS: usize = 8;

/// How long after a timeout we still wait for the remote pid to arrive.
const PID_GRACE: Duration = Duration::from_secs(2);

/// How long the remote kill command may take.
const KILL_TIMEOUT: Duration = Duration::from_secs(3);

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

/// A run that finished before its deadline.
struct Ran {
    /// How the mux client reported its end.
    status: Result<ExitStatus, openssh::Error>,
    stdout: Capped,
    stderr: Capped,
    /// Whether the script reported its pid, so it started.
    started: bool,
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

    /// One try at running `script`: a channel over the master, the
    /// wrapped script started, its output read to the end, its exit code.
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
        let child = match self.spawn(&session, script, &end, timeout, deadline).await {
            Ok(child) => child,
            Err(ended) => return ended,
        };
        let Some(ran) = self.collect(child, &session, &end, deadline).await else {
            return Attempt::Done(Err(ExecError::Timeout(timeout)));
        };
        let code = match self.exit_code(ran.status, &session, ran.started).await {
            Ok(code) => code,
            Err(ended) => return ended,
        };
        let truncated = ran.stdout.truncated || ran.stderr.truncated;
        Attempt::Done(Ok(Output {
            code,
            stdout: ran.stdout.into_string(),
            stderr: ran.stderr.into_string(),
            truncated,
        }))
    }

    /// Starts `script`, wrapped to print `end`, over `session`. `Err` is how
    /// the attempt ends when it cannot start: a retry when the master is gone.
    async fn spawn(
        &self,
        session: &Arc<Session>,
        script: &str,
        end: &str,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<Child<Arc<Session>>, Attempt> {
        let wrapped = wrap(script, end);
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
        match spawned {
            Err(_) => Err(Attempt::Done(Err(ExecError::Timeout(timeout)))),
            Ok(Err(openssh::Error::InvalidCommand)) => Err(Attempt::Done(Err(ExecError::Spawn(
                "the command contains a NUL byte".into(),
            )))),
            Ok(Err(e)) => {
                let err = self.connect_err(format!("starting the command: {}", chain(&e)));
                if session.check().await.is_ok() {
                    // The master is fine; the server refused this channel.
                    return Err(Attempt::Done(Err(err)));
                }
                self.forget(session).await;
                Err(Attempt::Retry(err))
            }
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// Reads `child`'s output to its end (both `end` markers, or both
    /// streams ended) and then takes its exit status. `None` when the
    /// deadline passed first: the remote process group is then killed.
    async fn collect(
        &self,
        mut child: Child<Arc<Session>>,
        session: &Arc<Session>,
        end: &str,
        deadline: Instant,
    ) -> Option<Ran> {
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
            EndScan::new(end, err_end_tx),
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
            read_stdout(out_pipe, &mut stdout, EndScan::new(end, out_end_tx)),
            async {
                stderr = (&mut err_task).await.ok();
            },
            deadline,
        )
        .await;
        let started = pid_rx.borrow().is_some();
        guard.armed = false;

        let Some(status) = status else {
            // Timed out. The child future (and with it the mux channel) is
            // gone; the remote process is not, so kill it, and wait for that.
            kill_remote(self.name.clone(), session.clone(), pid_rx).await;
            err_task.abort();
            return None;
        };
        // Ends the stderr reader if the drain grace ran out.
        err_task.abort();
        Some(Ran {
            status,
            stdout,
            stderr: stderr.unwrap_or_default(),
            started,
        })
    }

    /// The exit code of a finished run (`None`: killed by a signal), or how
    /// the attempt ends when the connection was lost: retried only when the
    /// script cannot have `started`.
    async fn exit_code(
        &self,
        status: Result<ExitStatus, openssh::Error>,
        session: &Arc<Session>,
        started: bool,
    ) -> Result<Option<i32>, Attempt> {
        match status {
            Ok(st) => Ok(st.code()),
            // The native mux client reports exit 127 as this error.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Some(127))
            }
            Err(e) => {
                let lost =
                    matches!(e, openssh::Error::Disconnected) || session.check().await.is_err();
                if !lost && matches!(e, openssh::Error::RemoteProcessTerminated) {
                    // Killed by a signal.
                    return Ok(None);
                }
                self.forget(session).await;
                let err = self.connect_err(format!("connection lost: {}", chain(&e)));
                Err(if started {
                    Attempt::Done(Err(err))
                } else {
                    Attempt::Retry(err)
                })
            }
        }
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
