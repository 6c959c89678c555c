//! Turning the raw file into a [`Fleet`]: `${NAME}` interpolation, defaults,
//! and every semantic check (unknown hosts, duplicates, ranges, probe keys,
//! conditions, templates). Errors are collected, not returned at the first.
//!
//! Each section is checked in its own file: `[console]` in `console.rs`,
//! `[[host]]` in `host.rs`, `[[app]]` in `app.rs` (its instances in
//! `instance.rs`, `[app.health]` in `health.rs`, its driver's section in
//! `driver.rs`, `[app.traffic]` in `traffic.rs`, `[app.rollout]` in
//! `rollout.rs`, `[[app.probe]]` in `probe.rs`, `http.rs` and
//! `prometheus.rs`, their conditions in `conditions.rs`), `[[notify]]` in
//! `notify.rs` and `email.rs`, `[metrics]` in `metrics.rs`, `[store]` in `store.rs`. What they share
//! is the context in `context.rs`, the bounds of durations in `bounds.rs`
//! and a secret read from the environment in `secret.rs`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

mod app;
mod bounds;
mod conditions;
mod console;
mod context;
mod driver;
mod email;
mod health;
mod host;
mod http;
mod instance;
mod metrics;
mod notify;
mod probe;
mod prometheus;
mod rollout;
mod secret;
mod store;
mod traffic;

use super::{App, ConfigError, Console, Fleet, Host, Receiver, Secrets};
use context::Ctx;

/// Placeholders a probe's command, container or URL template may use.
pub const PROBE_PLACEHOLDERS: &[&str] = &["app", "instance", "host", "port"];

/// The host an instance runs on when it names none: this machine.
pub const LOCAL_HOST: &str = "local";

/// Names of hosts, apps, instances and probes: they appear in container
/// names, file names and shell commands, so they are kept plain.
pub fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The fleet `text` (read from `path`) describes, or every error in it;
/// `env` answers `${NAME}`.
pub(super) fn validate(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Fleet, Vec<ConfigError>> {
    let mut cx = Ctx {
        file: path.to_path_buf(),
        text,
        env,
        errors: Vec::new(),
        interpolated: Vec::new(),
    };
    // Every problem of the file's shape, then (when it could be read whole
    // once they were taken out) every problem of its values.
    let (raw, problems) = super::raw::read(text);
    for p in problems {
        cx.error(p.span, p.message, p.hint);
    }
    let Some(raw) = raw else {
        return Err(cx.errors);
    };

    let console = raw
        .console
        .as_ref()
        .map_or_else(Console::default, |c| console::console(&mut cx, c));

    let mut host_names = HashSet::new();
    let mut hosts: Vec<Host> = raw
        .host
        .iter()
        .map(|h| host::host(&mut cx, &mut host_names, h))
        .collect();

    let mut app_names = HashSet::new();
    let mut needs_local = false;
    let mut apps: Vec<App> = raw
        .app
        .iter()
        .map(|a| app::app(&mut cx, &mut app_names, &host_names, &mut needs_local, a))
        .collect();
    let receivers = notify::receivers(&mut cx, &raw.notify, &app_names);
    // Before the secrets are gathered: a password from `${NAME}` is one.
    let store = raw.store.as_ref().and_then(|s| store::store(&mut cx, s));
    // Any value from the environment may reach an app's commands (a host's
    // address is `{host}`), so every app knows all of them.
    let secrets = Secrets::new(std::mem::take(&mut cx.interpolated));
    let receivers = hand_out(&mut apps, &secrets, receivers);
    if needs_local {
        hosts.push(Host {
            name: LOCAL_HOST.into(),
            address: "127.0.0.1".into(),
            ssh: None,
        });
    }

    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|m| metrics::metrics(&mut cx, m));

    if cx.errors.is_empty() {
        Ok(Fleet {
            source: path.to_path_buf(),
            console,
            hosts,
            apps,
            metrics,
            store,
        })
    } else {
        Err(masked(cx, &secrets, &receivers))
    }
}

/// Gives every app the file's `secrets` and the receivers that hear of it
/// (each receiver keeps the file's secrets beside its own); returns the
/// receivers.
fn hand_out(apps: &mut [App], secrets: &Secrets, receivers: Vec<Receiver>) -> Vec<Arc<Receiver>> {
    let receivers: Vec<Arc<Receiver>> = receivers
        .into_iter()
        .map(|mut r| {
            r.secrets = secrets.union(&r.secrets);
            Arc::new(r)
        })
        .collect();
    for a in apps {
        a.secrets = secrets.clone();
        a.notify = receivers
            .iter()
            .filter(|r| r.apps.as_ref().is_none_or(|names| names.contains(&a.name)))
            .cloned()
            .collect();
    }
    receivers
}

/// The errors `cx` found, with every secret masked: an error quotes what
/// it read, and what it read may hold a value from the environment.
fn masked(mut cx: Ctx<'_>, secrets: &Secrets, receivers: &[Arc<Receiver>]) -> Vec<ConfigError> {
    let mut hide = secrets.union(&Secrets::new(std::mem::take(&mut cx.interpolated)));
    for r in receivers {
        hide = hide.union(&r.secrets);
    }
    for e in &mut cx.errors {
        e.message = hide.mask(&e.message);
        e.hint = e.hint.as_deref().map(|h| hide.mask(h));
    }
    cx.errors
}
