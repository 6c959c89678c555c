//! The prober's incident watch: about once a second it asks
//! [`AppIncident::step`] what each app's verdicts mean, and records it:
//! an incident opened with its evidence (the probe, its thresholds, the
//! measured values and the last samples, per instance and probe), widened
//! when more fail, resolved once the app stayed healthy for its
//! `resolve_after`. It also writes each instance's verdict when it
//! changes. Only results probed since this process began probing count,
//! so a stored past never opens an incident; incidents opened elsewhere
//! (another prober, a rollout's failed gate) are adopted and resolved here.
//! The instances a running rollout has changed are its own: it restarts
//! them on purpose and its gates judge them (a failed gate opens the
//! incident), so they open nothing here, checked again in the history at
//! the moment of writing; once the rollout ends, what its restarts did to
//! their counts is forgotten.
//! Writes run in blocking tasks; a failed one is logged and asked again.

use std::sync::Arc;
use std::time::Duration;

use super::{Ctx, SharedStore, with_store};
use crate::config::App;
use crate::health::incident::Pair;
use crate::health::{AppIncident, IncidentStep, ProbeLoc};
use crate::model::evidence::{Evidence, FailRule, Sample};
use crate::model::incident::IncidentCause;
use crate::model::{Side, Verdict, now_ms};
use crate::shutdown::Shutdown;
use crate::state::FleetState;
use crate::store::{Incident, Opened};

/// How often verdicts are looked at.
pub const INCIDENTS_EVERY: Duration = Duration::from_secs(1);

/// How often open incidents are read back from the store, to adopt those
/// opened elsewhere and drop those resolved elsewhere.
const SYNC_EVERY: Duration = Duration::from_secs(5);

/// Samples kept in an incident's evidence per probe.
const EVIDENCE_SAMPLES: usize = 5;

/// One app's verdicts as the watch sees them.
struct Look {
    instances: Vec<Verdict>,
    failing: Vec<Pair>,
}

/// What to write for an app this round.
enum Write {
    Open(Vec<Pair>, Vec<Evidence>),
    Widen(Vec<Pair>, Vec<Evidence>),
    Resolve(i64, i64),
}

/// How a write went.
enum Written {
    Opened(Opened, Vec<Pair>),
    /// Not opened: every instance it named is a running rollout's.
    Deferred,
    Resolved,
    Failed(String),
}

/// Runs until `shutdown`. `since_ms`: when this process began probing.
pub(super) async fn watch(ctx: Arc<Ctx>, since_ms: i64, mut shutdown: Shutdown) {
    let store: SharedStore = Arc::default();
    let mut watch = Watch::new(ctx.fleet.apps.len(), since_ms);
    let mut synced: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(INCIDENTS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.turns.wake.notified() => {}
            _ = shutdown.wait() => return,
        }
        if synced.is_none_or(|t| t.elapsed() >= SYNC_EVERY)
            && let Some(open) = read_open(&ctx, &store).await
        {
            adopt(&ctx, &mut watch.apps, &open);
            synced = Some(tokio::time::Instant::now());
        }
        let now = now_ms();
        let (writes, verdicts) = watch.round(&ctx, now);
        if writes.is_empty() && verdicts.is_empty() {
            continue;
        }
        let (c, s) = (ctx.clone(), store.clone());
        let job = tokio::task::spawn_blocking(move || record(&c, &s, writes, verdicts, now)).await;
        let Ok((outcomes, verdicts_ok)) = job else {
            continue;
        };
        watch.recorded(&ctx, outcomes, verdicts_ok);
    }
}

/// What to write this round: per app, an incident's change with the turn
/// it took into account, and the instances' verdicts that changed.
type Round = (Vec<(usize, Write, Option<i64>)>, Vec<(usize, Vec<Verdict>)>);

