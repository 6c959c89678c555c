//! Traffic through HAProxy's runtime API: the admin socket (`stats socket
//! ... level admin`) changes server weights and states without a reload,
//! so traffic moves at once and draining is observable per server.
//!
//! This file exists because HAProxy, unlike nginx, can drain one server and
//! tell how many sessions it still holds: [`Haproxy::apply`] uses that to
//! return only once drained servers are idle, so the caller may stop them.
//!
//! The backend's servers are named `{instance}` and `{instance}-alt` (see
//! [`Server::haproxy_name`]). For a wanted routing:
//!
//! 1. `show servers state B` checks that every server exists (nothing is
//!    changed when one does not) and reads its current state;
//! 2. servers that get traffic, those gaining it first: `set server B/S addr
//!    IP port P` (when the address is an IP), `set server B/S weight W`,
//!    `set server B/S state ready`; then it waits until HAProxy counts them
//!    as up (with health checks, the first check must pass), so capacity
//!    never drops to zero;
//! 3. servers that lose traffic: `set server B/S state drain` (unless already
//!    in maintenance), then `show stat` every 100 ms until their current
//!    sessions and queue are 0 or `drain_timeout` passed (logged), then
//!    `set server B/S state maint`.
//!
//! On this machine the socket is used directly, one command per
//! connection. On an SSH host the command goes through `socat` (or `nc -U`)
//! run by the executor, so one of them must be installed there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

use super::{Routing, Server, TrafficError};
use crate::config::{Fleet, HaproxyTraffic};
use crate::exec::Executor;
use crate::shell;

/// How long one runtime API command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a readied server has to be counted as up.
pub const UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Time between two looks at sessions or states.
const POLL: Duration = Duration::from_millis(100);

/// `srv_admin_state` bits meaning maintenance (forced, inherited, config,
/// resolver, hostname).
const ADMIN_MAINT: u32 = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
/// `srv_op_state` of a running server.
const OP_RUNNING: u32 = 2;

/// Moves an app's traffic through haproxy.
#[derive(Clone, Debug)]
pub struct Haproxy {
    spec: HaproxyTraffic,
}

/// One server's row of `show servers state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    op: u32,
    admin: u32,
}

impl Haproxy {
    /// A mover for `spec`.
    pub fn new(spec: HaproxyTraffic) -> Haproxy {
        Haproxy { spec }
    }

    /// The host the balancer (or the hooks) run on.
    pub fn host(&self) -> &str {
        &self.spec.host
    }

    /// See [`super::Traffic::apply`]: weights and readies the servers that
    /// get traffic, waits for them to be up, then drains the others and
    /// waits (up to `drain_timeout`) for their sessions to end before
    /// putting them in maintenance.
    pub async fn apply(
        &self,
        _fleet: &Fleet,
        exec: &Executor,
        from: &Routing,
        to: &Routing,
    ) -> Result<(), TrafficError> {
        check_word("backend", &self.spec.backend)?;
        for s in &to.servers {
            check_word("server", &s.haproxy_name())?;
        }
        let states = self.states(exec).await?;
        self.check_known(to, &states)?;
        self.bring_up(exec, from, to).await?;
        self.drain(exec, to, &states).await
    }

    /// Refuses a routing that names a server the backend does not have
    /// (in `states`), before anything is changed.
    fn check_known(
        &self,
        to: &Routing,
        states: &HashMap<String, State>,
    ) -> Result<(), TrafficError> {
        let b = &self.spec.backend;
        let Some(s) = to
            .servers
            .iter()
            .find(|s| !states.contains_key(&s.haproxy_name()))
        else {
            return Ok(());
        };
        let mut known: Vec<&String> = states.keys().collect();
        known.sort();
        let known: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
        Err(TrafficError::Failed {
            what: format!("haproxy server {b}/{}", s.haproxy_name()),
            detail: format!(
                "No such server in backend {b} (it has: {}); name HAProxy's servers \
                 after the instances: `{}` and `{}-alt`",
                known.join(", "),
                s.instance,
                s.instance
            ),
        })
    }

    /// Sets address, weight and `ready` on the servers of `to` that get
    /// traffic, those that gain the most first, then waits until they are up.
    async fn bring_up(
        &self,
        exec: &Executor,
        from: &Routing,
        to: &Routing,
    ) -> Result<(), TrafficError> {
        let b = &self.spec.backend;
        let mut ups: Vec<&Server> = to.servers.iter().filter(|s| s.weight.is_some()).collect();
        ups.sort_by_key(|s| {
            let old = from
                .get(&s.instance, s.side)
                .and_then(|f| f.weight)
                .unwrap_or(0);
            std::cmp::Reverse(i64::from(s.weight.unwrap_or(0)) - i64::from(old))
        });
        for s in &ups {
            let name = format!("{b}/{}", s.haproxy_name());
            if let Ok(ip) = s.address.parse::<IpAddr>() {
                let cmd = format!("set server {name} addr {ip} port {}", s.port);
                let reply = self.send(exec, &cmd).await?;
                if !(reply.contains("no need to change") || reply.contains("changed from")) {
                    return Err(refused(&name, &cmd, &reply));
                }
            }
            let w = s.weight.unwrap_or(0);
            self.set(exec, &name, &format!("set server {name} weight {w}"))
                .await?;
            self.set(exec, &name, &format!("set server {name} state ready"))
                .await?;
        }
        self.wait_up(exec, &ups).await
    }

