//! Traffic through nginx: rollguard owns one small file holding only the
//! `server` lines of the app's upstream (the operator's nginx.conf does
//! `upstream checkout { include /etc/nginx/checkout.upstream; }`), and moves
//! traffic by rewriting that file and reloading nginx.
//!
//! This file exists because nginx has no runtime API in its open-source
//! build: the only safe way to change an upstream is a new config plus a
//! graceful reload, and each step of that can fail in its own way.
//! [`Nginx::apply`] therefore, on the traffic host (local or over SSH):
//!
//! 1. reads the current file (kept in memory to put back),
//! 2. writes the new one atomically (a temporary file beside it, then `mv`),
//! 3. runs `validate` (default `nginx -t`); on failure puts the old file back
//!    and returns [`TrafficError::Invalid`] with nginx's message,
//! 4. runs `reload` (default `nginx -s reload`); on failure puts the old file
//!    back, reloads again and returns the error,
//! 5. waits until the reload really took effect (see below).
//!
//! # Waiting for the reload
//!
//! `nginx -s reload` only sends SIGHUP and exits 0 even when the master then
//! refuses the config. The master starts new workers with the new config
//! and asks the old ones to finish their in-flight requests and exit (their
//! process title becomes `nginx: worker process is shutting down`). So after
//! the reload command rollguard watches nginx's processes (`ps` on the
//! traffic host):
//!
//! * It finds the master: the one whose command line names the config file
//!   that `validate` reported (`the configuration file X syntax is ok`), or
//!   the only master on the host.
//! * Phase 1 (always): it waits until every worker that master had before
//!   the reload is gone or shutting down and a new worker runs. If that does
//!   not happen within [`RELOAD_TIMEOUT`], the reload failed (nginx's error
//!   log says why): the old file is put back, nginx reloaded, and an error
//!   returned.
//! * Phase 2 (only when a server loses traffic): it waits until those old
//!   workers have exited, i.e. every request they were serving, including
//!   ones proxied to drained servers, has finished. Only then may the caller
//!   stop the drained servers. This is bounded by [`DRAIN_TIMEOUT`]; after it
//!   a warning is logged and `apply` returns anyway (long-lived connections
//!   such as websockets keep old workers alive until nginx's
//!   `worker_shutdown_timeout`, if the operator set one).
//!
//! When no nginx master can be seen (`ps` missing, nginx in another PID
//! namespace), rollguard cannot check and falls back to waiting
//! [`SETTLE_FALLBACK`] after the reload, with a warning. When several masters
//! run and none can be matched to the config file, it waits until any of
//! them reloaded, also with a warning.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use super::{Routing, Server, TrafficError};
use crate::config::{Fleet, NginxTraffic, Traffic as TrafficConfig};
use crate::exec::{Executor, Output};
use crate::shell;

/// How long reading or writing the upstream file may take.
const FILE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `validate` and `reload` may each take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long nginx has to start new workers after `reload`.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(15);
/// How long old workers have to finish their requests when servers drain.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The fixed wait after `reload` when nginx's processes cannot be seen.
pub const SETTLE_FALLBACK: Duration = Duration::from_millis(500);
/// Time between two looks at nginx's processes.
const POLL: Duration = Duration::from_millis(50);

/// The first line of every file rollguard writes.
pub const HEADER: &str = "# managed by rollguard; do not edit";

/// Moves an app's traffic through nginx.
#[derive(Clone, Debug)]
pub struct Nginx {
    spec: NginxTraffic,
}

impl Nginx {
    /// A mover for `spec`.
    pub fn new(spec: NginxTraffic) -> Nginx {
        Nginx { spec }
    }

    /// The host the balancer (or the hooks) run on.
    pub fn host(&self) -> &str {
        &self.spec.host
    }

