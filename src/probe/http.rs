//! The `http` probe: one request, status and body checks, conditions.
//! Plain `http://` requests go through [`super::http1`], whose
//! idle connections cost a socket each; `https://` ones (and URLs with
//! credentials) through one shared reqwest client, and probes with
//! `insecure_tls` through a second one that accepts any certificate. Both
//! keep connections between runs.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::http1::{self, Connections, Failure};
use super::{MAX_BODY, Outcome, Target};
use crate::condition::Response;
use crate::config::{HttpProbe, HttpTarget, format_duration};
use crate::model::ErrorKind;
use crate::shell;

/// The `User-Agent` of every probe that does not set its own.
const USER_AGENT: &str = concat!("rollguard/", env!("CARGO_PKG_VERSION"));

/// The shared HTTP clients.
#[derive(Debug)]
pub struct Clients {
    plain: Connections,
    strict: reqwest::Client,
    insecure: reqwest::Client,
}

/// Where a plain `http://` request goes.
struct PlainTarget<'a> {
    host: Cow<'a, str>,
    port: u16,
    authority: String,
    path: Cow<'a, str>,
}

/// Whether `path` reaches the server as written: URL parsing would
/// neither escape nor normalise any of it.
fn path_as_written(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@?%".contains(&b))
        && !path
            .split(['?'])
            .next()
            .unwrap_or_default()
            .split('/')
            .any(|seg| seg == "." || seg == "..")
}

/// Whether a host is written as URL parsing would leave it.
fn host_as_written(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// The plain-HTTP target of `url`, or `None` when it is not one (another
/// scheme, or credentials in it).
fn plain_from_url(url: &url::Url) -> Option<PlainTarget<'static>> {
    if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = match url.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    let host_text = url.host_str()?;
    let port = url.port_or_known_default()?;
    let authority = match url.port() {
        Some(p) => format!("{host_text}:{p}"),
        None => host_text.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    Some(PlainTarget {
        host: Cow::Owned(host),
        port,
        authority,
        path: Cow::Owned(path),
    })
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(4)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .no_proxy()
}

impl Clients {
    /// Builds both clients.
    pub fn new() -> Result<Clients, String> {
        let strict = builder()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let insecure = builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Clients {
            plain: Connections::default(),
            strict,
            insecure,
        })
    }

    /// The reqwest client: one that accepts any certificate when
    /// `insecure`.
    pub(crate) fn client(&self, insecure: bool) -> &reqwest::Client {
        if insecure {
            &self.insecure
        } else {
            &self.strict
        }
    }

    /// The idle plain-HTTP connections kept now.
    pub fn idle_connections(&self) -> usize {
        self.plain.idle_count()
    }

    /// Runs one HTTP probe.
    pub async fn run(&self, target: Target<'_>, p: &HttpProbe, timeout: Duration) -> Outcome {
        let url = match &p.target {
            HttpTarget::Path { scheme, path } if scheme == "http" => {
                let address = target.host.address.as_str();
                if path_as_written(path) && host_as_written(address) {
                    let authority = if target.port == 80 {
                        address.to_string()
                    } else {
                        format!("{address}:{}", target.port)
                    };
                    let plain = PlainTarget {
                        host: Cow::Borrowed(address),
                        port: target.port,
                        authority,
                        path: Cow::Borrowed(path),
                    };
                    return self.run_plain(&plain, p, timeout).await;
                }
                format!("{scheme}://{}:{}{path}", target.url_host(), target.port)
            }
            HttpTarget::Path { scheme, path } => {
                format!("{scheme}://{}:{}{path}", target.url_host(), target.port)
            }
            HttpTarget::Url(template) => {
                let vars = target.vars();
                let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
                match shell::render_plain(template, &vars) {
                    Ok(u) => u,
                    Err(e) => return Outcome::fail(ErrorKind::Exec, None, e.to_string()),
                }
            }
        };
        if let Ok(parsed) = url::Url::parse(&url)
            && let Some(plain) = plain_from_url(&parsed)
        {
            return self.run_plain(&plain, p, timeout).await;
        }
        let client = if p.insecure_tls {
            &self.insecure
        } else {
            &self.strict
        };
        let method = match reqwest::Method::from_bytes(p.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Outcome::fail(ErrorKind::Exec, None, "bad HTTP method"),
        };
        let mut req = client.request(method, &url).timeout(timeout);
        for (k, v) in &p.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let started = Instant::now();
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return classify(&e, timeout, Stage::Head),
        };
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_BODY {
                        break; // the rest is not read; the connection is dropped
                    }
                }
                Ok(None) => break,
                Err(e) => return classify(&e, timeout, Stage::Body).with_code(status),
            }
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let body = String::from_utf8_lossy(&body);
        judge(p, status, elapsed_ms, &body)
    }
}

