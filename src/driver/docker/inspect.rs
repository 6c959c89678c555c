//! `docker inspect`, as far as rollguard reads it: the containers and
//! images asked for by name or ID, and the JSON docker prints read so that
//! nothing in it is trusted (missing fields and nulls read as empty,
//! anything else is an error, never a panic).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::OP_TIMEOUT;
use super::run::{describe, failed, run};
use crate::driver::{DriverError, Slot};
use crate::exec::{Executor, Output};

/// Whether a failed inspect just means "there is no such object".
fn is_missing(out: &Output) -> bool {
    let s = out.stderr.to_ascii_lowercase();
    s.contains("no such container") || s.contains("no such image") || s.contains("no such object")
}

/// Parses the JSON array `docker inspect` prints; its first element.
pub(super) fn parse_first<T: DeserializeOwned>(text: &str) -> Result<Option<T>, String> {
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
pub(super) async fn inspect_container(
    exec: &Executor,
    slot: Slot<'_>,
    name: &str,
) -> Result<Option<ContainerInspect>, DriverError> {
    Ok(inspect_raw(exec, slot, name)
        .await?
        .filter(|c| c.name.trim_start_matches('/') == name))
}

/// The container whose ID is exactly `id`, if any.
pub(super) async fn inspect_container_id(
    exec: &Executor,
    slot: Slot<'_>,
    id: &str,
) -> Result<Option<ContainerInspect>, DriverError> {
    Ok(inspect_raw(exec, slot, id).await?.filter(|c| c.id == id))
}

/// `docker image inspect TARGET`; `None` when absent.
pub(super) async fn inspect_image(
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

/// The tag of an image reference: after the last `:` of the last path
/// segment; `latest` when there is none; `None` for digests and IDs.
pub(super) fn image_tag(reference: &str) -> Option<String> {
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
pub(super) struct ContainerInspect {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) image: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) state: State,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) config: ContainerConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) host_config: HostConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) network_settings: NetworkSettings,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) mounts: Vec<InspectMount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct State {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) running: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ContainerConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) image: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) env: Vec<String>,
    #[serde(default)]
    pub(super) cmd: Option<Vec<String>>,
    #[serde(default)]
    pub(super) entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) healthcheck: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) working_dir: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) user: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HostConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) network_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) port_bindings: BTreeMap<String, Option<Vec<InspectPortBinding>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) restart_policy: InspectRestart,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InspectPortBinding {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) host_ip: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InspectRestart {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) maximum_retry_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct NetworkSettings {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) networks: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Endpoint {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) aliases: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct InspectMount {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) r#type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) source: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) destination: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) mode: String,
    #[serde(default, rename = "RW", deserialize_with = "nullable")]
    pub(super) rw: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) propagation: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ImageInspect {
    #[serde(default, deserialize_with = "nullable")]
    pub(super) id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) config: ContainerConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::docker::snapshot::SnapshotData;

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
}
