//! The fleet state: what has been observed about the fleet, and what this
//! process does for it ([`Role`]).
//!
//! Filled by the monitor with [`FleetState::observe`], read by the
//! console's draw code and by `/metrics`. Separate from the console's view
//! state (its `App`: selection, popups) so that the poller and the drawing
//! never need each other. Everything is stored by position (app, instance,
//! probe), with compact fixed-size samples and bounded buffers: a probe
//! needs about 4 KB at most (120 samples of 16 bytes, and 4 bytes per
//! result in the success-rate window), so 10,000 probes need about 40 MB
//! (see [`FleetState::approx_heap_bytes`]).

mod role;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::config::Fleet;
use crate::health::{Change, ProbeLoc, Tracker};
use crate::model::{ErrorKind, ProbeKey, ProbeResult};
use crate::rollout::watch::AppRollouts;

pub use role::{Role, describe_holder};

/// Samples kept per probe (and per app) for sparklines.
pub const SPARK_SAMPLES: usize = 120;
/// The window of the success rate.
pub const RATE_WINDOW_MS: i64 = 5 * 60 * 1000;
/// At most this many results per probe count toward the success rate; with
/// probes more frequent than every ~0.6 s the window is shorter than 5 min.
pub const RATE_WINDOW_CAP: usize = 512;
/// Longest message kept for a last result or last error, in bytes.
pub const MESSAGE_MAX: usize = 240;

/// One probe result, as much as a sparkline needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When the probe started, ms since the epoch.
    pub at_ms: i64,
    /// How long it took.
    pub latency_ms: f32,
    /// Whether it passed.
    pub ok: bool,
}

/// The most recent result of one probe.
#[derive(Clone, Debug, PartialEq)]
pub struct LastResult {
    /// When the probe started, ms since the epoch.
    pub at_ms: i64,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took.
    pub latency_ms: f32,
    /// HTTP status or exit code.
    pub code: Option<i64>,
    /// Why it failed.
    pub error_kind: Option<ErrorKind>,
    /// What was seen (truncated to [`MESSAGE_MAX`] bytes).
    pub message: Box<str>,
}

/// The most recent failure among an app's probes.
#[derive(Clone, Debug, PartialEq)]
pub struct LastError {
    /// Position of the instance.
    pub instance: usize,
    /// Position of the probe.
    pub probe: usize,
    /// When the failed probe started.
    pub at_ms: i64,
    /// Why it failed.
    pub error_kind: Option<ErrorKind>,
    /// What was seen (truncated to [`MESSAGE_MAX`] bytes).
    pub message: Box<str>,
}

/// Recent history of one probe on one instance.
#[derive(Clone, Debug, Default)]
pub struct ProbeHistory {
    samples: VecDeque<Sample>,
    last: Option<LastResult>,
    last_failure: Option<LastResult>,
    /// The results in the success-rate window, oldest first.
    window: Window,
}

/// The results counted by the success rate: for each, when it started and
/// whether it passed, in 4 bytes: `((at_ms - base_ms) << 1) | ok`. The
/// entries of one probe lie within minutes of each other, far inside the
/// 24 days that 31 bits of milliseconds span. The buffer grows by small
/// steps up to [`RATE_WINDOW_CAP`], so a probe that keeps 300 results
/// holds about 300 entries, not the next power of two.
#[derive(Clone, Debug, Default)]
struct Window {
    base_ms: i64,
    entries: VecDeque<u32>,
    /// How many entries passed.
    ok: u32,
}

/// The largest offset from `base_ms` an entry can hold.
const WINDOW_SPAN_MS: i64 = (u32::MAX >> 1) as i64;

impl Window {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    fn decode(&self, e: u32) -> (i64, bool) {
        (self.base_ms + i64::from(e >> 1), e & 1 == 1)
    }

    fn front(&self) -> Option<(i64, bool)> {
        self.entries.front().map(|&e| self.decode(e))
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.ok -= e & 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (i64, bool)> + '_ {
        self.entries.iter().map(|&e| self.decode(e))
    }

