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
//! image and keeps what was set on the container apart from what it
//! inherits from its image; the layout of its `data` is in `snapshot.rs`.
//! A stopped container is kept in a snapshot but runs no release, and the
//! config's secrets are stored as the `${NAME}` they came from.
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
//!
//! # Files
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the driver: its operations, the container's name, the image to restore from |
//! | `run.rs` | the command runner: `docker WORDS` as one quoted shell line, run and described |
//! | `inspect.rs` | `docker inspect` as far as rollguard reads it, and reading it safely |
//! | `snapshot.rs` | the snapshot's `data`: captured from an inspect, stored with secrets as names |
//! | `plan.rs` | what to create: a container's `docker create` words, and creating it |
//! | `kept.rs` | replaced containers kept under `{name}--rg-{unix_ms}`, and pruned |

mod inspect;
mod kept;
mod plan;
mod run;
mod snapshot;

use std::time::Duration;

use super::{DriverError, Side, Slot, Snapshot};
use crate::config::{DockerSpec, Secrets};
use crate::exec::Executor;
use crate::model::Version;
use crate::shell;
use inspect::{image_tag, inspect_container, inspect_container_id, inspect_image};
use plan::{Plan, mount_targets, our_labels, sets_network};
pub(crate) use run::release_names;
use run::{failed, run_ok};
use snapshot::{PortBinding, SnapshotData, running_version};

/// Timeout of quick docker commands (inspect, rename, rm, start).
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of `docker create`, which may pull the image.
const CREATE_TIMEOUT: Duration = Duration::from_secs(300);

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
}

/// Docker's rule for container names.
fn valid_container_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_checked() {
        assert!(valid_container_name("web-a.1_x"));
        assert!(!valid_container_name("-web"));
        assert!(!valid_container_name("web a"));
        assert!(!valid_container_name("web;rm"));
        assert!(!valid_container_name(""));
    }
}
