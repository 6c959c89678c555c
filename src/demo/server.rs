//! The demo application: a small HTTP/1.1 server that the demo starts as
//! separate processes (`rollguard demo-app`, hidden from help). It answers
//! `GET /health` with JSON that the demo's conditions read, `GET /ping` with
//! `pong`, varies its latency, can flap (fail for a while now and then), and
//! exits when the process that started it is gone, so nothing is left
//! behind even after a `kill -9` of the demo.
//!
//! `GET /metrics` gives Prometheus `demo_http_requests_total` by status
//! code. The demo has no users, so the server makes up its own traffic:
//! about 200 requests a second, of which about 1% fail, or the share
//! `--error-ratio` says (a release whose health checks pass while its
//! users see errors), or half while it is failing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a demo instance behaves.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// Where to write the chosen port (so the demo can build its config).
    pub port_file: Option<PathBuf>,
    /// A file whose modification time is refreshed every second (for the
    /// demo's command probe).
    pub heartbeat: Option<PathBuf>,
    /// Fail now and then: every `flap_period`, for `flap_length`.
    pub flap: bool,
    /// The version it reports.
    pub version: String,
    /// Exit when this pid is gone.
    pub parent: Option<u32>,
    /// Typical latency in milliseconds.
    pub latency_ms: u64,
    /// A bad release: healthy for this long after start, then failing for
    /// good.
    pub fail_after: Option<Duration>,
    /// While failing, user requests (`/`) fail too, not only `/health`.
    pub fail_requests: bool,
    /// A bad release: failing while this file exists (so a test can pick
    /// the moment).
    pub fail_if_exists: Option<PathBuf>,
    /// The share of its made-up requests that fail while it is not failing
    /// its health checks (default about 1%).
    pub error_ratio: Option<f64>,
}

/// The share of made-up requests that fail by default.
const USUAL_ERROR_RATIO: f64 = 0.01;

struct Shared {
    opts: ServerOptions,
    started: Instant,
    seed: AtomicU64,
    /// Made-up requests answered 200.
    ok: AtomicU64,
    /// Made-up requests answered 500.
    errors: AtomicU64,
}

impl Shared {
    fn rand(&self) -> u64 {
        // xorshift: good enough for jitter, no dependency.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        // xorshift64*: the multiply mixes the low bits too.
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11
    }

    /// Whether the instance is in a bad spell: 12 s out of every 45 s,
    /// starting 20 s after start.
    fn failing(&self) -> bool {
        if self
            .opts
            .fail_after
            .is_some_and(|d| self.started.elapsed() >= d)
        {
            return true;
        }
        if self
            .opts
            .fail_if_exists
            .as_ref()
            .is_some_and(|p| p.exists())
        {
            return true;
        }
        if !self.opts.flap {
            return false;
        }
        // Only the process the demo starts itself flaps (see
        // `demo::FLAPPER`), never one a rollout starts, so the first flap
        // need not wait for anything.
        let t = self.started.elapsed().as_secs();
        t >= 20 && (t - 20) % 45 < 12
    }
}

impl Shared {
    /// One tenth of a second of made-up traffic: 16 to 24 requests, each
    /// failing with the instance's error ratio.
    fn serve_made_up_requests(&self) {
        let ratio = if self.failing() {
            0.5
        } else {
            self.opts.error_ratio.unwrap_or(USUAL_ERROR_RATIO)
        };
        for _ in 0..16 + self.rand() % 9 {
            let draw = (self.rand() % 10_000) as f64 / 10_000.0;
            if draw < ratio {
                self.errors.fetch_add(1, Ordering::Relaxed);
            } else {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The Prometheus text of `/metrics`.
    fn metrics(&self) -> String {
        format!(
            "# HELP demo_http_requests_total Requests served, by status code.\n\
             # TYPE demo_http_requests_total counter\n\
             demo_http_requests_total{{code=\"200\"}} {}\n\
             demo_http_requests_total{{code=\"500\"}} {}\n",
            self.ok.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed)
        )
    }
}

/// Runs the server until the parent is gone. Errors only at bind time.
pub async fn serve(opts: ServerOptions) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", opts.port)).await?;
    let port = listener.local_addr()?.port();
    if let Some(f) = &opts.port_file {
        let tmp = f.with_extension("tmp");
        std::fs::write(&tmp, port.to_string())?;
        std::fs::rename(&tmp, f)?;
    }
    let shared = Arc::new(Shared {
        seed: AtomicU64::new(u64::from(port) * 2_654_435_761 + 1),
        opts,
        started: Instant::now(),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let traffic = shared.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            traffic.serve_made_up_requests();
        }
    });
    let watch = shared.clone();
    tokio::spawn(async move {
        loop {
            if let Some(h) = &watch.opts.heartbeat {
                let _ = std::fs::write(h, b"beat\n");
            }
            if let Some(p) = watch.opts.parent {
                // Signal 0 only asks whether the parent still exists.
                if crate::host::signal(p as i32, 0).is_err() {
                    std::process::exit(0);
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let s = shared.clone();
        tokio::spawn(async move {
            let _ = connection(stream, s).await;
        });
    }
}

async fn connection(mut stream: TcpStream, s: Arc<Shared>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                return Ok(());
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let mut lines = head.lines();
        let request = lines.next().unwrap_or_default();
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let http10 = request.ends_with("HTTP/1.0");
        let close = http10
            || lines.any(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("connection:") && l.contains("close")
            });
        let (status, body) = respond(&s, path).await;
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            _ => "Service Unavailable",
        };
        let kind = if path == "/metrics" {
            "text/plain; version=0.0.4"
        } else {
            "application/json"
        };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        stream.write_all(resp.as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
}

async fn respond(s: &Shared, path: &str) -> (u16, String) {
    if path == "/metrics" {
        return (200, s.metrics());
    }
    let base = s.opts.latency_ms;
    let jitter = s.rand() % (base.max(1) * 2);
    let spike = if s.rand().is_multiple_of(20) {
        base * 4
    } else {
        0
    };
    let failing = s.failing();
    let delay = if failing {
        base * 6 + jitter
    } else {
        base / 2 + jitter + spike
    };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    match path {
        "/ping" => (200, "pong\n".into()),
        "/health" => {
            let error_rate = if failing {
                20.0 + (s.rand() % 300) as f64 / 10.0
            } else {
                (s.rand() % 30) as f64 / 10.0
            };
            let status = if failing { "degraded" } else { "healthy" };
            let code = if failing && s.rand().is_multiple_of(2) {
                503
            } else {
                200
            };
            (
                code,
                format!(
                    "{{\"status\":\"{status}\",\"error_rate\":{error_rate:.1},\"version\":\"{}\",\"uptime_s\":{}}}\n",
                    s.opts.version,
                    s.started.elapsed().as_secs()
                ),
            )
        }
        "/" if failing && s.opts.fail_requests => (
            503,
            format!(
                "{{\"version\":\"{}\",\"error\":\"failing\"}}\n",
                s.opts.version
            ),
        ),
        "/" => (200, format!("{{\"version\":\"{}\"}}\n", s.opts.version)),
        _ => (404, "{\"error\":\"not found\"}\n".into()),
    }
}