    /// Appends a result. Entries that cannot share a base with it (more
    /// than 24 days away, after the clock jumped) are dropped first.
    fn push_back(&mut self, at_ms: i64, ok: bool) {
        if self.entries.is_empty() {
            self.base_ms = at_ms;
        } else if at_ms < self.base_ms || at_ms - self.base_ms > WINDOW_SPAN_MS {
            self.rebase(at_ms);
        }
        if self.entries.len() == self.entries.capacity() {
            let step = (self.entries.len() / 8).max(16);
            let room = RATE_WINDOW_CAP.saturating_sub(self.entries.len()).max(1);
            self.entries.reserve_exact(step.min(room));
        }
        let offset = u32::try_from(at_ms - self.base_ms).unwrap_or(u32::MAX >> 1);
        self.entries.push_back((offset << 1) | u32::from(ok));
        self.ok += u32::from(ok);
    }

    /// Moves the base so that `at_ms` and as many entries as fit share it.
    fn rebase(&mut self, at_ms: i64) {
        let old: Vec<(i64, bool)> = self.iter().collect();
        let lo = old.iter().map(|e| e.0).fold(at_ms, i64::min);
        let base = lo.max(at_ms.saturating_sub(WINDOW_SPAN_MS));
        self.entries.clear();
        self.ok = 0;
        self.base_ms = base.min(at_ms);
        for (t, ok) in old {
            if (self.base_ms..=self.base_ms + WINDOW_SPAN_MS).contains(&t) {
                let offset = (t - self.base_ms) as u32;
                self.entries.push_back((offset << 1) | u32::from(ok));
                self.ok += u32::from(ok);
            }
        }
    }
}

impl ProbeHistory {
    /// The last [`SPARK_SAMPLES`] samples, oldest first.
    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    /// The most recent result.
    pub fn last(&self) -> Option<&LastResult> {
        self.last.as_ref()
    }

    /// The most recent failed result (perhaps older than [`Self::last`]).
    pub fn last_failure(&self) -> Option<&LastResult> {
        self.last_failure.as_ref()
    }

    /// (passed, total) over the [`RATE_WINDOW_MS`] before `now_ms`.
    pub fn success_counts(&self, now_ms: i64) -> (u32, u32) {
        let cutoff = now_ms - RATE_WINDOW_MS;
        let (mut ok, mut total) = (self.window.ok, self.window.len() as u32);
        for (at_ms, passed) in self.window.iter() {
            if at_ms >= cutoff {
                break;
            }
            total -= 1;
            ok -= u32::from(passed);
        }
        (ok, total)
    }

    fn record(&mut self, r: &ProbeResult) -> Sample {
        let s = Sample {
            at_ms: r.at_ms,
            latency_ms: r.latency_ms as f32,
            ok: r.ok,
        };
        push_ring(&mut self.samples, s);
        // Prune by time, then by size.
        let cutoff = r.at_ms - RATE_WINDOW_MS;
        while let Some((at_ms, _)) = self.window.front() {
            if at_ms >= cutoff && self.window.len() < RATE_WINDOW_CAP {
                break;
            }
            self.window.pop_front();
        }
        self.window.push_back(r.at_ms, r.ok);
        // The same message as last time (a steady "200 in 3ms") keeps its
        // allocation.
        let message = match self.last.take() {
            Some(l) if same_message(&l.message, &r.message) => l.message,
            _ => short_message(&r.message),
        };
        let last = LastResult {
            at_ms: r.at_ms,
            ok: r.ok,
            latency_ms: s.latency_ms,
            code: r.code,
            error_kind: r.error_kind,
            message,
        };
        if !r.ok {
            self.last_failure = Some(last.clone());
        }
        self.last = Some(last);
        s
    }

    fn heap_bytes(&self) -> usize {
        self.samples.capacity() * size_of::<Sample>()
            + self.window.capacity() * size_of::<u32>()
            + self.last.as_ref().map_or(0, |l| l.message.len())
            + self.last_failure.as_ref().map_or(0, |l| l.message.len())
    }
}

