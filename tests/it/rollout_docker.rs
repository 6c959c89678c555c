//! Rolling, blue-green and canary rollouts on the docker driver behind a
//! real nginx or HAProxy, driven through the `rollguard` command line
//! against a real dockerd. Images are built locally `FROM scratch` around a
//! static busybox whose `httpd` serves `/` = `{"version":"vN"}` and `/health` = `{"status":"healthy"}`; `:v3`
//! rewrites its `/health` to `{"status":"failing"}` 1.5 s after it starts
//! while `/` keeps answering 200, so users never notice but the gates do.
//!
//! A client sends requests through the balancer without pause during each
//! rollout; none may fail. Every test uses its own image repository and container
//! names, and a guard removes every container and image it made, also when
//! the test fails.

use crate::common;

use common::docker::{
    available, build_image_with_files, docker, docker_quiet, docker_try, image_lock,
};
use common::rollout::Env;

/// Instances in the fleet.
const INSTANCES: usize = 3;

/// One test at a time in this binary: on a small machine two rollouts under
/// load would compete for the CPU that the health gates measure, and the
/// legacy builder shares cached layers between the tests' images.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The images and containers of one test; removed on drop.
struct Fleet {
    /// Image repository, `rollguard-test/rollout-<pid>-<tag>`.
    repo: String,
    /// Container name prefix; instance `web-N` runs as `{prefix}-web-N`.
    prefix: String,
}

impl Fleet {
    /// A fresh repository and prefix for `tag`, with nothing left over.
    fn new(tag: &str) -> Fleet {
        let pid = std::process::id();
        let f = Fleet {
            repo: format!("rollguard-test/rollout-{pid}-{tag}"),
            prefix: format!("rgt-rollout-{pid}-{tag}"),
        };
        f.cleanup();
        f
    }

    /// Builds `:v1` and `:v2` (good) and `:v3` (healthy for 1.5 s, then
    /// failing its health checks while still serving users).
    fn build(&self, test: &str) -> Option<()> {
        let good = format!(
            "FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nLABEL rollguard-test={}\n\
             CMD [\"/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
            self.repo
        );
        let bad = format!(
            "FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nCOPY start.sh /start.sh\n\
             LABEL rollguard-test={}\nCMD [\"/busybox\", \"sh\", \"/start.sh\"]\n",
            self.repo
        );
        let start = "/busybox httpd -f -p 8080 -h /www &\n\
                     /busybox sleep 1.5\n\
                     echo '{\"status\":\"failing\"}' > /www/health.new\n\
                     /busybox mv /www/health.new /www/health\n\
                     wait\n";
        for v in ["v1", "v2", "v3"] {
            let index = format!("{{\"version\":\"{v}\"}}\n");
            let health = "{\"status\":\"healthy\"}\n";
            let mut files = vec![("www/index.html", index.as_str()), ("www/health", health)];
            let dockerfile = if v == "v3" {
                files.push(("start.sh", start));
                &bad
            } else {
                &good
            };
            build_image_with_files(test, &format!("{}:{v}", self.repo), dockerfile, &files)?;
        }
        Some(())
    }

    /// Builds `:{version}`, a good image like `:v1` (for a test that turns
    /// its health bad on cue with `docker exec`).
    fn build_good(&self, test: &str, version: &str) {
        let dockerfile = format!(
            "FROM scratch\nCOPY busybox /busybox\nCOPY www /www\nLABEL rollguard-test={}\n\
             CMD [\"/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
            self.repo
        );
        let index = format!("{{\"version\":\"{version}\"}}\n");
        let files = [
            ("www/index.html", index.as_str()),
            ("www/health", "{\"status\":\"healthy\"}\n"),
        ];
        build_image_with_files(
            test,
            &format!("{}:{version}", self.repo),
            &dockerfile,
            &files,
        )
        .expect("build a good image");
    }

    /// The container name of instance `i` (0-based).
    fn name(&self, i: usize) -> String {
        format!("{}-web-{}", self.prefix, i + 1)
    }

    /// The full ID of the container named `name`.
    fn id(&self, name: &str) -> String {
        docker(&["inspect", "-f", "{{.Id}}", name])
    }

