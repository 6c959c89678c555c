//! Where traffic should go, as a pure function of which side of each
//! instance is live and what the rollout is doing: the [`Routing`] that
//! `traffic::Traffic::apply` then makes true.

use crate::config::{App, Fleet};
use crate::driver::Side;
use crate::traffic::{Routing, Server};

/// The share of one instance's two sides: `None` is drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Weight of the main port.
    pub main: Option<u32>,
    /// Weight of the alt port.
    pub alt: Option<u32>,
}

impl Route {
    /// All traffic on `side`, none on the other.
    pub fn on(side: Side) -> Route {
        Route::weights(side, Some(1), None)
    }

    /// `live` gets `live_weight`, the other side `other_weight`.
    pub fn weights(live: Side, live_weight: Option<u32>, other_weight: Option<u32>) -> Route {
        match live {
            Side::Main => Route {
                main: live_weight,
                alt: other_weight,
            },
            Side::Alt => Route {
                main: other_weight,
                alt: live_weight,
            },
        }
    }

    /// The weight of `side`.
    pub fn get(&self, side: Side) -> Option<u32> {
        match side {
            Side::Main => self.main,
            Side::Alt => self.alt,
        }
    }

    /// Sets the weight of `side`.
    pub fn set(&mut self, side: Side, w: Option<u32>) {
        match side {
            Side::Main => self.main = w,
            Side::Alt => self.alt = w,
        }
    }
}

/// Every instance on its live side, equal weights.
pub fn steady(live: &[Side]) -> Vec<Route> {
    live.iter().map(|s| Route::on(*s)).collect()
}