/// Per-app aggregates.
#[derive(Clone, Debug, Default)]
struct AppHistory {
    /// Recent samples of all its probes, in arrival order.
    samples: VecDeque<Sample>,
    last_error: Option<LastError>,
}

/// What the console knows about the fleet. See the module docs.
#[derive(Debug)]
pub struct FleetState {
    fleet: Arc<Fleet>,
    tracker: Tracker,
    /// Start of each app's probes in `probes`.
    offsets: Vec<usize>,
    probes: Vec<ProbeHistory>,
    apps: Vec<AppHistory>,
    generation: u64,
    /// Bumped with `generation` when more than a sample changed.
    headline: u64,
    results: u64,
    ignored: u64,
    last_update_ms: Option<i64>,
    /// Results per second over the last 10 seconds: (second, count).
    per_second: [(i64, u32); 10],
    /// Releases and rollouts per app, as last read from the history.
    rollouts: Vec<AppRollouts>,
    /// Whether this process probes or reads what another one probes.
    role: Role,
    /// Where the probe of a key seen before sits, by the addresses of the
    /// key's three names: the scheduler gives every result of one probe
    /// the same names, so this skips hashing them. The entry keeps its
    /// key, and so the names, alive: no other name can take an address
    /// while it is here. At most one entry per probe of the fleet.
    located: HashMap<[usize; 3], (ProbeKey, ProbeLoc), BuildHasherDefault<AddressHasher>>,
}

/// Hashes the addresses of [`FleetState::located`]'s keys.
#[derive(Clone, Copy, Debug, Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The addresses of a key's names.
fn addresses(key: &ProbeKey) -> [usize; 3] {
    let at = |s: &Arc<str>| Arc::as_ptr(s).cast::<u8>() as usize;
    [at(&key.app), at(&key.instance), at(&key.probe)]
}

/// Pushes onto a ring of [`SPARK_SAMPLES`], allocating it exactly once.
fn push_ring(ring: &mut VecDeque<Sample>, s: Sample) {
    if ring.capacity() == 0 {
        ring.reserve_exact(SPARK_SAMPLES);
    }
    if ring.len() >= SPARK_SAMPLES {
        ring.pop_front();
    }
    ring.push_back(s);
}

/// Whether `kept` (a message as [`short_message`] keeps it) is `m`'s.
fn same_message(kept: &str, m: &str) -> bool {
    m.len() <= MESSAGE_MAX && kept == m
}

fn short_message(m: &str) -> Box<str> {
    if m.len() <= MESSAGE_MAX {
        return m.into();
    }
    let mut end = MESSAGE_MAX;
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &m[..end]).into_boxed_str()
}

impl FleetState {
    /// Empty state for `fleet`: every verdict unknown, no samples.
    pub fn new(fleet: Arc<Fleet>) -> Self {
        let mut offsets = Vec::with_capacity(fleet.apps.len());
        let mut n = 0;
        for a in &fleet.apps {
            offsets.push(n);
            n += a.instances.len() * a.probes.len();
        }
        FleetState {
            tracker: Tracker::new(&fleet),
            offsets,
            probes: vec![ProbeHistory::default(); n],
            apps: vec![AppHistory::default(); fleet.apps.len()],
            fleet,
            generation: 0,
            headline: 0,
            results: 0,
            ignored: 0,
            last_update_ms: None,
            per_second: [(i64::MIN, 0); 10],
            rollouts: Vec::new(),
            role: Role::Starting,
            located: HashMap::default(),
        }
    }

    /// Where the probe of `key` sits, if it is part of the fleet (found by
    /// the addresses of its names after the first time).
    pub fn locate(&mut self, key: &ProbeKey) -> Option<ProbeLoc> {
        let at = addresses(key);
        if let Some((_, loc)) = self.located.get(&at) {
            return Some(*loc);
        }
        let loc = self.tracker.locate(key)?;
        if self.located.len() < self.probes.len() {
            self.located.insert(at, (key.clone(), loc));
        }
        Some(loc)
    }

