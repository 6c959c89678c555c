//! Email receivers against a real SMTP server on loopback: aiosmtpd
//! (`tests/smtp_server.py`, Debian's `python3-aiosmtpd`) started by each
//! test, plain, with STARTTLS or with TLS from the first byte under a test
//! CA made here, with a login, or refusing every recipient. It writes each
//! message it takes to a folder, decoded, for the test to read.

use crate::common;
use common::{wait_async, wait_for};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::TempDir;
use common::free_port;
use rollguard::config::Fleet;
use rollguard::model::evidence::Evidence;
use rollguard::model::incident::IncidentCause;
use rollguard::notify::Notifier;
use rollguard::store::{NotificationState, Store};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
const POLL: Duration = Duration::from_millis(100);

/// The system's Python, where Debian's `python3-aiosmtpd` is installed
/// (a `python3` earlier on PATH may be another).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

const SECRETS: [(&str, &str); 2] = [
    ("SMTP_PASSWORD", "smtp-pa55word-7f3e"),
    ("SMTP_WRONG", "wrong-pa55word-91c2"),
];

fn env(name: &str) -> Option<String> {
    SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// A running aiosmtpd, killed on drop.
struct Smtp {
    child: Child,
    dir: PathBuf,
}

impl Smtp {
    /// Starts the server on `port` with `args`, or `None` (a loud skip)
    /// when aiosmtpd is not installed.
    fn start(test: &str, dir: &Path, port: u16, args: &[&str]) -> Option<Smtp> {
        let found = Command::new(python())
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return common::missing(test, "python3-aiosmtpd");
        }
        let dir = dir.join(format!("mail-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(python())
            .arg(SERVER)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .env("SMTP_TEST_PASSWORD", env("SMTP_PASSWORD").unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Some(Smtp { child, dir })
    }

    /// The messages it took, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// App `web` (one instance probed over TCP at `probe_port`) and `receivers`.
fn config_text(probe_port: u16, receivers: &str) -> String {
    format!(
        "[[app]]\nname = \"web\"\n[app.rollout]\nauto_rollback = \"confirm\"\n\
         [[app.instance]]\nname = \"web-1\"\nport = {probe_port}\n\
         [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\ntimeout = \"1s\"\n\
         [app.health]\ninterval = \"500ms\"\n{receivers}"
    )
}

fn fleet(dir: &TempDir, receivers: &str) -> (Arc<Fleet>, PathBuf) {
    common::fleet_in(dir, &config_text(1, receivers), &env)
}

/// An email receiver `name` of the server on `port`, with `extra` keys.
fn receiver(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[notify]]\nname = \"{name}\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         from = \"rollguard <rollguard@ops.example.com>\"\n\
         to = [\"oncall@example.com\", \"Ana <ana@example.com>\"]\n{extra}\n"
    )
}

fn open_incident(db: &Path) -> i64 {
    let s = Store::open(db).unwrap();
    let failing = Evidence {
        instance: "web-1".into(),
        probe: "tcp".into(),
        failure_threshold: 3,
        reason: Some("3 failures in a row (threshold 3)".into()),
        ..Evidence::default()
    };
    let now = rollguard::model::now_ms();
    s.open_incident("web", None, IncidentCause::Probe, &[failing], now)
        .unwrap()
        .id()
}

fn resolve_incident(db: &Path, id: i64) {
    let s = Store::open(db).unwrap();
    let now = rollguard::model::now_ms();
    assert!(s.resolve_incident(id, now, now).unwrap());
}

fn events_json(db: &Path) -> String {
    let out = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(["events", "--json"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_one_thread_of_two_emails_that_say_what_happened() {
    let test = "an_incident_is_one_thread_of_two_emails_that_say_what_happened";
    let dir = TempDir::new("email-thread");
    let port = free_port();
    let Some(smtp) = Smtp::start(test, &dir.0, port, &[]) else {
        return;
    };
    let (fleet, db) = fleet(&dir, &receiver("mail", port, "tls = \"none\""));
    drop(Store::open(&db).unwrap());
    let notifier =
        Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL).unwrap();
    let id = open_incident(&db);
    resolve_incident(&db, id);
    wait_async("two emails", Duration::from_secs(20), || {
        smtp.messages().len() >= 2
    })
    .await;
    notifier.stop().await;
    let got = smtp.messages();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (opened, resolved) = (&got[0], &got[1]);
    let h = |m: &Value, k: &str| m["headers"][k].as_str().unwrap_or("").to_string();
    assert_eq!(
        h(opened, "subject"),
        format!("[rollguard] web is failing: incident {id} opened (tcp failing on web-1)")
    );
    assert_eq!(h(opened, "from"), "rollguard <rollguard@ops.example.com>");
    assert_eq!(h(opened, "to"), "oncall@example.com, Ana <ana@example.com>");
    assert_eq!(opened["mail_from"], "rollguard@ops.example.com");
    assert_eq!(
        opened["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "ana@example.com"])
    );
    let text = opened["text"].as_str().unwrap().replace("\r\n", "\n");
    for part in [
        format!("web is failing: incident {id} opened"),
        "web turned unhealthy on web-1.".into(),
        "App:        web".into(),
        format!("Incident:   {id}"),
        "  - tcp on web-1: 3 failures in a row (threshold 3)".into(),
        "What rollguard did\n  No rollout was running: nothing was changed.".into(),
        "Look\n  rollguard events --app web --since 1h".into(),
    ] {
        assert!(text.contains(part.as_str()), "{part:?} not in\n{text}");
    }
    assert!(!h(opened, "x-rollguard-delivery").is_empty());
    // One thread: the resolved message answers the opened one.
    let root = h(opened, "message-id");
    assert!(
        root.starts_with(&format!("<rollguard.web.incident-{id}."))
            && root.ends_with("@ops.example.com>"),
        "{root}"
    );
    assert_eq!(h(opened, "in-reply-to"), "");
    assert_eq!(h(resolved, "in-reply-to"), root);
    assert_eq!(h(resolved, "references"), root);
    assert_ne!(h(resolved, "message-id"), root);
    assert!(
        h(resolved, "subject").starts_with(&format!(
            "[rollguard] web recovered: incident {id} resolved (after "
        )),
        "{}",
        h(resolved, "subject")
    );
    let s = Store::open(&db).unwrap();
    let rows = s.notifications(None, 10).unwrap();
    assert!(rows.iter().all(|n| n.state == NotificationState::Sent));
    assert!(events_json(&db).contains("notification_sent"));
}

/// A test CA and a certificate for 127.0.0.1 signed by it, as PEM files
/// in `dir`: (ca, cert, key).
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rollguard test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
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
            .env("ROLLGUARD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        for (k, v) in SECRETS {
            cmd.env(k, v);
        }
        Agent(cmd.spawn().unwrap())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_login_over_starttls_or_tls_uses_the_password_from_the_environment_and_shows_it_nowhere() {
    let test =
        "a_login_over_starttls_or_tls_uses_the_password_from_the_environment_and_shows_it_nowhere";
    let dir = TempDir::new("email-login");
    let (ca, cert, key) = test_ca(&dir.0);
    let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
    let (p1, p2) = (free_port(), free_port());
    let Some(starttls) = Smtp::start(
        test,
        &dir.0,
        p1,
        &["--starttls", &cert, &key, "--login", "ops"],
    ) else {
        return;
    };
    let Some(tls) = Smtp::start(test, &dir.0, p2, &["--tls", &cert, &key, "--login", "ops"]) else {
        return;
    };
    let login = |tls: &str, password: &str| {
        format!(
            "tls = \"{tls}\"\nca_file = \"ca.pem\"\nusername = \"ops\"\n\
             password = \"${{{password}}}\"\nretry_for = \"0s\""
        )
    };
    assert_eq!(ca, dir.0.join("ca.pem"));
    let receivers = [
        receiver("mail-starttls", p1, &login("starttls", "SMTP_PASSWORD")),
        receiver("mail-tls", p2, &login("tls", "SMTP_PASSWORD")),
        receiver("mail-wrong", p1, &login("starttls", "SMTP_WRONG")),
    ]
    .concat();
    let probed = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = dir.0.join("fleet.toml");
    std::fs::write(
        &cfg,
        config_text(probed.local_addr().unwrap().port(), &receivers),
    )
    .unwrap();
    let db = dir.0.join("history.db");
    let log = dir.0.join("agent.log");
    let agent = Agent::start(&cfg, &db, &log);
    wait_for("the agent's history", Duration::from_secs(20), || {
        db.exists() && Store::open(&db).is_ok_and(|s| s.unsent_notifications().is_ok())
    });
    // The agent makes notifications of what comes after it started.
    std::thread::sleep(Duration::from_secs(2));
    open_incident(&db);
    let s = Store::open(&db).unwrap();
    wait_for(
        "the three receivers' outcomes",
        Duration::from_secs(30),
        || {
            let rows = s.notifications(None, 10).unwrap();
            rows.len() == 3
                && rows
                    .iter()
                    .all(|n| matches!(n.state, NotificationState::Sent | NotificationState::Failed))
        },
    );
    drop(agent);
    let rows = s.notifications(None, 10).unwrap();
    for server in [&starttls, &tls] {
        let got = server.messages();
        assert_eq!(got.len(), 1, "{rows:#?}");
        assert_eq!(got[0]["login"], "ops");
        assert_eq!(got[0]["encrypted"], true);
    }
    let wrong = s.notifications(Some("mail-wrong"), 1).unwrap();
    assert_eq!(wrong[0].state, NotificationState::Failed);
    assert_eq!(wrong[0].attempts, 1, "a refused login is not tried again");
    let error = wrong[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("SMTP 535"), "{error}");

    let run_test = |name: &str| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(&db)
            .args(["notify", "test", name, "--json"]);
        for (k, v) in SECRETS {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let ok = run_test("mail-starttls");
    let ok_out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{ok_out}");
    let doc: Value = serde_json::from_str(&ok_out).unwrap();
    assert_eq!(doc["delivered"], true);
    assert!(
        doc["answers"][0].as_str().unwrap().starts_with("SMTP 250"),
        "{doc}"
    );
    let sample = &starttls.messages()[1];
    assert_eq!(
        sample["headers"]["subject"],
        "[rollguard] rollguard test message to mail-starttls (a test)"
    );
    let refused = run_test("mail-wrong");
    assert_eq!(refused.status.code(), Some(1));
    let refused_err = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        refused_err.contains("E_NOTIFY") && refused_err.contains("SMTP 535"),
        "{refused_err}"
    );

    let texts = [
        (
            "outbox",
            serde_json::to_string(&s.notifications(None, 100).unwrap()).unwrap(),
        ),
        ("events --json", events_json(&db)),
        ("agent log", std::fs::read_to_string(&log).unwrap()),
        ("notify test", ok_out),
        (
            "notify test refused",
            String::from_utf8_lossy(&refused.stdout).into_owned(),
        ),
        ("notify test errors", refused_err),
    ];
    for (what, text) in &texts {
        for (name, value) in SECRETS {
            assert!(!text.contains(value), "{name} is in the {what}:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_is_given_up_and_one_that_is_down_is_tried_until_it_is_up() {
    let test = "a_refusing_server_is_given_up_and_one_that_is_down_is_tried_until_it_is_up";
    let dir = TempDir::new("email-refuse");
    let (p1, p2) = (free_port(), free_port());
    let Some(_refusing) = Smtp::start(test, &dir.0, p1, &["--refuse", "550 5.1.1 no such user"])
    else {
        return;
    };
    let receivers = [
        receiver("refused", p1, "tls = \"none\""),
        receiver("later", p2, "tls = \"none\"\ntimeout = \"1s\""),
    ]
    .concat();
    let (fleet, db) = fleet(&dir, &receivers);
    drop(Store::open(&db).unwrap());
    let notifier =
        Notifier::start_every(fleet, &rollguard::store::Location::File(db.clone()), POLL).unwrap();
    open_incident(&db);
    let s = Store::open(&db).unwrap();
    let row = |name: &str| s.notifications(Some(name), 1).unwrap().pop();
    wait_async(
        "the refused email to be given up",
        Duration::from_secs(20),
        || row("refused").is_some_and(|n| n.state == NotificationState::Failed),
    )
    .await;
    assert_eq!(row("refused").unwrap().attempts, 1);
    wait_async(
        "two attempts at the server that is down",
        Duration::from_secs(20),
        || row("later").is_some_and(|n| n.attempts >= 2 && n.state == NotificationState::Pending),
    )
    .await;
    let error = row("later").unwrap().last_error.unwrap_or_default();
    assert!(error.starts_with("no answer"), "{error}");
    // It comes up: the next attempt delivers.
    let Some(up) = Smtp::start(test, &dir.0, p2, &[]) else {
        return;
    };
    wait_async(
        "the email once the server is up",
        Duration::from_secs(30),
        || row("later").is_some_and(|n| n.state == NotificationState::Sent),
    )
    .await;
    notifier.stop().await;
    assert_eq!(up.messages().len(), 1);
    let events = events_json(&db);
    let failed: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "notification_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events}");
    assert_eq!(failed[0]["evidence"]["receiver"], "refused");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("SMTP 550"),
        "{events}"
    );
    let plain = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["events", "--app", "web"])
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.contains("incident_opened NOT sent to refused: given up"),
        "{plain}"
    );
}
