//! The docker snapshot's `data`: what a container ran with, read from
//! `docker inspect`, and how it is stored.
//!
//! [`super::Docker::snapshot`] reads `docker inspect` of the container and of its
//! image. Env entries, labels, cmd, entrypoint, healthcheck, working dir and
//! user that merely equal the image's defaults are recorded as `inherited`,
//! the rest as `set`: a recreate passes only the `set` ones, so a restore
//! onto another build of an image never freezes the old build's defaults.
//! The snapshot's `data` is a JSON object:
//!
//! ```json
//! { "format": 1, "container_id": "…", "name": "web-a", "running": true,
//!   "image_id": "sha256:…", "image_ref": "registry.local/web:v1",
//!   "image_inspected": true,
//!   "set":       { "env": ["USER_SET=1"], "labels": {…}, "cmd": null,
//!                  "entrypoint": null, "healthcheck": null,
//!                  "working_dir": null, "user": null },
//!   "inherited": { "env": ["PATH=…", "IMAGE_DEFAULT=1"], "labels": {"img": "1"},
//!                  "cmd": ["/bin/busybox", "httpd", …], … },
//!   "mounts": [{ "type": "bind", "name": "", "source": "/srv", "destination": "/data",
//!                "mode": "ro", "rw": false, "propagation": "rprivate" }],
//!   "port_bindings": [{ "container_port": "8080/tcp", "host_ip": "", "host_port": "18080" }],
//!   "network_mode": "default",
//!   "networks": [{ "name": "bridge", "aliases": [] }],
//!   "restart_policy": { "name": "no", "maximum_retry_count": 0 } }
//! ```
//!
//! In `set` and `inherited`, `cmd`, `entrypoint`, `healthcheck`,
//! `working_dir` and `user` are non-null on exactly the side they belong to.
//!
//! The snapshot's version is the release the container runs: none when it
//! is stopped (`"running": false`), whatever it ran before, so a stopped
//! container left on a spare port by an earlier rollout is never taken for
//! a running release (a rollback puts it back stopped and records that
//! nothing runs there).
//!
//! When the config interpolated values from the environment, they are
//! secrets: every string of the data holds them as the `${NAME}` they came
//! from (see [`crate::config::Secrets::template`]) and `"templated": true` is added. A
//! restore fills them in from the config it runs with, so an `--env
//! TOKEN=${TOKEN}` comes back with the real token and the history never
//! holds it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::inspect::{ContainerConfig, ContainerInspect, ImageInspect, InspectMount, image_tag};
use super::{Docker, LABEL_VERSION};
use crate::model::Version;

/// Version of the snapshot `data` layout.
pub(super) const FORMAT: u32 = 1;
/// Key of the snapshot `data` that says its strings are templates (see
/// [`Secrets::template`]).
const TEMPLATED: &str = "templated";

/// The snapshot's `data` (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct SnapshotData {
    pub(super) format: u32,
    pub(super) container_id: String,
    pub(super) name: String,
    pub(super) running: bool,
    pub(super) image_id: String,
    pub(super) image_ref: String,
    /// Whether the image could be read; when not, everything is `set`.
    pub(super) image_inspected: bool,
    pub(super) set: Settings,
    pub(super) inherited: Settings,
    pub(super) mounts: Vec<Mount>,
    pub(super) port_bindings: Vec<PortBinding>,
    pub(super) network_mode: String,
    pub(super) networks: Vec<Network>,
    pub(super) restart_policy: RestartPolicy,
}