    /// Records one result. Returns the instance verdict change, if any.
    /// Results for probes not in the fleet are counted and ignored.
    pub fn observe(&mut self, r: &ProbeResult) -> Option<Change> {
        let Some(loc) = self.locate(&r.key) else {
            self.ignored += 1;
            return None;
        };
        let change = self.tracker.observe_at(loc, r.ok, r.at_ms);
        let i = self.index(loc);
        let sample = self.probes[i].record(r);
        let app = &mut self.apps[loc.app];
        push_ring(&mut app.samples, sample);
        if !r.ok {
            app.last_error = Some(LastError {
                instance: loc.instance,
                probe: loc.probe,
                at_ms: r.at_ms,
                error_kind: r.error_kind,
                message: short_message(&r.message),
            });
        }
        self.results += 1;
        self.last_update_ms = Some(self.last_update_ms.map_or(r.at_ms, |t| t.max(r.at_ms)));
        let sec = r.at_ms.div_euclid(1000);
        let slot = &mut self.per_second[sec.rem_euclid(10) as usize];
        if slot.0 == sec {
            slot.1 += 1;
        } else if slot.0 < sec {
            *slot = (sec, 1);
        }
        self.generation += 1;
        if change.is_some() {
            self.headline += 1;
        }
        change
    }

    /// The instance was (re)started at `now_ms`: its verdict starts over
    /// and failures within the app's `initial_delay` do not count.
    pub fn restarted(&mut self, app: usize, instance: usize, now_ms: i64) -> Option<Change> {
        self.generation += 1;
        self.headline += 1;
        self.tracker.restarted(app, instance, now_ms)
    }

    fn index(&self, loc: ProbeLoc) -> usize {
        self.offsets[loc.app] + loc.instance * self.fleet.apps[loc.app].probes.len() + loc.probe
    }

    /// Takes what the history says of each app's releases and rollouts
    /// (in fleet order); a change bumps the generation.
    pub fn set_rollouts(&mut self, rollouts: Vec<AppRollouts>) {
        if rollouts != self.rollouts {
            self.rollouts = rollouts;
            self.generation += 1;
            self.headline += 1;
        }
    }

    /// Takes the monitor's role; a change bumps the generation.
    pub fn set_role(&mut self, role: Role) {
        if role != self.role {
            self.role = role;
            self.generation += 1;
            self.headline += 1;
        }
    }

    /// Whether this process probes or reads what another one probes.
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// App `app`'s releases and rollouts, once read from the history.
    pub fn rollouts(&self, app: usize) -> Option<&AppRollouts> {
        self.rollouts.get(app)
    }

    /// The fleet this state is about.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// The health verdicts.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Increases on every change: redraw only when it moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Increases when more than a probe's sample changed: a verdict, a
    /// restart, the rollouts or the role. The console draws these at once,
    /// and new samples alone (sparklines, rates) once a second.
    pub fn headline_generation(&self) -> u64 {
        self.headline
    }

    /// Results observed so far (excluding ignored ones).
    pub fn results(&self) -> u64 {
        self.results
    }

    /// Results for probes not in the fleet.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// When the most recent result was taken.
    pub fn last_update_ms(&self) -> Option<i64> {
        self.last_update_ms
    }

    /// Results per second over the 10 whole seconds before `now_ms`.
    pub fn probes_per_sec(&self, now_ms: i64) -> f64 {
        let now = now_ms.div_euclid(1000);
        let n: u32 = self
            .per_second
            .iter()
            .filter(|(s, _)| *s < now && *s >= now - 10)
            .map(|(_, c)| c)
            .sum();
        f64::from(n) / 10.0
    }

    /// History of one probe on one instance.
    pub fn probe(&self, loc: ProbeLoc) -> &ProbeHistory {
        &self.probes[self.index(loc)]
    }

    /// Recent samples of all of an app's probes, oldest first.
    pub fn app_samples(&self, app: usize) -> &VecDeque<Sample> {
        &self.apps[app].samples
    }

