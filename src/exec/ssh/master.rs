//! The master connection to a host: `ssh -M` made through the `openssh`
//! crate with the host's settings, its control socket in a private folder
//! of this process, and a failure to connect sorted into host key trouble
//! (read by [`host_key::read`]) or anything else.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};

use crate::config::{HostKeyCheck, Ssh};
use crate::exec::{ExecError, host_key};

/// A master that has had no clients for this long exits; the next run
/// reconnects. Keeps a crashed rollguard from leaving masters forever.
const IDLE_PERSIST_SECS: usize = 600;

/// Makes a master connection to `address`.
pub(super) async fn connect(name: &str, address: &str, ssh: &Ssh) -> Result<Session, ExecError> {
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
pub(super) fn chain(e: &dyn std::error::Error) -> String {
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
pub(super) fn control_dir_path() -> PathBuf {
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
    let uid = crate::host::euid();
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private folder of ours",
            dir.display()
        )));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

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
