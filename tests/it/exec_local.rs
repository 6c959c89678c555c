//! The local executor: exit codes, output capping, and timeouts that kill
//! the whole process group.

use std::time::{Duration, Instant};

use rollguard::exec::local::Local;
use rollguard::exec::{ExecError, MAX_OUTPUT};

const T: Duration = Duration::from_secs(20);

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "rollguard-exec-local-{}-{name}",
        std::process::id()
    ))
}

#[tokio::test]
async fn exit_codes_and_output() {
    let out = Local
        .run("echo out; echo err >&2; exit 7", T)
        .await
        .unwrap();
    assert_eq!(out.code, Some(7));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert!(!out.truncated);
    assert_eq!(Local.run("true", T).await.unwrap().code, Some(0));
    assert_eq!(
        Local
            .run("no-such-command-rollguard", T)
            .await
            .unwrap()
            .code,
        Some(127)
    );
    assert_eq!(Local.run("kill -s KILL $$", T).await.unwrap().code, None);
    assert_eq!(
        Local.run("cat", T).await.unwrap().stdout,
        "",
        "stdin is empty"
    );
    assert_eq!(
        Local.run("printf 'x\\377'", T).await.unwrap().stdout,
        "x\u{fffd}"
    );
}

#[tokio::test]
async fn timeout_kills_the_process_group() {
    let pidfile = temp("pid");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
    let start = Instant::now();
    let r = Local.run(&script, Duration::from_millis(500)).await;
    assert!(matches!(r, Err(ExecError::Timeout(_))), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pidfile);
    let until = Instant::now() + Duration::from_secs(2);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "background sleep {pid} survived the timeout");
}

#[tokio::test]
async fn output_is_truncated_at_the_cap() {
    let out = Local
        .run(
            "head -c 100000 /dev/zero | tr '\\0' a; head -c 70000 /dev/zero | tr '\\0' b >&2",
            T,
        )
        .await
        .unwrap();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout.len(), MAX_OUTPUT);
    assert_eq!(out.stderr.len(), MAX_OUTPUT);
    assert!(out.truncated);
}

#[tokio::test]
async fn huge_output_does_not_hang() {
    let start = Instant::now();
    let out = Local
        .run(
            "head -c 50000000 /dev/zero; head -c 50000000 /dev/zero >&2; echo finished",
            T,
        )
        .await
        .unwrap();
    assert_eq!(out.code, Some(0), "the writer never blocked");
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), MAX_OUTPUT);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn leftover_background_job_does_not_hold_the_result() {
    let start = Instant::now();
    let out = Local.run("sleep 5 & echo started", T).await.unwrap();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "started\n");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn cancelled_run_kills_the_process_group() {
    let pidfile = temp("cancel-pid");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
    let r = tokio::time::timeout(Duration::from_millis(500), Local.run(&script, T)).await;
    assert!(r.is_err(), "the outer timeout dropped the run");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pidfile);
    let until = Instant::now() + Duration::from_secs(2);
    while alive(pid) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(pid),
        "background sleep {pid} survived the cancelled run"
    );
}
