//! The console as a person meets it: `rollguard demo` in a real tmux pane.
//! Waits for sparklines, presses `?` then `q`, and checks the screen, that
//! the shell prompt comes back, and that the demo's processes are gone.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

struct Session(String);

impl Session {
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect("run tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn capture(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until the screen satisfies `pred`; returns the last capture.
    fn wait(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
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

fn demo_apps_running(parent_marker: &str) -> usize {
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

const SPARK: &[char] = &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[test]
fn demo_in_tmux_shows_sparklines_help_and_quits() {
    let test = "demo_in_tmux_shows_sparklines_help_and_quits";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let name = format!("rg-test-{}", std::process::id());
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
    // A private TMPDIR marks this demo's processes (their files live there).
    let tmp = common::TempDir::new("tmux");
    let marker = tmp.0.to_string_lossy().to_string();
    s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);

    // Each app row shows a sparkline of at least eight results.
    let screen = s.wait(
        "sparklines of all three apps",
        Duration::from_secs(40),
        |sc| {
            ["checkout", "payments", "search"].iter().all(|app| {
                sc.lines().any(|l| {
                    l.contains(app)
                        && l.chars().filter(|c| SPARK.contains(c) || *c == '✖').count() >= 8
                })
            })
        },
    );
    assert!(screen.contains("rollguard"), "header missing:\n{screen}");
    assert!(screen.contains("/3"), "healthy counts missing:\n{screen}");

    s.keys(&["?"]);
    let help = s.wait("the help popup", Duration::from_secs(10), |sc| {
        sc.contains(" keys ") && sc.contains("show / hide this help")
    });
    for line in [
        "open the selected app",
        "close popup / back to fleet",
        "show / hide the log pane",
    ] {
        assert!(help.contains(line), "help lists {line:?}:\n{help}");
    }

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
    // Everything the demo started has stopped.
    let end_wait = Instant::now() + Duration::from_secs(5);
    while demo_apps_running(&marker) > 0 && Instant::now() < end_wait {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(demo_apps_running(&marker), 0, "demo instances left running");
}
