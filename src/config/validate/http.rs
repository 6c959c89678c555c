//! Validating a `type = "http"` probe: its method, where it goes (a
//! `path` on the instance or a full `url`, whose port must be one),
//! headers, the statuses it expects and its conditions.

use super::PROBE_PLACEHOLDERS;
use super::conditions::conditions;
use super::context::Ctx;
use crate::config::raw::{RawProbe, S};
use crate::config::{HttpProbe, HttpTarget, StatusRange};

/// `type = "http"`, probe `name`.
pub(super) fn probe(cx: &mut Ctx<'_>, name: &str, p: &RawProbe) -> HttpProbe {
    let method = cx
        .opt_string(&p.method)
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| "GET".into());
    if (!method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty())
        && let Some(m) = &p.method
    {
        cx.err(m.span(), format!("\"{method}\" is not an HTTP method"));
    }
    let scheme = cx.opt_string(&p.scheme).unwrap_or_else(|| "http".into());
    if scheme != "http"
        && scheme != "https"
        && let Some(s) = &p.scheme
    {
        cx.err(s.span(), "scheme is \"http\" or \"https\"");
    }
    let target = target(cx, name, p, scheme);
    let headers = headers(cx, p);
    let expect_status = expect_status(cx, p);
    let conditions = conditions(cx, &p.conditions, READS);
    HttpProbe {
        method,
        target,
        headers,
        expect_status,
        body_contains: cx.opt_string(&p.body_contains),
        conditions,
        insecure_tls: p.insecure_tls.as_ref().is_some_and(|b| *b.get_ref()),
    }
}

/// What an HTTP probe's conditions read.
const READS: &[&str] = &["[STATUS]", "[RESPONSE_TIME]", "[BODY]"];

/// Where the probe goes: a `path` on the instance (over `scheme`), or a
/// `url` as written; one of them.
fn target(cx: &mut Ctx<'_>, name: &str, p: &RawProbe, scheme: String) -> HttpTarget {
    match (&p.path, &p.url) {
        (Some(path), None) => {
            let expanded = cx.expand(path);
            cx.control_chars(path, &expanded, "path", false);
            let v = expanded.text;
            if !v.starts_with('/') {
                cx.error(
                    path.span(),
                    "path must start with `/`",
                    Some(format!("write path = \"/{v}\", or use url for a full URL")),
                );
            }
            HttpTarget::Path { scheme, path: v }
        }
        (None, Some(url)) => {
            let expanded = cx.expand(url);
            let v = expanded.text.clone();
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                cx.err(url.span(), "url must start with http:// or https://");
            }
            cx.control_chars(url, &expanded, "url", false);
            if let Some((at, message)) = url_port_problem(&v) {
                cx.error_in(
                    url,
                    &expanded,
                    at,
                    message,
                    Some("a port is a number from 1 to 65535, or {port} for the instance's".into()),
                );
            }
            cx.template(url, &v, PROBE_PLACEHOLDERS, false);
            if p.scheme.is_some() {
                cx.err(url.span(), "give the scheme inside url, not as `scheme`");
            }
            HttpTarget::Url(v)
        }
        (Some(_), Some(url)) => {
            cx.error(
                url.span(),
                "give either path or url, not both",
                Some(
                    "path is joined to the instance's address and port; url is used as written"
                        .into(),
                ),
            );
            HttpTarget::Url(String::new())
        }
        (None, None) => {
            cx.error(
                p.name.span(),
                format!("http probe \"{name}\" has neither `path` nor `url`"),
                Some("add path = \"/health\" (or a full url)".into()),
            );
            HttpTarget::Url(String::new())
        }
    }
}

/// `headers`: names that are header names, values on one line.
fn headers(cx: &mut Ctx<'_>, p: &RawProbe) -> Vec<(String, String)> {
    match &p.headers {
        None => Vec::new(),
        Some(h) => h
            .get_ref()
            .iter()
            .map(|(k, v)| {
                if !valid_header_name(k) {
                    cx.error(
                        v.span(),
                        format!("{k:?} is not a header name"),
                        Some("a header name is letters, digits and any of !#$%&'*+-.^_`|~".into()),
                    );
                }
                let expanded = cx.expand(v);
                cx.control_chars(v, &expanded, &format!("header {k}"), true);
                (k.clone(), expanded.text)
            })
            .collect(),
    }
}

/// `expect_status`: statuses and ranges (by default 200 to 399).
fn expect_status(cx: &mut Ctx<'_>, p: &RawProbe) -> Vec<StatusRange> {
    match &p.expect_status {
        None => vec![StatusRange { lo: 200, hi: 399 }],
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.err(
                    list.span(),
                    "expect_status is empty; list at least one status",
                );
            }
            list.get_ref()
                .iter()
                .filter_map(|v| status_range(cx, v))
                .collect()
        }
    }
}

/// Whether `s` is an HTTP header name (an RFC 9110 token).
fn valid_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// What is wrong with the port of `url` (`scheme://[user@]host[:port]/…`),
/// with the index (in characters) where the port starts. A port that is or
/// holds a placeholder is left to the run, which fills it in.
fn url_port_problem(url: &str) -> Option<(usize, String)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_at = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_at..];
    let colon = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        host_port[close + 1..]
            .starts_with(':')
            .then_some(close + 1)?
    } else {
        host_port.rfind(':')?
    };
    let port = &host_port[colon + 1..];
    if port.is_empty() || port.contains('{') {
        return None;
    }
    let at = url[..start + host_at + colon + 1].chars().count();
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Some((at, format!("`{port}` in url is not a port")));
    }
    match port.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => None,
        _ => Some((at, format!("port {port} in url is out of range"))),
    }
}

/// One status of `expect_status`: `200` or `"200-299"`.
fn status_range(cx: &mut Ctx<'_>, v: &S<toml::Value>) -> Option<StatusRange> {
    let ok = |n: i64| (100..=599).contains(&n);
    match v.get_ref() {
        toml::Value::Integer(n) if ok(*n) => Some(StatusRange {
            lo: *n as u16,
            hi: *n as u16,
        }),
        toml::Value::String(s) => {
            let parsed = s.split_once('-').and_then(|(a, b)| {
                let (a, b) = (a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?);
                (ok(a) && ok(b) && a <= b).then_some(StatusRange {
                    lo: a as u16,
                    hi: b as u16,
                })
            });
            if parsed.is_none() {
                cx.error(
                    v.span(),
                    format!("\"{s}\" is not a status range"),
                    Some("write a status like 200 or a range like \"200-299\"".into()),
                );
            }
            parsed
        }
        other => {
            cx.error(
                v.span(),
                format!("{other} is not an HTTP status"),
                Some("write a status between 100 and 599, or a range like \"200-299\"".into()),
            );
            None
        }
    }
}