/// What the incident watch keeps between its rounds, per app.
struct Watch {
    /// When this process began probing.
    since_ms: i64,
    apps: Vec<AppIncident>,
    /// The instances' verdicts last written.
    written: Vec<Option<Vec<Verdict>>>,
    /// The last turn to unhealthy each app's steps took into account.
    seen_turn: Vec<Option<i64>>,
    /// The instances a running rollout has changed (its gates judge
    /// them), as of the last round.
    in_rollout: Vec<Vec<usize>>,
}

impl Watch {
    fn new(apps: usize, since_ms: i64) -> Watch {
        Watch {
            since_ms,
            apps: vec![AppIncident::default(); apps],
            written: vec![None; apps],
            seen_turn: vec![None; apps],
            in_rollout: vec![Vec::new(); apps],
        }
    }

    /// Asks each app's [`AppIncident::step`] what its verdicts mean at
    /// `now`, with the fleet state locked; returns what to write.
    fn round(&mut self, ctx: &Ctx, now: i64) -> Round {
        let since_ms = self.since_ms;
        let mut st = ctx.state_mut();
        let mut writes = Vec::new();
        let mut verdicts = Vec::new();
        for (a, app) in ctx.fleet.apps.iter().enumerate() {
            let now_in = changed_by_rollout(&st, a);
            // Left by a rollout that ended: what its restarts did to
            // the counts is forgotten, and `initial_delay` applies.
            for &i in self.in_rollout[a].iter().filter(|i| !now_in.contains(i)) {
                st.restarted(a, i, now);
            }
            self.in_rollout[a] = now_in;
            let turn = ctx.turns.get(a).filter(|t| *t >= since_ms);
            let turned = turn.filter(|t| self.seen_turn[a].is_none_or(|s| *t > s));
            let look = look(&st, a, since_ms, turned, &self.in_rollout[a]);
            if self.written[a].as_ref() != Some(&look.instances) {
                verdicts.push((a, look.instances.clone()));
            }
            let after = app.health.resolve_after.as_millis() as i64;
            let step =
                self.apps[a].step(&look.instances, &look.failing, turned.is_some(), now, after);
            let w = match step {
                IncidentStep::Nothing => {
                    self.seen_turn[a] = turn;
                    continue;
                }
                IncidentStep::Open(p) => Write::Open(p.clone(), evidence(&st, a, &p)),
                IncidentStep::Widen { pairs, .. } => {
                    Write::Widen(pairs.clone(), evidence(&st, a, &pairs))
                }
                IncidentStep::Resolve { id, healthy_ms } => Write::Resolve(id, healthy_ms),
            };
            writes.push((a, w, turn));
        }
        (writes, verdicts)
    }

    /// Takes in how the round's writes went; says in the log what opened
    /// and resolved.
    fn recorded(
        &mut self,
        ctx: &Ctx,
        outcomes: Vec<(usize, Written, Option<i64>)>,
        verdicts_ok: Vec<(usize, Vec<Verdict>)>,
    ) {
        for (a, instances) in verdicts_ok {
            self.written[a] = Some(instances);
        }
        for (a, w, turn) in outcomes {
            let name = &ctx.fleet.apps[a].name;
            if !matches!(w, Written::Failed(_) | Written::Deferred) {
                self.seen_turn[a] = turn;
            }
            match w {
                Written::Opened(o, pairs) => {
                    if let Opened::New(id) = o {
                        tracing::warn!(app = %name, incident = id, "incident opened");
                    }
                    self.apps[a].opened(o.id(), &pairs);
                }
                Written::Resolved => {
                    if let Some(id) = self.apps[a].open() {
                        tracing::info!(app = %name, incident = id, "incident resolved");
                    }
                    self.apps[a].resolved();
                }
                Written::Failed(e) => {
                    tracing::warn!(app = %name, "cannot record an incident: {e}");
                }
                Written::Deferred => {}
            }
        }
    }
}

