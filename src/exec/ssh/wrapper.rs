//! The wrapper around a remote script: it reports the remote pid first
//! and ends both output streams with a marker once the script has exited;
//! both are taken out of the output as it is read.

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use crate::exec::local::Capped;
use crate::shell::quote;

/// Printed by the wrapper (with the remote pid) before the script starts.
const PID_MARKER: &[u8] = b"rollguard-remote-pid=";

/// Start of the marker the wrapper prints on stdout and on stderr once the
/// script has exited; a random tail makes it unique to the run.
const END_MARKER: &str = "rollguard-remote-end-";

/// A fresh end marker: [`END_MARKER`] and 64 random bits in hex.
pub(super) fn end_marker() -> String {
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
pub(super) fn wrap(script: &str, end: &str) -> String {
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
pub(super) struct EndScan {
    marker: Vec<u8>,
    /// Bytes that may be the start of the marker, not yet passed on.
    pending: Vec<u8>,
    seen: bool,
    tx: watch::Sender<bool>,
}

impl EndScan {
    pub(super) fn new(marker: &str, tx: watch::Sender<bool>) -> EndScan {
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
pub(super) async fn read_stdout<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    into: &mut Capped,
    mut scan: EndScan,
) {
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
pub(super) async fn read_stderr<R: AsyncRead + Unpin>(
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
        let own = crate::host::own_group();
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
}
