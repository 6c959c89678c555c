//! Validating `[[notify]]`: unique names, a known type and the keys that
//! type takes, `on` naming known topics, `apps` naming known apps, URLs
//! that are http(s), a `run` template whose values are quoted (an `email`
//! receiver's keys are checked in `validate/email.rs`). Messages never
//! repeat a URL, a secret or a key: they point at its place.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::bounds::{Bounds, HOUR};
use super::context::Ctx;
use super::secret::from_environment;
use crate::config::raw::{RawNotify, S};
use crate::config::{COMMAND_PLACEHOLDERS, PAGERDUTY_URL, Receiver, ReceiverKind, Secrets};
use crate::model::topic::Topic;

/// `timeout` of one attempt.
const TIMEOUT: Bounds = Bounds {
    min: Duration::from_millis(100),
    max: Duration::from_secs(300),
};
/// `retry_for`: how long a notification is tried.
const RETRY_FOR: Bounds = Bounds {
    min: Duration::ZERO,
    max: Duration::from_secs(7 * 86_400),
};

/// The receiver types.
const TYPES: &str =
    "\"slack\", \"discord\", \"webhook\", \"pagerduty\", \"command\", \"email\", \"websocket\"";

/// Every `[[notify]]` entry; `apps` are the app names the file defines.
pub(super) fn receivers(
    cx: &mut Ctx<'_>,
    raw: &[S<RawNotify>],
    apps: &HashSet<String>,
) -> Vec<Receiver> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(order, n)| receiver(cx, &mut seen, apps, order, n.get_ref()))
        .collect()
}

/// One `[[notify]]`, the `order`th; `seen` holds the receiver names so
/// far. `None` when its type is unknown.
fn receiver(
    cx: &mut Ctx<'_>,
    seen: &mut HashSet<String>,
    apps: &HashSet<String>,
    order: usize,
    n: &RawNotify,
) -> Option<Receiver> {
    let name = cx.unique(seen, &n.name, "receiver").to_string();
    let type_name = cx.string(&n.kind);
    let own_keys = own_keys(cx, n, &type_name)?;
    foreign_keys(cx, n, &type_name, own_keys);
    // Values that must not be shown, whether or not they came from ${NAME}.
    let mut hidden: Vec<(String, String)> = Vec::new();
    let kind = kind(cx, n, &type_name, &name, &mut hidden);
    let on = on(cx, n, &name);
    let apps = n.apps.as_ref().map(|list| apps_named(cx, list, apps));
    let timeout = cx.duration(&n.timeout, "timeout", Duration::from_secs(10), TIMEOUT);
    let retry_for = cx.duration(&n.retry_for, "retry_for", HOUR, RETRY_FOR);
    Some(Receiver {
        name,
        order,
        kind,
        on,
        apps,
        timeout,
        retry_for,
        // The file's ${NAME} values are added once the whole file is read.
        secrets: Secrets::new(hidden),
    })
}

/// The keys receiver type `type_name` takes besides the common ones; an
/// error when the type is unknown.
fn own_keys(cx: &mut Ctx<'_>, n: &RawNotify, type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "slack" | "discord" => &["url"],
        "webhook" => &["url", "secret"],
        "pagerduty" => &["url", "routing_key"],
        "command" => &["run"],
        "email" => super::email::KEYS,
        "websocket" => &["listen", "token"],
        other => {
            cx.error(
                n.kind.span(),
                format!("unknown receiver type \"{other}\""),
                Some(format!("type is one of {TYPES}")),
            );
            return None;
        }
    })
}

/// Reports each key a `type_name` receiver does not take (`own_keys` are
/// those it does).
fn foreign_keys(cx: &mut Ctx<'_>, n: &RawNotify, type_name: &str, own_keys: &[&str]) {
    let span = |s: &Option<S<String>>| s.as_ref().map(|s| s.span());
    let typed_keys = [
        ("url", span(&n.url)),
        ("secret", span(&n.secret)),
        ("routing_key", span(&n.routing_key)),
        ("run", span(&n.run)),
        ("host", span(&n.host)),
        ("port", n.port.as_ref().map(|p| p.span())),
        ("tls", span(&n.tls)),
        ("username", span(&n.username)),
        ("password", span(&n.password)),
        ("from", span(&n.from)),
        ("to", n.to.as_ref().map(|t| t.span())),
        ("ca_file", span(&n.ca_file)),
        ("listen", span(&n.listen)),
        ("token", span(&n.token)),
        // A live stream is neither retried nor bounded per message.
        (
            "timeout",
            span(&n.timeout).filter(|_| type_name == "websocket"),
        ),
        (
            "retry_for",
            span(&n.retry_for).filter(|_| type_name == "websocket"),
        ),
    ];
    for (key, value) in typed_keys {
        let common = matches!(key, "timeout" | "retry_for");
        if let Some(at) = value.filter(|_| common || !own_keys.contains(&key)) {
            cx.error(
                at,
                format!("`{key}` does not apply to a {type_name} receiver"),
                Some("remove it, or change the receiver's type".into()),
            );
        }
    }
}

