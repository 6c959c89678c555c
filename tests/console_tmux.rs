//! The console as a person meets it: `rollguard demo` in a real tmux pane.
//! Waits for sparklines, presses `?` then `q`, and checks the screen, that
//! the shell prompt comes back, and that everything the demo started is
//! gone (nginx's workers too), its ports closed and its folder removed.
//! Then a bad release of the demo's `payments`, whose armed rollback is
//! fired from the console's keys.

mod common;
#[path = "common/demo.rs"]
mod demo_footprint;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A demo picks free ports and binds them a moment later: two demos at once
/// could pick the same port. Each test holds this while its demo runs.
static ONE_DEMO: Mutex<()> = Mutex::new(());

fn one_demo() -> MutexGuard<'static, ()> {
    ONE_DEMO.lock().unwrap_or_else(|p| p.into_inner())
}

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

/// A tmux session with a shell at a known prompt.
fn session(test: &str) -> Session {
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

#[test]
fn demo_in_tmux_shows_sparklines_help_and_quits() {
    let test = "demo_in_tmux_shows_sparklines_help_and_quits";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let _one = one_demo();
    let s = session("help");
    // A private TMPDIR marks this demo's processes (their files live there).
    let tmp = common::TempDir::new("tmux");
    let marker = tmp.0.to_string_lossy().to_string();
    s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);
    let sampler = demo_footprint::Sampler::start(&demo_dir(&tmp.0));

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

    quit_and_check_stopped(&s, &marker);
    sampler.finish().assert_all_gone(Duration::from_secs(5));
}

/// Presses `q`; the shell prompt comes back, the console's screen is
/// gone, and so is everything the demo started.
fn quit_and_check_stopped(s: &Session, marker: &str) {
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
fn demo_dir(tmp: &std::path::Path) -> std::path::PathBuf {
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

#[test]
fn an_armed_rollback_is_fired_from_the_console() {
    let test = "an_armed_rollback_is_fired_from_the_console";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let _one = one_demo();
    let s = session("fire");
    let tmp = common::TempDir::new("tmux-fire");
    let marker = tmp.0.to_string_lossy().to_string();
    s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);
    let dir = demo_dir(&tmp.0);
    let sampler = demo_footprint::Sampler::start(&dir);
    s.wait("the fleet", Duration::from_secs(40), |sc| {
        sc.contains("payments") && sc.contains("v1")
    });

    // v3 passes its first gate, fails while watched, and the rollback
    // waits for an operator (the demo's payments has confirm = 60 s).
    let out = Command::new(dir.join("rg"))
        .args(["deploy", "payments", "v3", "--yes", "--detach", "--json"])
        .output()
        .expect("run rg deploy");
    assert!(
        out.status.success(),
        "deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.keys(&["j"]); // select payments
    let armed = s.wait("the armed rollback", Duration::from_secs(90), |sc| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("rollback of v3"))
    });
    assert!(
        armed.contains("f fire rollback"),
        "the footer offers fire:\n{armed}"
    );
    assert!(armed.contains("h hold"), "the footer offers hold:\n{armed}");

    // f asks, on Cancel, with a reason; Tab moves to Fire, Enter sends.
    s.keys(&["f"]);
    let ask = s.wait("the question", Duration::from_secs(10), |sc| {
        sc.contains("Roll payments back now")
    });
    assert!(ask.contains("go back to v1"), "{ask}");
    s.keys(&["-l", "v3 fails its health checks"]);
    s.wait("the reason", Duration::from_secs(10), |sc| {
        sc.contains("reason: v3 fails its health checks") && sc.contains("> Cancel <")
    });
    s.keys(&["Tab"]);
    s.wait("Fire focused", Duration::from_secs(10), |sc| {
        sc.contains("> Fire <")
    });
    s.keys(&["Enter"]);
    s.wait("the rollback to end", Duration::from_secs(90), |sc| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("v3 rolled back"))
    });

    // The history says who fired it, why, and that it came from the key.
    let out = Command::new(dir.join("rg"))
        .args(["history", "payments", "--json"])
        .output()
        .expect("run rg history");
    let history: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("history prints JSON");
    let last = &history.as_array().expect("an array")[0];
    assert_eq!(last["outcome"], "rolled_back", "{last:#}");
    let store = rollguard::store::Store::open(&dir.join("history.db")).unwrap();
    let id = last["id"].as_i64().unwrap();
    let events = store.deployment_events(id, 0).unwrap();
    let fired = events
        .iter()
        .find(|e| e.kind == "command_fire")
        .unwrap_or_else(|| panic!("no command_fire in {events:#?}"));
    assert_eq!(fired.reason.as_deref(), Some("v3 fails its health checks"));
    assert!(
        events.iter().any(|e| e.kind == "rollback_fired"
            && e.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("fired by"))),
        "{events:#?}"
    );

    quit_and_check_stopped(&s, &marker);
    sampler.finish().assert_all_gone(Duration::from_secs(5));
}
