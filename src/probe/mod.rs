//! Probes: one run of one check against one instance, returning a
//! [`ProbeResult`]. [`Prober`] holds what all runs share (one HTTP client
//! with connection reuse, one executor per host); the [`scheduler`] decides
//! when each probe runs. Probes never decide health: that is `health`'s job.
//!
//! Every result is made in one place (`result`, for every run of the
//! [`Prober`]), which writes each value of the config's `${NAME}`s (the
//! app's [`Secrets`]) in its message as `***`: what a command printed or an endpoint echoed (a bearer
//! token) reaches the history, gates, incidents, events and `--json`
//! masked. Probes that quote a host's text cut to a length mask it whole
//! first, so a cut never leaves half a secret.

pub mod command;
pub mod docker;
pub mod http;
pub mod http1;
pub mod prometheus;
pub mod scheduler;
pub mod tcp;

/// The condition language, at its old place (it is a leaf of its own:
/// [`crate::condition`]).
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{App, Fleet, Host, Instance, Probe, ProbeKind, Secrets};
use crate::exec::Executors;
use crate::model::{ErrorKind, ProbeKey, ProbeResult, now_ms};

/// Bodies and outputs are read up to this many bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// What a single attempt found, before it becomes a [`ProbeResult`].
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// `None` when it passed.
    pub error: Option<ErrorKind>,
    /// HTTP status or exit code.
    pub code: Option<i64>,
    /// What was seen.
    pub message: String,
}

impl Outcome {
    /// A pass.
    pub fn pass(code: Option<i64>, message: impl Into<String>) -> Outcome {
        Outcome {
            error: None,
            code,
            message: message.into(),
        }
    }

    /// A failure of `kind`.
    pub fn fail(kind: ErrorKind, code: Option<i64>, message: impl Into<String>) -> Outcome {
        Outcome {
            error: Some(kind),
            code,
            message: message.into(),
        }
    }
}

/// Everything a probe run needs to know about where it runs.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The app.
    pub app: &'a App,
    /// The instance.
    pub instance: &'a Instance,
    /// The instance's host.
    pub host: &'a Host,
    /// The port to probe (the instance's port, or its alt port during a rollout).
    pub port: u16,
}

impl Target<'_> {
    /// Values for `{app} {instance} {host} {port}` in templates; `{host}` is
    /// the host's address.
    pub fn vars(&self) -> [(&str, String); 4] {
        [
            ("app", self.app.name.clone()),
            ("instance", self.instance.name.clone()),
            ("host", self.host.address.clone()),
            ("port", self.port.to_string()),
        ]
    }

    /// A prometheus probe's `query` with this target's values filled in
    /// (see [`crate::promql::fill`]).
    pub fn query(&self, query: &str) -> Result<String, crate::promql::FillError> {
        let vars = self.vars();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::promql::fill(query, &vars)
    }

    /// The host address as it goes into a URL (IPv6 in brackets).
    pub fn url_host(&self) -> String {
        let a = &self.host.address;
        if a.contains(':') && !a.starts_with('[') {
            format!("[{a}]")
        } else {
            a.clone()
        }
    }
}

/// Runs probes. Cheap to share: clone the `Arc`.
#[derive(Debug)]
pub struct Prober {
    http: http::Clients,
    executors: Executors,
}

impl Prober {
    /// A prober for `fleet`'s hosts.
    pub fn new(fleet: &Fleet) -> Result<Prober, String> {
        Ok(Prober {
            http: http::Clients::new()?,
            executors: Executors::new(&fleet.hosts),
        })
    }

    /// The executors, for closing SSH connections at exit.
    pub fn executors(&self) -> &Executors {
        &self.executors
    }

    /// Runs `probe` once against `target`. A refused or reset connection is
    /// tried once more at once before it counts; the result reports the
    /// second attempt.
    pub async fn run(&self, target: Target<'_>, probe: &Probe) -> ProbeResult {
        let key = ProbeKey {
            app: Arc::from(target.app.name.as_str()),
            instance: Arc::from(target.instance.name.as_str()),
            probe: Arc::from(probe.name.as_str()),
        };
        self.run_as(&key, target, probe).await
    }

