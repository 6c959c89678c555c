//! What to create: a container's settings carried from a snapshot and
//! adjusted (rollguard's labels, the slot's port, the config's args), the
//! `docker create` and `docker network connect` words that make it, and
//! making it.

use std::collections::BTreeMap;

use super::run::run_ok;
use super::snapshot::{Mount, Network, SnapshotData};
use super::{
    CREATE_TIMEOUT, Docker, LABEL_APP, LABEL_INSTANCE, LABEL_SIDE, LABEL_VERSION, OP_TIMEOUT,
};
use crate::driver::{DriverError, Slot};
use crate::exec::Executor;
use crate::model::Version;
use crate::shell;

/// A container to create: built from a snapshot, then adjusted.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Plan {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) env: Vec<String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) cmd: Option<Vec<String>>,
    pub(super) healthcheck: Option<serde_json::Value>,
    pub(super) working_dir: Option<String>,
    pub(super) user: Option<String>,
    pub(super) mounts: Vec<Mount>,
    /// `-p` values.
    pub(super) ports: Vec<String>,
    /// `None`: docker's default network.
    pub(super) network_mode: Option<String>,
    /// Aliases on the network of `network_mode`.
    pub(super) aliases: Vec<String>,
    /// Further networks, connected after create.
    pub(super) more_networks: Vec<Network>,
    pub(super) restart: Option<String>,
    /// The config's args, after everything else.
    pub(super) extra: Vec<String>,
}

impl Plan {
    pub(super) fn new(name: &str, image: &str) -> Plan {
        Plan {
            name: name.into(),
            image: image.into(),
            ..Plan::default()
        }
    }

    /// Takes the container-set settings of `data` (and, when `networks`,
    /// its networks); never its port bindings.
    pub(super) fn carry(&mut self, data: &SnapshotData, networks: bool) {
        let s = &data.set;
        self.env = s.env.clone();
        self.labels = s.labels.clone();
        self.entrypoint = s.entrypoint.clone();
        self.cmd = s.cmd.clone();
        if self.entrypoint.is_some() && self.cmd.is_none() {
            // `--entrypoint` drops the image's cmd: pass the one that ran.
            self.cmd = data.inherited.cmd.clone();
        }
        self.healthcheck = s.healthcheck.clone();
        self.working_dir = s.working_dir.clone();
        self.user = s.user.clone();
        self.mounts = data.mounts.clone();
        self.restart = match data.restart_policy.name.as_str() {
            "" | "no" => None,
            "on-failure" if data.restart_policy.maximum_retry_count > 0 => Some(format!(
                "on-failure:{}",
                data.restart_policy.maximum_retry_count
            )),
            n => Some(n.to_string()),
        };
        if networks {
            self.networks_from(data);
        }
    }

    fn networks_from(&mut self, data: &SnapshotData) {
        let mode = data.network_mode.as_str();
        match mode {
            "" | "default" => {
                self.network_mode = None;
                self.more_networks = data
                    .networks
                    .iter()
                    .filter(|n| n.name != "bridge")
                    .cloned()
                    .collect();
            }
            "host" | "none" | "bridge" => {
                self.network_mode = Some(mode.into());
                self.more_networks = data
                    .networks
                    .iter()
                    .filter(|n| n.name != mode && n.name != "bridge")
                    .cloned()
                    .collect();
            }
            m if m.starts_with("container:") => self.network_mode = Some(m.into()),
            m => {
                let primary = if data.networks.len() == 1 {
                    Some(&data.networks[0])
                } else {
                    data.networks.iter().find(|n| n.name == m)
                };
                self.network_mode = Some(m.into());
                if let Some(p) = primary {
                    self.aliases = p.aliases.clone();
                }
                self.more_networks = data
                    .networks
                    .iter()
                    .filter(|n| Some(*n) != primary && n.name != m)
                    .cloned()
                    .collect();
            }
        }
    }

