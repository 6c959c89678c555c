//! The `/metrics` listener: plain HTTP/1.1 on `[metrics] listen`, run by
//! the process that holds the prober's lease (`monitor/lease.rs`) and
//! stopped when it loses it. `GET /metrics` (with any query) answers the
//! text of [`super::scrape`], written on a blocking task and sent piece by
//! piece as it is written, the body ending at the close; another path is
//! 404 and another method 405. One request per connection; a client has
//! [`READ_WITHIN`] to send its request head. An address that cannot be
//! bound is logged and tried again every [`BIND_AGAIN`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::exposition::CONTENT_TYPE;
use super::history::{self, LastRead};
use super::probes::ProbeCounters;
use crate::config::Fleet;
use crate::shutdown::Shutdown;
use crate::state::FleetState;
use crate::store::Location;

/// How long a listener whose address cannot be bound waits to try again.
pub const BIND_AGAIN: Duration = Duration::from_secs(5);
/// How long a client has to send its request head.
pub const READ_WITHIN: Duration = Duration::from_secs(5);
/// How long the answer may take to be written.
pub const WRITE_WITHIN: Duration = Duration::from_secs(30);
/// Scrapes answered at once; more wait for their turn to connect.
pub const MAX_CLIENTS: usize = 16;
/// The longest request head read.
const HEAD_MAX: usize = 8 * 1024;

/// What a scrape reads.
struct Sources {
    fleet: Arc<Fleet>,
    state: Arc<Mutex<FleetState>>,
    counters: Arc<ProbeCounters>,
    history: LastRead,
}

/// The running listener and history reader; [`Server::stop`] ends them.
pub struct Server {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `/metrics` at `fleet`'s `[metrics] listen`, reading the
    /// history at `db`; `None` when the config sets no address.
    pub fn start(
        fleet: Arc<Fleet>,
        db: &Location,
        state: Arc<Mutex<FleetState>>,
        counters: Arc<ProbeCounters>,
    ) -> Option<Server> {
        let addr = fleet.metrics?.listen;
        let (shutdown, rx) = watch::channel(false);
        let rx = Shutdown::new(rx);
        let last: LastRead = Arc::default();
        let sources = Arc::new(Sources {
            fleet: fleet.clone(),
            state,
            counters,
            history: last.clone(),
        });
        let tasks = vec![
            tokio::spawn(history::follow(fleet, db.clone(), last, rx.clone())),
            tokio::spawn(listen(addr, sources, rx)),
        ];
        Some(Server { shutdown, tasks })
    }

    /// Closes the listener; scrapes under way are dropped.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds `addr` (trying again until it can) and answers each client in
/// its own task until `shutdown`.
async fn listen(addr: SocketAddr, sources: Arc<Sources>, mut shutdown: Shutdown) {
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!("cannot serve /metrics on {addr}: {e}; trying again");
                if !shutdown.sleep(BIND_AGAIN).await {
                    return;
                }
            }
        }
    };
    tracing::info!("serving Prometheus metrics on http://{addr}/metrics");
    let mut served = JoinSet::new();
    loop {
        while served.try_join_next().is_some() {}
        if served.len() >= MAX_CLIENTS {
            tokio::select! {
                _ = served.join_next() => continue,
                _ = shutdown.wait() => break,
            }
        }
        let tcp = tokio::select! {
            got = listener.accept() => match got {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
            _ = shutdown.wait() => break,
        };
        served.spawn(answer(tcp, sources.clone()));
    }
    served.abort_all();
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    /// `GET /metrics`.
    Metrics,
    /// Another path.
    NotFound,
    /// Another method.
    NotAllowed,
    /// Not an HTTP request.
    Bad,
}

/// What the request head `head` asks for; `None` while it is incomplete.
fn asked(head: &[u8]) -> Option<Asked> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(Asked::Bad),
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("");
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            Some(match (req.method, path) {
                (Some("GET" | "HEAD"), "/metrics") => Asked::Metrics,
                (Some("GET" | "HEAD"), _) => Asked::NotFound,
                _ => Asked::NotAllowed,
            })
        }
    }
}