/// Canary routing: `percent` of all traffic to the idle sides of `canary`,
/// the rest to every live side. Weights are whole numbers in 1..=256 whose
/// ratio gives the share.
pub fn canary(live: &[Side], canary: &[usize], percent: u32) -> Vec<Route> {
    let percent = percent.min(100);
    let c = canary.len() as u32;
    let l = live.len() as u32;
    let (mut cw, mut lw) = (percent * l, (100 - percent) * c);
    let g = gcd(cw, lw).max(1);
    (cw, lw) = (cw / g, lw / g);
    while cw.max(lw) > 256 {
        cw = cw.div_ceil(2);
        lw = lw.div_ceil(2);
    }
    live.iter()
        .enumerate()
        .map(|(i, side)| {
            let live_w = (lw > 0).then_some(lw);
            let idle_w = (canary.contains(&i) && cw > 0).then_some(cw);
            Route::weights(*side, live_w, idle_w)
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The routing of `app` for `routes` (one per instance).
pub fn to_routing(fleet: &Fleet, app: &App, routes: &[Route]) -> Routing {
    let mut servers = Vec::new();
    for side in [Side::Main, Side::Alt] {
        for (inst, route) in app.instances.iter().zip(routes) {
            let port = match side {
                Side::Main => inst.port,
                Side::Alt => match inst.alt_port {
                    Some(p) => p,
                    None => continue,
                },
            };
            let address = fleet
                .host(&inst.host)
                .map_or_else(|| inst.host.clone(), |h| h.address.clone());
            servers.push(Server {
                instance: inst.name.clone(),
                side,
                address,
                port,
                weight: route.get(side),
            });
        }
    }
    Routing { servers }
}

/// A routing in words for progress lines: each serving server with its
/// share of traffic, e.g. `web-1 50%, web-1-alt 50%, web-2 drained`.
pub fn describe(routing: &Routing) -> String {
    let total: u64 = routing
        .servers
        .iter()
        .filter_map(|s| s.weight)
        .map(u64::from)
        .sum();
    let mut parts = Vec::new();
    for s in &routing.servers {
        let name = s.haproxy_name();
        match s.weight {
            Some(w) if total > 0 => parts.push(format!("{name} {}%", u64::from(w) * 100 / total)),
            // An alt side that is not in use is not worth a word.
            None if s.side == Side::Alt => {}
            _ => parts.push(format!("{name} drained")),
        }
    }
    parts.join(", ")
}

/// `routes` with `failing` (instance, side) taken out of traffic, when it
/// takes traffic and some other slot still would. The only slot that
/// serves stays: with none at all, every request would fail too. `None`
/// when nothing changes.
pub fn without(routes: &[Route], failing: (usize, Side)) -> Option<Vec<Route>> {
    let (i, side) = failing;
    routes.get(i)?.get(side)?;
    let mut out = routes.to_vec();
    out[i].set(side, None);
    let serving = out.iter().any(|r| r.main.is_some() || r.alt.is_some());
    serving.then_some(out)
}

/// A slot taken out of traffic because its probes fail, and what stood in
/// for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rested {
    /// The slot (instance, side).
    pub slot: (usize, Side),
    /// The weight it had.
    pub weight: u32,
    /// The other side of the instance, still running the old release,
    /// that took its weight meanwhile.
    pub standby: Option<Side>,
    /// It did not fail itself: another instance of its release did.
    pub suspect: bool,
}

/// `routes` with each of `failing` (instance, side) out of traffic, and
/// the slots taken out. Where `standby[instance]` names the instance's
/// other side, still running the old release (surge, blue-green), that
/// side takes the failing one's weight: users go back to the old release
/// there. Else the slot leaves as [`without`] takes it out (the last slot
/// that serves stays: with none, every request would fail too).
///
/// `suspects` are slots of the same release that did not fail themselves:
/// each hands its weight to its standby too, since the old release beside
/// it costs users nothing, but never leaves without one.
pub fn rest_failing(
    routes: &[Route],
    failing: &[(usize, Side)],
    suspects: &[(usize, Side)],
    standby: &[Option<Side>],
) -> (Vec<Route>, Vec<Rested>) {
    let mut out = routes.to_vec();
    let mut rested = Vec::new();
    let slots = (failing.iter().map(|s| (*s, false))).chain(
        (suspects.iter())
            .filter(|s| !failing.contains(s))
            .map(|s| (*s, true)),
    );
    for ((i, side), suspect) in slots {
        let Some(weight) = out.get(i).and_then(|r| r.get(side)) else {
            continue;
        };
        // A standby that serves already needs no weight of it.
        let spare = (standby.get(i).copied().flatten())
            .filter(|other| *other != side && out[i].get(*other).is_none());
        match spare {
            Some(other) => {
                out[i].set(side, None);
                out[i].set(other, Some(weight));
            }
            None if suspect => continue,
            None => match without(&out, (i, side)) {
                Some(next) => out = next,
                None => continue,
            },
        }
        rested.push(Rested {
            slot: (i, side),
            weight,
            standby: spare,
            suspect,
        });
    }
    (out, rested)
}

/// `routes` with each of `rested` back in traffic with the weight it had,
/// and the standby that stood in for it out again.
pub fn readmit(routes: &[Route], rested: &[Rested]) -> Vec<Route> {
    let mut out = routes.to_vec();
    for r in rested {
        let (i, side) = r.slot;
        let Some(route) = out.get_mut(i) else {
            continue;
        };
        if route.get(side).is_none() {
            route.set(side, Some(r.weight));
        }
        if let Some(other) = r.standby {
            route.set(other, None);
        }
    }
    out
}

/// What a rollback knows of one live slot (an instance's live side) when
/// it decides who serves while it restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// It takes traffic now.
    pub serving: bool,
    /// It still runs the release being rolled back: replaced by the
    /// rollout and not restored yet.
    pub failed_release: bool,
    /// A probe of it failed since it started the failed release.
    pub seen_failing: bool,
    /// Its last probe passed.
    pub passed: bool,
    /// When it started the failed release, in the rollout's order (larger
    /// is later); `None` when the rollout did not start it.
    pub started: Option<usize>,
}

impl Standing {
    /// It serves and does not run the failed release: the old release, or
    /// one already restored.
    fn serves_well(&self) -> bool {
        self.serving && !self.failed_release
    }

    /// It may serve alone while the rest is restored: it runs the failed
    /// release but was never seen failing, and it serves now or passed its
    /// last probe (a slot that has not answered yet is no stand-in).
    fn may_stand_in(&self) -> bool {
        self.failed_release && !self.seen_failing && (self.serving || self.passed)
    }
}

/// The slot that serves alone while a rollback restores, when nothing that
/// serves runs a good release: of the slots that may stand in, the one that
/// started the failed release last (it has run it the shortest, so it is
/// the likeliest to still answer). `None` when something good serves, or
/// no slot may stand in (every one was seen failing or never answered).
pub fn stand_in(slots: &[Standing]) -> Option<usize> {
    if slots.iter().any(Standing::serves_well) {
        return None;
    }
    (0..slots.len())
        .filter(|&k| slots[k].may_stand_in())
        .max_by_key(|&k| (slots[k].started, slots[k].serving))
}

/// Which slots take traffic while `restoring` are restored: every slot that
/// serves well and is not being restored, and then none of the failed
/// release; else the [`stand_in`] alone (brought into traffic if it was
/// out); else, with nothing better, what serves now and is not being
/// restored (a slot seen failing may still answer some requests, and a
/// balancer with no server answers none).
pub fn while_restoring(slots: &[Standing], restoring: &[usize]) -> Vec<bool> {
    let rest: Vec<Standing> = (0..slots.len())
        .map(|k| {
            let mut s = slots[k];
            if restoring.contains(&k) {
                s.serving = false;
                s.passed = false;
            }
            s
        })
        .collect();
    if rest.iter().any(Standing::serves_well) {
        return rest.iter().map(Standing::serves_well).collect();
    }
    match stand_in(&rest) {
        Some(k) => (0..rest.len()).map(|j| j == k).collect(),
        None => rest.iter().map(|s| s.serving).collect(),
    }
}

/// The slot of a restore `group` (indices into `slots`) that is held back
/// and serves while the rest of the group is restored: the [`stand_in`],
/// when it is in the group and the group has more than it. `None`: restore
/// the whole group at once.
pub fn held_back(slots: &[Standing], group: &[usize]) -> Option<usize> {
    if group.len() < 2 {
        return None;
    }
    stand_in(slots).filter(|k| group.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot of the failed release, started `started`-th.
    fn failed(started: usize, serving: bool, seen_failing: bool, passed: bool) -> Standing {
        Standing {
            serving,
            failed_release: true,
            seen_failing,
            passed,
            started: Some(started),
        }
    }

    /// A slot that runs a good release (old or restored).
    fn good(serving: bool) -> Standing {
        Standing {
            serving,
            passed: serving,
            ..Standing::default()
        }
    }

    #[test]
    fn with_every_slot_on_the_failed_release_the_last_started_serves_alone() {
        // d1 and d2 seen failing and drained, d3 serving, d4 started last
        // and answering: d4 stands in, even though it was drained.
        let slots = [
            failed(0, false, true, false),
            failed(1, false, true, false),
            failed(2, true, false, true),
            failed(3, false, false, true),
        ];
        assert_eq!(stand_in(&slots), Some(3));
        assert_eq!(held_back(&slots, &[3, 2, 1, 0]), Some(3));
        assert_eq!(
            while_restoring(&slots, &[2, 1, 0]),
            vec![false, false, false, true]
        );
        // Once d4 is restored too, nothing of the failed release stands in.
        assert_eq!(while_restoring(&slots, &[3, 2, 1, 0]), vec![false; 4]);
    }

    #[test]
    fn a_last_started_slot_still_in_its_gate_is_no_stand_in_until_it_answers() {
        // d4 started last but has not passed a probe yet (and does not
        // serve): d3 stands in.
        let mut slots = [
            failed(0, true, false, true),
            failed(1, true, false, true),
            failed(2, true, false, true),
            failed(3, false, false, false),
        ];
        assert_eq!(stand_in(&slots), Some(2));
        assert_eq!(held_back(&slots, &[3, 2, 1, 0]), Some(2));
        assert_eq!(
            while_restoring(&slots, &[3, 1, 0]),
            vec![false, false, true, false]
        );
        // Its first probe passed: now it is the better choice.
        slots[3].passed = true;
        assert_eq!(stand_in(&slots), Some(3));
    }

    #[test]
    fn a_slot_seen_failing_never_stands_in() {
        let slots = [
            failed(0, true, true, false),
            failed(1, true, false, true),
            failed(2, true, true, true),
        ];
        // The last started was seen failing once (it passed since): d2.
        assert_eq!(stand_in(&slots), Some(1));
        assert_eq!(while_restoring(&slots, &[2, 0]), vec![false, true, false]);
    }

    #[test]
    fn once_something_good_serves_the_failed_release_leaves() {
        // Some restored (d1 serves the good release again): every slot of
        // the failed release leaves, none is held back.
        let slots = [
            good(true),
            failed(1, true, false, true),
            failed(2, true, false, true),
            good(false),
        ];
        assert_eq!(stand_in(&slots), None);
        assert_eq!(held_back(&slots, &[2, 1]), None);
        assert_eq!(
            while_restoring(&slots, &[2]),
            vec![true, false, false, false]
        );
        // An instance the rollout never replaced serves: the same.
        let slots = [good(true), failed(0, true, false, true)];
        assert_eq!(while_restoring(&slots, &[]), vec![true, false]);
        // The only good slot is itself being restored: it does not count.
        let slots = [
            good(true),
            failed(0, true, false, true),
            failed(1, true, false, true),
        ];
        assert_eq!(while_restoring(&slots, &[0, 1]), vec![false, false, true]);
    }

    #[test]
    fn with_none_serving_and_none_answering_nothing_is_held_back() {
        let slots = [
            failed(0, false, true, false),
            failed(1, false, false, false),
        ];
        assert_eq!(stand_in(&slots), None);
        assert_eq!(held_back(&slots, &[1, 0]), None);
        assert_eq!(while_restoring(&slots, &[1, 0]), vec![false, false]);
        // Nothing better than a slot seen failing that still serves: it
        // keeps serving while the others are restored.
        let slots = [failed(0, true, true, false), failed(1, false, true, false)];
        assert_eq!(while_restoring(&slots, &[1]), vec![true, false]);
        // A group of one is restored at once.
        let slots = [failed(0, true, false, true)];
        assert_eq!(held_back(&slots, &[0]), None);
    }

    #[test]
    fn a_failing_slot_leaves_traffic_unless_it_is_the_last() {
        let routes = steady(&[Side::Main, Side::Main, Side::Alt]);
        let out = without(&routes, (0, Side::Main)).unwrap();
        assert_eq!(
            out[0],
            Route {
                main: None,
                alt: None
            }
        );
        assert_eq!(out[1..], routes[1..]);
        // Not in traffic: nothing to change.
        assert_eq!(without(&out, (0, Side::Main)), None);
        assert_eq!(without(&routes, (2, Side::Main)), None);
        assert_eq!(without(&routes, (7, Side::Main)), None);
        // The last serving slot stays.
        let one = vec![
            Route::on(Side::Alt),
            Route {
                main: None,
                alt: None,
            },
        ];
        assert_eq!(without(&one, (0, Side::Alt)), None);
    }

    #[test]
    fn failing_slots_rest_while_something_else_serves() {
        let mut routes = steady(&[Side::Main, Side::Main, Side::Main]);
        routes[1].main = Some(3);
        let none = [None; 3];
        let (out, rested) = rest_failing(&routes, &[(1, Side::Main), (2, Side::Alt)], &[], &none);
        assert_eq!(
            rested,
            vec![Rested {
                slot: (1, Side::Main),
                weight: 3,
                standby: None,
                suspect: false,
            }]
        );
        assert_eq!(out[1].main, None);
        assert_eq!((out[0], out[2]), (routes[0], routes[2]));
        assert_eq!(readmit(&out, &rested), routes);
        // Every slot failing: the last one that serves stays.
        let all = [(0, Side::Main), (1, Side::Main), (2, Side::Main)];
        let (out, rested) = rest_failing(&routes, &all, &[], &none);
        assert_eq!(rested.len(), 2);
        assert_eq!(out[2].main, Some(1));
        // A suspect without a standby keeps serving.
        let (out, rested) = rest_failing(&routes, &all[..1], &all[1..], &none);
        assert_eq!(rested.len(), 1);
        assert_eq!((out[1], out[2]), (routes[1], routes[2]));
    }

    #[test]
    fn a_failing_new_side_hands_its_traffic_to_the_old_side_beside_it() {
        // Surge: every instance switched to alt, the old main sides still
        // run. All four fail: each main side takes its instance's share.
        let routes = steady(&[Side::Alt; 4]);
        let standby = [Some(Side::Main); 4];
        let failing: Vec<_> = (0..4).map(|i| (i, Side::Alt)).collect();
        let (out, rested) = rest_failing(&routes, &failing, &[], &standby);
        assert_eq!(out, steady(&[Side::Main; 4]));
        assert_eq!(rested.len(), 4);
        assert!(rested.iter().all(|r| r.standby == Some(Side::Main)));
        // Its gate passed after all: the new side is back, the old one out.
        assert_eq!(readmit(&out, &rested), routes);
        // One fails: the other three are suspects and go back to their old
        // sides as well; a suspect is told apart.
        let (out, rested) = rest_failing(&routes, &failing[..1], &failing[1..], &standby);
        assert_eq!(out, steady(&[Side::Main; 4]));
        assert_eq!(rested.iter().filter(|r| r.suspect).count(), 3);
        assert!(!rested[0].suspect);
    }

    #[test]
    fn routing_in_words() {
        let server = |instance: &str, side, weight| Server {
            instance: instance.into(),
            side,
            address: "127.0.0.1".into(),
            port: 1,
            weight,
        };
        let r = Routing {
            servers: vec![
                server("web-1", Side::Main, Some(1)),
                server("web-2", Side::Main, None),
                server("web-1", Side::Alt, Some(1)),
                server("web-2", Side::Alt, None),
            ],
        };
        assert_eq!(describe(&r), "web-1 50%, web-2 drained, web-1-alt 50%");
    }

    #[test]
    fn canary_shares() {
        let live = [Side::Main; 3];
        let r = canary(&live, &[0], 10);
        // canary 10 * 3 = 30, live 90 * 1 = 90 → 3:9 → 1 canary of 3 vs 9 × 3.
        assert_eq!(
            r[0],
            Route {
                main: Some(3),
                alt: Some(1)
            }
        );
        assert_eq!(
            r[1],
            Route {
                main: Some(3),
                alt: None
            }
        );
        let share: f64 = 1.0 / (1.0 + 3.0 * 3.0);
        assert!((share - 0.10).abs() < 1e-9);
        let r = canary(&live, &[0], 100);
        assert_eq!(
            r[0],
            Route {
                main: None,
                alt: Some(1)
            }
        );
        assert_eq!(
            r[2],
            Route {
                main: None,
                alt: None
            }
        );
        let r = canary(&live, &[0], 0);
        assert_eq!(
            r[0],
            Route {
                main: Some(1),
                alt: None
            }
        );
    }

    #[test]
    fn steady_follows_live_side() {
        let r = steady(&[Side::Main, Side::Alt]);
        assert_eq!(
            r[0],
            Route {
                main: Some(1),
                alt: None
            }
        );
        assert_eq!(
            r[1],
            Route {
                main: None,
                alt: Some(1)
            }
        );
    }

    #[test]
    fn weights_stay_small() {
        let live = vec![Side::Main; 97];
        for p in [1, 33, 50, 99] {
            for route in canary(&live, &[0, 1, 2], p) {
                for w in [route.main, route.alt].into_iter().flatten() {
                    assert!((1..=256).contains(&w), "{p}: {w}");
                }
            }
        }
    }
}
