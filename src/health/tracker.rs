//! Every probe of every instance of a fleet, judged together.
//!
//! Names are mapped to positions once, in [`Tracker::new`]; after that every
//! result costs three hash lookups and a few integer updates. Instance
//! verdicts and per-app counts are kept up to date on every result, so
//! reading them is O(1) and the console can ask for them on every frame.

use std::collections::HashMap;

use crate::config::{Fleet, Require};
use crate::model::{AppStatus, ProbeKey, ProbeResult, Verdict};

use super::ProbeCounter;

/// Where a probe sits in the fleet: positions in `Fleet::apps`,
/// `App::instances` and `App::probes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeLoc {
    /// Position of the app in `Fleet::apps`.
    pub app: usize,
    /// Position of the instance in `App::instances`.
    pub instance: usize,
    /// Position of the probe in `App::probes`.
    pub probe: usize,
}

/// An instance verdict that changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// Position of the app in `Fleet::apps`.
    pub app: usize,
    /// Position of the instance in `App::instances`.
    pub instance: usize,
    /// The verdict before.
    pub from: Verdict,
    /// The verdict now.
    pub to: Verdict,
}

/// Combines the verdicts of an instance's probes.
///
/// `All`: every probe healthy → healthy; any unhealthy → unhealthy.
/// `Any`: any probe healthy → healthy; every probe unhealthy → unhealthy.
/// Otherwise, and for an instance without probes, unknown.
pub fn combine_probes(require: Require, verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let (mut n, mut healthy, mut unhealthy) = (0usize, 0usize, 0usize);
    for v in verdicts {
        n += 1;
        match v {
            Verdict::Healthy => healthy += 1,
            Verdict::Unhealthy => unhealthy += 1,
            Verdict::Unknown => {}
        }
    }
    if n == 0 {
        return Verdict::Unknown;
    }
    match require {
        Require::All if healthy == n => Verdict::Healthy,
        Require::All if unhealthy > 0 => Verdict::Unhealthy,
        Require::Any if healthy > 0 => Verdict::Healthy,
        Require::Any if unhealthy == n => Verdict::Unhealthy,
        _ => Verdict::Unknown,
    }
}

/// Combines instance counts into an app status: unknown if no instance has
/// a verdict, healthy if all are healthy, down if none is healthy and at
/// least one is unhealthy, degraded otherwise.
pub fn combine_instances(total: usize, healthy: usize, unhealthy: usize) -> AppStatus {
    if total == 0 || healthy + unhealthy == 0 {
        AppStatus::Unknown
    } else if healthy == total {
        AppStatus::Healthy
    } else if healthy == 0 {
        AppStatus::Down
    } else {
        AppStatus::Degraded
    }
}

/// One instance: its probe counters, grace period and current verdict.
#[derive(Clone, Debug)]
struct InstanceTrack {
    probes: Vec<ProbeCounter>,
    /// Failures of probes started before this time do not count.
    grace_until_ms: i64,
    verdict: Verdict,
}

/// One app: thresholds, name maps and instance counts.
#[derive(Clone, Debug)]
struct AppTrack {
    success_threshold: u32,
    failure_threshold: u32,
    require: Require,
    initial_delay_ms: i64,
    instance_index: HashMap<String, usize>,
    probe_index: HashMap<String, usize>,
    /// Per probe: its `no_data` results are not counted (`on_no_data =
    /// "skip"`).
    skips_no_data: Vec<bool>,
    /// Per probe: it judges each instance (a comparison does not: see
    /// [`crate::config::Probe::compares`]).
    judges: Vec<bool>,
    instances: Vec<InstanceTrack>,
    healthy: usize,
    unhealthy: usize,
}

impl AppTrack {
    fn count(&mut self, v: Verdict, delta: isize) {
        let slot = match v {
            Verdict::Healthy => &mut self.healthy,
            Verdict::Unhealthy => &mut self.unhealthy,
            Verdict::Unknown => return,
        };
        *slot = slot.wrapping_add_signed(delta);
    }

