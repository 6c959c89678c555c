//! `rollguard notify test NAME`: sends a sample message to one receiver
//! now, without the outbox, and prints what came back (the status and the
//! first bytes of the answer, made printable, secrets masked). A
//! PagerDuty receiver gets a trigger and then its resolve, so the test
//! leaves no alert open. A `websocket` receiver is a live stream with
//! nothing to send: the test connects to its listener with its token and
//! says whether it is there and took the token.

use serde_json::json;

use super::deliver::{attempt, client};
use super::message::{Message, Severity};
use super::payload::body;
use super::retry::Judgement;
use crate::config::{Fleet, Receiver, ReceiverKind};
use crate::error::{Code, UserError};
use crate::model::now_ms;
use crate::model::topic::Topic;
use crate::printable::printable;

/// `rollguard notify` commands.
#[derive(Clone, Debug, clap::Args)]
pub struct NotifyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: NotifyCommand,
}

/// The `rollguard notify` subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Send a sample message to receiver NAME now and print what came back.
    Test {
        /// The `[[notify]]` entry's name.
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `rollguard notify ...`; returns the exit code.
pub async fn notify(fleet: &Fleet, args: &NotifyArgs) -> u8 {
    match &args.command {
        NotifyCommand::Test { name, json } => match test(fleet, name, *json).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                e.code.exit_code()
            }
        },
    }
}

async fn test(fleet: &Fleet, name: &str, json_out: bool) -> Result<(), UserError> {
    let Some(r) = fleet.receiver(name) else {
        let names: Vec<String> = fleet.receivers().iter().map(|r| r.name.clone()).collect();
        let hint = if names.is_empty() {
            format!(
                "{} has no [[notify]] entry; see config.example.toml",
                fleet.source.display()
            )
        } else {
            format!("receivers: {}", names.join(", "))
        };
        return Err(UserError::new(
            Code::Usage,
            format!("no receiver named \"{name}\" in {}", fleet.source.display()),
        )
        .hint(hint));
    };
    if let ReceiverKind::Websocket { listen, token, .. } = &r.kind {
        return stream_test(&r, *listen, token, json_out).await;
    }
    let now = now_ms();
    let sample = Message::sample(&r.name, now).masked(&r.secrets);
    let mut messages = vec![sample.clone()];
    if matches!(r.kind, ReceiverKind::Pagerduty { .. }) {
        messages.push(Message {
            topic: Topic::IncidentResolved,
            severity: Severity::Ok,
            ..sample
        });
    }
    let http = client();
    let mut answers = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let Some(payload) = body(&r.kind, m) else {
            continue;
        };
        // A new id each time (negative, as no outbox row has): a receiver
        // that drops repeats by id still takes every test.
        let id = -(crate::model::now_ms().saturating_mul(10)) - i as i64;
        let a = attempt(&http, &r, id, m.topic.as_str(), &m.app, &payload).await;
        answers.push(a);
    }
    let delivered =
        !answers.is_empty() && answers.iter().all(|a| a.judgement == Judgement::Delivered);
    let said: Vec<&str> = answers.iter().map(|a| a.answer.as_str()).collect();
    if json_out {
        let doc = json!({
            "receiver": r.name,
            "type": r.kind.type_name(),
            "delivered": delivered,
            "answers": said,
        });
        println!("{doc}");
    } else {
        for a in &said {
            println!("{} ({}): {a}", r.name, r.kind.type_name());
        }
    }
    if delivered {
        return Ok(());
    }
    let hint = match r.kind {
        ReceiverKind::Command { .. } => "check the receiver's `run`: it must exit 0",
        ReceiverKind::Pagerduty { .. } => "check the receiver's `routing_key` and `url`",
        ReceiverKind::Email(_) => {
            "check the receiver's `host`, `port`, `tls`, `username` and `to` (and that the \
             password's variable is exported)"
        }
        _ => "check the receiver's `url` (and that the variable it comes from is exported)",
    };
    Err(UserError::new(
        Code::Notify,
        format!(
            "receiver {} did not take the test message: {}",
            r.name,
            said.join("; ")
        ),
    )
    .hint(hint))
}

/// Connects to a websocket receiver's listener with its token.
async fn stream_test(
    r: &Receiver,
    listen: std::net::SocketAddr,
    token: &str,
    json_out: bool,
) -> Result<(), UserError> {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("ws://{listen}/");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| UserError::new(Code::Notify, format!("cannot connect to {url}: {e}")))?;
    if let Ok(v) = format!("Bearer {token}").parse() {
        request.headers_mut().insert("Authorization", v);
    }
    let within = std::time::Duration::from_secs(5);
    let (connected, answer) =
        match tokio::time::timeout(within, tokio_tungstenite::connect_async(request)).await {
            Ok(Ok((mut ws, resp))) => {
                let _ = ws.close(None).await;
                (
                    true,
                    format!(
                        "{url} took the token (HTTP {}); a live stream: events go to connected \
                         clients, nothing is sent now",
                        resp.status().as_u16()
                    ),
                )
            }
            Ok(Err(Error::Http(resp))) => (
                false,
                format!("{url} refused the token: HTTP {}", resp.status().as_u16()),
            ),
            Ok(Err(e)) => (false, format!("{url} is not listening: {e}")),
            Err(_) => (false, format!("{url} did not answer within 5s")),
        };
    let answer = printable(&r.secrets.mask(&answer)).into_owned();
    if json_out {
        let doc = json!({
            "receiver": r.name,
            "type": r.kind.type_name(),
            "delivered": connected,
            "answers": [answer],
        });
        println!("{doc}");
    } else {
        println!("{} (websocket): {answer}", r.name);
    }
    if connected {
        return Ok(());
    }
    Err(UserError::new(
        Code::Notify,
        format!(
            "receiver {}'s event stream did not take a client: {answer}",
            r.name
        ),
    )
    .hint(format!(
        "the listener runs in the process that holds the prober's lease (a console or \
         `rollguard agent` with this config); a client connects to {url} with \
         `Authorization: Bearer TOKEN` or {url}?token=TOKEN"
    )))
}
