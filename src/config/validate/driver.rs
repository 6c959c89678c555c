//! Validating an app's driver section: `[app.docker]` (an image
//! repository without a tag, a container name template, arguments, how
//! many old images are kept), `[app.process]` and `[app.command]` (command
//! templates whose values are quoted).

use std::time::Duration;

use super::PROBE_PLACEHOLDERS;
use super::bounds::STOP_WAIT;
use super::context::Ctx;
use crate::config::raw::{RawCommand, RawDocker, RawProcess, S};
use crate::config::{CommandSpec, DRIVER_PLACEHOLDERS, DockerSpec, ProcessSpec};

/// A driver's (or traffic's) command template: not empty, its values
/// quoted.
pub(super) fn driver_template(cx: &mut Ctx<'_>, s: &S<String>) -> String {
    let v = cx.string(s);
    if v.trim().is_empty() {
        cx.err(s.span(), "this command is empty");
    }
    cx.template(s, &v, DRIVER_PLACEHOLDERS, true);
    v
}

/// [`driver_template`], when the key is given.
pub(super) fn opt_driver_template(cx: &mut Ctx<'_>, s: &Option<S<String>>) -> Option<String> {
    s.as_ref().map(|s| driver_template(cx, s))
}

/// `[app.docker]`.
pub(super) fn docker(cx: &mut Ctx<'_>, d: &RawDocker) -> DockerSpec {
    let image = cx.string(&d.image);
    let bad_image = image.is_empty()
        || image.contains(char::is_whitespace)
        || image.starts_with('-')
        || image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
    if bad_image {
        cx.error(
            d.image.span(),
            format!("\"{image}\" is not an image repository"),
            Some("write the repository without a tag, e.g. \"registry.local/checkout\": the version is the tag".into()),
        );
    }
    let container = match &d.container {
        Some(c) => {
            let v = cx.string(c);
            cx.template(c, &v, PROBE_PLACEHOLDERS, false);
            v
        }
        None => "{app}-{instance}".into(),
    };
    let args = d
        .args
        .iter()
        .map(|a| {
            let v = cx.string(a);
            cx.template(a, &v, DRIVER_PLACEHOLDERS, false);
            v
        })
        .collect();
    let keep = match &d.keep {
        None => 3,
        Some(k) => u32::try_from(*k.get_ref()).unwrap_or_else(|_| {
            cx.err(k.span(), "keep must be 0 or more");
            3
        }),
    };
    DockerSpec {
        image,
        container,
        port: d.port.as_ref().map(|p| cx.port(p, "port")),
        args,
        keep,
        stop_timeout: cx.duration(
            &d.stop_timeout,
            "stop_timeout",
            Duration::from_secs(10),
            STOP_WAIT,
        ),
    }
}

/// `[app.process]`.
pub(super) fn process(cx: &mut Ctx<'_>, p: &RawProcess) -> ProcessSpec {
    ProcessSpec {
        run: driver_template(cx, &p.run),
        present: opt_driver_template(cx, &p.present),
        grace: cx.duration(&p.grace, "grace", Duration::from_secs(10), STOP_WAIT),
        run_dir: cx
            .opt_string(&p.run_dir)
            .unwrap_or_else(|| "/tmp/rollguard-run".into()),
    }
}

/// `[app.command]`.
pub(super) fn command(cx: &mut Ctx<'_>, c: &RawCommand) -> CommandSpec {
    CommandSpec {
        start: driver_template(cx, &c.start),
        stop: driver_template(cx, &c.stop),
        current: opt_driver_template(cx, &c.current),
        present: opt_driver_template(cx, &c.present),
    }
}
