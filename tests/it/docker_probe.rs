//! The docker probe against a real dockerd and a real container built
//! `FROM scratch`: it sees starting, healthy, unhealthy and stopped.

use crate::common;

use std::time::{Duration, Instant};

use common::docker::{build_image, docker, docker_quiet};
use rollguard::config::{
    App, DockerProbe, DriverKind, Fleet, Health, Host, Instance, Probe, ProbeKind, Strategy,
};
use rollguard::model::{ErrorKind, ProbeResult};
use rollguard::probe::{Prober, Target};

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /busybox
HEALTHCHECK --interval=1s --timeout=1s --start-period=60s --retries=1 CMD ["/busybox", "test", "-f", "/tmp/healthy"]
CMD ["/busybox", "sh", "-c", "/busybox mkdir -p /tmp; /busybox sleep 3; /busybox touch /tmp/healthy; exec /busybox sleep 100000"]
"#;

fn fleet(instance: &str) -> Fleet {
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
            name: "rgtest".into(),
            driver: DriverKind::Docker,
            strategy: Strategy::Rolling,
            protected: false,
            instances: vec![Instance {
                name: instance.into(),
                host: "local".into(),
                port: 8080,
                alt_port: None,
            }],
            probes: vec![Probe {
                name: "container".into(),
                timeout: Duration::from_secs(10),
                kind: ProbeKind::Docker(DockerProbe {
                    container: "{app}-{instance}".into(),
                }),
            }],
            health: Health::default(),
            ..Default::default()
        }],
    }
}

async fn probe(prober: &Prober, f: &Fleet) -> ProbeResult {
    let app = &f.apps[0];
    let target = Target {
        app,
        instance: &app.instances[0],
        host: &f.hosts[0],
        port: 8080,
    };
    prober.run(target, &app.probes[0]).await
}

/// Probes until `pred` holds or `limit` passes; returns the last result.
async fn until(
    prober: &Prober,
    f: &Fleet,
    limit: Duration,
    pred: impl Fn(&ProbeResult) -> bool,
) -> ProbeResult {
    let end = Instant::now() + limit;
    loop {
        let r = probe(prober, f).await;
        if pred(&r) || Instant::now() > end {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Container(String);
impl Drop for Container {
    fn drop(&mut self) {
        docker_quiet(&["rm", "-f", &self.0]);
    }
}

#[tokio::test]
async fn docker_probe_sees_every_state() {
    let test = "docker_probe_sees_every_state";
    if !common::docker::available(test) {
        return;
    }
    if build_image(test, "rollguard-test/health:1", DOCKERFILE).is_none() {
        return;
    }
    let instance = format!("i{}", std::process::id());
    let name = format!("rgtest-{instance}");
    let f = fleet(&instance);
    let prober = Prober::new(&f).unwrap();

    // No such container yet.
    let r = probe(&prober, &f).await;
    assert_eq!(r.error_kind, Some(ErrorKind::NotRunning), "{r:?}");
    assert!(r.message.contains("no container"), "{}", r.message);

    docker_quiet(&["rm", "-f", &name]);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "rollguard-test/health:1",
    ]);
    let _guard = Container(name.clone());

    // Starting: running, health check not yet passed.
    let r = probe(&prober, &f).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Unhealthy), "{r:?}");
    assert!(r.message.contains("starting"), "{}", r.message);

    // Healthy once the file appears.
    let r = until(&prober, &f, Duration::from_secs(20), |r| r.ok).await;
    assert!(r.ok, "never became healthy: {r:?}");
    assert!(r.message.contains("healthy"), "{}", r.message);

    // Unhealthy when the health check starts failing.
    docker(&["exec", &name, "/busybox", "rm", "/tmp/healthy"]);
    let r = until(&prober, &f, Duration::from_secs(20), |r| !r.ok).await;
    assert_eq!(r.error_kind, Some(ErrorKind::Unhealthy), "{r:?}");
    assert!(r.message.contains("unhealthy"), "{}", r.message);

    // Stopped.
    docker(&["stop", "-t", "1", &name]);
    let r = probe(&prober, &f).await;
    assert_eq!(r.error_kind, Some(ErrorKind::NotRunning), "{r:?}");
    assert!(r.message.contains("exited"), "{}", r.message);
}