    /// The IDs of the containers running under the instance names now.
    fn ids(&self) -> Vec<String> {
        (0..INSTANCES).map(|i| self.id(&self.name(i))).collect()
    }

    /// Kept (replaced) containers of instance `i`: (name, id, running).
    fn kept(&self, i: usize) -> Vec<(String, String, bool)> {
        let out = docker(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("name=^/{}--rg-", self.name(i)),
            "--format",
            "{{.Names}} {{.ID}}",
        ]);
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, id)| {
                let running = docker(&["inspect", "-f", "{{.State.Running}}", id]) == "true";
                (n.to_string(), id.to_string(), running)
            })
            .collect()
    }

    /// Removes every container of the prefix and every tag of the repo.
    fn cleanup(&self) {
        let filter = format!("name=^/{}-", self.prefix);
        if let Some(ids) = docker_try(&["ps", "-aq", "--filter", &filter]) {
            for id in ids.lines() {
                docker_quiet(&["rm", "-f", id]);
            }
        }
        let _one_at_a_time = image_lock();
        let format = "{{.Repository}}:{{.Tag}}";
        if let Some(tags) = docker_try(&["images", "--format", format, &self.repo]) {
            for tag in tags.lines().filter(|t| !t.ends_with(":<none>")) {
                docker_quiet(&["rmi", "-f", tag]);
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The rollout environment of `tests/common/rollout.rs` (`lb`, temp dir,
/// free ports, `rollguard` runner, client under load), its config replaced
/// by the docker app of `fleet`. `None` after a loud skip.
fn env(test: &str, fleet: &Fleet, lb: &str) -> Option<Env> {
    let env = Env::new(test, lb, "")?;
    let mut cfg = format!(
        r#"
[[app]]
name = "web"
driver = "docker"

[app.docker]
image = "{repo}"
container = "{prefix}-{{instance}}"
port = 8080
keep = 3
stop_timeout = "1s"

{traffic}
[app.health]
interval = "250ms"
success_threshold = 2
failure_threshold = 2
deadline = "15s"
monitor = "3s"

[app.rollout]
batch = 1
pause = "0s"
min_healthy = 1
canary = 1
steps = [25, 50]
step_pause = "2s"

[[app.probe]]
name = "health"
type = "http"
path = "/health"
expect_status = [200]
timeout = "500ms"
conditions = ['[BODY].status == "healthy"']
"#,
        repo = fleet.repo,
        prefix = fleet.prefix,
        traffic = env.traffic,
    );
    for i in 0..INSTANCES {
        cfg.push_str(&format!(
            "\n[[app.instance]]\nname = \"web-{}\"\nport = {}\nalt_port = {}\n",
            i + 1,
            env.ports[i],
            env.alt_ports[i]
        ));
    }
    std::fs::write(env.config(), cfg).unwrap();
    Some(env)
}

/// Builds the images and the environment, installs v1 and checks it runs.
fn installed_v1(test: &str, tag: &str, lb: &str) -> Option<(Fleet, Env)> {
    if !available(test) {
        return None;
    }
    let fleet = Fleet::new(tag);
    fleet.build(test)?;
    let env = env(test, &fleet, lb)?;
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes", "--json"]);
    assert_eq!(code, 0, "install failed:\n{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1"; INSTANCES]);
    Some((fleet, env))
}

/// A good upgrade v1 → v2 under load: deployed, zero failed requests, every
/// instance answers v2, and each replaced v1 container is kept, stopped and
/// renamed `{name}--rg-*`.
async fn upgrade_to_v2(fleet: &Fleet, env: &Env) {
    let v1_ids = fleet.ids();
    let (code, report, seen) = env.deploy_under_load("v2", &[]).await;
    assert_eq!(code, 0, "a good upgrade exits 0: {report}");
    assert_eq!(report["outcome"], "deployed", "{report}");
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("v1"), Some("v2")),
        "{report}"
    );
    assert_eq!(
        report["batches"].as_array().map(Vec::len),
        Some(INSTANCES + 1),
        "one batch per instance and the monitor: {report}"
    );
    assert!(
        seen.failed.is_empty(),
        "failed requests during a good docker rollout: {:?} ({} ok: {:?})",
        seen.some_failures(),
        seen.total(),
        seen.ok
    );
    assert!(seen.total() > 50, "the client barely ran: {seen:?}");
    assert!(
        seen.ok.contains_key("v2"),
        "nginx never served v2: {seen:?}"
    );
    assert_eq!(env.served(&env.ports), ["v2"; INSTANCES]);

    let v2_ids = fleet.ids();
    for (i, (v1_id, v2_id)) in v1_ids.iter().zip(&v2_ids).enumerate() {
        assert_ne!(v2_id, v1_id, "{}: a new container", fleet.name(i));
        let kept = fleet.kept(i);
        assert_eq!(
            kept.len(),
            1,
            "{}: one kept container: {kept:?}",
            fleet.name(i)
        );
        let (name, id, running) = &kept[0];
        assert!(
            name.starts_with(&format!("{}--rg-", fleet.name(i))),
            "{name}"
        );
        assert_eq!(id, v1_id, "{name}: the replaced v1 container is kept");
        assert!(!running, "{name}: the kept container is stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_rolling_upgrade_behind_nginx_without_failed_requests_keeps_old_containers() {
    let _one = serial().await;
    let test = "docker_rolling_upgrade";
    let Some((fleet, env)) = installed_v1(test, "up", "nginx") else {
        return;
    };
    upgrade_to_v2(&fleet, &env).await;

    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is released: {s}");
    assert_eq!(s[0]["last_good"], "v2", "{s}");
    drop(env);
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_rolling_bad_release_rolls_back_to_the_same_containers_without_failed_requests() {
    let _one = serial().await;
    let test = "docker_rolling_rollback";
    let Some((fleet, env)) = installed_v1(test, "back", "nginx") else {
        return;
    };
    upgrade_to_v2(&fleet, &env).await;
    let v2_ids = fleet.ids();

    // v3 passes its first gates, fails its health checks 1.5 s after it
    // starts, and is rolled back in reverse order; users never see a failure.
    let (code, report, seen) = env.deploy_under_load("v3", &[]).await;
    assert_eq!(code, 3, "a rolled-back deploy exits 3: {report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert_eq!(report["rollback"]["code"], "E_GATE_FAILED", "{report}");
    let evidence = &report["rollback"]["evidence"];
    assert_eq!(evidence["probe"], "health", "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during a docker rollback: {:?} ({} ok: {:?})",
        seen.some_failures(),
        seen.total(),
        seen.ok
    );
    assert!(seen.total() > 50, "the client barely ran: {seen:?}");
    assert_eq!(
        env.served(&env.ports),
        ["v2"; INSTANCES],
        "the previous release is back"
    );

    // The fast path: the kept v2 containers were restarted, not recreated.
    assert_eq!(
        fleet.ids(),
        v2_ids,
        "the restored containers are the very ones that ran v2"
    );
    for (i, v2_id) in v2_ids.iter().enumerate() {
        let name = fleet.name(i);
        assert_eq!(
            docker(&["inspect", "-f", "{{.State.Running}}", &name]),
            "true",
            "{name}"
        );
        // Whatever v3 ran there is kept, stopped, next to the v1 container.
        for (kept, _, running) in fleet.kept(i) {
            assert!(!running, "{kept}: kept containers are stopped");
        }
        assert!(
            !fleet.kept(i).iter().any(|(_, id, _)| id == v2_id),
            "{name}: the v2 container runs under its name, not kept"
        );
    }

    // History and status tell the story.
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rolled_back", "deployed", "deployed"]);
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s[0]["lock"].is_null(), "the lock is released: {s}");
    assert_eq!(s[0]["last_good"], "v2", "{s}");
    drop(env);
    drop(fleet);
}

/// `(image, running)` of every container of the fleet, for messages and
/// for the checks on what blue-green and canary leave behind.
fn containers(fleet: &Fleet) -> Vec<(String, String, bool)> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^/{}-", fleet.prefix),
        "--format",
        "{{.Names}} {{.Image}} {{.Status}}",
    ]);
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, image, status) = (w.next()?, w.next()?, w.next()?);
            Some((name.to_string(), image.to_string(), status == "Up"))
        })
        .collect()
}

