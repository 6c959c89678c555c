//! A secret that a probe's target prints back never leaves the prober as
//! it is: a command probe whose command holds a `${NAME}` value and prints
//! it, and a Prometheus probe whose bearer token an authenticating proxy
//! (a real nginx) echoes in its error. What `rollguard probe` prints, what a
//! rollout's gate records (`deploy`, `history --json`), what the agent
//! stores in `probe_results`, incidents and events, and every byte of the
//! history's files show `***` in its place, also where the message is cut
//! to a length.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TempDir;
use common::agent::Agent;
use common::free_port;
use common::lb::nginx_serving;
use common::rollout::releases;
use common::wait_for;

/// The secret, long and unlike anything else in the files.
const SECRET: &str = "tok-9d3e71b2-probe-secret-55aa";

/// Its first characters: what a cut through the middle of it would leave.
fn head() -> &'static str {
    &SECRET[..8]
}

/// Runs `rollguard --config CFG --db DB ARGS` with the secret in the
/// environment: (exit code, stdout, stderr).
fn rollguard(cfg: &Path, db: &Path, args: &[&str]) -> (i32, String, String) {
    common::rollguard(cfg, db, args, &[("RG_PROBE_SECRET", SECRET)])
}

/// Asserts that `text` (what `what` printed or stored) holds neither the
/// secret nor its first characters.
fn assert_masked(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
    assert!(
        !text.contains(head()),
        "{what} shows part of the secret: {text}"
    );
}

/// Every file of the history database at `db` (the main file, its WAL and
/// journal).
fn db_files(db: &Path) -> Vec<PathBuf> {
    let dir = db.parent().unwrap();
    let name = db.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&name))
        })
        .collect()
}