/// The store's open incidents, or `None` (logged) when it cannot say.
async fn read_open(ctx: &Arc<Ctx>, store: &SharedStore) -> Option<Vec<Incident>> {
    let (db, s) = (ctx.db.clone(), store.clone());
    let read = tokio::task::spawn_blocking(move || {
        with_store(&db, &s, |s| s.open_incidents().map_err(|e| e.message()))
    })
    .await;
    match read {
        Ok(Ok(open)) => Some(open),
        Ok(Err(e)) => {
            tracing::warn!("cannot read open incidents: {e}");
            None
        }
        Err(_) => None,
    }
}

/// Takes on what the store says is open: adopts incidents opened
/// elsewhere and forgets those resolved elsewhere.
fn adopt(ctx: &Ctx, apps: &mut [AppIncident], open: &[Incident]) {
    for (a, app) in ctx.fleet.apps.iter().enumerate() {
        match open.iter().find(|i| i.app == app.name) {
            Some(i) if apps[a].open() != Some(i.id) => {
                let pairs: Vec<Pair> = i
                    .evidence
                    .failed
                    .iter()
                    .filter_map(|e| pair_of(app, &e.instance, &e.probe))
                    .collect();
                apps[a].opened(i.id, &pairs);
            }
            Some(_) => {}
            None if apps[a].open().is_some() => apps[a].resolved(),
            None => {}
        }
    }
}

fn pair_of(app: &App, instance: &str, probe: &str) -> Option<Pair> {
    let i = app.instances.iter().position(|x| x.name == instance)?;
    let p = app.probes.iter().position(|x| x.name == probe)?;
    Some((i, p))
}

/// The instances of app `a` that its running rollout has changed; none
/// when no rollout runs or its worker is gone (then the prober judges them
/// again).
fn changed_by_rollout(st: &FleetState, a: usize) -> Vec<usize> {
    let app = &st.fleet().apps[a];
    let Some(active) = st
        .rollouts(a)
        .and_then(|r| r.active.as_ref())
        .filter(|r| !r.interrupted)
    else {
        return Vec::new();
    };
    (0..app.instances.len())
        .filter(|&i| active.changed.contains(&app.instances[i].name))
        .collect()
}

/// App `a`'s instance verdicts, counting only instances whose probes all
/// reported since `since_ms` (others read as unknown), and its failing
/// probes: those unhealthy on unhealthy instances and, when an instance
/// turned unhealthy at `turned` or later, those that failed since. The
/// instances in `in_rollout` read as unknown and fail nothing: a running
/// rollout restarts them on purpose, and its gates judge them (a failed
/// gate opens the incident itself).
fn look(
    st: &FleetState,
    a: usize,
    since_ms: i64,
    turned: Option<i64>,
    in_rollout: &[usize],
) -> Look {
    let app = &st.fleet().apps[a];
    let t = st.tracker();
    let mut instances = Vec::with_capacity(app.instances.len());
    let mut failing = Vec::new();
    // A comparison has results only in a rollout's gates.
    let judged: Vec<usize> = (0..app.probes.len())
        .filter(|&p| !app.probes[p].compares())
        .collect();
    for i in 0..app.instances.len() {
        let loc = |probe| ProbeLoc {
            app: a,
            instance: i,
            probe,
        };
        if in_rollout.contains(&i) {
            instances.push(Verdict::Unknown);
            continue;
        }
        let fresh =
            (judged.iter()).all(|&p| st.probe(loc(p)).last().is_some_and(|l| l.at_ms >= since_ms));
        let v = if fresh && !judged.is_empty() {
            t.instance_verdict(a, i)
        } else {
            Verdict::Unknown
        };
        for &p in &judged {
            let now_failing =
                v == Verdict::Unhealthy && t.probe_verdict(loc(p)) == Verdict::Unhealthy;
            let failed_since = turned.is_some_and(|at| {
                st.probe(loc(p))
                    .last_failure()
                    .is_some_and(|f| f.at_ms >= at)
            });
            if now_failing || failed_since {
                failing.push((i, p));
            }
        }
        instances.push(v);
    }
    Look { instances, failing }
}

