//! HTTP and TCP probe semantics against real servers bound to 127.0.0.1:0:
//! status lists, body and JSON conditions, a server slower than the
//! timeout, an endless body, a refused port, a reset connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rollguard::condition::Condition;
use rollguard::config::{
    App, DriverKind, Fleet, Health, Host, HttpProbe, HttpTarget, Instance, Probe, ProbeKind,
    StatusRange, Strategy, TcpProbe,
};
use rollguard::model::ErrorKind;
use rollguard::probe::{Prober, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A real HTTP server with a few behaviours chosen by path.
async fn server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut have = Vec::new();
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    have.extend_from_slice(&buf[..n]);
                    let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&have[..end]).to_string();
                    have.drain(..end + 4);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let reply = |status: u16, body: &str| {
                        format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let out = match path.as_str() {
                        "/ok" => reply(
                            200,
                            r#"{"status":"healthy","error_rate":1.5,"checks":[{"ok":true}]}"#,
                        ),
                        "/bad-json" => reply(200, r#"{"status":"degraded","error_rate":9}"#),
                        "/created" => reply(201, "made"),
                        "/teapot" => reply(418, "short and stout"),
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            reply(200, "late")
                        }
                        "/endless" => {
                            let _ = s
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                                .await;
                            let chunk = vec![b'x'; 16 * 1024];
                            // Endless until the client goes away.
                            while s.write_all(&chunk).await.is_ok() {}
                            return;
                        }
                        "/reset" => {
                            // SO_LINGER 0: close sends RST instead of FIN.
                            use std::os::fd::AsRawFd;
                            let l = libc::linger {
                                l_onoff: 1,
                                l_linger: 0,
                            };
                            // SAFETY: setsockopt on our own open socket.
                            unsafe {
                                libc::setsockopt(
                                    s.as_raw_fd(),
                                    libc::SOL_SOCKET,
                                    libc::SO_LINGER,
                                    (&l as *const libc::linger).cast(),
                                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                                );
                            }
                            drop(s);
                            return;
                        }
                        // Not HTTP at all: another protocol's greeting.
                        "/garbage" => {
                            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\nhello\r\n\r\n").await;
                            return;
                        }
                        // The head is cut off after the status line.
                        "/cut-head" => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
                            return;
                        }
                        // The body is shorter than its Content-Length.
                        "/cut-body" => {
                            let _ = s
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":",
                                )
                                .await;
                            return;
                        }
                        // A chunked body whose chunk size is not hex.
                        "/bad-chunk" => {
                            let _ = s
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n",
                                )
                                .await;
                            return;
                        }
                        "/html" => reply(
                            200,
                            "<html>\x1b[31m502 Bad\x07 Gateway\r\n\t</html> and a long tail \
                             that goes on and on well past any excerpt a message should carry",
                        ),
                        "/empty" => reply(200, ""),
                        _ => reply(404, "no"),
                    };
                    if s.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, connections)
}

fn fleet(port: u16) -> Fleet {
    Fleet {
        metrics: None,
        store: None,
        source: "t.toml".into(),
        console: Default::default(),
        hosts: vec![Host {
            name: "local".into(),
            address: "127.0.0.1".into(),
            ssh: None,
        }],
        apps: vec![App {
            name: "web".into(),
            driver: DriverKind::Process,
            strategy: Strategy::Rolling,
            protected: false,
            instances: vec![Instance {
                name: "web-1".into(),
                host: "local".into(),
                port,
                alt_port: None,
            }],
            probes: vec![],
            health: Health::default(),
            ..Default::default()
        }],
    }
}

fn http(path: &str, status: &[(u16, u16)], conditions: &[&str], body: Option<&str>) -> Probe {
    Probe {
        name: "p".into(),
        timeout: Duration::from_millis(700),
        kind: ProbeKind::Http(HttpProbe {
            method: "GET".into(),
            target: HttpTarget::Path {
                scheme: "http".into(),
                path: path.into(),
            },
            headers: vec![],
            expect_status: status
                .iter()
                .map(|&(lo, hi)| StatusRange { lo, hi })
                .collect(),
            body_contains: body.map(String::from),
            conditions: conditions
                .iter()
                .map(|c| Condition::parse(c).unwrap())
                .collect(),
            insecure_tls: false,
        }),
    }
}

async fn run(fleet: &Fleet, probe: &Probe) -> rollguard::model::ProbeResult {
    let prober = Prober::new(fleet).unwrap();
    run_with(&prober, fleet, probe).await
}

