//! Traffic through user command hooks: for load balancers rollguard does
//! not speak to itself (a cloud LB, a service mesh, a script that edits
//! DNS), the operator gives `drain`, `undrain` and optionally `weight`
//! commands, run on the traffic host.
//!
//! This file exists to turn a routing change into the smallest set of hook
//! calls, in a safe order. For each server whose state changed between
//! `from` and `to` (a server `from` does not list counts as changed):
//!
//! * it gets traffic back → `undrain`, then `weight` (when set);
//! * its weight changed → `weight` (when set);
//! * it loses traffic → `drain`.
//!
//! Servers that gain traffic come first, then weight cuts, then drains, so
//! capacity never drops to zero. Templates get `{app}`, `{instance}`,
//! `{host}` (the server's address), `{port}` (the server's port),
//! `{version}` (empty: traffic does not know versions) and, for `weight`,
//! `{weight}`; every value is shell-quoted by [`shell::render`]. The hooks
//! are trusted to return only when their change is in force (a `drain` hook
//! should wait for connections to end).

use std::time::Duration;

use super::{Routing, Server, TrafficError};
use crate::config::{CommandTraffic, Fleet};
use crate::exec::Executor;
use crate::shell;

/// How long one hook may run.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// Moves an app's traffic with `drain`, `undrain` and `weight` hooks.
#[derive(Clone, Debug)]
pub struct CommandHooks {
    spec: CommandTraffic,
}

/// One hook call to make.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hook {
    Undrain,
    Weight(u32),
    Drain,
}

impl Hook {
    fn key(&self) -> &'static str {
        match self {
            Hook::Undrain => "undrain",
            Hook::Weight(_) => "weight",
            Hook::Drain => "drain",
        }
    }
}

impl CommandHooks {
    /// A mover for `spec`.
    pub fn new(spec: CommandTraffic) -> CommandHooks {
        CommandHooks { spec }
    }

    /// The host the balancer (or the hooks) run on.
    pub fn host(&self) -> &str {
        &self.spec.host
    }

    /// See [`super::Traffic::apply`]: runs the hooks of every server whose
    /// state changed, servers gaining traffic first. Stops at the first
    /// failing hook.
    pub async fn apply(
        &self,
        _fleet: &Fleet,
        exec: &Executor,
        app: &str,
        from: &Routing,
        to: &Routing,
    ) -> Result<(), TrafficError> {
        for (server, hook) in self.plan(from, to) {
            self.run(exec, app, server, &hook).await?;
        }
        Ok(())
    }

