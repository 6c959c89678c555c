//! One attempt at one email: the stored body (`email`) addressed from the
//! receiver's `from` to its `to`, sent through its SMTP server with
//! `lettre` (STARTTLS, TLS or none; a login when it has one), bounded by
//! its `timeout`. The server's answer is judged like an HTTP one: a
//! permanent (5xx) answer is not tried again, a transient one (4xx), no
//! connection or a timeout is.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

use super::retry::{Attempt, DELIVERY_HEADER, Judgement, error_chain, timed_out};
use crate::config::{EmailSpec, SmtpTls};

/// Sends notification `id` (`topic`), whose stored body is `payload`, to
/// `spec`'s recipients, once.
pub async fn send(
    spec: &EmailSpec,
    timeout: Duration,
    id: i64,
    topic: &str,
    payload: &Value,
) -> Attempt {
    let refused = |answer: String| Attempt {
        judgement: Judgement::Refused,
        answer,
    };
    let message = match mail(spec, id, topic, payload) {
        Ok(m) => m,
        Err(e) => return refused(format!("cannot write the email: {e}")),
    };
    let transport = match transport(spec, timeout) {
        Ok(t) => t,
        Err(e) => return refused(format!("cannot set up TLS: {}", error_chain(&e))),
    };
    // lettre's timeout covers each command; this one covers the whole.
    match tokio::time::timeout(
        timeout + Duration::from_millis(100),
        transport.send(message),
    )
    .await
    {
        Ok(Ok(response)) => {
            let code = response.code();
            let text: Vec<&str> = response.message().collect();
            Attempt {
                judgement: Judgement::Delivered,
                answer: format!("SMTP {code}: {}", text.join(" "))
                    .trim()
                    .to_string(),
            }
        }
        Ok(Err(e)) if e.is_timeout() => timed_out(timeout),
        Ok(Err(e)) => Attempt {
            judgement: if e.is_permanent() {
                Judgement::Refused
            } else {
                Judgement::Retry
            },
            answer: match e.status() {
                Some(code) => format!("SMTP {code}: {}", error_chain(&e)),
                None => format!("no answer: {}", error_chain(&e)),
            },
        },
        Err(_) => timed_out(timeout),
    }
}

/// The email itself.
fn mail(spec: &EmailSpec, id: i64, topic: &str, payload: &Value) -> Result<Message, String> {
    let field = |k: &str| payload[k].as_str().unwrap_or_default().to_string();
    let mailbox = |s: &str| s.parse::<Mailbox>().map_err(|e| format!("{s:?}: {e}"));
    let mut b = Message::builder()
        .from(mailbox(&spec.from)?)
        .subject(field("subject"))
        .message_id(Some(field("message_id")))
        .date_now()
        .user_agent(concat!("rollguard/", env!("CARGO_PKG_VERSION")).into());
    for to in &spec.to {
        b = b.to(mailbox(to)?);
    }
    if let Some(root) = payload["in_reply_to"].as_str() {
        b = b.in_reply_to(root.to_string()).references(root.to_string());
    }
    for (name, value) in [
        (DELIVERY_HEADER, id.to_string()),
        ("X-Rollguard-Topic", topic.into()),
    ] {
        let name = HeaderName::new_from_ascii(name.to_string()).map_err(|e| e.to_string())?;
        b = b.raw_header(HeaderValue::new(name, value));
    }
    b.header(ContentType::TEXT_PLAIN)
        .body(field("text"))
        .map_err(|e| e.to_string())
}

/// The connection to `spec`'s server.
fn transport(
    spec: &EmailSpec,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
    let params = || {
        let mut p = TlsParameters::builder(spec.host.clone());
        if let Some(pem) = &spec.ca_pem {
            p = p.add_root_certificate(Certificate::from_pem(pem)?);
        }
        p.build_rustls()
    };
    let tls = match spec.tls {
        SmtpTls::Starttls => Tls::Required(params()?),
        SmtpTls::Tls => Tls::Wrapper(params()?),
        SmtpTls::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(spec.host.clone())
        .port(spec.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&spec.username, &spec.password) {
        b = b.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(b.build())
}