    /// Runs a comparison probe once (see [`Probe::compares`]): its query
    /// for each target of the new side (`canary`) and of the old
    /// (`baseline`). The result is keyed by the first canary's instance;
    /// `None` when `probe` compares nothing or a side has no target.
    pub async fn compare(
        &self,
        probe: &Probe,
        canary: &[Target<'_>],
        baseline: &[Target<'_>],
    ) -> Option<(ProbeResult, prometheus::Compared)> {
        let ProbeKind::Prometheus(p) = &probe.kind else {
            return None;
        };
        let first = canary.first()?;
        if baseline.is_empty() || !p.compares() {
            return None;
        }
        let at_ms = now_ms();
        let started = Instant::now();
        let queries = |side: &[Target<'_>]| -> Result<Vec<String>, String> {
            side.iter()
                .map(|t| t.query(&p.query).map_err(|e| e.message))
                .collect()
        };
        let compared = match (queries(canary), queries(baseline)) {
            (Ok(new), Ok(old)) => {
                let client = self.http.client(p.insecure_tls);
                let secrets = &first.app.secrets;
                prometheus::compare(client, p, &new, &old, probe.timeout, secrets).await
            }
            (Err(e), _) | (_, Err(e)) => prometheus::Compared {
                outcome: Outcome::fail(ErrorKind::Exec, None, e),
                canary: None,
                baseline: None,
            },
        };
        let key = ProbeKey {
            app: Arc::from(first.app.name.as_str()),
            instance: Arc::from(first.instance.name.as_str()),
            probe: Arc::from(probe.name.as_str()),
        };
        let result = result(
            key,
            at_ms,
            started.elapsed(),
            compared.outcome.clone(),
            &first.app.secrets,
        );
        Some((result, compared))
    }

    /// [`Self::run`], with the result's key given (it names `target`'s
    /// app and instance and `probe`): a loop that runs the same probe
    /// again and again builds it once.
    pub async fn run_as(&self, key: &ProbeKey, target: Target<'_>, probe: &Probe) -> ProbeResult {
        let at_ms = now_ms();
        let started = Instant::now();
        let mut outcome = self.attempt(target, probe).await;
        let mut latency = started.elapsed();
        if outcome.error == Some(ErrorKind::Refused) {
            let again = Instant::now();
            outcome = self.attempt(target, probe).await;
            latency = again.elapsed();
            if outcome.error.is_some() {
                outcome.message.push_str(" (also on retry)");
            }
        }
        result(key.clone(), at_ms, latency, outcome, &target.app.secrets)
    }

    async fn attempt(&self, target: Target<'_>, probe: &Probe) -> Outcome {
        let timeout = probe.timeout;
        let exec = || self.executors.get(&target.host.name);
        let run = async {
            match &probe.kind {
                ProbeKind::Http(h) => self.http.run(target, h, timeout).await,
                ProbeKind::Tcp(t) => tcp::run(target, t, timeout).await,
                ProbeKind::Command(c) => match exec() {
                    Some(e) => command::run(e, target, c, timeout).await,
                    None => no_executor(target),
                },
                ProbeKind::Docker(d) => match exec() {
                    Some(e) => docker::run(e, target, d, timeout).await,
                    None => no_executor(target),
                },
                ProbeKind::Prometheus(p) => match target.query(&p.query) {
                    Ok(q) => {
                        let client = self.http.client(p.insecure_tls);
                        prometheus::run(client, p, &q, timeout, &target.app.secrets).await
                    }
                    Err(e) => Outcome::fail(ErrorKind::Exec, None, e.message),
                },
            }
        };
        // HTTP and TCP probes bound the whole attempt (name lookup
        // included) by their timeout. The others enforce it too; this
        // outer bound only guards against one that does not.
        if matches!(
            probe.kind,
            ProbeKind::Http(_) | ProbeKind::Tcp(_) | ProbeKind::Prometheus(_)
        ) {
            return run.await;
        }
        match tokio::time::timeout(timeout + Duration::from_millis(500), run).await {
            Ok(o) => o,
            Err(_) => Outcome::fail(
                ErrorKind::Timeout,
                None,
                format!(
                    "no answer within {}",
                    crate::config::format_duration(timeout)
                ),
            ),
        }
    }
}

/// The result of one run: the one place a [`ProbeResult`] is made, its
/// message with every one of `secrets` written as `***`.
fn result(
    key: ProbeKey,
    at_ms: i64,
    latency: Duration,
    outcome: Outcome,
    secrets: &Secrets,
) -> ProbeResult {
    ProbeResult {
        key,
        at_ms,
        ok: outcome.error.is_none(),
        latency_ms: latency.as_secs_f64() * 1000.0,
        code: outcome.code,
        error_kind: outcome.error,
        message: secrets.mask(&outcome.message),
    }
}

fn no_executor(target: Target<'_>) -> Outcome {
    Outcome::fail(
        ErrorKind::Exec,
        None,
        format!("no executor for host \"{}\"", target.host.name),
    )
}

/// Runs every probe of every instance of `apps` once, concurrently, on
/// the port each serves on (`ports`), and returns the results in config
/// order; comparisons ([`Probe::compares`]) are left out. Used by
/// `rollguard probe`.
pub async fn probe_once(
    fleet: &Fleet,
    prober: &Prober,
    apps: &[&App],
    ports: &scheduler::LivePorts,
) -> Vec<ProbeResult> {
    let mut runs = Vec::new();
    for app in apps {
        let a = fleet.apps.iter().position(|x| x.name == app.name);
        for (i, instance) in app.instances.iter().enumerate() {
            let port = a.and_then(|a| ports.get(a, i)).unwrap_or(instance.port);
            let Some(host) = fleet.host(&instance.host) else {
                continue;
            };
            // A comparison has no old side to compare with here.
            for probe in app.probes.iter().filter(|p| !p.compares()) {
                let target = Target {
                    app,
                    instance,
                    host,
                    port,
                };
                runs.push(prober.run(target, probe));
            }
        }
    }
    join_all(runs).await
}

/// Awaits every future concurrently in the calling task, keeping their
/// order. For futures that borrow (and so cannot be spawned).
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    // The futures borrow the fleet, so they cannot be spawned; they are
    // polled together in this task instead.
    let mut slots: Vec<Option<F::Output>> = Vec::with_capacity(futures.len());
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    slots.resize_with(pinned.len(), || None);
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if slots[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => slots[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().flatten().collect()
}
