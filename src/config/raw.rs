//! The file as written: serde types that keep the byte span of every value
//! so that validation can point at `FILE:LINE:COL`. Unknown keys are errors.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub console: Option<RawConsole>,
    #[serde(default)]
    pub host: Vec<S<RawHost>>,
    #[serde(default)]
    pub app: Vec<S<RawApp>>,
    #[serde(default)]
    pub notify: Vec<S<RawNotify>>,
    pub metrics: Option<S<RawMetrics>>,
}

/// `[metrics]`: where `/metrics` is served.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub listen: Option<S<String>>,
}

/// `[[notify]]`: keys of every receiver type; validation refuses those
/// that do not apply to its type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub on: Option<S<Vec<S<String>>>>,
    pub apps: Option<S<Vec<S<String>>>>,
    pub timeout: Option<S<String>>,
    pub retry_for: Option<S<String>>,
    pub url: Option<S<String>>,
    pub secret: Option<S<String>>,
    pub routing_key: Option<S<String>>,
    pub run: Option<S<String>>,
    pub host: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub tls: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
    pub from: Option<S<String>>,
    pub to: Option<S<Vec<S<String>>>>,
    pub ca_file: Option<S<String>>,
    pub listen: Option<S<String>>,
    pub token: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    pub refresh: Option<S<String>>,
    pub theme: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub read_only: Option<bool>,
    pub keys: Option<BTreeMap<S<String>, S<RawKeys>>>,
    pub mouse: Option<bool>,
}

/// A value of `[console.keys]`: one key (whose place is the value's), or a
/// list of keys, each with its place.
pub(super) enum RawKeys {
    One(String),
    List(Vec<S<String>>),
}

impl<'de> Deserialize<'de> for RawKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = RawKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key such as \"q\", or a list of keys such as [\"j\", \"Down\"]")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawKeys, E> {
                Ok(RawKeys::One(v.to_string()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<S<String>>()? {
                    keys.push(key);
                }
                Ok(RawKeys::List(keys))
            }
        }
        d.deserialize_any(Keys)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub name: S<String>,
    pub address: Option<S<String>>,
    pub ssh: Option<S<RawSsh>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    pub user: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub identity: Option<S<String>>,
    pub known_hosts: Option<S<String>>,
    pub host_key_check: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub name: S<String>,
    pub driver: Option<S<String>>,
    pub strategy: Option<S<String>>,
    pub protected: Option<bool>,
    #[serde(default)]
    pub instance: Vec<S<RawInstance>>,
    #[serde(default)]
    pub probe: Vec<S<RawProbe>>,
    pub health: Option<RawHealth>,
    pub docker: Option<S<RawDocker>>,
    pub process: Option<S<RawProcess>>,
    pub command: Option<S<RawCommand>>,
    pub traffic: Option<S<RawTraffic>>,
    pub rollout: Option<RawRollout>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocker {
    pub image: S<String>,
    pub container: Option<S<String>>,
    pub port: Option<S<i64>>,
    #[serde(default)]
    pub args: Vec<S<String>>,
    pub keep: Option<S<i64>>,
    pub stop_timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcess {
    pub run: S<String>,
    pub present: Option<S<String>>,
    pub grace: Option<S<String>>,
    pub run_dir: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommand {
    pub start: S<String>,
    pub stop: S<String>,
    pub current: Option<S<String>>,
    pub present: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraffic {
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub host: Option<S<String>>,
    pub upstream_file: Option<S<String>>,
    pub validate: Option<S<String>>,
    pub reload: Option<S<String>>,
    pub socket: Option<S<String>>,
    pub backend: Option<S<String>>,
    pub drain_timeout: Option<S<String>>,
    pub drain: Option<S<String>>,
    pub undrain: Option<S<String>>,
    pub weight: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    pub batch: Option<S<toml::Value>>,
    pub pause: Option<S<String>>,
    pub min_healthy: Option<S<i64>>,
    pub max_failed_batches: Option<S<i64>>,
    pub canary: Option<S<i64>>,
    pub steps: Option<S<Vec<S<i64>>>>,
    pub step_pause: Option<S<String>>,
    pub auto_rollback: Option<S<String>>,
    pub confirm_window: Option<S<String>>,
    pub rollback_batch: Option<S<i64>>,
    pub surge: Option<S<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub name: S<String>,
    pub host: Option<S<String>>,
    pub port: S<i64>,
    pub alt_port: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub timeout: Option<S<String>>,
    // http
    pub method: Option<S<String>>,
    pub path: Option<S<String>>,
    pub url: Option<S<String>>,
    pub scheme: Option<S<String>>,
    pub headers: Option<S<BTreeMap<String, S<String>>>>,
    pub expect_status: Option<S<Vec<S<toml::Value>>>>,
    pub body_contains: Option<S<String>>,
    pub conditions: Option<S<Vec<S<String>>>>,
    pub insecure_tls: Option<S<bool>>,
    // tcp
    pub port: Option<S<i64>>,
    pub send: Option<S<String>>,
    pub expect: Option<S<String>>,
    // command
    pub command: Option<S<String>>,
    pub expect_exit: Option<S<i64>>,
    pub output_contains: Option<S<String>>,
    // docker
    pub container: Option<S<String>>,
    // prometheus (and url, conditions, insecure_tls)
    pub query: Option<S<String>>,
    pub on_no_data: Option<S<String>>,
    pub bearer_token: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub interval: Option<S<String>>,
    pub initial_delay: Option<S<String>>,
    pub success_threshold: Option<S<i64>>,
    pub failure_threshold: Option<S<i64>>,
    pub max_failures: Option<S<i64>>,
    pub require: Option<S<String>>,
    pub deadline: Option<S<String>>,
    pub monitor: Option<S<String>>,
    pub resolve_after: Option<S<String>>,
}
