//! Command probes over SSH, end to end through the command line: a config
//! with an ssh host pointing at a real sshd on loopback, `rollguard probe
//! --json`, a remote command that passes, one that fails, one that times
//! out; and a host whose key changed, or is not known, said plainly by
//! `probe` and `deploy --dry-run`.

use crate::common;

use std::process::Command;

use common::sshd::Sshd;

fn config(sshd: &Sshd) -> String {
    format!(
        r#"
[[host]]
name = "remote"
address = "127.0.0.1"
ssh = {{ port = {port}, identity = "{key}", known_hosts = "{kh}", connect_timeout = "20s" }}

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
# A probe's timeout counts from before the connection: long enough for the
# connection and the remote shell to start on a busy machine.
timeout = "8s"
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
    let Some(sshd) = Sshd::start("command_probes_run_remotely") else {
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
    assert_eq!(exit["ok"], false, "{exit}");
    assert_eq!(exit["code"], 4, "{exit}\nsshd log: {}", sshd.log());
    assert_eq!(exit["error_kind"], "exit_code", "{exit}");
    let slow = by("slow");
    assert_eq!(
        slow["error_kind"],
        "timeout",
        "{slow}\nsshd log: {}",
        sshd.log()
    );
    // The remote sleep was killed, not left behind.
    let pid: i32 = std::fs::read_to_string(sshd.dir.join("slow.pid"))
        .unwrap_or_else(|e| panic!("slow.pid: {e}; {slow}\nsshd log: {}", sshd.log()))
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
}

/// A host with a command probe (app `api`) and a process-driven app
/// (`web`) whose deploy asks the host over ssh what runs.
fn host_key_config(sshd: &Sshd) -> String {
    format!(
        r#"
[[host]]
name = "box-1"
address = "127.0.0.1"
ssh = {{ port = {port}, identity = "{key}", known_hosts = "{kh}", connect_timeout = "5s" }}

[[app]]
name = "api"

[[app.instance]]
name = "api-1"
host = "box-1"
port = 1

[[app.probe]]
name = "remote"
type = "command"
command = "true"
timeout = "10s"

[[app]]
name = "web"
driver = "process"

[app.process]
run = "{dir}/releases/{{version}}/run --port {{port}}"
run_dir = "{dir}/run"

[[app.instance]]
name = "web-1"
host = "box-1"
port = 2

[[app.probe]]
name = "up"
type = "tcp"
"#,
        port = sshd.port,
        key = sshd.user_key.display(),
        kh = sshd.known_hosts.display(),
        dir = sshd.dir.0.display(),
    )
}

/// `rollguard --config CFG --db .. ARGS`: (exit code, stdout, stderr).
fn rollguard(sshd: &Sshd, args: &[&str]) -> (i32, String, String) {
    let (config, db) = (sshd.dir.join("rollguard.toml"), sshd.dir.join("history.db"));
    common::rollguard(&config, &db, args, &[])
}

/// Nothing of ssh's own banner reaches the terminal.
fn no_banner(what: &str, text: &str) {
    for raw in [
        "@@@",
        "IDENTIFICATION",
        "NASTY",
        "verification failed",
        "\\r",
    ] {
        assert!(
            !text.contains(raw),
            "{what} shows ssh's banner ({raw}):\n{text}"
        );
    }
}

#[test]
fn a_changed_or_unknown_host_key_is_said_plainly() {
    let Some(mut sshd) = Sshd::start("a_changed_or_unknown_host_key_is_said_plainly") else {
        return;
    };
    std::fs::write(sshd.dir.join("rollguard.toml"), host_key_config(&sshd)).unwrap();
    // The host's key is on line 3 of known_hosts.
    let line = sshd.known_hosts_line();
    std::fs::write(&sshd.known_hosts, format!("# the fleet\n\n{line}")).unwrap();
    let (code, out, err) = rollguard(&sshd, &["probe", "api"]);
    assert_eq!(code, 0, "{out}{err}\nsshd log: {}", sshd.log());

    sshd.restart(true);
    let fingerprint = sshd.host_key_fingerprint();
    let kh = sshd.known_hosts.display().to_string();
    let at = format!("{kh}:3");

    // probe --json: kind host_key, the key it offers now, the line that
    // disagrees, and what to do; never ssh's banner.
    let (code, out, err) = rollguard(&sshd, &["probe", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    no_banner("probe --json", &(out.clone() + &err));
    let results: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let remote = results.iter().find(|r| r["probe"] == "remote").unwrap();
    assert_eq!(remote["error_kind"], "host_key", "{remote}");
    let message = remote["message"].as_str().unwrap();
    for want in [
        "box-1",
        "127.0.0.1",
        &sshd.port.to_string(),
        "ED25519",
        &fingerprint,
        &at,
        "attack",
        "ssh-keyscan",
        &format!("ssh-keygen -f {kh} -R '[127.0.0.1]:{}'", sshd.port),
    ] {
        assert!(message.contains(want), "no {want:?} in {message}");
    }
    assert!(!message.contains("host_key_check"), "{message}");

    // The table says the same, on one line per result.
    let (code, out, err) = rollguard(&sshd, &["probe", "api"]);
    assert_eq!(code, 1, "{out}{err}");
    no_banner("probe", &(out.clone() + &err));
    assert!(out.contains("host_key: ssh to box-1"), "{out}");
    assert!(out.contains(&fingerprint), "{out}");

    // deploy --dry-run: E_HOST_KEY with the same, and a hint that keeps
    // the check on.
    let (code, out, err) = rollguard(&sshd, &["deploy", "web", "v2", "--dry-run"]);
    assert_eq!(code, 1, "{out}{err}");
    no_banner("deploy --dry-run", &(out.clone() + &err));
    assert!(err.starts_with("E_HOST_KEY: "), "{err}");
    for want in [
        &fingerprint,
        &at,
        "attack",
        "ssh-keyscan",
        "ssh-keygen -f",
        "hint:",
    ] {
        assert!(err.contains(want), "no {want:?} in {err}");
    }
    assert!(!err.contains("host_key_check"), "{err}");
    assert!(!err.contains("\"off\""), "{err}");
    assert!(!err.contains("StrictHostKeyChecking"), "{err}");

    // No key known for the host at all (strict checking): said as such,
    // with how to add it once its fingerprint is checked.
    std::fs::write(&sshd.known_hosts, "").unwrap();
    let (code, out, err) = rollguard(&sshd, &["probe", "api", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    no_banner("probe --json (unknown)", &(out.clone() + &err));
    let results: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(results[0]["error_kind"], "host_key", "{}", results[0]);
    let message = results[0]["message"].as_str().unwrap();
    for want in [
        "no ED25519 key",
        &format!("ssh-keyscan -t ed25519 -p {} 127.0.0.1 >> {kh}", sshd.port),
        "fingerprint",
    ] {
        assert!(message.contains(want), "no {want:?} in {message}");
    }
    let (code, _, err) = rollguard(&sshd, &["deploy", "web", "v2", "--dry-run"]);
    assert_eq!(code, 1);
    no_banner("deploy --dry-run (unknown)", &err);
    assert!(err.starts_with("E_HOST_KEY: "), "{err}");
}