    /// The most recent failure of any of an app's probes.
    pub fn last_error(&self, app: usize) -> Option<&LastError> {
        self.apps[app].last_error.as_ref()
    }

    /// Whether the probe that failed last in `app` is still failing.
    pub fn last_error_is_current(&self, app: usize) -> bool {
        self.last_error(app).is_some_and(|e| {
            let loc = ProbeLoc {
                app,
                instance: e.instance,
                probe: e.probe,
            };
            self.probe(loc).last().is_some_and(|l| !l.ok)
        })
    }

    /// (passed, total) results of an app's probes over the last 5 minutes.
    pub fn success_counts(&self, app: usize, now_ms: i64) -> (u64, u64) {
        let start = self.offsets[app];
        let a = &self.fleet.apps[app];
        let end = start + a.instances.len() * a.probes.len();
        self.probes[start..end]
            .iter()
            .map(|p| p.success_counts(now_ms))
            .fold((0, 0), |(o, t), (po, pt)| {
                (o + u64::from(po), t + u64::from(pt))
            })
    }

    /// Share of an app's probe results that passed over the last 5
    /// minutes, in percent; `None` without results.
    pub fn success_rate(&self, app: usize, now_ms: i64) -> Option<f64> {
        let (ok, total) = self.success_counts(app, now_ms);
        (total > 0).then(|| ok as f64 * 100.0 / total as f64)
    }

