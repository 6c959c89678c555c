//! When an outage of an app begins, widens and ends: a pure function of
//! the app's verdicts over time. One outage is one incident: the instances
//! of an app that fail together belong to its one incident, and a
//! flapping instance keeps the incident open instead of opening one per
//! flap, because an incident is resolved only once every instance has
//! been healthy for the app's `resolve_after` without a break.
//!
//! The prober calls [`AppIncident::step`] about once a second per app,
//! records what it says, and then tells the state what was recorded
//! ([`AppIncident::opened`], [`AppIncident::widened`],
//! [`AppIncident::resolved`]); a write that fails changes nothing, so the
//! same step is asked for again next time.

use std::collections::BTreeSet;

use crate::model::Verdict;

/// An (instance, probe) position within an app.
pub type Pair = (usize, usize);

/// What to record for an app now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentStep {
    /// Nothing.
    Nothing,
    /// Open an incident for these failing probes.
    Open(Vec<Pair>),
    /// The open incident `id` gets these probes that failed since.
    Widen {
        /// The incident.
        id: i64,
        /// The probes it does not name yet.
        pairs: Vec<Pair>,
    },
    /// Resolve incident `id`: every instance healthy since `healthy_ms`.
    Resolve {
        /// The incident.
        id: i64,
        /// Since when every instance is healthy.
        healthy_ms: i64,
    },
}

/// The prober's knowledge of one app's incident.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppIncident {
    open: Option<i64>,
    named: BTreeSet<Pair>,
    healthy_since: Option<i64>,
}

impl AppIncident {
    /// The open incident's id, if one is open.
    pub fn open(&self) -> Option<i64> {
        self.open
    }