/// What app `a`'s probes in `pairs` show now, as evidence.
fn evidence(st: &FleetState, a: usize, pairs: &[Pair]) -> Vec<Evidence> {
    let app = &st.fleet().apps[a];
    pairs
        .iter()
        .map(|&(i, p)| {
            let loc = ProbeLoc {
                app: a,
                instance: i,
                probe: p,
            };
            let counter = st.tracker().probe_counter(loc);
            let history = st.probe(loc);
            let n = history.samples().len();
            let last = history.last();
            let mut last_samples: Vec<Sample> = history
                .samples()
                .iter()
                .skip(n.saturating_sub(EVIDENCE_SAMPLES))
                .map(|s| Sample {
                    at_ms: s.at_ms,
                    ok: s.ok,
                    latency_ms: f64::from(s.latency_ms),
                    code: None,
                    error_kind: None,
                    message: String::new(),
                })
                .collect();
            // The newest sample carries what was measured.
            if let (Some(s), Some(l)) = (last_samples.last_mut(), last)
                && s.at_ms == l.at_ms
            {
                s.code = l.code;
                s.error_kind = l.error_kind.map(|k| k.as_str().to_string());
                s.message = l.message.to_string();
            }
            let h = &app.health;
            Evidence {
                instance: app.instances[i].name.clone(),
                side: Side::Main,
                port: app.instances[i].port,
                probe: app.probes[p].name.clone(),
                success_threshold: h.success_threshold,
                failure_threshold: h.failure_threshold,
                consecutive_ok: counter.consecutive_ok,
                consecutive_fail: counter.consecutive_fail,
                failures: counter.consecutive_fail,
                max_failures: h.failure_budget(),
                rule: Some(FailRule::Consecutive),
                reason: Some(format!(
                    "{} failures in a row (threshold {})",
                    counter.consecutive_fail, h.failure_threshold
                )),
                last_samples,
                ..Evidence::default()
            }
        })
        .collect()
}

/// Fills in what each sample of `ev` measured (status, error kind,
/// message) from the results stored for app `app`: the console's memory
/// keeps those only for the newest result. A sample not stored yet (the
/// writer batches every second) keeps what it has.
fn measured(s: &crate::store::Store, app: &str, ev: &mut [Evidence]) {
    let Some(oldest) = ev
        .iter()
        .flat_map(|e| &e.last_samples)
        .map(|x| x.at_ms)
        .min()
    else {
        return;
    };
    let Ok(stored) = s.recent_results(Some(app), oldest, 10_000) else {
        return;
    };
    for e in ev.iter_mut() {
        for sample in e.last_samples.iter_mut().filter(|x| x.message.is_empty()) {
            if let Some(r) = stored.iter().find(|r| {
                r.at_ms == sample.at_ms
                    && *r.key.instance == *e.instance
                    && *r.key.probe == *e.probe
            }) {
                sample.code = r.code;
                sample.error_kind = r.error_kind.map(|k| k.as_str().to_string());
                sample.message = r.message.clone();
            }
        }
    }
}