    /// See [`super::Traffic::apply`]: rewrites the upstream file from `to`,
    /// validates, reloads and waits for the reload (and, when servers are
    /// drained, for the old workers) to finish. On failure the previous file
    /// is in place again.
    pub async fn apply(
        &self,
        fleet: &Fleet,
        exec: &Executor,
        from: &Routing,
        to: &Routing,
    ) -> Result<(), TrafficError> {
        let content = render_upstream(to)?;
        let validate = self.command(fleet, &self.spec.validate, "validate")?;
        let reload = self.command(fleet, &self.spec.reload, "reload")?;
        let path = &self.spec.upstream_file;

        let previous = read_file(exec, path).await?;
        write_file(exec, path, Some(&content)).await?;

        let out = exec.run(&validate, COMMAND_TIMEOUT).await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                self.restore(exec, previous.as_deref(), None).await;
                return Err(e.into());
            }
        };
        if out.code != Some(0) {
            self.restore(exec, previous.as_deref(), None).await;
            return Err(TrafficError::Invalid(detail(&out)));
        }
        let conf = config_path(&format!("{}\n{}", out.stderr, out.stdout));

        let before = processes(exec).await;
        let fail = |what: String, detail: String| TrafficError::Failed { what, detail };
        match exec.run(&reload, COMMAND_TIMEOUT).await {
            Ok(out) if out.code == Some(0) => {}
            Ok(out) => {
                self.restore(exec, previous.as_deref(), Some(&reload)).await;
                return Err(fail(format!("nginx reload (`{reload}`)"), detail(&out)));
            }
            Err(e) => {
                self.restore(exec, previous.as_deref(), Some(&reload)).await;
                return Err(e.into());
            }
        }

        let draining = loses_traffic(from, to);
        if let Err(detail) = wait_reload(exec, before, conf.as_deref(), draining).await {
            self.restore(exec, previous.as_deref(), Some(&reload)).await;
            return Err(fail(format!("nginx reload (`{reload}`)"), detail));
        }
        Ok(())
    }

    /// Renders `validate` or `reload`. `{app}` is the app whose traffic this
    /// is (when the fleet names one), `{host}` the traffic host's address;
    /// `{instance}`, `{port}` and `{version}` are empty.
    fn command(&self, fleet: &Fleet, template: &str, key: &str) -> Result<String, TrafficError> {
        let wanted = TrafficConfig::Nginx(self.spec.clone());
        let app = fleet
            .apps
            .iter()
            .find(|a| a.traffic == wanted)
            .map_or("", |a| a.name.as_str());
        let host = fleet
            .host(&self.spec.host)
            .map_or("", |h| h.address.as_str());
        let vars = [
            ("app", app),
            ("host", host),
            ("instance", ""),
            ("port", ""),
            ("version", ""),
        ];
        shell::render(template, &vars).map_err(|e| TrafficError::Failed {
            what: format!("nginx `{key}` template"),
            detail: e.to_string(),
        })
    }

    /// Puts the previous file back (removes the file when there was none)
    /// and, when given, runs `reload` again. Errors are logged: the caller is
    /// already reporting the first failure.
    async fn restore(&self, exec: &Executor, previous: Option<&str>, reload: Option<&str>) {
        let path = &self.spec.upstream_file;
        if let Err(e) = write_file(exec, path, previous).await {
            tracing::error!(file = %path, error = %e, "nginx: could not restore the upstream file");
            return;
        }
        if let Some(reload) = reload {
            match exec.run(reload, COMMAND_TIMEOUT).await {
                Ok(out) if out.code == Some(0) => {}
                Ok(out) => {
                    tracing::error!(detail = %detail(&out), "nginx: reload after restore failed")
                }
                Err(e) => tracing::error!(error = %e, "nginx: reload after restore failed"),
            }
        }
    }
}

/// The upstream file for `to`: a header, the routing as a comment, and one
/// `server` line per server (`weight=W`, or `down` when drained or weighted
/// 0). nginx accepts an upstream whose servers are all `down` (requests then
/// get 502), but not an empty one, so an empty routing is refused.
pub fn render_upstream(to: &Routing) -> Result<String, TrafficError> {
    if to.servers.is_empty() {
        return Err(TrafficError::Failed {
            what: "nginx upstream".into(),
            detail: "the routing has no servers, and nginx refuses an empty upstream".into(),
        });
    }
    let mut out = format!("{HEADER}\n# routing:");
    for s in &to.servers {
        let share = match s.weight {
            Some(w) if w > 0 => w.to_string(),
            _ => "down".into(),
        };
        let name: String = s
            .haproxy_name()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        out.push_str(&format!(" {name}={share}"));
    }
    out.push('\n');
    for s in &to.servers {
        let target = target(s)?;
        match s.weight {
            Some(w) if w > 0 => out.push_str(&format!("server {target} weight={w};\n")),
            _ => out.push_str(&format!("server {target} down;\n")),
        }
    }
    Ok(out)
}

