//! Plain `http://` probes speak HTTP/1.1 themselves, over connections kept
//! open between runs. A fleet of ten thousand instances keeps ten thousand
//! connections; what each costs while it waits for the next run is what
//! this file is about: an idle connection is its socket and nothing else
//! (no task, no buffers), and a run borrows buffers only while it reads.
//!
//! One exchange: write the request, read the head (1xx answers skipped),
//! read the body by its framing (`Content-Length`, chunked, or until the
//! connection closes; at most [`MAX_BODY`]), and put the connection back
//! for the next run when the answer allows it. A connection taken from the
//! idle set that closes before sending anything was closed by the server
//! while idle: the request is sent once more on a new connection, as any
//! client does. `https://` probes, and URLs with credentials, go through
//! reqwest instead (see `http.rs`).
//!
//! Why not hyper's client connection (`hyper::client::conn::http1`, tried
//! in this file's place): each kept-alive connection holds a task, a read
//! buffer and an 8 KiB header buffer, and 10,000 endpoints × 1 s peaked at
//! 315 MB with a 2 KiB read buffer (355 MB with hyper's defaults, 401 MB
//! over 180 s) where this file takes 140 MB; the target is 200 MB.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::MAX_BODY;

mod framing;

use framing::{Chunks, Framing, Head, parse_head};

/// An idle connection unused for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections are kept per (host, port).
pub const IDLE_PER_PEER: usize = 4;
/// A response head longer than this is refused.
pub const MAX_HEAD: usize = 64 * 1024;
/// Connecting gives up after this long (the probe's timeout may be shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often idle connections past [`IDLE_TIMEOUT`] are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// The first read buffer of a run; it grows for longer answers.
const FIRST_READ: usize = 2048;

/// One request, as the probe asks for it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Where to connect: a name or an IP address (IPv6 without brackets).
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The `Host` header: host, and port unless 80 (IPv6 in brackets).
    pub authority: &'a str,
    /// Path and query, starting with `/`.
    pub path: &'a str,
    /// The probe's own headers; one named like a default replaces it.
    pub headers: &'a [(String, String)],
    /// The `User-Agent` header unless the probe sets one.
    pub user_agent: &'a str,
}

/// A complete answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The final status (after any 1xx).
    pub status: u16,
    /// The body, at most [`MAX_BODY`] bytes of it.
    pub body: Vec<u8>,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum Failure {
    /// The name did not resolve.
    Dns(String),
    /// Connecting failed.
    Connect(io::Error),
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// The connection was reset or closed before the head was complete
    /// (`what` says how); `answered` tells whether any byte came back.
    Closed {
        /// How it ended, in words.
        what: String,
        /// Whether any byte came back.
        answered: bool,
    },
    /// What came back is not an HTTP/1 response head.
    NotHttp(String),
    /// The head arrived (with `status`) but the body broke off.
    Body {
        /// The status of the head that arrived.
        status: u16,
        /// How the body broke off, in words.
        what: String,
    },
}

/// The idle connections of every (host, port) probed.
#[derive(Debug)]
pub struct Connections {
    idle: Mutex<Idle>,
}

/// FNV-1a: the idle set is looked up twice per run by short keys that
/// come from the configuration, not from the network, so a fast hash
/// with no defence against chosen collisions is the right one.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

#[derive(Debug)]
struct Idle {
    /// Host, then port: connections last used at the given time.
    peers: FnvMap<String, FnvMap<u16, Vec<(TcpStream, Instant)>>>,
    swept: Instant,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            idle: Mutex::new(Idle {
                peers: FnvMap::default(),
                swept: Instant::now(),
            }),
        }
    }
}

