//! What a console costs that does not probe: another process holds the
//! prober's lease and writes N results a second into the history (as a
//! prober of N endpoints at 1 s would, in batches like the history
//! writer's), and a console's monitor, run in a process of its own, reads
//! them back by row id into its state (health verdicts, sparklines, rates).
//! Reports the reading process's CPU (user + system, from `getrusage`) and
//! peak resident memory, and how far behind the writer it finished.
//!
//! ```text
//! cargo bench --bench reader -- [--endpoints 10000] [--duration 30s]
//! ```
// A benchmark that cannot set up stops with its reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unsafe_code
)]

mod common;

use common::{arg, cpu_seconds, status_kb};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rollguard::config::{self, Fleet};
use rollguard::model::{ProbeKey, ProbeResult, now_ms};
use rollguard::monitor::{HolderKind, Monitor};
use rollguard::state::Role;
use rollguard::store::{LeaseHolder, LeaseTake, Store};

/// 100 instances per app, one HTTP probe each, on ports nothing serves
/// (the reader never probes them).
fn fleet_text(endpoints: usize) -> String {
    let mut t = String::from("[console]\nretention = \"1d\"\n");
    for a in 0..endpoints.div_ceil(100) {
        t.push_str(&format!("\n[[app]]\nname = \"app{a}\"\n"));
        for i in 0..100.min(endpoints - a * 100) {
            t.push_str(&format!(
                "[[app.instance]]\nname = \"app{a}-{i}\"\nport = {}\n",
                10_000 + i
            ));
        }
        t.push_str(
            "[[app.probe]]\nname = \"health\"\ntype = \"http\"\npath = \"/health\"\n\
             [app.health]\ninterval = \"1s\"\n",
        );
    }
    t
}

/// The reading console: runs a monitor (which finds the lease held and
/// reads) for `duration` after a warm-up, then prints its report as one
/// JSON line.
fn read(cfg: &Path, db: &Path, duration: Duration) {
    let fleet: Fleet = config::load(cfg).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let monitor = Monitor::start_as(
            Arc::new(fleet),
            &rollguard::store::Location::File(db.to_path_buf()),
            HolderKind::Console,
        )
        .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let role = monitor.role().borrow().clone();
        assert!(
            matches!(
                role,
                Role::Reader {
                    other_fleet: false,
                    ..
                }
            ),
            "the console should read, not {role:?}"
        );
        let seen = || monitor.counters.probes.load(Ordering::Relaxed);
        let (s0, c0, t0) = (seen(), cpu_seconds(), Instant::now());
        tokio::time::sleep(duration).await;
        let (s1, c1, wall) = (seen(), cpu_seconds(), t0.elapsed().as_secs_f64());
        let newest = {
            let st = monitor.state.lock().unwrap();
            st.last_update_ms().unwrap_or(0)
        };
        monitor.stop().await;
        println!(
            "{}",
            serde_json::json!({
                "results_read_per_s": ((s1 - s0) as f64 / wall).round(),
                "cpu_percent_of_one_core": ((c1 - c0) / wall * 1000.0).round() / 10.0,
                "peak_rss_mb": (status_kb("VmHWM:") as f64 / 1024.0 * 10.0).round() / 10.0,
                "behind_ms_at_end": now_ms() - newest,
            })
        );
    });
}

/// The prober stand-in: holds the lease and writes `endpoints` results a
/// second, a tenth of them every 100 ms, until `until`.
fn write(db: &Path, fleet: &Fleet, endpoints: usize, until: Instant) -> u64 {
    let mut store = Store::open(db).unwrap();
    let me = LeaseHolder {
        kind: "agent".into(),
        user: "bench".into(),
        host: "bench".into(),
        pid: std::process::id(),
        token: "bench".into(),
        fleet: rollguard::monitor::lease::fingerprint(fleet),
        acquired_ms: now_ms(),
        heartbeat_ms: now_ms(),
    };
    let took = store.take_lease("prober", &me, now_ms(), |_| true).unwrap();
    assert!(matches!(took, LeaseTake::Held { .. }));
    let keys: Vec<ProbeKey> = (0..endpoints)
        .map(|n| ProbeKey {
            app: format!("app{}", n / 100).into(),
            instance: format!("app{}-{}", n / 100, n % 100).into(),
            probe: "health".into(),
        })
        .collect();
    let (mut written, mut next, mut tick) = (0u64, 0usize, Instant::now());
    while Instant::now() < until {
        let at = now_ms();
        let batch: Vec<ProbeResult> = (0..endpoints / 10)
            .map(|i| {
                let key = keys[(next + i) % endpoints].clone();
                ProbeResult {
                    key,
                    at_ms: at,
                    ok: (next + i) % 97 != 0,
                    latency_ms: 1.0 + ((next + i) % 7) as f64,
                    code: Some(200),
                    error_kind: None,
                    message: String::new(),
                }
            })
            .collect();
        next = (next + endpoints / 10) % endpoints;
        written += store.insert_results(&batch).unwrap() as u64;
        store.renew_lease("prober", "bench", now_ms()).unwrap();
        tick += Duration::from_millis(100);
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
    written
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` support
    }
    let endpoints: usize = arg(&args, "--endpoints", "10000")
        .parse()
        .expect("--endpoints N");
    let duration = config::parse_duration(&arg(&args, "--duration", "30s")).expect("--duration");
    if let Ok(dir) = std::env::var("ROLLGUARD_BENCH_READ") {
        let dir = PathBuf::from(dir);
        read(&dir.join("bench.toml"), &dir.join("history.db"), duration);
        return;
    }
    let dir = std::env::temp_dir().join(format!("rollguard-bench-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bench.toml"), fleet_text(endpoints)).unwrap();
    let db = dir.join("history.db");
    // The writer starts first, so the console finds the lease held.
    let until = Instant::now() + duration + Duration::from_secs(8);
    let writer_db = db.clone();
    let fleet: Fleet = config::load(&dir.join("bench.toml")).unwrap_or_else(|e| panic!("{e}"));
    let writer = std::thread::spawn(move || write(&writer_db, &fleet, endpoints, until));
    std::thread::sleep(Duration::from_secs(1));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--endpoints", &endpoints.to_string()])
        .args(["--duration", &arg(&args, "--duration", "30s")])
        .env("ROLLGUARD_BENCH_READ", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the reading console");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.wait();
    let written = writer.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut report: serde_json::Value = serde_json::from_str(line.trim()).expect("a report");
    report["endpoints"] = endpoints.into();
    report["written_per_s"] = ((written as f64) / (duration.as_secs_f64() + 7.0))
        .round()
        .into();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
