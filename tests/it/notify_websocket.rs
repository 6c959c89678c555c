//! The live event stream against a real client: a `rollguard agent`
//! holds the prober's lease and runs the listeners; tokio-tungstenite
//! clients connect with the token (in a header or the URL), without it, or
//! with a wrong one, and read what is recorded in the history.

use crate::common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TempDir;
use common::agent::Agent;
use common::free_port;
use futures_util::StreamExt;
use rollguard::config;
use rollguard::model::evidence::Evidence;
use rollguard::model::incident::IncidentCause;
use rollguard::store::Store;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");
const TOKEN: (&str, &str) = ("STREAM_TOKEN", "str3am-t0ken-5b1d");

fn env(name: &str) -> Option<String> {
    (name == TOKEN.0).then(|| TOKEN.1.to_string())
}

fn config_text(probe_port: u16, receivers: &str) -> String {
    format!(
        "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = {probe_port}\n\
         [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\ntimeout = \"1s\"\n\
         [app.health]\ninterval = \"500ms\"\n{receivers}"
    )
}

fn stream(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[notify]]\nname = \"{name}\"\ntype = \"websocket\"\nlisten = \"127.0.0.1:{port}\"\n\
         token = \"${{STREAM_TOKEN}}\"\n{extra}\n"
    )
}

