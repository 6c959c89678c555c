//! The docker driver: the version is the image tag, so version `v2` of an
//! app whose `[app.docker] image` is `registry.local/web` runs
//! `registry.local/web:v2`.
//!
//! Everything goes through the `docker` command line on the slot's host,
//! run by the slot's [`Executor`] (locally or over SSH). Every command line
//! is built with [`shell::render`], so each argument reaches `docker` as
//! exactly one word whatever it contains; templates from the config
//! (`container`, `args`) are filled in with [`shell::render_plain`] first
//! and each result is then passed as one quoted word.
//!
//! # Containers
//!
//! A slot's container is named by the `container` template (values
//! `{app} {instance} {host} {port}`), with `-alt` appended on the alt side.
//! Every container rollguard creates carries the labels `rollguard.app`,
//! `rollguard.instance`, `rollguard.side` and `rollguard.version`; the
//! version label is what [`Docker::current`] reports (falling back to the
//! image tag for containers rollguard did not create).
//!
//! [`Docker::start`] never destroys the container it replaces: it stops it
//! and renames it `{name}--rg-{unix_ms}`, then creates the new one under the
//! name. It keeps the newest `keep` of those renamed containers and removes
//! older ones. The new container gets the old one's container-set settings
//! (see below), fresh rollguard labels, the slot's port mapping
//! (`-p {slot port}:{container port}`) and the `args` of the config, last so
//! that they win; a mount the args put on a container path replaces the
//! carried mount on that path.
//!
//! # Snapshots
//!
//! [`Docker::snapshot`] reads `docker inspect` of the container and of its
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
//! from (see [`Secrets::template`]) and `"templated": true` is added. A
//! restore fills them in from the config it runs with, so an `--env
//! TOKEN=${TOKEN}` comes back with the real token and the history never
//! holds it.
//!
//! # Restore
//!
//! [`Docker::restore`] first looks for the snapshot's container by ID. When
//! it still exists (kept by a start), whatever runs under the name now is
//! stopped and renamed away (kept like a replaced container, so its logs can
//! still be read), the kept container is renamed back and started: the very
//! same container runs again. When it is gone, the container is recreated
//! from the snapshot: its image (by ID while that image exists, else by
//! reference), only the `set` settings, and its mounts, port bindings,
//! networks with aliases and restart policy.
//!
//! Nothing docker prints is trusted: missing fields read as empty, and
//! output that is not the expected JSON is a [`DriverError::Failed`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::{DriverError, Side, Slot, Snapshot};
use crate::config::{DockerSpec, Secrets};
use crate::exec::{Executor, Output};
use crate::model::Version;
use crate::shell;

/// Timeout of quick docker commands (inspect, rename, rm, start).
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of `docker create`, which may pull the image.
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Suffix between a container name and the time it was replaced.
const KEPT_MARK: &str = "--rg-";
/// Version of the snapshot `data` layout.
const FORMAT: u32 = 1;
/// Key of the snapshot `data` that says its strings are templates (see
/// [`Secrets::template`]).
const TEMPLATED: &str = "templated";

/// Label: the app a container belongs to.
pub const LABEL_APP: &str = "rollguard.app";
/// Label: the instance a container belongs to.
pub const LABEL_INSTANCE: &str = "rollguard.instance";
/// Label: `main` or `alt`.
pub const LABEL_SIDE: &str = "rollguard.side";
/// Label: the version (image tag) a container runs.
pub const LABEL_VERSION: &str = "rollguard.version";

/// The docker driver of one app.
#[derive(Clone, Debug)]
pub struct Docker {
    spec: DockerSpec,
    secrets: Secrets,
}

impl Docker {
    /// A driver for `spec`.
    pub fn new(spec: DockerSpec) -> Docker {
        Docker {
            spec,
            secrets: Secrets::default(),
        }
    }

    /// The same driver, keeping `secrets` out of what it stores and logs.
    pub fn with_secrets(mut self, secrets: Secrets) -> Docker {
        self.secrets = secrets;
        self
    }