async fn run_with(prober: &Prober, fleet: &Fleet, probe: &Probe) -> rollguard::model::ProbeResult {
    let app = &fleet.apps[0];
    let target = Target {
        app,
        instance: &app.instances[0],
        host: &fleet.hosts[0],
        port: app.instances[0].port,
    };
    prober.run(target, probe).await
}

#[tokio::test]
async fn status_lists() {
    let (port, _) = server().await;
    let f = fleet(port);
    let r = run(&f, &http("/ok", &[(200, 200)], &[], None)).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.code, Some(200));
    let r = run(&f, &http("/created", &[(200, 200)], &[], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Status));
    assert_eq!(r.code, Some(201));
    assert!(r.message.contains("expected 200"), "{}", r.message);
    let r = run(&f, &http("/created", &[(200, 200), (201, 204)], &[], None)).await;
    assert!(r.ok, "{r:?}");
    // Default list 200-399 refuses 418.
    let r = run(&f, &http("/teapot", &[(200, 399)], &[], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Status));
    let r = run(&f, &http("/teapot", &[(418, 418)], &[], Some("stout"))).await;
    assert!(r.ok, "{r:?}");
}

#[tokio::test]
async fn body_and_json_conditions() {
    let (port, _) = server().await;
    let f = fleet(port);
    let conds = [
        r#"[BODY].status == "healthy""#,
        "[BODY].error_rate < 5",
        "[BODY].checks[0].ok == true",
        "[RESPONSE_TIME] < 500",
        "[STATUS] == 200",
    ];
    let r = run(&f, &http("/ok", &[(200, 200)], &conds, Some("healthy"))).await;
    assert!(r.ok, "{r:?}");
    let r = run(&f, &http("/bad-json", &[(200, 200)], &conds[..2], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Condition));
    assert!(r.message.contains("\"degraded\""), "{}", r.message);
    let r = run(
        &f,
        &http("/bad-json", &[(200, 200)], &["[BODY].error_rate < 5"], None),
    )
    .await;
    assert_eq!(r.message, "[BODY].error_rate < 5 failed: 9 < 5");
    let r = run(&f, &http("/ok", &[(200, 200)], &[], Some("nope"))).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Body));
}

#[tokio::test]
async fn slower_than_timeout() {
    let (port, _) = server().await;
    let f = fleet(port);
    let started = Instant::now();
    let r = run(&f, &http("/slow", &[(200, 200)], &[], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Timeout), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout must cut the wait"
    );
    assert!(!r.ok);
}

#[tokio::test]
async fn endless_body_is_capped() {
    let (port, _) = server().await;
    let f = fleet(port);
    let r = run(&f, &http("/endless", &[(200, 200)], &[], Some("xxx"))).await;
    assert!(r.ok, "a capped read still judges the first 64 KiB: {r:?}");
    let r = run(
        &f,
        &http("/endless", &[(200, 200)], &[], Some("never there")),
    )
    .await;
    assert_eq!(r.error_kind, Some(ErrorKind::Body));
}

#[tokio::test]
async fn refused_port() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let f = fleet(port);
    let r = run(&f, &http("/ok", &[(200, 200)], &[], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Refused), "{r:?}");
    assert!(r.message.contains("refused"), "{}", r.message);
    let tcp = Probe {
        name: "t".into(),
        timeout: Duration::from_millis(500),
        kind: ProbeKind::Tcp(TcpProbe {
            port: None,
            send: None,
            expect: None,
        }),
    };
    let r = run(&f, &tcp).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Refused), "{r:?}");
}

#[tokio::test]
async fn reset_connection_is_retried_once_then_counts() {
    let (port, connections) = server().await;
    let f = fleet(port);
    let r = run(&f, &http("/reset", &[(200, 200)], &[], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Refused), "{r:?}");
    assert!(r.message.contains("also on retry"), "{}", r.message);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "one attempt and one retry"
    );
}

