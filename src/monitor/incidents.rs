//! The prober's incident watch: about once a second it asks
//! [`AppIncident::step`] what each app's verdicts mean, and records it:
//! an incident opened with its evidence (the probe, its thresholds, the
//! measured values and the last samples, per instance and probe), widened
//! when more fail, resolved once the app stayed healthy for its
//! `resolve_after`. It also writes each instance's verdict when it
//! changes. Only results probed since this process began probing count,
//! so a stored past never opens an incident; incidents opened elsewhere
//! (another prober, a rollout's failed gate) are adopted and resolved here.
//! Writes run in blocking tasks; a failed one is logged and asked again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Ctx, SharedStore, with_store};
use crate::config::App;
use crate::health::incident::Pair;
use crate::health::{AppIncident, IncidentStep, ProbeLoc};
use crate::model::evidence::{Evidence, FailRule, Sample};
use crate::model::incident::IncidentCause;
use crate::model::{Side, Verdict, now_ms};
use crate::store::{Incident, Opened};
use crate::tui::state::FleetState;

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
    Resolved,
    Failed(String),
}

/// Runs until `shutdown`. `since_ms`: when this process began probing.
pub(super) async fn watch(ctx: Arc<Ctx>, since_ms: i64, mut shutdown: watch::Receiver<bool>) {
    let store: SharedStore = Arc::default();
    let mut apps = vec![AppIncident::default(); ctx.fleet.apps.len()];
    let mut written: Vec<Option<Vec<Verdict>>> = vec![None; ctx.fleet.apps.len()];
    // The last turn to unhealthy each app's steps took into account.
    let mut seen_turn: Vec<Option<i64>> = vec![None; ctx.fleet.apps.len()];
    let mut synced: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(INCIDENTS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.turns.wake.notified() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow_and_update() {
                    return;
                }
                continue;
            }
        }
        if synced.is_none_or(|t| t.elapsed() >= SYNC_EVERY)
            && let Some(open) = read_open(&ctx, &store).await
        {
            adopt(&ctx, &mut apps, &open);
            synced = Some(tokio::time::Instant::now());
        }
        let now = now_ms();
        let (writes, verdicts) = {
            let st = ctx.state_mut();
            let mut writes = Vec::new();
            let mut verdicts = Vec::new();
            for (a, app) in ctx.fleet.apps.iter().enumerate() {
                let turn = ctx.turns.get(a).filter(|t| *t >= since_ms);
                let turned = turn.filter(|t| seen_turn[a].is_none_or(|s| *t > s));
                let look = look(&st, a, since_ms, turned);
                if written[a].as_ref() != Some(&look.instances) {
                    verdicts.push((a, look.instances.clone()));
                }
                let after = app.health.resolve_after.as_millis() as i64;
                let step =
                    apps[a].step(&look.instances, &look.failing, turned.is_some(), now, after);
                let w = match step {
                    IncidentStep::Nothing => {
                        seen_turn[a] = turn;
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
        };
        if writes.is_empty() && verdicts.is_empty() {
            continue;
        }
        let (c, s) = (ctx.clone(), store.clone());
        let job = tokio::task::spawn_blocking(move || record(&c, &s, writes, verdicts, now)).await;
        let Ok((outcomes, verdicts_ok)) = job else {
            continue;
        };
        for (a, instances) in verdicts_ok {
            written[a] = Some(instances);
        }
        for (a, w, turn) in outcomes {
            let name = &ctx.fleet.apps[a].name;
            if !matches!(w, Written::Failed(_)) {
                seen_turn[a] = turn;
            }
            match w {
                Written::Opened(o, pairs) => {
                    if let Opened::New(id) = o {
                        tracing::warn!(app = %name, incident = id, "incident opened");
                    }
                    apps[a].opened(o.id(), &pairs);
                }
                Written::Resolved => {
                    if let Some(id) = apps[a].open() {
                        tracing::info!(app = %name, incident = id, "incident resolved");
                    }
                    apps[a].resolved();
                }
                Written::Failed(e) => {
                    tracing::warn!(app = %name, "cannot record an incident: {e}");
                }
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

/// App `a`'s instance verdicts, counting only instances whose probes all
/// reported since `since_ms` (others read as unknown), and its failing
/// probes: those unhealthy on unhealthy instances and, when an instance
/// turned unhealthy at `turned` or later, those that failed since.
fn look(st: &FleetState, a: usize, since_ms: i64, turned: Option<i64>) -> Look {
    let app = &st.fleet().apps[a];
    let t = st.tracker();
    let mut instances = Vec::with_capacity(app.instances.len());
    let mut failing = Vec::new();
    for i in 0..app.instances.len() {
        let loc = |probe| ProbeLoc {
            app: a,
            instance: i,
            probe,
        };
        let fresh = (0..app.probes.len())
            .all(|p| st.probe(loc(p)).last().is_some_and(|l| l.at_ms >= since_ms));
        let v = if fresh && !app.probes.is_empty() {
            t.instance_verdict(a, i)
        } else {
            Verdict::Unknown
        };
        for p in 0..app.probes.len() {
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
            let done = with_store(&ctx.db, store, |s| {
                let e = |e: crate::store::StoreError| e.message();
                Ok(match w {
                    Write::Open(pairs, ev) => {
                        let o = s
                            .open_incident(name, None, IncidentCause::Probe, &ev, now)
                            .map_err(e)?;
                        Written::Opened(o, pairs)
                    }
                    // Widened in the store's open incident, whichever it is.
                    Write::Widen(pairs, ev) => {
                        let o = s
                            .open_incident(name, None, IncidentCause::Probe, &ev, now)
                            .map_err(e)?;
                        Written::Opened(o, pairs)
                    }
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
