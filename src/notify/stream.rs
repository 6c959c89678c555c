//! The live event stream: each `websocket` receiver is a listener on a
//! loopback address that sends every event of the audit log, as the same
//! JSON line `rollguard events --json` prints, to each client that
//! presented the receiver's token. Run by the process that holds the
//! prober's lease (`monitor/lease.rs`), as the notifier is; a stream has
//! no outbox rows: a client hears what is recorded while it is connected.
//!
//! A client presents the token as `Authorization: Bearer TOKEN` or, for a
//! browser, as `?token=TOKEN` in the URL; without it the handshake is
//! refused with HTTP 401 and nothing is sent. A slow client delays
//! nothing: one task follows the history and hands each event to every
//! client through a bounded buffer ([`BUFFER`] events); a client that
//! falls that far behind, or whose socket takes no data for
//! [`SEND_WITHIN`], is disconnected with a close frame saying why. A ping
//! goes out every [`PING_EVERY`]; a client silent for [`SILENT_FOR`] is
//! disconnected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::config::{Fleet, Receiver, ReceiverKind};
use crate::model::topic::Topic;
use crate::shutdown::Shutdown;
use crate::store::Location;
use crate::store::{Event, SharedStore, with_store};

/// Events a client may fall behind before it is disconnected.
pub const BUFFER: usize = 512;
/// Events read at once, and pages read per look at most: together half a
/// client's buffer, so a burst read at once never leaves a client behind.
const PAGE: usize = 128;
const PAGES: usize = 2;
/// How often the history is read for new events.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// How often a client is pinged.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A client heard from (a pong, any frame) less recently than this is
/// disconnected.
pub const SILENT_FOR: Duration = Duration::from_secs(45);
/// How long one frame may wait for a client's socket.
pub const SEND_WITHIN: Duration = Duration::from_secs(5);
/// How long a client has to finish its handshake.
pub const HANDSHAKE_WITHIN: Duration = Duration::from_secs(5);
/// Clients one listener serves at once.
pub const MAX_CLIENTS: usize = 64;
/// How long a listener whose address is taken waits to try again.
pub const BIND_AGAIN: Duration = Duration::from_secs(5);

/// The running listeners. [`Stream::stop`] ends them.
pub struct Stream {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Stream {
    /// Starts a listener per `websocket` receiver of `fleet`, streaming
    /// what is recorded in the history at `db` from now on; `None` when
    /// there is none.
    pub fn start(fleet: Arc<Fleet>, db: &Location) -> Option<Stream> {
        let receivers: Vec<Arc<Receiver>> = fleet
            .receivers()
            .into_iter()
            .filter(|r| !r.kind.outbox())
            .collect();
        if receivers.is_empty() {
            return None;
        }
        let (shutdown, rx) = watch::channel(false);
        let rx = Shutdown::new(rx);
        let (events, _) = broadcast::channel(BUFFER);
        let mut tasks = vec![tokio::spawn(follow(db.clone(), events.clone(), rx.clone()))];
        for r in receivers {
            tasks.push(tokio::spawn(listen(r, events.clone(), rx.clone())));
        }
        Some(Stream { shutdown, tasks })
    }

