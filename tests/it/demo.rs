//! `rollguard demo --headless` as a newcomer meets it, with real
//! processes: however it ends (its time is up, Ctrl-C, SIGTERM, with a
//! detached rollout still running), nothing it started is left, no port it
//! used still listens, and its folder is gone; and a good release of each
//! of its apps deploys, even with a rollout held long enough for a
//! flapping instance to flap.

use crate::common;
use crate::common::demo as demo_footprint;
use demo_footprint::one_demo;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use demo_footprint::{Footprint, Sampler};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// A headless demo in a private temporary folder.
struct Demo {
    child: Child,
    tmp: TempDir,
    dir: PathBuf,
    sampler: Option<Sampler>,
}

impl Demo {
    /// Starts `rollguard demo --headless --duration DURATION` in its own
    /// process group (as a shell's job is) and waits until every instance
    /// and nginx front port answers.
    fn start(duration: &str) -> Demo {
        use std::os::unix::process::CommandExt;
        let tmp = TempDir::new("demo");
        let out = std::fs::File::create(tmp.join("stdout")).unwrap();
        let err = std::fs::File::create(tmp.join("stderr")).unwrap();
        let child = Command::new(BIN)
            .args(["demo", "--headless", "--duration", duration])
            .env("TMPDIR", &tmp.0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("start the demo");
        let dir = tmp.0.join(format!("rollguard-demo-{}", child.id()));
        let mut demo = Demo {
            child,
            tmp,
            dir,
            sampler: None,
        };
        demo.sampler = Some(Sampler::start(&demo.dir));
        demo.wait_up();
        demo
    }

    fn wait_up(&mut self) {
        let end = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("the demo ended early ({st}): {}", self.stderr());
            }
            let print = {
                let mut f = Footprint::new(&self.dir);
                f.sample();
                f
            };
            let nginx = self.dir.join("nginx").join("nginx.pid").exists()
                || !self.dir.join("nginx").exists();
            if self.dir.join("rg").exists()
                && print.ports.len() == self.listening()
                && nginx
                && print
                    .ports
                    .iter()
                    .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
            {
                break;
            }
            assert!(
                Instant::now() < end,
                "the demo did not come up: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The monitor starts once the fleet answers.
        std::thread::sleep(Duration::from_millis(1500));
    }

    /// How many ports the demo listens on once up: its instances' (as
    /// its config lists them), nginx's one per app when it runs one, and
    /// its Prometheus's when it runs one.
    fn listening(&self) -> usize {
        let config = std::fs::read_to_string(self.dir.join("rollguard.toml")).unwrap_or_default();
        let count = |table: &str| config.lines().filter(|l| l.trim() == table).count();
        let mut n = count("[[app.instance]]");
        if self.dir.join("nginx").exists() {
            n += count("[[app]]");
        }
        if self.dir.join("prometheus").exists() {
            n += 1;
        }
        n
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.tmp.join("stderr")).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.tmp.join("stdout")).unwrap_or_default()
    }

    /// Runs the demo's `rg` script.
    fn rg(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(self.dir.join("rg"))
            .args(args)
            .output()
            .expect("run rg");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Sends `sig` to the demo's process (`group`: to its whole process
    /// group, as a terminal's Ctrl-C does).
    fn signal(&self, sig: i32, group: bool) {
        let pid = self.child.id() as i32;
        // SAFETY: a signal to the demo this test started.
        unsafe {
            libc::kill(if group { -pid } else { pid }, sig);
        }
    }

    /// Waits for the demo to exit; returns whether it exited with 0, and
    /// what it left behind, still sampled up to its end.
    fn wait_exit(&mut self, limit: Duration) -> (bool, Footprint) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("the demo did not exit within {limit:?}: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let print = self.sampler.take().expect("sampling").finish();
        (status.success(), print)
    }
}