impl Clients {
    /// Runs one HTTP probe over a plain connection (see [`http1`]).
    async fn run_plain(&self, t: &PlainTarget<'_>, p: &HttpProbe, timeout: Duration) -> Outcome {
        let req = http1::Request {
            method: &p.method,
            host: &t.host,
            port: t.port,
            authority: &t.authority,
            path: &t.path,
            headers: &p.headers,
            user_agent: USER_AGENT,
        };
        let started = Instant::now();
        let mut status = None;
        let sent = tokio::time::timeout(timeout, self.plain.send(&req, &mut status)).await;
        let resp = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(f)) => return plain_failure(f, timeout),
            Err(_) => {
                let o = no_answer(timeout);
                return match status {
                    Some(code) => o.with_code(code),
                    None => o,
                };
            }
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let body = String::from_utf8_lossy(&resp.body);
        judge(p, resp.status, elapsed_ms, &body)
    }
}

pub(crate) fn no_answer(timeout: Duration) -> Outcome {
    Outcome::fail(
        ErrorKind::Timeout,
        None,
        format!("no answer within {}", format_duration(timeout)),
    )
}

/// A plain exchange's failure as an outcome, worded as [`classify`] words
/// the same failures of the other clients.
fn plain_failure(f: Failure, timeout: Duration) -> Outcome {
    match f {
        Failure::Dns(e) => Outcome::fail(ErrorKind::Dns, None, last_part(&e)),
        Failure::ConnectTimeout => no_answer(timeout),
        Failure::Connect(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                Outcome::fail(ErrorKind::Refused, None, "connection refused")
            }
            std::io::ErrorKind::TimedOut => no_answer(timeout),
            _ => Outcome::fail(
                ErrorKind::Refused,
                None,
                format!("connection reset or closed ({e})"),
            ),
        },
        Failure::Closed { what, .. } => {
            let message = if what.contains("refused") {
                "connection refused".to_string()
            } else {
                format!("connection reset or closed ({what})")
            };
            Outcome::fail(ErrorKind::Refused, None, message)
        }
        Failure::NotHttp(what) => Outcome::fail(
            ErrorKind::Protocol,
            None,
            format!("not an HTTP response ({what})"),
        ),
        Failure::Body { status, what } => Outcome::fail(
            ErrorKind::Protocol,
            Some(i64::from(status)),
            format!("the response broke off after its head ({what})"),
        ),
    }
}

impl Outcome {
    fn with_code(mut self, code: u16) -> Outcome {
        self.code = Some(i64::from(code));
        self
    }
}

/// Checks a response against status, body and conditions (pure).
pub fn judge(p: &HttpProbe, status: u16, elapsed_ms: f64, body: &str) -> Outcome {
    let code = Some(i64::from(status));
    if !p.expect_status.iter().any(|r| r.contains(status)) {
        let expected: Vec<String> = p
            .expect_status
            .iter()
            .map(|r| {
                if r.lo == r.hi {
                    r.lo.to_string()
                } else {
                    format!("{}-{}", r.lo, r.hi)
                }
            })
            .collect();
        return Outcome::fail(
            ErrorKind::Status,
            code,
            format!("status {status}, expected {}", expected.join(", ")),
        );
    }
    if let Some(needle) = &p.body_contains
        && !body.contains(needle.as_str())
    {
        return Outcome::fail(
            ErrorKind::Body,
            code,
            format!("body does not contain \"{needle}\""),
        );
    }
    if !p.conditions.is_empty() {
        let json = if p.conditions.iter().any(|c| c.needs_json()) {
            serde_json::from_str::<serde_json::Value>(body).ok()
        } else {
            None
        };
        let resp = Response {
            status,
            response_time_ms: elapsed_ms,
            body,
        };
        for c in &p.conditions {
            if let Err(msg) = c.eval(&resp, json.as_ref()) {
                return Outcome::fail(ErrorKind::Condition, code, msg);
            }
        }
    }
    Outcome::pass(code, format!("{status} in {elapsed_ms:.0}ms"))
}

/// How far a request got when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Waiting for the status line and headers.
    Head,
    /// The head arrived; reading the body.
    Body,
}