    /// Recomputes one instance's verdict; returns the change, if any.
    fn refresh(&mut self, app: usize, instance: usize) -> Option<Change> {
        let inst = &self.instances[instance];
        let from = inst.verdict;
        let judged = (inst.probes.iter().zip(&self.judges))
            .filter(|(_, judges)| **judges)
            .map(|(c, _)| c.verdict);
        let to = combine_probes(self.require, judged);
        if from == to {
            return None;
        }
        self.instances[instance].verdict = to;
        self.count(from, -1);
        self.count(to, 1);
        Some(Change {
            app,
            instance,
            from,
            to,
        })
    }
}

/// Health of a whole fleet: a [`ProbeCounter`] per (app, instance, probe).
///
/// Pure: time is always passed in. Positions (`app`, `instance`, `probe`)
/// are those of the [`Fleet`] given to [`Tracker::new`]; methods taking
/// positions panic on positions outside it, like slice indexing.
#[derive(Clone, Debug)]
pub struct Tracker {
    app_index: HashMap<String, usize>,
    apps: Vec<AppTrack>,
}

impl Tracker {
    /// A tracker for every probe of `fleet`, all unknown, no grace.
    pub fn new(fleet: &Fleet) -> Self {
        let apps = fleet
            .apps
            .iter()
            .map(|a| AppTrack {
                success_threshold: a.health.success_threshold,
                failure_threshold: a.health.failure_threshold,
                require: a.health.require,
                initial_delay_ms: i64::try_from(a.health.initial_delay.as_millis())
                    .unwrap_or(i64::MAX),
                instance_index: positions(a.instances.iter().map(|i| i.name.as_str())),
                probe_index: positions(a.probes.iter().map(|p| p.name.as_str())),
                skips_no_data: a.probes.iter().map(|p| p.skips_no_data()).collect(),
                judges: a.probes.iter().map(|p| !p.compares()).collect(),
                instances: vec![
                    InstanceTrack {
                        probes: vec![ProbeCounter::new(); a.probes.len()],
                        grace_until_ms: i64::MIN,
                        verdict: Verdict::Unknown,
                    };
                    a.instances.len()
                ],
                healthy: 0,
                unhealthy: 0,
            })
            .collect();
        Tracker {
            app_index: positions(fleet.apps.iter().map(|a| a.name.as_str())),
            apps,
        }
    }

    /// Number of apps.
    pub fn app_count(&self) -> usize {
        self.apps.len()
    }

    /// Number of instances of `app`.
    pub fn instance_count(&self, app: usize) -> usize {
        self.apps[app].instances.len()
    }

    /// Number of probes of `app` (each instance runs all of them).
    pub fn probe_count(&self, app: usize) -> usize {
        self.apps[app].probe_index.len()
    }

    /// Position of the app named `name`.
    pub fn app_index(&self, name: &str) -> Option<usize> {
        self.app_index.get(name).copied()
    }

    /// Position of the instance named `name` in `app`.
    pub fn instance_index(&self, app: usize, name: &str) -> Option<usize> {
        self.apps.get(app)?.instance_index.get(name).copied()
    }

    /// Where the probe named by `key` sits, if it is part of the fleet.
    pub fn locate(&self, key: &ProbeKey) -> Option<ProbeLoc> {
        let app = self.app_index(&key.app)?;
        let a = &self.apps[app];
        Some(ProbeLoc {
            app,
            instance: *a.instance_index.get(&*key.instance)?,
            probe: *a.probe_index.get(&*key.probe)?,
        })
    }

    /// Records a result; returns the instance verdict change, if any.
    /// Results for probes that are not in the fleet are ignored.
    ///
    /// A failure counts toward unhealthy only if the probe started
    /// (`r.at_ms`, but never later than `now_ms`) at or after the end of the
    /// instance's grace period.
    pub fn observe(&mut self, r: &ProbeResult, now_ms: i64) -> Option<Change> {
        let loc = self.locate(&r.key)?;
        if r.error_kind == Some(crate::model::ErrorKind::NoData)
            && self.apps[loc.app].skips_no_data[loc.probe]
        {
            return None;
        }
        self.observe_at(loc, r.ok, r.at_ms.min(now_ms))
    }

