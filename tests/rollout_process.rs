//! Rolling rollouts on the process driver behind a real nginx, driven
//! through the `rollguard` command line like an operator would: install,
//! a good upgrade, and a bad release that is rolled back. A client sends
//! requests through nginx without pause during each rollout; none may fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TempDir;
use common::lb::{Nginx, Tally, free_port, get};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

struct Env {
    dir: TempDir,
    nginx: Nginx,
    ports: Vec<u16>,
}

impl Env {
    fn config(&self) -> PathBuf {
        self.dir.join("rollguard.toml")
    }

    fn db(&self) -> PathBuf {
        self.dir.join("history.db")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.nginx.proc.port)
    }

    fn rollguard(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.config())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Stop every instance the rollouts started.
        let run = self.dir.join("run");
        if let Ok(apps) = std::fs::read_dir(&run) {
            for app in apps.flatten() {
                for f in std::fs::read_dir(app.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if f.path().extension().is_some_and(|e| e == "pid")
                        && let Some(pid) = std::fs::read_to_string(f.path())
                            .ok()
                            .and_then(|s| s.trim().parse::<i32>().ok())
                    {
                        // SAFETY: kill on a pid (group) we started.
                        unsafe {
                            libc::kill(-pid, libc::SIGKILL);
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
            }
        }
    }
}

/// Releases v1, v2 (good) and v3 (healthy for 1.5 s, then failing).
fn releases(dir: &Path) {
    for v in ["v1", "v2", "v3"] {
        let d = dir.join("releases").join(v);
        std::fs::create_dir_all(&d).unwrap();
        let extra = if v == "v3" { "--fail-after 1500ms" } else { "" };
        let script = format!(
            "#!/bin/sh\nexec '{BIN}' demo-app --version {v} --latency-ms 2 {extra} \"$@\"\n"
        );
        let run = d.join("run");
        std::fs::write(&run, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn setup(test: &str) -> Option<Env> {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let initial: String = ports
        .iter()
        .map(|p| format!("server 127.0.0.1:{p};\n"))
        .collect();
    let nginx = Nginx::start(test, &initial)?;
    let dir = TempDir::new("rollout");
    releases(&dir.0);
    let d = dir.0.display();
    let mut cfg = format!(
        r#"
[[app]]
name = "web"
driver = "process"

[app.process]
run = "{d}/releases/{{version}}/run --port {{port}}"
run_dir = "{d}/run"
grace = "2s"

[app.traffic]
type = "nginx"
upstream_file = "{upstream}"
validate = "{validate}"
reload = "{reload}"

[app.health]
interval = "250ms"
success_threshold = 2
failure_threshold = 2
deadline = "10s"
monitor = "3s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 1

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
conditions = ['[BODY].status == "healthy"']
"#,
        upstream = nginx.upstream.display(),
        validate = nginx.validate,
        reload = nginx.reload,
    );
    for (i, p) in ports.iter().enumerate() {
        cfg.push_str(&format!(
            "\n[[app.instance]]\nname = \"web-{}\"\nport = {p}\n",
            i + 1
        ));
    }
    std::fs::write(dir.join("rollguard.toml"), cfg).unwrap();
    Some(Env { dir, nginx, ports })
}

/// Sends requests through nginx from `workers` loops until `stop`.
fn load(url: String, workers: usize, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Tally> {
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (url, stop) = (url.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                // A new connection per request: failures are the server
                // side's, not a client reusing a connection nginx closed.
                let c = common::lb::client(true);
                let mut t = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    match get(&c, &url).await {
                        Ok(b) => *t.ok.entry(b).or_default() += 1,
                        Err(e) => t.failed.push(e),
                    }
                }
                t
            }));
        }
        let mut all = Tally::default();
        for t in tasks {
            let t = t.await.unwrap();
            for (k, v) in t.ok {
                *all.ok.entry(k).or_default() += v;
            }
            all.failed.extend(t.failed);
        }
        all
    })
}

/// Runs `rollguard deploy` while a client sends requests; returns the
/// exit code, the JSON report and what the client saw.
async fn deploy_under_load(env: &Env, version: &str) -> (i32, serde_json::Value, Tally) {
    let stop = Arc::new(AtomicBool::new(false));
    let client = load(env.url(), 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, out, err) = {
        let args = ["deploy", "web", version, "--yes", "--json"];
        let env_ref = &*env;
        tokio::task::block_in_place(|| env_ref.rollguard(&args))
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let tally = client.await.unwrap();
    let report: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("deploy printed no JSON ({e}):\n{out}\n{err}"));
    (code, report, tally)
}

