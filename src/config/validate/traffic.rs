//! Validating `[app.traffic]`: a known type, on a host the file defines
//! (this machine when it names none), with the keys of that type only:
//! nginx's upstream file and commands, HAProxy's runtime socket and
//! backend, or the command hooks (templates whose values are quoted).

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use super::LOCAL_HOST;
use super::bounds::DRAIN_TIMEOUT;
use super::context::Ctx;
use super::driver::{driver_template, opt_driver_template};
use crate::config::raw::{RawTraffic, S};
use crate::config::{CommandTraffic, DRIVER_PLACEHOLDERS, HaproxyTraffic, NginxTraffic, Traffic};

/// `[app.traffic]`; `hosts` are the hosts the file defines; `needs_local`
/// is set when it runs on this machine.
pub(super) fn traffic(
    cx: &mut Ctx<'_>,
    hosts: &HashSet<String>,
    needs_local: &mut bool,
    t: &S<RawTraffic>,
) -> Traffic {
    let span = t.span();
    let t = t.get_ref();
    let kind = cx.string(&t.kind);
    let host = match &t.host {
        None => {
            *needs_local = true;
            LOCAL_HOST.to_string()
        }
        Some(h) => {
            let v = cx.string(h);
            if !hosts.contains(&v) {
                cx.err(h.span(), format!("unknown host \"{v}\""));
            }
            v
        }
    };
    foreign_keys(cx, t, &kind);
    match kind.as_str() {
        "none" => Traffic::None,
        "nginx" => Traffic::Nginx(nginx(cx, t, &span, host)),
        "haproxy" => Traffic::Haproxy(haproxy(cx, t, &span, host)),
        "command" => Traffic::Command(command(cx, t, &span, host)),
        other => {
            cx.error(
                t.kind.span(),
                format!("unknown traffic type \"{other}\""),
                Some("type is one of \"nginx\", \"haproxy\", \"command\", \"none\"".into()),
            );
            Traffic::None
        }
    }
}

/// Reports each key of another traffic type than `kind`.
fn foreign_keys(cx: &mut Ctx<'_>, t: &RawTraffic, kind: &str) {
    let keys: [(&str, &str, Option<Range<usize>>); 9] = [
        (
            "upstream_file",
            "nginx",
            t.upstream_file.as_ref().map(S::span),
        ),
        ("validate", "nginx", t.validate.as_ref().map(S::span)),
        ("reload", "nginx", t.reload.as_ref().map(S::span)),
        ("socket", "haproxy", t.socket.as_ref().map(S::span)),
        ("backend", "haproxy", t.backend.as_ref().map(S::span)),
        (
            "drain_timeout",
            "haproxy",
            t.drain_timeout.as_ref().map(S::span),
        ),
        ("drain", "command", t.drain.as_ref().map(S::span)),
        ("undrain", "command", t.undrain.as_ref().map(S::span)),
        ("weight", "command", t.weight.as_ref().map(S::span)),
    ];
    for (key, owner, key_span) in keys {
        if let Some(key_span) = key_span.filter(|_| owner != kind) {
            cx.error(
                key_span,
                format!("`{key}` does not apply to traffic type \"{kind}\""),
                Some(format!("`{key}` belongs to type \"{owner}\"")),
            );
        }
    }
}

/// The value of `key`, which traffic type `kind` needs: an error at the
/// section (`span`) when it is missing.
fn required(
    cx: &mut Ctx<'_>,
    span: &Range<usize>,
    kind: &str,
    v: &Option<S<String>>,
    key: &str,
) -> String {
    match v {
        Some(s) => cx.string(s),
        None => {
            cx.error(
                span.clone(),
                format!("traffic type \"{kind}\" needs `{key}`"),
                Some("see config.example.toml".into()),
            );
            String::new()
        }
    }
}

/// `type = "nginx"`.
fn nginx(cx: &mut Ctx<'_>, t: &RawTraffic, span: &Range<usize>, host: String) -> NginxTraffic {
    NginxTraffic {
        upstream_file: required(cx, span, "nginx", &t.upstream_file, "upstream_file"),
        validate: opt_driver_template(cx, &t.validate).unwrap_or_else(|| "nginx -t".into()),
        reload: opt_driver_template(cx, &t.reload).unwrap_or_else(|| "nginx -s reload".into()),
        host,
    }
}

/// `type = "haproxy"`.
fn haproxy(cx: &mut Ctx<'_>, t: &RawTraffic, span: &Range<usize>, host: String) -> HaproxyTraffic {
    HaproxyTraffic {
        socket: required(cx, span, "haproxy", &t.socket, "socket"),
        backend: required(cx, span, "haproxy", &t.backend, "backend"),
        drain_timeout: cx.duration(
            &t.drain_timeout,
            "drain_timeout",
            Duration::from_secs(30),
            DRAIN_TIMEOUT,
        ),
        host,
    }
}

/// `type = "command"`: `drain` and `undrain`, and `weight`, which may
/// use `{weight}` too.
fn command(cx: &mut Ctx<'_>, t: &RawTraffic, span: &Range<usize>, host: String) -> CommandTraffic {
    let drain = match &t.drain {
        Some(d) => driver_template(cx, d),
        None => required(cx, span, "command", &None, "drain"),
    };
    let undrain = match &t.undrain {
        Some(d) => driver_template(cx, d),
        None => required(cx, span, "command", &None, "undrain"),
    };
    let weight = t.weight.as_ref().map(|w| {
        let v = cx.string(w);
        let mut allowed = DRIVER_PLACEHOLDERS.to_vec();
        allowed.push("weight");
        cx.template(w, &v, &allowed, true);
        v
    });
    CommandTraffic {
        host,
        drain,
        undrain,
        weight,
    }
}