    /// Records a result for a probe already located: `started_ms` is when
    /// the probe started. Returns the instance verdict change, if any.
    pub fn observe_at(&mut self, loc: ProbeLoc, ok: bool, started_ms: i64) -> Option<Change> {
        let a = &mut self.apps[loc.app];
        let (st, ft) = (a.success_threshold, a.failure_threshold);
        let inst = &mut a.instances[loc.instance];
        let counts = started_ms >= inst.grace_until_ms;
        let before = inst.probes[loc.probe].verdict;
        let after = inst.probes[loc.probe].observe(ok, counts, st, ft);
        if before == after {
            return None;
        }
        a.refresh(loc.app, loc.instance)
    }

    /// Failures of probes started before `until_ms` do not count toward
    /// unhealthy for this instance (the `initial_delay` after a restart).
    pub fn set_grace(&mut self, app: usize, instance: usize, until_ms: i64) {
        self.apps[app].instances[instance].grace_until_ms = until_ms;
    }

    /// Forgets everything known about an instance (all its probes back to
    /// unknown), e.g. because it was replaced. Returns the verdict change.
    pub fn reset_instance(&mut self, app: usize, instance: usize) -> Option<Change> {
        let a = &mut self.apps[app];
        a.instances[instance].probes.fill(ProbeCounter::new());
        a.refresh(app, instance)
    }

    /// The instance was (re)started at `now_ms`: forget its counts and give
    /// it the app's `initial_delay` of grace. What a rollout gate calls
    /// before waiting for `success_threshold` passes.
    pub fn restarted(&mut self, app: usize, instance: usize, now_ms: i64) -> Option<Change> {
        let until = now_ms.saturating_add(self.apps[app].initial_delay_ms);
        self.set_grace(app, instance, until);
        self.reset_instance(app, instance)
    }

    /// The counter of one probe on one instance.
    pub fn probe_counter(&self, loc: ProbeLoc) -> &ProbeCounter {
        &self.apps[loc.app].instances[loc.instance].probes[loc.probe]
    }

    /// The verdict of one probe on one instance.
    pub fn probe_verdict(&self, loc: ProbeLoc) -> Verdict {
        self.probe_counter(loc).verdict
    }

    /// The combined verdict of an instance's probes (see [`combine_probes`]).
    pub fn instance_verdict(&self, app: usize, instance: usize) -> Verdict {
        self.apps[app].instances[instance].verdict
    }

    /// Whether failures of a probe started at `at_ms` would be ignored.
    pub fn in_grace(&self, app: usize, instance: usize, at_ms: i64) -> bool {
        at_ms < self.apps[app].instances[instance].grace_until_ms
    }

    /// The status of an app from its instances (see [`combine_instances`]).
    pub fn app_status(&self, app: usize) -> AppStatus {
        let a = &self.apps[app];
        combine_instances(a.instances.len(), a.healthy, a.unhealthy)
    }

    /// (healthy instances, all instances) of an app.
    pub fn healthy_count(&self, app: usize) -> (usize, usize) {
        let a = &self.apps[app];
        (a.healthy, a.instances.len())
    }

    /// Number of unhealthy instances of an app.
    pub fn unhealthy_count(&self, app: usize) -> usize {
        self.apps[app].unhealthy
    }
}