impl Drop for Demo {
    /// A test that fails midway still lets the demo stop its fleet; SIGKILL
    /// only if it does not end.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM, false);
            let end = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_headless_demo_stops_everything_it_started_when_its_time_is_up() {
    let _one = one_demo();
    let mut demo = Demo::start("4s");
    let (ok, print) = demo.wait_exit(Duration::from_secs(40));
    assert!(ok, "the demo failed");
    print.assert_all_gone(Duration::from_secs(3));
}

#[test]
fn ctrl_c_of_the_headless_demo_stops_everything_it_started() {
    let _one = one_demo();
    let mut demo = Demo::start("120s");
    demo.signal(libc::SIGINT, true);
    let summary = demo.stdout();
    let (ok, print) = demo.wait_exit(Duration::from_secs(20));
    print.assert_all_gone(Duration::from_secs(3));
    assert!(ok, "Ctrl-C ends the demo as its time would: {summary}");
}

#[test]
fn sigterm_of_the_headless_demo_stops_everything_it_started() {
    let _one = one_demo();
    let mut demo = Demo::start("120s");
    demo.signal(libc::SIGTERM, false);
    let (_, print) = demo.wait_exit(Duration::from_secs(20));
    print.assert_all_gone(Duration::from_secs(3));
}

/// Reads deployment `id`'s batches.
fn batches(db: &Path, id: i64) -> Vec<rollguard::store::Batch> {
    rollguard::store::Store::open(db)
        .and_then(|s| s.batches(id))
        .unwrap_or_default()
}

/// `rg deploy APP VERSION --detach`: the deployment's id.
fn deploy_detached(demo: &Demo, app: &str, version: &str) -> i64 {
    let (ok, out) = demo.rg(&["deploy", app, version, "--yes", "--detach", "--json"]);
    assert!(ok, "deploy {app} {version}: {out}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("deploy prints JSON ({e}): {out}"));
    v["deployment"]
        .as_i64()
        .or_else(|| v["id"].as_i64())
        .unwrap_or_else(|| panic!("no deployment id in {v}"))
}

#[test]
fn quitting_the_demo_stops_a_detached_rollout_and_removes_its_folder() {
    let _one = one_demo();
    let mut demo = Demo::start("120s");
    // A rollout that runs on after the demo is told to stop: it starts
    // instances and writes its log, the history and the run files.
    let id = deploy_detached(&demo, "checkout", "v2");
    let db = demo.dir.join("history.db");
    let end = Instant::now() + Duration::from_secs(30);
    while !batches(&db, id)
        .iter()
        .any(|b| b.idx == 1 && b.state.as_str() != "pending")
    {
        assert!(
            Instant::now() < end,
            "the rollout did not reach its 2nd batch"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // This demo's worker: other rollouts' workers may run beside it.
    let worker = demo_footprint::processes().into_iter().find(|p| {
        p.args.iter().any(|a| a == "worker")
            && p.args
                .iter()
                .any(|a| a.contains(&*demo.dir.to_string_lossy()))
    });
    assert!(worker.is_some(), "the rollout's worker runs");
    demo.signal(libc::SIGINT, true);
    let (_, print) = demo.wait_exit(Duration::from_secs(30));
    print.assert_has("the worker", |a| a == "worker");
    print.assert_all_gone(Duration::from_secs(3));
    // A worker left running would go on: fail its gate, restore, and
    // recreate the folder's run files.
    print.assert_stays_gone(Duration::from_secs(6));
}

/// The outcome of deployment `id`, once it has one.
fn outcome(db: &Path, id: i64) -> Option<String> {
    rollguard::store::Store::open(db)
        .ok()?
        .deployment(id)
        .ok()??
        .outcome
        .map(|o| o.as_str().to_string())
}

/// Every app's good release `v2`, each rollout paused by an operator after
/// its second batch (the flapping instance is the second of its app) and
/// resumed 30 s later, so its last batch and the 15 s `monitor` after it
/// watch the second instance from 30 s to about 50 s after it started: a
/// flap of that instance in that time would fail the rollout. Each must
/// end deployed.
#[test]
fn a_good_release_of_every_demo_app_deploys_despite_the_flapping_instance() {
    let _one = one_demo();
    let mut demo = Demo::start("300s");
    let db = demo.dir.join("history.db");
    let apps = ["checkout", "payments", "search"];
    let ids: Vec<i64> = apps
        .iter()
        .map(|a| deploy_detached(&demo, a, "v2"))
        .collect();
    // Pause each as soon as its second batch begins: it pauses after it.
    let mut resume_at = vec![None; apps.len()];
    let end = Instant::now() + Duration::from_secs(40);
    while resume_at.iter().any(Option::is_none) {
        for (k, app) in apps.iter().enumerate() {
            if resume_at[k].is_some() {
                continue;
            }
            let b = batches(&db, ids[k]);
            if let Some(started) = b.iter().find(|b| b.idx == 1).and_then(|b| b.started_at_ms) {
                let (ok, out) = demo.rg(&["pause", app]);
                assert!(ok, "pause {app}: {out}");
                resume_at[k] = Some(started + 30_000);
            }
        }
        assert!(
            Instant::now() < end,
            "the rollouts did not reach their 2nd batch"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut resumed = vec![false; apps.len()];
    let mut done: Vec<Option<String>> = vec![None; apps.len()];
    let end = Instant::now() + Duration::from_secs(70);
    while done.iter().any(Option::is_none) {
        let now = rollguard::model::now_ms();
        for (k, app) in apps.iter().enumerate() {
            if !resumed[k] && resume_at[k].is_some_and(|t| now >= t) {
                let (ok, out) = demo.rg(&["resume", app]);
                assert!(ok, "resume {app}: {out}");
                resumed[k] = true;
            }
            if done[k].is_none() {
                done[k] = outcome(&db, ids[k]);
            }
        }
        if Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for (k, app) in apps.iter().enumerate() {
        if done[k].as_deref() != Some("deployed") {
            let (_, history) = demo.rg(&["history", app, "--json"]);
            let why = serde_json::from_str::<serde_json::Value>(&history)
                .ok()
                .and_then(|h| h[0]["rollback"]["reason"].as_str().map(str::to_string));
            panic!("{app} v2 ended {:?}, not deployed: {why:?}", done[k]);
        }
    }
    demo.signal(libc::SIGINT, true);
    let (_, print) = demo.wait_exit(Duration::from_secs(30));
    print.assert_all_gone(Duration::from_secs(3));
}

/// With Prometheus installed, the demo's fourth app deploys by canary and
/// a private Prometheus judges it: `v4` passes every health check while a
/// quarter of its requests fail, and is rolled back by the comparison with
/// both ratios in the evidence; `v2`, whose ratio is the old instances',
/// is promoted. Without Prometheus the demo has three apps.
#[test]
fn the_demos_canary_is_judged_by_its_own_prometheus() {
    let _one = one_demo();
    let mut demo = Demo::start("300s");
    let config = std::fs::read_to_string(demo.dir.join("rollguard.toml")).unwrap();
    let Some(_) = common::program("demo_canary_prometheus", "prometheus") else {
        assert!(!config.contains("name = \"catalog\""), "{config}");
        return;
    };
    assert!(config.contains("type = \"prometheus\""), "{config}");
    let deploy = |version: &str| {
        let out = Command::new(demo.dir.join("rg"))
            .args(["deploy", "catalog", version, "--yes", "--json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "deploy {version} printed no JSON ({e}): {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), report)
    };
    let (code, report) = deploy("v4");
    assert_eq!(code, Some(3), "v4 is rolled back: {report:#}");
    let evidence = &report["rollback"]["evidence"];
    assert_eq!(evidence["probe"], "errors", "{report:#}");
    let canary = evidence["canary"]
        .as_f64()
        .unwrap_or_else(|| panic!("{report:#}"));
    let baseline = evidence["baseline"]
        .as_f64()
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        canary > 0.1 && baseline < 0.05,
        "canary {canary}, baseline {baseline}"
    );
    assert_eq!(
        evidence["baseline_instances"],
        serde_json::json!(["catalog-1", "catalog-2", "catalog-3"]),
        "{report:#}"
    );
    let (code, report) = deploy("v2");
    assert_eq!(code, Some(0), "v2 is promoted: {report:#}");
    assert_eq!(report["outcome"], "deployed");
    demo.signal(libc::SIGINT, true);
    let (_, print) = demo.wait_exit(Duration::from_secs(30));
    print.assert_has("the demo's Prometheus", |a| a.contains("prometheus.yml"));
    print.assert_all_gone(Duration::from_secs(3));
}

/// What the README says of `v3`: deployed (here from the `rg` script, to
/// `checkout` and `search` at once), it passes the gate of each of its
/// instances, fails while the rollout monitors them, and is rolled back.
/// Every batch that replaced an instance passed (and was then rolled
/// back); the monitor is the one that failed.
#[test]
fn the_demos_v3_passes_its_gates_and_fails_while_monitored() {
    let _one = one_demo();
    let mut demo = Demo::start("300s");
    let db = demo.dir.join("history.db");
    let apps = ["checkout", "search"];
    let ids: Vec<i64> = apps
        .iter()
        .map(|a| deploy_detached(&demo, a, "v3"))
        .collect();
    let end = Instant::now() + Duration::from_secs(150);
    while ids.iter().any(|id| outcome(&db, *id).is_none()) {
        assert!(Instant::now() < end, "the rollouts of v3 did not end");
        std::thread::sleep(Duration::from_millis(250));
    }
    for (app, id) in apps.iter().zip(&ids) {
        let store = rollguard::store::Store::open_read_only(&db).unwrap();
        let d = store.deployment(*id).unwrap().unwrap();
        let stages: Vec<String> = d
            .plan
            .pointer("/plan/stages")
            .and_then(|s| s.as_array())
            .expect("the plan's stages")
            .iter()
            .map(|s| s["stage"].as_str().unwrap_or_default().to_string())
            .collect();
        let states: Vec<(String, String)> = store
            .batches(*id)
            .unwrap()
            .iter()
            .map(|b| (stages[b.idx as usize].clone(), b.state.as_str().to_string()))
            .collect();
        let want: Vec<(String, String)> = [
            ("replace", "rolled_back"),
            ("replace", "rolled_back"),
            ("replace", "rolled_back"),
            ("monitor", "failed"),
        ]
        .iter()
        .map(|(s, b)| (s.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            (d.outcome.map(rollguard::model::Outcome::as_str), &states),
            (Some("rolled_back"), &want),
            "{app} v3: each replacement passes its gate, the monitor fails"
        );
    }
    demo.signal(libc::SIGINT, true);
    let (_, print) = demo.wait_exit(Duration::from_secs(30));
    print.assert_all_gone(Duration::from_secs(3));
}
