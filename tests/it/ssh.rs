//! The SSH executor against a real sshd on 127.0.0.1: output and exit
//! codes, one shared master connection, remote kill on timeout, host key
//! refusal, reconnection and output capping.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollguard::config::HostKeyCheck;
use rollguard::exec::host_key::Refusal;
use rollguard::exec::ssh::SshHost;
use rollguard::exec::{ExecError, MAX_OUTPUT};
use rollguard::shell::quote;

use common::free_port;
use common::sshd::{Sshd, alive};

const T: Duration = Duration::from_secs(20);

fn host(sshd: &Sshd) -> SshHost {
    SshHost::new("test", "127.0.0.1", sshd.ssh())
}

#[tokio::test]
async fn runs_remotely_with_output_and_exit_code() {
    let Some(sshd) = Sshd::start("runs_remotely_with_output_and_exit_code") else {
        return;
    };
    let h = host(&sshd);
    let out = h
        .run("echo \"$SSH_CONNECTION\"; echo to-stderr >&2; exit 3", T)
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd log: {}", sshd.log()));
    assert_eq!(out.code, Some(3));
    assert!(out.stdout.starts_with("127.0.0.1 "), "{out:?}");
    assert_eq!(out.stderr, "to-stderr\n", "pid marker is not shown");
    assert!(!out.truncated);

    let out = h
        .run("printf '%s\\n' \"it's\" '$HOME' \"a b\"", T)
        .await
        .unwrap();
    assert_eq!(out.stdout, "it's\n$HOME\na b\n");
    assert_eq!(out.code, Some(0));

    let out = h.run("exit 127", T).await.unwrap();
    assert_eq!(out.code, Some(127));
    let out = h.run("no-such-command-rollguard", T).await.unwrap();
    assert_eq!(out.code, Some(127));
    let out = h.run("kill -s KILL $$", T).await.unwrap();
    assert_eq!(out.code, None, "killed by a signal");
    let out = h.run("printf 'ok \\377\\n'", T).await.unwrap();
    assert_eq!(out.stdout, "ok \u{fffd}\n", "non-UTF-8 is decoded lossily");
    h.close().await;
}

#[tokio::test]
async fn concurrent_runs_share_one_master() {
    let Some(sshd) = Sshd::start("concurrent_runs_share_one_master") else {
        return;
    };
    let h = Arc::new(host(&sshd));
    let runs: Vec<_> = (0..16)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                h.run(&format!("sleep 0.2; echo {i} \"$SSH_CONNECTION\""), T)
                    .await
            })
        })
        .collect();
    let mut conns = Vec::new();
    for (i, r) in runs.into_iter().enumerate() {
        let out = r.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.code, Some(0));
        let (n, conn) = out.stdout.trim().split_once(' ').unwrap();
        assert_eq!(n, i.to_string());
        conns.push(conn.to_string());
    }
    // $SSH_CONNECTION holds the client port: one TCP connection for all.
    conns.dedup();
    assert_eq!(conns.len(), 1, "{conns:?}");
    h.close().await;
}

#[tokio::test]
async fn timeout_kills_the_remote_command() {
    let Some(sshd) = Sshd::start("timeout_kills_the_remote_command") else {
        return;
    };
    let h = host(&sshd);
    // Connect first so the timeout only covers the command.
    h.run("true", T).await.unwrap();
    let pid1 = sshd.dir.join("pid1");
    let pid2 = sshd.dir.join("pid2");
    let marker = sshd.dir.join("marker");
    let script = format!(
        "echo $$ > {p1}; (sleep 30; touch {m}) & echo $! > {p2}; wait",
        p1 = quote(&pid1.to_string_lossy()),
        p2 = quote(&pid2.to_string_lossy()),
        m = quote(&marker.to_string_lossy()),
    );
    let start = Instant::now();
    let r = h.run(&script, Duration::from_secs(1)).await;
    assert!(matches!(r, Err(ExecError::Timeout(_))), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    let read = |p: &std::path::Path| -> i32 {
        std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
    };
    let (p1, p2) = (read(&pid1), read(&pid2));
    // Well before the job's 30 s, even on a busy machine.
    let until = Instant::now() + Duration::from_secs(10);
    while (alive(p1) || alive(p2)) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(p1), "remote shell {p1} still runs");
    assert!(!alive(p2), "remote background job {p2} still runs");
    assert!(!marker.exists());

    // The master is still fine afterwards.
    let out = h.run("echo again", T).await.unwrap();
    assert_eq!(out.stdout, "again\n");
    h.close().await;
}