/// `ADDRESS:PORT` (IPv6 in brackets), refusing addresses that could break
/// out of the `server` line.
fn target(s: &Server) -> Result<String, TrafficError> {
    let a = &s.address;
    let ok = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if !ok {
        return Err(TrafficError::Failed {
            what: format!("nginx server line for {}", s.haproxy_name()),
            detail: format!("address {a:?} cannot be written into an nginx config"),
        });
    }
    if a.contains(':') && !a.starts_with('[') {
        Ok(format!("[{a}]:{}", s.port))
    } else {
        Ok(format!("{a}:{}", s.port))
    }
}

/// Whether a server that may have had traffic has none in `to`: a server
/// drained in `to`, or one of `from` that `to` no longer lists.
fn loses_traffic(from: &Routing, to: &Routing) -> bool {
    let key = |s: &Server| (s.address.clone(), s.port);
    let wanted: HashSet<_> = to
        .servers
        .iter()
        .filter(|s| s.weight.is_some_and(|w| w > 0))
        .map(key)
        .collect();
    to.servers.iter().any(|s| s.weight.is_none_or(|w| w == 0))
        || from.servers.iter().any(|s| !wanted.contains(&key(s)))
}

/// Exit code (or signal) and output of a failed command, trimmed.
fn detail(out: &Output) -> String {
    let text = format!("{}\n{}", out.stderr.trim(), out.stdout.trim());
    let text = text.trim();
    match out.code {
        Some(c) if text.is_empty() => format!("exit code {c}"),
        None if text.is_empty() => "killed by a signal".into(),
        _ => text.to_string(),
    }
}

/// The config file nginx named in `nginx -t` output, if any.
fn config_path(output: &str) -> Option<String> {
    for line in output.lines() {
        let Some(i) = line.find("configuration file ") else {
            continue;
        };
        let rest = &line[i + "configuration file ".len()..];
        for end in [" syntax is ok", " test is successful"] {
            if let Some(j) = rest.find(end) {
                return Some(rest[..j].to_string());
            }
        }
    }
    None
}

/// The current content of `path` on the host, `None` when it does not exist.
async fn read_file(exec: &Executor, path: &str) -> Result<Option<String>, TrafficError> {
    let f = shell::quote(path);
    let script = format!("if [ -e {f} ]; then cat -- {f}; else exit 3; fi");
    let out = exec.run(&script, FILE_TIMEOUT).await?;
    match out.code {
        Some(0) if out.truncated => Err(TrafficError::Failed {
            what: format!("reading {path}"),
            detail: "the file is too large to keep a copy of; is it really an upstream file?"
                .into(),
        }),
        Some(0) => Ok(Some(out.stdout)),
        Some(3) if out.stdout.is_empty() => Ok(None),
        _ => Err(TrafficError::Failed {
            what: format!("reading {path}"),
            detail: detail(&out),
        }),
    }
}

/// Replaces `path` with `content` atomically (a temporary file beside it
/// that takes over the old file's mode and owner, then `mv`); with `None`
/// removes it. A symlinked path is followed, so the link stays.
async fn write_file(
    exec: &Executor,
    path: &str,
    content: Option<&str>,
) -> Result<(), TrafficError> {
    let f = shell::quote(path);
    let script = match content {
        Some(content) => format!(
            "set -e\n\
             f={f}\n\
             if [ -L \"$f\" ]; then f=$(readlink -f -- \"$f\"); fi\n\
             tmp=\"$f.rollguard-tmp.$$\"\n\
             trap 'rm -f -- \"$tmp\"' EXIT\n\
             if [ -e \"$f\" ]; then cp -p -- \"$f\" \"$tmp\"; fi\n\
             printf '%s' {c} > \"$tmp\"\n\
             mv -f -- \"$tmp\" \"$f\"\n\
             trap - EXIT\n",
            c = shell::quote(content)
        ),
        None => format!("rm -f -- {f}"),
    };
    let out = exec.run(&script, FILE_TIMEOUT).await?;
    if out.code == Some(0) {
        Ok(())
    } else {
        Err(TrafficError::Failed {
            what: format!("writing {path}"),
            detail: detail(&out),
        })
    }
}

/// One nginx process.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Proc {
    pid: u32,
    ppid: u32,
    args: String,
}

impl Proc {
    fn is_master(&self) -> bool {
        self.args.starts_with("nginx: master process")
    }

    fn is_worker(&self) -> bool {
        self.args.starts_with("nginx: worker process")
    }

    fn is_shutting_down(&self) -> bool {
        self.args.contains("is shutting down")
    }
}

