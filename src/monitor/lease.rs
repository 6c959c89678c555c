//! The prober's lease: of all the consoles, agents and demos open on one
//! history, one probes the fleet and the others read what it wrote. This
//! file says who a process is as a holder, when a holder counts as gone,
//! and runs the loop that takes, keeps and hands over the role.
//!
//! Every [`LEASE_EVERY`] the holder renews its lease; any other process
//! tries to take it, and gets it when it is free or its holder is gone:
//! on this host, when the holder's process is gone (at once, after a
//! `kill -9`); anywhere, when its heartbeat is older than [`LEASE_STALE`]
//! (a host that died, a console suspended with Ctrl-Z). A holder that
//! finds its lease taken, or cannot renew it for [`LEASE_STALE`], stops
//! probing and reads instead. A holder that stops gives the lease up, so
//! the next process takes it within a second. While it holds the lease, a
//! process also runs the notifier (`notify::sender`), the live event
//! stream of `websocket` receivers (`notify::stream`) and, with
//! `[metrics] listen`, the `/metrics` listener (`metrics::serve`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::probing::Probing;
use super::reader;
use super::{Ctx, SharedStore, with_store};
use crate::config::Fleet;
use crate::host::{hostname, pid_alive, token, whoami};
use crate::metrics;
use crate::model::now_ms;
use crate::notify::{Notifier, Stream};
use crate::shutdown::Shutdown;
use crate::state::{Role, describe_holder};
use crate::store::{LeaseHolder, LeaseTake, Location};

/// The role the lease is for.
pub const PROBER: &str = "prober";

/// How often the holder renews and the others try to take the lease.
pub const LEASE_EVERY: Duration = Duration::from_secs(1);

/// A lease whose heartbeat is older than this is taken over.
pub const LEASE_STALE: Duration = Duration::from_secs(5);

/// What a process that holds or asks for the lease is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderKind {
    /// The console.
    Console,
    /// `rollguard agent`.
    Agent,
    /// `rollguard demo`.
    Demo,
}

impl HolderKind {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderKind::Console => "console",
            HolderKind::Agent => "agent",
            HolderKind::Demo => "demo",
        }
    }
}

/// This process as a holder of kind `kind`, probing `fleet`.
pub fn me(kind: HolderKind, fleet: &Fleet) -> LeaseHolder {
    let now = now_ms();
    LeaseHolder {
        kind: kind.as_str().into(),
        user: whoami(),
        host: hostname(),
        pid: std::process::id(),
        token: token(),
        fleet: fingerprint(fleet),
        acquired_ms: now,
        heartbeat_ms: now,
    }
}

/// A fingerprint of what probing `fleet` means: every app, instance (host
/// and port) and probe, by name, in order; 16 hex digits (FNV-1a, stable
/// across builds). Two processes with the same fingerprint probe the same
/// things.
pub fn fingerprint(fleet: &Fleet) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for a in &fleet.apps {
        eat(&a.name);
        for i in &a.instances {
            eat(&i.name);
            eat(&i.host);
            eat(&i.port.to_string());
        }
        for p in &a.probes {
            eat(&p.name);
        }
    }
    format!("{h:016x}")
}

/// Whether holder `h` is gone at `now_ms`, seen from `this_host`: its
/// heartbeat is older than [`LEASE_STALE`], or it ran on this host and
/// its process is gone. Pure.
pub fn gone(h: &LeaseHolder, now_ms: i64, this_host: &str, alive: impl Fn(i64) -> bool) -> bool {
    let age = now_ms.saturating_sub(h.heartbeat_ms);
    age > LEASE_STALE.as_millis() as i64 || (h.host == this_host && !alive(i64::from(h.pid)))
}

/// What a round of the lease loop found.
enum Found {
    /// This process holds the lease (after taking it over from the one
    /// named, if any).
    Held(Option<LeaseHolder>),
    /// Another process does.
    HeldBy(LeaseHolder),
    /// The lease could not be read or written.
    Failed(String),
}

/// Takes or renews the lease for `me`.
async fn round(db: &Location, store: &SharedStore, me: &LeaseHolder, held: bool) -> Found {
    let (db, store, me) = (db.clone(), store.clone(), me.clone());
    let here = hostname();
    let done = tokio::task::spawn_blocking(move || {
        with_store(&db, &store, |s| {
            // The store's clock: bastions judge each other's heartbeats
            // by the server's, never by their own.
            let now = s.clock_ms().map_err(|e| e.message())?;
            if held
                && s.renew_lease(PROBER, &me.token, now)
                    .map_err(|e| e.message())?
            {
                return Ok(Found::Held(None));
            }
            let took = s
                .take_lease(PROBER, &me, now, |h| gone(h, now, &here, pid_alive))
                .map_err(|e| e.message())?;
            Ok(match took {
                LeaseTake::Held { took_over } => Found::Held(took_over),
                LeaseTake::HeldBy(h) => Found::HeldBy(h),
            })
        })
    })
    .await;
    match done {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => Found::Failed(e),
        Err(e) => Found::Failed(e.to_string()),
    }
}

