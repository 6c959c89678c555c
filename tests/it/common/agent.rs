//! A real `rollguard agent` on a config and a history, its log in a file;
//! killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running agent.
pub struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    /// `rollguard --config cfg --db db agent`, its standard error in `log`.
    pub fn start(cfg: &Path, db: &Path, log: PathBuf) -> Agent {
        Agent::start_with(cfg, db, log, &[])
    }

    /// [`Agent::start`] with `env` set as well.
    pub fn start_with(cfg: &Path, db: &Path, log: PathBuf, env: &[(&str, &str)]) -> Agent {
        let child = Command::new(env!("CARGO_BIN_EXE_rollguard"))
            .arg("--config")
            .arg(cfg)
            .arg("--db")
            .arg(db)
            .arg("agent")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent { child, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits for the exit, at most 15 s.
    pub fn signal(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