/// Waits (up to 60 s) until the deployment to `version` has recorded an
/// event of `kind`, then turns the health of the containers `names` bad.
/// Whether it got there.
fn break_on(db: &std::path::Path, version: &str, kind: &str, names: &[String]) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        let switched: i64 = rusqlite::Connection::open(db)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM events e JOIN deployments d ON d.id = e.deployment_id \
                     WHERE e.kind = ?1 AND d.to_version = ?2",
                    [kind, version],
                    |r| r.get(0),
                )
            })
            .unwrap_or(0);
        if switched > 0 {
            for name in names {
                docker(&[
                    "exec",
                    name,
                    "/busybox",
                    "sh",
                    "-c",
                    "echo '{\"status\":\"failing\"}' > /www/health",
                ]);
            }
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_blue_green_behind_haproxy_switches_and_switches_back_without_failed_requests() {
    let _one = serial().await;
    let test = "docker_blue_green";
    let Some((fleet, env)) = installed_v1(test, "bg", "haproxy") else {
        return;
    };
    let (code, report, seen) = env
        .deploy_under_load("v2", &["--strategy", "blue-green"])
        .await;
    assert_eq!(code, 0, "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during a docker blue-green: {:?} ({} ok: {:?})",
        seen.some_failures(),
        seen.total(),
        seen.ok
    );
    assert!(seen.ok.contains_key("v2"), "{seen:?}");
    // The new set runs in the `-alt` containers; the old set is stopped.
    assert_eq!(env.served(&env.alt_ports), ["v2"; INSTANCES]);
    assert_eq!(env.served(&env.ports), ["down"; INSTANCES]);
    let alt = |i: usize| format!("{}-alt", fleet.name(i));
    let v2_ids: Vec<String> = (0..INSTANCES).map(|i| fleet.id(&alt(i))).collect();

    // A bad v4 starts on the idle (main) side, passes its gate and is
    // switched to; then (on cue, so the test does not race the machine's
    // speed) its health turns bad while it is monitored, and traffic
    // switches back to the v2 containers at once.
    fleet.build_good(test, "v4");
    let breaker = {
        let db = env.dir.join("history.db");
        let names: Vec<String> = (0..INSTANCES).map(|i| fleet.name(i)).collect();
        std::thread::spawn(move || break_on(&db, "v4", "traffic_switched", &names))
    };
    let (code, report, seen) = env
        .deploy_under_load("v4", &["--strategy", "blue-green"])
        .await;
    let broke = breaker.join().unwrap();
    assert!(broke, "v4 was never switched to: {report}");
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert_eq!(report["rollback"]["code"], "E_GATE_FAILED", "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during a docker blue-green rollback: {:?} ({} ok: {:?})",
        seen.some_failures(),
        seen.total(),
        seen.ok
    );
    assert!(
        seen.ok.contains_key("v4"),
        "v4 served after the switch: {seen:?}"
    );
    assert_eq!(env.served(&env.alt_ports), ["v2"; INSTANCES]);
    assert_eq!(env.served(&env.ports), ["down"; INSTANCES]);
    let now: Vec<String> = (0..INSTANCES).map(|i| fleet.id(&alt(i))).collect();
    assert_eq!(now, v2_ids, "the v2 containers kept serving throughout");
    // The v4 set is kept, stopped, for debugging.
    let all = containers(&fleet);
    let v4 = format!("{}:v4", fleet.repo);
    let v4_kept: Vec<_> = all.iter().filter(|(_, image, _)| *image == v4).collect();
    assert_eq!(v4_kept.len(), INSTANCES, "{all:?}");
    assert!(v4_kept.iter().all(|(_, _, up)| !up), "{all:?}");
    drop(env);
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_canary_behind_nginx_promotes_a_good_release_and_cuts_a_bad_one() {
    let _one = serial().await;
    let test = "docker_canary";
    let Some((fleet, env)) = installed_v1(test, "canary", "nginx") else {
        return;
    };
    let (code, report, seen) = env.deploy_under_load("v2", &["--strategy", "canary"]).await;
    assert_eq!(code, 0, "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during a docker canary: {:?} ({} ok: {:?})",
        seen.some_failures(),
        seen.total(),
        seen.ok
    );
    // Promoted: every instance runs v2 on its main port, the canary is gone.
    assert_eq!(env.served(&env.ports), ["v2"; INSTANCES]);
    assert_eq!(env.served(&env.alt_ports), ["down"; INSTANCES]);

    // v4 takes its first share on the canary; then (on cue) its health
    // turns bad and it is cut: its share goes to 0 and the canary stops;
    // the main set never changed.
    fleet.build_good(test, "v4");
    let main_ids = fleet.ids();
    let breaker = {
        let db = env.dir.join("history.db");
        let canary = vec![format!("{}-alt", fleet.name(0))];
        std::thread::spawn(move || break_on(&db, "v4", "traffic_changed", &canary))
    };
    let (code, report, seen) = env.deploy_under_load("v4", &["--strategy", "canary"]).await;
    let broke = breaker.join().unwrap();
    assert!(broke, "the canary never took a share: {report}");
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert_eq!(report["rollback"]["code"], "E_GATE_FAILED", "{report}");
    assert!(
        seen.failed.is_empty(),
        "v4 serves users well (only its health fails): {:?}",
        seen.some_failures()
    );
    assert!(
        seen.ok.contains_key("v4"),
        "the canary took a share: {seen:?}"
    );
    assert_eq!(env.served(&env.ports), ["v2"; INSTANCES]);
    assert_eq!(env.served(&env.alt_ports), ["down"; INSTANCES]);
    assert_eq!(
        fleet.ids(),
        main_ids,
        "the main containers were not touched"
    );
    let all = containers(&fleet);
    assert!(
        all.iter()
            .all(|(_, image, up)| !up || *image == format!("{}:v2", fleet.repo)),
        "only v2 runs: {all:?}"
    );
    drop(env);
    drop(fleet);
}

/// A blue-green rollback puts a spare side back as it was: when an earlier
/// rollout left stopped containers there, they are stopped again, and the
/// record says that nothing runs there, never the release those containers
/// once ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_blue_green_rollback_records_a_stopped_spare_side_as_running_nothing() {
    let _one = serial().await;
    let test = "docker_blue_green_spare";
    let Some((fleet, env)) = installed_v1(test, "spare", "nginx") else {
        return;
    };
    let blue_green = |version: &str| {
        let (code, out, err) = env.rollguard(&[
            "deploy",
            "web",
            version,
            "--yes",
            "--json",
            "--strategy",
            "blue-green",
        ]);
        let report: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("deploy printed no JSON ({e}):\n{out}\n{err}"));
        (code, report)
    };
    let main_state = |i: usize| {
        docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{index .Config.Labels \"rollguard.version\"}}",
            &fleet.name(i),
        ])
    };

    // v2 serves on the alt side; the v1 containers stay on the main
    // (spare) side, stopped.
    let (code, report) = blue_green("v2");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(env.served(&env.alt_ports), ["v2"; INSTANCES]);
    for i in 0..INSTANCES {
        assert_eq!(main_state(i), "false v1", "{}", fleet.name(i));
    }

    // v3 starts on the spare side, goes bad, and is rolled back: the spare
    // side is stopped again, v2 never stopped serving.
    let (code, report) = blue_green("v3");
    assert_eq!(code, 3, "{report:#}");
    assert_eq!(report["outcome"], "rolled_back", "{report:#}");
    assert_eq!(env.served(&env.alt_ports), ["v2"; INSTANCES]);
    assert_eq!(env.served(&env.ports), ["down"; INSTANCES]);
    for i in 0..INSTANCES {
        assert_eq!(main_state(i), "false v1", "{}", fleet.name(i));
    }

    // What the rollback recorded for the spare side: nothing runs there.
    let (code, out, err) = env.rollguard(&["events", "--app", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let restored: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["deployment_id"] == report["id"] && e["kind"] == "instance_restored")
        .collect();
    assert_eq!(restored.len(), INSTANCES, "{out}");
    for e in &restored {
        assert_eq!(e["evidence"]["side"], "main", "{e}");
        assert!(
            e["evidence"]["version"].is_null(),
            "a stopped spare side runs no release: {e}"
        );
    }
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    for i in status[0]["instances"].as_array().unwrap() {
        assert_eq!(i["version"], "v2", "{status:#}");
        assert_eq!(i["live_side"], "alt", "{status:#}");
    }
    drop(env);
    drop(fleet);
}
