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

#[cfg(test)]
mod tests {
    use super::*;

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
