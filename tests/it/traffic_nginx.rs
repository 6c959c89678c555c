//! nginx traffic against a real nginx: the upstream file rollguard writes,
//! weights, drains, a refused config put back, a reload that never took
//! effect, and no failed request while traffic switches under load.

use crate::common;

use std::time::{Duration, Instant};

use rollguard::config::{NginxTraffic, Traffic as TrafficConfig};
use rollguard::driver::Side;
use rollguard::traffic::{Routing, Traffic, TrafficError};

use common::lb::{self, Backend, Nginx, routing, server, tally};

struct Setup {
    nginx: Nginx,
    traffic: Traffic,
    fleet: rollguard::config::Fleet,
    execs: rollguard::exec::Executors,
    url: String,
}

impl Setup {
    /// nginx whose upstream first routes to `first` only.
    fn new(test: &str, first: &Backend) -> Option<Setup> {
        let initial = format!("server 127.0.0.1:{};\n", first.port);
        let nginx = Nginx::start(test, &initial)?;
        let spec = NginxTraffic {
            host: "local".into(),
            upstream_file: nginx.upstream.display().to_string(),
            validate: nginx.validate.clone(),
            reload: nginx.reload.clone(),
        };
        Some(Setup::with(nginx, spec))
    }

    fn with(nginx: Nginx, spec: NginxTraffic) -> Setup {
        let config = TrafficConfig::Nginx(spec);
        let traffic = Traffic::new(&config);
        let (fleet, execs) = lb::fleet(config);
        let url = format!("http://127.0.0.1:{}/", nginx.proc.port);
        Setup {
            nginx,
            traffic,
            fleet,
            execs,
            url,
        }
    }

    async fn apply(&self, from: &Routing, to: &Routing) -> Result<(), TrafficError> {
        self.traffic
            .apply(&self.fleet, &self.execs, "web", from, to)
            .await
    }
}

