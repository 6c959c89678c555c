//! Output over SSH is complete once the exit status is in: many short
//! scripts that print and exit at once, run concurrently over one master
//! while the machine is busy, each come back with every line they printed.
//!
//! The loss this guards against is a race, so a run only catches it with
//! some chance (without the fix, about one script in 200 lost output here);
//! `ROLLGUARD_SSH_OUTPUT_RUNS` sets how many scripts run (default 300).

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollguard::exec::ssh::SshHost;

use common::sshd::Sshd;

const T: Duration = Duration::from_secs(20);

/// Scripts and the stdout and stderr each must give back exactly.
const CASES: &[(&str, &str, &str)] = &[
    (
        "echo \"rollguard-running 13522\"; echo \"rollguard-version v1\"",
        "rollguard-running 13522\nrollguard-version v1\n",
        "",
    ),
    ("printf 'a\\nb\\n'; printf 'c\\n'", "a\nb\nc\n", ""),
    (
        "echo o1; echo e1 >&2; echo o2; echo e2 >&2; printf o3; printf e3 >&2",
        "o1\no2\no3",
        "e1\ne2\ne3",
    ),
    (
        "i=0; while [ $i -lt 40 ]; do echo \"line $i\"; echo \"err $i\" >&2; i=$((i+1)); done",
        "",
        "",
    ),
];

/// A script that leaves most of its output in the pipe when it exits, so
/// sshd still has to read and send it after the exit status.
const BULK: &str = "head -c 30000 /dev/zero | tr '\\0' e >&2; \
                    head -c 60000 /dev/zero | tr '\\0' a; echo end; echo done >&2";

/// What case 3 must print on `prefix`.
fn lines(prefix: &str) -> String {
    (0..40).map(|i| format!("{prefix} {i}\n")).collect()
}

/// CPU burners, killed on drop. They run at nice 10: far above sshd's 19,
/// so sshd is starved as the test needs, yet far below the other tests
/// running beside this one (nice 0), which they would otherwise starve into
/// timeouts of their own.
struct Burners(Vec<Child>);

impl Burners {
    fn start(n: usize) -> Burners {
        Burners(
            (0..n)
                .filter_map(|_| {
                    Command::new("nice")
                        .args(["-n", "10", "sh", "-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .ok()
                })
                .collect(),
        )
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_is_complete_when_scripts_exit_right_after_printing() {
    let Some(sshd) = Sshd::start("output_is_complete_when_scripts_exit_right_after_printing")
    else {
        return;
    };
    let runs: usize = std::env::var("ROLLGUARD_SSH_OUTPUT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let h = Arc::new(SshHost::new("test", "127.0.0.1", sshd.ssh()));
    h.run("true", T)
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd log: {}", sshd.log()));

    // sshd (and every session it forks from now on) gets a low priority
    // against the burners, so it often finds a script's output and its exit
    // at the same time: then it sends the exit status first.
    for pid in sshd
        .pid()
        .map(|p| p as i32)
        .into_iter()
        .chain(sshd.connection_pids())
    {
        // SAFETY: plain setpriority(2).
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, 19);
        }
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let burners = Burners::start(cpus * 4);
    let start = Instant::now();
    // More workers than the host's channel limit, so runs queue for permits.
    let workers = 16;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let h = h.clone();
            tokio::spawn(async move {
                let mut bad = Vec::new();
                let mut i = w;
                while i < runs {
                    let (script, out, err) = if i % 3 != 0 {
                        (
                            BULK,
                            format!("{}end\n", "a".repeat(60000)),
                            format!("{}done\n", "e".repeat(30000)),
                        )
                    } else {
                        let (script, out, err) = CASES[i / 3 % CASES.len()];
                        if out.is_empty() {
                            (script, lines("line"), lines("err"))
                        } else {
                            (script, out.to_string(), err.to_string())
                        }
                    };
                    match h.run(script, T).await {
                        // The remote login shell may print before the script
                        // (a noisy profile), never after it.
                        Ok(o)
                            if o.code == Some(0) && o.stdout == out && o.stderr.ends_with(&err) => {
                        }
                        Ok(o) => bad.push(format!(
                            "run {i} ({script}): code {:?}, {} of {} stdout bytes, stderr {:?}",
                            o.code,
                            o.stdout.len(),
                            out.len(),
                            o.stderr
                                .chars()
                                .rev()
                                .take(200)
                                .collect::<String>()
                                .chars()
                                .rev()
                                .collect::<String>()
                        )),
                        Err(e) => bad.push(format!("run {i} ({script}): {e}")),
                    }
                    i += workers;
                }
                bad
            })
        })
        .collect();
    let mut bad = Vec::new();
    for t in tasks {
        bad.extend(t.await.unwrap());
    }
    drop(burners);
    let took = start.elapsed();
    h.close().await;
    eprintln!("{runs} runs in {took:?}, {} incomplete", bad.len());
    assert!(
        bad.is_empty(),
        "{} of {runs} runs came back incomplete:\n{}",
        bad.len(),
        bad.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}
