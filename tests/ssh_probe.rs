//! Command probes over SSH, end to end through the command line: a config
//! with an ssh host pointing at a real sshd on loopback, `rollguard probe
//! --json`, a remote command that passes, one that fails, one that times
//! out, and a host whose key changed.

mod common;

use std::process::Command;

use common::sshd::Sshd;

fn config(sshd: &Sshd) -> String {
    format!(
        r#"
[[host]]
name = "remote"
address = "127.0.0.1"
ssh = {{ port = {port}, identity = "{key}", known_hosts = "{kh}", connect_timeout = "5s" }}

[[app]]
name = "api"

[[app.instance]]
name = "api-1"
host = "remote"
port = 1

[[app.probe]]
name = "remote"
type = "command"
command = "printf '%s via ' {{instance}}; echo \"$SSH_CONNECTION\""
output_contains = "api-1 via 127.0.0.1"
timeout = "10s"

[[app.probe]]
name = "exit"
type = "command"
command = "exit 4"
timeout = "10s"

[[app.probe]]
name = "slow"
type = "command"
command = "echo $$ > {pidfile}; exec sleep 30"
timeout = "1s"
"#,
        port = sshd.port,
        key = sshd.user_key.display(),
        kh = sshd.known_hosts.display(),
        pidfile = sshd.dir.join("slow.pid").display(),
    )
}

fn probe_json(cfg: &std::path::Path) -> (i32, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .args(["probe", "--json", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let arr: Vec<serde_json::Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON array ({e}):\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), arr, stderr)
}

#[test]
fn command_probes_run_remotely() {
    let Some(mut sshd) = Sshd::start("command_probes_run_remotely") else {
        return;
    };
    let cfg = sshd.dir.join("rollguard.toml");
    std::fs::write(&cfg, config(&sshd)).unwrap();
    let (code, results, stderr) = probe_json(&cfg);
    assert_eq!(
        code, 1,
        "a failing probe makes `probe` exit 1; stderr: {stderr}"
    );
    assert_eq!(results.len(), 3);
    for r in &results {
        for key in [
            "app",
            "instance",
            "probe",
            "ok",
            "latency_ms",
            "code",
            "error_kind",
            "message",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
    let by = |name: &str| results.iter().find(|r| r["probe"] == name).unwrap().clone();
    let remote = by("remote");
    assert_eq!(remote["ok"], true, "{remote}\nsshd log: {}", sshd.log());
    assert_eq!(remote["code"], 0);
    assert!(remote["error_kind"].is_null());
    let exit = by("exit");
    assert_eq!(exit["ok"], false);
    assert_eq!(exit["code"], 4);
    assert_eq!(exit["error_kind"], "exit_code");
    let slow = by("slow");
    assert_eq!(slow["error_kind"], "timeout", "{slow}");
    // The remote sleep was killed, not left behind.
    let pid: i32 = std::fs::read_to_string(sshd.dir.join("slow.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while common::sshd::alive(pid) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !common::sshd::alive(pid),
        "remote command {pid} still running"
    );

    // A changed host key: every command probe fails with `exec`, naming
    // the host key, and nothing runs.
    sshd.restart(true);
    let (code, results, _) = probe_json(&cfg);
    assert_eq!(code, 1);
    for r in &results {
        assert_eq!(r["error_kind"], "exec", "{r}");
        assert!(r["message"].as_str().unwrap().contains("host key"), "{r}");
    }
}