    /// The words after `docker` of the `create` command.
    pub(super) fn create_words(&self) -> Vec<String> {
        let mut w: Vec<String> = vec!["create".into(), "--name".into(), self.name.clone()];
        fn flag(w: &mut Vec<String>, f: &str, v: String) {
            w.push(f.into());
            w.push(v);
        }
        for e in &self.env {
            flag(&mut w, "--env", e.clone());
        }
        for (k, v) in &self.labels {
            flag(&mut w, "--label", format!("{k}={v}"));
        }
        if let Some(d) = &self.working_dir {
            flag(&mut w, "--workdir", d.clone());
        }
        if let Some(u) = &self.user {
            flag(&mut w, "--user", u.clone());
        }
        if let Some(r) = &self.restart {
            flag(&mut w, "--restart", r.clone());
        }
        if let Some(n) = &self.network_mode {
            flag(&mut w, "--network", n.clone());
        }
        for a in &self.aliases {
            flag(&mut w, "--network-alias", a.clone());
        }
        for p in &self.ports {
            flag(&mut w, "--publish", p.clone());
        }
        if let Some(h) = &self.healthcheck {
            for (f, v) in health_flags(h) {
                match v {
                    Some(v) => flag(&mut w, &f, v),
                    None => w.push(f),
                }
            }
        }
        let mut args_after: Vec<String> = Vec::new();
        if let Some(ep) = &self.entrypoint {
            let first = ep.first().cloned().unwrap_or_default();
            w.push("--entrypoint".into());
            w.push(first);
            args_after.extend(ep.iter().skip(1).cloned());
        }
        if let Some(cmd) = &self.cmd {
            args_after.extend(cmd.iter().cloned());
        }
        for m in &self.mounts {
            w.extend(m.flags());
        }
        w.extend(self.extra.iter().cloned());
        w.push(self.image.clone());
        w.extend(args_after);
        w
    }

    /// `network connect` commands (words after `docker`) for the networks
    /// beyond the first.
    pub(super) fn connect_words(&self) -> Vec<Vec<String>> {
        self.more_networks
            .iter()
            .map(|n| {
                let mut w = vec!["network".to_string(), "connect".to_string()];
                for a in &n.aliases {
                    w.push("--alias".into());
                    w.push(a.clone());
                }
                w.push(n.name.clone());
                w.push(self.name.clone());
                w
            })
            .collect()
    }
}

/// `docker create` flags for a healthcheck from `docker inspect`.
fn health_flags(h: &serde_json::Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let test: Vec<String> = h
        .get("Test")
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match test.first().map(String::as_str) {
        Some("NONE") => return vec![("--no-healthcheck".into(), None)],
        Some("CMD-SHELL") => out.push(("--health-cmd".into(), Some(test[1..].join(" ")))),
        Some("CMD") => {
            // The CLI only takes a shell form: quote the exec form's words.
            let line: Vec<String> = test[1..].iter().map(|s| shell::quote(s)).collect();
            out.push(("--health-cmd".into(), Some(line.join(" "))));
        }
        _ => {}
    }
    for (key, f) in [
        ("Interval", "--health-interval"),
        ("Timeout", "--health-timeout"),
        ("StartPeriod", "--health-start-period"),
        ("StartInterval", "--health-start-interval"),
    ] {
        if let Some(n) = h.get(key).and_then(|v| v.as_i64()).filter(|n| *n > 0) {
            out.push((f.into(), Some(nanos(n))));
        }
    }
    if let Some(n) = h.get("Retries").and_then(|v| v.as_i64()).filter(|n| *n > 0) {
        out.push(("--health-retries".into(), Some(n.to_string())));
    }
    out
}

