//! A timeline's [`Rows`] written as Markdown that can start a postmortem:
//! a header (app, what, when, duration, release, outcome, trigger), the
//! deployments or incidents it overlapped, then every event with its
//! time, UTC: the probe failures that counted (from the evidence), gate
//! results with the probe, its thresholds and what was measured,
//! decisions, traffic changes, notifications, operators' commands with
//! actor and reason, and changes to instances. Pure.
//!
//! Names and words go through [`md::text`] and what hosts answered
//! through [`md::code`], so no text from the history breaks the document
//! or reaches a terminal raw.

use super::markdown as md;
use super::render::length_words;
use super::timeline::Rows;
use crate::audit::{UNREADABLE, reason_suffix, summary};
use crate::model::event::EventKind;
use crate::model::evidence::{Evidence, GateOutcome, Sample};
use crate::model::incident::IncidentCause;
use crate::model::{DeploymentKind, Outcome};
use crate::store::{Deployment, Event, INCIDENT_ACTOR, Incident, InstanceChange};

/// `YYYY-MM-DD HH:MM:SS` in UTC, or `?`.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "?".into())
}

/// The length from `from` to `to` in words.
fn span(from: i64, to: i64) -> String {
    length_words(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

/// One line of the timeline and what it shows below.
struct Entry {
    at_ms: i64,
    order: (u8, i64),
    line: String,
    details: Vec<String>,
}

/// The timeline of `rows` as Markdown.
pub fn render(rows: &Rows) -> String {
    let mut out = match (&rows.incident, &rows.deployment) {
        (Some(i), _) => incident_header(i, rows),
        (None, Some(d)) => deployment_header(d, rows),
        (None, None) => format!("# {}\n\n", rows.subject),
    };
    out.push_str("All times are UTC (+00:00).\n");
    if let Some(i) = &rows.incident {
        if !i.evidence.failed.is_empty() {
            out.push_str("\n## What failed\n\n");
            for e in &i.evidence.failed {
                out.push_str(&format!("- {}\n", evidence_line(e)));
            }
        }
        out.push_str("\n## Deployments during the incident\n\n");
        if rows.deployments.is_empty() {
            out.push_str("None.\n");
        }
        for d in &rows.deployments {
            out.push_str(&format!("- {}\n", deployment_line(d)));
        }
    }
    if rows.deployment.is_some() {
        out.push_str("\n## Incidents during the deployment\n\n");
        if rows.incidents.is_empty() {
            out.push_str("None.\n");
        }
        for i in &rows.incidents {
            out.push_str(&format!("- {}\n", incident_line(i, rows.now_ms)));
        }
    }
    out.push_str("\n## Timeline\n\n");
    let entries = entries(rows);
    if entries.is_empty() {
        out.push_str("No event recorded.\n");
    }
    for e in entries {
        out.push_str(&format!("- {} {}\n", utc(e.at_ms), e.line));
        for d in e.details {
            out.push_str(&format!("  - {d}\n"));
        }
    }
    if rows.incident.is_some() && !rows.failures.is_empty() {
        out.push_str("\n## Probe failures during the outage\n\n");
        for f in &rows.failures {
            out.push_str(&format!(
                "- {} on {}: {} failed {} from {} to {} ({})\n",
                md::code(&f.probe),
                md::code(&f.instance),
                f.count,
                if f.count == 1 { "result" } else { "results" },
                utc(f.first_ms),
                utc(f.last_ms),
                md::text(&f.kinds.join(", "))
            ));
        }
    }
    out
}

/// A header line: `- **Name:** value`.
fn field(name: &str, value: &str) -> String {
    format!("- **{name}:** {value}\n")
}

fn incident_header(i: &Incident, rows: &Rows) -> String {
    let app = md::text(&i.app);
    let mut out = format!("# Incident {}: {app}\n\n", i.id);
    out.push_str(&field("App", &app));
    let instances = md::text(&i.evidence.instances().join(", "));
    let what = match i.evidence.cause {
        IncidentCause::Probe => format!("an outage: {instances} turned unhealthy"),
        IncidentCause::Gate => format!("a rollout's gate failed on {instances}"),
    };
    out.push_str(&field("What", &what));
    out.push_str(&field("Opened", &utc(i.opened_ms)));
    if let Some(h) = i.healthy_ms {
        out.push_str(&field("Healthy again", &utc(h)));
    }
    match i.resolved_ms {
        Some(r) => out.push_str(&field("Resolved", &utc(r))),
        None => out.push_str(&field("Resolved", "not yet")),
    }
    let duration = match (i.healthy_ms, i.resolved_ms) {
        (Some(h), Some(_)) => format!("{} (opened → healthy again)", span(i.opened_ms, h)),
        _ => format!("{} so far (still open)", span(i.opened_ms, rows.now_ms)),
    };
    out.push_str(&field("Duration", &duration));
    let releases: Vec<String> = rows
        .deployments
        .iter()
        .map(|d| {
            format!(
                "{} (deployment {}, {})",
                versions(d),
                d.id,
                md::text(&outcome_words(d))
            )
        })
        .collect();
    let release = match (releases.is_empty(), &rows.before) {
        (false, _) => releases.join("; "),
        (true, Some(d)) => {
            let ran = match d.outcome {
                Some(Outcome::Deployed) | None => Some(d.to_version.as_str()),
                _ => d.from_version.as_deref(),
            };
            match ran {
                Some(v) => format!("{} (since deployment {})", md::text(v), d.id),
                None => format!(
                    "not known (deployment {} ended {})",
                    d.id,
                    md::text(&outcome_words(d))
                ),
            }
        }
        (true, None) => "not known (no deployment recorded before it)".into(),
    };
    out.push_str(&field("Release", &release));
    let outcome = if i.resolved_ms.is_some() {
        "resolved"
    } else {
        "still open"
    };
    out.push_str(&field("Outcome", outcome));
    let trigger = match i.evidence.failed.first() {
        Some(e) => format!(
            "{} ({}): {} on {}: {}",
            i.evidence.cause.as_str(),
            match i.deployment_id {
                Some(d) => format!("during deployment {d}"),
                None => "seen by the prober".into(),
            },
            md::code(&e.probe),
            md::code(&e.instance),
            md::text(e.reason.as_deref().unwrap_or("failed"))
        ),
        None => i.evidence.cause.as_str().to_string(),
    };
    out.push_str(&field("Trigger", &trigger));
    let look = format!("rollguard events --app {}", i.app);
    out.push_str(&format!("- **Look:** {}\n\n", md::code(&look)));
    out
}

fn deployment_header(d: &Deployment, rows: &Rows) -> String {
    let app = md::text(&d.app);
    let mut out = format!("# Deployment {}: {app}\n\n", d.id);
    out.push_str(&field("App", &app));
    let what = if d.kind() == DeploymentKind::Rollback {
        format!(
            "manual rollback to {} ({})",
            md::text(&d.to_version),
            md::text(d.strategy.as_str())
        )
    } else {
        format!("deploy {} ({})", versions(d), md::text(d.strategy.as_str()))
    };
    out.push_str(&field("What", &what));
    let by = format!(
        "{} by {}{}",
        utc(d.started_at_ms),
        md::text(&d.actor),
        d.reason
            .as_deref()
            .map(|r| format!(" — {}", md::text(r)))
            .unwrap_or_default()
    );
    out.push_str(&field("Started", &by));
    match d.ended_at_ms {
        Some(e) => {
            out.push_str(&field("Finished", &utc(e)));
            out.push_str(&field("Duration", &span(d.started_at_ms, e)));
        }
        None => {
            out.push_str(&field(
                "Finished",
                &format!("not yet ({})", md::text(d.state.as_str())),
            ));
            out.push_str(&field(
                "Duration",
                &format!("{} so far", span(d.started_at_ms, rows.now_ms)),
            ));
        }
    }
    out.push_str(&field("Release", &versions(d)));
    out.push_str(&field("Outcome", &md::text(&outcome_words(d))));
    let failed = rows.events.iter().find_map(|e| match e.typed() {
        Ok(EventKind::RolloutFailed { trigger, code, .. }) => Some(format!(
            "{} ({}){}",
            md::text(&code),
            md::text(trigger.as_str()),
            md::text(&reason_suffix(e))
        )),
        _ => None,
    });
    let trigger = match failed {
        Some(f) => format!("failed: {f}"),
        None => format!("started by {}", md::text(&d.actor)),
    };
    out.push_str(&field("Trigger", &trigger));
    let look = format!("rollguard history {}", d.app);
    out.push_str(&format!("- **Look:** {}\n\n", md::code(&look)));
    out
}

/// "v1 → v2", or "v2" when nothing ran before.
fn versions(d: &Deployment) -> String {
    match &d.from_version {
        Some(from) => format!("{} → {}", md::text(from), md::text(&d.to_version)),
        None => md::text(&d.to_version),
    }
}

/// How a deployment ended, in words, or where it is.
fn outcome_words(d: &Deployment) -> String {
    match &d.outcome {
        Some(o) => o.as_str().replace('_', " "),
        None => format!("still running ({})", d.state.as_str().replace('_', " ")),
    }
}

fn deployment_line(d: &Deployment) -> String {
    let end = d.ended_at_ms.map_or_else(|| "…".into(), utc);
    format!(
        "deployment {}: {} ({}) by {}, {} → {}: {} — `rollguard incident deployment:{}`",
        d.id,
        versions(d),
        md::text(d.strategy.as_str()),
        md::text(&d.actor),
        utc(d.started_at_ms),
        end,
        md::text(&outcome_words(d)),
        d.id
    )
}

fn incident_line(i: &Incident, now_ms: i64) -> String {
    let end = match (i.healthy_ms, i.resolved_ms) {
        (Some(h), Some(r)) => format!(
            "healthy again {} (outage {}), resolved {}",
            utc(h),
            span(i.opened_ms, h),
            utc(r)
        ),
        _ => format!("still open ({} so far)", span(i.opened_ms, now_ms)),
    };
    format!(
        "incident {} ({}): opened {}, {end}; {} — `rollguard incident {}`",
        i.id,
        i.evidence.cause.as_str(),
        utc(i.opened_ms),
        md::text(&i.evidence.instances().join(", ")),
        i.id
    )
}

/// One evidence entry: the probe, the instance, why, the thresholds and
/// what was measured.
fn evidence_line(e: &Evidence) -> String {
    format!(
        "{} on {} ({} side, port {}): {}; thresholds: {} failures in a row fail, \
         {} passes in a row pass, at most {} failures in the window; measured: \
         {} failures and {} passes in a row, {}",
        md::code(&e.probe),
        md::code(&e.instance),
        e.side,
        e.port,
        md::text(e.reason.as_deref().unwrap_or("passed")),
        e.failure_threshold,
        e.success_threshold,
        e.max_failures,
        e.consecutive_fail,
        e.consecutive_ok,
        md::text(&e.budget())
    )
}

/// A failed sample: what the probe measured.
fn sample_line(e: &Evidence, s: &Sample) -> String {
    let mut what = Vec::new();
    if let Some(code) = s.code {
        what.push(format!("code {code}"));
    }
    if s.latency_ms.is_finite() {
        what.push(format!("{:.1} ms", s.latency_ms));
    }
    if let Some(k) = &s.error_kind {
        what.push(md::text(k));
    }
    if !s.message.is_empty() {
        what.push(md::code(&s.message));
    }
    format!(
        "**probe failed** {} on {}: {}",
        md::code(&e.probe),
        md::code(&e.instance),
        what.join(", ")
    )
}

/// The evidence an event carries, as the typed payload gives it.
fn evidence_of(kind: &EventKind) -> Vec<Evidence> {
    let gate = |o: &GateOutcome| match o {
        GateOutcome::Passed { evidence, .. } | GateOutcome::Deadline { evidence, .. } => {
            evidence.clone()
        }
        GateOutcome::Failed { evidence } => vec![evidence.clone()],
        GateOutcome::Cancelled => Vec::new(),
    };
    match kind {
        EventKind::GatePassed(o) | EventKind::GateFailed(o) | EventKind::DeadlineExceeded(o) => {
            gate(o)
        }
        EventKind::IncidentOpened { evidence, .. }
        | EventKind::IncidentWidened { evidence, .. } => evidence.clone(),
        EventKind::RolloutFailed { evidence, .. } | EventKind::BatchRetried { evidence, .. } => {
            serde_json::from_value::<GateOutcome>(evidence.clone())
                .map(|o| gate(&o))
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Every line of the timeline, in time order: the failed samples of the
/// evidence (each once), the events, the changes to instances.
fn entries(rows: &Rows) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut seen_samples: Vec<(String, String, i64)> = Vec::new();
    let mut seen_evidence: Vec<String> = Vec::new();
    for e in &rows.events {
        let typed = e.typed().ok();
        let evidence = typed.as_ref().map(evidence_of).unwrap_or_default();
        for ev in &evidence {
            for s in ev.last_samples.iter().filter(|s| !s.ok) {
                let key = (ev.instance.clone(), ev.probe.clone(), s.at_ms);
                if seen_samples.contains(&key) {
                    continue;
                }
                seen_samples.push(key);
                out.push(Entry {
                    at_ms: s.at_ms,
                    order: (0, e.id),
                    line: sample_line(ev, s),
                    details: Vec::new(),
                });
            }
        }
        let mut entry = event_entry(e, typed.as_ref(), &evidence);
        // The same evidence carried by the next events is shown once.
        entry.details.retain(|d| {
            let new = !seen_evidence.contains(d);
            if new {
                seen_evidence.push(d.clone());
            }
            new
        });
        out.push(entry);
    }
    for c in &rows.changes {
        out.push(change_entry(c));
    }
    out.sort_by_key(|e| (e.at_ms, e.order));
    out
}

fn event_entry(e: &Event, typed: Option<&EventKind>, evidence: &[Evidence]) -> Entry {
    let words = typed.map_or_else(|| UNREADABLE.to_string(), summary);
    let said = words.contains(&format!("by {}", e.actor));
    let by = if e.actor != INCIDENT_ACTOR && !e.actor.is_empty() && !said {
        format!(" — by {}", md::text(&e.actor))
    } else {
        String::new()
    };
    let mut details: Vec<String> = evidence.iter().map(evidence_line).collect();
    if let Some(EventKind::TrafficChanging { to }) = typed
        && !to.is_null()
    {
        details.push(format!("asked: {}", asked(to)));
    }
    Entry {
        at_ms: e.at_ms,
        order: (1, e.id),
        line: format!(
            "**{}** {}{by}{}",
            md::text(&e.kind.replace('_', " ")),
            md::text(&words),
            md::text(&reason_suffix(e))
        ),
        details,
    }
}

/// The routing a `traffic_changing` asked for, in words: each server's
/// instance (and side when it is not the main one) and its weight, or
/// `out` when it takes no traffic. A routing of another shape is shown as
/// its JSON, cut.
fn asked(to: &serde_json::Value) -> String {
    let Some(servers) = to["servers"].as_array() else {
        let json: String = to.to_string().chars().take(300).collect();
        return md::code(&json);
    };
    let words: Vec<String> = servers
        .iter()
        .map(|s| {
            let name = s["instance"].as_str().unwrap_or("?");
            let side = match s["side"].as_str() {
                Some("main") | None => String::new(),
                Some(other) => format!(" ({other})"),
            };
            let weight = match s["weight"].as_u64() {
                Some(w) => format!("weight {w}"),
                None => "out".to_string(),
            };
            format!("{}{} {weight}", md::code(name), md::text(&side))
        })
        .collect();
    words.join(", ")
}

fn change_entry(c: &InstanceChange) -> Entry {
    let versions = match (&c.from_version, &c.to_version) {
        (Some(f), Some(t)) => format!(" {} → {}", md::text(f), md::text(t)),
        (None, Some(t)) => format!(" {}", md::text(t)),
        (Some(f), None) => format!(" from {}", md::text(f)),
        (None, None) => String::new(),
    };
    Entry {
        at_ms: c.at_ms,
        order: (2, c.id),
        line: format!(
            "**instance change** {}: {}{versions} ({})",
            md::code(&c.instance),
            md::text(c.action.as_str()),
            md::text(c.state.as_str())
        ),
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::incident::IncidentEvidence;
    use crate::model::{Side, Trigger};
    use crate::report::timeline::Subject;

    const T: i64 = 1_700_000_000_000;

    fn event(id: i64, at_ms: i64, actor: &str, reason: Option<&str>, kind: &EventKind) -> Event {
        let (k, evidence) = kind.to_stored();
        Event {
            id,
            at_ms,
            app: "web".into(),
            deployment_id: Some(7),
            kind: k,
            actor: actor.into(),
            reason: reason.map(String::from),
            evidence,
        }
    }

    fn evidence(message: &str) -> Evidence {
        Evidence {
            instance: "web-1".into(),
            side: Side::Main,
            port: 8080,
            probe: "health".into(),
            failure_threshold: 2,
            consecutive_fail: 2,
            reason: Some("2 failures in a row".into()),
            last_samples: vec![Sample {
                at_ms: T - 1_000,
                ok: false,
                latency_ms: 3.0,
                code: Some(503),
                error_kind: Some("status".into()),
                message: message.into(),
            }],
            ..Evidence::default()
        }
    }

    fn rows(events: Vec<Event>) -> Rows {
        Rows {
            subject: Subject::Incident(4),
            incident: Some(Incident {
                id: 4,
                app: "web".into(),
                deployment_id: Some(7),
                opened_ms: T,
                healthy_ms: Some(T + 65_000),
                resolved_ms: Some(T + 125_000),
                evidence: IncidentEvidence {
                    cause: IncidentCause::Gate,
                    failed: vec![evidence("down")],
                },
            }),
            deployment: None,
            deployments: Vec::new(),
            before: None,
            incidents: Vec::new(),
            events,
            changes: Vec::new(),
            failures: Vec::new(),
            now_ms: T + 200_000,
        }
    }

    #[test]
    fn an_incident_reads_as_a_header_then_its_events_in_time_order() {
        let gate = EventKind::GateFailed(GateOutcome::Failed {
            evidence: evidence("down"),
        });
        let md = render(&rows(vec![
            event(
                2,
                T + 500,
                "rollguard",
                None,
                &EventKind::RollbackStarted {
                    trigger: Trigger::GateFailed,
                    code: "E".into(),
                },
            ),
            event(1, T, "rollguard", None, &gate),
            event(
                3,
                T + 900,
                "ana",
                Some("ok now"),
                &EventKind::command(crate::model::Verb::Hold, "ana"),
            ),
        ]));
        let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s:?} in {md}"));
        assert!(
            md.starts_with("# Incident 4: web\n\n- **App:** web\n"),
            "{md}"
        );
        assert!(
            md.contains("- **Duration:** 1m 5s (opened → healthy again)\n"),
            "{md}"
        );
        assert!(md.contains("- **Release:** not known (no deployment recorded before it)"));
        assert!(md.contains("- **Trigger:** gate (during deployment 7): `health` on `web-1`"));
        assert!(
            md.contains("## Deployments during the incident\n\nNone.\n"),
            "{md}"
        );
        assert!(
            at(
                "2023-11-14 22:13:19 **probe failed** `health` on `web-1`: code 503, 3.0 ms, status, `down`"
            ) < at("**gate failed**")
        );
        assert!(at("**gate failed**") < at("**rollback started**"));
        assert!(at("**rollback started**") < at("**command hold** hold sent by ana — ok now"));
        // The gate's evidence, with its thresholds, under its line.
        assert!(md.contains("**gate failed** health on web-1: 2 failures in a row\n  - `health` on `web-1` (main side, port 8080): 2 failures in a row; thresholds: 2 failures in a row fail"), "{md}");
    }

    #[test]
    fn text_from_hosts_cannot_break_the_document() {
        let hostile = "boom\n# forged heading\n| a | b |\x1b[2J `tick` <script>";
        let gate = EventKind::GateFailed(GateOutcome::Failed {
            evidence: evidence(hostile),
        });
        let md = render(&rows(vec![event(
            1,
            T,
            "mallory*",
            Some("*why* [x](y)"),
            &gate,
        )]));
        assert!(!md.contains('\x1b'), "{md:?}");
        assert!(!md.contains("\n# forged"), "{md}");
        assert!(!md.contains("\n| a"), "{md}");
        // Inside a code span, where nothing is markup.
        let span = "``boom\\n# forged heading\\n| a | b |\\x1b[2J `tick` <script>``";
        assert!(md.contains(span), "{md}");
        assert_eq!(md.matches("<script>").count(), 1, "{md}");
        assert!(
            md.contains("— by mallory\\* — \\*why\\* \\[x\\](y)"),
            "{md}"
        );
    }

    #[test]
    fn an_unreadable_event_says_so() {
        let mut e = event(1, T, "rollguard", None, &EventKind::LockTaken);
        e.kind = "teleported".into();
        let md = render(&rows(vec![e]));
        assert!(md.contains("**teleported** (unreadable payload)"), "{md}");
    }

    #[test]
    fn a_routing_asked_for_reads_in_words() {
        let to = serde_json::json!({"servers": [
            {"instance": "web-1", "side": "main", "weight": null, "port": 1},
            {"instance": "web-2", "side": "alt", "weight": 2, "port": 2}
        ]});
        assert_eq!(asked(&to), "`web-1` out, `web-2` (alt) weight 2");
        assert_eq!(asked(&serde_json::json!({"x": 1})), "`{\"x\":1}`");
    }
}