    /// An estimate of the heap memory this state holds, in bytes.
    pub fn approx_heap_bytes(&self) -> usize {
        let probes: usize = self.probes.iter().map(ProbeHistory::heap_bytes).sum();
        let apps: usize = self
            .apps
            .iter()
            .map(|a| {
                a.samples.capacity() * size_of::<Sample>()
                    + a.last_error.as_ref().map_or(0, |e| e.message.len())
            })
            .sum();
        probes
            + self.probes.capacity() * size_of::<ProbeHistory>()
            + apps
            + self.apps.capacity() * size_of::<AppHistory>()
            + self.offsets.capacity() * size_of::<usize>()
            + self.located.capacity() * (size_of::<([usize; 3], (ProbeKey, ProbeLoc))>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        App, Console, DriverKind, Health, Instance, Probe, ProbeKind, Strategy, TcpProbe,
    };
    use crate::model::{AppStatus, ProbeKey};
    use std::path::PathBuf;
    use std::time::Duration;

    fn fleet(apps: usize, instances: usize, probes: usize) -> Arc<Fleet> {
        Arc::new(Fleet {
            metrics: None,
            store: None,
            source: PathBuf::from("t.toml"),
            console: Console::default(),
            hosts: vec![],
            apps: (0..apps)
                .map(|a| App {
                    name: format!("app{a}"),
                    driver: DriverKind::Process,
                    strategy: Strategy::Rolling,
                    protected: false,
                    instances: (0..instances)
                        .map(|i| Instance {
                            name: format!("i{i}"),
                            host: "h".into(),
                            port: 1,
                            alt_port: None,
                        })
                        .collect(),
                    probes: (0..probes)
                        .map(|p| Probe {
                            name: format!("p{p}"),
                            timeout: Duration::from_secs(1),
                            kind: ProbeKind::Tcp(TcpProbe {
                                port: None,
                                send: None,
                                expect: None,
                            }),
                        })
                        .collect(),
                    health: Health {
                        success_threshold: 1,
                        failure_threshold: 1,
                        ..Health::default()
                    },
                    ..Default::default()
                })
                .collect(),
        })
    }

    fn key(app: &str, inst: &str, probe: &str) -> ProbeKey {
        ProbeKey {
            app: app.into(),
            instance: inst.into(),
            probe: probe.into(),
        }
    }

    fn res(key: &ProbeKey, at_ms: i64, ok: bool, msg: &str) -> ProbeResult {
        ProbeResult {
            key: key.clone(),
            at_ms,
            ok,
            latency_ms: 12.5,
            code: Some(if ok { 200 } else { 503 }),
            error_kind: (!ok).then_some(ErrorKind::Status),
            message: msg.into(),
        }
    }

    #[test]
    fn observe_updates_history_rate_and_generation() {
        let mut s = FleetState::new(fleet(2, 2, 2));
        let k = key("app1", "i1", "p0");
        let g0 = s.generation();
        s.observe(&res(&k, 1_000, true, "ok"));
        s.observe(&res(&k, 2_000, false, "503 Service Unavailable"));
        assert_eq!(s.generation(), g0 + 2);
        let loc = s.tracker().locate(&k).unwrap();
        let h = s.probe(loc);
        assert_eq!(h.samples().len(), 2);
        assert!(!h.last().unwrap().ok);
        assert_eq!(h.success_counts(3_000), (1, 2));
        assert_eq!(s.success_rate(1, 3_000), Some(50.0));
        assert_eq!(s.success_rate(0, 3_000), None);
        // Five minutes later the window is empty.
        assert_eq!(s.success_rate(1, 2_000 + RATE_WINDOW_MS + 1), None);
        assert_eq!(s.success_rate(1, 1_000 + RATE_WINDOW_MS + 1), Some(0.0));
        let e = s.last_error(1).unwrap();
        assert_eq!((e.instance, e.probe), (1, 0));
        assert_eq!(&*e.message, "503 Service Unavailable");
        assert!(s.last_error_is_current(1));
        s.observe(&res(&k, 3_000, true, "ok"));
        assert!(!s.last_error_is_current(1));
        assert_eq!(s.app_samples(1).len(), 3);
        // Probe p1 has no result yet, so with `require = all` nothing is known.
        assert_eq!(s.tracker().app_status(1), AppStatus::Unknown);
    }

    #[test]
    fn the_headline_moves_with_verdicts_not_with_every_sample() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        let k = key("app0", "i0", "p0");
        // success_threshold = 1: the first pass makes the instance healthy.
        assert!(s.observe(&res(&k, 1_000, true, "ok")).is_some());
        let h = s.headline_generation();
        assert_eq!(h, 1);
        s.observe(&res(&k, 2_000, true, "ok"));
        s.observe(&res(&k, 3_000, true, "ok"));
        assert_eq!(s.headline_generation(), h, "samples alone");
        assert_eq!(s.generation(), 3);
        s.set_role(Role::Prober);
        assert_eq!(s.headline_generation(), h + 1);
        s.set_role(Role::Prober);
        assert_eq!(s.headline_generation(), h + 1, "the same role");
    }

    #[test]
    fn shared_and_fresh_names_find_the_same_probe() {
        let mut s = FleetState::new(fleet(2, 2, 2));
        let shared = key("app1", "i0", "p1");
        for at in 0..3 {
            s.observe(&res(&shared, at * 1_000, true, "ok"));
            // The same names, allocated anew each time.
            s.observe(&res(
                &key("app1", "i0", "p1"),
                at * 1_000 + 500,
                false,
                "no",
            ));
        }
        let loc = s.tracker().locate(&shared).unwrap();
        assert_eq!(s.probe(loc).success_counts(3_000), (3, 6));
        assert_eq!(s.results(), 6);
        // At most one remembered key per probe, however many fresh ones.
        for _ in 0..100 {
            s.observe(&res(&key("app0", "i1", "p0"), 0, true, ""));
        }
        assert!(s.located.len() <= 8, "{}", s.located.len());
    }