/// nginx's masters and workers on the host, `None` when `ps` fails.
async fn processes(exec: &Executor) -> Option<Vec<Proc>> {
    // Filtered on the host: a busy machine's full process list can pass the
    // executor's output cap.
    let script = "{ ps -eo pid=,ppid=,args= 2>/dev/null || ps -o pid,ppid,args; } \
                  | awk '/nginx: (master|worker) process/'";
    let out = exec.run(script, FILE_TIMEOUT).await.ok()?;
    if out.code != Some(0) || out.truncated {
        return None;
    }
    Some(parse_ps(&out.stdout))
}

fn parse_ps(text: &str) -> Vec<Proc> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let pid = it.next()?.parse().ok()?;
            let ppid = it.next()?.parse().ok()?;
            let args = it.collect::<Vec<_>>().join(" ");
            Some(Proc { pid, ppid, args })
        })
        .filter(|p| p.is_master() || p.is_worker())
        .collect()
}

/// Waits for the reload to take effect and, when `draining`, for the old
/// workers to exit (see the module docs). `Err` means nginx did not start
/// new workers: the reload failed.
async fn wait_reload(
    exec: &Executor,
    before: Option<Vec<Proc>>,
    conf: Option<&str>,
    draining: bool,
) -> Result<(), String> {
    let before = before.unwrap_or_default();
    let Some(watched) = Watched::of(&before, conf) else {
        tracing::warn!(
            "nginx: no nginx master process visible on the traffic host; \
             waiting {SETTLE_FALLBACK:?} for the reload instead of checking it"
        );
        tokio::time::sleep(SETTLE_FALLBACK).await;
        return Ok(());
    };
    let Some(reloaded) = wait_new_workers(exec, &watched).await else {
        if watched.sure {
            return Err(format!(
                "nginx did not start new workers within {RELOAD_TIMEOUT:?} after the reload \
                 command; the master probably refused the new config (see nginx's error log)"
            ));
        }
        tracing::warn!(
            "nginx: several nginx masters run and none reloaded visibly within \
             {RELOAD_TIMEOUT:?}; going on without confirmation"
        );
        return Ok(());
    };
    if draining {
        wait_old_workers_gone(exec, &before, &reloaded).await;
    }
    Ok(())
}

/// The masters a reload is watched on.
#[derive(Debug, PartialEq, Eq)]
struct Watched {
    /// Their pids.
    masters: Vec<u32>,
    /// Whether these are surely the config's masters, so each must reload;
    /// otherwise one reloading will do.
    sure: bool,
    /// The workers they had before the reload.
    old: HashSet<u32>,
}

impl Watched {
    /// From nginx's processes `before` the reload: the masters whose
    /// command line names `conf`, else the only master, else every master
    /// (not sure). `None` when no master is seen.
    fn of(before: &[Proc], conf: Option<&str>) -> Option<Watched> {
        let masters: Vec<&Proc> = before.iter().filter(|p| p.is_master()).collect();
        if masters.is_empty() {
            return None;
        }
        let named: Vec<u32> = conf
            .map(|c| {
                masters
                    .iter()
                    .filter(|m| m.args.split_whitespace().any(|w| w == c))
                    .map(|m| m.pid)
                    .collect()
            })
            .unwrap_or_default();
        let (targets, sure) = if !named.is_empty() {
            (named, true)
        } else if masters.len() == 1 {
            (vec![masters[0].pid], true)
        } else {
            (masters.iter().map(|m| m.pid).collect::<Vec<_>>(), false)
        };
        let old = workers_of(before, &targets);
        Some(Watched {
            masters: targets,
            sure,
            old,
        })
    }
}

/// The pids of the workers of `masters` in `procs`.
fn workers_of(procs: &[Proc], masters: &[u32]) -> HashSet<u32> {
    procs
        .iter()
        .filter(|p| p.is_worker() && masters.contains(&p.ppid))
        .map(|p| p.pid)
        .collect()
}