impl Docker {
    /// Creates the container of `plan`, connects its extra networks and
    /// starts it (when `run`). On failure the half-made container is
    /// removed so the name is free for a restore.
    pub(super) async fn launch(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        plan: &Plan,
        run: bool,
    ) -> Result<(), DriverError> {
        let create = plan.create_words();
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        run_ok(exec, slot, "docker create", &create, CREATE_TIMEOUT).await?;
        let mut steps: Vec<(&str, Vec<String>)> = plan
            .connect_words()
            .into_iter()
            .map(|w| ("docker network connect", w))
            .collect();
        if run {
            steps.push(("docker start", vec!["start".into(), plan.name.clone()]));
        }
        for (what, words) in steps {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            if let Err(e) = run_ok(exec, slot, what, &words, OP_TIMEOUT).await {
                let _ = run_ok(
                    exec,
                    slot,
                    "docker rm",
                    &["rm", "-f", &plan.name],
                    OP_TIMEOUT,
                )
                .await;
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Whether the config's args choose the network themselves.
pub(super) fn sets_network(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--network" || a == "--net" || a.starts_with("--network=") || a.starts_with("--net=")
    })
}

/// The container paths that the config's args mount something on
/// (`-v`/`--volume`, `--mount`, `--tmpfs`, each as one word `--flag=VALUE`
/// or as two words).
pub(super) fn mount_targets(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = args.iter();
    while let Some(a) = words.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if !matches!(flag, "-v" | "--volume" | "--mount" | "--tmpfs") {
            continue;
        }
        let Some(value) = inline.or_else(|| words.next().cloned()) else {
            break;
        };
        let target = match flag {
            "--mount" => value.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                matches!(k.trim(), "target" | "destination" | "dst").then(|| v.to_string())
            }),
            "--tmpfs" => value.split(':').next().map(str::to_string),
            // -v [SOURCE:]TARGET[:OPTIONS]
            _ => {
                let parts: Vec<&str> = value.split(':').collect();
                match parts.as_slice() {
                    [one] => Some(one.to_string()),
                    [_, target, ..] => Some(target.to_string()),
                    [] => None,
                }
            }
        };
        out.extend(target.filter(|t| !t.is_empty()));
    }
    out
}

/// rollguard's labels for a container on `slot` running `version`.
pub(super) fn our_labels(slot: Slot<'_>, version: Option<&Version>) -> Vec<(String, String)> {
    let mut l = vec![
        (LABEL_APP.to_string(), slot.app.name.clone()),
        (LABEL_INSTANCE.to_string(), slot.instance.name.clone()),
        (LABEL_SIDE.to_string(), slot.side.as_str().to_string()),
    ];
    if let Some(v) = version {
        l.push((LABEL_VERSION.to_string(), v.to_string()));
    }
    l
}

/// A Go duration for docker's flags, from nanoseconds.
fn nanos(n: i64) -> String {
    format!("{n}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_targets_read_every_spelling() {
        let args: Vec<String> = [
            "--volume",
            "/srv/www-v2:/www:ro",
            "-v",
            "/cache",
            "--volume=/a:/b",
            "--mount",
            "type=bind,source=/x,target=/y,readonly",
            "--mount=type=volume,src=v,dst=/z",
            "--tmpfs",
            "/run:size=64k",
            "-e",
            "A=/not/a/mount",
            "--env=B=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            mount_targets(&args),
            ["/www", "/cache", "/b", "/y", "/z", "/run"]
        );
        assert!(mount_targets(&["-v".to_string()]).is_empty());
    }

    #[test]
    fn entrypoint_and_cmd_are_rebuilt_as_one_argv() {
        let mut plan = Plan::new("n", "img");
        plan.entrypoint = Some(vec!["/bin/a".into(), "-x".into()]);
        plan.cmd = Some(vec!["run".into()]);
        let w = plan.create_words();
        let i = w.iter().position(|x| x == "img").unwrap();
        assert_eq!(&w[i..], ["img", "-x", "run"]);
        assert!(w.windows(2).any(|p| p == ["--entrypoint", "/bin/a"]));
        plan.entrypoint = Some(vec![]);
        let w = plan.create_words();
        assert!(w.windows(2).any(|p| p == ["--entrypoint", ""]));
    }

    #[test]
    fn healthcheck_flags() {
        let h = serde_json::json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000i64, "Retries": 2});
        assert_eq!(
            health_flags(&h),
            vec![
                (
                    "--health-cmd".to_string(),
                    Some("curl -f localhost".to_string())
                ),
                (
                    "--health-interval".to_string(),
                    Some("5000000000ns".to_string())
                ),
                ("--health-retries".to_string(), Some("2".to_string())),
            ]
        );
        let h = serde_json::json!({"Test": ["NONE"]});
        assert_eq!(
            health_flags(&h),
            vec![("--no-healthcheck".to_string(), None)]
        );
        assert!(health_flags(&serde_json::json!(5)).is_empty());
    }
}