    /// Drains the servers of `to` without traffic (those in maintenance,
    /// by `states`, stay there), waits for them to be idle, then puts them
    /// in maintenance.
    async fn drain(
        &self,
        exec: &Executor,
        to: &Routing,
        states: &HashMap<String, State>,
    ) -> Result<(), TrafficError> {
        let b = &self.spec.backend;
        let downs: Vec<&Server> = to.servers.iter().filter(|s| s.weight.is_none()).collect();
        for s in &downs {
            let name = format!("{b}/{}", s.haproxy_name());
            let in_maint = states
                .get(&s.haproxy_name())
                .is_some_and(|st| st.admin & ADMIN_MAINT != 0);
            let state = if in_maint { "maint" } else { "drain" };
            self.set(exec, &name, &format!("set server {name} state {state}"))
                .await?;
        }
        if !downs.is_empty() {
            self.wait_idle(exec, &downs).await?;
        }
        for s in &downs {
            let name = format!("{b}/{}", s.haproxy_name());
            self.set(exec, &name, &format!("set server {name} state maint"))
                .await?;
        }
        Ok(())
    }

    /// Runs a `set server` command, whose success reply is empty.
    async fn set(&self, exec: &Executor, name: &str, cmd: &str) -> Result<(), TrafficError> {
        let reply = self.send(exec, cmd).await?;
        if reply.trim().is_empty() {
            Ok(())
        } else {
            Err(refused(name, cmd, &reply))
        }
    }