    #[test]
    fn unknown_results_are_ignored() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        assert_eq!(s.observe(&res(&key("x", "i0", "p0"), 0, true, "")), None);
        assert_eq!((s.results(), s.ignored(), s.generation()), (0, 1, 0));
    }

    #[test]
    fn rings_and_windows_are_bounded() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        let k = key("app0", "i0", "p0");
        for i in 0..2_000 {
            s.observe(&res(&k, i * 100, i % 7 != 0, ""));
        }
        let loc = s.tracker().locate(&k).unwrap();
        let h = s.probe(loc);
        assert_eq!(h.samples().len(), SPARK_SAMPLES);
        assert_eq!(h.samples().capacity(), SPARK_SAMPLES);
        assert!(h.window.len() <= RATE_WINDOW_CAP);
        assert!(h.window.capacity() <= RATE_WINDOW_CAP);
        let (ok, total) = h.success_counts(200_000);
        assert_eq!(total as usize, RATE_WINDOW_CAP);
        let expect_ok = (2_000 - RATE_WINDOW_CAP as i64..2_000)
            .filter(|i| i % 7 != 0)
            .count();
        assert_eq!(ok as usize, expect_ok);
    }

    #[test]
    fn the_window_survives_a_clock_that_jumps() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        let k = key("app0", "i0", "p0");
        let day = 24 * 3600 * 1000;
        s.observe(&res(&k, 40 * day, true, ""));
        s.observe(&res(&k, 40 * day + 1_000, false, ""));
        let loc = s.tracker().locate(&k).unwrap();
        assert_eq!(s.probe(loc).success_counts(40 * day + 2_000), (1, 2));
        // Backwards by an hour: the later entries stay, and all count.
        s.observe(&res(&k, 40 * day - 3_600_000, true, ""));
        assert_eq!(s.probe(loc).success_counts(40 * day + 2_000), (2, 3));
        assert_eq!(s.probe(loc).window.len(), 3);
        // Backwards by 30 days: what cannot share a base with it is gone.
        s.observe(&res(&k, 10 * day, true, ""));
        assert_eq!(s.probe(loc).success_counts(10 * day + 1), (1, 1));
        // Forwards by 30 days: the window starts over.
        s.observe(&res(&k, 70 * day, false, ""));
        assert_eq!(s.probe(loc).success_counts(70 * day + 1), (0, 1));
    }

    #[test]
    fn a_steady_window_holds_about_what_it_keeps() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        let k = key("app0", "i0", "p0");
        // One result a second for ten minutes: 300 in the window.
        for i in 0..600 {
            s.observe(&res(&k, i * 1_000, true, "200 in 1ms"));
        }
        let loc = s.tracker().locate(&k).unwrap();
        let h = s.probe(loc);
        assert_eq!(h.success_counts(599_500), (300, 300));
        assert!(h.window.capacity() < 360, "{}", h.window.capacity());
    }

    #[test]
    fn messages_are_truncated() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        let long = "é".repeat(1_000);
        s.observe(&res(&key("app0", "i0", "p0"), 0, false, &long));
        assert!(s.last_error(0).unwrap().message.len() <= MESSAGE_MAX + 3);
    }

    #[test]
    fn probes_per_second() {
        let mut s = FleetState::new(fleet(1, 1, 1));
        let k = key("app0", "i0", "p0");
        for i in 0..50 {
            s.observe(&res(&k, 10_000 + i * 200, true, ""));
        }
        // 5 results/s during seconds 10..19.
        assert_eq!(s.probes_per_sec(20_000), 5.0);
        assert_eq!(s.probes_per_sec(40_000), 0.0);
    }

    /// 2,000 instances × 2 probes, every buffer full: well under 100 MB.
    #[test]
    fn two_thousand_instances_fit() {
        let mut s = FleetState::new(fleet(20, 100, 2));
        let keys: Vec<ProbeKey> = (0..20)
            .flat_map(|a| {
                (0..100).flat_map(move |i| {
                    (0..2).map(move |p| key(&format!("app{a}"), &format!("i{i}"), &format!("p{p}")))
                })
            })
            .collect();
        let msg = "connection refused by 10.0.0.1:8080 after 3 attempts";
        for round in 0..RATE_WINDOW_CAP as i64 {
            for k in &keys {
                s.observe(&res(k, round * 500, round % 3 != 0, msg));
            }
        }
        let bytes = s.approx_heap_bytes();
        assert!(bytes < 40 * 1024 * 1024, "{bytes} bytes");
    }
}