/// Writes this round's incident steps and changed verdicts; returns how
/// each step went and the verdicts written.
#[allow(clippy::type_complexity)]
fn record(
    ctx: &Ctx,
    store: &SharedStore,
    writes: Vec<(usize, Write, Option<i64>)>,
    verdicts: Vec<(usize, Vec<Verdict>)>,
    now: i64,
) -> (
    Vec<(usize, Written, Option<i64>)>,
    Vec<(usize, Vec<Verdict>)>,
) {
    let outcomes = writes
        .into_iter()
        .map(|(a, w, turn)| {
            let name = &ctx.fleet.apps[a].name;
            let app = &ctx.fleet.apps[a];
            let done = with_store(&ctx.db, store, |s| {
                let e = |e: crate::store::StoreError| e.message();
                // The history says now which instances a rollout holds
                // (the console's reading of it may be a second old).
                let outside = |pairs: Vec<Pair>, ev: Vec<Evidence>| {
                    let fresh = crate::rollout::lock::STALE_AFTER.as_millis() as i64;
                    let held = s.instances_in_rollout(name, fresh).map_err(e)?;
                    let free = |i: usize| !held.contains(&app.instances[i].name);
                    let pairs: Vec<Pair> = pairs.into_iter().filter(|p| free(p.0)).collect();
                    let ev: Vec<Evidence> = ev
                        .into_iter()
                        .filter(|x| !held.contains(&x.instance))
                        .collect();
                    Ok::<_, String>((!pairs.is_empty()).then_some((pairs, ev)))
                };
                Ok(match w {
                    // Opened, or widened in the store's open incident,
                    // whichever it is.
                    Write::Open(pairs, ev) | Write::Widen(pairs, ev) => match outside(pairs, ev)? {
                        Some((pairs, mut ev)) => {
                            measured(s, name, &mut ev);
                            let o = s
                                .open_incident(name, None, IncidentCause::Probe, &ev, now)
                                .map_err(e)?;
                            Written::Opened(o, pairs)
                        }
                        None => Written::Deferred,
                    },
                    Write::Resolve(id, healthy_ms) => {
                        s.resolve_incident(id, healthy_ms, now).map_err(e)?;
                        Written::Resolved
                    }
                })
            });
            (a, done.unwrap_or_else(Written::Failed), turn)
        })
        .collect();
    let mut ok = Vec::new();
    for (a, instances) in verdicts {
        let app = &ctx.fleet.apps[a];
        let rows: Vec<(&str, Verdict)> = app
            .instances
            .iter()
            .map(|i| i.name.as_str())
            .zip(instances.iter().copied())
            .collect();
        match with_store(&ctx.db, store, |s| {
            s.write_verdicts(&app.name, &rows, now)
                .map_err(|e| e.message())
        }) {
            Ok(()) => ok.push((a, instances)),
            Err(e) => tracing::warn!(app = %app.name, "cannot record verdicts: {e}"),
        }
    }
    (outcomes, ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorKind, ProbeKey, ProbeResult};

    #[test]
    fn every_stored_sample_of_the_evidence_says_what_it_measured() {
        let dir = std::env::temp_dir().join(format!("rg-incident-measured-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = crate::store::Store::open(&dir.join("history.db")).unwrap();
        let result = |at_ms: i64, ok: bool, code: i64, message: &str| ProbeResult {
            key: ProbeKey {
                app: Arc::from("web"),
                instance: Arc::from("web-1"),
                probe: Arc::from("health"),
            },
            at_ms,
            ok,
            latency_ms: 3.0,
            code: Some(code),
            error_kind: (!ok).then_some(ErrorKind::Status),
            message: message.into(),
        };
        store
            .insert_results(&[
                result(1_000, true, 200, "200 OK"),
                result(2_000, false, 500, "status 500, expected 200"),
            ])
            .unwrap();
        let sample = |at_ms: i64, ok: bool| Sample {
            at_ms,
            ok,
            latency_ms: 3.0,
            code: None,
            error_kind: None,
            message: String::new(),
        };
        let mut ev = vec![Evidence {
            instance: "web-1".into(),
            probe: "health".into(),
            // The third is not stored yet: it keeps what it has.
            last_samples: vec![
                sample(1_000, true),
                sample(2_000, false),
                sample(3_000, false),
            ],
            ..Evidence::default()
        }];
        measured(&store, "web", &mut ev);
        let s = &ev[0].last_samples;
        assert_eq!((s[0].code, s[0].message.as_str()), (Some(200), "200 OK"));
        assert_eq!(s[1].code, Some(500));
        assert_eq!(s[1].error_kind.as_deref(), Some("status"));
        assert_eq!(s[1].message, "status 500, expected 200");
        assert_eq!((s[2].code, s[2].message.as_str()), (None, ""));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