/// Runs until `shutdown`: reads the recent past from the history, then
/// every [`LEASE_EVERY`] takes or renews the lease, probing while it holds
/// it and reading what the holder writes otherwise; publishes the role on
/// `role`. At the end stops probing and gives the lease up.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    me: LeaseHolder,
    role: watch::Sender<Role>,
    mut shutdown: Shutdown,
) {
    let store: SharedStore = Arc::default();
    let mut follow = reader::Follow::preload(&ctx, &store).await;
    let mut probing: Option<Probing> = None;
    // The holder also sends the history's notifications.
    let mut duties = Duties::default();
    let mut answers = Answers {
        at_ms: now_ms(),
        warned: false,
    };
    let mut tick = tokio::time::interval(LEASE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !shutdown.tick(&mut tick).await {
            break;
        }
        let held = matches!(*role.borrow(), Role::Prober);
        let found = round(&ctx.db, &store, &me, held).await;
        let next = answers.next_role(found, held, &me, &role.borrow());
        duties.follow(&ctx, &next).await;
        match (next.probes(), probing.is_some()) {
            (true, false) => probing = Some(Probing::start(ctx.clone())),
            (false, true) => {
                if let Some(p) = probing.take() {
                    p.stop().await;
                }
                // Read on after what this process wrote itself.
                follow.skip_to_newest(&ctx, &store).await;
            }
            _ => {}
        }
        if !next.probes() {
            follow.read_on(&ctx, &store).await;
        }
        if changes(&role.borrow(), &next) {
            ctx.state_mut().set_role(next.clone());
            role.send_replace(next);
        }
    }
    if let Some(p) = probing.take() {
        p.stop().await;
    }
    duties.stop().await;
    if matches!(*role.borrow(), Role::Prober) {
        give_up(&ctx, store, &me).await;
    }
}

/// When the lease was last read or written, and whether a failure to has
/// been said since.
struct Answers {
    at_ms: i64,
    warned: bool,
}

impl Answers {
    /// The role a round's `found` gives this process (`me`), which held
    /// the lease (`held`) and had role `role` before it; says in the log
    /// what changed.
    fn next_role(&mut self, found: Found, held: bool, me: &LeaseHolder, role: &Role) -> Role {
        match found {
            Found::Held(took_over) => {
                self.at_ms = now_ms();
                self.warned = false;
                if !held {
                    match &took_over {
                        Some(h) => tracing::info!(
                            "took over probing from {}, whose lease was left",
                            describe_holder(h)
                        ),
                        None => tracing::info!("holding the prober lease: this process probes"),
                    }
                }
                Role::Prober
            }
            Found::HeldBy(h) => {
                self.at_ms = now_ms();
                self.warned = false;
                let other_fleet = h.fleet != me.fleet;
                let known = matches!(role, Role::Reader { holder, .. } if holder.token == h.token);
                if held || !known {
                    tracing::info!("{} probes; reading what it writes", describe_holder(&h));
                    if other_fleet {
                        tracing::warn!(
                            "{} probes another config than this one: apps, instances or probes only this config names are not probed; open it with the same config",
                            describe_holder(&h)
                        );
                    }
                }
                Role::Reader {
                    holder: h,
                    other_fleet,
                }
            }
            Found::Failed(e) => {
                if !self.warned {
                    tracing::warn!("cannot take or renew the prober lease: {e}");
                    self.warned = true;
                }
                let stale = now_ms().saturating_sub(self.at_ms) > LEASE_STALE.as_millis() as i64;
                match role {
                    // Keep the role until the lease would count as left.
                    r @ (Role::Prober | Role::Reader { .. }) if !stale => r.clone(),
                    _ => Role::Alone(e),
                }
            }
        }
    }
}

/// Whether going from role `from` to `to` is a change to publish: a
/// reader's holder heartbeats every second, which is none. Pure.
fn changes(from: &Role, to: &Role) -> bool {
    match (from, to) {
        (
            Role::Reader {
                holder: a,
                other_fleet: x,
            },
            Role::Reader {
                holder: b,
                other_fleet: y,
            },
        ) => a.token != b.token || x != y,
        (a, b) => a != b,
    }
}