/// Hyper's messages for an answer that does not parse as HTTP/1 (its
/// parse errors and bytes sent unasked). reqwest does not expose hyper's
/// error kinds, so they are recognised by their text.
const NOT_HTTP: &[&str] = &[
    "invalid http",
    "invalid content-length",
    "transfer-encoding parsed",
    "message head is too large",
    "unexpected message",
];

/// Sorts a reqwest error into an [`ErrorKind`] by walking its causes.
///
/// An answer that is not HTTP, or that breaks off once its head has
/// arrived, is [`ErrorKind::Protocol`]: the server answered, wrongly, so
/// it is not retried. A connection closed before the head was complete
/// cannot be told apart from a stale or reset one and stays
/// [`ErrorKind::Refused`].
pub(crate) fn classify(e: &reqwest::Error, timeout: Duration, stage: Stage) -> Outcome {
    if e.is_timeout() {
        return Outcome::fail(
            ErrorKind::Timeout,
            None,
            format!("no answer within {}", format_duration(timeout)),
        );
    }
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut kind = None;
    while let Some(err) = source {
        let text = err.to_string();
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            kind = kind.or(match io.kind() {
                Io::ConnectionRefused
                | Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof => Some(ErrorKind::Refused),
                Io::TimedOut => Some(ErrorKind::Timeout),
                _ => None,
            });
        }
        let lower = text.to_ascii_lowercase();
        if kind.is_none() {
            if NOT_HTTP.iter().any(|m| lower.contains(m)) {
                kind = Some(ErrorKind::Protocol);
            } else if lower.contains("dns error") || lower.contains("failed to lookup") {
                kind = Some(ErrorKind::Dns);
            } else if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake")
            {
                kind = Some(ErrorKind::Tls);
            } else if lower.contains("connection closed before message completed")
                || lower.contains("connection reset")
                || lower.contains("incomplete message")
            {
                kind = Some(ErrorKind::Refused);
            }
        }
        if !chain.contains(&text) {
            if !chain.is_empty() {
                chain.push_str(": ");
            }
            chain.push_str(&text);
        }
        source = err.source();
    }
    let kind = match (stage, kind) {
        (_, Some(ErrorKind::Timeout)) => ErrorKind::Timeout,
        (Stage::Body, _) => ErrorKind::Protocol,
        (Stage::Head, Some(kind)) => kind,
        (Stage::Head, None) if e.is_connect() => ErrorKind::Refused,
        (Stage::Head, None) => ErrorKind::Exec,
    };
    let message = match kind {
        ErrorKind::Protocol if stage == Stage::Body => {
            format!(
                "the response broke off after its head ({})",
                last_part(&chain)
            )
        }
        ErrorKind::Protocol => format!("not an HTTP response ({})", last_part(&chain)),
        ErrorKind::Refused => {
            if chain.contains("refused") {
                "connection refused".to_string()
            } else {
                format!("connection reset or closed ({})", last_part(&chain))
            }
        }
        _ => last_part(&chain).to_string(),
    };
    Outcome::fail(kind, None, message)
}

fn last_part(chain: &str) -> &str {
    chain.rsplit(": ").next().unwrap_or(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Condition;
    use crate::config::StatusRange;

    fn probe(conditions: &[&str]) -> HttpProbe {
        HttpProbe {
            method: "GET".into(),
            target: HttpTarget::Path {
                scheme: "http".into(),
                path: "/".into(),
            },
            headers: vec![],
            expect_status: vec![StatusRange { lo: 200, hi: 299 }],
            body_contains: Some("ok".into()),
            conditions: conditions
                .iter()
                .map(|c| Condition::parse(c).unwrap())
                .collect(),
            insecure_tls: false,
        }
    }

    #[test]
    fn judge_orders_checks() {
        let p = probe(&["[BODY].n < 5"]);
        assert_eq!(judge(&p, 503, 1.0, "ok").error, Some(ErrorKind::Status));
        assert_eq!(judge(&p, 200, 1.0, "nope").error, Some(ErrorKind::Body));
        let o = judge(&p, 200, 1.0, r#"{"s":"ok","n":9}"#);
        assert_eq!(o.error, Some(ErrorKind::Condition));
        assert!(o.message.contains("9 < 5"), "{}", o.message);
        assert_eq!(judge(&p, 200, 1.0, r#"{"s":"ok","n":1}"#).error, None);
    }
}
