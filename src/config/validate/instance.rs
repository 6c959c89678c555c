//! Validating `[[app.instance]]`: a unique name, a host the file defines
//! (this machine when it names none), a port, and an `alt_port` apart
//! from it.

use std::collections::HashSet;

use super::LOCAL_HOST;
use super::context::Ctx;
use crate::config::Instance;
use crate::config::raw::RawInstance;

/// One instance; `seen` holds the app's instance names so far, `hosts`
/// the hosts the file defines; `needs_local` is set when it runs on this
/// machine.
pub(super) fn instance(
    cx: &mut Ctx<'_>,
    seen: &mut HashSet<String>,
    hosts: &HashSet<String>,
    needs_local: &mut bool,
    i: &RawInstance,
) -> Instance {
    let name = cx.unique(seen, &i.name, "instance").to_string();
    let host = match &i.host {
        None => {
            *needs_local = true;
            LOCAL_HOST.to_string()
        }
        Some(h) => {
            let v = cx.string(h);
            if !hosts.contains(&v) {
                let mut known: Vec<_> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
                known.sort();
                let hint = if known.is_empty() {
                    "no [[host]] is defined; add one, or omit host to run on this machine"
                        .to_string()
                } else {
                    format!("known hosts: {}", known.join(", "))
                };
                cx.error(h.span(), format!("unknown host \"{v}\""), Some(hint));
            }
            v
        }
    };
    let port = cx.port(&i.port, "port");
    let alt_port = i.alt_port.as_ref().map(|p| cx.port(p, "alt_port"));
    if alt_port == Some(port)
        && let Some(p) = &i.alt_port
    {
        cx.err(p.span(), "alt_port must differ from port");
    }
    Instance {
        name,
        host,
        port,
        alt_port,
    }
}
