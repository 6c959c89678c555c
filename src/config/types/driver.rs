//! An app's driver section: `[app.docker]`, `[app.process]`,
//! `[app.command]`, and the placeholders their templates may use.

use std::time::Duration;

/// Placeholders that driver and traffic templates may use.
pub const DRIVER_PLACEHOLDERS: &[&str] = &["app", "instance", "host", "port", "version"];

/// `[app.docker]`: the version is the image tag.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerSpec {
    /// Image repository, e.g. `registry.local/checkout`; runs `IMAGE:VERSION`.
    pub image: String,
    /// Container name template (default `{app}-{instance}`).
    pub container: String,
    /// The port inside the container that the instance's port maps to
    /// (default: the same as the instance's port).
    pub port: Option<u16>,
    /// Extra `docker run` arguments, each one word (templated, quoted).
    pub args: Vec<String>,
    /// How many replaced containers are kept stopped for rollback.
    pub keep: u32,
    /// `docker stop --time`.
    pub stop_timeout: Duration,
}

/// `[app.process]`: rollguard starts and supervises the process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSpec {
    /// Shell template of the command that runs one instance.
    pub run: String,
    /// Shell template that exits 0 when a version's release is present
    /// (default: the first word of `run` is executable).
    pub present: Option<String>,
    /// SIGTERM, then SIGKILL after this long.
    pub grace: Duration,
    /// Folder on the host for pidfiles and logs.
    pub run_dir: String,
}

/// `[app.command]`: user commands do the work.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    /// Starts `{version}` of an instance.
    pub start: String,
    /// Stops an instance.
    pub stop: String,
    /// Prints the version an instance runs (optional).
    pub current: Option<String>,
    /// Exits 0 when `{version}` can be started (optional).
    pub present: Option<String>,
}
