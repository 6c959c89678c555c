//! What the hub counts of every probe result for `/metrics`: per (app,
//! instance, probe) a slot found by position, holding the last result,
//! a latency histogram and failures per error kind. A result costs a few
//! relaxed atomic additions (O(buckets) to find its bucket), no lock and
//! no allocation; [`ProbeCounters::read`] copies a slot when scraped.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::config::Fleet;
use crate::health::ProbeLoc;
use crate::model::{ErrorKind, ProbeResult};

/// The upper bounds of the latency histogram, in seconds: Prometheus'
/// default buckets (the `+Inf` bucket is every result).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// No result yet, a failure, a pass: [`Slot::last`].
const NONE: u8 = 0;
const FAILED: u8 = 1;
const PASSED: u8 = 2;

/// One probe on one instance.
#[derive(Debug, Default)]
struct Slot {
    last: AtomicU8,
    /// Results per bucket, not cumulative; the last is above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// The sum of latencies, in microseconds.
    sum_us: AtomicU64,
    failures: [AtomicU64; ErrorKind::ALL.len()],
}

/// A slot as read at one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeCounts {
    /// Whether the last result passed; `None` before the first.
    pub last_ok: Option<bool>,
    /// Cumulative counts per bound of [`BUCKETS`].
    pub buckets: [u64; BUCKETS.len()],
    /// Every result (the `+Inf` bucket).
    pub count: u64,
    /// The sum of latencies, in seconds.
    pub sum_seconds: f64,
    /// Failures per kind of [`ErrorKind::ALL`], in its order.
    pub failures: [u64; ErrorKind::ALL.len()],
}

/// Every probe's slot, in fleet order.
#[derive(Debug)]
pub struct ProbeCounters {
    /// Per app: the start of its slots, its instances and its probes
    /// (the stride of one instance).
    apps: Vec<(usize, usize, usize)>,
    slots: Vec<Slot>,
}

/// The bucket of a latency of `seconds`: the first bound it is within.
fn bucket(seconds: f64) -> usize {
    BUCKETS
        .iter()
        .position(|b| seconds <= *b)
        .unwrap_or(BUCKETS.len())
}

impl ProbeCounters {
    /// Empty slots for every probe of `fleet`.
    pub fn new(fleet: &Fleet) -> ProbeCounters {
        let mut apps = Vec::with_capacity(fleet.apps.len());
        let mut n = 0;
        for a in &fleet.apps {
            apps.push((n, a.instances.len(), a.probes.len()));
            n += a.instances.len() * a.probes.len();
        }
        let mut slots = Vec::with_capacity(n);
        slots.resize_with(n, Slot::default);
        ProbeCounters { apps, slots }
    }

    fn slot(&self, loc: ProbeLoc) -> Option<&Slot> {
        let (start, instances, probes) = *self.apps.get(loc.app)?;
        if loc.instance >= instances || loc.probe >= probes {
            return None;
        }
        self.slots.get(start + loc.instance * probes + loc.probe)
    }

    /// Counts result `r` of the probe at `loc`.
    pub fn record(&self, loc: ProbeLoc, r: &ProbeResult) {
        let Some(s) = self.slot(loc) else {
            return;
        };
        s.last
            .store(if r.ok { PASSED } else { FAILED }, Ordering::Relaxed);
        let ms = if r.latency_ms.is_finite() {
            r.latency_ms.max(0.0)
        } else {
            0.0
        };
        s.buckets[bucket(ms / 1000.0)].fetch_add(1, Ordering::Relaxed);
        s.sum_us
            .fetch_add((ms * 1000.0).round() as u64, Ordering::Relaxed);
        if let Some(kind) = r.error_kind
            && let Some(k) = ErrorKind::ALL.iter().position(|x| *x == kind)
        {
            s.failures[k].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The slot at `loc` now; empty counts when there is none. The count
    /// is the sum of the buckets, so the two always agree.
    pub fn read(&self, loc: ProbeLoc) -> ProbeCounts {
        let Some(s) = self.slot(loc) else {
            return ProbeCounts::default();
        };
        let mut c = ProbeCounts {
            last_ok: match s.last.load(Ordering::Relaxed) {
                NONE => None,
                x => Some(x == PASSED),
            },
            ..ProbeCounts::default()
        };
        let mut total = 0;
        for (i, b) in s.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            if let Some(slot) = c.buckets.get_mut(i) {
                *slot = total;
            }
        }
        c.count = total;
        c.sum_seconds = s.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        for (i, f) in s.failures.iter().enumerate() {
            c.failures[i] = f.load(Ordering::Relaxed);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProbeKey;

    fn fleet() -> Fleet {
        let text = "[[app]]\nname = \"web\"\n\
                    [[app.instance]]\nname = \"web-1\"\nport = 1\n\
                    [[app.instance]]\nname = \"web-2\"\nport = 2\n\
                    [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n\
                    [[app.probe]]\nname = \"http\"\ntype = \"http\"\npath = \"/\"\n";
        crate::config::parse(std::path::Path::new("t.toml"), text, &|_| None).unwrap()
    }

    fn result(ok: bool, latency_ms: f64, kind: Option<ErrorKind>) -> ProbeResult {
        ProbeResult {
            key: ProbeKey {
                app: "web".into(),
                instance: "web-2".into(),
                probe: "http".into(),
            },
            at_ms: 0,
            ok,
            latency_ms,
            code: None,
            error_kind: kind,
            message: String::new(),
        }
    }

    #[test]
    fn results_fill_cumulative_buckets_and_failures_by_kind() {
        let c = ProbeCounters::new(&fleet());
        let loc = ProbeLoc {
            app: 0,
            instance: 1,
            probe: 1,
        };
        assert_eq!(c.read(loc), ProbeCounts::default());
        c.record(loc, &result(true, 3.0, None));
        c.record(loc, &result(true, 10.0, None));
        c.record(loc, &result(false, 20_000.0, Some(ErrorKind::Timeout)));
        let got = c.read(loc);
        assert_eq!(got.last_ok, Some(false));
        assert_eq!(got.count, 3);
        assert_eq!(got.buckets, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
        assert!((got.sum_seconds - 20.013).abs() < 1e-9);
        assert_eq!(got.failures[0], 1);
        assert_eq!(got.failures.iter().sum::<u64>(), 1);
        // Other slots are untouched.
        let other = ProbeLoc {
            app: 0,
            instance: 1,
            probe: 0,
        };
        assert_eq!(c.read(other), ProbeCounts::default());
        // A place outside the fleet is ignored.
        let outside = ProbeLoc {
            app: 3,
            instance: 0,
            probe: 0,
        };
        c.record(outside, &result(true, 1.0, None));
        assert_eq!(c.read(outside), ProbeCounts::default());
    }

    #[test]
    fn a_latency_on_a_bound_is_within_it() {
        assert_eq!(bucket(0.005), 0);
        assert_eq!(bucket(0.0051), 1);
        assert_eq!(bucket(10.0), 10);
        assert_eq!(bucket(10.1), 11);
    }
}
