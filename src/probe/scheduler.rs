//! When probes run: one task per (instance, probe), each a loop that runs
//! its probe, hands the result on, and waits for the next tick. A run that
//! takes longer than the interval delays the next one (ticks are skipped,
//! never queued), so runs of one probe never overlap or pile up. First runs
//! are spread over one interval so a thousand instances do not fire in the
//! same millisecond.
//!
//! One more task waits for the shutdown signal and then aborts the probe
//! tasks (a run in flight is dropped, its result never sent), so a probe's
//! loop does not watch the signal itself: ten thousand loops polling one
//! signal on every run contend for its lock. Each loop builds its probe's
//! [`ProbeKey`] once; every result shares its names. Each run probes the
//! port its instance serves on now ([`LivePorts`]): after a blue-green
//! switch, its `alt_port`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::{Prober, Target};
use crate::config::Fleet;
use crate::model::{ProbeKey, ProbeResult};

/// Where results go. Unbounded so that a probe never waits on a consumer;
/// consumers (health, store writer, console) are faster than probes.
pub type ResultSender = mpsc::UnboundedSender<ProbeResult>;

/// The port each instance of a fleet serves on now: its `port`, or its
/// `alt_port` while the history records that side as live. Set by the
/// monitor from what it reads; read by every run of a probe.
#[derive(Debug)]
pub struct LivePorts {
    ports: Vec<Vec<AtomicU16>>,
}

impl LivePorts {
    /// Every instance of `fleet` on its `port`.
    pub fn new(fleet: &Fleet) -> LivePorts {
        LivePorts {
            ports: (fleet.apps.iter())
                .map(|a| a.instances.iter().map(|i| AtomicU16::new(i.port)).collect())
                .collect(),
        }
    }

    /// Each instance of `fleet` on the side the history records: on its
    /// `alt_port` when app `a`'s `alt_live[a]` names it, else its `port`.
    pub fn set_recorded(&self, fleet: &Fleet, alt_live: &[&[String]]) {
        for (a, app) in fleet.apps.iter().enumerate() {
            let alt = alt_live.get(a).copied().unwrap_or_default();
            for (i, inst) in app.instances.iter().enumerate() {
                self.set_alt(fleet, a, i, alt.contains(&inst.name));
            }
        }
    }

    /// The port of instance `i` of app `a`.
    pub fn get(&self, a: usize, i: usize) -> Option<u16> {
        Some(self.ports.get(a)?.get(i)?.load(Ordering::Relaxed))
    }

    /// Instance `i` of app `a` of `fleet` serves on its alt side
    /// (`alt`), or on its main one.
    pub fn set_alt(&self, fleet: &Fleet, a: usize, i: usize, alt: bool) {
        let (Some(inst), Some(port)) = (
            fleet.apps.get(a).and_then(|x| x.instances.get(i)),
            self.ports.get(a).and_then(|x| x.get(i)),
        ) else {
            return;
        };
        let p = match inst.alt_port {
            Some(alt_port) if alt => alt_port,
            _ => inst.port,
        };
        port.store(p, Ordering::Relaxed);
    }
}

/// The delay before the first run of a probe: a stable spread over
/// `interval` derived from the probe's identity and `seed`.
pub fn first_delay(seed: u64, key: (&str, &str, &str), interval: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    key.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// Starts every probe of `fleet`. Tasks stop when `shutdown` turns true (or
/// its sender is gone) or when every receiver of `tx` is gone.
pub fn spawn(
    fleet: Arc<Fleet>,
    prober: Arc<Prober>,
    ports: Arc<LivePorts>,
    tx: ResultSender,
    mut shutdown: watch::Receiver<bool>,
) -> JoinSet<()> {
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into());
    let mut set = JoinSet::new();
    let mut loops: Vec<AbortHandle> = Vec::new();
    for (ai, app) in fleet.apps.iter().enumerate() {
        let app_name: Arc<str> = Arc::from(app.name.as_str());
        let probe_names: Vec<Arc<str>> = app
            .probes
            .iter()
            .map(|p| Arc::from(p.name.as_str()))
            .collect();
        for (ii, inst) in app.instances.iter().enumerate() {
            let inst_name: Arc<str> = Arc::from(inst.name.as_str());
            // A comparison runs only in a rollout's gates.
            for (pi, probe) in app.probes.iter().enumerate().filter(|(_, p)| !p.compares()) {
                let delay = first_delay(
                    seed,
                    (&app.name, &inst.name, &probe.name),
                    app.health.interval,
                );
                let key = ProbeKey {
                    app: app_name.clone(),
                    instance: inst_name.clone(),
                    probe: probe_names[pi].clone(),
                };
                loops.push(set.spawn(probe_loop(
                    fleet.clone(),
                    prober.clone(),
                    ports.clone(),
                    (ai, ii, pi),
                    key,
                    delay,
                    tx.clone(),
                )));
            }
        }
    }
    set.spawn(async move {
        // Ends on true, or when the sender is gone.
        let _ = shutdown.wait_for(|s| *s).await;
        for l in &loops {
            l.abort();
        }
    });
    set
}

async fn probe_loop(
    fleet: Arc<Fleet>,
    prober: Arc<Prober>,
    ports: Arc<LivePorts>,
    (ai, ii, pi): (usize, usize, usize),
    key: ProbeKey,
    delay: Duration,
    tx: ResultSender,
) {
    let app = &fleet.apps[ai];
    let instance = &app.instances[ii];
    let probe = &app.probes[pi];
    let Some(host) = fleet.host(&instance.host) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(Instant::now() + delay, app.health.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let target = Target {
            app,
            instance,
            host,
            port: ports.get(ai, ii).unwrap_or(instance.port),
        };
        let result = prober.run_as(&key, target, probe).await;
        if tx.send(result).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_runs_are_spread() {
        let interval = Duration::from_secs(1);
        let names: Vec<String> = (0..1000).map(|i| format!("i{i}")).collect();
        let mut buckets = [0u32; 10];
        for n in &names {
            let d = first_delay(7, ("a", n, "p"), interval);
            assert!(d < interval);
            buckets[(d.as_millis() / 100) as usize] += 1;
        }
        // 1000 probes over 10 buckets of 100ms: none should be crowded.
        assert!(
            buckets.iter().all(|&b| (50..=150).contains(&b)),
            "{buckets:?}"
        );
    }
}