/// What the holder runs besides probing: the notifier, the event stream
/// and the `/metrics` listener.
#[derive(Default)]
struct Duties {
    notifier: Option<Notifier>,
    stream: Option<Stream>,
    metrics: Option<metrics::Server>,
}

impl Duties {
    /// Starts what is not running when `role` probes; stops what runs
    /// otherwise.
    async fn follow(&mut self, ctx: &Ctx, role: &Role) {
        if matches!(role, Role::Prober) {
            if self.notifier.is_none() {
                self.notifier = Notifier::start(ctx.fleet.clone(), &ctx.db);
            }
            if self.stream.is_none() {
                self.stream = Stream::start(ctx.fleet.clone(), &ctx.db);
            }
            if self.metrics.is_none() {
                self.metrics = metrics::Server::start(
                    ctx.fleet.clone(),
                    &ctx.db,
                    ctx.state.clone(),
                    ctx.probe_counters.clone(),
                );
            }
        } else {
            // Its sends in flight may take up to their timeout: they end
            // in the background, not in the way of the lease.
            if let Some(n) = self.notifier.take() {
                tokio::spawn(n.stop());
            }
            // Its clients may take a few seconds to close: that must not
            // hold up stopping the probing this process no longer owns.
            if let Some(s) = self.stream.take() {
                tokio::spawn(s.stop());
            }
            if let Some(m) = self.metrics.take() {
                m.stop().await;
            }
        }
    }

    /// Stops everything and waits for it.
    async fn stop(mut self) {
        if let Some(n) = self.notifier.take() {
            n.stop().await;
        }
        if let Some(s) = self.stream.take() {
            s.stop().await;
        }
        if let Some(m) = self.metrics.take() {
            m.stop().await;
        }
    }
}

/// Gives `me`'s lease up, so the next process takes it within a second.
async fn give_up(ctx: &Ctx, store: SharedStore, me: &LeaseHolder) {
    let (db, token) = (ctx.db.clone(), me.token.clone());
    let released = tokio::task::spawn_blocking(move || {
        with_store(&db, &store, |s| {
            s.release_lease(PROBER, &token).map_err(|e| e.message())
        })
    })
    .await;
    if let Ok(Err(e)) = released {
        tracing::warn!("cannot give up the prober lease (it lapses in {LEASE_STALE:?}): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32, heartbeat_ms: i64) -> LeaseHolder {
        LeaseHolder {
            kind: "agent".into(),
            user: "ana".into(),
            host: host.into(),
            pid,
            token: "t".into(),
            fleet: String::new(),
            acquired_ms: 0,
            heartbeat_ms,
        }
    }

    #[test]
    fn a_holder_is_gone_when_its_process_here_is_or_its_heartbeat_is_stale() {
        let now = 100_000;
        let alive = |pid: i64| pid == 7;
        // Here: a live process keeps it while it heartbeats.
        assert!(!gone(&holder("h", 7, now - 1_000), now, "h", alive));
        assert!(gone(&holder("h", 8, now - 1_000), now, "h", alive));
        // Here, alive but silent (suspended): taken over once stale.
        assert!(gone(&holder("h", 7, now - 6_000), now, "h", alive));
        // Elsewhere: only the heartbeat says.
        assert!(!gone(&holder("other", 8, now - 5_000), now, "h", alive));
        assert!(gone(&holder("other", 8, now - 5_001), now, "h", alive));
    }

    #[test]
    fn a_readers_heartbeat_is_no_change_of_role() {
        let reader = |token: &str, heartbeat_ms, other_fleet| Role::Reader {
            holder: LeaseHolder {
                token: token.into(),
                ..holder("h", 7, heartbeat_ms)
            },
            other_fleet,
        };
        assert!(!changes(
            &reader("a", 1_000, false),
            &reader("a", 2_000, false)
        ));
        assert!(changes(
            &reader("a", 1_000, false),
            &reader("b", 1_000, false)
        ));
        assert!(changes(
            &reader("a", 1_000, false),
            &reader("a", 1_000, true)
        ));
        assert!(changes(&Role::Starting, &Role::Prober));
        assert!(!changes(&Role::Prober, &Role::Prober));
    }

    #[test]
    fn the_fingerprint_tells_fleets_apart_and_is_stable() {
        let fleet = |extra: &str| {
            let text = format!(
                "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = 8080\n{extra}\
                 [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n"
            );
            crate::config::parse(std::path::Path::new("t.toml"), &text, &|_| None).unwrap()
        };
        let one = fingerprint(&fleet(""));
        assert_eq!(one, fingerprint(&fleet("")));
        assert_eq!(one.len(), 16);
        let two = fingerprint(&fleet("[[app.instance]]\nname = \"web-2\"\nport = 8081\n"));
        assert_ne!(one, two);
    }
}
