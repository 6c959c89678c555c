//! Notifications against real receivers on loopback: a small HTTP server
//! started by each test stands in for Slack, Discord, a webhook's owner
//! and PagerDuty, records what it gets and answers as told (200, 500 once,
//! 404, or never). Events are recorded in a real history; notifiers run
//! in this process (each with its own connection, as separate processes
//! would) or as `rollguard agent` processes killed with `kill -9`.

use crate::common;
use common::{wait_async, wait_for};

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TempDir;
use rollguard::config::{self, Fleet};
use rollguard::model::evidence::Evidence;
use rollguard::model::incident::IncidentCause;
use rollguard::notify::Notifier;
use rollguard::notify::signature::verify;
use rollguard::store::{NotificationState, Store};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }
}

/// How a path answers its `n`th request (from 0).
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// Never answers.
    Hang,
}

/// A recording HTTP receiver on loopback.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(answer: fn(&str, usize) -> Reply) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Request>>> = Arc::default();
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let g = g.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let mut headers = HashMap::new();
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            if h == "\r\n" {
                                break;
                            }
                            if let Some((k, v)) = h.trim_end().split_once(':') {
                                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                            }
                        }
                        let len: usize = headers
                            .get("content-length")
                            .and_then(|l| l.parse().ok())
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let n = {
                            let mut all = g.lock().unwrap();
                            let n = all.iter().filter(|r| r.path == path).count();
                            all.push(Request {
                                path: path.clone(),
                                headers,
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            n
                        };
                        match answer(&path, n) {
                            Reply::Hang => {
                                std::thread::sleep(Duration::from_secs(120));
                                return;
                            }
                            Reply::Status(code) => {
                                // The 500's body repeats the path it was sent to.
                                let text = if code == 200 {
                                    "ok".into()
                                } else {
                                    format!("failed at {path}")
                                };
                                let reply = format!(
                                    "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n\r\n{text}",
                                    text.len()
                                );
                                if conn.write_all(reply.as_bytes()).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Receiver { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self, path: &str) -> Vec<Request> {
        let all = self.got.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }
}

fn always_ok(_: &str, _: usize) -> Reply {
    Reply::Status(200)
}

/// A config of app `web` (one instance probed over TCP at `probe_port`)
/// with `receivers` appended; written to `dir/fleet.toml`.
fn config_text(probe_port: u16, receivers: &str) -> String {
    format!(
        "[[app]]\nname = \"web\"\n[app.rollout]\nauto_rollback = \"confirm\"\n\
         [[app.instance]]\nname = \"web-1\"\nport = {probe_port}\n\
         [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\ntimeout = \"1s\"\n\
         [app.health]\ninterval = \"500ms\"\n{receivers}"
    )
}

const SECRETS: [(&str, &str); 3] = [
    ("HOOK_SECRET", "hook-signing-key-6d2f"),
    ("HOOK_TOKEN", "T0KEN-in-the-url-91ab"),
    ("PD_KEY", "pd-routing-key-0c44e"),
];

fn env(name: &str) -> Option<String> {
    SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

fn fleet(dir: &TempDir, receivers: &str) -> (Arc<Fleet>, PathBuf) {
    common::fleet_in(dir, &config_text(1, receivers), &env)
}

fn failing() -> Evidence {
    Evidence {
        instance: "web-1".into(),
        probe: "tcp".into(),
        failure_threshold: 3,
        reason: Some("3 failures in a row (threshold 3)".into()),
        ..Evidence::default()
    }
}

/// Opens an incident of `web` and returns its id.
fn open_incident(db: &Path) -> i64 {
    let s = Store::open(db).unwrap();
    let now = rollguard::model::now_ms();
    s.open_incident("web", None, IncidentCause::Probe, &[failing()], now)
        .unwrap()
        .id()
}

fn resolve_incident(db: &Path, id: i64) {
    let s = Store::open(db).unwrap();
    let now = rollguard::model::now_ms();
    assert!(s.resolve_incident(id, now, now).unwrap());
}

const POLL: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_discord_and_signed_webhook_bodies_arrive_as_documented() {
    let dir = TempDir::new("notify-bodies");
    let hooks = Receiver::start(always_ok);
    let (fleet, db) = fleet(
        &dir,
        &format!(
            "[[notify]]\nname = \"chat\"\ntype = \"slack\"\nurl = \"{}\"\n\
             [[notify]]\nname = \"game\"\ntype = \"discord\"\nurl = \"{}\"\n\
             [[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"${{HOOK_SECRET}}\"\n",
            hooks.url("/slack"),
            hooks.url("/discord"),
            hooks.url("/hook"),
        ),
    );
    // The history exists before the notifier starts: it sends what comes after.
    drop(Store::open(&db).unwrap());
    let notifier =
        Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL).unwrap();
    let id = open_incident(&db);
    wait_async("three messages", Duration::from_secs(20), || {
        ["/slack", "/discord", "/hook"]
            .iter()
            .all(|p| !hooks.requests(p).is_empty())
    })
    .await;
    notifier.stop().await;

    let slack = hooks.requests("/slack")[0].json();
    let title = format!("web is failing: incident {id} opened");
    assert_eq!(slack["text"], title);
    assert_eq!(slack["blocks"][0]["type"], "header");
    let blocks = slack["blocks"].to_string();
    assert!(
        blocks.contains("tcp on web-1: 3 failures in a row (threshold 3)"),
        "{blocks}"
    );
    assert!(
        blocks.contains("rollguard events --app web --since 1h"),
        "{blocks}"
    );

    let discord = hooks.requests("/discord")[0].json();
    assert_eq!(discord["embeds"][0]["title"], title);
    assert_eq!(
        discord["embeds"][0]["footer"]["text"],
        format!("rollguard · incident {id}")
    );

    let hook = &hooks.requests("/hook")[0];
    let body = hook.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["topic"], "incident_opened");
    assert_eq!(body["app"], "web");
    assert_eq!(body["incident"], id);
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["dedup_key"], format!("incident-{id}"));
    // The receiver checks the signature as the README says.
    let ts: i64 = hook.header("X-Rollguard-Timestamp").parse().unwrap();
    let sig = hook.header("X-Rollguard-Signature");
    let key = env("HOOK_SECRET").unwrap();
    let now = rollguard::model::now_ms() / 1000;
    assert!(
        verify(key.as_bytes(), ts, hook.body.as_bytes(), sig, now, 300),
        "{sig}"
    );
    assert!(!verify(b"wrong", ts, hook.body.as_bytes(), sig, now, 300));
    // And with the hmac crate itself, as a receiver in any language would.
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", hook.body).as_bytes());
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    assert!(!hook.header("X-Rollguard-Delivery").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_is_triggered_then_resolved_with_one_dedup_key() {
    let dir = TempDir::new("notify-pd");
    let pd = Receiver::start(always_ok);
    let (fleet, db) = fleet(
        &dir,
        &format!(
            "[[notify]]\nname = \"pager\"\ntype = \"pagerduty\"\nrouting_key = \"${{PD_KEY}}\"\nurl = \"{}\"\n",
            pd.url("/v2/enqueue")
        ),
    );
    drop(Store::open(&db).unwrap());
    let notifier =
        Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL).unwrap();
    let id = open_incident(&db);
    resolve_incident(&db, id);
    wait_async("trigger and resolve", Duration::from_secs(20), || {
        pd.requests("/v2/enqueue").len() >= 2
    })
    .await;
    notifier.stop().await;
    let got: Vec<Value> = pd
        .requests("/v2/enqueue")
        .iter()
        .map(Request::json)
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["event_action"], "trigger");
    assert_eq!(got[1]["event_action"], "resolve");
    assert_eq!(got[0]["dedup_key"], format!("rollguard-incident-{id}"));
    assert_eq!(got[0]["dedup_key"], got[1]["dedup_key"]);
    assert_eq!(got[0]["routing_key"], env("PD_KEY").unwrap());
    assert_eq!(got[0]["payload"]["severity"], "critical");
    assert_eq!(got[0]["payload"]["source"], "web");
}

fn flaky(path: &str, n: usize) -> Reply {
    match (path, n) {
        ("/flaky", 0) => Reply::Status(500),
        ("/hang", _) => Reply::Hang,
        ("/refuse", _) => Reply::Status(404),
        _ => Reply::Status(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_500_is_tried_again_and_gets_it_once() {
    let dir = TempDir::new("notify-retry");
    let hooks = Receiver::start(flaky);
    let (fleet, db) = fleet(
        &dir,
        &format!(
            "[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            hooks.url("/flaky")
        ),
    );
    drop(Store::open(&db).unwrap());
    let notifier =
        Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL).unwrap();
    open_incident(&db);
    let s = Store::open(&db).unwrap();
    wait_async("the retry to be delivered", Duration::from_secs(20), || {
        s.notifications(None, 10)
            .unwrap()
            .iter()
            .any(|n| n.state == NotificationState::Sent)
    })
    .await;
    notifier.stop().await;
    let got = hooks.requests("/flaky");
    assert_eq!(got.len(), 2, "a 500, then the 200");
    assert_eq!(
        got[0].header("X-Rollguard-Delivery"),
        got[1].header("X-Rollguard-Delivery")
    );
    let rows = s.notifications(None, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 2);
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("HTTP 500"),
        "{rows:?}"
    );
    let sent: Vec<_> = s
        .events(Some("web"), 20)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "notification_sent")
        .collect();
    assert_eq!(sent.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_delays_no_other_and_a_refusing_one_is_given_up_in_the_events() {
    let dir = TempDir::new("notify-hang");
    let hooks = Receiver::start(flaky);
    let (fleet, db) = fleet(
        &dir,
        &format!(
            "[[notify]]\nname = \"stuck\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"60s\"\n\
             [[notify]]\nname = \"wrong\"\ntype = \"webhook\"\nurl = \"{}\"\n\
             [[notify]]\nname = \"fine\"\ntype = \"slack\"\nurl = \"{}\"\n",
            hooks.url("/hang"),
            hooks.url("/refuse"),
            hooks.url("/fine"),
        ),
    );
    drop(Store::open(&db).unwrap());
    let notifier =
        Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL).unwrap();
    // The stuck receiver is listed first and hears of it first.
    let id = open_incident(&db);
    let s = Store::open(&db).unwrap();
    let state = |receiver: &str| {
        s.notifications(Some(receiver), 10)
            .unwrap()
            .first()
            .map(|n| n.state)
    };
    wait_async(
        "the working receiver's message",
        Duration::from_secs(20),
        || state("fine") == Some(NotificationState::Sent),
    )
    .await;
    // Delivered while the stuck one is still in its first attempt.
    assert_eq!(hooks.requests("/hang").len(), 1);
    assert_eq!(state("stuck"), Some(NotificationState::Sending));
    // The next message to the working receiver does not wait either.
    resolve_incident(&db, id);
    wait_async("the resolved message", Duration::from_secs(20), || {
        hooks.requests("/fine").len() == 2
    })
    .await;
    wait_async(
        "the refused one to be given up",
        Duration::from_secs(20),
        || {
            s.notifications(Some("wrong"), 10)
                .unwrap()
                .iter()
                .all(|n| n.state == NotificationState::Failed)
        },
    )
    .await;
    // Given up at once: a 404 will not heal by waiting.
    assert_eq!(hooks.requests("/refuse").len(), 2);
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["events", "--json", "--app", "web"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "notification_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{text}");
    assert_eq!(failed[0]["evidence"]["receiver"], "wrong");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("HTTP 404"),
        "{text}"
    );
    let plain = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["events", "--app", "web"])
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.contains("incident_opened NOT sent to wrong: given up"),
        "{plain}"
    );
    // Stopping waits for the stuck attempt: drop it instead, as a process
    // that ends would.
    drop(notifier);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_notifiers_on_one_history_send_each_notification_once() {
    let dir = TempDir::new("notify-three");
    let hooks = Receiver::start(always_ok);
    let (fleet, db) = fleet(
        &dir,
        &format!(
            "[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            hooks.url("/hook")
        ),
    );
    drop(Store::open(&db).unwrap());
    let notifiers: Vec<Notifier> = (0..3)
        .map(|_| {
            Notifier::start_every(
                fleet.clone(),
                &rollguard::store::Location::File(db.clone()),
                Duration::from_millis(20),
            )
            .unwrap()
        })
        .collect();
    for _ in 0..10 {
        let id = open_incident(&db);
        resolve_incident(&db, id);
    }
    wait_async("twenty messages", Duration::from_secs(30), || {
        hooks.requests("/hook").len() >= 20
    })
    .await;
    // Time for any duplicate to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in notifiers {
        n.stop().await;
    }
    let got = hooks.requests("/hook");
    let mut by_delivery: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *by_delivery
            .entry(r.header("X-Rollguard-Delivery").to_string())
            .or_default() += 1;
    }
    assert_eq!(got.len(), 20, "{by_delivery:?}");
    assert!(by_delivery.values().all(|n| *n == 1), "{by_delivery:?}");
    // Each incident's opening came before its resolution.
    let mut seen: HashMap<i64, Vec<String>> = HashMap::new();
    for r in &got {
        let b = r.json();
        seen.entry(b["incident"].as_i64().unwrap())
            .or_default()
            .push(b["topic"].as_str().unwrap().to_string());
    }
    assert!(
        seen.values()
            .all(|t| t == &["incident_opened", "incident_resolved"]),
        "{seen:?}"
    );
}

