//! The docker driver against a real dockerd, with small images built
//! `FROM scratch` around a static busybox whose `httpd` serves a page
//! holding the version. Every test uses its own image repository and app
//! name, and a guard removes every container and image it made.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::docker::{
    available, build_image_with_files, docker, docker_quiet, docker_try, image_lock,
};
use common::free_port;
use rollguard::config::{App, DockerSpec, DriverKind, Host, Instance};
use rollguard::driver::docker::Docker;
use rollguard::driver::{DriverError, Side, Slot, Snapshot};
use rollguard::exec::Executor;
use rollguard::model::Version;

/// The test image: `httpd` on 8080 serving `/www/index.html` = the version,
/// with an image-level env and label whose value is `default`. The `test`
/// label keeps image IDs apart between tests (same content, same ID).
fn dockerfile(test: &str, default: &str) -> String {
    format!(
        r#"FROM scratch
COPY busybox /busybox
COPY www /www
ENV IMAGE_DEFAULT={default}
LABEL img={default} test={test}
CMD ["/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
"#
    )
}

/// Everything one test needs; removes what it made on drop.
struct Fixture {
    test: String,
    repo: String,
    app: App,
    host: Host,
    exec: Executor,
}

impl Fixture {
    /// Builds `{repo}:v1` and `{repo}:v2` and an app with one instance
    /// (main and alt port) whose docker spec has `keep` and `args`.
    fn new(test: &str, keep: u32, args: &[&str]) -> Option<Fixture> {
        if !available(test) {
            return None;
        }
        let tag = test.replace('_', "-");
        let repo = format!("rollguard-test/web-{tag}");
        let app_name = format!("rgt-{tag}");
        let host = Host {
            name: "local".into(),
            address: "127.0.0.1".into(),
            ssh: None,
        };
        let app = App {
            name: app_name,
            driver: DriverKind::Docker,
            instances: vec![Instance {
                name: "a".into(),
                host: "local".into(),
                port: free_port(),
                alt_port: Some(free_port()),
            }],
            docker: Some(DockerSpec {
                image: repo.clone(),
                container: "{app}-{instance}".into(),
                port: Some(8080),
                args: args.iter().map(|s| s.to_string()).collect(),
                keep,
                stop_timeout: Duration::from_secs(1),
            }),
            ..Default::default()
        };
        let exec = Executor::for_host(&host);
        let f = Fixture {
            test: test.into(),
            repo,
            app,
            host,
            exec,
        };
        f.cleanup();
        f.build("v1", "1")?;
        f.build("v2", "2")?;
        Some(f)
    }

    /// Builds `{repo}:{version}` with `IMAGE_DEFAULT={default}`.
    fn build(&self, version: &str, default: &str) -> Option<()> {
        build_image_with_files(
            &self.test,
            &format!("{}:{version}", self.repo),
            &dockerfile(&self.test, default),
            &[("www/index.html", &format!("{version}\n"))],
        )
    }

    fn driver(&self) -> Docker {
        Docker::new(self.app.docker.clone().unwrap())
    }

    fn slot(&self, side: Side) -> Slot<'_> {
        Slot {
            app: &self.app,
            instance: &self.app.instances[0],
            host: &self.host,
            side,
        }
    }

    fn main(&self) -> Slot<'_> {
        self.slot(Side::Main)
    }

    /// The main side's container name.
    fn name(&self) -> String {
        format!("{}-a", self.app.name)
    }

    fn port(&self) -> u16 {
        self.app.instances[0].port
    }

    /// `docker inspect -f FORMAT target`.
    fn inspect(&self, target: &str, format: &str) -> String {
        docker(&["inspect", "-f", format, target])
    }

    /// Kept containers of the main name: (name, id), oldest first.
    fn kept(&self) -> Vec<(String, String)> {
        let out = docker(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("name=^/{}--rg-", self.name()),
            "--format",
            "{{.Names}} {{.ID}}",
        ]);
        let mut v: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect();
        v.sort_by_key(|(n, _)| n.rsplit('-').next().unwrap().parse::<i64>().unwrap());
        v
    }

    /// Removes every container of the app and the test's images.
    fn cleanup(&self) {
        for filter in [
            format!("name=^/{}-", self.app.name),
            format!("label=rollguard.app={}", self.app.name),
        ] {
            if let Some(ids) = docker_try(&["ps", "-aq", "--filter", &filter]) {
                for id in ids.lines() {
                    docker_quiet(&["rm", "-f", id]);
                }
            }
        }
        // By tag, never by ID: an ID may be shared with another test's tag.
        let _one_at_a_time = image_lock();
        let format = "{{.Repository}}:{{.Tag}}";
        if let Some(tags) = docker_try(&["images", "--format", format, &self.repo]) {
            for tag in tags.lines().filter(|t| !t.ends_with(":<none>")) {
                docker_quiet(&["rmi", tag]);
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// One HTTP GET of `/` on 127.0.0.1:`port`; the body.
fn http_get(port: u16) -> Option<String> {
    let addr = ("127.0.0.1", port);
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}

/// Waits until `/` on `port` answers `expect`; panics with the last answer.
async fn answers(port: u16, expect: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < end {
        last = tokio::task::spawn_blocking(move || http_get(port))
            .await
            .unwrap();
        if last.as_deref() == Some(expect) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("port {port}: expected {expect:?}, last answer {last:?}");
}

/// Whether nothing answers on `port`.
fn silent(port: u16) -> bool {
    http_get(port).is_none()
}

fn env_of(target: &str) -> Vec<String> {
    serde_json::from_str(&docker(&["inspect", "-f", "{{json .Config.Env}}", target])).unwrap()
}

fn set_env(s: &Snapshot) -> Vec<String> {
    strings(&s.data["set"]["env"])
}

fn inherited_env(s: &Snapshot) -> Vec<String> {
    strings(&s.data["inherited"]["env"])
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn start_on_empty_slot_runs_the_version_and_stop_keeps_it() {
    let Some(f) = Fixture::new("start_empty", 3, &[]) else {
        return;
    };
    let d = f.driver();
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), None);
    assert!(d.snapshot(&f.exec, f.main()).await.unwrap().is_none());

    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v1")));
    answers(f.port(), "v1").await;
    let name = f.name();
    assert_eq!(
        f.inspect(&name, "{{.Config.Image}}"),
        format!("{}:v1", f.repo)
    );
    let labels: serde_json::Value =
        serde_json::from_str(&f.inspect(&name, "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["rollguard.app"], f.app.name.as_str());
    assert_eq!(labels["rollguard.instance"], "a");
    assert_eq!(labels["rollguard.side"], "main");
    assert_eq!(labels["rollguard.version"], "v1");
    assert!(f.kept().is_empty());

    // The alt side is its own container, `-alt`, on the alt port.
    d.start(&f.exec, f.slot(Side::Alt), &v("v2")).await.unwrap();
    let alt_port = f.app.instances[0].alt_port.unwrap();
    answers(alt_port, "v2").await;
    assert_eq!(
        f.inspect(
            &format!("{name}-alt"),
            "{{index .Config.Labels \"rollguard.side\"}}"
        ),
        "alt"
    );
    answers(f.port(), "v1").await;
    assert_eq!(
        d.current(&f.exec, f.slot(Side::Alt)).await.unwrap(),
        Some(v("v2"))
    );

    // stop: not running any more, but kept.
    d.stop(&f.exec, f.main()).await.unwrap();
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), None);
    assert_eq!(f.inspect(&name, "{{.State.Running}}"), "false");
    assert!(silent(f.port()));
    // A snapshot of a stopped container still exists and says so; it runs
    // no release.
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    assert_eq!(snap.data["running"], false);
    assert_eq!(snap.version, None, "a stopped container runs nothing");
    // Stopping again, or an empty slot, is fine.
    d.stop(&f.exec, f.main()).await.unwrap();
    docker(&["rm", &name]);
    d.stop(&f.exec, f.main()).await.unwrap();
}

#[tokio::test]
async fn snapshot_separates_container_set_from_image_defaults() {
    let Some(f) = Fixture::new("snapshot_split", 3, &["--env", "USER_SET=1"]) else {
        return;
    };
    let d = f.driver();
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    assert_eq!(snap.driver, "docker");
    assert_eq!(snap.version, Some(v("v1")));
    let data = &snap.data;
    assert_eq!(data["format"], 1);
    assert_eq!(data["name"], f.name().as_str());
    assert_eq!(data["running"], true);
    assert_eq!(
        data["container_id"].as_str().unwrap(),
        f.inspect(&f.name(), "{{.Id}}")
    );
    assert_eq!(
        data["image_id"].as_str().unwrap(),
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}}",
            &format!("{}:v1", f.repo)
        ])
    );
    assert_eq!(data["image_ref"], format!("{}:v1", f.repo).as_str());

    assert_eq!(set_env(&snap), vec!["USER_SET=1"]);
    let inherited = inherited_env(&snap);
    assert!(
        inherited.contains(&"IMAGE_DEFAULT=1".to_string()),
        "{inherited:?}"
    );
    assert!(
        inherited.iter().any(|e| e.starts_with("PATH=")),
        "{inherited:?}"
    );
    assert_eq!(data["inherited"]["labels"]["img"], "1");
    assert!(data["set"]["labels"].get("img").is_none());
    assert_eq!(data["set"]["labels"]["rollguard.version"], "v1");
    assert_eq!(data["set"]["cmd"], serde_json::Value::Null);
    assert_eq!(data["inherited"]["cmd"][1], "httpd");
    assert_eq!(data["port_bindings"][0]["container_port"], "8080/tcp");
    assert_eq!(
        data["port_bindings"][0]["host_port"],
        f.port().to_string().as_str()
    );
    assert_eq!(data["networks"][0]["name"], "bridge");
    assert_eq!(data["restart_policy"]["name"], "no");
}

