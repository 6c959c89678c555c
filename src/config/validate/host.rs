//! Validating `[[host]]`: a unique name, an address (the name when none
//! is given), and its `ssh` settings.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::bounds::CONNECT_TIMEOUT;
use super::context::Ctx;
use crate::config::raw::{RawHost, RawSsh, S};
use crate::config::{Host, HostKeyCheck, Ssh, home_dir};

/// One `[[host]]`; `seen` holds the host names so far.
pub(super) fn host(cx: &mut Ctx<'_>, seen: &mut HashSet<String>, h: &S<RawHost>) -> Host {
    let h = h.get_ref();
    let name = cx.unique(seen, &h.name, "host").to_string();
    let address = cx.opt_string(&h.address).unwrap_or_else(|| name.clone());
    if address.trim().is_empty()
        && let Some(a) = &h.address
    {
        cx.err(a.span(), "address is empty");
    }
    let ssh = h.ssh.as_ref().map(|s| ssh(cx, s.get_ref()));
    Host { name, address, ssh }
}

/// A host's `ssh = { ... }`; a path that starts with `~/` is in the home folder.
fn ssh(cx: &mut Ctx<'_>, s: &RawSsh) -> Ssh {
    let port = s.port.as_ref().map_or(22, |p| cx.port(p, "ssh port"));
    let expand = |p: String| -> PathBuf {
        match p.strip_prefix("~/") {
            Some(rest) => home_dir().join(rest),
            None => PathBuf::from(p),
        }
    };
    let identity = cx.opt_string(&s.identity).map(expand);
    let known_hosts = cx.opt_string(&s.known_hosts).map(expand);
    let host_key_check = cx.choice(
        &s.host_key_check,
        "host_key_check",
        &[
            ("strict", HostKeyCheck::Strict),
            ("accept-new", HostKeyCheck::AcceptNew),
            ("off", HostKeyCheck::Off),
        ],
        HostKeyCheck::Strict,
    );
    Ssh {
        user: cx.opt_string(&s.user),
        port,
        identity,
        known_hosts,
        host_key_check,
        connect_timeout: cx.duration(
            &s.connect_timeout,
            "connect_timeout",
            Duration::from_secs(10),
            CONNECT_TIMEOUT,
        ),
    }
}
