//! Validating `[metrics]`: `listen` is an IP address and a port other
//! than 0, where Prometheus scrapes `/metrics`. Any address is allowed (a
//! Prometheus usually scrapes from another machine); nothing served there
//! is secret.

use std::net::SocketAddr;

use super::context::Ctx;
use crate::config::Metrics;
use crate::config::raw::{RawMetrics, S};

/// `[metrics]` as written; `None` (with an error) when it cannot be used.
pub(super) fn metrics(cx: &mut Ctx<'_>, m: &S<RawMetrics>) -> Option<Metrics> {
    let Some(s) = &m.get_ref().listen else {
        cx.error(
            m.span(),
            "[metrics] has no `listen`",
            Some("add listen = \"127.0.0.1:9753\", or remove [metrics] to serve nothing".into()),
        );
        return None;
    };
    let v = cx.string(s);
    match v.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Some(Metrics { listen: a }),
        Ok(_) => {
            cx.error(
                s.span(),
                format!("listen {v} has port 0"),
                Some("Prometheus needs a port it knows, e.g. \"127.0.0.1:9753\"".into()),
            );
            None
        }
        Err(_) => {
            cx.error(
                s.span(),
                format!("listen \"{v}\" is not an IP address and port"),
                Some(
                    "write it as \"127.0.0.1:9753\", \"0.0.0.0:9753\" or \"[::1]:9753\" \
                     (a host name is not looked up)"
                        .into(),
                ),
            );
            None
        }
    }
}
