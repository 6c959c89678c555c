//! `[[notify]]`: the receivers that are told when an incident opens, a
//! rollout fails or a rollback fires. Built only by validation. A
//! receiver's URL, signing secret, routing key and SMTP password are
//! secrets whatever way they were written: its [`Receiver::secrets`] hides
//! them (and every `${NAME}` value of the file), and its `Debug` shows
//! none of them.

use std::fmt;
use std::time::Duration;

use super::Secrets;
use crate::model::topic::Topic;

/// PagerDuty's Events API v2 endpoint, the default `url` of a
/// `pagerduty` receiver.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Placeholders a `command` receiver's `run` may use (quoted).
pub const COMMAND_PLACEHOLDERS: &[&str] = &["app", "receiver", "topic", "timeline"];

/// One `[[notify]]` entry.
#[derive(Clone)]
pub struct Receiver {
    /// Unique name (`rollguard notify test NAME`).
    pub name: String,
    /// Its place among the file's receivers, from 0.
    pub order: usize,
    /// Where and how it is told.
    pub kind: ReceiverKind,
    /// What it is told of.
    pub on: Vec<Topic>,
    /// The apps it is told about; `None`: every app.
    pub apps: Option<Vec<String>>,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How long a notification is tried again before it is given up.
    pub retry_for: Duration,
    /// Every value to hide in what is stored, logged or printed: the
    /// file's `${NAME}` values and this receiver's URL, secret and key.
    pub secrets: Secrets,
}

impl Receiver {
    /// Whether it is told of `topic` about `app`.
    pub fn listens(&self, topic: Topic, app: &str) -> bool {
        self.on.contains(&topic)
            && self
                .apps
                .as_ref()
                .is_none_or(|a| a.iter().any(|x| x == app))
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("type", &self.kind.type_name())
            .field("on", &self.on)
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

/// The receiver types: those told through the outbox, and `websocket`,
/// a live stream of the audit log.
#[derive(Clone, PartialEq, Eq)]
pub enum ReceiverKind {
    /// A Slack incoming webhook: a message with blocks.
    Slack {
        /// The webhook URL (a secret).
        url: String,
    },
    /// A Discord webhook: a message with an embed.
    Discord {
        /// The webhook URL (a secret).
        url: String,
    },
    /// rollguard's own JSON body, signed when `secret` is set.
    Webhook {
        /// Where it is POSTed.
        url: String,
        /// The HMAC-SHA256 key of `X-Rollguard-Signature`.
        secret: Option<String>,
    },
    /// PagerDuty Events API v2: trigger and resolve, one alert per
    /// incident or deployment.
    Pagerduty {
        /// The endpoint (default [`PAGERDUTY_URL`]).
        url: String,
        /// The integration's routing key (a secret).
        routing_key: String,
    },
    /// A local shell template, given the event as JSON on standard input.
    Command {
        /// The template; see [`COMMAND_PLACEHOLDERS`].
        run: String,
    },
    /// Mail through an SMTP server, one thread per incident or deployment.
    Email(EmailSpec),
    /// A listener on this machine that streams the audit log's events as
    /// JSON to clients that present `token` (no outbox rows).
    Websocket {
        /// The loopback address it listens on.
        listen: std::net::SocketAddr,
        /// What a client must present (a secret).
        token: String,
        /// No `on` was given: every event is streamed, not only those of
        /// its topics.
        every_event: bool,
    },
}

/// How an `email` receiver talks to its SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (port 587 by default).
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption: for a relay on this machine (port 25 by default).
    None,
}

impl SmtpTls {
    /// The `tls` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    /// The port used when `port` is not given.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// An `email` receiver's server, login and addresses.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailSpec {
    /// The SMTP server's name or address (also the name its certificate
    /// must hold).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is encrypted.
    pub tls: SmtpTls,
    /// The login, when the server wants one.
    pub username: Option<String>,
    /// Its password (a secret, from the environment).
    pub password: Option<String>,
    /// The sender, `Name <addr@example.com>` or `addr@example.com`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// PEM certificates trusted besides the system's (`ca_file`), read at
    /// load.
    pub ca_pem: Option<Vec<u8>>,
}

impl ReceiverKind {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            ReceiverKind::Slack { .. } => "slack",
            ReceiverKind::Discord { .. } => "discord",
            ReceiverKind::Webhook { .. } => "webhook",
            ReceiverKind::Pagerduty { .. } => "pagerduty",
            ReceiverKind::Command { .. } => "command",
            ReceiverKind::Email(_) => "email",
            ReceiverKind::Websocket { .. } => "websocket",
        }
    }

    /// Whether it is told through the outbox (all but `websocket`).
    pub fn outbox(&self) -> bool {
        !matches!(self, ReceiverKind::Websocket { .. })
    }
}