/// Phase 1: waits up to [`RELOAD_TIMEOUT`] until the watched masters
/// reloaded (each, or when not sure, any); the masters that did, or `None`.
async fn wait_new_workers(exec: &Executor, watched: &Watched) -> Option<Vec<u32>> {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        if let Some(now) = processes(exec).await {
            let done: Vec<u32> = watched
                .masters
                .iter()
                .copied()
                .filter(|m| master_reloaded(&now, *m, &watched.old))
                .collect();
            let ok = if watched.sure {
                done.len() == watched.masters.len()
            } else {
                !done.is_empty()
            };
            if ok {
                return Some(done);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Phase 2: waits up to [`DRAIN_TIMEOUT`] until the workers the
/// `reloaded` masters had `before` finished their requests and exited;
/// after that, warns and goes on.
async fn wait_old_workers_gone(exec: &Executor, before: &[Proc], reloaded: &[u32]) {
    let old = workers_of(before, reloaded);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        if let Some(now) = processes(exec).await
            && !now.iter().any(|p| old.contains(&p.pid) && p.is_worker())
        {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                "nginx: old worker processes still finish requests after {DRAIN_TIMEOUT:?}; \
                 going on (drained servers may still have connections)"
            );
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `master` runs a new worker and none of its `old` workers still
/// takes requests.
fn master_reloaded(now: &[Proc], master: u32, old: &HashSet<u32>) -> bool {
    let mine = || {
        now.iter()
            .filter(move |p| p.is_worker() && p.ppid == master)
    };
    let new_worker = mine().any(|p| !old.contains(&p.pid) && !p.is_shutting_down());
    let old_serving = mine().any(|p| old.contains(&p.pid) && !p.is_shutting_down());
    new_worker && !old_serving
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;

    fn server(instance: &str, port: u16, weight: Option<u32>) -> Server {
        Server {
            instance: instance.into(),
            side: Side::Main,
            address: "127.0.0.1".into(),
            port,
            weight,
        }
    }

    #[test]
    fn renders_weights_and_down() {
        let r = Routing {
            servers: vec![server("a", 8001, Some(90)), server("b", 8002, None)],
        };
        let text = render_upstream(&r).unwrap();
        assert_eq!(
            text,
            "# managed by rollguard; do not edit\n# routing: a=90 b=down\n\
             server 127.0.0.1:8001 weight=90;\nserver 127.0.0.1:8002 down;\n"
        );
        assert!(render_upstream(&Routing::default()).is_err());
        let mut bad = server("c", 1, Some(1));
        bad.address = "x; include /etc/passwd".into();
        assert!(render_upstream(&Routing { servers: vec![bad] }).is_err());
        let mut v6 = server("d", 80, Some(1));
        v6.address = "::1".into();
        assert!(
            render_upstream(&Routing { servers: vec![v6] })
                .unwrap()
                .contains("server [::1]:80 weight=1;")
        );
    }

    #[test]
    fn parses_nginx_output_and_ps() {
        assert_eq!(
            config_path(
                "nginx: the configuration file /tmp/x/nginx.conf syntax is ok\n\
                 nginx: configuration file /tmp/x/nginx.conf test is successful"
            )
            .as_deref(),
            Some("/tmp/x/nginx.conf")
        );
        let ps = parse_ps(
            "  10     1 nginx: master process nginx -c /a.conf\n  11    10 nginx: worker process\n\
               12    10 nginx: worker process is shutting down\n  13  1 bash\n",
        );
        assert_eq!(ps.len(), 3);
        let old: HashSet<u32> = [12].into_iter().collect();
        assert!(master_reloaded(&ps, 10, &old));
        let old: HashSet<u32> = [11].into_iter().collect();
        assert!(!master_reloaded(&ps, 10, &old));
    }

    #[test]
    fn the_reload_is_watched_on_the_configs_master() {
        let ps = parse_ps(
            "10 1 nginx: master process nginx -c /a.conf\n11 10 nginx: worker process\n\
             20 1 nginx: master process nginx -c /b.conf\n21 20 nginx: worker process\n",
        );
        let w = Watched::of(&ps, Some("/b.conf")).unwrap();
        assert_eq!((w.masters, w.sure), (vec![20], true));
        assert_eq!(w.old, [21].into_iter().collect());
        let w = Watched::of(&ps, Some("/c.conf")).unwrap();
        assert_eq!((w.masters, w.sure), (vec![10, 20], false));
        assert_eq!(w.old, [11, 21].into_iter().collect());
        let w = Watched::of(&ps[..2], None).unwrap();
        assert_eq!((w.masters, w.sure), (vec![10], true));
        assert_eq!(Watched::of(&ps[1..2], None), None);
    }

    #[test]
    fn knows_when_traffic_is_lost() {
        let a = server("a", 1, Some(100));
        let b = server("b", 2, Some(100));
        let a_down = server("a", 1, None);
        let both = Routing {
            servers: vec![a.clone(), b.clone()],
        };
        let only_b = Routing {
            servers: vec![b.clone()],
        };
        assert!(loses_traffic(&both, &only_b));
        assert!(!loses_traffic(&only_b, &both));
        assert!(loses_traffic(
            &both,
            &Routing {
                servers: vec![a_down, b]
            }
        ));
    }
}