/// Where and how receiver `name` (of type `type_name`) is told; the
/// values not to show are added to `hidden`.
fn kind(
    cx: &mut Ctx<'_>,
    n: &RawNotify,
    type_name: &str,
    name: &str,
    hidden: &mut Vec<(String, String)>,
) -> ReceiverKind {
    let mut at = Entry {
        n,
        type_name,
        name,
        hidden,
    };
    match type_name {
        "slack" | "discord" | "webhook" => web(cx, &mut at),
        "pagerduty" => pagerduty(cx, &mut at),
        "email" => ReceiverKind::Email(super::email::spec(cx, n, name, at.hidden)),
        "websocket" => websocket(cx, n, name, at.hidden),
        _ => command(cx, &mut at),
    }
}

/// A receiver being read: its entry, type and name, and the values not
/// to show.
struct Entry<'a> {
    n: &'a RawNotify,
    type_name: &'a str,
    name: &'a str,
    hidden: &'a mut Vec<(String, String)>,
}

impl Entry<'_> {
    /// The value of secret `key` (not empty), kept to be hidden.
    fn secret(&mut self, cx: &mut Ctx<'_>, key: &str, s: &S<String>) -> String {
        let v = cx.string(s);
        if v.trim().is_empty() {
            cx.err(s.span(), format!("{key} is empty"));
        }
        self.hidden
            .push((format!("{}.{key}", self.name), v.clone()));
        v
    }

    /// An error at the receiver's name: `key` is missing.
    fn required(&self, cx: &mut Ctx<'_>, key: &str, example: &str) {
        cx.error(
            self.n.name.span(),
            format!(
                "{} receiver \"{}\" has no `{key}`",
                self.type_name, self.name
            ),
            Some(format!("add {key} = {example}")),
        );
    }

    /// `url`, a secret that must be an http(s) URL.
    fn url(&mut self, cx: &mut Ctx<'_>, s: &S<String>) -> String {
        let v = self.secret(cx, "url", s);
        if !is_http_url(&v) {
            cx.error(
                s.span(),
                "url is not an http:// or https:// URL",
                Some(
                    "write the full URL, e.g. \"${SLACK_WEBHOOK_URL}\" with the variable exported"
                        .into(),
                ),
            );
        }
        v
    }
}

/// A `slack`, `discord` or `webhook` receiver: a `url`, and a webhook's
/// signing `secret`.
fn web(cx: &mut Ctx<'_>, at: &mut Entry<'_>) -> ReceiverKind {
    let n = at.n;
    let u = match &n.url {
        Some(s) => at.url(cx, s),
        None => {
            at.required(cx, "url", "\"${WEBHOOK_URL}\"");
            String::new()
        }
    };
    match at.type_name {
        "slack" => ReceiverKind::Slack { url: u },
        "discord" => ReceiverKind::Discord { url: u },
        _ => ReceiverKind::Webhook {
            url: u,
            secret: n.secret.as_ref().map(|s| at.secret(cx, "secret", s)),
        },
    }
}

/// A `pagerduty` receiver: a `routing_key`, and the Events API's `url`.
fn pagerduty(cx: &mut Ctx<'_>, at: &mut Entry<'_>) -> ReceiverKind {
    let n = at.n;
    let routing_key = match &n.routing_key {
        Some(s) => at.secret(cx, "routing_key", s),
        None => {
            at.required(cx, "routing_key", "\"${PAGERDUTY_ROUTING_KEY}\"");
            String::new()
        }
    };
    let u = match &n.url {
        Some(s) => at.url(cx, s),
        None => PAGERDUTY_URL.to_string(),
    };
    ReceiverKind::Pagerduty {
        url: u,
        routing_key,
    }
}

