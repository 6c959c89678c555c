//! A secret that reaches a driver command through `${NAME}` never lands in
//! the history: deploys, a rollback and a failed start on the process
//! driver, driven through the `rollguard` binary, and then the database
//! files are searched byte by byte.

use crate::common;

use std::path::{Path, PathBuf};

use common::TempDir;
use common::free_port;
use common::rollout::{releases, version_at};

/// The secret, long and unlike anything else in the files.
const SECRET: &str = "tok-6c1f0e93-a7d2-secret-4b1d";

/// A one-instance process app whose `run` carries the secret.
struct Fleet {
    dir: TempDir,
    port: u16,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = TempDir::new("secret-store");
        releases(&dir.0);
        // A release that prints its environment's secret, then dies: the
        // failed start's error carries the log, secret and all.
        let leak = dir.join("releases/v9");
        std::fs::create_dir_all(&leak).unwrap();
        std::fs::write(
            leak.join("run"),
            "#!/bin/sh\necho \"starting with token $RG_SECRET\"\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(leak.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let d = dir.0.display();
        let cfg = format!(
            r#"
[[app]]
name = "web"
driver = "process"

[app.process]
run = "RG_SECRET=${{RG_TEST_SECRET}} {d}/releases/{{version}}/run --port {{port}}"
run_dir = "{d}/run"
grace = "2s"

[app.health]
interval = "250ms"
success_threshold = 2
failure_threshold = 2
deadline = "10s"
monitor = "3s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 0

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
conditions = ['[BODY].status == "healthy"']

[[app.instance]]
name = "web-1"
port = {port}
"#
        );
        std::fs::write(dir.join("rollguard.toml"), cfg).unwrap();
        Fleet { dir, port }
    }

    /// `rollguard ARGS` with the secret in the environment: (code, stdout
    /// and stderr together).
    fn rollguard(&self, args: &[&str]) -> (i32, String) {
        let (config, db) = (self.dir.join("rollguard.toml"), self.dir.join("history.db"));
        let (code, out, err) = common::rollguard(&config, &db, args, &[("RG_TEST_SECRET", SECRET)]);
        (code, format!("{out}{err}"))
    }

    /// Every file of the history database (the main file, its WAL and
    /// journal).
    fn db_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir.0)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("history.db"))
            })
            .collect();
        files.sort();
        files
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let pidfile = self.dir.join("run/web/web-1-main.pid");
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            crate::common::rollout::stop_instance(pid, &pidfile.with_extension("start"));
        }
    }
}

/// Whether `needle` occurs in the bytes of `file`.
fn holds(file: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(file).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_in_run_never_reach_the_history() {
    let f = Fleet::new();
    let (code, out) = f.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "install v1: {out}");
    // The process really got the secret: it reached `run`.
    let pid = std::fs::read_to_string(f.dir.join("run/web/web-1-main.pid")).unwrap();
    let environ = std::fs::read(format!("/proc/{}/environ", pid.trim())).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    let needle = SECRET.as_bytes();
    assert!(
        environ.windows(needle.len()).any(|w| w == needle)
            || cmdline.windows(needle.len()).any(|w| w == needle),
        "the instance does not see the secret"
    );

    // An upgrade snapshots v1 (its command holds the secret) first.
    let (code, out) = f.rollguard(&["deploy", "web", "v2", "--yes"]);
    assert_eq!(code, 0, "deploy v2: {out}");
    assert_eq!(version_at(f.port), "v2");

    // A bad release is rolled back from the stored snapshot: restore
    // still starts exactly what ran, with the real secret.
    let (code, out) = f.rollguard(&["deploy", "web", "v3", "--yes"]);
    assert_eq!(code, 3, "v3 is rolled back: {out}");
    assert_eq!(version_at(f.port), "v2", "{out}");

    // A start that fails prints the secret into its log: the error that
    // is recorded (and printed) has it masked.
    let (code, out) = f.rollguard(&["deploy", "web", "v9", "--yes"]);
    assert_ne!(code, 0, "v9 cannot start: {out}");
    assert_eq!(version_at(f.port), "v2", "{out}");
    assert!(!out.contains(SECRET), "printed: {out}");
    assert!(
        out.contains("starting with token ***"),
        "the failure is reported: {out}"
    );

    let (code, out) = f.rollguard(&["history", "web", "--json"]);
    assert!(!out.contains(SECRET), "history ({code}): {out}");

    let files = f.db_files();
    assert!(!files.is_empty(), "no history database");
    // The snapshot was stored, with the template in place of the value.
    assert!(
        files.iter().any(|p| holds(p, "${RG_TEST_SECRET}")),
        "no snapshot of the command was stored"
    );
    for file in &files {
        assert!(!holds(file, SECRET), "{} holds the secret", file.display());
    }
}