/// A running `rollguard agent`, killed on drop.
struct Agent(Child);

impl Agent {
    fn start(cfg: &Path, db: &Path, log: &Path) -> Agent {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(cfg)
            .arg("--db")
            .arg(db)
            .arg("agent")
            .env("ROLLGUARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            );
        for (k, v) in SECRETS {
            cmd.env(k, v);
        }
        Agent(cmd.spawn().unwrap())
    }

    fn kill_9(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hang_once(path: &str, n: usize) -> Reply {
    match (path, n) {
        ("/once", 0) => Reply::Hang,
        (p, _) if p.starts_with("/broken") => Reply::Status(500),
        _ => Reply::Status(200),
    }
}

/// Whether the agent whose pid is `pid` holds the prober's lease.
fn holds_lease(db: &Path, pid: u32) -> bool {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    c.query_row(
        "SELECT owner_pid FROM leases WHERE role = 'prober'",
        [],
        |r| r.get::<_, u32>(0),
    )
    .is_ok_and(|p| p == pid)
}

#[test]
fn a_notifier_killed_mid_delivery_is_followed_by_one_that_delivers_after_restart() {
    let dir = TempDir::new("notify-kill");
    let hooks = Receiver::start(hang_once);
    let probed = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = dir.0.join("fleet.toml");
    let receivers = format!(
        "[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\ntimeout = \"2s\"\n",
        hooks.url("/once")
    );
    std::fs::write(
        &cfg,
        config_text(probed.local_addr().unwrap().port(), &receivers),
    )
    .unwrap();
    let db = dir.0.join("history.db");
    let log = dir.0.join("agent.log");
    let mut first = Agent::start(&cfg, &db, &log);
    let pid = first.0.id();
    wait_for(
        "the first agent to hold the lease",
        Duration::from_secs(20),
        || db.exists() && holds_lease(&db, pid),
    );
    open_incident(&db);
    wait_for("the first attempt", Duration::from_secs(20), || {
        !hooks.requests("/once").is_empty()
    });
    first.kill_9();
    let s = Store::open(&db).unwrap();
    let row = &s.notifications(None, 10).unwrap()[0];
    assert_eq!(
        row.state,
        NotificationState::Sending,
        "claimed by the dead agent"
    );

    let second = Agent::start(&cfg, &db, &log);
    wait_for("delivery after restart", Duration::from_secs(30), || {
        s.notifications(None, 10).unwrap()[0].state == NotificationState::Sent
    });
    std::thread::sleep(Duration::from_millis(500));
    drop(second);
    let got = hooks.requests("/once");
    // The dead agent's attempt, which was never answered, and the one that
    // was: the receiver took it once.
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("X-Rollguard-Delivery"),
        got[1].header("X-Rollguard-Delivery")
    );
    assert_eq!(s.notifications(None, 10).unwrap()[0].attempts, 2);
}

#[test]
fn secrets_reach_neither_the_outbox_nor_the_log_nor_json() {
    let dir = TempDir::new("notify-secrets");
    let hooks = Receiver::start(hang_once);
    let probed = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = dir.0.join("fleet.toml");
    // The failing receiver's URL holds a token, and its 500 repeats it.
    let receivers = format!(
        "[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}/${{HOOK_TOKEN}}\"\n\
         secret = \"${{HOOK_SECRET}}\"\nretry_for = \"2s\"\n\
         [[notify]]\nname = \"pager\"\ntype = \"pagerduty\"\nrouting_key = \"${{PD_KEY}}\"\nurl = \"{}\"\n",
        hooks.url("/broken"),
        hooks.url("/pd"),
    );
    std::fs::write(
        &cfg,
        config_text(probed.local_addr().unwrap().port(), &receivers),
    )
    .unwrap();
    let db = dir.0.join("history.db");
    let log = dir.0.join("agent.log");
    let agent = Agent::start(&cfg, &db, &log);
    let pid = agent.0.id();
    wait_for(
        "the agent to hold the lease",
        Duration::from_secs(20),
        || db.exists() && holds_lease(&db, pid),
    );
    open_incident(&db);
    let s = Store::open(&db).unwrap();
    wait_for(
        "the broken receiver to be given up",
        Duration::from_secs(30),
        || {
            s.notifications(Some("hook"), 10)
                .unwrap()
                .first()
                .is_some_and(|n| n.state == NotificationState::Failed)
        },
    );
    wait_for("pagerduty's message", Duration::from_secs(20), || {
        !hooks.requests("/pd").is_empty()
    });
    assert!(
        hooks.requests("/broken/T0KEN-in-the-url-91ab").len() >= 2,
        "tried again"
    );
    drop(agent);

    let rows = serde_json::to_string(&s.notifications(None, 100).unwrap()).unwrap();
    let events: Vec<String> = s
        .events(None, 1000)
        .unwrap()
        .iter()
        .map(rollguard::audit::json_line)
        .collect();
    let failed = s.notifications(Some("hook"), 1).unwrap();
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("/broken/***"),
        "{failed:?}"
    );
    let events_json = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["events", "--json"])
        .output()
        .unwrap();
    let mut test_cmd = Command::new(BIN);
    test_cmd
        .arg("--config")
        .arg(&cfg)
        .arg("--db")
        .arg(&db)
        .args(["notify", "test", "hook", "--json"]);
    for (k, v) in SECRETS {
        test_cmd.env(k, v);
    }
    let tested = test_cmd.output().unwrap();
    assert_eq!(tested.status.code(), Some(1), "E_NOTIFY exits 1");
    let tested_out = String::from_utf8_lossy(&tested.stdout).into_owned();
    let tested_err = String::from_utf8_lossy(&tested.stderr).into_owned();
    assert!(tested_err.contains("E_NOTIFY"), "{tested_err}");
    let doc: Value = serde_json::from_str(&tested_out).unwrap();
    assert_eq!(doc["delivered"], false);
    assert!(
        doc["answers"][0].as_str().unwrap().starts_with("HTTP 500"),
        "{doc}"
    );
    let texts = [
        ("outbox", rows),
        ("events", events.join("\n")),
        (
            "events --json",
            String::from_utf8_lossy(&events_json.stdout).into_owned(),
        ),
        ("agent log", std::fs::read_to_string(&log).unwrap()),
        ("notify test", tested_out),
        ("notify test errors", tested_err),
    ];
    for (what, text) in &texts {
        for (name, value) in SECRETS {
            assert!(!text.contains(value), "{name} is in the {what}:\n{text}");
        }
    }
    // What was sent did carry them.
    let pd = hooks.requests("/pd")[0].json();
    assert_eq!(pd["routing_key"], env("PD_KEY").unwrap());
}

