//! Validating `[[app]]`: a unique name, its driver and strategy, at least
//! one instance and one probe, no section of another driver, and an
//! `alt_port` on every instance its strategy starts beside the old one.
//! Its sections are checked in their own files.

use std::collections::HashSet;

use super::context::Ctx;
use super::{driver, health, instance, probe, rollout, traffic};
use crate::config::raw::{RawApp, S};
use crate::config::{App, DriverKind, Health, Rollout, Secrets, Strategy, Traffic};

/// The values of `driver`.
const DRIVERS: &[(&str, DriverKind)] = &[
    ("docker", DriverKind::Docker),
    ("process", DriverKind::Process),
    ("command", DriverKind::Command),
];

/// One `[[app]]`; `seen` holds the app names so far, `hosts` the hosts
/// the file defines; `needs_local` is set when an instance or its traffic
/// runs on this machine.
pub(super) fn app(
    cx: &mut Ctx<'_>,
    seen: &mut HashSet<String>,
    hosts: &HashSet<String>,
    needs_local: &mut bool,
    a: &S<RawApp>,
) -> App {
    let span = a.span();
    let a = a.get_ref();
    let name = cx.unique(seen, &a.name, "app").to_string();
    let driver = cx.choice(&a.driver, "driver", DRIVERS, DriverKind::Process);
    // The strategies by the names `Strategy` gives them, its one list.
    let strategies: Vec<(&str, Strategy)> =
        Strategy::ALL.iter().map(|&s| (s.as_str(), s)).collect();
    let strategy = cx.choice(&a.strategy, "strategy", &strategies, Strategy::Rolling);
    if a.instance.is_empty() {
        cx.error(
            span.clone(),
            format!("app \"{name}\" has no instances"),
            Some("add at least one [[app.instance]] with a name, host and port".into()),
        );
    }
    if a.probe.is_empty() {
        cx.error(
            span,
            format!("app \"{name}\" has no probes"),
            Some("add at least one [[app.probe]]; without one its health is never known".into()),
        );
    }
    let mut inst_names = HashSet::new();
    let instances = a
        .instance
        .iter()
        .map(|i| instance::instance(cx, &mut inst_names, hosts, needs_local, i.get_ref()))
        .collect();
    let mut probe_names = HashSet::new();
    let probes = a
        .probe
        .iter()
        .map(|p| probe::probe(cx, &mut probe_names, p.get_ref()))
        .collect();
    let health = a
        .health
        .as_ref()
        .map_or_else(Health::default, |h| health::health(cx, h));
    let docker = a.docker.as_ref().map(|d| driver::docker(cx, d.get_ref()));
    let process = a.process.as_ref().map(|p| driver::process(cx, p.get_ref()));
    let command = a.command.as_ref().map(|c| driver::command(cx, c.get_ref()));
    other_drivers(cx, a, &name, driver);
    let traffic = a.traffic.as_ref().map_or(Traffic::None, |t| {
        traffic::traffic(cx, hosts, needs_local, t)
    });
    let rollout = a.rollout.as_ref().map_or_else(Rollout::default, |r| {
        rollout::rollout(cx, r, a.instance.len())
    });
    let app = App {
        name,
        driver,
        strategy,
        protected: a.protected.unwrap_or(false),
        instances,
        probes,
        health,
        docker,
        process,
        command,
        traffic,
        rollout,
        // Filled in once the whole file is read.
        secrets: Secrets::default(),
        notify: Vec::new(),
    };
    if app.strategy != Strategy::Rolling {
        alt_ports(cx, a, &app);
    }
    app
}

/// A section for another driver than the app's (`driver`): a mistake
/// worth pointing at.
fn other_drivers(cx: &mut Ctx<'_>, a: &RawApp, name: &str, driver: DriverKind) {
    let sections = [
        ("docker", DriverKind::Docker, a.docker.as_ref().map(S::span)),
        (
            "process",
            DriverKind::Process,
            a.process.as_ref().map(S::span),
        ),
        (
            "command",
            DriverKind::Command,
            a.command.as_ref().map(S::span),
        ),
    ];
    for (section, kind, span) in sections {
        if let Some(span) = span.filter(|_| kind != driver) {
            cx.error(
                span,
                format!("[app.{section}] does not apply: app \"{name}\" uses another driver"),
                Some(format!("set driver = \"{section}\", or remove the section")),
            );
        }
    }
}

/// An `alt_port` on each instance `app`'s strategy starts beside the old
/// one: blue-green runs every instance beside itself; a canary its first
/// ones.
fn alt_ports(cx: &mut Ctx<'_>, a: &RawApp, app: &App) {
    let (needed, what) = match app.strategy {
        Strategy::Canary => (app.rollout.canary as usize, "canary"),
        _ => (app.instances.len(), "blue-green"),
    };
    for (raw, inst) in a.instance.iter().zip(&app.instances).take(needed) {
        if inst.alt_port.is_none() {
            cx.error(
                raw.get_ref().name.span(),
                format!(
                    "instance \"{}\" needs alt_port: the {what} strategy starts the new version beside the old",
                    inst.name
                ),
                Some("add alt_port = <a free port> to the instance".into()),
            );
        }
    }
}