    /// Closes every client and listener.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Reads the events recorded after the newest one at start, in order, and
/// hands each to every client.
async fn follow(db: Location, tx: broadcast::Sender<Arc<Event>>, mut shutdown: Shutdown) {
    let store: SharedStore = Arc::default();
    let read = |after: Option<i64>| {
        let (db, store) = (db.clone(), store.clone());
        tokio::task::spawn_blocking(move || {
            with_store(&db, &store, |s| {
                let e = |e: crate::store::StoreError| e.message();
                match after {
                    None => s.last_event_id().map(|id| (id, Vec::new())).map_err(e),
                    // A few pages at a time, so a burst is not read a page a tick.
                    Some(id) => {
                        let mut all = Vec::new();
                        let mut after = id;
                        for _ in 0..PAGES {
                            let page = s.events_after(after, None, None, PAGE).map_err(e)?;
                            let full = page.len() == PAGE;
                            after = page.last().map_or(after, |ev| ev.id);
                            all.extend(page);
                            if !full {
                                break;
                            }
                        }
                        Ok((id, all))
                    }
                }
            })
        })
    };
    let mut cursor: Option<i64> = None;
    let mut warned = false;
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !shutdown.tick(&mut tick).await {
            return;
        }
        match read(cursor).await {
            Ok(Ok((start, events))) => {
                warned = false;
                cursor = Some(events.last().map_or(start, |e| e.id));
                for e in events {
                    // No client connected is no error.
                    let _ = tx.send(Arc::new(e));
                }
            }
            Ok(Err(e)) if !warned => {
                tracing::warn!("the event stream cannot read the history: {e}");
                warned = true;
            }
            _ => {}
        }
    }
}

/// Listens on `r`'s address and serves each client in its own task.
async fn listen(r: Arc<Receiver>, events: broadcast::Sender<Arc<Event>>, mut shutdown: Shutdown) {
    let ReceiverKind::Websocket { listen: addr, .. } = r.kind else {
        return;
    };
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(receiver = %r.name, "cannot listen on {addr}: {e}; trying again");
                if !shutdown.sleep(BIND_AGAIN).await {
                    return;
                }
            }
        }
    };
    tracing::info!(receiver = %r.name, "streaming events on ws://{addr}/");
    let clients = Arc::new(AtomicUsize::new(0));
    let mut served = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            got = listener.accept() => match got {
                Ok(c) => c,
                Err(_) => continue,
            },
            _ = shutdown.wait() => break,
        };
        while served.try_join_next().is_some() {}
        if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
            tracing::warn!(receiver = %r.name, "{peer} refused: {MAX_CLIENTS} clients already");
            continue;
        }
        clients.fetch_add(1, Ordering::Relaxed);
        let (r, rx, stop, count) = (
            r.clone(),
            events.subscribe(),
            shutdown.clone(),
            clients.clone(),
        );
        served.spawn(async move {
            serve(&r, tcp, peer, rx, stop).await;
            count.fetch_sub(1, Ordering::Relaxed);
        });
    }
    while served.join_next().await.is_some() {}
}

/// One client: the handshake with its token, then its events.
async fn serve(
    r: &Receiver,
    tcp: TcpStream,
    peer: SocketAddr,
    events: broadcast::Receiver<Arc<Event>>,
    shutdown: Shutdown,
) {
    let ReceiverKind::Websocket {
        token, every_event, ..
    } = &r.kind
    else {
        return;
    };
    let Some(ws) = handshake(tcp, token).await else {
        tracing::info!(receiver = %r.name, "{peer} refused: no valid token or no handshake");
        return;
    };
    tracing::info!(receiver = %r.name, "{peer} connected to the event stream");
    let why = send_events(r, *every_event, ws, events, shutdown).await;
    tracing::info!(receiver = %r.name, "{peer} left the event stream: {why}");
}

/// The WebSocket handshake, within [`HANDSHAKE_WITHIN`]: refused with 401
/// unless the client presents `token`.
async fn handshake(tcp: TcpStream, token: &str) -> Option<WebSocketStream<TcpStream>> {
    // The handshake's own type: tungstenite's callback returns it unboxed.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if authorized(req, token) {
            return Ok(resp);
        }
        let mut refused = ErrorResponse::new(Some("a valid token is required\n".into()));
        *refused.status_mut() = StatusCode::UNAUTHORIZED;
        refused
            .headers_mut()
            .insert("WWW-Authenticate", HeaderValue::from_static("Bearer"));
        Err(refused)
    };
    let accepted = tokio::time::timeout(
        HANDSHAKE_WITHIN,
        tokio_tungstenite::accept_hdr_async(tcp, check),
    )
    .await;
    accepted.ok()?.ok()
}