#[tokio::test]
async fn start_keeps_the_old_container_and_restore_restarts_that_same_container() {
    let Some(f) = Fixture::new("fast_restore", 3, &[]) else {
        return;
    };
    let d = f.driver();
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    answers(f.port(), "v1").await;
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    let v1_id = snap.data["container_id"].as_str().unwrap().to_string();

    d.start(&f.exec, f.main(), &v("v2")).await.unwrap();
    answers(f.port(), "v2").await;
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v2")));
    let kept = f.kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, v1_id);
    assert_eq!(f.inspect(&v1_id, "{{.State.Running}}"), "false");
    let v2_id = f.inspect(&f.name(), "{{.Id}}");
    assert_ne!(v2_id, v1_id);

    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    assert_eq!(f.inspect(&f.name(), "{{.Id}}"), v1_id, "the same container");
    answers(f.port(), "v1").await;
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v1")));
    // The replaced v2 container is kept (stopped) for its logs.
    let kept = f.kept();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, v2_id);
    assert_eq!(f.inspect(&v2_id, "{{.State.Running}}"), "false");

    // Restoring again when it already runs is harmless.
    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    assert_eq!(f.inspect(&f.name(), "{{.Id}}"), v1_id);
    answers(f.port(), "v1").await;
}

#[tokio::test]
async fn a_mount_in_args_replaces_the_carried_one_on_the_same_path() {
    let dir = std::env::temp_dir().join(format!("rg-mount-args-{}", std::process::id()));
    for ver in ["v1", "v2"] {
        std::fs::create_dir_all(dir.join(format!("data-{ver}"))).unwrap();
    }
    let volume = format!("{}/data-{{version}}:/data:ro", dir.display());
    let Some(f) = Fixture::new("mount_args", 1, &["--volume", &volume]) else {
        return;
    };
    let d = f.driver();
    let mounts = "{{range .Mounts}}{{.Source}}->{{.Destination}};{{end}}";
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    assert_eq!(
        f.inspect(&f.name(), mounts),
        format!("{}/data-v1->/data;", dir.display())
    );
    // The v1 container's mount is carried over, and the args mount the
    // same path again: one mount, the one the args name for v2.
    d.start(&f.exec, f.main(), &v("v2")).await.unwrap();
    answers(f.port(), "v2").await;
    assert_eq!(
        f.inspect(&f.name(), mounts),
        format!("{}/data-v2->/data;", dir.display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn restore_recreates_from_the_snapshot_when_the_kept_container_is_gone() {
    let Some(f) = Fixture::new("slow_restore", 3, &["--env", "USER_SET=1"]) else {
        return;
    };
    let d = f.driver();
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    let v1_id = snap.data["container_id"].as_str().unwrap().to_string();
    d.start(&f.exec, f.main(), &v("v2")).await.unwrap();
    answers(f.port(), "v2").await;
    docker(&["rm", &v1_id]);

    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    let id = f.inspect(&f.name(), "{{.Id}}");
    assert_ne!(id, v1_id, "recreated");
    answers(f.port(), "v1").await;
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v1")));
    // The image is still there, so it runs by reference.
    assert_eq!(
        f.inspect(&f.name(), "{{.Config.Image}}"),
        format!("{}:v1", f.repo)
    );
    let env = env_of(&f.name());
    assert!(env.contains(&"USER_SET=1".to_string()), "{env:?}");
    assert!(env.contains(&"IMAGE_DEFAULT=1".to_string()), "{env:?}");
    // And a snapshot of the recreated one splits the same way: nothing of
    // the image was frozen onto the container.
    let again = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    assert_eq!(set_env(&again), vec!["USER_SET=1"]);
    assert_eq!(again.data["set"]["labels"]["rollguard.version"], "v1");
    assert!(again.data["set"]["labels"].get("img").is_none());
}

#[tokio::test]
async fn restore_onto_a_rebuilt_image_takes_that_images_defaults() {
    let Some(f) = Fixture::new("rebuilt_restore", 3, &["--env", "USER_SET=1"]) else {
        return;
    };
    let d = f.driver();
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    let v1_id = snap.data["container_id"].as_str().unwrap().to_string();
    d.start(&f.exec, f.main(), &v("v2")).await.unwrap();
    docker(&["rm", &v1_id]);
    // The old build of v1 is gone; v1 is rebuilt with other defaults.
    let old_image = snap.data["image_id"].as_str().unwrap().to_string();
    {
        let _one_at_a_time = image_lock();
        docker(&["rmi", &format!("{}:v1", f.repo)]);
    }
    assert!(docker_try(&["image", "inspect", &old_image]).is_none());
    f.build("v1", "rebuilt").unwrap();

    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    answers(f.port(), "v1").await;
    let env = env_of(&f.name());
    assert!(env.contains(&"USER_SET=1".to_string()), "{env:?}");
    assert!(
        env.contains(&"IMAGE_DEFAULT=rebuilt".to_string()),
        "{env:?}"
    );
    assert!(!env.contains(&"IMAGE_DEFAULT=1".to_string()), "{env:?}");
    assert_eq!(
        f.inspect(&f.name(), "{{index .Config.Labels \"img\"}}"),
        "rebuilt"
    );
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v1")));
}

#[tokio::test]
async fn keep_bounds_the_kept_containers() {
    let Some(f) = Fixture::new("keep_two", 2, &[]) else {
        return;
    };
    let d = f.driver();
    let mut ids = Vec::new();
    for ver in ["v1", "v2", "v1", "v2"] {
        d.start(&f.exec, f.main(), &v(ver)).await.unwrap();
        ids.push(f.inspect(&f.name(), "{{.Id}}"));
    }
    answers(f.port(), "v2").await;
    let kept = f.kept();
    // Three were replaced; the two newest are kept, the oldest removed.
    assert_eq!(
        kept.iter().map(|k| k.1.clone()).collect::<Vec<_>>(),
        vec![ids[1].clone(), ids[2].clone()],
        "{kept:?}"
    );
    assert!(docker_try(&["inspect", &ids[0]]).is_none());

    // keep = 0: nothing is kept.
    let mut spec = f.app.docker.clone().unwrap();
    spec.keep = 0;
    Docker::new(spec)
        .start(&f.exec, f.main(), &v("v1"))
        .await
        .unwrap();
    assert!(f.kept().is_empty());
    answers(f.port(), "v1").await;
}

#[tokio::test]
async fn a_failed_start_reports_dockers_message_and_the_old_container_comes_back() {
    let Some(f) = Fixture::new("failed_start", 3, &[]) else {
        return;
    };
    let d = f.driver();
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    let v1_id = snap.data["container_id"].as_str().unwrap().to_string();

    let mut spec = f.app.docker.clone().unwrap();
    spec.args = vec!["--no-such-docker-flag".into()];
    let err = Docker::new(spec)
        .start(&f.exec, f.main(), &v("v2"))
        .await
        .unwrap_err();
    match &err {
        DriverError::Failed { what, detail, .. } => {
            assert_eq!(what, "docker create");
            assert!(detail.contains("no-such-docker-flag"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // The old one is kept, renamed and stopped; nothing runs under the name.
    assert_eq!(f.kept().len(), 1);
    assert_eq!(f.kept()[0].1, v1_id);
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), None);

    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    assert_eq!(f.inspect(&f.name(), "{{.Id}}"), v1_id);
    answers(f.port(), "v1").await;

    // A snapshot from another driver, or unreadable data, is refused.
    let mut bad = snap.clone();
    bad.driver = "process".into();
    assert!(matches!(
        d.restore(&f.exec, f.main(), &bad).await,
        Err(DriverError::Config(_))
    ));
    let mut bad = snap.clone();
    bad.data = serde_json::json!({"running": "yes"});
    assert!(matches!(
        d.restore(&f.exec, f.main(), &bad).await,
        Err(DriverError::Config(_))
    ));
}

#[tokio::test]
async fn present_checks_the_image_store() {
    let Some(f) = Fixture::new("present", 3, &[]) else {
        return;
    };
    let d = f.driver();
    assert!(d.present(&f.exec, f.main(), &v("v1")).await.unwrap());
    assert!(d.present(&f.exec, f.main(), &v("v2")).await.unwrap());
    assert!(!d.present(&f.exec, f.main(), &v("v9")).await.unwrap());
}

#[tokio::test]
async fn hostile_values_stay_single_words() {
    let marker =
        std::env::temp_dir().join(format!("rollguard-docker-pwned-{}", std::process::id()));
    let hostile_env = format!(
        "HOSTILE=a b; $(touch {m}) `touch {m}` 'q' \"dq\" {{app}}",
        m = marker.display()
    );
    let hostile_label = format!("hostile=x; touch {}", marker.display());
    let hostile_env_t = hostile_env.replace("{app}", "{{app}}");
    let args = [
        "--env",
        hostile_env_t.as_str(),
        "--label",
        hostile_label.as_str(),
        "--env",
        "V={version}",
    ];
    let Some(f) = Fixture::new("hostile", 3, &args) else {
        return;
    };
    // A hostile version cannot even be written down.
    for bad in ["v1; rm -rf /", "$(id)", "v1 --privileged", "-v1", "v1\n"] {
        assert!(Version::parse(bad).is_err(), "{bad:?}");
    }
    let d = f.driver();
    d.start(&f.exec, f.main(), &v("v1")).await.unwrap();
    answers(f.port(), "v1").await;
    let env = env_of(&f.name());
    assert!(env.contains(&hostile_env), "{env:?}");
    assert!(env.contains(&"V=v1".to_string()), "{env:?}");
    assert_eq!(
        f.inspect(&f.name(), "{{index .Config.Labels \"hostile\"}}"),
        format!("x; touch {}", marker.display())
    );
    assert!(!marker.exists(), "a value was run by the shell");

    // The snapshot carries it and a recreate passes it back whole.
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    assert!(set_env(&snap).contains(&hostile_env));
    let id = snap.data["container_id"].as_str().unwrap().to_string();
    d.start(&f.exec, f.main(), &v("v2")).await.unwrap();
    docker(&["rm", &id]);
    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    answers(f.port(), "v1").await;
    let env = env_of(&f.name());
    assert!(env.contains(&hostile_env), "{env:?}");
    assert!(!marker.exists(), "a value was run by the shell");
}

#[tokio::test]
async fn a_bad_container_name_is_a_config_error() {
    let Some(f) = Fixture::new("bad_name", 3, &[]) else {
        return;
    };
    let mut spec = f.app.docker.clone().unwrap();
    spec.container = "{app} x;y".into();
    let d = Docker::new(spec);
    assert!(matches!(
        d.current(&f.exec, f.main()).await,
        Err(DriverError::Config(_))
    ));
    assert!(matches!(
        d.start(&f.exec, f.main(), &v("v1")).await,
        Err(DriverError::Config(_))
    ));
}

/// Removes docker networks on drop (after the fixture's containers).
struct Networks(Vec<String>);

impl Drop for Networks {
    fn drop(&mut self) {
        for n in &self.0 {
            if let Some(ids) = docker_try(&["ps", "-aq", "--filter", &format!("network={n}")]) {
                for id in ids.lines() {
                    docker_quiet(&["rm", "-f", id]);
                }
            }
            docker_quiet(&["network", "rm", n]);
        }
    }
}

/// The networks of a container and their aliases (minus docker's own
/// short-ID alias).
fn networks_of(target: &str) -> Vec<(String, Vec<String>)> {
    let json = docker(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        target,
    ]);
    let id = docker(&["inspect", "-f", "{{.Id}}", target]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut out: Vec<(String, Vec<String>)> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, ep)| {
            let mut a: Vec<String> = strings(&ep["Aliases"])
                .into_iter()
                .filter(|a| !id.starts_with(a.as_str()))
                .collect();
            a.sort();
            (k.clone(), a)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn an_adopted_container_keeps_networks_mounts_restart_and_healthcheck() {
    let Some(f) = Fixture::new("adopted", 3, &[]) else {
        return;
    };
    let net_a = format!("{}-net-a", f.app.name);
    let net_b = format!("{}-net-b", f.app.name);
    let _nets = Networks(vec![net_a.clone(), net_b.clone()]);
    docker(&["network", "create", &net_a]);
    docker(&["network", "create", &net_b]);
    let dir = common::TempDir::new("adopted");
    std::fs::write(dir.join("file"), "data").unwrap();
    let bind = format!("{}:/data:ro", dir.0.display());

    // A container made by hand, not by rollguard: no rollguard labels.
    let name = f.name();
    let publish = format!("{}:8080", f.port());
    let image = format!("{}:v1", f.repo);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &net_a,
        "--network-alias",
        "web",
        "--restart",
        "on-failure:2",
        "-v",
        &bind,
        "--health-cmd",
        "/busybox true",
        "--health-interval",
        "1h",
        "--label",
        "team=pay",
        "-e",
        "USER_SET=1",
        "-p",
        &publish,
        &image,
    ]);
    docker(&["network", "connect", "--alias", "other", &net_b, &name]);
    answers(f.port(), "v1").await;

    let d = f.driver();
    // Without the label, the version is the image tag.
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v1")));
    let snap = d.snapshot(&f.exec, f.main()).await.unwrap().unwrap();
    assert_eq!(snap.version, Some(v("v1")));
    let data = &snap.data;
    assert_eq!(data["set"]["env"], serde_json::json!(["USER_SET=1"]));
    assert_eq!(data["set"]["labels"], serde_json::json!({"team": "pay"}));
    assert_eq!(
        data["set"]["healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "/busybox true"])
    );
    assert_eq!(
        data["restart_policy"],
        serde_json::json!({"name": "on-failure", "maximum_retry_count": 2})
    );
    assert_eq!(data["mounts"][0]["type"], "bind");
    assert_eq!(data["mounts"][0]["destination"], "/data");
    assert_eq!(data["mounts"][0]["rw"], false);
    assert_eq!(data["network_mode"], net_a.as_str());
    let want_nets = vec![
        (net_a.clone(), vec!["web".to_string()]),
        (net_b.clone(), vec!["other".to_string()]),
    ];
    let snap_nets: Vec<(String, Vec<String>)> = data["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                strings(&n["aliases"]),
            )
        })
        .collect();
    assert_eq!(snap_nets, want_nets);

    let check = |target: &str| {
        assert_eq!(networks_of(target), want_nets, "{target}");
        assert_eq!(
            docker(&[
                "inspect",
                "-f",
                "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
                target
            ]),
            "on-failure:2"
        );
        assert_eq!(
            docker(&["inspect", "-f", "{{json .Config.Healthcheck.Test}}", target]),
            r#"["CMD-SHELL","/busybox true"]"#
        );
        assert_eq!(
            docker(&[
                "inspect",
                "-f",
                "{{range .Mounts}}{{.Destination}} {{.RW}}{{end}}",
                target
            ]),
            "/data false"
        );
        assert_eq!(
            docker(&["inspect", "-f", "{{index .Config.Labels \"team\"}}", target]),
            "pay"
        );
        assert!(env_of(target).contains(&"USER_SET=1".to_string()));
    };

    // start carries the container-set settings over to v2.
    d.start(&f.exec, f.main(), &v("v2")).await.unwrap();
    answers(f.port(), "v2").await;
    check(&name);
    assert_eq!(
        f.inspect(&name, "{{index .Config.Labels \"rollguard.version\"}}"),
        "v2"
    );
    assert_eq!(
        docker(&["exec", &name, "/busybox", "cat", "/data/file"]),
        "data"
    );

    // Restore with the hand-made container gone: recreated from the snapshot.
    let kept = f.kept();
    assert_eq!(kept.len(), 1);
    docker(&["rm", &kept[0].1]);
    d.restore(&f.exec, f.main(), &snap).await.unwrap();
    answers(f.port(), "v1").await;
    check(&name);
    assert_eq!(
        f.inspect(&name, "{{json .HostConfig.PortBindings}}"),
        format!(
            r#"{{"8080/tcp":[{{"HostIp":"","HostPort":"{}"}}]}}"#,
            f.port()
        )
    );
    assert_eq!(d.current(&f.exec, f.main()).await.unwrap(), Some(v("v1")));
}