    /// The values it keeps out of what it stores and logs.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// See [`super::Driver::current`]: the `rollguard.version` label of the
    /// running container, else its image tag; `None` when no container of
    /// the slot's name runs.
    pub async fn current(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Version>, DriverError> {
        let name = self.container_name(slot)?;
        let Some(c) = inspect_container(exec, slot, &name).await? else {
            return Ok(None);
        };
        if !c.state.running {
            return Ok(None);
        }
        if let Some(v) = c.config.labels.get(LABEL_VERSION) {
            return Version::parse(v).map(Some).map_err(|e| {
                failed(
                    slot,
                    "docker inspect",
                    format!("container {name}: label {LABEL_VERSION}: {e}"),
                )
            });
        }
        let tag = image_tag(&c.config.image).ok_or_else(|| {
            failed(
                slot,
                "docker inspect",
                format!(
                    "container {name} runs image {:?}, which has no tag and no {LABEL_VERSION} label",
                    c.config.image
                ),
            )
        })?;
        Version::parse(&tag).map(Some).map_err(|e| {
            failed(
                slot,
                "docker inspect",
                format!("container {name}: image tag: {e}"),
            )
        })
    }

    /// See [`super::Driver::present`]: whether `{image}:{version}` is in the
    /// host's image store (`docker image inspect`).
    pub async fn present(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<bool, DriverError> {
        Ok(inspect_image(exec, slot, &self.image_ref(version))
            .await?
            .is_some())
    }

    /// See [`super::Driver::available`]: the tags of the app's image on
    /// the host that are release names.
    pub async fn available(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Vec<Version>, DriverError> {
        let out = run_ok(
            exec,
            slot,
            "list images",
            &["image", "ls", "--format", "{{.Tag}}", &self.spec.image],
            OP_TIMEOUT,
        )
        .await?;
        Ok(release_names(&out))
    }

    /// See [`super::Driver::snapshot`]: the container's configuration, split
    /// into what was set on the container and what it inherits from its
    /// image (see the module docs for the layout). A stopped container is
    /// kept in the snapshot (a restore puts it back stopped) but runs no
    /// release: its version is `None`, as [`Docker::current`] says.
    pub async fn snapshot(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
    ) -> Result<Option<Snapshot>, DriverError> {
        let name = self.container_name(slot)?;
        let Some(c) = inspect_container(exec, slot, &name).await? else {
            return Ok(None);
        };
        let image = inspect_image(exec, slot, &c.image).await?;
        let data = SnapshotData::capture(&c, image.as_ref());
        let version = running_version(&c, &data);
        let data = self
            .stored(&data)
            .map_err(|e| failed(slot, "snapshot", format!("cannot encode the snapshot: {e}")))?;
        Ok(Some(Snapshot {
            driver: "docker".into(),
            version,
            data,
        }))
    }

    /// See [`super::Driver::start`]: stops and keeps (renames) the container
    /// of the slot, runs `{image}:{version}` under its name with the old
    /// container's container-set settings, then prunes kept containers
    /// beyond `keep`. A failed create or start is reported with docker's
    /// message; the old container then stays kept for the restore.
    pub async fn start(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        version: &Version,
    ) -> Result<(), DriverError> {
        let name = self.container_name(slot)?;
        let extra = self.render_args(slot, version)?;
        let port = slot.port().ok_or_else(|| {
            DriverError::Config(format!(
                "{}: the instance has no alt_port, so nothing can run on its alt side",
                slot.label()
            ))
        })?;
        let mut plan = Plan::new(&name, &self.image_ref(version));
        if let Some(old) = inspect_container(exec, slot, &name).await? {
            let image = inspect_image(exec, slot, &old.image).await?;
            let data = SnapshotData::capture(&old, image.as_ref());
            plan.carry(&data, !sets_network(&extra));
            // A mount the config's args set again replaces the carried one
            // (docker refuses two mounts on one destination).
            let targets = mount_targets(&extra);
            plan.mounts.retain(|m| !targets.contains(&m.destination));
            self.stop_container(exec, slot, &name).await?;
            self.keep_away(exec, slot, &name, &old.id).await?;
        }
        plan.labels.retain(|k, _| !k.starts_with("rollguard."));
        plan.labels.extend(our_labels(slot, Some(version)));
        let inner = self.spec.port.unwrap_or(port);
        plan.ports = vec![format!("{port}:{inner}")];
        plan.extra = extra;
        // On failure nothing is pruned: the kept container is the way back.
        self.launch(exec, slot, &plan, true).await?;
        self.prune(exec, slot, &name).await;
        Ok(())
    }

    /// See [`super::Driver::stop`]: `docker stop`; the container is kept.
    /// Nothing to stop is not an error.
    pub async fn stop(&self, exec: &Executor, slot: Slot<'_>) -> Result<(), DriverError> {
        let name = self.container_name(slot)?;
        if inspect_container(exec, slot, &name).await?.is_none() {
            return Ok(());
        }
        self.stop_container(exec, slot, &name).await
    }

    /// See [`super::Driver::restore`]: runs the snapshot's container again
    /// under the slot's name, the same container when it was kept, else a
    /// new one recreated from the snapshot. What ran under the name is
    /// stopped and kept like a replaced container. A snapshot of a stopped
    /// container is put back stopped (as it was).
    pub async fn restore(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        snapshot: &Snapshot,
    ) -> Result<(), DriverError> {
        if snapshot.driver != "docker" {
            return Err(DriverError::Config(format!(
                "{}: cannot restore a {:?} snapshot with the docker driver",
                slot.label(),
                snapshot.driver
            )));
        }
        let data = self.read_stored(&snapshot.data).map_err(|e| {
            DriverError::Config(format!(
                "{}: the stored docker snapshot cannot be read: {e}",
                slot.label()
            ))
        })?;
        let name = self.container_name(slot)?;
        let now = inspect_container(exec, slot, &name).await?;
        let kept = if data.container_id.is_empty() {
            None
        } else {
            inspect_container_id(exec, slot, &data.container_id).await?
        };

        // Fast path: the very container of the snapshot still exists.
        if let Some(kept) = kept {
            if now.as_ref().is_some_and(|n| n.id == kept.id) {
                // It already runs under the name (nothing replaced it).
                return self.ensure_state(exec, slot, &name, &data).await;
            }
            if let Some(now) = &now {
                self.stop_container(exec, slot, &name).await?;
                self.keep_away(exec, slot, &name, &now.id).await?;
            }
            self.docker_ok(exec, slot, "docker rename", &["rename", &kept.id, &name])
                .await?;
            self.ensure_state(exec, slot, &name, &data).await?;
            self.prune(exec, slot, &name).await;
            return Ok(());
        }

        // Slow path: recreate from the snapshot.
        let image = self.restore_image(exec, slot, &data).await?;
        let mut plan = Plan::new(&name, &image);
        plan.carry(&data, true);
        plan.labels
            .extend(our_labels(slot, snapshot.version.as_ref()));
        plan.ports = data
            .port_bindings
            .iter()
            .map(PortBinding::to_flag)
            .collect();
        if let Some(now) = &now {
            self.stop_container(exec, slot, &name).await?;
            self.keep_away(exec, slot, &name, &now.id).await?;
        }
        self.launch(exec, slot, &plan, data.running).await?;
        self.prune(exec, slot, &name).await;
        Ok(())
    }

    // ----- pieces -----

    /// The snapshot `data` as stored: with secrets, every string holds
    /// them as their `${NAME}` and `"templated": true` says so.
    fn stored(&self, data: &SnapshotData) -> Result<serde_json::Value, serde_json::Error> {
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
    fn read_stored(&self, value: &serde_json::Value) -> Result<SnapshotData, String> {
        let value = if value.get(TEMPLATED) == Some(&serde_json::Value::Bool(true)) {
            self.secrets.expand_json(value).map_err(|e| {
                format!("{e}; set the variable it was made with (as when it was taken) and retry")
            })?
        } else {
            value.clone()
        };
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// `{image}:{version}`.
    fn image_ref(&self, version: &Version) -> String {
        format!("{}:{}", self.spec.image, version)
    }

    /// The container name of `slot`: the template, plus `-alt` on the alt
    /// side. Refused unless docker would accept it as a name.
    fn container_name(&self, slot: Slot<'_>) -> Result<String, DriverError> {
        let vars = slot.vars(None);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut name = shell::render_plain(&self.spec.container, &vars).map_err(|e| {
            DriverError::Config(format!(
                "{}: container template {:?}: {e}",
                slot.label(),
                self.spec.container
            ))
        })?;
        if slot.side == Side::Alt {
            name.push_str("-alt");
        }
        if !valid_container_name(&name) {
            return Err(DriverError::Config(format!(
                "{}: container name {name:?} is not a valid docker container name \
                 (letters, digits, `_`, `.` and `-`, starting with a letter or digit)",
                slot.label()
            )));
        }
        Ok(name)
    }

    /// The config's `args`, filled in for `version`, one word each.
    fn render_args(&self, slot: Slot<'_>, version: &Version) -> Result<Vec<String>, DriverError> {
        let vars = slot.vars(Some(version));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.spec
            .args
            .iter()
            .map(|a| {
                shell::render_plain(a, &vars).map_err(|e| {
                    DriverError::Config(format!("{}: docker arg {a:?}: {e}", slot.label()))
                })
            })
            .collect()
    }

    /// Runs `docker WORDS`, failing on a non-zero exit; returns stdout.
    async fn docker_ok(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        what: &str,
        words: &[&str],
    ) -> Result<String, DriverError> {
        run_ok(exec, slot, what, words, OP_TIMEOUT).await
    }

    /// `docker stop --time N name`.
    async fn stop_container(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        name: &str,
    ) -> Result<(), DriverError> {
        let secs = self.spec.stop_timeout.as_secs().to_string();
        let timeout = self.spec.stop_timeout + Duration::from_secs(10);
        run_ok(
            exec,
            slot,
            "docker stop",
            &["stop", "--time", &secs, name],
            timeout,
        )
        .await
        .map(|_| ())
    }

    /// Renames the container `id` (now called `name`) to a fresh
    /// `{name}--rg-{unix_ms}`.
    async fn keep_away(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        name: &str,
        id: &str,
    ) -> Result<(), DriverError> {
        let kept = self.kept(exec, slot, name).await?;
        let newest = kept.iter().map(|k| k.1).max().unwrap_or(0);
        let stamp = crate::model::now_ms().max(newest.saturating_add(1));
        let new_name = format!("{name}{KEPT_MARK}{stamp}");
        self.docker_ok(exec, slot, "docker rename", &["rename", id, &new_name])
            .await
            .map(|_| ())
    }

    /// Kept containers of `name`: (id, stamp), any order.
    async fn kept(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        name: &str,
    ) -> Result<Vec<(String, i64)>, DriverError> {
        let filter = format!("name=^/?{}{KEPT_MARK}", regex_escape(name));
        let out = self
            .docker_ok(
                exec,
                slot,
                "docker ps",
                &[
                    "ps",
                    "-a",
                    "--no-trunc",
                    "--filter",
                    &filter,
                    "--format",
                    "{{.ID}} {{.Names}}",
                ],
            )
            .await?;
        Ok(parse_kept(&out, name))
    }

    /// Removes kept containers of `name` beyond the newest `keep`. Failures
    /// are logged, never fatal: the deploy itself is done.
    async fn prune(&self, exec: &Executor, slot: Slot<'_>, name: &str) {
        let mut kept = match self.kept(exec, slot, name).await {
            Ok(k) => k,
            Err(e) => {
                let e = self.secrets.mask(&e.to_string());
                tracing::warn!("{}: cannot list kept containers: {e}", slot.label());
                return;
            }
        };
        kept.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (id, stamp) in kept.iter().skip(self.spec.keep as usize) {
            if let Err(e) = self.docker_ok(exec, slot, "docker rm", &["rm", id]).await {
                let e = self.secrets.mask(&e.to_string());
                tracing::warn!(
                    "{}: cannot remove kept container {name}{KEPT_MARK}{stamp}: {e}",
                    slot.label()
                );
            }
        }
    }

    /// Starts (or leaves stopped) the container under `name` as the
    /// snapshot says it was.
    async fn ensure_state(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        name: &str,
        data: &SnapshotData,
    ) -> Result<(), DriverError> {
        if data.running {
            self.docker_ok(exec, slot, "docker start", &["start", name])
                .await?;
        }
        Ok(())
    }

    /// The image to recreate a snapshot from: the reference while it still
    /// names the snapshot's image, else the image ID while that exists,
    /// else the reference (a newer build of the same tag, or a pull).
    async fn restore_image(
        &self,
        exec: &Executor,
        slot: Slot<'_>,
        data: &SnapshotData,
    ) -> Result<String, DriverError> {
        if data.image_ref.is_empty() {
            return Ok(data.image_id.clone());
        }
        if data.image_id.is_empty() {
            return Ok(data.image_ref.clone());
        }
        if let Some(img) = inspect_image(exec, slot, &data.image_ref).await?
            && img.id == data.image_id
        {
            return Ok(data.image_ref.clone());
        }
        if inspect_image(exec, slot, &data.image_id).await?.is_some() {
            return Ok(data.image_id.clone());
        }
        Ok(data.image_ref.clone())
    }

    /// Creates the container of `plan`, connects its extra networks and
    /// starts it (when `run`). On failure the half-made container is
    /// removed so the name is free for a restore.
    async fn launch(
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

// ----- running docker -----

/// `DriverError::Failed` for `slot`.
fn failed(slot: Slot<'_>, what: &str, detail: String) -> DriverError {
    DriverError::Failed {
        slot: slot.label(),
        what: what.into(),
        detail,
    }
}

/// The shell line `docker WORD...`, every word quoted by [`shell::render`].
pub(crate) fn command_line(words: &[&str]) -> String {
    let names: Vec<String> = (0..words.len()).map(placeholder_name).collect();
    let mut template = String::from("docker");
    for n in &names {
        template.push_str(" {");
        template.push_str(n);
        template.push('}');
    }
    let vars: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(words.iter().copied())
        .collect();
    // The template is ours: bare placeholders outside quotes never fail.
    shell::render(&template, &vars).unwrap_or_else(|_| {
        let mut line = String::from("docker");
        for w in words {
            line.push(' ');
            line.push_str(&shell::quote(w));
        }
        line
    })
}

/// `w_a`, `w_b`, …, `w_z`, `w_ba`, …: placeholder names (lowercase only).
fn placeholder_name(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s.reverse();
    format!("w_{}", String::from_utf8_lossy(&s))
}

/// The lines of `out` that are release names, each once, in order.
pub(crate) fn release_names(out: &str) -> Vec<Version> {
    let mut seen: Vec<Version> = Vec::new();
    for v in out.lines().filter_map(|l| Version::parse(l.trim()).ok()) {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

/// Runs `docker WORDS` and returns the output whatever the exit code.
async fn run(
    exec: &Executor,
    slot: Slot<'_>,
    words: &[&str],
    timeout: Duration,
) -> Result<Output, DriverError> {
    exec.run(&command_line(words), timeout)
        .await
        .map_err(|source| DriverError::Exec {
            slot: slot.label(),
            source,
        })
}

/// Runs `docker WORDS`; a non-zero exit is [`DriverError::Failed`] with
/// docker's message. Returns stdout.
async fn run_ok(
    exec: &Executor,
    slot: Slot<'_>,
    what: &str,
    words: &[&str],
    timeout: Duration,
) -> Result<String, DriverError> {
    let out = run(exec, slot, words, timeout).await?;
    if out.code == Some(0) {
        Ok(out.stdout)
    } else {
        Err(failed(slot, what, describe(&out)))
    }
}

/// `exit N: <end of stderr>` (or of stdout when stderr is empty).
fn describe(out: &Output) -> String {
    let code = match out.code {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".into(),
    };
    let text = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    let tail: String = {
        let chars: Vec<char> = text.chars().collect();
        let start = chars.len().saturating_sub(600);
        chars[start..].iter().collect()
    };
    if tail.is_empty() {
        code
    } else {
        format!("{code}: {tail}")
    }
}

/// Whether a failed inspect just means "there is no such object".
fn is_missing(out: &Output) -> bool {
    let s = out.stderr.to_ascii_lowercase();
    s.contains("no such container") || s.contains("no such image") || s.contains("no such object")
}

/// Parses the JSON array `docker inspect` prints; its first element.
fn parse_first<T: DeserializeOwned>(text: &str) -> Result<Option<T>, String> {
    let mut items: Vec<T> = serde_json::from_str(text.trim()).map_err(|e| {
        let short: String = text.chars().take(200).collect();
        format!("unexpected output ({e}): {short:?}")
    })?;
    Ok(if items.is_empty() {
        None
    } else {
        Some(items.swap_remove(0))
    })
}

/// `docker inspect --type container TARGET`; `None` when absent.
async fn inspect_raw(
    exec: &Executor,
    slot: Slot<'_>,
    target: &str,
) -> Result<Option<ContainerInspect>, DriverError> {
    let out = run(
        exec,
        slot,
        &["inspect", "--type", "container", target],
        OP_TIMEOUT,
    )
    .await?;
    if out.code != Some(0) {
        if is_missing(&out) {
            return Ok(None);
        }
        return Err(failed(slot, "docker inspect", describe(&out)));
    }
    parse_first(&out.stdout).map_err(|e| failed(slot, "docker inspect", e))
}

/// The container named exactly `name` (not an ID prefix), if any.
async fn inspect_container(
    exec: &Executor,
    slot: Slot<'_>,
    name: &str,
) -> Result<Option<ContainerInspect>, DriverError> {
    Ok(inspect_raw(exec, slot, name)
        .await?
        .filter(|c| c.name.trim_start_matches('/') == name))
}

/// The container whose ID is exactly `id`, if any.
async fn inspect_container_id(
    exec: &Executor,
    slot: Slot<'_>,
    id: &str,
) -> Result<Option<ContainerInspect>, DriverError> {
    Ok(inspect_raw(exec, slot, id).await?.filter(|c| c.id == id))
}

/// `docker image inspect TARGET`; `None` when absent.
async fn inspect_image(
    exec: &Executor,
    slot: Slot<'_>,
    target: &str,
) -> Result<Option<ImageInspect>, DriverError> {
    let out = run(exec, slot, &["image", "inspect", target], OP_TIMEOUT).await?;
    if out.code != Some(0) {
        if is_missing(&out) {
            return Ok(None);
        }
        return Err(failed(slot, "docker image inspect", describe(&out)));
    }
    parse_first(&out.stdout).map_err(|e| failed(slot, "docker image inspect", e))
}

// ----- small pure helpers -----

/// Docker's rule for container names.
fn valid_container_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The tag of an image reference: after the last `:` of the last path
/// segment; `latest` when there is none; `None` for digests and IDs.
fn image_tag(reference: &str) -> Option<String> {
    if reference.contains('@') || reference.starts_with("sha256:") {
        return None;
    }
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => Some(tag.to_string()),
        Some(_) => None,
        None if last.is_empty() => None,
        None => Some("latest".into()),
    }
}

/// Escapes regex metacharacters for docker's `name=` filter.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lines `ID NAME[,NAME…]` from `docker ps`: the kept containers of `name`
/// as (id, stamp).
fn parse_kept(out: &str, name: &str) -> Vec<(String, i64)> {
    let prefix = format!("{name}{KEPT_MARK}");
    out.lines()
        .filter_map(|line| {
            let (id, names) = line.trim().split_once(' ')?;
            names.split(',').find_map(|n| {
                let stamp = n.trim().trim_start_matches('/').strip_prefix(&prefix)?;
                if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((id.to_string(), stamp.parse().ok()?))
            })
        })
        .collect()
}

/// Whether the config's args choose the network themselves.
fn sets_network(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--network" || a == "--net" || a.starts_with("--network=") || a.starts_with("--net=")
    })
}

/// The container paths that the config's args mount something on
/// (`-v`/`--volume`, `--mount`, `--tmpfs`, each as one word `--flag=VALUE`
/// or as two words).
fn mount_targets(args: &[String]) -> Vec<String> {
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

/// The release container `c` (captured as `data`) runs: its
/// `rollguard.version` label, else its image tag; `None` when it is
/// stopped, whatever it ran before (a stopped container left on a spare
/// port by an earlier rollout runs nothing).
fn running_version(c: &ContainerInspect, data: &SnapshotData) -> Option<Version> {
    if !c.state.running {
        return None;
    }
    data.set
        .labels
        .get(LABEL_VERSION)
        .and_then(|v| Version::parse(v).ok())
        .or_else(|| image_tag(&c.config.image).and_then(|t| Version::parse(&t).ok()))
}

/// rollguard's labels for a container on `slot` running `version`.
fn our_labels(slot: Slot<'_>, version: Option<&Version>) -> Vec<(String, String)> {
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

// ----- docker inspect, as far as rollguard reads it -----

/// `null` reads as the type's default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerInspect {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    image: String,
    #[serde(default, deserialize_with = "nullable")]
    state: State,
    #[serde(default, deserialize_with = "nullable")]
    config: ContainerConfig,
    #[serde(default, deserialize_with = "nullable")]
    host_config: HostConfig,
    #[serde(default, deserialize_with = "nullable")]
    network_settings: NetworkSettings,
    #[serde(default, deserialize_with = "nullable")]
    mounts: Vec<InspectMount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct State {
    #[serde(default, deserialize_with = "nullable")]
    running: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default, deserialize_with = "nullable")]
    image: String,
    #[serde(default, deserialize_with = "nullable")]
    env: Vec<String>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    healthcheck: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    working_dir: String,
    #[serde(default, deserialize_with = "nullable")]
    user: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    #[serde(default, deserialize_with = "nullable")]
    network_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    port_bindings: BTreeMap<String, Option<Vec<InspectPortBinding>>>,
    #[serde(default, deserialize_with = "nullable")]
    restart_policy: InspectRestart,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectPortBinding {
    #[serde(default, deserialize_with = "nullable")]
    host_ip: String,
    #[serde(default, deserialize_with = "nullable")]
    host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectRestart {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    maximum_retry_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    #[serde(default, deserialize_with = "nullable")]
    networks: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Endpoint {
    #[serde(default, deserialize_with = "nullable")]
    aliases: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectMount {
    #[serde(default, deserialize_with = "nullable")]
    r#type: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    source: String,
    #[serde(default, deserialize_with = "nullable")]
    destination: String,
    #[serde(default, deserialize_with = "nullable")]
    mode: String,
    #[serde(default, rename = "RW", deserialize_with = "nullable")]
    rw: bool,
    #[serde(default, deserialize_with = "nullable")]
    propagation: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageInspect {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    config: ContainerConfig,
}

// ----- the snapshot -----

/// The snapshot's `data` (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct SnapshotData {
    format: u32,
    container_id: String,
    name: String,
    running: bool,
    image_id: String,
    image_ref: String,
    /// Whether the image could be read; when not, everything is `set`.
    image_inspected: bool,
    set: Settings,
    inherited: Settings,
    mounts: Vec<Mount>,
    port_bindings: Vec<PortBinding>,
    network_mode: String,
    networks: Vec<Network>,
    restart_policy: RestartPolicy,
}

/// Settings that an image has defaults for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Settings {
    env: Vec<String>,
    labels: BTreeMap<String, String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    healthcheck: Option<serde_json::Value>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Mount {
    r#type: String,
    name: String,
    source: String,
    destination: String,
    mode: String,
    rw: bool,
    propagation: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct PortBinding {
    /// `8080/tcp`.
    container_port: String,
    host_ip: String,
    host_port: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Network {
    name: String,
    aliases: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct RestartPolicy {
    name: String,
    maximum_retry_count: i64,
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
    fn capture(c: &ContainerInspect, image: Option<&ImageInspect>) -> SnapshotData {
        let img = image.map(|i| &i.config);
        let mut set = Settings::default();
        let mut inherited = Settings::default();
        for e in &c.config.env {
            if img.is_some_and(|i| i.env.contains(e)) {
                inherited.env.push(e.clone());
            } else {
                set.env.push(e.clone());
            }
        }
        for (k, v) in &c.config.labels {
            if img.is_some_and(|i| i.labels.get(k) == Some(v)) {
                inherited.labels.insert(k.clone(), v.clone());
            } else {
                set.labels.insert(k.clone(), v.clone());
            }
        }
        let norm = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
        split(
            norm(&c.config.cmd),
            img.map(|i| norm(&i.cmd)).as_ref(),
            &mut set.cmd,
            &mut inherited.cmd,
        );
        split(
            norm(&c.config.entrypoint),
            img.map(|i| norm(&i.entrypoint)).as_ref(),
            &mut set.entrypoint,
            &mut inherited.entrypoint,
        );
        // A container without a healthcheck of its own inherits the image's
        // (docker merges it at create), so `null` is never "set".
        match &c.config.healthcheck {
            Some(h) if !h.is_null() && img.is_none_or(|i| i.healthcheck.as_ref() != Some(h)) => {
                set.healthcheck = Some(h.clone());
            }
            h => inherited.healthcheck = h.clone(),
        }
        split(
            c.config.working_dir.clone(),
            img.map(|i| i.working_dir.clone()).as_ref(),
            &mut set.working_dir,
            &mut inherited.working_dir,
        );
        split(
            c.config.user.clone(),
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

        let short_id: String = c.id.chars().take(12).collect();
        let networks = c
            .network_settings
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
            .collect();
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
            mounts: c
                .mounts
                .iter()
                .map(|m| Mount {
                    r#type: m.r#type.clone(),
                    name: m.name.clone(),
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    mode: m.mode.clone(),
                    rw: m.rw,
                    propagation: m.propagation.clone(),
                })
                .collect(),
            port_bindings,
            network_mode: c.host_config.network_mode.clone(),
            networks,
            restart_policy: RestartPolicy {
                name: c.host_config.restart_policy.name.clone(),
                maximum_retry_count: c.host_config.restart_policy.maximum_retry_count,
            },
        }
    }
}

impl PortBinding {
    /// The `-p` value.
    fn to_flag(&self) -> String {
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
    fn flags(&self) -> Vec<String> {
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

// ----- what to create -----

/// A container to create: built from a snapshot, then adjusted.
#[derive(Clone, Debug, Default, PartialEq)]
struct Plan {
    name: String,
    image: String,
    env: Vec<String>,
    labels: BTreeMap<String, String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    healthcheck: Option<serde_json::Value>,
    working_dir: Option<String>,
    user: Option<String>,
    mounts: Vec<Mount>,
    /// `-p` values.
    ports: Vec<String>,
    /// `None`: docker's default network.
    network_mode: Option<String>,
    /// Aliases on the network of `network_mode`.
    aliases: Vec<String>,
    /// Further networks, connected after create.
    more_networks: Vec<Network>,
    restart: Option<String>,
    /// The config's args, after everything else.
    extra: Vec<String>,
}

impl Plan {
    fn new(name: &str, image: &str) -> Plan {
        Plan {
            name: name.into(),
            image: image.into(),
            ..Plan::default()
        }
    }

    /// Takes the container-set settings of `data` (and, when `networks`,
    /// its networks); never its port bindings.
    fn carry(&mut self, data: &SnapshotData, networks: bool) {
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
    fn create_words(&self) -> Vec<String> {
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
    fn connect_words(&self) -> Vec<Vec<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn command_lines_keep_every_word_whole() {
        let words = [
            "run",
            "a b",
            "$(touch /tmp/rollguard-docker-pwned)",
            "x'; echo injected; '",
            "{{.ID}} {{.Names}}",
            "",
            "{w_a}",
        ];
        let line = command_line(&words);
        assert!(line.starts_with("docker "), "{line}");
        // Swap `docker` for printf to see the words the shell hands over.
        let shown = sh(&format!("printf '[%s]\\n'{}", &line["docker".len()..]));
        let expect: String = words.iter().map(|w| format!("[{w}]\n")).collect();
        assert_eq!(shown, expect);
        assert!(!std::path::Path::new("/tmp/rollguard-docker-pwned").exists());
        let many: Vec<String> = (0..60).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let shown = sh(&format!(
            "printf '%s\\n'{}",
            &command_line(&many)["docker".len()..]
        ));
        assert_eq!(shown.lines().count(), 60);
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("web:v1").as_deref(), Some("v1"));
        assert_eq!(image_tag("reg:5000/team/web:v1.2").as_deref(), Some("v1.2"));
        assert_eq!(image_tag("reg:5000/team/web").as_deref(), Some("latest"));
        assert_eq!(image_tag("web@sha256:abc"), None);
        assert_eq!(image_tag("sha256:abc"), None);
        assert_eq!(image_tag(""), None);
        assert_eq!(image_tag("web:"), None);
    }

    #[test]
    fn kept_names_are_parsed_strictly() {
        let out = "aaa web-a--rg-1700000000000\nbbb web-a--rg-x1\nccc web-a-alt--rg-5\n\
                   ddd web-a--rg-17,other\n garbage\n\neee web-a--rg-\n";
        assert_eq!(
            parse_kept(out, "web-a"),
            vec![("aaa".into(), 1_700_000_000_000), ("ddd".into(), 17)]
        );
        assert_eq!(regex_escape("a.b-c"), "a\\.b-c");
    }

    #[test]
    fn container_names_are_checked() {
        assert!(valid_container_name("web-a.1_x"));
        assert!(!valid_container_name("-web"));
        assert!(!valid_container_name("web a"));
        assert!(!valid_container_name("web;rm"));
        assert!(!valid_container_name(""));
    }

    #[test]
    fn bad_docker_output_is_an_error_not_a_panic() {
        for text in ["", "null", "{", "[1]", "not json", "[{\"Id\": 5}]"] {
            assert!(parse_first::<ContainerInspect>(text).is_err(), "{text}");
        }
        // Nulls and missing fields read as empty.
        let c: ContainerInspect = parse_first(
            r#"[{"Id":"abc","Config":{"Env":null,"Cmd":null,"Labels":null},
                "HostConfig":{"PortBindings":{"80/tcp":null},"RestartPolicy":null},
                "NetworkSettings":{"Networks":{"n":{"Aliases":null}}},"Mounts":null}]"#,
        )
        .unwrap()
        .unwrap();
        let d = SnapshotData::capture(&c, None);
        assert!(d.port_bindings.is_empty());
        assert_eq!(d.networks[0].aliases, Vec::<String>::new());
        assert!(parse_first::<ContainerInspect>("[]").unwrap().is_none());
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
