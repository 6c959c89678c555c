//! A real Prometheus on loopback for tests: scraping one target every
//! second (with `honor_labels`, so a target's own `instance` label is
//! kept), asked through its HTTP API. Killed on drop. And the small
//! exporter it scrapes, whose metrics the test sets.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{TempDir, free_port, program};

/// An exporter whose `/metrics` text the test sets.
pub struct Exporter {
    /// Its port on 127.0.0.1.
    pub port: u16,
    text: Arc<Mutex<String>>,
}

impl Exporter {
    /// Starts serving `text` to every request.
    pub async fn start(text: &str) -> Exporter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = Arc::new(Mutex::new(text.to_string()));
        let served = text.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let body = served.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body.as_bytes()).await;
                });
            }
        });
        Exporter { port, text }
    }

    /// What it serves from now on.
    pub fn set(&self, text: &str) {
        *self.text.lock().unwrap() = text.to_string();
    }
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts one scraping 127.0.0.1:`target`, once it answers ready; a
    /// skip (see `common::missing`) without the program.
    pub fn start(test: &str, target: u16) -> Option<Prometheus> {
        let bin = program(test, "prometheus")?;
        // A free port can be taken before Prometheus binds it: a few tries.
        for _ in 0..5 {
            let dir = TempDir::new("prometheus");
            let config = dir.join("prometheus.yml");
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: test\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
                ),
            )
            .unwrap();
            let port = free_port();
            let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
            let child = Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut p = Prometheus { child, port, dir };
            let end = Instant::now() + Duration::from_secs(30);
            while Instant::now() < end && matches!(p.child.try_wait(), Ok(None)) {
                if request(port, "GET", "/-/ready").starts_with("HTTP/1.0 200") {
                    return Some(p);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let log = std::fs::read_to_string(p.dir.join("prometheus.log")).unwrap_or_default();
            if !log.contains("address already in use") {
                panic!("Prometheus did not start:\n{log}");
            }
        }
        panic!("Prometheus found no free port in 5 tries");
    }

    /// The value of `query` (one series), if Prometheus has one.
    pub fn value(&self, query: &str) -> Option<f64> {
        let mut url = url::Url::parse("http://x/api/v1/query").unwrap();
        url.query_pairs_mut().append_pair("query", query);
        let answer = request(
            self.port,
            "GET",
            &format!("/api/v1/query?{}", url.query().unwrap_or_default()),
        );
        let body = answer.split("\r\n\r\n").nth(1)?;
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `query`'s value satisfies `ok` (`what` names it); the
    /// value.
    pub fn wait_for(&self, query: &str, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let end = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < end {
            last = self.value(query);
            if let Some(v) = last
                && ok(v)
            {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let targets = request(self.port, "GET", "/api/v1/targets");
        panic!("{query} did not become {what} (last {last:?})\ntargets: {targets}");
    }
}

/// `METHOD path` to 127.0.0.1:`port` over HTTP/1.0: the whole answer, or
/// "" when none.
pub fn request(port: u16, method: &str, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
