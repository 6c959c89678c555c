//! A console driven in a real tmux pane, as a person would: a session
//! with a shell at a known prompt, keys sent, the screen captured and
//! waited on; and the demo's folder and processes, to check they go.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session, killed when dropped.
pub struct Session(pub String);

impl Session {
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect("run tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn capture(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until the screen satisfies `pred`; returns the last capture.
    pub fn wait(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + limit;
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > end {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

/// How many demo instances under `parent_marker` still run.
pub fn demo_apps_running(parent_marker: &str) -> usize {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo args | grep -c '[d]emo-app.*{parent_marker}' || true"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The bars of a sparkline.
pub const SPARK: &[char] = &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A tmux session with a shell at a known prompt.
pub fn session(test: &str) -> Session {
    let name = format!("rg-{test}-{}", std::process::id());
    let s = Session(name.clone());
    let out = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "100", "-y", "30"])
        .args(["env", "PS1=RGPROMPT$ ", "sh", "-i"])
        .output()
        .expect("start tmux");
    assert!(
        out.status.success(),
        "tmux: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.wait("the shell prompt", Duration::from_secs(10), |sc| {
        sc.contains("RGPROMPT$")
    });
    s
}

/// Presses `q`; the shell prompt comes back, the console's screen is
/// gone, and so is everything the demo started.
pub fn quit_and_check_stopped(s: &Session, marker: &str) {
    s.keys(&["q"]);
    let end = s.wait("the prompt to return", Duration::from_secs(15), |sc| {
        sc.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with("RGPROMPT$"))
    });
    assert!(
        !end.contains("payments"),
        "the console's screen must be gone:\n{end}"
    );
    let end_wait = Instant::now() + Duration::from_secs(5);
    while demo_apps_running(marker) > 0 && Instant::now() < end_wait {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(demo_apps_running(marker), 0, "demo instances left running");
}

/// The demo's folder under `tmp`, once it has its `rg` script.
pub fn demo_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(tmp)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("rollguard-demo-"))
                    && p.join("rg").exists()
            });
        if let Some(d) = found {
            return d;
        }
        assert!(Instant::now() < end, "no demo folder in {}", tmp.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}
