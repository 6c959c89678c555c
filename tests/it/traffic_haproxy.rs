//! HAProxy traffic against a real HAProxy and its admin socket: weights,
//! readying servers left in maintenance by the config, drains that wait for
//! in-flight requests, clear errors for unknown names, and no failed
//! request while traffic switches under load.

use crate::common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rollguard::config::{HaproxyTraffic, Traffic as TrafficConfig};
use rollguard::driver::Side;
use rollguard::traffic::{Routing, Traffic, TrafficError};

use common::lb::{self, Backend, Haproxy, routing, server, tally};

struct Setup {
    haproxy: Haproxy,
    traffic: Traffic,
    fleet: rollguard::config::Fleet,
    execs: rollguard::exec::Executors,
    url: String,
}

impl Setup {
    fn new(test: &str, servers: &[(&str, u16, bool)], drain_timeout: Duration) -> Option<Setup> {
        let haproxy = Haproxy::start(test, servers)?;
        let config = TrafficConfig::Haproxy(HaproxyTraffic {
            host: "local".into(),
            socket: haproxy.socket.display().to_string(),
            backend: "app".into(),
            drain_timeout,
        });
        let traffic = Traffic::new(&config);
        let (fleet, execs) = lb::fleet(config);
        let url = format!("http://127.0.0.1:{}/", haproxy.proc.port);
        Some(Setup {
            haproxy,
            traffic,
            fleet,
            execs,
            url,
        })
    }

    async fn apply(&self, from: &Routing, to: &Routing) -> Result<(), TrafficError> {
        self.traffic
            .apply(&self.fleet, &self.execs, "web", from, to)
            .await
    }