impl Connections {
    /// Sends `req` and reads the answer. `status` is set as soon as a final
    /// head arrives, so a caller that gives up (a timeout) can tell whether
    /// the head had come. The caller bounds the whole exchange in time.
    pub async fn send(
        &self,
        req: &Request<'_>,
        status: &mut Option<u16>,
    ) -> Result<Response, Failure> {
        let bytes = request_bytes(req);
        let head_only = req.method == "HEAD";
        if let Some(mut stream) = self.take(req.host, req.port) {
            match exchange(&mut stream, &bytes, head_only, status).await {
                Ok((resp, reusable)) => {
                    if reusable {
                        self.put(req.host, req.port, stream);
                    }
                    return Ok(resp);
                }
                // Closed while idle: the server never saw this request.
                Err(Failure::Closed {
                    answered: false, ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let mut stream = connect(req.host, req.port).await?;
        let (resp, reusable) = exchange(&mut stream, &bytes, head_only, status).await?;
        if reusable {
            self.put(req.host, req.port, stream);
        }
        Ok(resp)
    }

    /// An idle connection to (host, port) that is still open, if any.
    fn take(&self, host: &str, port: u16) -> Option<TcpStream> {
        loop {
            let (stream, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.peers.get_mut(host)?.get_mut(&port)?.pop()?
            };
            if since.elapsed() < IDLE_TIMEOUT && still_open(&stream) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for the next run to (host, port).
    fn put(&self, host: &str, port: u16, stream: TcpStream) {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(idle.swept) >= SWEEP_EVERY {
            idle.swept = now;
            for ports in idle.peers.values_mut() {
                for conns in ports.values_mut() {
                    conns.retain(|(_, since)| now.duration_since(*since) < IDLE_TIMEOUT);
                }
            }
        }
        let ports = match idle.peers.get_mut(host) {
            Some(p) => p,
            None => idle.peers.entry(host.to_string()).or_default(),
        };
        let conns = ports.entry(port).or_default();
        if conns.len() < IDLE_PER_PEER {
            conns.push((stream, now));
        }
    }

    /// Idle connections kept now (for tests and estimates).
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.peers
            .values()
            .flat_map(|ports| ports.values())
            .map(Vec::len)
            .sum()
    }
}

/// Whether an idle connection is still open and has nothing unread: the
/// server neither closed it nor sent anything unasked. Costs no system
/// call when nothing happened on the socket since it was last read.
fn still_open(stream: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(stream.try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

async fn connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match tokio::net::lookup_host((host, port)).await {
            Ok(a) => a.collect(),
            Err(e) => return Err(Failure::Dns(e.to_string())),
        },
    };
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => return Err(Failure::ConnectTimeout),
        }
    }
    Err(match last {
        Some(e) => Failure::Connect(e),
        None => Failure::Dns(format!("no address for {host}")),
    })
}

/// The request's bytes: request line, `Host`, `User-Agent`, `Accept`, the
/// probe's headers, and `Content-Length: 0` for methods that carry a body.
fn request_bytes(req: &Request<'_>) -> Vec<u8> {
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut out = Vec::with_capacity(
        128 + req.path.len()
            + req
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>(),
    );
    let mut line = |parts: &[&str]| {
        for p in parts {
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    };
    line(&[req.method, " ", req.path, " HTTP/1.1"]);
    if !has("host") {
        line(&["host: ", req.authority]);
    }
    if !has("user-agent") {
        line(&["user-agent: ", req.user_agent]);
    }
    if !has("accept") {
        line(&["accept: */*"]);
    }
    for (k, v) in req.headers {
        line(&[k, ": ", v]);
    }
    let bodyless = matches!(
        req.method,
        "GET" | "HEAD" | "DELETE" | "OPTIONS" | "CONNECT" | "TRACE"
    );
    if !bodyless && !has("content-length") {
        line(&["content-length: 0"]);
    }
    line(&[]);
    out
}

/// Reads more into `buf` (growing it up to `limit` bytes); `Ok(0)` at
/// the end of the stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    if buf.capacity() == buf.len() {
        let more = buf
            .capacity()
            .max(FIRST_READ)
            .min(limit.saturating_sub(buf.len()));
        buf.reserve_exact(more.max(1));
    }
    stream.read_buf(buf).await
}

fn io_text(e: &io::Error) -> String {
    e.to_string()
}

/// One request and its answer on `stream`. Returns the answer and whether
/// the connection can carry another request.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    head_only: bool,
    status: &mut Option<u16>,
) -> Result<(Response, bool), Failure> {
    if let Err(e) = stream.write_all(request).await {
        return Err(Failure::Closed {
            what: io_text(&e),
            answered: false,
        });
    }
    let mut buf: Vec<u8> = Vec::with_capacity(FIRST_READ);
    let head = read_head(stream, &mut buf, head_only).await?;
    *status = Some(head.status);
    buf.drain(..head.len);
    let (body, complete) = read_body(stream, buf, head).await?;
    Ok((
        Response {
            status: head.status,
            body,
        },
        head.keep_alive && complete,
    ))
}

/// Reads the final head of the answer into `buf`, skipping 1xx heads
/// (but 101).
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_only: bool,
) -> Result<Head, Failure> {
    let closed = |what: String, answered: bool| Failure::Closed { what, answered };
    loop {
        match parse_head(buf, head_only) {
            Ok(Some(h)) if (100..200).contains(&h.status) && h.status != 101 => {
                buf.drain(..h.len);
                continue;
            }
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {}
            Err(e) => return Err(Failure::NotHttp(e)),
        }
        let answered = !buf.is_empty();
        match fill(stream, buf, MAX_HEAD + FIRST_READ).await {
            Ok(0) => {
                return Err(closed(
                    "connection closed before message completed".into(),
                    answered,
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(closed(io_text(&e), answered)),
        }
    }
}

/// Reads the body `head` frames, starting with what `buf` holds (at most
/// [`MAX_BODY`]); returns it and whether it was read whole.
async fn read_body(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    head: Head,
) -> Result<(Vec<u8>, bool), Failure> {
    let code = head.status;
    let broke = |what: String| Failure::Body { status: code, what };
    Ok(match head.framing {
        Framing::Empty => (Vec::new(), true),
        Framing::Length(n) => {
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(MAX_BODY);
            while buf.len() < want {
                match fill(stream, &mut buf, want).await {
                    Ok(0) => return Err(broke("end of file before message length reached".into())),
                    Ok(_) => {}
                    Err(e) => return Err(broke(io_text(&e))),
                }
            }
            let complete = want as u64 == n && buf.len() == want;
            buf.truncate(want);
            (buf, complete)
        }
        Framing::UntilClose => {
            loop {
                if buf.len() >= MAX_BODY {
                    buf.truncate(MAX_BODY);
                    break;
                }
                match fill(stream, &mut buf, MAX_BODY).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(broke(io_text(&e))),
                }
            }
            (buf, false)
        }
        Framing::Chunked => {
            let mut chunks = Chunks::default();
            loop {
                match chunks.feed(&mut buf) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => return Err(broke(e.into())),
                }
                if chunks.body.len() >= MAX_BODY {
                    break;
                }
                match fill(stream, &mut buf, MAX_HEAD + FIRST_READ).await {
                    Ok(0) => return Err(broke("end of file before message length reached".into())),
                    Ok(_) => {}
                    Err(e) => return Err(broke(io_text(&e))),
                }
            }
            let complete = chunks.done() && buf.is_empty();
            (chunks.body, complete)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(parts: &[&[u8]]) -> Result<(Vec<u8>, bool), &'static str> {
        let mut c = Chunks::default();
        let mut raw = Vec::new();
        let mut done = false;
        for p in parts {
            raw.extend_from_slice(p);
            done = c.feed(&mut raw)?;
        }
        Ok((c.body, done && raw.is_empty()))
    }

    #[test]
    fn chunks_decode_in_any_split() {
        let whole: &[u8] =
            b"4\r\nWiki\r\n6;x=y\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\n";
        let want = b"Wikipedia in \r\n\r\nchunks.".to_vec();
        assert_eq!(decode(&[whole]).unwrap(), (want.clone(), true));
        for cut in 1..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(
                decode(&[a, b]).unwrap(),
                (want.clone(), true),
                "cut at {cut}"
            );
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap(), (want, true));
        assert!(decode(&[b"zz\r\nxx\r\n"]).is_err());
        assert!(decode(&[b"2\r\nabXY"]).is_err());
        assert_eq!(decode(&[b"3\r\nab"]).unwrap(), (b"ab".to_vec(), false));
    }

    #[test]
    fn heads_and_their_framing() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(5), true)
        );
        assert_eq!(h.len, 38);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = parse_head(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(h.keep_alive);
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        let h = parse_head(b"HTTP/1.1 200 OK\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let h = parse_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, false));
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Ty", false)
                .unwrap()
                .is_none()
        );
        for bad in [
            &b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(
                parse_head(bad, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD + 1));
        assert!(parse_head(&long, false).is_err());
    }

    #[test]
    fn requests_carry_defaults_unless_the_probe_sets_them() {
        let headers = vec![("Accept".to_string(), "application/json".to_string())];
        let req = Request {
            method: "GET",
            host: "::1",
            port: 8080,
            authority: "[::1]:8080",
            path: "/health?x=1",
            headers: &headers,
            user_agent: "rollguard/test",
        };
        let text = String::from_utf8(request_bytes(&req)).unwrap();
        assert_eq!(
            text,
            "GET /health?x=1 HTTP/1.1\r\nhost: [::1]:8080\r\nuser-agent: rollguard/test\r\n\
             Accept: application/json\r\n\r\n"
        );
        let post = Request {
            method: "POST",
            headers: &[],
            ..req
        };
        let text = String::from_utf8(request_bytes(&post)).unwrap();
        assert!(
            text.ends_with("accept: */*\r\ncontent-length: 0\r\n\r\n"),
            "{text}"
        );
    }
}
