//! The `tcp` probe: connect, optionally send a line and look for an answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{MAX_BODY, Outcome, Target};
use crate::config::{TcpProbe, format_duration};
use crate::model::ErrorKind;

/// Runs one TCP probe within `timeout`.
pub async fn run(target: Target<'_>, p: &TcpProbe, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, attempt(target, p)).await {
        Ok(o) => o,
        Err(_) => Outcome::fail(
            ErrorKind::Timeout,
            None,
            format!("no answer within {}", format_duration(timeout)),
        ),
    }
}

async fn attempt(target: Target<'_>, p: &TcpProbe) -> Outcome {
    let port = p.port.unwrap_or(target.port);
    let addr = target.host.address.as_str();
    let addrs: Vec<_> = match tokio::net::lookup_host((addr, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Outcome::fail(ErrorKind::Dns, None, format!("{addr}: {e}")),
    };
    if addrs.is_empty() {
        return Outcome::fail(ErrorKind::Dns, None, format!("{addr}: no address"));
    }
    let mut stream = match TcpStream::connect(&addrs[..]).await {
        Ok(s) => s,
        Err(e) => return io_failure(&e, port),
    };
    if let Some(send) = &p.send
        && let Err(e) = stream.write_all(send.as_bytes()).await
    {
        return io_failure(&e, port);
    }
    let Some(expect) = &p.expect else {
        return Outcome::pass(None, format!("connected to port {port}"));
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains(expect.as_str()) {
                    return Outcome::pass(None, format!("port {port} answered \"{expect}\""));
                }
                if buf.len() >= MAX_BODY {
                    break;
                }
            }
            Err(e) => return io_failure(&e, port),
        }
    }
    let seen = String::from_utf8_lossy(&buf);
    let seen: String = seen.trim().chars().take(60).collect();
    Outcome::fail(
        ErrorKind::Body,
        None,
        format!("expected \"{expect}\", got \"{seen}\""),
    )
}

fn io_failure(e: &std::io::Error, port: u16) -> Outcome {
    use std::io::ErrorKind as Io;
    let kind = match e.kind() {
        Io::ConnectionRefused | Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe => {
            ErrorKind::Refused
        }
        Io::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Exec,
    };
    Outcome::fail(kind, None, format!("port {port}: {e}"))
}