/// What each instance serves on its own port, asked directly.
fn versions_served(env: &Env) -> Vec<String> {
    use std::io::{Read, Write};
    env.ports
        .iter()
        .map(|p| {
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", *p)) else {
                return "down".into();
            };
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out.split("\"version\":\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_behind_nginx_good_and_bad_without_failed_requests() {
    let Some(env) = setup("rolling_behind_nginx_good_and_bad_without_failed_requests") else {
        return;
    };
    // Install v1: nothing runs yet, so no rollback target is needed.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(
        code,
        0,
        "install failed:\n{out}\n{err}\nnginx: {}",
        env.nginx.proc.log()
    );
    assert_eq!(versions_served(&env), ["v1", "v1", "v1"]);

    // A good upgrade under load: zero failed requests.
    let (code, report, tally) = deploy_under_load(&env, "v2").await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "deployed");
    assert_eq!(report["from"], "v1");
    assert_eq!(report["to"], "v2");
    assert_eq!(
        report["batches"].as_array().unwrap().len(),
        4,
        "3 batches and monitor"
    );
    assert!(
        tally.failed.is_empty(),
        "failed requests during a good rollout: {:?}",
        &tally.failed[..tally.failed.len().min(5)]
    );
    assert!(tally.total() > 50, "the client barely ran: {tally:?}");
    assert_eq!(versions_served(&env), ["v2", "v2", "v2"]);

    // A bad release: passes its first gate, fails while monitored, and is
    // rolled back in reverse order — still zero failed requests.
    let (code, report, tally) = deploy_under_load(&env, "v3").await;
    assert_eq!(code, 3, "a rolled-back deploy exits 3: {report}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["rollback"]["code"], "E_GATE_FAILED", "{report}");
    let evidence = &report["rollback"]["evidence"]["evidence"];
    assert_eq!(evidence["probe"], "health", "{report}");
    assert_eq!(evidence["failure_threshold"], 2);
    assert!(
        evidence["last_samples"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        tally.failed.is_empty(),
        "failed requests during a rollback: {:?}",
        &tally.failed[..tally.failed.len().min(5)]
    );
    assert_eq!(
        versions_served(&env),
        ["v2", "v2", "v2"],
        "the previous release is back"
    );

    // History and status tell the story.
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rolled_back", "deployed", "deployed"]);
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is released: {s}");
    assert_eq!(s[0]["last_good"], "v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_deploy_is_refused_while_locked() {
    let Some(env) = setup("second_deploy_is_refused_while_locked") else {
        return;
    };
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A slow rollout in the background (long monitor)...
    let cfg = std::fs::read_to_string(env.config())
        .unwrap()
        .replace("monitor = \"3s\"", "monitor = \"30s\"");
    std::fs::write(env.config(), cfg).unwrap();
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // ...and a second one is refused with the owner's name, exit 5.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes"]);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        err.contains("E_LOCKED") && err.contains("locked by"),
        "{err}"
    );
    // Abort it: rolled back, lock released, outcome aborted.
    let (code, _, err) = env.rollguard(&["abort", "web", "--reason", "test"]);
    assert_eq!(code, 0, "{err}");
    let mut outcome = String::new();
    for _ in 0..100 {
        let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
        let h: serde_json::Value = serde_json::from_str(&out).unwrap();
        if let Some(o) = h[0]["outcome"].as_str() {
            outcome = o.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(outcome, "aborted");
    assert_eq!(versions_served(&env), ["v1", "v1", "v1"]);
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    assert!(out.contains("\"lock\":null"), "{out}");
}

#[test]
fn hostile_versions_and_unknown_apps_are_refused_before_anything_runs() {
    let dir = TempDir::new("hostile");
    std::fs::write(
        dir.join("rg.toml"),
        "[[app]]\nname = \"web\"\n[app.process]\nrun = \"/bin/true {version}\"\n[[app.instance]]\nname = \"w\"\nport = 1\n[[app.probe]]\nname = \"t\"\ntype = \"tcp\"\n",
    )
    .unwrap();
    for v in ["v1;touch /tmp/rg-pwned", "$(id)", "../x", "-rf", ""] {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(dir.join("rg.toml"))
            .arg("--db")
            .arg(dir.join("h.db"))
            .args(["deploy", "--yes", "web", "--", v])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{v:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid version"), "{v:?}: {err}");
    }
    assert!(!Path::new("/tmp/rg-pwned").exists());
    let out = Command::new(BIN)
        .arg("--config")
        .arg(dir.join("rg.toml"))
        .arg("--db")
        .arg(dir.join("h.db"))
        .args(["deploy", "nope", "v1", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
