//! `rollguard events`, the real binary on a real history: events recorded
//! with `Store::record` print oldest first and filter by app and age; a
//! follower started first sees what another connection writes afterwards
//! and ends with 0 on SIGTERM, SIGINT or a closed pipe, and waits for a
//! history that does not exist yet; a hostile reason reaches the terminal
//! as visible text; a missing history is not created.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::TempDir;
use rollguard::error::Code;
use rollguard::model::event::EventKind;
use rollguard::model::{DeploymentKind, Verb};
use rollguard::store::Store;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// How long a follower may take to show something; far more than its poll
/// interval, so a loaded machine does not fail the test.
const PATIENCE: Duration = Duration::from_secs(10);

/// A config with the apps `web` and `api`, in `dir`.
fn config(dir: &TempDir) -> PathBuf {
    let path = dir.join("rollguard.toml");
    let mut text = String::new();
    for (app, port) in [("web", 18_081), ("api", 18_082)] {
        text.push_str(&format!(
            "[[app]]\nname = \"{app}\"\n\n[[app.probe]]\nname = \"health\"\ntype = \"tcp\"\n\n\
             [[app.instance]]\nname = \"{app}-1\"\nport = {port}\n\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `rollguard --config CONFIG --db DB ARGS...`.
fn command(config: &Path, db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .arg("--db")
        .arg(db)
        .args(args);
    cmd
}

fn run(config: &Path, db: &Path, args: &[&str]) -> Output {
    command(config, db, args).output().unwrap()
}

/// The JSON Lines of `out`, each parsed.
fn json_lines(out: &Output) -> Vec<Value> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ids(lines: &[Value]) -> Vec<i64> {
    lines.iter().map(|v| v["id"].as_i64().unwrap()).collect()
}

/// A deploy of `app` from v1 to v2, as a deploy records it.
fn deploy_requested() -> EventKind {
    EventKind::DeployRequested {
        from: Some("v1".into()),
        to: "v2".into(),
        strategy: json!("rolling"),
        kind: DeploymentKind::Deploy,
    }
}

/// Records four events (web, api, web, web); the first three hours ago.
fn record_four(db: &Path) -> Vec<i64> {
    let store = Store::open(db).unwrap();
    let ids = vec![
        store
            .record("web", None, "ana", Some("ticket 7"), &deploy_requested())
            .unwrap(),
        store
            .record("api", None, "bo", None, &EventKind::LockTaken)
            .unwrap(),
        store
            .record(
                "web",
                None,
                "rollguard",
                None,
                &EventKind::RollbackArmed {
                    fires_in_ms: 60_000,
                },
            )
            .unwrap(),
        store
            .record(
                "web",
                None,
                "ana",
                Some("it fails"),
                &EventKind::command(Verb::Fire, "ana"),
            )
            .unwrap(),
    ];
    let raw = rusqlite::Connection::open(db).unwrap();
    let three_hours_ago = rollguard::model::now_ms() - 3 * 3_600_000;
    raw.execute(
        "UPDATE events SET at_ms = ?1 WHERE id = ?2",
        rusqlite::params![three_hours_ago, ids[0]],
    )
    .unwrap();
    ids
}

#[test]
fn events_print_oldest_first_and_filter_by_app_and_age() {
    let dir = TempDir::new("events-list");
    let (config, db) = (config(&dir), dir.join("history.db"));
    let recorded = record_four(&db);

    let all = json_lines(&run(&config, &db, &["events", "--json"]));
    assert_eq!(ids(&all), recorded, "every event, oldest first");
    let first = &all[0];
    assert_eq!(first["app"], "web");
    assert_eq!(first["kind"], "deploy_requested");
    assert_eq!(first["actor"], "ana");
    assert_eq!(first["reason"], "ticket 7");
    assert_eq!(first["deployment_id"], Value::Null);
    assert_eq!(first["evidence"]["to"], "v2");
    let at = first["at"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    assert_eq!(parsed.timestamp_millis(), first["at_ms"].as_i64().unwrap());

    let web = json_lines(&run(&config, &db, &["events", "--json", "--app", "web"]));
    assert_eq!(ids(&web), [recorded[0], recorded[2], recorded[3]]);
    let recent = json_lines(&run(&config, &db, &["events", "--json", "--since", "1h"]));
    assert_eq!(ids(&recent), recorded[1..]);
    let newest = json_lines(&run(&config, &db, &["events", "--json", "--limit", "2"]));
    assert_eq!(ids(&newest), recorded[2..], "the newest two, oldest first");
    let both = [
        "events", "--json", "--app", "web", "--since", "1h", "--limit", "1",
    ];
    assert_eq!(ids(&json_lines(&run(&config, &db, &both))), [recorded[3]]);

    let text = run(&config, &db, &["events"]);
    assert_eq!(text.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&text.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "a header and a line per event: {stdout}");
    assert!(
        lines[0].contains("KIND") && lines[0].contains("ACTOR"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("deploy_requested") && lines[1].contains("deploy v1 → v2 (rolling)"),
        "{stdout}"
    );
    assert!(lines[1].ends_with("— ticket 7"), "{stdout}");
    assert!(lines[4].contains("fire sent by ana — it fails"), "{stdout}");

    let unknown = run(&config, &db, &["events", "--app", "nosuch"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(
        unknown.status.code(),
        Some(i32::from(Code::Usage.exit_code())),
        "{stderr}"
    );
    assert!(stderr.starts_with(Code::Usage.as_str()), "{stderr}");
    assert!(stderr.contains("apps: web, api"), "{stderr}");
}

/// Each line the child prints, as it comes.
fn lines_of(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line that parses as an event, within [`PATIENCE`].
fn next_event(lines: &Receiver<String>) -> Value {
    let line = lines
        .recv_timeout(PATIENCE)
        .expect("the follower printed an event in time");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Sends `signal` to `child` and waits (within [`PATIENCE`]) for its end.
fn stop(child: &mut Child, signal: libc::c_int) -> std::process::ExitStatus {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: a signal to the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    wait(child)
}

/// Waits (within [`PATIENCE`]) for `child` to end.
fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the follower did not end in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
    }
    s
}

#[test]
fn a_follower_sees_what_another_connection_writes_and_ends_on_sigterm() {
    let dir = TempDir::new("events-follow");
    let (config, db) = (config(&dir), dir.join("history.db"));
    let store = Store::open(&db).unwrap();
    let before = store
        .record("web", None, "ana", None, &deploy_requested())
        .unwrap();
    let mut child = command(
        &config,
        &db,
        &["events", "--follow", "--json", "--app", "web"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    assert_eq!(next_event(&lines)["id"], before, "what was there first");

    // Written by this process, not by the follower's connection; the other
    // app's event is filtered out.
    store
        .record("api", None, "bo", None, &EventKind::LockTaken)
        .unwrap();
    let after = store
        .record(
            "web",
            None,
            "rollguard",
            Some("3 failures in a row"),
            &EventKind::RollbackArmed {
                fires_in_ms: 60_000,
            },
        )
        .unwrap();
    let seen = next_event(&lines);
    assert_eq!(seen["id"], after, "{seen}");
    assert_eq!(seen["kind"], "rollback_armed");
    assert_eq!(seen["reason"], "3 failures in a row");

    let status = stop(&mut child, libc::SIGTERM);
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "no error text: {stderr}");
}

#[test]
fn a_follower_waits_for_the_history_and_ends_on_sigint() {
    let dir = TempDir::new("events-wait");
    let (config, db) = (config(&dir), dir.join("history.db"));
    let mut child = command(&config, &db, &["events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    // Give it time to find no file; it must not create one.
    std::thread::sleep(Duration::from_millis(600));
    assert!(!db.exists(), "the follower does not create the history");
    let store = Store::open(&db).unwrap();
    store
        .record("web", None, "ana", None, &deploy_requested())
        .unwrap();
    let header = lines.recv_timeout(PATIENCE).expect("a header in time");
    assert!(header.contains("KIND"), "{header}");
    let line = lines.recv_timeout(PATIENCE).expect("the event in time");
    assert!(line.contains("deploy v1 → v2 (rolling)"), "{line}");

    let status = stop(&mut child, libc::SIGINT);
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("waiting").count(),
        1,
        "says once that it waits: {stderr}"
    );
}

#[test]
fn a_follower_ends_quietly_when_its_reader_goes_away() {
    let dir = TempDir::new("events-pipe");
    let (config, db) = (config(&dir), dir.join("history.db"));
    record_four(&db);
    let mut child = command(&config, &db, &["events", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("deploy_requested"), "{first}");
    // As `| head -1` does: read one line, then close the pipe.
    drop(stdout);
    let status = wait(&mut child);
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "no error text: {stderr}");
}

#[test]
fn a_hostile_reason_is_printed_as_visible_text() {
    let dir = TempDir::new("events-hostile");
    let (config, db) = (config(&dir), dir.join("history.db"));
    let hostile = "ok \x1b]0;title\x07 then \x1b[2J cleared";
    let store = Store::open(&db).unwrap();
    store
        .record(
            "web",
            None,
            "mallory\x1b[31m",
            Some(hostile),
            &EventKind::command(Verb::Abort, "mallory\x1b[31m"),
        )
        .unwrap();
    drop(store);

    let text = run(&config, &db, &["events"]);
    assert_eq!(text.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "no raw control character reaches the terminal: {stdout:?}"
    );
    assert!(stdout.contains("\\x1b]0;title\\x07"), "{stdout}");
    assert!(stdout.contains("\\x1b[2J"), "{stdout}");

    let json = run(&config, &db, &["events", "--json"]);
    let raw = String::from_utf8_lossy(&json.stdout);
    assert!(!raw.contains('\x1b') && !raw.contains('\x07'), "{raw:?}");
    assert_eq!(
        json_lines(&json)[0]["reason"],
        hostile,
        "JSON keeps the text"
    );
}

#[test]
fn a_missing_history_prints_nothing_and_is_not_created() {
    let dir = TempDir::new("events-missing");
    let (config, db) = (config(&dir), dir.join("nothing-here/history.db"));
    for args in [&["events"][..], &["events", "--json", "--app", "web"]] {
        let out = run(&config, &db, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.contains("no history yet"), "{stderr}");
    }
    assert!(!db.exists(), "the history is not created");
    assert!(!db.parent().unwrap().exists(), "nor its folder");
    let unknown = run(&config, &db, &["events", "--app", "nosuch"]);
    assert_eq!(
        unknown.status.code(),
        Some(i32::from(Code::Usage.exit_code()))
    );
}