#[tokio::test]
async fn connections_are_reused() {
    let (port, connections) = server().await;
    let f = fleet(port);
    let prober = Prober::new(&f).unwrap();
    let p = http("/ok", &[(200, 200)], &[], None);
    for _ in 0..5 {
        assert!(run_with(&prober, &f, &p).await.ok);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tcp_send_and_expect() {
    let (port, _) = server().await;
    let f = fleet(port);
    let probe = |expect: &str| Probe {
        name: "t".into(),
        timeout: Duration::from_millis(500),
        kind: ProbeKind::Tcp(TcpProbe {
            port: None,
            send: Some("GET /created HTTP/1.1\r\n\r\n".into()),
            expect: Some(expect.into()),
        }),
    };
    let r = run(&f, &probe("made")).await;
    assert!(r.ok, "{r:?}");
    let r = run(&f, &probe("elsewhere")).await;
    // The server keeps the connection open: no match within the timeout.
    assert!(
        matches!(
            r.error_kind,
            Some(ErrorKind::Timeout) | Some(ErrorKind::Body)
        ),
        "{r:?}"
    );
}

/// The error kinds the README's Probes table lists for a probe type.
fn readme_kinds(probe_type: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| `{probe_type}` |")))
        .unwrap_or_else(|| panic!("README has no Probes row for {probe_type}"));
    let kinds = row.rsplit('|').nth(1).unwrap();
    kinds
        .split_whitespace()
        .map(|k| k.trim_matches('`').to_string())
        .collect()
}

#[tokio::test]
async fn protocol_errors_are_a_listed_http_kind() {
    let (port, connections) = server().await;
    let f = fleet(port);
    let listed = readme_kinds("http");
    for (path, code, says) in [
        ("/garbage", None, "not an HTTP response"),
        ("/cut-body", Some(200), "broke off"),
        ("/bad-chunk", Some(200), "broke off"),
    ] {
        let before = connections.load(Ordering::SeqCst);
        let r = run(&f, &http(path, &[(200, 200)], &[], None)).await;
        assert!(!r.ok, "{path}: {r:?}");
        let kind = r.error_kind.map(|k| k.as_str()).unwrap_or_default();
        assert_eq!(kind, "protocol", "{path}: {r:?}");
        assert!(
            listed.iter().any(|k| k == kind),
            "{path}: `{kind}` is not in the README's http kinds {listed:?}"
        );
        assert_eq!(r.code, code, "{path}: {r:?}");
        assert!(r.message.contains(says), "{path}: {r:?}");
        assert!(!r.message.chars().any(char::is_control), "{path}: {r:?}");
        // A wrong answer counts at once; only refused or reset connections are retried.
        assert_eq!(
            connections.load(Ordering::SeqCst) - before,
            1,
            "{path}: {r:?}"
        );
    }
    // A head cut off mid-way: the server closed the connection before
    // completing its answer, like a reset one (tried once more).
    let r = run(&f, &http("/cut-head", &[(200, 200)], &[], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Refused), "{r:?}");
    assert!(r.message.contains("also on retry"), "{}", r.message);
    let kind = r.error_kind.map(|k| k.as_str()).unwrap_or_default();
    assert!(
        listed.iter().any(|k| k == kind),
        "/cut-head: `{kind}` not in {listed:?}: {r:?}"
    );
}

#[tokio::test]
async fn a_condition_on_a_body_that_is_not_json_says_so() {
    let (port, _) = server().await;
    let f = fleet(port);
    let r = run(
        &f,
        &http("/html", &[(200, 200)], &[r#"[BODY].healthy == true"#], None),
    )
    .await;
    assert_eq!(r.error_kind, Some(ErrorKind::Condition), "{r:?}");
    assert!(r.message.contains("[BODY].healthy"), "{}", r.message);
    assert!(r.message.contains("not JSON"), "{}", r.message);
    assert!(
        r.message.contains("502 Bad"),
        "the excerpt shows the body: {}",
        r.message
    );
    assert!(
        !r.message.contains("goes on and on"),
        "the excerpt is short: {}",
        r.message
    );
    assert!(!r.message.chars().any(char::is_control), "{:?}", r.message);
    assert!(!r.message.contains("missing"), "{}", r.message);

    let r = run(&f, &http("/empty", &[(200, 200)], &["[BODY].n < 5"], None)).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Condition), "{r:?}");
    assert!(r.message.contains("empty"), "{}", r.message);

    // JSON without the field still says the field is missing.
    let r = run(
        &f,
        &http("/ok", &[(200, 200)], &["[BODY].nowhere == 1"], None),
    )
    .await;
    assert_eq!(r.error_kind, Some(ErrorKind::Condition), "{r:?}");
    assert!(r.message.contains("missing"), "{}", r.message);
    assert!(!r.message.contains("not JSON"), "{}", r.message);
}
