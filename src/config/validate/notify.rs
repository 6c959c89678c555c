//! Validating `[[notify]]`: unique names, a known type and the keys that
//! type takes, `on` naming known topics, `apps` naming known apps, URLs
//! that are http(s), a `run` template whose values are quoted (an `email`
//! receiver's keys are checked in `validate/email.rs`). Messages never
//! repeat a URL, a secret or a key: they point at its place.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::secret::from_environment;
use super::{Bounds, Ctx, HOUR, RawNotify, S};
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

fn receiver(
    cx: &mut Ctx<'_>,
    seen: &mut HashSet<String>,
    apps: &HashSet<String>,
    order: usize,
    n: &RawNotify,
) -> Option<Receiver> {
    let name = cx.unique(seen, &n.name, "receiver").to_string();
    let type_name = cx.string(&n.kind);
    let own_keys: &[&str] = match type_name.as_str() {
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
    };
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
    // Values that must not be shown, whether or not they came from ${NAME}.
    let mut hidden: Vec<(String, String)> = Vec::new();
    let mut secret = |cx: &mut Ctx<'_>, key: &str, s: &S<String>| {
        let v = cx.string(s);
        if v.trim().is_empty() {
            cx.err(s.span(), format!("{key} is empty"));
        }
        hidden.push((format!("{name}.{key}"), v.clone()));
        v
    };
    let required = |cx: &mut Ctx<'_>, key: &str, example: &str| {
        cx.error(
            n.name.span(),
            format!("{type_name} receiver \"{name}\" has no `{key}`"),
            Some(format!("add {key} = {example}")),
        );
    };
    let url = |cx: &mut Ctx<'_>, v: &str, s: &S<String>| {
        if !is_http_url(v) {
            cx.error(
                s.span(),
                "url is not an http:// or https:// URL",
                Some(
                    "write the full URL, e.g. \"${SLACK_WEBHOOK_URL}\" with the variable exported"
                        .into(),
                ),
            );
        }
    };
    let kind = match type_name.as_str() {
        "slack" | "discord" | "webhook" => {
            let u = match &n.url {
                Some(s) => {
                    let v = secret(cx, "url", s);
                    url(cx, &v, s);
                    v
                }
                None => {
                    required(cx, "url", "\"${WEBHOOK_URL}\"");
                    String::new()
                }
            };
            match type_name.as_str() {
                "slack" => ReceiverKind::Slack { url: u },
                "discord" => ReceiverKind::Discord { url: u },
                _ => ReceiverKind::Webhook {
                    url: u,
                    secret: n.secret.as_ref().map(|s| secret(cx, "secret", s)),
                },
            }
        }
        "pagerduty" => {
            let routing_key = match &n.routing_key {
                Some(s) => secret(cx, "routing_key", s),
                None => {
                    required(cx, "routing_key", "\"${PAGERDUTY_ROUTING_KEY}\"");
                    String::new()
                }
            };
            let u = match &n.url {
                Some(s) => {
                    let v = secret(cx, "url", s);
                    url(cx, &v, s);
                    v
                }
                None => PAGERDUTY_URL.to_string(),
            };
            ReceiverKind::Pagerduty {
                url: u,
                routing_key,
            }
        }
        "email" => ReceiverKind::Email(super::email::spec(cx, n, &name, &mut hidden)),
        "websocket" => websocket(cx, n, &name, &mut hidden),
        _ => {
            let run = match &n.run {
                Some(s) => {
                    let v = cx.string(s);
                    if v.trim().is_empty() {
                        cx.err(s.span(), "run is empty");
                    }
                    cx.template(s, &v, COMMAND_PLACEHOLDERS, true);
                    v
                }
                None => {
                    required(
                        cx,
                        "run",
                        "\"gh issue create --title {app} --body-file {timeline}\"",
                    );
                    String::new()
                }
            };
            ReceiverKind::Command { run }
        }
    };
    let on = match &n.on {
        None => Topic::DEFAULT.to_vec(),
        Some(list) => {
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
    };
    let apps = n.apps.as_ref().map(|list| {
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
    });
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