    /// The hook calls for `from` → `to`, in order: undrains and weight
    /// raises, then weight cuts, then drains.
    fn plan<'r>(&self, from: &Routing, to: &'r Routing) -> Vec<(&'r Server, Hook)> {
        let mut ups = Vec::new();
        let mut cuts = Vec::new();
        let mut drains = Vec::new();
        for s in &to.servers {
            let old = from.get(&s.instance, s.side);
            let old_weight = old.map(|o| o.weight);
            match (old_weight, s.weight) {
                (Some(None), None) => {}
                (_, None) => drains.push((s, Hook::Drain)),
                (Some(Some(o)), Some(w)) => {
                    if o != w && self.spec.weight.is_some() {
                        if w > o {
                            ups.push((s, Hook::Weight(w)));
                        } else {
                            cuts.push((s, Hook::Weight(w)));
                        }
                    }
                }
                (_, Some(w)) => {
                    ups.push((s, Hook::Undrain));
                    if self.spec.weight.is_some() {
                        ups.push((s, Hook::Weight(w)));
                    }
                }
            }
        }
        ups.extend(cuts);
        ups.extend(drains);
        ups
    }

    async fn run(
        &self,
        exec: &Executor,
        app: &str,
        s: &Server,
        hook: &Hook,
    ) -> Result<(), TrafficError> {
        let template = match hook {
            Hook::Undrain => self.spec.undrain.as_str(),
            Hook::Drain => self.spec.drain.as_str(),
            Hook::Weight(_) => self.spec.weight.as_deref().unwrap_or_default(),
        };
        let port = s.port.to_string();
        let weight = match hook {
            Hook::Weight(w) => w.to_string(),
            _ => String::new(),
        };
        let mut vars = vec![
            ("app", app),
            ("instance", s.instance.as_str()),
            ("host", s.address.as_str()),
            ("port", port.as_str()),
            ("version", ""),
        ];
        if matches!(hook, Hook::Weight(_)) {
            vars.push(("weight", weight.as_str()));
        }
        let what = format!(
            "{} hook for {} ({})",
            hook.key(),
            s.instance,
            s.side.as_str()
        );
        let script = shell::render(template, &vars).map_err(|e| TrafficError::Failed {
            what: what.clone(),
            detail: e.to_string(),
        })?;
        let out = exec.run(&script, HOOK_TIMEOUT).await?;
        if out.code == Some(0) {
            return Ok(());
        }
        let text = format!("{}\n{}", out.stderr.trim(), out.stdout.trim());
        let text = text.trim();
        Err(TrafficError::Failed {
            what: format!("{what} `{script}`"),
            detail: match out.code {
                Some(c) if text.is_empty() => format!("exit code {c}"),
                Some(c) => format!("exit code {c}: {text}"),
                None => format!("killed by a signal: {text}"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Host;
    use crate::model::Side;

    fn server(instance: &str, weight: Option<u32>) -> Server {
        Server {
            instance: instance.into(),
            side: Side::Main,
            address: "10.0.0.1".into(),
            port: 8080,
            weight,
        }
    }

    fn hooks(log: &std::path::Path, weight: bool) -> CommandHooks {
        let l = log.display();
        CommandHooks::new(CommandTraffic {
            host: "local".into(),
            drain: format!("echo drain {{app}} {{instance}} {{host}} {{port}} >> {l}"),
            undrain: format!("echo undrain {{instance}} >> {l}"),
            weight: weight.then(|| format!("echo weight {{instance}} {{weight}} >> {l}")),
        })
    }

    #[test]
    fn plans_ups_before_downs() {
        let h = hooks(std::path::Path::new("/dev/null"), true);
        let from = Routing {
            servers: vec![
                server("a", Some(100)),
                server("b", None),
                server("c", Some(50)),
            ],
        };
        let to = Routing {
            servers: vec![
                server("a", None),
                server("b", Some(10)),
                server("c", Some(20)),
            ],
        };
        let plan: Vec<(String, Hook)> = h
            .plan(&from, &to)
            .into_iter()
            .map(|(s, k)| (s.instance.clone(), k))
            .collect();
        assert_eq!(
            plan,
            vec![
                ("b".into(), Hook::Undrain),
                ("b".into(), Hook::Weight(10)),
                ("c".into(), Hook::Weight(20)),
                ("a".into(), Hook::Drain),
            ]
        );
        // Unchanged: nothing. Without a weight hook: no weight calls.
        assert!(h.plan(&to, &to).is_empty());
        let h = hooks(std::path::Path::new("/dev/null"), false);
        assert_eq!(h.plan(&from, &to).len(), 2);
    }

    #[tokio::test]
    async fn runs_hooks_with_quoted_values() {
        let dir = std::env::temp_dir().join(format!("rollguard-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        let h = hooks(&log, true);
        let fleet = Fleet {
            metrics: None,
            store: None,
            source: "t.toml".into(),
            console: Default::default(),
            hosts: vec![Host {
                name: "local".into(),
                address: "127.0.0.1".into(),
                ssh: None,
            }],
            apps: vec![],
        };
        let exec = crate::exec::Executor::Local(crate::exec::local::Local);
        let from = Routing {
            servers: vec![server("a", Some(100)), server("b", None)],
        };
        let to = Routing {
            servers: vec![server("a", None), server("b", Some(100))],
        };
        h.apply(&fleet, &exec, "web; echo x", &from, &to)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "undrain b\nweight b 100\ndrain web; echo x a 10.0.0.1 8080\n"
        );
        // A failing hook names itself.
        let bad = CommandHooks::new(CommandTraffic {
            host: "local".into(),
            drain: "echo nope >&2; exit 4".into(),
            undrain: "true".into(),
            weight: None,
        });
        let err = bad
            .apply(&fleet, &exec, "web", &to, &from)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("drain hook for b") && err.contains("nope"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