    /// One admin socket command, straight.
    fn admin(&self, cmd: &str) -> String {
        let mut s = std::os::unix::net::UnixStream::connect(&self.haproxy.socket).unwrap();
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// `(srv_op_state, srv_admin_state, srv_uweight, srv_port)` of a server.
    fn state(&self, name: &str) -> (u32, u32, u32, u16) {
        let text = self.admin("show servers state app");
        let mut lines = text.lines().skip(1);
        let header: Vec<&str> = lines
            .next()
            .unwrap()
            .trim_start_matches('#')
            .split_whitespace()
            .collect();
        let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(col("srv_name")) == Some(&name) {
                return (
                    f[col("srv_op_state")].parse().unwrap(),
                    f[col("srv_admin_state")].parse().unwrap(),
                    f[col("srv_uweight")].parse().unwrap(),
                    f[col("srv_port")].parse().unwrap(),
                );
            }
        }
        panic!("no server {name} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_weights_states_and_addresses() {
    let (a, a2, b) = (
        Backend::start("A").await,
        Backend::start("A-alt").await,
        Backend::start("B").await,
    );
    // a-alt starts in maintenance with a wrong port: apply sets the address.
    let servers = [
        ("a", a.port, true),
        ("a-alt", 1, false),
        ("b", b.port, false),
    ];
    let Some(s) = Setup::new(
        "haproxy_weights_states_and_addresses",
        &servers,
        Duration::from_secs(10),
    ) else {
        return;
    };
    let c = lb::client(false);
    let r = |wa, walt, wb| {
        routing(vec![
            server("a", Side::Main, a.port, wa),
            server("b", Side::Main, b.port, wb),
            server("a", Side::Alt, a2.port, walt),
        ])
    };

    let a_only = r(Some(100), None, None);
    s.apply(&Routing::default(), &a_only).await.unwrap();
    assert_eq!(s.state("a").0, 2);
    assert_eq!(s.state("b").1 & 1, 1, "b in forced maintenance");
    let t = tally(&c, &s.url, 20).await;
    assert_eq!((t.from("A"), t.failed.len()), (20, 0), "{t:?}");

    let canary = r(Some(90), None, Some(10));
    s.apply(&a_only, &canary).await.unwrap();
    assert_eq!(s.state("a").2, 90);
    assert_eq!(s.state("b").2, 10);
    let t = tally(&c, &s.url, 200).await;
    assert!(t.failed.is_empty(), "{t:?}");
    assert!(
        (10..=30).contains(&t.from("B")) && t.from("A") >= 170,
        "90/10 split looks wrong: {t:?}"
    );

    // Blue-green: everything to a-alt, which was disabled on port 1.
    let alt = r(None, Some(100), None);
    s.apply(&canary, &alt).await.unwrap();
    let (op, admin, _, port) = s.state("a-alt");
    assert_eq!((op, admin & 1, port), (2, 0, a2.port));
    assert_eq!(s.state("a").1 & 1, 1, "a in maintenance");
    assert_eq!(s.state("b").1 & 1, 1, "b in maintenance");
    let t = tally(&c, &s.url, 20).await;
    assert_eq!((t.from("A-alt"), t.failed.len()), (20, 0), "{t:?}");

    // Applying the same routing again changes nothing and is quick.
    let started = Instant::now();
    s.apply(&alt, &alt).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let t = tally(&c, &s.url, 5).await;
    assert_eq!(t.from("A-alt"), 5, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_drain_waits_for_in_flight_request() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let servers = [("a", a.port, true), ("b", b.port, false)];
    let Some(s) = Setup::new(
        "haproxy_drain_waits_for_in_flight_request",
        &servers,
        Duration::from_secs(10),
    ) else {
        return;
    };
    let a_only = routing(vec![
        server("a", Side::Main, a.port, Some(100)),
        server("b", Side::Main, b.port, None),
    ]);
    s.apply(&Routing::default(), &a_only).await.unwrap();

    let slow_url = format!("{}slow", s.url);
    let slow_client = lb::client(true);
    let slow = tokio::spawn(async move { lb::get(&slow_client, &slow_url).await });
    a.wait_seen(1).await;
    let started = Instant::now();
    let b_only = routing(vec![
        server("a", Side::Main, a.port, None),
        server("b", Side::Main, b.port, Some(100)),
    ]);
    s.apply(&a_only, &b_only).await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        a.hits(),
        1,
        "apply returned before A answered (took {took:?})"
    );
    assert!(
        took >= Duration::from_millis(600),
        "apply took only {took:?}"
    );
    a.stop();
    assert_eq!(slow.await.unwrap().as_deref(), Ok("A"));
    assert_eq!(s.state("a").1 & 1, 1, "a ends in maintenance");
    let t = tally(&lb::client(false), &s.url, 10).await;
    assert_eq!((t.from("B"), t.failed.len()), (10, 0), "{t:?}");
    assert_eq!(a.late(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_drain_gives_up_after_drain_timeout() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let servers = [("a", a.port, true), ("b", b.port, true)];
    let Some(s) = Setup::new(
        "haproxy_drain_gives_up_after_drain_timeout",
        &servers,
        Duration::from_millis(300),
    ) else {
        return;
    };
    let a_only = routing(vec![
        server("a", Side::Main, a.port, Some(100)),
        server("b", Side::Main, b.port, None),
    ]);
    s.apply(&Routing::default(), &a_only).await.unwrap();
    let slow_url = format!("{}slow", s.url);
    let slow_client = lb::client(true);
    let slow = tokio::spawn(async move { lb::get(&slow_client, &slow_url).await });
    a.wait_seen(1).await;
    let started = Instant::now();
    let b_only = routing(vec![
        server("a", Side::Main, a.port, None),
        server("b", Side::Main, b.port, Some(100)),
    ]);
    s.apply(&a_only, &b_only).await.unwrap();
    let took = started.elapsed();
    // It waited about drain_timeout, not for the request to end.
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert_eq!(a.hits(), 0, "apply waited for the slow request ({took:?})");
    assert_eq!(s.state("a").1 & 1, 1, "a in maintenance after the timeout");
    // Maintenance does not cut the session: the slow request still ends well.
    assert_eq!(slow.await.unwrap().as_deref(), Ok("A"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_unknown_names_are_clear_errors() {
    let a = Backend::start("A").await;
    let servers = [("a", a.port, true)];
    let Some(s) = Setup::new(
        "haproxy_unknown_names_are_clear_errors",
        &servers,
        Duration::from_secs(5),
    ) else {
        return;
    };
    let to = routing(vec![
        server("a", Side::Main, a.port, None),
        server("zzz", Side::Main, a.port, Some(100)),
    ]);
    let err = s
        .apply(&Routing::default(), &to)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("app/zzz") && err.contains("No such server") && err.contains("it has: a"),
        "{err}"
    );
    // Nothing was changed: a still takes traffic.
    assert_eq!(s.state("a").1, 0);
    let t = tally(&lb::client(false), &s.url, 5).await;
    assert_eq!(t.from("A"), 5, "{t:?}");

    // A wrong backend.
    let config = TrafficConfig::Haproxy(HaproxyTraffic {
        host: "local".into(),
        socket: s.haproxy.socket.display().to_string(),
        backend: "nope".into(),
        drain_timeout: Duration::from_secs(1),
    });
    let (fleet, execs) = lb::fleet(config.clone());
    let err = Traffic::new(&config)
        .apply(&fleet, &execs, "web", &Routing::default(), &to)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("show servers state nope"), "{err}");

    // A socket that does not exist.
    let config = TrafficConfig::Haproxy(HaproxyTraffic {
        host: "local".into(),
        socket: s
            .haproxy
            .proc
            .dir
            .join("missing.sock")
            .display()
            .to_string(),
        backend: "app".into(),
        drain_timeout: Duration::from_secs(1),
    });
    let err = Traffic::new(&config)
        .apply(&fleet, &execs, "web", &Routing::default(), &to)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.sock"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_switch_under_load_loses_no_request() {
    let (a, b, c) = (
        Backend::start("A").await,
        Backend::start("B").await,
        Backend::start("C").await,
    );
    let servers = [
        ("a", a.port, true),
        ("b", b.port, false),
        ("c", c.port, false),
    ];
    let Some(s) = Setup::new(
        "haproxy_switch_under_load_loses_no_request",
        &servers,
        Duration::from_secs(10),
    ) else {
        return;
    };
    lb::switch_under_load(
        "haproxy",
        [&a, &b, &c],
        async |from, to| s.apply(from, to).await.unwrap(),
        &s.url,
        // Keep-alive clients: HAProxy does not restart, connections stay.
        false,
        || s.haproxy.proc.log(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_over_ssh_drains_and_reports_errors() {
    let test = "haproxy_over_ssh_drains_and_reports_errors";
    if common::program(test, "socat").is_none() {
        return;
    }
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(sshd) = common::sshd::Sshd::start(test) else {
        return;
    };
    let servers = [("a", a.port, true), ("b", b.port, false)];
    let Some(hap) = Haproxy::start(test, &servers) else {
        return;
    };
    // The "remote" HAProxy host is this machine reached through sshd.
    let config = TrafficConfig::Haproxy(HaproxyTraffic {
        host: "edge".into(),
        socket: hap.socket.display().to_string(),
        backend: "app".into(),
        drain_timeout: Duration::from_secs(10),
    });
    let (mut fleet, _) = lb::fleet(config.clone());
    fleet.hosts.push(rollguard::config::Host {
        name: "edge".into(),
        address: "127.0.0.1".into(),
        ssh: Some(sshd.ssh()),
    });
    let execs = rollguard::exec::Executors::new(&fleet.hosts);
    let traffic = Traffic::new(&config);
    let url = format!("http://127.0.0.1:{}/", hap.proc.port);
    let r = |wa, wb| {
        routing(vec![
            server("a", Side::Main, a.port, wa),
            server("b", Side::Main, b.port, wb),
        ])
    };

    traffic
        .apply(
            &fleet,
            &execs,
            "web",
            &Routing::default(),
            &r(Some(100), None),
        )
        .await
        .unwrap();
    let slow_url = format!("{url}slow");
    let slow_client = lb::client(true);
    let slow = tokio::spawn(async move { lb::get(&slow_client, &slow_url).await });
    a.wait_seen(1).await;
    traffic
        .apply(
            &fleet,
            &execs,
            "web",
            &r(Some(100), None),
            &r(None, Some(100)),
        )
        .await
        .unwrap();
    assert_eq!(a.hits(), 1, "apply returned before A answered");
    assert_eq!(slow.await.unwrap().as_deref(), Ok("A"));
    let t = tally(&lb::client(false), &url, 10).await;
    assert_eq!((t.from("B"), t.failed.len()), (10, 0), "{t:?}");

    let bad = routing(vec![server("zzz", Side::Alt, 1, Some(1))]);
    let err = traffic
        .apply(&fleet, &execs, "web", &Routing::default(), &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("app/zzz-alt") && err.contains("No such server"),
        "{err}"
    );
    execs.close().await;
}