    /// Waits until every server in `ups` is running.
    async fn wait_up(&self, exec: &Executor, ups: &[&Server]) -> Result<(), TrafficError> {
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            let states = self.states(exec).await?;
            let pending: Vec<String> = ups
                .iter()
                .map(|s| s.haproxy_name())
                .filter(|n| states.get(n).is_none_or(|st| st.op != OP_RUNNING))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TrafficError::Failed {
                    what: format!(
                        "bringing up {} in haproxy backend {}",
                        pending.join(", "),
                        self.spec.backend
                    ),
                    detail: format!(
                        "not up after {UP_TIMEOUT:?} (HAProxy's health checks fail?); \
                         nothing was drained"
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the servers in `downs` hold no session and no queued
    /// request, or `drain_timeout` passed.
    async fn wait_idle(&self, exec: &Executor, downs: &[&Server]) -> Result<(), TrafficError> {
        let deadline = Instant::now() + self.spec.drain_timeout;
        loop {
            let busy = self.busy(exec).await?;
            let left: Vec<String> = downs
                .iter()
                .map(|s| s.haproxy_name())
                .filter(|n| busy.get(n).copied().unwrap_or(0) > 0)
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    backend = %self.spec.backend,
                    servers = %left.join(", "),
                    "haproxy: sessions still open after drain_timeout ({:?}); \
                     putting the servers in maintenance anyway",
                    self.spec.drain_timeout
                );
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `show servers state B`: each server's operational and admin state.
    async fn states(&self, exec: &Executor) -> Result<HashMap<String, State>, TrafficError> {
        let cmd = format!("show servers state {}", self.spec.backend);
        let reply = self.send(exec, &cmd).await?;
        parse_states(&reply).ok_or_else(|| TrafficError::Failed {
            what: format!("haproxy `{cmd}`"),
            detail: reply.trim().to_string(),
        })
    }

    /// `show stat B 4 -1`: current sessions plus queued requests per server.
    async fn busy(&self, exec: &Executor) -> Result<HashMap<String, u64>, TrafficError> {
        let cmd = format!("show stat {} 4 -1", self.spec.backend);
        let reply = self.send(exec, &cmd).await?;
        parse_busy(&reply, &self.spec.backend).ok_or_else(|| TrafficError::Failed {
            what: format!("haproxy `{cmd}`"),
            detail: reply.trim().to_string(),
        })
    }

    /// Sends one command and returns HAProxy's whole reply.
    async fn send(&self, exec: &Executor, cmd: &str) -> Result<String, TrafficError> {
        let socket = &self.spec.socket;
        let failed = |detail: String| TrafficError::Failed {
            what: format!("haproxy `{cmd}` on {socket}"),
            detail,
        };
        match exec {
            Executor::Local(_) => {
                let talk = async {
                    let mut s = UnixStream::connect(socket).await?;
                    s.write_all(format!("{cmd}\n").as_bytes()).await?;
                    let mut reply = Vec::new();
                    s.read_to_end(&mut reply).await?;
                    Ok::<_, std::io::Error>(reply)
                };
                match tokio::time::timeout(COMMAND_TIMEOUT, talk).await {
                    Ok(Ok(reply)) => Ok(String::from_utf8_lossy(&reply).into_owned()),
                    Ok(Err(e)) => Err(failed(format!("admin socket: {e}"))),
                    Err(_) => Err(failed(format!("no reply within {COMMAND_TIMEOUT:?}"))),
                }
            }
            Executor::Ssh(_) => {
                let script = format!(
                    "c={c}; s={s}\n\
                     if command -v socat >/dev/null 2>&1; then \
                     printf '%s\\n' \"$c\" | socat -t 5 - \"UNIX-CONNECT:$s\"\n\
                     elif command -v nc >/dev/null 2>&1; then \
                     printf '%s\\n' \"$c\" | nc -U \"$s\"\n\
                     else echo 'neither socat nor nc is installed on the HAProxy host' >&2; exit 127; fi",
                    c = shell::quote(cmd),
                    s = shell::quote(socket),
                );
                let out = exec.run(&script, COMMAND_TIMEOUT).await?;
                if out.code == Some(0) {
                    Ok(out.stdout)
                } else {
                    let text = format!("{}\n{}", out.stderr.trim(), out.stdout.trim());
                    Err(failed(format!("exit {:?}: {}", out.code, text.trim())))
                }
            }
        }
    }
}

/// The error for a command HAProxy refused.
fn refused(name: &str, cmd: &str, reply: &str) -> TrafficError {
    let reply = reply.trim();
    TrafficError::Failed {
        what: format!("haproxy server {name}: `{cmd}`"),
        detail: if reply.is_empty() {
            "empty reply".into()
        } else {
            reply.to_string()
        },
    }
}

/// Names go into runtime API commands, which split on blanks and `;`.
fn check_word(what: &str, name: &str) -> Result<(), TrafficError> {
    let ok = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | '/' | '#'));
    if ok {
        Ok(())
    } else {
        Err(TrafficError::Failed {
            what: format!("haproxy {what} {name:?}"),
            detail: "the name cannot be used in a runtime API command".into(),
        })
    }
}

/// Parses `show servers state` (format 1, columns named by its `#` line).
/// `None` when the reply is not a state dump (e.g. `Can't find backend.`).
fn parse_states(reply: &str) -> Option<HashMap<String, State>> {
    let mut lines = reply.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next()? != "1" {
        return None;
    }
    let header: Vec<&str> = lines
        .next()?
        .strip_prefix('#')?
        .split_whitespace()
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (name, op, admin) = (
        col("srv_name")?,
        col("srv_op_state")?,
        col("srv_admin_state")?,
    );
    let mut out = HashMap::new();
    for line in lines {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let state = State {
            op: f.get(op)?.parse().ok()?,
            admin: f.get(admin)?.parse().ok()?,
        };
        out.insert(f.get(name)?.to_string(), state);
    }
    Some(out)
}

/// Parses `show stat` CSV: `scur + qcur` per server of `backend`.
fn parse_busy(reply: &str, backend: &str) -> Option<HashMap<String, u64>> {
    let mut lines = reply.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()?
        .trim_start_matches('#')
        .trim()
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, scur, qcur) = (col("pxname")?, col("svname")?, col("scur")?, col("qcur")?);
    let mut out = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f.get(px) != Some(&backend) {
            continue;
        }
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.insert(f.get(sv)?.to_string(), n(scur) + n(qcur));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_state() {
        let reply = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
                     3 app 1 a 127.0.0.1 2 0 100\n3 app 2 a-alt 127.0.0.1 0 1 100\n\n";
        let s = parse_states(reply).unwrap();
        assert_eq!(s["a"], State { op: 2, admin: 0 });
        assert_eq!(s["a-alt"], State { op: 0, admin: 1 });
        assert!(parse_states("Can't find backend.\n").is_none());
    }

    #[test]
    fn parses_stat_csv() {
        let reply =
            "# pxname,svname,qcur,qmax,scur,smax\napp,a,0,0,3,5\napp,b,1,0,0,0\nother,a,0,0,9,9\n";
        let b = parse_busy(reply, "app").unwrap();
        assert_eq!(b["a"], 3);
        assert_eq!(b["b"], 1);
        assert!(check_word("server", "a;b").is_err());
        assert!(check_word("server", "web-1-alt").is_ok());
    }
}