fn two(a: &Backend, wa: Option<u32>, b: &Backend, wb: Option<u32>) -> Routing {
    routing(vec![
        server("a", Side::Main, a.port, wa),
        server("b", Side::Main, b.port, wb),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_moves_traffic_between_servers() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(s) = Setup::new("nginx_moves_traffic_between_servers", &a) else {
        return;
    };
    let c = lb::client(true);

    let a_only = two(&a, Some(100), &b, None);
    s.apply(&Routing::default(), &a_only).await.unwrap();
    let text = s.nginx.upstream_text();
    assert!(
        text.starts_with("# managed by rollguard; do not edit\n# routing: a=100 b=down\n"),
        "{text}"
    );
    assert!(text.contains(&format!("server 127.0.0.1:{} weight=100;", a.port)));
    assert!(text.contains(&format!("server 127.0.0.1:{} down;", b.port)));
    let t = tally(&c, &s.url, 20).await;
    assert_eq!((t.from("A"), t.failed.len()), (20, 0), "{t:?}");

    let both = two(&a, Some(100), &b, Some(100));
    s.apply(&a_only, &both).await.unwrap();
    let t = tally(&c, &s.url, 40).await;
    assert!(
        t.from("A") > 5 && t.from("B") > 5 && t.failed.is_empty(),
        "{t:?}"
    );

    let b_only = two(&a, None, &b, Some(100));
    s.apply(&both, &b_only).await.unwrap();
    assert!(
        s.nginx
            .upstream_text()
            .contains(&format!("server 127.0.0.1:{} down;", a.port))
    );
    let t = tally(&c, &s.url, 20).await;
    assert_eq!((t.from("B"), t.failed.len()), (20, 0), "{t:?}");

    // Every server down: nginx accepts it, requests get 502.
    let none = two(&a, None, &b, None);
    s.apply(&b_only, &none).await.unwrap();
    let t = tally(&c, &s.url, 3).await;
    assert_eq!(t.failed.len(), 3, "{t:?}");
    assert!(t.failed[0].contains("502"), "{t:?}");

    // An empty routing is refused before anything is written.
    let before = s.nginx.upstream_text();
    let err = s.apply(&none, &Routing::default()).await.unwrap_err();
    assert!(err.to_string().contains("no servers"), "{err}");
    assert_eq!(s.nginx.upstream_text(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_weights_split_traffic() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(s) = Setup::new("nginx_canary_weights_split_traffic", &a) else {
        return;
    };
    let canary = two(&a, Some(90), &b, Some(10));
    s.apply(&Routing::default(), &canary).await.unwrap();
    assert!(
        s.nginx
            .upstream_text()
            .contains(&format!("server 127.0.0.1:{} weight=10;", b.port))
    );
    let t = tally(&lb::client(true), &s.url, 200).await;
    assert!(t.failed.is_empty(), "{t:?}");
    assert!(
        (5..=45).contains(&t.from("B")) && t.from("A") >= 155,
        "90/10 split looks wrong: {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_refused_config_is_put_back() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(s) = Setup::new("nginx_refused_config_is_put_back", &a) else {
        return;
    };
    let a_only = two(&a, Some(100), &b, None);
    s.apply(&Routing::default(), &a_only).await.unwrap();
    let good = s.nginx.upstream_text();

    // nginx itself refuses the file: port 0 is not a valid upstream port.
    let bad = routing(vec![
        server("a", Side::Main, a.port, None),
        server("b", Side::Main, 0, Some(100)),
    ]);
    match s.apply(&a_only, &bad).await {
        Err(TrafficError::Invalid(msg)) => {
            assert!(msg.contains("port") || msg.contains("emerg"), "{msg}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(s.nginx.upstream_text(), good);
    let t = tally(&lb::client(true), &s.url, 10).await;
    assert_eq!((t.from("A"), t.failed.len()), (10, 0), "{t:?}");

    // A validate command that fails: same, and its message comes back.
    let mut spec = NginxTraffic {
        host: "local".into(),
        upstream_file: s.nginx.upstream.display().to_string(),
        validate: "echo 'nginx: [emerg] pretend failure' >&2; false".into(),
        reload: s.nginx.reload.clone(),
    };
    let s2 = Setup::with_spec(&s, spec.clone());
    let to_b = two(&a, None, &b, Some(100));
    match s2.apply(&a_only, &to_b).await {
        Err(TrafficError::Invalid(msg)) => assert!(msg.contains("pretend failure"), "{msg}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(s.nginx.upstream_text(), good);

    // A reload that fails: the file is put back too.
    spec.validate = s.nginx.validate.clone();
    spec.reload = "echo reload broke >&2; exit 2".into();
    let s3 = Setup::with_spec(&s, spec);
    let err = s3.apply(&a_only, &to_b).await.unwrap_err().to_string();
    assert!(err.contains("reload broke"), "{err}");
    assert_eq!(s.nginx.upstream_text(), good);
    let t = tally(&lb::client(true), &s.url, 10).await;
    assert_eq!((t.from("A"), t.failed.len()), (10, 0), "{t:?}");
}

impl Setup {
    /// Another mover on the same nginx with a different spec.
    fn with_spec(&self, spec: NginxTraffic) -> Setup2 {
        let config = TrafficConfig::Nginx(spec);
        Setup2 {
            traffic: Traffic::new(&config),
            fleet: lb::fleet(config).0,
            execs: self.execs.clone(),
        }
    }
}

struct Setup2 {
    traffic: Traffic,
    fleet: rollguard::config::Fleet,
    execs: rollguard::exec::Executors,
}

impl Setup2 {
    async fn apply(&self, from: &Routing, to: &Routing) -> Result<(), TrafficError> {
        self.traffic
            .apply(&self.fleet, &self.execs, "web", from, to)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_reload_that_never_happens_is_an_error() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(s) = Setup::new("nginx_reload_that_never_happens_is_an_error", &a) else {
        return;
    };
    let a_only = two(&a, Some(100), &b, None);
    s.apply(&Routing::default(), &a_only).await.unwrap();
    let good = s.nginx.upstream_text();
    // `true` exits 0 but never signals nginx: the old workers keep running.
    let spec = NginxTraffic {
        host: "local".into(),
        upstream_file: s.nginx.upstream.display().to_string(),
        validate: s.nginx.validate.clone(),
        reload: "true".into(),
    };
    let s2 = s.with_spec(spec);
    let started = Instant::now();
    let err = s2
        .apply(&a_only, &two(&a, None, &b, Some(100)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not start new workers"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(s.nginx.upstream_text(), good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_drain_waits_for_in_flight_request() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(s) = Setup::new("nginx_drain_waits_for_in_flight_request", &a) else {
        return;
    };
    let a_only = two(&a, Some(100), &b, None);
    s.apply(&Routing::default(), &a_only).await.unwrap();

    let slow_url = format!("{}slow", s.url);
    let slow_client = lb::client(true);
    let slow = tokio::spawn(async move { lb::get(&slow_client, &slow_url).await });
    a.wait_seen(1).await;
    let started = Instant::now();
    s.apply(&a_only, &two(&a, None, &b, Some(100)))
        .await
        .unwrap();
    let took = started.elapsed();
    // The old worker held the slow request to A: apply waited for it.
    assert_eq!(
        a.hits(),
        1,
        "apply returned before A answered the in-flight request (took {took:?})\n{}",
        s.nginx.proc.log()
    );
    a.stop();
    assert_eq!(slow.await.unwrap().as_deref(), Ok("A"));
    assert!(
        took >= Duration::from_millis(600),
        "apply took only {took:?}"
    );
    let t = tally(&lb::client(true), &s.url, 10).await;
    assert_eq!((t.from("B"), t.failed.len()), (10, 0), "{t:?}");
    assert_eq!(a.late(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_switch_under_load_loses_no_request() {
    let (a, b, c) = (
        Backend::start("A").await,
        Backend::start("B").await,
        Backend::start("C").await,
    );
    let Some(s) = Setup::new("nginx_switch_under_load_loses_no_request", &a) else {
        return;
    };
    lb::switch_under_load(
        "nginx",
        [&a, &b, &c],
        async |from, to| s.apply(from, to).await.unwrap(),
        &s.url,
        // Fresh connections: each reload starts new workers.
        true,
        || s.nginx.proc.log(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_over_ssh_moves_traffic() {
    let (a, b) = (Backend::start("A").await, Backend::start("B").await);
    let Some(sshd) = common::sshd::Sshd::start("nginx_over_ssh_moves_traffic") else {
        return;
    };
    let initial = format!("server 127.0.0.1:{};\n", a.port);
    let Some(nginx) = Nginx::start("nginx_over_ssh_moves_traffic", &initial) else {
        return;
    };
    // The "remote" traffic host is this machine reached through sshd.
    let config = TrafficConfig::Nginx(NginxTraffic {
        host: "edge".into(),
        upstream_file: nginx.upstream.display().to_string(),
        validate: nginx.validate.clone(),
        reload: nginx.reload.clone(),
    });
    let (mut fleet, _) = lb::fleet(config.clone());
    fleet.hosts.push(rollguard::config::Host {
        name: "edge".into(),
        address: "127.0.0.1".into(),
        ssh: Some(sshd.ssh()),
    });
    let execs = rollguard::exec::Executors::new(&fleet.hosts);
    let traffic = Traffic::new(&config);
    let url = format!("http://127.0.0.1:{}/", nginx.proc.port);

    let a_only = two(&a, Some(100), &b, None);
    traffic
        .apply(&fleet, &execs, "web", &Routing::default(), &a_only)
        .await
        .unwrap();
    let b_only = two(&a, None, &b, Some(100));
    traffic
        .apply(&fleet, &execs, "web", &a_only, &b_only)
        .await
        .unwrap();
    assert!(
        nginx
            .upstream_text()
            .contains(&format!("server 127.0.0.1:{} down;", a.port))
    );
    let t = tally(&lb::client(true), &url, 10).await;
    assert_eq!((t.from("B"), t.failed.len()), (10, 0), "{t:?}");

    // A refused file over SSH is put back too.
    let bad = routing(vec![server("a", Side::Main, 0, Some(1))]);
    let before = nginx.upstream_text();
    match traffic.apply(&fleet, &execs, "web", &b_only, &bad).await {
        Err(TrafficError::Invalid(msg)) => assert!(msg.contains("invalid port"), "{msg}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(nginx.upstream_text(), before);
    execs.close().await;
}
