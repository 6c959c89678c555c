//! The demo's notification receiver: a small HTTP server on loopback that
//! the demo's `[[notify]]` receiver (`type = "slack"`, every topic) posts
//! to, standing in for Slack. It answers `200 ok`, keeps each body in
//! `DIR/notifications/N.json`, and says what it got, as Slack would show
//! the message, in rollguard's log (the console's log pane and Logs view)
//! or, with `--headless`, on standard error. The rendering ([`slack_text`])
//! is pure.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::printable::printable_lines;

/// Where the receiver says what it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Say {
    /// In rollguard's log (the console).
    Log,
    /// On standard error (`--headless`, whose standard output is its
    /// summary).
    Stderr,
}

/// How long one request may take to arrive.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The largest body kept; a bigger one is refused with 413.
const MAX_BODY: usize = 256 * 1024;

/// Listens on a free loopback port; returns it. The task ends with the
/// runtime.
pub async fn start(dir: PathBuf, say: Say) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::fs::create_dir_all(&dir).await?;
    let count = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (dir, count) = (dir.clone(), count.clone());
            tokio::spawn(async move {
                // A client that sends nothing is not waited for.
                if let Ok(Some(body)) = tokio::time::timeout(ANSWER_WITHIN, answer(stream)).await {
                    let _ =
                        tokio::task::spawn_blocking(move || keep(&dir, &count, &body, say)).await;
                }
            });
        }
    });
    Ok(port)
}

/// Reads one request and answers it; the body of a POST.
async fn answer(mut stream: TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        let _ = stream
            .write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return None;
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .await;
    let end = buf.len().min(head_end + length);
    head.starts_with("post ")
        .then(|| buf[head_end..end].to_vec())
}

/// Keeps `body` as the next `N.json` and says what it got. Blocking.
fn keep(dir: &std::path::Path, count: &AtomicU64, body: &[u8], say: Say) {
    let n = count.fetch_add(1, Ordering::Relaxed) + 1;
    // Whole or not at all: whoever reads the folder never sees half a
    // message.
    let tmp = dir.join(format!(".{n}.json.tmp"));
    if std::fs::write(&tmp, body).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(format!("{n}.json")));
    }
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => slack_text(&v),
        Err(_) => "(a body that is not JSON)".to_string(),
    };
    let text = printable_lines(&text);
    match say {
        // One line a message in the log (its title), the whole message
        // with more detail (`+`), so the console's own lines stay in view.
        Say::Log => {
            let title = text.lines().next().unwrap_or_default();
            tracing::info!(target: "rollguard::demo::receiver", "Slack got: {title}");
            for line in text.lines().skip(1) {
                tracing::debug!(target: "rollguard::demo::receiver", "  {line}");
            }
        }
        Say::Stderr => {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "── the demo's Slack got message {n} ──\n{text}");
        }
    }
}

/// A Slack message's blocks as plain text, the way Slack shows them: the
/// header, each section's text and fields, the context line. `*bold*`
/// marks are kept, as a phone shows them bold.
pub fn slack_text(v: &Value) -> String {
    let plain = |t: &Value| t["text"].as_str().unwrap_or_default().to_string();
    let mut lines = Vec::new();
    let Some(blocks) = v["blocks"].as_array() else {
        return v["text"].as_str().unwrap_or("(no text)").to_string();
    };
    for b in blocks {
        match b["type"].as_str() {
            Some("header") => lines.push(plain(&b["text"])),
            Some("section") => {
                if b["text"].is_object() {
                    lines.push(plain(&b["text"]));
                }
                if let Some(fields) = b["fields"].as_array() {
                    let fields: Vec<String> = fields
                        .iter()
                        .map(|f| plain(f).replacen('\n', ": ", 1))
                        .collect();
                    lines.push(fields.join("   "));
                }
            }
            Some("context") => {
                let parts: Vec<String> = (b["elements"].as_array().into_iter().flatten())
                    .map(plain)
                    .collect();
                lines.push(parts.join(" · "));
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_message_reads_as_slack_shows_it() {
        let v = json!({"text": "t", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "🔴 checkout: rollback started"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "v3 failed its gate."}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*App*\ncheckout"},
                {"type": "mrkdwn", "text": "*Release*\nv3"}
            ]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "`rollguard status checkout`"},
                {"type": "mrkdwn", "text": "by alice"}
            ]}
        ]});
        assert_eq!(
            slack_text(&v),
            "🔴 checkout: rollback started\nv3 failed its gate.\n*App*: checkout   *Release*: v3\n`rollguard status checkout` · by alice"
        );
    }

    #[test]
    fn a_body_without_blocks_reads_as_its_text() {
        assert_eq!(slack_text(&json!({"text": "hello"})), "hello");
        assert_eq!(slack_text(&json!({})), "(no text)");
    }

    #[tokio::test]
    async fn a_post_is_answered_and_kept() {
        let dir = std::env::temp_dir().join(format!("rg-receiver-{}", std::process::id()));
        let port = start(dir.clone(), Say::Log).await.unwrap();
        let client = reqwest::Client::new();
        let r = client
            .post(format!("http://127.0.0.1:{port}/slack"))
            .body(r#"{"text":"hi"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        for _ in 0..50 {
            if dir.join("1.json").exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("1.json")).unwrap(),
            r#"{"text":"hi"}"#
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