/// A `command` receiver: a `run` template whose values are quoted.
fn command(cx: &mut Ctx<'_>, at: &mut Entry<'_>) -> ReceiverKind {
    let run = match &at.n.run {
        Some(s) => {
            let v = cx.string(s);
            if v.trim().is_empty() {
                cx.err(s.span(), "run is empty");
            }
            cx.template(s, &v, COMMAND_PLACEHOLDERS, true);
            v
        }
        None => {
            at.required(
                cx,
                "run",
                "\"gh issue create --title {app} --body-file {timeline}\"",
            );
            String::new()
        }
    };
    ReceiverKind::Command { run }
}

/// `on`: the topics receiver `name` listens to, each once (by default
/// [`Topic::DEFAULT`]).
fn on(cx: &mut Ctx<'_>, n: &RawNotify, name: &str) -> Vec<Topic> {
    let Some(list) = &n.on else {
        return Topic::DEFAULT.to_vec();
    };
    if list.get_ref().is_empty() {
        cx.error(
            list.span(),
            format!("receiver \"{name}\" listens to nothing"),
            Some(format!(
                "name some of: {}; or leave `on` out",
                topic_names()
            )),
        );
    }
    let mut on = Vec::new();
    for t in list.get_ref() {
        match Topic::parse(t.get_ref()) {
            Some(topic) if !on.contains(&topic) => on.push(topic),
            Some(_) => {}
            None => cx.error(
                t.span(),
                format!("unknown notification \"{}\"", t.get_ref()),
                Some(format!("`on` takes {}", topic_names())),
            ),
        }
    }
    on
}

/// `apps`: the apps a receiver hears of, each once, among the `apps` the
/// file defines.
fn apps_named(cx: &mut Ctx<'_>, list: &S<Vec<S<String>>>, apps: &HashSet<String>) -> Vec<String> {
    let mut names = Vec::new();
    if list.get_ref().is_empty() {
        cx.error(
            list.span(),
            "apps is empty: this receiver would hear of no app",
            Some("name the apps it is for, or leave `apps` out for every app".into()),
        );
    }
    for a in list.get_ref() {
        if !apps.contains(a.get_ref()) {
            let mut known: Vec<&String> = apps.iter().collect();
            known.sort();
            let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            cx.error(
                a.span(),
                format!("no app named \"{}\"", a.get_ref()),
                Some(format!("apps: {}", known.join(", "))),
            );
        } else if !names.contains(a.get_ref()) {
            names.push(a.get_ref().clone());
        }
    }
    names
}

/// A websocket receiver: a loopback `listen` address and a `token` from
/// the environment. Without `on` it streams every event.
fn websocket(
    cx: &mut Ctx<'_>,
    n: &RawNotify,
    name: &str,
    hidden: &mut Vec<(String, String)>,
) -> ReceiverKind {
    let listen = match &n.listen {
        Some(s) => {
            let v = cx.string(s);
            match v.parse::<SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => Some(a),
                Ok(_) => {
                    cx.error(
                        s.span(),
                        format!("listen {v} is not a loopback address"),
                        Some(
                            "the event stream listens on this machine only, e.g. \
                             \"127.0.0.1:9466\"; reach it from elsewhere through SSH"
                                .into(),
                        ),
                    );
                    None
                }
                Err(_) => {
                    cx.error(
                        s.span(),
                        format!("listen \"{v}\" is not an address and port"),
                        Some("write it as \"127.0.0.1:9466\" or \"[::1]:9466\"".into()),
                    );
                    None
                }
            }
        }
        None => {
            cx.error(
                n.name.span(),
                format!("websocket receiver \"{name}\" has no `listen`"),
                Some("add listen = \"127.0.0.1:9466\"".into()),
            );
            None
        }
    };
    let token = match &n.token {
        Some(s) => from_environment(cx, s, "token", "ROLLGUARD_STREAM_TOKEN", name, hidden),
        None => {
            cx.error(
                n.name.span(),
                format!("websocket receiver \"{name}\" has no `token`"),
                Some("add token = \"${ROLLGUARD_STREAM_TOKEN}\" with the variable exported".into()),
            );
            String::new()
        }
    };
    ReceiverKind::Websocket {
        listen: listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        token,
        every_event: n.on.is_none(),
    }
}

/// Every topic name, quoted, for hints.
fn topic_names() -> String {
    Topic::ALL
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `s` is an absolute http(s) URL with a host.
fn is_http_url(s: &str) -> bool {
    url::Url::parse(s)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}