/// Settings that an image has defaults for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Settings {
    pub(super) env: Vec<String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) cmd: Option<Vec<String>>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) healthcheck: Option<serde_json::Value>,
    pub(super) working_dir: Option<String>,
    pub(super) user: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Mount {
    pub(super) r#type: String,
    pub(super) name: String,
    pub(super) source: String,
    pub(super) destination: String,
    pub(super) mode: String,
    pub(super) rw: bool,
    pub(super) propagation: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct PortBinding {
    /// `8080/tcp`.
    pub(super) container_port: String,
    pub(super) host_ip: String,
    pub(super) host_port: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Network {
    pub(super) name: String,
    pub(super) aliases: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RestartPolicy {
    pub(super) name: String,
    pub(super) maximum_retry_count: i64,
}

/// Puts `value` on the `set` side unless it equals the image's default.
fn split<T: PartialEq>(value: T, default: Option<&T>, set: &mut Option<T>, inh: &mut Option<T>) {
    if default == Some(&value) {
        *inh = Some(value);
    } else {
        *set = Some(value);
    }
}

impl SnapshotData {
    /// Reads a container (and its image, when it could be inspected).
    pub(super) fn capture(c: &ContainerInspect, image: Option<&ImageInspect>) -> SnapshotData {
        let (set, inherited) = Settings::split_off(&c.config, image.map(|i| &i.config));
        SnapshotData {
            format: FORMAT,
            container_id: c.id.clone(),
            name: c.name.trim_start_matches('/').to_string(),
            running: c.state.running,
            image_id: c.image.clone(),
            image_ref: c.config.image.clone(),
            image_inspected: image.is_some(),
            set,
            inherited,
            mounts: c.mounts.iter().map(Mount::from_inspect).collect(),
            port_bindings: port_bindings(c),
            network_mode: c.host_config.network_mode.clone(),
            networks: networks(c),
            restart_policy: RestartPolicy {
                name: c.host_config.restart_policy.name.clone(),
                maximum_retry_count: c.host_config.restart_policy.maximum_retry_count,
            },
        }
    }
}

impl Settings {
    /// A container's settings as (`set`, `inherited`): what merely equals
    /// its image's default (`img`, when the image could be read) is
    /// inherited, the rest set.
    fn split_off(cfg: &ContainerConfig, img: Option<&ContainerConfig>) -> (Settings, Settings) {
        let mut set = Settings::default();
        let mut inherited = Settings::default();
        for e in &cfg.env {
            if img.is_some_and(|i| i.env.contains(e)) {
                inherited.env.push(e.clone());
            } else {
                set.env.push(e.clone());
            }
        }
        for (k, v) in &cfg.labels {
            if img.is_some_and(|i| i.labels.get(k) == Some(v)) {
                inherited.labels.insert(k.clone(), v.clone());
            } else {
                set.labels.insert(k.clone(), v.clone());
            }
        }
        let norm = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        split(
            norm(&cfg.cmd),
            img.map(|i| norm(&i.cmd)).as_ref(),
            &mut set.cmd,
            &mut inherited.cmd,
        );
        split(
            norm(&cfg.entrypoint),
            img.map(|i| norm(&i.entrypoint)).as_ref(),
            &mut set.entrypoint,
            &mut inherited.entrypoint,
        );
        // A container without a healthcheck of its own inherits the image's
        // (docker merges it at create), so `null` is never "set".
        match &cfg.healthcheck {
            Some(h) if !h.is_null() && img.is_none_or(|i| i.healthcheck.as_ref() != Some(h)) => {
                set.healthcheck = Some(h.clone());
            }
            h => inherited.healthcheck = h.clone(),
        }
        split(
            cfg.working_dir.clone(),
            img.map(|i| i.working_dir.clone()).as_ref(),
            &mut set.working_dir,
            &mut inherited.working_dir,
        );
        split(
            cfg.user.clone(),
            img.map(|i| i.user.clone()).as_ref(),
            &mut set.user,
            &mut inherited.user,
        );
        // Empty working dir and user mean "none": nothing to set.
        if set.working_dir.as_deref() == Some("") {
            inherited.working_dir = set.working_dir.take();
        }
        if set.user.as_deref() == Some("") {
            inherited.user = set.user.take();
        }
        (set, inherited)
    }
}

/// The networks of `c`, each with the aliases given to it (not the short
/// ID docker adds itself).
fn networks(c: &ContainerInspect) -> Vec<Network> {
    let short_id: String = c.id.chars().take(12).collect();
    c.network_settings
        .networks
        .iter()
        .map(|(name, ep)| Network {
            name: name.clone(),
            aliases: ep
                .aliases
                .iter()
                .filter(|a| {
                    // Docker adds the short ID itself.
                    !(a.len() >= 12 && c.id.starts_with(a.as_str())) && **a != short_id
                })
                .cloned()
                .collect(),
        })
        .collect()
}

/// The port bindings of `c`, one per host binding.
fn port_bindings(c: &ContainerInspect) -> Vec<PortBinding> {
    let mut port_bindings = Vec::new();
    for (port, binds) in &c.host_config.port_bindings {
        for b in binds.iter().flatten() {
            port_bindings.push(PortBinding {
                container_port: port.clone(),
                host_ip: b.host_ip.clone(),
                host_port: b.host_port.clone(),
            });
        }
    }
    port_bindings
}

impl Mount {
    /// A mount as `docker inspect` shows it.
    fn from_inspect(m: &InspectMount) -> Mount {
        Mount {
            r#type: m.r#type.clone(),
            name: m.name.clone(),
            source: m.source.clone(),
            destination: m.destination.clone(),
            mode: m.mode.clone(),
            rw: m.rw,
            propagation: m.propagation.clone(),
        }
    }
}

impl PortBinding {
    /// The `-p` value.
    pub(super) fn to_flag(&self) -> String {
        let inner = &self.container_port;
        let ip = if self.host_ip.contains(':') {
            format!("[{}]", self.host_ip)
        } else {
            self.host_ip.clone()
        };
        match (ip.is_empty(), self.host_port.is_empty()) {
            (true, true) => inner.clone(),
            (true, false) => format!("{}:{inner}", self.host_port),
            (false, _) => format!("{ip}:{}:{inner}", self.host_port),
        }
    }
}

impl Mount {
    /// The `docker create` flags that recreate this mount.
    pub(super) fn flags(&self) -> Vec<String> {
        let mut opts: Vec<String> = self
            .mode
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        if !self.rw && !opts.iter().any(|o| o == "ro") {
            opts.retain(|o| o != "rw");
            opts.push("ro".into());
        }
        let v = |src: &str| {
            let mut s = format!("{src}:{}", self.destination);
            if !opts.is_empty() {
                s.push(':');
                s.push_str(&opts.join(","));
            }
            vec!["-v".to_string(), s]
        };
        match self.r#type.as_str() {
            "bind" if !self.source.contains(':') && !self.destination.contains(':') => {
                v(&self.source)
            }
            "bind" | "volume" => {
                let src = if self.r#type == "bind" {
                    &self.source
                } else {
                    &self.name
                };
                if self.r#type == "volume" && !self.destination.contains(':') {
                    return v(src);
                }
                let mut fields = vec![
                    format!("type={}", self.r#type),
                    format!("source={src}"),
                    format!("target={}", self.destination),
                ];
                if !self.rw {
                    fields.push("readonly".into());
                }
                let csv: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                vec!["--mount".into(), csv.join(",")]
            }
            "tmpfs" => vec![
                "--mount".into(),
                format!(
                    "type=tmpfs,{}",
                    csv_field(&format!("target={}", self.destination))
                ),
            ],
            _ => Vec::new(),
        }
    }
}

/// One field of `--mount`'s CSV, quoted when it needs to be.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n']) || f.starts_with(' ') {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

impl Docker {
    /// The snapshot `data` as stored: with secrets, every string holds
    /// them as their `${NAME}` and `"templated": true` says so.
    pub(super) fn stored(
        &self,
        data: &SnapshotData,
    ) -> Result<serde_json::Value, serde_json::Error> {
        let value = serde_json::to_value(data)?;
        if self.secrets.is_empty() {
            return Ok(value);
        }
        let mut value = self.secrets.template_json(&value);
        if let Some(map) = value.as_object_mut() {
            map.insert(TEMPLATED.into(), serde_json::Value::Bool(true));
        }
        Ok(value)
    }

    /// A stored snapshot `data` with the secrets of today's config filled
    /// back in.
    pub(super) fn read_stored(&self, value: &serde_json::Value) -> Result<SnapshotData, String> {
        let value = if value.get(TEMPLATED) == Some(&serde_json::Value::Bool(true)) {
            self.secrets.expand_json(value).map_err(|e| {
                format!("{e}; set the variable it was made with (as when it was taken) and retry")
            })?
        } else {
            value.clone()
        };
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// The release container `c` (captured as `data`) runs: its
/// `rollguard.version` label, else its image tag; `None` when it is
/// stopped, whatever it ran before (a stopped container left on a spare
/// port by an earlier rollout runs nothing).
pub(super) fn running_version(c: &ContainerInspect, data: &SnapshotData) -> Option<Version> {
    if !c.state.running {
        return None;
    }
    data.set
        .labels
        .get(LABEL_VERSION)
        .and_then(|v| Version::parse(v).ok())
        .or_else(|| image_tag(&c.config.image).and_then(|t| Version::parse(&t).ok()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{DockerSpec, Secrets};
    use crate::driver::docker::inspect::parse_first;
    use crate::driver::docker::plan::Plan;

    #[test]
    fn stored_snapshots_hold_secrets_as_names_and_restore_them() {
        let secrets = Secrets::new([("API_TOKEN".to_string(), "tok-9f2b-real".to_string())]);
        let spec = DockerSpec {
            image: "registry.local/web".into(),
            container: "{app}-{instance}".into(),
            port: None,
            args: vec!["--env=TOKEN=${API_TOKEN}".into()],
            keep: 1,
            stop_timeout: Duration::from_secs(1),
        };
        let d = Docker::new(spec.clone()).with_secrets(secrets.clone());
        let mut data = SnapshotData {
            format: FORMAT,
            container_id: "abc".into(),
            image_ref: "registry.local/web:v1".into(),
            ..SnapshotData::default()
        };
        data.set.env = vec!["TOKEN=tok-9f2b-real".into(), "PRICE=$5{x}".into()];
        data.set.cmd = Some(vec!["serve".into(), "--key=tok-9f2b-real".into()]);
        data.set
            .labels
            .insert("note".into(), "uses tok-9f2b-real".into());

        let stored = d.stored(&data).unwrap();
        let text = stored.to_string();
        assert!(!text.contains("tok-9f2b-real"), "{text}");
        assert!(text.contains("TOKEN=${API_TOKEN}"), "{text}");
        assert_eq!(stored["format"], 1);
        assert_eq!(stored[TEMPLATED], true);

        // Read back with the config's values: exactly what was captured, so
        // a recreate passes the real token again.
        let back = d.read_stored(&stored).unwrap();
        assert_eq!(back, data);
        let mut plan = Plan::new("web-a", "registry.local/web:v1");
        plan.carry(&back, true);
        assert!(
            plan.create_words()
                .contains(&"TOKEN=tok-9f2b-real".to_string())
        );

        // A config that no longer has the variable cannot restore it.
        let without = Docker::new(spec.clone());
        let e = without.read_stored(&stored).unwrap_err();
        assert!(e.contains("API_TOKEN"), "{e}");

        // Without secrets the data is stored as captured (older snapshots
        // read the same way).
        let plain = Docker::new(spec).stored(&data).unwrap();
        assert!(plain.get(TEMPLATED).is_none());
        assert_eq!(without.read_stored(&plain).unwrap(), data);
    }

    fn inspect(json: &str) -> ContainerInspect {
        parse_first(json).unwrap().unwrap()
    }

    fn image(json: &str) -> ImageInspect {
        parse_first(json).unwrap().unwrap()
    }

    #[test]
    fn a_stopped_container_runs_no_release() {
        let of = |running: bool, labels: &str, image: &str| {
            let c = inspect(&format!(
                r#"[{{"Id":"c1","State":{{"Running":{running}}},
                   "Config":{{"Image":"{image}","Labels":{labels}}}}}]"#
            ));
            let data = SnapshotData::capture(&c, None);
            running_version(&c, &data).map(|v| v.to_string())
        };
        let labelled = r#"{"rollguard.version":"v3"}"#;
        assert_eq!(of(true, labelled, "web:v2").as_deref(), Some("v3"));
        assert_eq!(of(true, "{}", "web:v2").as_deref(), Some("v2"));
        assert_eq!(of(false, labelled, "web:v2"), None);
        assert_eq!(of(false, "{}", "web:v2"), None);
    }

    #[test]
    fn capture_splits_set_from_inherited() {
        let c = inspect(
            r#"[{"Id":"0123456789abcdef","Name":"/web-a","Image":"sha256:img",
               "State":{"Running":true},
               "Config":{"Image":"web:v1","Env":["PATH=/bin","IMAGE_DEFAULT=1","USER_SET=1"],
                 "Cmd":["httpd"],"Entrypoint":null,"Labels":{"img":"1","mine":"x"},
                 "WorkingDir":"/w","User":""},
               "HostConfig":{"NetworkMode":"appnet",
                 "PortBindings":{"8080/tcp":[{"HostIp":"","HostPort":"18080"}]},
                 "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}},
               "NetworkSettings":{"Networks":{"appnet":{"Aliases":["web","0123456789ab"]},
                                               "other":{"Aliases":["o"]}}},
               "Mounts":[{"Type":"bind","Source":"/srv","Destination":"/data","Mode":"ro","RW":false},
                         {"Type":"volume","Name":"vol","Source":"/var/lib/x","Destination":"/v","Mode":"z","RW":true}]}]"#,
        );
        let i = image(
            r#"[{"Id":"sha256:img","Config":{"Env":["PATH=/bin","IMAGE_DEFAULT=1"],
               "Cmd":["httpd"],"Labels":{"img":"1"},"WorkingDir":"/"}}]"#,
        );
        let d = SnapshotData::capture(&c, Some(&i));
        assert_eq!(d.set.env, vec!["USER_SET=1"]);
        assert_eq!(d.inherited.env, vec!["PATH=/bin", "IMAGE_DEFAULT=1"]);
        assert_eq!(d.set.labels.keys().collect::<Vec<_>>(), vec!["mine"]);
        assert_eq!(d.inherited.labels.keys().collect::<Vec<_>>(), vec!["img"]);
        assert_eq!(d.set.cmd, None);
        assert_eq!(d.inherited.cmd, Some(vec!["httpd".to_string()]));
        assert_eq!(d.set.entrypoint, None);
        assert_eq!(d.set.working_dir.as_deref(), Some("/w"));
        assert_eq!(d.set.user, None);
        assert_eq!(d.networks[0].aliases, vec!["web"]);

        let mut plan = Plan::new("web-a", "web:v1");
        plan.carry(&d, true);
        plan.ports = d.port_bindings.iter().map(PortBinding::to_flag).collect();
        let w = plan.create_words();
        let joined = w.join(" ");
        assert!(joined.contains("--env USER_SET=1"), "{joined}");
        assert!(!joined.contains("IMAGE_DEFAULT"), "{joined}");
        assert!(!joined.contains("img=1"), "{joined}");
        assert!(joined.contains("--restart on-failure:3"), "{joined}");
        assert!(
            joined.contains("--network appnet --network-alias web"),
            "{joined}"
        );
        assert!(joined.contains("--publish 18080:8080/tcp"), "{joined}");
        assert!(joined.contains("-v /srv:/data:ro"), "{joined}");
        assert!(joined.contains("-v vol:/v:z"), "{joined}");
        assert_eq!(w.last().map(String::as_str), Some("web:v1"));
        assert_eq!(
            plan.connect_words(),
            vec![vec!["network", "connect", "--alias", "o", "other", "web-a"]]
        );
    }

    #[test]
    fn port_and_mount_flags() {
        let p = |ip: &str, hp: &str| PortBinding {
            container_port: "80/tcp".into(),
            host_ip: ip.into(),
            host_port: hp.into(),
        };
        assert_eq!(p("", "8080").to_flag(), "8080:80/tcp");
        assert_eq!(p("127.0.0.1", "8080").to_flag(), "127.0.0.1:8080:80/tcp");
        assert_eq!(p("::1", "8080").to_flag(), "[::1]:8080:80/tcp");
        assert_eq!(p("", "").to_flag(), "80/tcp");
        let m = Mount {
            r#type: "bind".into(),
            source: "/a:b,c".into(),
            destination: "/d".into(),
            rw: false,
            ..Mount::default()
        };
        assert_eq!(
            m.flags(),
            vec!["--mount", "type=bind,\"source=/a:b,c\",target=/d,readonly"]
        );
    }
}