#[test]
fn notify_test_sends_a_sample_and_says_what_came_back() {
    let dir = TempDir::new("notify-test-cmd");
    let hooks = Receiver::start(always_ok);
    let cfg = dir.0.join("fleet.toml");
    let receivers = format!(
        "[[notify]]\nname = \"chat\"\ntype = \"slack\"\nurl = \"{}\"\n",
        hooks.url("/slack")
    );
    std::fs::write(&cfg, config_text(1, &receivers)).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(dir.0.join("history.db"))
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["notify", "test", "chat"]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "chat (slack): HTTP 200: ok\n"
    );
    let sample = hooks.requests("/slack")[0].json();
    assert_eq!(sample["text"], "rollguard test message to chat");
    let unknown = run(&["notify", "test", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("E_USAGE") && err.contains("receivers: chat"),
        "{err}"
    );
}

#[test]
fn a_command_receiver_gets_the_event_on_stdin_and_the_timeline_in_a_file() {
    let dir = TempDir::new("notify-command");
    let out = dir.0.join("got it");
    let cfg = dir.0.join("fleet.toml");
    let receivers = format!(
        "[[notify]]\nname = \"tracker\"\ntype = \"command\"\n\
         run = \"cat - {{timeline}} > {}; echo {{topic}} {{app}} >> {}\"\n",
        rollguard::shell::quote(&out.to_string_lossy()),
        rollguard::shell::quote(&out.to_string_lossy()),
    );
    std::fs::write(&cfg, config_text(1, &receivers)).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let fleet = Arc::new(config::parse(&cfg, &text, &env).unwrap_or_else(|e| panic!("{e}")));
    let db = dir.0.join("history.db");
    drop(Store::open(&db).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let notifier =
            Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL)
                .unwrap();
        let id = open_incident(&db);
        wait_async("the command to run", Duration::from_secs(20), || {
            std::fs::read_to_string(&out).is_ok_and(|t| t.contains("incident_opened web"))
        })
        .await;
        notifier.stop().await;
        let got = std::fs::read_to_string(&out).unwrap();
        let (json, rest) = got
            .split_once("}#")
            .map(|(j, r)| (format!("{j}}}"), format!("#{r}")))
            .unwrap();
        let event: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(event["incident"], id);
        // The incident's timeline, as `rollguard incident` writes it.
        assert!(
            rest.starts_with(&format!("# Incident {id}: web\n")),
            "{rest}"
        );
        for part in [
            "## What failed",
            "## Timeline",
            "tcp on web-1",
            "incident_opened",
        ] {
            assert!(rest.contains(part), "{part}: {rest}");
        }
    });
}