/// Sends the client the events `r` streams, pings it, and closes it when
/// it falls behind, goes silent or the stream stops; returns why it ended.
async fn send_events(
    r: &Receiver,
    every_event: bool,
    ws: WebSocketStream<TcpStream>,
    mut events: broadcast::Receiver<Arc<Event>>,
    mut shutdown: Shutdown,
) -> String {
    let (mut sink, mut incoming) = ws.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = tokio::time::Instant::now();
    let close = |code: CloseCode, why: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: why.into(),
        }))
    };
    loop {
        let (frame, last) = tokio::select! {
            got = events.recv() => match got {
                Ok(e) if wanted(&r.on, every_event, r.apps.as_deref(), &e) => {
                    (Message::text(crate::audit::json_line(&e)), None)
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let why = format!("too slow: {n} events behind; reconnect");
                    (close(CloseCode::Policy, &why), Some(why))
                }
                Err(broadcast::error::RecvError::Closed) => return "the stream ended".into(),
            },
            got = incoming.next() => match got {
                Some(Ok(Message::Close(_))) | None => return "it closed".into(),
                Some(Err(e)) => return e.to_string(),
                Some(Ok(_)) => {
                    heard = tokio::time::Instant::now();
                    continue;
                }
            },
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR {
                    let why = "no answer to pings".to_string();
                    (close(CloseCode::Away, &why), Some(why))
                } else {
                    (Message::Ping(Bytes::from_static(b"rollguard")), None)
                }
            }
            _ = shutdown.wait() => {
                let why = "rollguard stopped streaming here".to_string();
                (close(CloseCode::Away, &why), Some(why))
            }
        };
        let sent = tokio::time::timeout(SEND_WITHIN, sink.send(frame)).await;
        if let Some(why) = last {
            return why;
        }
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "its socket took nothing: too slow".into(),
        }
    }
}

/// Whether `req` presents `token`: `Authorization: Bearer TOKEN` or
/// `?token=TOKEN`, compared in constant time.
pub fn authorized(req: &Request, token: &str) -> bool {
    let digest = |s: &[u8]| Sha256::digest(s);
    let want = digest(token.as_bytes());
    let same = |given: &[u8]| {
        let got = digest(given);
        !token.is_empty()
            && got
                .iter()
                .zip(want.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    let header = req
        .headers()
        .get_all("authorization")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .any(|t| same(t.trim().as_bytes()));
    let query = req.uri().query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "token" && same(v.as_bytes()))
    });
    header || query
}

/// Whether a receiver listening to `on` (every event when `every_event`)
/// about `apps` (every app when `None`) streams `e`.
pub fn wanted(on: &[Topic], every_event: bool, apps: Option<&[String]>, e: &Event) -> bool {
    let app = apps.is_none_or(|a| a.contains(&e.app));
    let topic = every_event
        || e.typed()
            .ok()
            .and_then(|k| Topic::of(&k))
            .is_some_and(|t| on.contains(&t));
    app && topic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, auth: Option<&str>) -> Request {
        let mut b = Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn a_client_presents_the_token_in_a_header_or_the_url() {
        let t = "s3cret+token/x";
        assert!(authorized(&request("/", Some("Bearer s3cret+token/x")), t));
        assert!(authorized(&request("/?token=s3cret%2Btoken%2Fx", None), t));
        assert!(authorized(
            &request("/?a=1&token=s3cret%2Btoken/x", None),
            t
        ));
        assert!(!authorized(&request("/", None), t));
        assert!(!authorized(&request("/", Some("Bearer wrong")), t));
        assert!(!authorized(&request("/", Some("s3cret+token/x")), t));
        assert!(!authorized(&request("/?token=s3cret", None), t));
        assert!(!authorized(&request("/?token=", None), ""));
    }

    #[test]
    fn events_are_streamed_by_app_and_by_topic_when_on_is_given() {
        let event = |app: &str, kind: &str| Event {
            id: 1,
            at_ms: 0,
            app: app.into(),
            deployment_id: None,
            kind: kind.into(),
            actor: "rollguard".into(),
            reason: None,
            evidence: Some(
                serde_json::json!({"receiver": "x", "notification": 1, "topic": "t", "attempts": 1}),
            ),
        };
        let sent = event("web", "notification_sent");
        let apps = ["web".to_string()];
        assert!(wanted(&[], true, None, &sent));
        assert!(wanted(&[], true, Some(&apps), &sent));
        assert!(!wanted(
            &[],
            true,
            Some(&apps),
            &event("shop", "notification_sent")
        ));
        // With `on`, only events of those topics.
        assert!(!wanted(&[Topic::IncidentOpened], false, None, &sent));
    }
}
