//! Resting: a slot of the new release whose last probe failed leaves
//! traffic while its gate goes on judging it, when something else serves
//! (its old side beside it, still running the old release, or another
//! instance), and comes back when its gate passes. Users stop meeting its
//! errors as soon as they are seen, not only once the gate's thresholds
//! fail it. While one slot fails, the release is suspect: every other slot
//! of it with its old release running beside it (surge, blue-green) hands
//! its share to that old release too, and comes back once none fails and a
//! round of its own passed since. The same holds while a rollback waits
//! for a person (armed or held): what still serves of the failed release
//! is probed meanwhile.
//! Which slots move is [`routing::rest_failing`]'s and
//! [`routing::readmit`]'s call.

use tokio::sync::watch;

use super::{Engine, Failure, OPEN_WATCH};
use crate::driver::Side;
use crate::rollout::decide::Observation;
use crate::rollout::gate::{self, GateMode, GateSlot};
use crate::rollout::routing;

impl Engine {
    /// After a round of the gate of `slots` (the new release's): each
    /// slot whose last probe failed leaves traffic while something else
    /// serves, and while one does, every other slot of the release hands
    /// its share to the old release still running beside it, if any
    /// ([`routing::rest_failing`]): the gate goes on judging them all, and
    /// users stop meeting the release's errors meanwhile. Once no slot of
    /// it fails, those that did not fail themselves come back as soon as a
    /// round of their own passed since they left; one that failed comes
    /// back when its gate passes ([`Self::readmit`]).
    pub(super) async fn follow_probes(&mut self, slots: &[GateSlot]) -> Result<(), Failure> {
        let failing: Vec<GateSlot> = (slots.iter().copied())
            .filter(|&slot| self.seen.of(slot).failing())
            .collect();
        if !failing.is_empty() {
            return self.rest(&failing, slots).await;
        }
        let back: Vec<GateSlot> = (self.resting.iter())
            .filter(|(r, since)| {
                let seen = self.seen.of(r.slot);
                r.suspect && slots.contains(&r.slot) && seen.rounds > *since && seen.passed
            })
            .map(|(r, _)| r.slot)
            .collect();
        self.readmit(&back).await
    }

    /// Takes every slot seen failing since its release started out of
    /// traffic while something else serves: before a rollback waits for a
    /// person (armed, then maybe held). A balancer that refuses leaves
    /// things as they are; the rollback puts traffic right when it runs.
    pub(super) async fn rest_seen_failing(&mut self) {
        let failing: Vec<GateSlot> = (0..self.routes.len())
            .flat_map(|i| [(i, Side::Main), (i, Side::Alt)])
            .filter(|&slot| self.seen.of(slot).failed)
            .collect();
        // The release failed: all of it is suspect.
        let release = self.replaced_slots();
        if let Err(f) = self.rest(&failing, &release).await {
            tracing::warn!("failing instances stay in traffic: {}", f.reason);
        }
    }

    /// Takes `failing` out of traffic, and the rest of `release` onto the
    /// old sides beside them, as [`routing::rest_failing`] says.
    async fn rest(&mut self, failing: &[GateSlot], release: &[GateSlot]) -> Result<(), Failure> {
        let standby = self.standby();
        let (routes, rested) = routing::rest_failing(&self.routes, failing, release, &standby);
        if rested.is_empty() {
            return Ok(());
        }
        self.apply_routes(routes).await?;
        self.rested(rested);
        Ok(())
    }

    /// Remembers `rested`, each with the rounds seen of it so far.
    pub(super) fn rested(&mut self, rested: Vec<routing::Rested>) {
        for r in rested {
            let since = self.seen.of(r.slot).rounds;
            self.resting.push((r, since));
        }
    }

    /// Per instance, its other side when that still runs the release the
    /// rollout started from (it was live at the start and this rollout
    /// did not replace it: surge and blue-green keep it running until the
    /// last stage retires it), so it may take a failing side's traffic.
    pub(super) fn standby(&self) -> Vec<Option<Side>> {
        let app = self.app();
        (0..self.live.len())
            .map(|i| {
                let other = self.live[i].other();
                let replaced = self.started_at((i, other)).is_some();
                let has_side = other == Side::Main || app.instances[i].alt_port.is_some();
                (has_side && !self.plan.install && other == self.orig_live[i] && !replaced)
                    .then_some(other)
            })
            .collect()
    }

    /// Puts every resting slot back: the rollout ends without a rollback
    /// (deployed, or failed with `auto_rollback = "off"`, which only
    /// reports), so traffic is left as the rollout planned it and as the
    /// history records it. A balancer that refuses is reported.
    pub(super) async fn readmit_all(&mut self) {
        let all: Vec<GateSlot> = self.resting.iter().map(|(r, _)| r.slot).collect();
        if let Err(f) = self.readmit(&all).await {
            tracing::warn!("resting instances stay out of traffic: {}", f.reason);
        }
    }

    /// Puts back into traffic, with the weight it had, each of `slots`
    /// that [`Self::follow_probes`] took out; what stood in for it leaves.
    pub(super) async fn readmit(&mut self, slots: &[GateSlot]) -> Result<(), Failure> {
        let (back, resting): (Vec<_>, Vec<_>) =
            (self.resting.iter().copied()).partition(|(r, _)| slots.contains(&r.slot));
        if back.is_empty() {
            return Ok(());
        }
        let back: Vec<routing::Rested> = back.into_iter().map(|(r, _)| r).collect();
        self.apply_routes(routing::readmit(&self.routes, &back))
            .await?;
        self.resting = resting;
        Ok(())
    }

    /// [`Self::next_command`] while a rollback waits for a person (armed or
    /// held): the slots of the failed release that still serve are probed
    /// meanwhile, and each whose probe fails leaves traffic while something
    /// else serves ([`Self::follow_probes`]).
    pub(super) async fn wait_watching(
        &mut self,
        until: Option<tokio::time::Instant>,
    ) -> Observation {
        let mut again = false;
        loop {
            // A watch that ended waits a probe interval before the next:
            // probing never runs back to back.
            if again {
                let interval = tokio::time::sleep(self.app().health.interval);
                tokio::select! {
                    seen_now = self.next_command(until) => return seen_now,
                    () = interval => {}
                }
            }
            again = true;
            let mut slots = self.replaced_slots();
            slots.retain(|(i, side)| self.routes.get(*i).is_some_and(|r| r.get(*side).is_some()));
            if slots.is_empty() {
                return self.next_command(until).await;
            }
            let (fleet, prober, seen) =
                (self.fleet.clone(), self.prober.clone(), self.seen.clone());
            // Never cancelled: the wait ends it by dropping it.
            let (_keep, never) = watch::channel(false);
            let length = OPEN_WATCH;
            let app = &fleet.apps[self.app];
            let sides = gate::Sides::alone(&slots);
            let mode = GateMode::Monitor { length };
            let gate = gate::run(&prober, &fleet, app, sides, mode, never, &seen);
            tokio::pin!(gate);
            loop {
                tokio::select! {
                    seen_now = self.next_command(until) => return seen_now,
                    () = seen.round() => {
                        if let Err(f) = self.follow_probes(&slots).await {
                            tracing::warn!("failing instances stay in traffic: {}", f.reason);
                        }
                    }
                    // A failed watch only says what is known: watch again
                    // what still serves.
                    _ = &mut gate => break,
                }
            }
        }
    }
}
