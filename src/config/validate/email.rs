//! Validating an `email` receiver's keys: a host, a port (by default the
//! one of its `tls`), a login whose password comes from the environment,
//! addresses that parse, and a `ca_file` read at load. A password is never
//! sent unencrypted to another machine: with `tls = "none"` a login is
//! allowed only to a relay on this machine.

use std::net::IpAddr;

use super::context::Ctx;
use super::secret::from_environment;
use crate::config::raw::{RawNotify, S};
use crate::config::{EmailSpec, SmtpTls};

/// The keys an `email` receiver takes besides the common ones.
pub(super) const KEYS: &[&str] = &[
    "host", "port", "tls", "username", "password", "from", "to", "ca_file",
];

const TLS: &[(&str, SmtpTls)] = &[
    ("starttls", SmtpTls::Starttls),
    ("tls", SmtpTls::Tls),
    ("none", SmtpTls::None),
];

/// The email receiver `name`'s server and addresses; its password is
/// added to `hidden`.
pub(super) fn spec(
    cx: &mut Ctx<'_>,
    n: &RawNotify,
    name: &str,
    hidden: &mut Vec<(String, String)>,
) -> EmailSpec {
    let host = host(cx, n, name);
    let tls = cx.choice(&n.tls, "tls", TLS, SmtpTls::Starttls);
    let port = n
        .port
        .as_ref()
        .map_or(tls.default_port(), |p| cx.port(p, "port"));
    let (username, password) = login(cx, n, name, tls, &host, hidden);
    let from = match &n.from {
        Some(s) => address(cx, s, "from"),
        None => {
            required(cx, n, name, "from", "\"rollguard <rollguard@example.com>\"");
            String::new()
        }
    };
    let to = to(cx, n, name);
    let ca_pem = n.ca_file.as_ref().and_then(|s| {
        if tls == SmtpTls::None {
            cx.error(
                s.span(),
                "`ca_file` does not apply with tls = \"none\"",
                Some("remove it, or use tls = \"starttls\" or \"tls\"".into()),
            );
        }
        ca_file(cx, s)
    });
    EmailSpec {
        host,
        port,
        tls,
        username,
        password,
        from,
        to,
        ca_pem,
    }
}

/// An error at receiver `name`: `key` is missing.
fn required(cx: &mut Ctx<'_>, n: &RawNotify, name: &str, key: &str, example: &str) {
    cx.error(
        n.name.span(),
        format!("email receiver \"{name}\" has no `{key}`"),
        Some(format!("add {key} = {example}")),
    );
}

/// `host`: the SMTP server's name or address.
fn host(cx: &mut Ctx<'_>, n: &RawNotify, name: &str) -> String {
    match &n.host {
        Some(s) => {
            let v = cx.string(s);
            if v.trim().is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                cx.error(
                    s.span(),
                    "host is not a host name or address",
                    Some("write the SMTP server's name, e.g. \"smtp.example.com\"".into()),
                );
            }
            v
        }
        None => {
            required(cx, n, name, "host", "\"smtp.example.com\"");
            String::new()
        }
    }
}

/// `username` and `password`, both or neither; the password from the
/// environment (added to `hidden`), and never sent unencrypted to a
/// `host` that is not this machine.
fn login(
    cx: &mut Ctx<'_>,
    n: &RawNotify,
    name: &str,
    tls: SmtpTls,
    host: &str,
    hidden: &mut Vec<(String, String)>,
) -> (Option<String>, Option<String>) {
    let username = n.username.as_ref().map(|s| {
        let v = cx.string(s);
        if v.is_empty() || v.chars().any(char::is_control) {
            cx.err(s.span(), "username is empty or holds a control character");
        }
        v
    });
    let password = n
        .password
        .as_ref()
        .map(|s| from_environment(cx, s, "password", "SMTP_PASSWORD", name, hidden));
    match (&n.username, &n.password) {
        (Some(_), None) => required(cx, n, name, "password", "\"${SMTP_PASSWORD}\""),
        (None, Some(p)) => cx.error(
            p.span(),
            "password without a username",
            Some("add username = \"...\", or remove the password".into()),
        ),
        _ => {}
    }
    if let (SmtpTls::None, Some(p)) = (tls, &n.password)
        && !is_loopback(host)
    {
        cx.error(
            p.span(),
            format!("the password would cross the network unencrypted to {host}"),
            Some(
                "use tls = \"starttls\" or \"tls\"; tls = \"none\" is for a relay on this machine"
                    .into(),
            ),
        );
    }
    (username, password)
}

/// `to`: at least one address.
fn to(cx: &mut Ctx<'_>, n: &RawNotify, name: &str) -> Vec<String> {
    match &n.to {
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.error(
                    list.span(),
                    format!("receiver \"{name}\" mails nobody"),
                    Some("to = [\"oncall@example.com\"]".into()),
                );
            }
            list.get_ref()
                .iter()
                .map(|s| address(cx, s, "to"))
                .collect()
        }
        None => {
            required(cx, n, name, "to", "[\"oncall@example.com\"]");
            Vec::new()
        }
    }
}

/// A mailbox, `Name <addr@example.com>` or `addr@example.com`.
fn address(cx: &mut Ctx<'_>, s: &S<String>, key: &str) -> String {
    let v = cx.string(s);
    let parsed = v.parse::<lettre::message::Mailbox>();
    if v.chars().any(char::is_control) || parsed.is_err() {
        cx.error(
            s.span(),
            format!("{key} is not an email address"),
            Some("write \"oncall@example.com\" or \"On call <oncall@example.com>\"".into()),
        );
    }
    v
}

/// The certificates of `ca_file` (relative to the config's folder).
fn ca_file(cx: &mut Ctx<'_>, s: &S<String>) -> Option<Vec<u8>> {
    let v = cx.string(s);
    let path = cx
        .file
        .parent()
        .map_or_else(|| v.clone().into(), |dir| dir.join(&v));
    let hint = Some("name a PEM file of the CA that signed the server's certificate".into());
    match std::fs::read(&path) {
        Ok(pem) if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_ok() => {
            Some(pem)
        }
        Ok(_) => {
            cx.error(
                s.span(),
                format!("{} holds no PEM certificate", path.display()),
                hint,
            );
            None
        }
        Err(e) => {
            cx.error(
                s.span(),
                format!("cannot read ca_file {}: {e}", path.display()),
                hint,
            );
            None
        }
    }
}

/// Whether `host` is this machine: `localhost` or a loopback address.
pub(super) fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