#[tokio::test]
async fn cancelled_run_kills_the_remote_command() {
    let Some(sshd) = Sshd::start("cancelled_run_kills_the_remote_command") else {
        return;
    };
    let h = host(&sshd);
    h.run("true", T).await.unwrap();
    let pidfile = sshd.dir.join("pid");
    let script = format!(
        "echo $$ > {}; exec sleep 30",
        quote(&pidfile.to_string_lossy())
    );
    // Dropped once the remote command runs (not after a fixed second, which
    // a busy machine may spend starting the session).
    let started = async {
        while !std::fs::read_to_string(&pidfile).is_ok_and(|t| t.ends_with('\n')) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            r = h.run(&script, T) => Some(r),
            () = started => None,
        }
    })
    .await;
    assert!(
        matches!(r, Ok(None)),
        "the run was dropped while its command ran: {r:?}"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !alive(pid),
        "remote command {pid} survived the cancelled run"
    );
    h.close().await;
}

#[tokio::test]
async fn changed_host_key_is_refused() {
    let Some(mut sshd) = Sshd::start("changed_host_key_is_refused") else {
        return;
    };
    let h = host(&sshd);
    h.run("true", T).await.unwrap();
    sshd.restart(true);
    let fingerprint = sshd.host_key_fingerprint();
    let known_hosts = sshd.known_hosts.display().to_string();
    for h in [&h, &host(&sshd)] {
        match h.run("true", T).await {
            Err(ExecError::HostKey { refusal, .. }) => {
                assert_eq!(refusal.refusal, Refusal::Changed);
                assert_eq!(refusal.key_type.as_deref(), Some("ED25519"));
                assert_eq!(refusal.fingerprint.as_deref(), Some(fingerprint.as_str()));
                assert_eq!(refusal.offending, Some((known_hosts.clone(), 1)));
            }
            other => panic!("expected a host key error, got {other:?}"),
        }
    }
    h.close().await;
}

#[tokio::test]
async fn unknown_host_is_refused_when_strict() {
    let Some(sshd) = Sshd::start("unknown_host_is_refused_when_strict") else {
        return;
    };
    let empty = sshd.dir.join("known_hosts_empty");
    std::fs::write(&empty, "").unwrap();
    let mut ssh = sshd.ssh();
    ssh.known_hosts = Some(empty.clone());
    let h = SshHost::new("test", "127.0.0.1", ssh.clone());
    match h.run("true", T).await {
        Err(ExecError::HostKey { refusal, .. }) => {
            assert_eq!(refusal.refusal, Refusal::Unknown);
            assert_eq!(refusal.known_hosts, Some(empty.display().to_string()));
        }
        other => panic!("expected a host key error, got {other:?}"),
    }

    // accept-new takes it and records it.
    ssh.host_key_check = HostKeyCheck::AcceptNew;
    let h = SshHost::new("test", "127.0.0.1", ssh);
    let out = h.run("echo hi", T).await.unwrap();
    assert_eq!(out.stdout, "hi\n");
    let recorded = std::fs::read_to_string(&empty).unwrap();
    assert!(recorded.contains("ssh-ed25519"), "{recorded}");
    h.close().await;
}

#[tokio::test]
async fn master_is_remade_after_the_connection_drops() {
    let Some(mut sshd) = Sshd::start("master_is_remade_after_the_connection_drops") else {
        return;
    };
    let h = host(&sshd);
    let first = h.run("echo \"$SSH_CONNECTION\"", T).await.unwrap().stdout;

    sshd.kill_connections();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = h
        .run("echo \"$SSH_CONNECTION\"", T)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(out.stdout, first, "a new TCP connection");

    sshd.restart(false);
    let out = h
        .run("echo back", T)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.stdout, "back\n");
    h.close().await;
}

#[tokio::test]
async fn large_output_is_truncated() {
    let Some(sshd) = Sshd::start("large_output_is_truncated") else {
        return;
    };
    let h = host(&sshd);
    let out = h
        .run("head -c 1000000 /dev/zero | tr '\\0' a; echo done >&2", T)
        .await
        .unwrap();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout.len(), MAX_OUTPUT);
    assert!(out.stdout.bytes().all(|b| b == b'a'));
    assert!(out.truncated);
    assert_eq!(out.stderr, "done\n");
    h.close().await;
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    if Sshd::start("refused_connection_is_a_connect_error").is_none() {
        return;
    }
    let mut ssh = rollguard::config::Ssh {
        user: None,
        port: free_port(),
        identity: None,
        known_hosts: None,
        host_key_check: HostKeyCheck::Strict,
        connect_timeout: Duration::from_secs(5),
    };
    let h = SshHost::new("nowhere", "127.0.0.1", ssh.clone());
    match h.run("true", T).await {
        Err(e @ ExecError::Connect { .. }) => assert!(e.to_string().contains("nowhere"), "{e}"),
        other => panic!("expected a connect error, got {other:?}"),
    }
    ssh.port = 22;
    let h = SshHost::new("bad", "-oProxyCommand=touch /tmp/x", ssh);
    assert!(matches!(
        h.run("true", T).await,
        Err(ExecError::Connect { .. })
    ));
}
