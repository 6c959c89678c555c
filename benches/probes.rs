//! Probe throughput benchmark: probes N local HTTP endpoints at a fixed
//! interval through the whole monitor (scheduler, HTTP probes with a JSON
//! condition, health and console state, the SQLite history writer) and
//! reports probes per second, CPU use and peak memory of this process.
//!
//! The endpoints are served by separate processes (this binary re-run with
//! `ROLLGUARD_BENCH_SERVE=N`, at most 4,000 endpoints each so that each
//! stays within its descriptor limit) so their CPU is not counted.
//!
//! With `--metrics`, the config also sets `[metrics] listen` and
//! `/metrics` is scraped every second while it runs (as Prometheus
//! would), so the two runs compare what exporting costs; it also reports
//! how long a scrape took and how big its text was.
//!
//! With `--db FILE|URL` the history is that file or PostgreSQL database
//! (its password from `PGPASSWORD` or `~/.pgpass`) instead of a file in a
//! temporary folder; the report then also gives the rows written a second.
//!
//! ```text
//! cargo bench --bench probes -- [--instances 2000] [--interval 1s] [--duration 60s] [--metrics] [--db URL]
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
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollguard::config::{self, Fleet};
use rollguard::monitor::Monitor;

/// Endpoints served by one server process.
const SERVE_PER_PROCESS: usize = 4_000;

fn raise_fd_limit() {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn serve(n: usize) {
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut ports = Vec::with_capacity(n);
        for _ in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports.push(l.local_addr().unwrap().port().to_string());
            tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = l.accept().await else { continue };
                    tokio::spawn(async move {
                        let body = "{\"status\":\"healthy\",\"error_rate\":0.5}";
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let mut buf = [0u8; 2048];
                        let mut have = 0usize;
                        loop {
                            match s.read(&mut buf[have..]).await {
                                Ok(0) | Err(_) => return,
                                Ok(k) => have += k,
                            }
                            if buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                                have = 0;
                                if s.write_all(resp.as_bytes()).await.is_err() {
                                    return;
                                }
                            } else if have == buf.len() {
                                return;
                            }
                        }
                    });
                }
            });
        }
        println!("{}", ports.join(","));
        // Exit with the parent: stdin closes when it goes.
        let mut stdin = tokio::io::stdin();
        let mut b = [0u8; 1];
        let _ = stdin.read(&mut b).await;
    });
}

