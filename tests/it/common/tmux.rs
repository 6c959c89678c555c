//! A real tmux pane to drive the console in, as a person would: keys sent,
//! the screen captured, tmux's own view of the pane (alternate screen,
//! cursor, mouse modes) read, the window resized. A shell with job control
//! runs in it at a known prompt. And the demo's folder and processes,
//! to check they go.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::program;

/// The prompt of the shell in the pane.
pub const PROMPT: &str = "RGPROMPT$ ";

/// A tmux session on a tmux server of its own (`tmux -L NAME`, NAME being
/// the session's name too), killed on drop. Not one shared server: the
/// server exits with its last session, and a test starting a session just
/// then on the shared one would get "server exited unexpectedly".
pub struct Session(pub String);

impl Session {
    /// A session of `width`x`height` running an interactive `sh` at
    /// [`PROMPT`], or a skip (see `common::missing`) without tmux.
    pub fn start(test: &str, width: u16, height: u16) -> Option<Session> {
        program(test, "tmux")?;
        let name = format!("rg-{test}-{}", std::process::id());
        let s = Session(name.clone());
        let out = Command::new("tmux")
            .args(["-L", &name, "new-session", "-d", "-s", &name])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["env", &format!("PS1={PROMPT}"), "sh", "-i"])
            .output()
            .expect("start tmux");
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s.wait("the shell prompt", Duration::from_secs(10), |sc| {
            sc.contains(PROMPT.trim_end())
        });
        Some(s)
    }

    /// Runs `tmux ARGS`; its standard output.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The text on the pane.
    pub fn capture(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    /// Sends tmux key names (`Enter`, `C-z`, `Escape`) or words.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Sends `text` as it is, escape sequences included.
    pub fn literal(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.0, "-l", text]);
    }

    /// Types `line` at the shell and presses Enter.
    pub fn run(&self, line: &str) {
        self.keys(&[line, "Enter"]);
    }

    /// A tmux format about the pane, e.g. `#{alternate_on}`.
    pub fn flag(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", &self.0, format])
            .trim()
            .to_string()
    }

    /// Resizes the window to `width`x`height`.
    pub fn resize(&self, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        self.tmux(&["resize-window", "-t", &self.0, "-x", &w, "-y", &h]);
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
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until tmux says `format` is `want`.
    pub fn wait_flag(&self, format: &str, want: &str, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let got = self.flag(format);
            if got == want {
                return;
            }
            if Instant::now() > end {
                panic!(
                    "timed out waiting for {format} = {want} (it is {got}); screen:\n{}",
                    self.capture()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the shell prompt is on the last line that holds text.
    pub fn wait_prompt(&self, limit: Duration) -> String {
        self.wait("the shell prompt", limit, at_prompt)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .output();
    }
}

/// Whether the last line of `screen` that holds text is the shell's prompt.
pub fn at_prompt(screen: &str) -> bool {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_end() == PROMPT.trim_end())
}

/// The pid and state (`ps`'s STAT letter: `S`, `R`, `T` stopped, ...) of
/// the one process whose command line holds `marker`.
pub fn process_with(marker: &str) -> Option<(i32, char)> {
    let found: Vec<(i32, char)> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32)
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            // Only the program itself, not a shell or ssh that names it.
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            let ours = exe.file_name() == Path::new(env!("CARGO_BIN_EXE_rollguard")).file_name();
            if !(ours && cmd.contains(marker)) {
                return None;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
            Some((pid, state.chars().next()?))
        })
        .collect();
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
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

/// A 100x30 session with a shell at [`PROMPT`]; the caller has checked
/// that tmux is there.
pub fn session(test: &str) -> Session {
    Session::start(test, 100, 30).expect("tmux is installed")
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