/// Whether `needle` occurs in the bytes of `file`.
fn holds(file: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(file).unwrap();
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The messages of the stored results of probe `probe`.
fn stored_messages(db: &Path, probe: &str) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = c
        .prepare("SELECT message FROM probe_results WHERE probe = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([probe], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How many events of `kind` the history holds.
fn count_events(db: &Path, kind: &str) -> i64 {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    let _ = c.busy_timeout(Duration::from_secs(5));
    c.query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| {
        r.get(0)
    })
    .unwrap_or(0)
}

#[test]
fn a_secret_a_command_probe_prints_is_masked_wherever_its_result_goes() {
    let dir = TempDir::new("probe-secret");
    releases(&dir.0);
    let port = free_port();
    let d = dir.0.display();
    // Two command probes print the secret: "token" as a short line (and
    // fails while `down` exists), "long" at the end of a line longer than
    // the 120 characters a message quotes, the cut falling inside it.
    let pad = "x".repeat(100);
    let cfg = format!(
        r#"
[[app]]
name = "web"
driver = "process"

[app.process]
run = "{d}/releases/{{version}}/run --port {{port}}"
run_dir = "{d}/run"
grace = "2s"

[app.health]
interval = "250ms"
success_threshold = 2
failure_threshold = 2
deadline = "10s"
monitor = "1s"
resolve_after = "1s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 0

[[app.probe]]
name = "token"
type = "command"
command = "echo token=${{RG_PROBE_SECRET}}; test ! -e {d}/down"
timeout = "2s"

[[app.probe]]
name = "long"
type = "command"
command = "echo {pad}token=${{RG_PROBE_SECRET}}"
timeout = "2s"

[[app.instance]]
name = "web-1"
port = {port}
"#
    );
    let config = dir.join("rollguard.toml");
    std::fs::write(&config, cfg).unwrap();
    let db = dir.join("history.db");

    // `rollguard probe`, as text and as JSON.
    let (code, out, err) = rollguard(&config, &db, &["probe", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_masked("probe --json", &out);
    let results: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let message = |probe: &str| {
        results
            .iter()
            .find(|r| r["probe"] == probe)
            .and_then(|r| r["message"].as_str())
            .unwrap_or_else(|| panic!("no result of {probe}: {out}"))
            .to_string()
    };
    assert_eq!(message("token"), "exit 0: token=***", "{out}");
    assert_eq!(message("long"), format!("exit 0: {pad}token=***"), "{out}");
    let (_, out, err) = rollguard(&config, &db, &["probe"]);
    assert_masked("probe", &format!("{out}{err}"));
    assert!(out.contains("token=***"), "{out}");

    // A rollout's gates keep the probes' samples as their evidence.
    let (code, out, err) = rollguard(&config, &db, &["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "deploy v1: {out}\n{err}");
    assert_masked("deploy", &format!("{out}{err}"));
    let (code, out, err) = rollguard(&config, &db, &["history", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_masked("history --json", &out);
    let (code, out, err) = rollguard(&config, &db, &["events", "--app", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_masked("events --json", &out);
    assert!(
        out.contains("token=***"),
        "the gates' evidence quotes the probes: {out}"
    );

    // The agent stores every result; the failing one opens an incident.
    std::fs::write(dir.join("down"), "").unwrap();
    let mut agent = Agent::start_with(
        &config,
        &db,
        dir.join("agent.log"),
        &[("RG_PROBE_SECRET", SECRET)],
    );
    wait_for("an incident to open", Duration::from_secs(30), || {
        count_events(&db, "incident_opened") > 0
    });
    let status = agent.signal(libc::SIGTERM).expect("the agent stops");
    assert!(status.success(), "{status:?}\n{}", agent.log());
    assert_masked("the agent's log", &agent.log());

    let token = stored_messages(&db, "token");
    assert!(!token.is_empty(), "no result stored: {}", agent.log());
    assert!(
        token.iter().all(|m| m.ends_with(": token=***")),
        "{token:?}"
    );
    assert!(
        token.iter().any(|m| m.starts_with("exit 1, expected 0")),
        "the failures are stored: {token:?}"
    );
    for m in stored_messages(&db, "long") {
        assert_eq!(m, format!("exit 0: {pad}token=***"));
    }

    let (code, out, err) = rollguard(&config, &db, &["events", "--app", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_masked("events --json", &out);
    let (code, out, err) = rollguard(&config, &db, &["incident", "1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_masked("incident", &out);
    assert!(out.contains("token=***"), "the incident quotes it: {out}");

    let files = db_files(&db);
    assert!(!files.is_empty(), "no history database");
    for file in &files {
        assert!(!holds(file, SECRET), "{} holds the secret", file.display());
        assert!(
            !holds(file, head()),
            "{} holds part of the secret",
            file.display()
        );
    }

    // Stop the instance the deploy started.
    let pidfile = dir.join("run/web/web-1-main.pid");
    if let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        crate::common::rollout::stop_instance(pid, &pidfile.with_extension("start"));
    }
}

#[test]
fn a_bearer_token_an_endpoint_echoes_is_masked() {
    let test = "a_bearer_token_an_endpoint_echoes_is_masked";
    // An authenticating proxy that refuses the token and quotes it back:
    // once at the start of its answer, once across the 200 bytes of the
    // answer a message quotes.
    let pad = "x".repeat(180);
    let locations = format!(
        "    location /short/ {{ return 401 \"refused: $http_authorization\\n\"; }}\n\
         location /long/ {{ return 401 \"{pad}$http_authorization\\n\"; }}\n"
    );
    let Some(proxy) = nginx_serving(test, &locations) else {
        return;
    };
    let dir = TempDir::new("prom-token");
    let probe = |name: &str| {
        format!(
            "[[app.probe]]\nname = \"{name}\"\ntype = \"prometheus\"\n\
             url = \"http://127.0.0.1:{}/{name}\"\nquery = 'up{{instance=\"{{instance}}\"}}'\n\
             conditions = [\"[VALUE] == 1\"]\nbearer_token = \"${{RG_PROBE_SECRET}}\"\n",
            proxy.port
        )
    };
    let cfg = format!(
        "[[app]]\nname = \"checkout\"\n[[app.instance]]\nname = \"web-1\"\nport = 1\n{}{}",
        probe("short"),
        probe("long")
    );
    let config = dir.join("fleet.toml");
    std::fs::write(&config, cfg).unwrap();
    let db = dir.join("history.db");

    let (code, out, err) = rollguard(&config, &db, &["probe", "--json"]);
    assert_eq!(code, 1, "both probes fail: {out}\n{err}");
    assert_masked("probe --json", &out);
    let results: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let message = |probe: &str| {
        results
            .iter()
            .find(|r| r["probe"] == probe)
            .and_then(|r| r["message"].as_str())
            .unwrap_or_else(|| panic!("no result of {probe}: {out}"))
            .to_string()
    };
    assert_eq!(message("short"), "HTTP 401: refused: Bearer ***", "{out}");
    assert_eq!(
        message("long"),
        format!("HTTP 401: {pad}Bearer ***"),
        "{out}"
    );
    let (_, out, err) = rollguard(&config, &db, &["probe"]);
    assert_masked("probe", &format!("{out}{err}"));
    assert!(out.contains("Bearer ***"), "{out}");
}