fn fleet_text(ports: &[u16], interval: &str, metrics: Option<u16>) -> String {
    let mut t = String::from("[console]\nretention = \"1d\"\n");
    if let Some(port) = metrics {
        t.push_str(&format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    }
    for (a, chunk) in ports.chunks(100).enumerate() {
        t.push_str(&format!("\n[[app]]\nname = \"app{a}\"\n"));
        for (i, p) in chunk.iter().enumerate() {
            t.push_str(&format!(
                "[[app.instance]]\nname = \"app{a}-{i}\"\nport = {p}\n"
            ));
        }
        t.push_str(&format!(
            "[[app.probe]]\nname = \"health\"\ntype = \"http\"\npath = \"/health\"\n\
             expect_status = [200]\ntimeout = \"2s\"\nconditions = ['[BODY].status == \"healthy\"']\n\
             [app.health]\ninterval = \"{interval}\"\n"
        ));
    }
    t
}

/// What scraping `/metrics` saw.
#[derive(Default)]
struct Scrapes {
    count: usize,
    failed: usize,
    ms: Vec<f64>,
    bytes: usize,
}

impl Scrapes {
    fn median_ms(&self) -> f64 {
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        ms.get(ms.len() / 2)
            .map_or(0.0, |m| (m * 10.0).round() / 10.0)
    }

    fn max_ms(&self) -> f64 {
        (self.ms.iter().copied().fold(0.0, f64::max) * 10.0).round() / 10.0
    }
}

/// GETs `/metrics` from 127.0.0.1:`port` every second for `duration`.
async fn scrape_every_second(port: u16, duration: Duration) -> Scrapes {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut seen = Scrapes::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        tick.tick().await;
        let started = Instant::now();
        let got = async {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
                .await?;
            let mut body = Vec::new();
            s.read_to_end(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        }
        .await;
        match got {
            Ok(body) if body.starts_with(b"HTTP/1.1 200 ") => {
                seen.count += 1;
                seen.bytes = body.len();
                seen.ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            _ => seen.failed += 1,
        }
    }
    seen
}

fn main() {
    if let Ok(n) = std::env::var("ROLLGUARD_BENCH_SERVE") {
        serve(n.parse().unwrap());
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` support
    }
    let instances: usize = arg(&args, "--instances", "2000")
        .parse()
        .expect("--instances N");
    let interval_s = arg(&args, "--interval", "1s");
    let duration = config::parse_duration(&arg(&args, "--duration", "60s")).expect("--duration");
    let interval = config::parse_duration(&interval_s).expect("--interval");
    let metrics = args.iter().any(|a| a == "--metrics").then(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port for /metrics")
    });
    raise_fd_limit();

    // Each endpoint takes a listener and a connection (two descriptors,
    // more while a connection is replaced), so one server process serves
    // at most SERVE_PER_PROCESS of them within the descriptor limit.
    let mut servers = Vec::new();
    let mut ports: Vec<u16> = Vec::with_capacity(instances);
    for first in (0..instances).step_by(SERVE_PER_PROCESS) {
        let n = SERVE_PER_PROCESS.min(instances - first);
        let mut server = Command::new(std::env::current_exe().unwrap())
            .env("ROLLGUARD_BENCH_SERVE", n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the endpoint server");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        ports.extend(line.trim().split(',').map(|p| p.parse::<u16>().unwrap()));
        servers.push(server);
    }

    let dir = std::env::temp_dir().join(format!("rollguard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.toml");
    std::fs::write(&cfg, fleet_text(&ports, &interval_s, metrics)).unwrap();
    let fleet: Fleet = config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));

    let db = match arg(&args, "--db", "") {
        text if text.is_empty() => rollguard::store::Location::File(dir.join("history.db")),
        text => rollguard::store::Location::parse(
            &text,
            rollguard::store::LocationSource::CommandLine,
            &|k| std::env::var(k).ok(),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let monitor = Monitor::start(Arc::new(fleet), &db).unwrap();
        // Warm up: every probe's first run is spread over one interval, and
        // connections are opened in the first round.
        tokio::time::sleep(interval * 3).await;
        let (p0, c0, t0) = (
            monitor
                .counters
                .probes
                .load(std::sync::atomic::Ordering::Relaxed),
            cpu_seconds(),
            Instant::now(),
        );
        let written_before = monitor.writer_stats().written;
        let scraper = metrics.map(|port| tokio::spawn(scrape_every_second(port, duration)));
        let mut max_pending = 0;
        while t0.elapsed() < duration {
            tokio::time::sleep(Duration::from_millis(250)).await;
            max_pending = max_pending.max(monitor.writer_stats().pending);
        }
        let scrapes = match scraper {
            Some(s) => s.await.unwrap_or_default(),
            None => Scrapes::default(),
        };
        let (p1, c1, wall) = (
            monitor
                .counters
                .probes
                .load(std::sync::atomic::Ordering::Relaxed),
            cpu_seconds(),
            t0.elapsed().as_secs_f64(),
        );
        let failures = monitor
            .counters
            .failures
            .load(std::sync::atomic::Ordering::Relaxed);
        let by_kind: serde_json::Map<String, serde_json::Value> = monitor
            .counters
            .failures_by_kind()
            .into_iter()
            .map(|(k, n)| (k.as_str().to_string(), n.into()))
            .collect();
        let before_stop = monitor.writer_stats();
        let rows_per_s = ((before_stop.written - written_before) as f64 / wall).round();
        let stats = monitor.stop().await;
        serde_json::json!({
            "instances": instances,
            "interval_ms": interval.as_millis() as u64,
            "measured_s": (wall * 10.0).round() / 10.0,
            "probes_per_s": ((p1 - p0) as f64 / wall).round(),
            "expected_per_s": (instances as f64 / interval.as_secs_f64()).round(),
            "cpu_percent_of_one_core": ((c1 - c0) / wall * 1000.0).round() / 10.0,
            "peak_rss_mb": (status_kb("VmHWM:") as f64 / 1024.0 * 10.0).round() / 10.0,
            "failures": failures,
            "failures_by_kind": by_kind,
            "history": db.to_string(),
            "history_rows_per_s": rows_per_s,
            "history_written": stats.written,
            "history_failed": stats.failed,
            "history_pending_max": max_pending,
            "history_pending_at_end": before_stop.pending,
            "metrics_scraped": metrics.is_some(),
            "metrics_scrapes": scrapes.count,
            "metrics_scrapes_failed": scrapes.failed,
            "metrics_scrape_ms_median": scrapes.median_ms(),
            "metrics_scrape_ms_max": scrapes.max_ms(),
            "metrics_bytes": scrapes.bytes,
        })
    });
    for mut server in servers {
        drop(server.stdin.take());
        let _ = server.kill();
        let _ = server.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
