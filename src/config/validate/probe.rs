//! Validating `[[app.probe]]`: a unique name, a known type with the keys
//! of that type only, a timeout, and the tcp, command and docker probes
//! (an http probe is checked in `http.rs`, a prometheus probe in
//! `prometheus.rs`).

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use super::PROBE_PLACEHOLDERS;
use super::bounds::PROBE_TIMEOUT;
use super::context::Ctx;
use super::{http, prometheus};
use crate::config::raw::{RawProbe, S};
use crate::config::{CommandProbe, DockerProbe, Probe, ProbeKind, TcpProbe};

/// Keys that only one probe type takes, to report a key on the wrong type.
fn foreign_keys(p: &RawProbe, kind: &str) -> Vec<(&'static str, Range<usize>)> {
    let mut keys: Vec<(&'static str, &'static str, Option<Range<usize>>)> = vec![
        ("method", "http", p.method.as_ref().map(S::span)),
        ("path", "http", p.path.as_ref().map(S::span)),
        ("url", "http", p.url.as_ref().map(S::span)),
        ("scheme", "http", p.scheme.as_ref().map(S::span)),
        ("headers", "http", p.headers.as_ref().map(S::span)),
        (
            "expect_status",
            "http",
            p.expect_status.as_ref().map(S::span),
        ),
        (
            "body_contains",
            "http",
            p.body_contains.as_ref().map(S::span),
        ),
        ("query", "prometheus", p.query.as_ref().map(S::span)),
        (
            "on_no_data",
            "prometheus",
            p.on_no_data.as_ref().map(S::span),
        ),
        (
            "bearer_token",
            "prometheus",
            p.bearer_token.as_ref().map(S::span),
        ),
        ("username", "prometheus", p.username.as_ref().map(S::span)),
        ("password", "prometheus", p.password.as_ref().map(S::span)),
        ("send", "tcp", p.send.as_ref().map(S::span)),
        ("expect", "tcp", p.expect.as_ref().map(S::span)),
        ("command", "command", p.command.as_ref().map(S::span)),
        (
            "expect_exit",
            "command",
            p.expect_exit.as_ref().map(S::span),
        ),
        (
            "output_contains",
            "command",
            p.output_contains.as_ref().map(S::span),
        ),
        ("container", "docker", p.container.as_ref().map(S::span)),
    ];
    if kind != "tcp" {
        keys.push(("port", "tcp", p.port.as_ref().map(S::span)));
    }
    // Keys an http and a prometheus probe both take.
    if kind != "http" && kind != "prometheus" {
        keys.push(("conditions", "http", p.conditions.as_ref().map(S::span)));
        keys.push(("insecure_tls", "http", p.insecure_tls.as_ref().map(S::span)));
    }
    if kind == "prometheus" {
        keys.retain(|(k, _, _)| *k != "url");
    }
    keys.into_iter()
        .filter(|(_, owner, span)| *owner != kind && span.is_some())
        .map(|(k, _, span)| (k, span.unwrap_or(0..0)))
        .collect()
}

/// One `[[app.probe]]`; `seen` holds the app's probe names so far.
pub(super) fn probe(cx: &mut Ctx<'_>, seen: &mut HashSet<String>, p: &RawProbe) -> Probe {
    let name = cx.unique(seen, &p.name, "probe").to_string();
    let type_name = cx.string(&p.kind);
    let timeout = cx.duration(&p.timeout, "timeout", Duration::from_secs(2), PROBE_TIMEOUT);
    if ["http", "tcp", "command", "docker", "prometheus"].contains(&type_name.as_str()) {
        for (key, span) in foreign_keys(p, &type_name) {
            cx.error(
                span,
                format!("`{key}` does not apply to a {type_name} probe"),
                Some("remove it, or change the probe's type".into()),
            );
        }
    }
    let kind = match type_name.as_str() {
        "http" => ProbeKind::Http(http::probe(cx, &name, p)),
        "tcp" => ProbeKind::Tcp(TcpProbe {
            port: p.port.as_ref().map(|x| cx.port(x, "port")),
            send: cx.opt_string(&p.send),
            expect: cx.opt_string(&p.expect),
        }),
        "command" => ProbeKind::Command(command(cx, &name, p)),
        "docker" => ProbeKind::Docker(docker(cx, p)),
        "prometheus" => ProbeKind::Prometheus(prometheus::probe(cx, &name, p)),
        other => {
            cx.error(
                p.kind.span(),
                format!("unknown probe type \"{other}\""),
                Some(
                    "type is one of \"http\", \"tcp\", \"command\", \"docker\", \"prometheus\""
                        .into(),
                ),
            );
            ProbeKind::Tcp(TcpProbe {
                port: None,
                send: None,
                expect: None,
            })
        }
    };
    Probe {
        name,
        timeout,
        kind,
    }
}

/// `type = "command"`: a command template whose values are quoted, and
/// the exit status it must end with.
fn command(cx: &mut Ctx<'_>, name: &str, p: &RawProbe) -> CommandProbe {
    let command = match &p.command {
        Some(c) => {
            let v = cx.string(c);
            if v.trim().is_empty() {
                cx.err(c.span(), "command is empty");
            }
            cx.template(c, &v, PROBE_PLACEHOLDERS, true);
            v
        }
        None => {
            cx.error(
                p.name.span(),
                format!("command probe \"{name}\" has no `command`"),
                Some("add command = \"...\"; {app} {instance} {host} {port} are filled in".into()),
            );
            String::new()
        }
    };
    let expect_exit = match &p.expect_exit {
        None => 0,
        Some(e) => i32::try_from(*e.get_ref())
            .ok()
            .filter(|c| (0..=255).contains(c))
            .unwrap_or_else(|| {
                cx.err(e.span(), "expect_exit must be between 0 and 255");
                0
            }),
    };
    CommandProbe {
        command,
        expect_exit,
        output_contains: cx.opt_string(&p.output_contains),
    }
}

/// `type = "docker"`: the container, a template (by default
/// `{app}-{instance}`).
fn docker(cx: &mut Ctx<'_>, p: &RawProbe) -> DockerProbe {
    let container = match &p.container {
        Some(c) => {
            let v = cx.string(c);
            cx.template(c, &v, PROBE_PLACEHOLDERS, false);
            v
        }
        None => "{app}-{instance}".to_string(),
    };
    DockerProbe { container }
}