    /// What to record at `now_ms`, given each instance's verdict (config
    /// order), the probes that failed an instance (`failing`: unhealthy on
    /// an unhealthy instance, or that turned one unhealthy since the last
    /// step) and whether an instance turned unhealthy since the last step
    /// (`turned`: it may be healthy again already, but it failed).
    pub fn step(
        &mut self,
        instances: &[Verdict],
        failing: &[Pair],
        turned: bool,
        now_ms: i64,
        resolve_after_ms: i64,
    ) -> IncidentStep {
        let unhealthy = turned || instances.contains(&Verdict::Unhealthy);
        let Some(id) = self.open else {
            if unhealthy && !failing.is_empty() {
                return IncidentStep::Open(failing.to_vec());
            }
            return IncidentStep::Nothing;
        };
        let all_healthy =
            !turned && !instances.is_empty() && instances.iter().all(|v| *v == Verdict::Healthy);
        if !all_healthy {
            self.healthy_since = None;
            let pairs: Vec<Pair> = failing
                .iter()
                .filter(|p| !self.named.contains(p))
                .copied()
                .collect();
            if pairs.is_empty() {
                return IncidentStep::Nothing;
            }
            return IncidentStep::Widen { id, pairs };
        }
        let since = *self.healthy_since.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) >= resolve_after_ms {
            return IncidentStep::Resolve {
                id,
                healthy_ms: since,
            };
        }
        IncidentStep::Nothing
    }

    /// Incident `id` naming `pairs` was recorded as open (by this process
    /// or, read from the store, by another).
    pub fn opened(&mut self, id: i64, pairs: &[Pair]) {
        if self.open != Some(id) {
            self.open = Some(id);
            self.named.clear();
            self.healthy_since = None;
        }
        self.named.extend(pairs.iter().copied());
    }

    /// The open incident now names `pairs` too.
    pub fn widened(&mut self, pairs: &[Pair]) {
        self.named.extend(pairs.iter().copied());
    }

    /// The open incident was resolved (here or elsewhere).
    pub fn resolved(&mut self) {
        *self = AppIncident::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Healthy as H, Unhealthy as U, Unknown as N};

    const AFTER: i64 = 60_000;

    #[test]
    fn an_outage_opens_one_incident_that_widens_and_resolves_after_a_healthy_minute() {
        let mut a = AppIncident::default();
        assert_eq!(a.step(&[H, H], &[], false, 0, AFTER), IncidentStep::Nothing);
        assert_eq!(
            a.step(&[U, H], &[(0, 0)], false, 1_000, AFTER),
            IncidentStep::Open(vec![(0, 0)])
        );
        // Not recorded yet: asked again.
        assert_eq!(
            a.step(&[U, H], &[(0, 0)], false, 2_000, AFTER),
            IncidentStep::Open(vec![(0, 0)])
        );
        a.opened(7, &[(0, 0)]);
        assert_eq!(
            a.step(&[U, H], &[(0, 0)], false, 3_000, AFTER),
            IncidentStep::Nothing
        );
        // The other instance fails too: the same incident names it.
        assert_eq!(
            a.step(&[U, U], &[(0, 0), (1, 0)], false, 4_000, AFTER),
            IncidentStep::Widen {
                id: 7,
                pairs: vec![(1, 0)]
            }
        );
        a.widened(&[(1, 0)]);
        assert_eq!(
            a.step(&[H, H], &[], false, 10_000, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H, H], &[], false, 69_999, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H, H], &[], false, 70_000, AFTER),
            IncidentStep::Resolve {
                id: 7,
                healthy_ms: 10_000
            }
        );
        a.resolved();
        assert_eq!(a.open(), None);
        // The next failure is a new outage.
        assert_eq!(
            a.step(&[U, H], &[(0, 0)], false, 80_000, AFTER),
            IncidentStep::Open(vec![(0, 0)])
        );
    }

    #[test]
    fn a_flapping_instance_keeps_one_incident_open() {
        let mut a = AppIncident::default();
        a.opened(1, &[(0, 0)]);
        let mut t = 0;
        for _ in 0..10 {
            // Healthy for 30 s, then failing again: never a healthy minute.
            for v in [H, H, H] {
                assert_eq!(a.step(&[v], &[], false, t, AFTER), IncidentStep::Nothing);
                t += 10_000;
            }
            assert_eq!(
                a.step(&[U], &[(0, 0)], false, t, AFTER),
                IncidentStep::Nothing
            );
            t += 10_000;
        }
        assert_eq!(a.open(), Some(1));
    }

    #[test]
    fn a_failure_seen_only_between_two_looks_still_counts() {
        let mut a = AppIncident::default();
        // Turned unhealthy and back before the step looked: it opens.
        assert_eq!(
            a.step(&[H], &[(0, 0)], true, 1_000, AFTER),
            IncidentStep::Open(vec![(0, 0)])
        );
        a.opened(9, &[(0, 0)]);
        assert_eq!(
            a.step(&[H], &[], false, 2_000, AFTER),
            IncidentStep::Nothing
        );
        // A flap between looks restarts the healthy minute.
        assert_eq!(
            a.step(&[H], &[(0, 0)], true, 50_000, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H], &[], false, 61_000, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H], &[], false, 111_000, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H], &[], false, 121_000, AFTER),
            IncidentStep::Resolve {
                id: 9,
                healthy_ms: 61_000
            }
        );
    }

    #[test]
    fn an_instance_not_known_healthy_holds_resolution() {
        let mut a = AppIncident::default();
        a.opened(3, &[(0, 0)]);
        assert_eq!(a.step(&[H, N], &[], false, 0, AFTER), IncidentStep::Nothing);
        assert_eq!(
            a.step(&[H, N], &[], false, 120_000, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H, H], &[], false, 130_000, AFTER),
            IncidentStep::Nothing
        );
        assert_eq!(
            a.step(&[H, H], &[], false, 190_000, AFTER),
            IncidentStep::Resolve {
                id: 3,
                healthy_ms: 130_000
            }
        );
        // With resolve_after 0 the first healthy look resolves.
        let mut b = AppIncident::default();
        b.opened(4, &[]);
        assert_eq!(
            b.step(&[H], &[], false, 5, 0),
            IncidentStep::Resolve {
                id: 4,
                healthy_ms: 5
            }
        );
    }
}