/// Reads one request from `tcp` and answers it.
async fn answer(mut tcp: TcpStream, sources: Arc<Sources>) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_WITHIN, async {
        let mut buf = [0u8; 1024];
        loop {
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(a) = asked(&head) {
                return Some(a);
            }
            if head.len() > HEAD_MAX {
                return Some(Asked::Bad);
            }
        }
    })
    .await;
    let Ok(Some(a)) = read else {
        return;
    };
    let head_only = head.starts_with(b"HEAD ");
    let (status, kind, body): (&str, &str, String) = match a {
        Asked::Metrics => return metrics(tcp, sources, head_only).await,
        Asked::NotFound => (
            "404 Not Found",
            "text/plain",
            "only /metrics is here\n".into(),
        ),
        Asked::NotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is answered\n".into(),
        ),
        Asked::Bad => (
            "400 Bad Request",
            "text/plain",
            "not an HTTP request\n".into(),
        ),
    };
    let allow = if a == Asked::NotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(WRITE_WITHIN, async {
        tcp.write_all(reply.as_bytes()).await?;
        if !head_only {
            tcp.write_all(body.as_bytes()).await?;
        }
        tcp.shutdown().await
    })
    .await;
}

/// Pieces of text in flight from the scrape to the connection.
const PIECES_IN_FLIGHT: usize = 2;

/// Answers `/metrics`: the head, then the text piece by piece as the scrape
/// writes it on a blocking task, the body ending when the connection closes
/// (no `Content-Length`: the length is not known before the end). Should
/// the scrape fail midway, the connection is reset rather than closed, so
/// the client sees an error, never a text cut short.
async fn metrics(mut tcp: TcpStream, sources: Arc<Sources>, head_only: bool) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(PIECES_IN_FLIGHT);
    let scrape = tokio::task::spawn_blocking(move || {
        let s = sources;
        super::scrape(&s.fleet, &s.state, &s.counters, &s.history, &mut |piece| {
            // A client that went away takes the rest of the text with it.
            let _ = tx.blocking_send(piece);
        });
    });
    let reply =
        format!("HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nConnection: close\r\n\r\n");
    let written = tokio::time::timeout(WRITE_WITHIN, async {
        tcp.write_all(reply.as_bytes()).await?;
        while let Some(piece) = rx.recv().await {
            if !head_only {
                tcp.write_all(piece.as_bytes()).await?;
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    drop(rx);
    let whole = scrape.await.is_ok();
    if whole && matches!(written, Ok(Ok(()))) {
        let _ = tokio::time::timeout(WRITE_WITHIN, tcp.shutdown()).await;
    } else {
        // SO_LINGER 0: the close sends a reset. Deprecated because a
        // non-zero linger blocks the thread that drops the socket; a zero
        // one discards the unsent data and returns at once.
        #[allow(deprecated)]
        let _ = tcp.set_linger(Some(Duration::ZERO));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_method_and_path() {
        let ask = |s: &str| asked(s.as_bytes());
        assert_eq!(
            ask("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Asked::Metrics)
        );
        assert_eq!(
            ask("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(Asked::Metrics)
        );
        assert_eq!(ask("HEAD /metrics HTTP/1.1\r\n\r\n"), Some(Asked::Metrics));
        assert_eq!(ask("GET / HTTP/1.1\r\n\r\n"), Some(Asked::NotFound));
        assert_eq!(ask("GET /metricsx HTTP/1.1\r\n\r\n"), Some(Asked::NotFound));
        assert_eq!(
            ask("POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Asked::NotAllowed)
        );
        assert_eq!(ask("GET /metrics HTTP/1.1\r\nHost"), None);
        assert_eq!(ask("\x16\x03\x01\x00\x05hello\r\n\r\n"), Some(Asked::Bad));
    }
}
