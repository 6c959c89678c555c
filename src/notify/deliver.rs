//! One attempt at one notification: an HTTP POST (Slack, Discord, a
//! webhook signed when it has a secret, PagerDuty with its routing key
//! added), an email (`smtp`) or a local command, bounded by the
//! receiver's `timeout`. What
//! came back is described in a line without secrets or control
//! characters, for the outbox, the log and `rollguard notify test`.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::payload::with_routing_key;
use super::retry::{Attempt, DELIVERY_HEADER, Judgement, error_chain, judge_status, timed_out};
use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::config::{Receiver, ReceiverKind};
use crate::exec::local::Local;
use crate::printable::printable;
use crate::shell;

/// Bytes of a receiver's answer kept in what is reported.
pub const ANSWER_BYTES: usize = 200;

/// The HTTP client notifications are sent with: no redirects (a webhook
/// that redirects is refused, not followed with its body).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rollguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends notification `id` with body `payload` to `r`, once.
pub async fn attempt(
    client: &reqwest::Client,
    r: &Receiver,
    id: i64,
    topic: &str,
    app: &str,
    payload: &Value,
) -> Attempt {
    let t = r.timeout;
    let done = match &r.kind {
        ReceiverKind::Command { run } => command(r, run, id, topic, app, payload).await,
        ReceiverKind::Slack { url } | ReceiverKind::Discord { url } => {
            post(client, t, url, payload, None, id, topic).await
        }
        ReceiverKind::Webhook { url, secret } => {
            post(client, t, url, payload, secret.as_deref(), id, topic).await
        }
        ReceiverKind::Pagerduty { url, routing_key } => {
            let body = with_routing_key(payload, routing_key);
            post(client, t, url, &body, None, id, topic).await
        }
        ReceiverKind::Email(spec) => super::smtp::send(spec, t, id, topic, payload).await,
        ReceiverKind::Websocket { .. } => Attempt {
            judgement: Judgement::Refused,
            answer: "a websocket receiver is a live stream: nothing is sent to it".into(),
        },
    };
    // Masked whole, then cut: a secret echoed back is never left half
    // shown by the cut.
    Attempt {
        judgement: done.judgement,
        answer: cut(&printable(&r.secrets.mask(&done.answer))),
    }
}

async fn post(
    client: &reqwest::Client,
    timeout: Duration,
    url: &str,
    body: &Value,
    secret: Option<&str>,
    id: i64,
    topic: &str,
) -> Attempt {
    let body = body.to_string();
    let mut req = client
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .header(DELIVERY_HEADER, id.to_string())
        .header("X-Rollguard-Topic", topic);
    if let Some(secret) = secret {
        let ts = crate::model::now_ms() / 1000;
        req = req.header(TIMESTAMP_HEADER, ts.to_string()).header(
            SIGNATURE_HEADER,
            sign(secret.as_bytes(), ts, body.as_bytes()),
        );
    }
    let send = async {
        let resp = req.body(body).send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, bytes))
    };
    // reqwest's timeout covers the whole request; this one covers the rest.
    match tokio::time::timeout(timeout + Duration::from_millis(100), send).await {
        Ok(Ok((status, bytes))) => Attempt {
            judgement: judge_status(status),
            answer: describe(&format!("HTTP {status}"), &bytes),
        },
        Ok(Err(e)) if e.is_timeout() => timed_out(timeout),
        Ok(Err(e)) => Attempt {
            judgement: Judgement::Retry,
            // Without the URL: it may hold a token.
            answer: format!("no answer: {}", error_chain(&e.without_url())),
        },
        Err(_) => timed_out(timeout),
    }
}

/// How much of an answer is read before it is masked and cut.
const READ_BYTES: usize = 64 * 1024;

/// "HTTP 200: ok" with the body (at most [`READ_BYTES`] of it), before it
/// is masked and cut ([`cut`]).
fn describe(head: &str, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(READ_BYTES)]);
    let text = text.trim();
    if text.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {text}")
    }
}

/// `answer` cut to at most [`ANSWER_BYTES`] (at a character boundary),
/// `…` marking a cut.
fn cut(answer: &str) -> String {
    if answer.len() <= ANSWER_BYTES {
        return answer.to_string();
    }
    let mut end = ANSWER_BYTES;
    while !answer.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &answer[..end])
}

/// Runs `run` with `{app}`, `{receiver}`, `{topic}` and `{timeline}`
/// filled in quoted, the event's JSON on standard input and its Markdown
/// in the `{timeline}` file; exit 0 delivers it.
async fn command(
    r: &Receiver,
    run: &str,
    id: i64,
    topic: &str,
    app: &str,
    payload: &Value,
) -> Attempt {
    let fail = |answer: String| Attempt {
        judgement: Judgement::Retry,
        answer,
    };
    let dir = match scratch_dir(id) {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot write the timeline file: {e}")),
    };
    let timeline = dir.join("timeline.md");
    let event = dir.join("event.json");
    let markdown = payload["timeline"].as_str().unwrap_or_default();
    let written = write_private(&timeline, markdown.as_bytes())
        .and_then(|()| write_private(&event, payload["event"].to_string().as_bytes()));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&dir);
        return fail(format!("cannot write the timeline file: {e}"));
    }
    let timeline_s = timeline.to_string_lossy().into_owned();
    let vars = [
        ("app", app),
        ("receiver", r.name.as_str()),
        ("topic", topic),
        ("timeline", timeline_s.as_str()),
    ];
    let script = match shell::render(run, &vars) {
        // A group, so the whole template reads the event on its input.
        Ok(line) => format!("{{ {line}\n}} < {}", shell::quote(&event.to_string_lossy())),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Attempt {
                judgement: Judgement::Refused,
                answer: e.to_string(),
            };
        }
    };
    let out = Local.run(&script, r.timeout).await;
    let _ = std::fs::remove_dir_all(&dir);
    match out {
        Ok(o) => {
            let text = if o.stdout.trim().is_empty() {
                &o.stderr
            } else {
                &o.stdout
            };
            let code = o.code.map_or("killed".to_string(), |c| format!("exit {c}"));
            Attempt {
                judgement: if o.code == Some(0) {
                    Judgement::Delivered
                } else {
                    Judgement::Retry
                },
                answer: describe(&code, text.as_bytes()),
            }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// A new private folder for one attempt's files.
fn scratch_dir(id: i64) -> std::io::Result<PathBuf> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "rollguard-notify-{}-{id}-{seq}",
        std::process::id()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_and_say_their_status() {
        assert_eq!(describe("HTTP 200", b" ok \n"), "HTTP 200: ok");
        assert_eq!(describe("HTTP 204", b""), "HTTP 204");
        let long = vec![b'x'; 500];
        let d = cut(&describe("HTTP 500", &long));
        assert!(d.ends_with('…') && d.len() < 220, "{d}");
        assert_eq!(cut("é".repeat(150).as_str()).chars().last(), Some('…'));
    }
}