fn positions<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for (i, n) in names.enumerate() {
        // Names are unique after validation; keep the first if not.
        map.entry(n.to_string()).or_insert(i);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::{
        App, CommandProbe, Console, DriverKind, Health, Instance, Probe, ProbeKind, Strategy,
        TcpProbe,
    };

    fn app(name: &str, instances: usize, probes: &[&str], health: Health) -> App {
        App {
            name: name.into(),
            driver: DriverKind::Process,
            strategy: Strategy::Rolling,
            protected: false,
            instances: (0..instances)
                .map(|i| Instance {
                    name: format!("{name}-{i}"),
                    host: "h".into(),
                    port: 8000 + i as u16,
                    alt_port: None,
                })
                .collect(),
            probes: probes
                .iter()
                .enumerate()
                .map(|(i, p)| Probe {
                    name: (*p).into(),
                    timeout: Duration::from_secs(1),
                    kind: if i % 2 == 0 {
                        ProbeKind::Tcp(TcpProbe {
                            port: None,
                            send: None,
                            expect: None,
                        })
                    } else {
                        ProbeKind::Command(CommandProbe {
                            command: "true".into(),
                            expect_exit: 0,
                            output_contains: None,
                        })
                    },
                })
                .collect(),
            health,
            ..Default::default()
        }
    }

    fn fleet(apps: Vec<App>) -> Fleet {
        Fleet {
            metrics: None,
            store: None,
            source: PathBuf::from("test.toml"),
            console: Console::default(),
            hosts: vec![],
            apps,
        }
    }

    fn result(app: &str, inst: &str, probe: &str, ok: bool, at_ms: i64) -> ProbeResult {
        ProbeResult {
            key: ProbeKey {
                app: Arc::from(app),
                instance: Arc::from(inst),
                probe: Arc::from(probe),
            },
            at_ms,
            ok,
            latency_ms: 5.0,
            code: None,
            error_kind: None,
            message: String::new(),
        }
    }

    fn health(st: u32, ft: u32, require: Require) -> Health {
        Health {
            success_threshold: st,
            failure_threshold: ft,
            require,
            ..Health::default()
        }
    }

    #[test]
    fn combine_probes_all_and_any() {
        use Verdict::*;
        assert_eq!(combine_probes(Require::All, [Healthy, Healthy]), Healthy);
        assert_eq!(combine_probes(Require::All, [Healthy, Unknown]), Unknown);
        assert_eq!(
            combine_probes(Require::All, [Healthy, Unhealthy]),
            Unhealthy
        );
        assert_eq!(
            combine_probes(Require::All, [Unknown, Unhealthy]),
            Unhealthy
        );
        assert_eq!(combine_probes(Require::Any, [Healthy, Unhealthy]), Healthy);
        assert_eq!(combine_probes(Require::Any, [Unknown, Unhealthy]), Unknown);
        assert_eq!(
            combine_probes(Require::Any, [Unhealthy, Unhealthy]),
            Unhealthy
        );
        assert_eq!(combine_probes(Require::Any, [Unknown, Unknown]), Unknown);
        assert_eq!(combine_probes(Require::All, []), Unknown);
        assert_eq!(combine_probes(Require::Any, []), Unknown);
    }

    #[test]
    fn combine_instances_rules() {
        assert_eq!(combine_instances(0, 0, 0), AppStatus::Unknown);
        assert_eq!(combine_instances(3, 0, 0), AppStatus::Unknown);
        assert_eq!(combine_instances(3, 3, 0), AppStatus::Healthy);
        assert_eq!(combine_instances(3, 2, 0), AppStatus::Degraded);
        assert_eq!(combine_instances(3, 2, 1), AppStatus::Degraded);
        assert_eq!(combine_instances(3, 0, 1), AppStatus::Down);
        assert_eq!(combine_instances(3, 0, 3), AppStatus::Down);
    }

    #[test]
    fn require_all_needs_every_probe() {
        let f = fleet(vec![app("web", 1, &["a", "b"], health(1, 1, Require::All))]);
        let mut t = Tracker::new(&f);
        assert_eq!(t.observe(&result("web", "web-0", "a", true, 0), 0), None);
        assert_eq!(t.instance_verdict(0, 0), Verdict::Unknown);
        let c = t.observe(&result("web", "web-0", "b", true, 0), 0).unwrap();
        assert_eq!((c.from, c.to), (Verdict::Unknown, Verdict::Healthy));
        let c = t
            .observe(&result("web", "web-0", "b", false, 1), 1)
            .unwrap();
        assert_eq!(c.to, Verdict::Unhealthy);
    }

    #[test]
    fn require_any_needs_one_probe() {
        let f = fleet(vec![app("web", 1, &["a", "b"], health(1, 1, Require::Any))]);
        let mut t = Tracker::new(&f);
        let c = t.observe(&result("web", "web-0", "a", true, 0), 0).unwrap();
        assert_eq!(c.to, Verdict::Healthy);
        assert_eq!(t.observe(&result("web", "web-0", "b", false, 0), 0), None);
        assert_eq!(t.instance_verdict(0, 0), Verdict::Healthy);
        let c = t
            .observe(&result("web", "web-0", "a", false, 1), 1)
            .unwrap();
        assert_eq!(c.to, Verdict::Unhealthy);
    }

    #[test]
    fn app_status_from_instances() {
        let f = fleet(vec![app("web", 3, &["a"], health(1, 1, Require::All))]);
        let mut t = Tracker::new(&f);
        assert_eq!(t.app_status(0), AppStatus::Unknown);
        t.observe(&result("web", "web-0", "a", false, 0), 0);
        assert_eq!(t.app_status(0), AppStatus::Down);
        t.observe(&result("web", "web-1", "a", true, 0), 0);
        assert_eq!(t.app_status(0), AppStatus::Degraded);
        assert_eq!(t.healthy_count(0), (1, 3));
        t.observe(&result("web", "web-0", "a", true, 0), 0);
        t.observe(&result("web", "web-2", "a", true, 0), 0);
        assert_eq!(t.app_status(0), AppStatus::Healthy);
        assert_eq!(t.healthy_count(0), (3, 3));
        assert_eq!(t.unhealthy_count(0), 0);
    }

    #[test]
    fn grace_period_ignores_failures() {
        let mut h = health(1, 2, Require::All);
        h.initial_delay = Duration::from_secs(30);
        let f = fleet(vec![app("web", 1, &["a"], h)]);
        let mut t = Tracker::new(&f);
        t.observe(&result("web", "web-0", "a", true, 0), 0);
        assert_eq!(t.instance_verdict(0, 0), Verdict::Healthy);
        let c = t.restarted(0, 0, 1_000).unwrap();
        assert_eq!(c.to, Verdict::Unknown);
        assert!(t.in_grace(0, 0, 30_999));
        for at in [2_000, 10_000, 30_999] {
            assert_eq!(t.observe(&result("web", "web-0", "a", false, at), at), None);
        }
        assert_eq!(t.instance_verdict(0, 0), Verdict::Unknown);
        // After the grace period, failures count.
        t.observe(&result("web", "web-0", "a", false, 31_000), 31_000);
        let c = t
            .observe(&result("web", "web-0", "a", false, 32_000), 32_000)
            .unwrap();
        assert_eq!(c.to, Verdict::Unhealthy);
        assert_eq!(t.app_status(0), AppStatus::Down);
    }

    #[test]
    fn unknown_probes_are_ignored() {
        let f = fleet(vec![app("web", 1, &["a"], Health::default())]);
        let mut t = Tracker::new(&f);
        assert_eq!(t.observe(&result("nope", "web-0", "a", true, 0), 0), None);
        assert_eq!(t.observe(&result("web", "nope", "a", true, 0), 0), None);
        assert_eq!(t.observe(&result("web", "web-0", "nope", true, 0), 0), None);
        assert_eq!(t.app_status(0), AppStatus::Unknown);
    }

    #[test]
    fn locate_maps_names_to_positions() {
        let f = fleet(vec![
            app("a", 1, &["p"], Health::default()),
            app("b", 3, &["p", "q"], Health::default()),
        ]);
        let t = Tracker::new(&f);
        let loc = t.locate(&result("b", "b-2", "q", true, 0).key).unwrap();
        assert_eq!(
            loc,
            ProbeLoc {
                app: 1,
                instance: 2,
                probe: 1
            }
        );
        assert_eq!(t.instance_count(1), 3);
        assert_eq!(t.probe_count(1), 2);
        assert_eq!(t.app_count(), 2);
    }

    #[test]
    fn a_comparison_probe_judges_no_instance() {
        use crate::condition::Condition;
        use crate::config::{NoData, PromAuth, PrometheusProbe};
        let mut a = app("web", 1, &["tcp"], Health::default());
        a.probes.push(Probe {
            name: "errors".into(),
            timeout: Duration::from_secs(1),
            kind: ProbeKind::Prometheus(PrometheusProbe {
                url: "http://127.0.0.1:9090".into(),
                query: "up{port=\"{port}\"}".into(),
                conditions: vec![Condition::parse("[CANARY] <= [BASELINE]").unwrap()],
                on_no_data: NoData::Fail,
                auth: PromAuth::None,
                insecure_tls: false,
            }),
        });
        let f = fleet(vec![a]);
        let mut t = Tracker::new(&f);
        // The comparison never has a result outside a rollout: the
        // instance is healthy on its own probe.
        let c = t
            .observe(&result("web", "web-0", "tcp", true, 0), 0)
            .unwrap();
        assert_eq!(c.to, Verdict::Healthy);
        assert_eq!(t.app_status(0), AppStatus::Healthy);
    }
}
