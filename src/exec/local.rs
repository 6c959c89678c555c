//! Commands on this machine: `sh -c` in its own process group, with output
//! capped at [`MAX_OUTPUT`] and the whole group killed on timeout, so a
//! hung probe never leaves processes or a blocked pipe behind. Also holds
//! the capped reading shared with the SSH executor.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::{ExecError, MAX_OUTPUT, Output};

/// After the shell exits, how long its output may stay open (held by a
/// background process it left behind) before reading stops.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs commands on this machine with `sh -c`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Local {
    /// Runs `script` with `sh -c` (stdin from /dev/null) in a new process
    /// group. After `timeout` the whole group gets SIGKILL and the result is
    /// [`ExecError::Timeout`]. A background process that keeps the output
    /// open after the shell exits is left alone; reading stops after a short
    /// grace.
    pub async fn run(&self, script: &str, timeout: Duration) -> Result<Output, ExecError> {
        let deadline = Instant::now() + timeout;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError::Spawn(format!("sh -c: {e}")))?;
        let pid = child.id();
        // Kills the group if this future is dropped mid-run.
        let mut guard = GroupGuard(pid);
        let mut stdout = Capped::default();
        let mut stderr = Capped::default();
        let out_pipe = child.stdout.take();
        let err_pipe = child.stderr.take();

        let result = drive(
            child.wait(),
            std::future::ready(()),
            read_into(out_pipe, &mut stdout),
            read_into(err_pipe, &mut stderr),
            deadline,
        )
        .await;

        // Once the shell is reaped its pid may be reused: never signal it after.
        guard.0 = None;
        match result {
            None => {
                kill_group(pid);
                // Reap it; SIGKILL cannot be ignored, so this is quick.
                let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                Err(ExecError::Timeout(timeout))
            }
            Some(Err(e)) => {
                kill_group(pid);
                Err(ExecError::Spawn(format!("waiting for sh: {e}")))
            }
            Some(Ok(status)) => {
                let truncated = stdout.truncated || stderr.truncated;
                Ok(Output {
                    code: status.code(),
                    stdout: stdout.into_string(),
                    stderr: stderr.into_string(),
                    truncated,
                })
            }
        }
    }
}

/// Polls `wait` (the process's exit) and the two output readers together.
/// `wait` is first polled once `ready` has finished: over SSH, taking the
/// exit status ends the session, so it has to wait until the output is
/// known to be complete. Returns `None` when `deadline` passes before
/// `wait` finishes. After the process exits, the readers get
/// [`DRAIN_GRACE`] (within the deadline) to reach the end of their streams;
/// a stream still held open by a leftover background process is then
/// abandoned.
pub(crate) async fn drive<T>(
    wait: impl Future<Output = T>,
    ready: impl Future<Output = ()>,
    read_out: impl Future<Output = ()>,
    read_err: impl Future<Output = ()>,
    deadline: Instant,
) -> Option<T> {
    tokio::pin!(wait, ready, read_out, read_err);
    let mut is_ready = false;
    let mut out_done = false;
    let mut err_done = false;
    let status = loop {
        tokio::select! {
            biased;
            st = &mut wait, if is_ready => break st,
            _ = &mut ready, if !is_ready => is_ready = true,
            _ = &mut read_out, if !out_done => out_done = true,
            _ = &mut read_err, if !err_done => err_done = true,
            _ = tokio::time::sleep_until(deadline) => return None,
        }
    };
    let grace = (Instant::now() + DRAIN_GRACE).min(deadline);
    while !(out_done && err_done) {
        tokio::select! {
            _ = &mut read_out, if !out_done => out_done = true,
            _ = &mut read_err, if !err_done => err_done = true,
            _ = tokio::time::sleep_until(grace) => break,
        }
    }
    Some(status)
}

/// Sends SIGKILL to the process group of the pid it holds when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Sends SIGKILL to the process group led by `pid`.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // Never group 0 (our own) or -1 (everything): signal_group refuses.
    let _ = crate::host::signal_group(pid, libc::SIGKILL);
}

/// A byte buffer that keeps at most [`MAX_OUTPUT`] bytes and remembers
/// whether more arrived.
#[derive(Debug, Default)]
pub(crate) struct Capped {
    /// The bytes kept.
    pub(crate) buf: Vec<u8>,
    /// Whether bytes were dropped.
    pub(crate) truncated: bool,
}

impl Capped {
    /// Appends what fits; notes the rest as dropped.
    pub(crate) fn push(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Lossy UTF-8; a character cut in half by the cap is dropped.
    pub(crate) fn into_string(self) -> String {
        let mut buf = self.buf;
        if self.truncated
            && let Err(e) = std::str::from_utf8(&buf)
            && e.error_len().is_none()
        {
            buf.truncate(e.valid_up_to());
        }
        match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// Reads `pipe` to its end into `into`, discarding bytes beyond the cap so
/// the writer never blocks. Read errors end the stream.
pub(crate) async fn read_into<R: AsyncRead + Unpin>(pipe: Option<R>, into: &mut Capped) {
    let Some(mut pipe) = pipe else { return };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into.push(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_keeps_the_first_bytes() {
        let mut c = Capped::default();
        c.push(&vec![b'a'; MAX_OUTPUT - 1]);
        assert!(!c.truncated);
        c.push("é".as_bytes());
        assert!(c.truncated);
        let s = c.into_string();
        assert_eq!(s.len(), MAX_OUTPUT - 1, "half a character is dropped");
        let mut c = Capped::default();
        c.push(b"ok \xff");
        assert_eq!(c.into_string(), "ok \u{fffd}");
    }

    #[tokio::test]
    async fn runs_and_reports() {
        let out = Local
            .run("echo hi; echo err >&2; exit 4", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out.code, Some(4));
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.stderr, "err\n");
        assert!(!out.truncated);
    }
}
