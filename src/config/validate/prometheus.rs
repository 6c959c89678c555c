//! Validating a `type = "prometheus"` probe: an http(s) `url`, a `query`
//! whose placeholders stand inside its string literals, at least one
//! condition on `[VALUE]` (or, for a comparison, on `[CANARY]` and
//! `[BASELINE]`, never both kinds in one probe), `on_no_data`, and
//! credentials that come from the environment (so they are kept as secrets
//! and never shown).

use super::conditions::conditions;
use super::context::Ctx;
use super::secret::from_environment;
use crate::condition::{Condition, Placeholder};
use crate::config::raw::{RawProbe, S};
use crate::config::{NoData, PromAuth, PrometheusProbe};
use crate::promql::{QUERY_PLACEHOLDERS, fill};

/// What a Prometheus probe's conditions read.
const READS: &[&str] = &["[VALUE]", "[RESPONSE_TIME]", "[CANARY]", "[BASELINE]"];

/// The placeholders that tell one instance's side from another's: a
/// comparison's query must name one, or it would ask the same of both
/// sides.
const PER_SIDE: &[&str] = &["{instance}", "{host}", "{port}"];

/// The probe `name` of `p`.
pub(super) fn probe(cx: &mut Ctx<'_>, name: &str, p: &RawProbe) -> PrometheusProbe {
    let url = url(cx, name, p);
    let query = query(cx, name, p);
    let conditions = conditions(cx, &p.conditions, READS);
    judges(cx, name, p, &query, &conditions);
    let on_no_data = on_no_data(cx, p);
    PrometheusProbe {
        url,
        query,
        conditions,
        on_no_data,
        auth: auth(cx, p),
        insecure_tls: p.insecure_tls.as_ref().is_some_and(|b| *b.get_ref()),
    }
}

/// `url`: the Prometheus server, http(s).
fn url(cx: &mut Ctx<'_>, name: &str, p: &RawProbe) -> String {
    match &p.url {
        Some(u) => {
            let v = cx.expand(u);
            if !(v.text.starts_with("http://") || v.text.starts_with("https://")) {
                cx.err(u.span(), "url must start with http:// or https://");
            } else if url::Url::parse(&v.text).is_err() {
                cx.err(u.span(), "url is not a URL");
            }
            cx.control_chars(u, &v, "url", false);
            v.text
        }
        None => {
            cx.error(
                p.name.span(),
                format!("prometheus probe \"{name}\" has no `url`"),
                Some("add url = \"http://prometheus:9090\", the Prometheus server".into()),
            );
            String::new()
        }
    }
}

/// `query`: PromQL whose placeholders stand inside its string literals.
fn query(cx: &mut Ctx<'_>, name: &str, p: &RawProbe) -> String {
    match &p.query {
        Some(q) => {
            let v = cx.expand(q);
            if v.text.trim().is_empty() {
                cx.err(q.span(), "query is empty");
            }
            let dummy: Vec<(&str, &str)> = QUERY_PLACEHOLDERS.iter().map(|k| (*k, "x")).collect();
            if let Err(e) = fill(&v.text, &dummy) {
                cx.error_in(q, &v, e.at, e.message, None);
            }
            v.text
        }
        None => {
            cx.error(
                p.name.span(),
                format!("prometheus probe \"{name}\" has no `query`"),
                Some("add query = 'up{instance=\"{instance}\"}', in PromQL".into()),
            );
            String::new()
        }
    }
}

/// Whether the `conditions` judge something, and one thing: a value, or
/// a rollout's sides compared (with a `query` that tells them apart).
fn judges(cx: &mut Ctx<'_>, name: &str, p: &RawProbe, query: &str, conditions: &[Condition]) {
    let reads = |want: &dyn Fn(&Placeholder) -> bool| {
        conditions
            .iter()
            .any(|c| c.placeholders().into_iter().any(want))
    };
    let reads_value = reads(&|p| matches!(p, Placeholder::Value));
    let compares = reads(&|p| matches!(p, Placeholder::Canary | Placeholder::Baseline));
    let span = p.conditions.as_ref().map_or(p.name.span(), S::span);
    if reads_value && compares {
        cx.error(
            span,
            format!(
                "prometheus probe \"{name}\" reads [VALUE] and compares [CANARY] with [BASELINE]"
            ),
            Some(
                "make them two probes: one judges each instance by [VALUE], the other compares a rollout's new side with its old"
                    .into(),
            ),
        );
    } else if !reads_value && !compares {
        cx.error(
            span,
            format!("prometheus probe \"{name}\" has no condition on [VALUE]"),
            Some(
                "add conditions = [\"[VALUE] < 0.05\"]: what the value must be (or [CANARY] <= [BASELINE] * 1.2 to compare a rollout's sides)"
                    .into(),
            ),
        );
    } else if compares
        && let Some(q) = &p.query
        && !PER_SIDE.iter().any(|k| query.contains(k))
    {
        cx.error(
            q.span(),
            format!(
                "prometheus probe \"{name}\" compares sides, but its query names no instance: it would ask the same of both"
            ),
            Some(
                "select each side's series by {port} (a canary and a blue-green side share their instance's name and host), {instance} or {host}, e.g. instance=\"{host}:{port}\""
                    .into(),
            ),
        );
    }
}

/// `on_no_data`: what an answer without a value counts as.
fn on_no_data(cx: &mut Ctx<'_>, p: &RawProbe) -> NoData {
    match &p.on_no_data {
        None => NoData::default(),
        Some(s) => match cx.string(s).as_str() {
            "fail" => NoData::Fail,
            "pass" => NoData::Pass,
            "skip" => NoData::Skip,
            other => {
                cx.error(
                    s.span(),
                    format!("on_no_data \"{other}\" is not known"),
                    Some(
                        "on_no_data is \"fail\" (the default), \"pass\" or \"skip\" (not counted)"
                            .into(),
                    ),
                );
                NoData::Fail
            }
        },
    }
}

/// `bearer_token`, or `username` and `password`; a secret must be a
/// `${NAME}` of the environment.
fn auth(cx: &mut Ctx<'_>, p: &RawProbe) -> PromAuth {
    let secret = |cx: &mut Ctx<'_>, s: &S<String>, key: &str| {
        let example = format!("PROMETHEUS_{}", key.to_ascii_uppercase());
        let name = cx.string(&p.name);
        from_environment(cx, s, key, &example, &name, &mut Vec::new())
    };
    match (&p.bearer_token, &p.username, &p.password) {
        (None, None, None) => PromAuth::None,
        (Some(t), None, None) => PromAuth::Bearer(secret(cx, t, "bearer_token")),
        (None, Some(u), Some(pw)) => PromAuth::Basic {
            username: cx.string(u),
            password: secret(cx, pw, "password"),
        },
        (Some(t), _, _) => {
            cx.err(
                t.span(),
                "give bearer_token or username and password, not both",
            );
            PromAuth::None
        }
        (None, Some(u), None) => {
            cx.err(u.span(), "username needs a password");
            PromAuth::None
        }
        (None, None, Some(pw)) => {
            cx.err(pw.span(), "password needs a username");
            PromAuth::None
        }
    }
}