fn agent(cfg: &Path, db: &Path, log: &Path) -> Agent {
    let env = [("ROLLGUARD_LOG", "debug"), TOKEN];
    Agent::start_with(cfg, db, log.to_path_buf(), &env)
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `url`, with `Authorization: auth` when given.
async fn connect(url: &str, auth: Option<&str>) -> Result<Client, Error> {
    let mut req = url.into_client_request().unwrap();
    if let Some(a) = auth {
        req.headers_mut()
            .insert("Authorization", a.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The next text message, as JSON (pongs and pings skipped).
async fn next_event(ws: &mut Client) -> Value {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an event within 20s")
            .expect("the stream is open")
            .unwrap();
        if let Message::Text(t) = got {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

fn open_incident(db: &Path) -> i64 {
    let s = Store::open(db).unwrap();
    let failing = Evidence {
        instance: "web-1".into(),
        probe: "tcp".into(),
        failure_threshold: 3,
        ..Evidence::default()
    };
    let now = rollguard::model::now_ms();
    s.open_incident("web", None, IncidentCause::Probe, &[failing], now)
        .unwrap()
        .id()
}

fn notify_test(cfg: &Path, db: &Path, name: &str) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(db)
        .args(["notify", "test", name, "--json"])
        .env(TOKEN.0, TOKEN.1)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_the_token_gets_the_events_as_json_and_one_without_is_refused() {
    let dir = TempDir::new("ws-stream");
    let (p1, p2) = (free_port(), free_port());
    let probed = TcpListener::bind("127.0.0.1:0").unwrap();
    let receivers = [
        stream("live", p1, ""),
        stream("resolved", p2, "on = [\"incident_resolved\"]"),
    ]
    .concat();
    let cfg = dir.0.join("fleet.toml");
    std::fs::write(
        &cfg,
        config_text(probed.local_addr().unwrap().port(), &receivers),
    )
    .unwrap();
    let (db, log) = (dir.0.join("history.db"), dir.0.join("agent.log"));
    let agent = agent(&cfg, &db, &log);
    let (url1, url2) = (
        format!("ws://127.0.0.1:{p1}/"),
        format!("ws://127.0.0.1:{p2}/"),
    );
    let bearer = format!("Bearer {}", TOKEN.1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut live = loop {
        match connect(&url1, Some(&bearer)).await {
            Ok(ws) => break ws,
            Err(e) => {
                assert!(Instant::now() < deadline, "the listener never came: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // A browser puts the token in the URL.
    let mut resolved = connect(&format!("{url2}?token={}", TOKEN.1), None)
        .await
        .unwrap();
    // Without the token, or with a wrong one, the handshake is refused.
    for (url, auth) in [
        (url1.clone(), None),
        (url1.clone(), Some("Bearer wrong-token")),
        (format!("{url1}?token=wrong-token"), None),
        (url2.clone(), Some(TOKEN.1)),
    ] {
        match connect(&url, auth).await {
            Err(Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401, "{url} {auth:?}"),
            other => panic!("{url} {auth:?}: {:?}", other.map(|_| "connected")),
        }
    }

    let id = open_incident(&db);
    let s = Store::open(&db).unwrap();
    let now = rollguard::model::now_ms();
    assert!(s.resolve_incident(id, now, now).unwrap());
    let opened = next_event(&mut live).await;
    assert_eq!(opened["kind"], "incident_opened");
    assert_eq!(opened["app"], "web");
    assert_eq!(opened["evidence"]["incident"], id);
    let closed = next_event(&mut live).await;
    assert_eq!(closed["kind"], "incident_resolved");
    // Only what `on` names.
    assert_eq!(next_event(&mut resolved).await["kind"], "incident_resolved");
    // The same JSON as `rollguard events --json`.
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["events", "--json"])
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.contains(&opened) && lines.contains(&closed),
        "{lines:?}"
    );

    let (code, out, err) = notify_test(&cfg, &db, "live");
    assert_eq!(code, Some(0), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["delivered"], true);
    assert!(
        doc["answers"][0]
            .as_str()
            .unwrap()
            .contains("took the token"),
        "{doc}"
    );

    drop(agent);
    // The listener went with the lease holder: the stream is closed.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = live.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream stayed open");
    let (code, out, err) = notify_test(&cfg, &db, "live");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains("E_NOTIFY") && err.contains("not listening"),
        "{err}"
    );
    assert!(err.contains("prober's lease"), "{err}");
    let texts = [
        ("agent log", std::fs::read_to_string(&log).unwrap()),
        ("notify test", out),
        ("notify test errors", err),
    ];
    for (what, text) in &texts {
        assert!(
            !text.contains(TOKEN.1),
            "the token is in the {what}:\n{text}"
        );
    }
    assert!(
        s.notifications(None, 10).unwrap().is_empty(),
        "a stream has no outbox rows"
    );
}

#[test]
fn a_listen_address_off_this_machine_or_a_token_in_the_file_is_refused_at_load() {
    for (entry, at, what) in [
        (
            "listen = \"0.0.0.0:9466\"\ntoken = \"${STREAM_TOKEN}\"",
            "15:10",
            "listen 0.0.0.0:9466 is not a loopback address",
        ),
        (
            "listen = \"192.168.1.5:9466\"\ntoken = \"${STREAM_TOKEN}\"",
            "15:10",
            "is not a loopback address",
        ),
        (
            "listen = \"localhost\"\ntoken = \"${STREAM_TOKEN}\"",
            "15:10",
            "is not an address and port",
        ),
        (
            "listen = \"127.0.0.1:9466\"\ntoken = \"t0ken-in-the-file\"",
            "16:9",
            "token is written in the file",
        ),
        (
            "listen = \"127.0.0.1:9466\"",
            "13:8",
            "websocket receiver \"live\" has no `token`",
        ),
        (
            "listen = \"[::1]:9466\"\ntoken = \"${STREAM_TOKEN}\"\nretry_for = \"1h\"",
            "17:13",
            "`retry_for` does not apply to a websocket receiver",
        ),
    ] {
        let text = config_text(
            1,
            &format!("[[notify]]\nname = \"live\"\ntype = \"websocket\"\n{entry}\n"),
        );
        let errors = match config::parse(Path::new("fleet.toml"), &text, &env) {
            Ok(_) => panic!("{entry}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            errors.contains(&format!("fleet.toml:{at}: ")) && errors.contains(what),
            "{entry}: {errors}"
        );
        assert!(!errors.contains("t0ken-in-the-file"), "{errors}");
    }
    let ok = config_text(1, &stream("live", 9466, ""));
    let fleet = config::parse(Path::new("fleet.toml"), &ok, &env).unwrap();
    let live = fleet.receiver("live").unwrap();
    assert_eq!(live.kind.type_name(), "websocket");
    assert_eq!(live.secrets.mask(TOKEN.1), "***");
}
