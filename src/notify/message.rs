//! What a notification says, decided from a recorded event and what the
//! history knows around it (its deployment, the app's rollback policy):
//! what happened, to which app and release, why (the probe, its
//! thresholds, the measured values), what rollguard did about it, who
//! acted and with what reason, and the `rollguard` command that shows it.
//! Pure: every receiver's payload is built from one [`Message`].
//!
//! One incident gives one message when it opens and one when it is
//! resolved: a probe that flaps widens the open incident
//! (`incident_widened`, told to nobody) instead of opening another, and
//! an incident is resolved only once the app stayed healthy for its
//! `resolve_after` (`health::incident`). Each message carries a dedup key
//! (`incident-ID` or `deployment-ID`) that groups what one outage or one
//! rollout says, for PagerDuty's alerts and for the order of delivery.

use serde::Serialize;

use crate::config::{AutoRollback, Secrets, format_duration};
use crate::error::Code;
use crate::model::DeploymentKind;
use crate::model::event::EventKind;
use crate::model::evidence::{Evidence, GateOutcome};
use crate::model::incident::IncidentCause;
use crate::model::topic::Topic;

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something is down or could not be undone.
    Critical,
    /// Something failed and is being dealt with.
    Warning,
    /// Something began.
    Info,
    /// Something ended well.
    Ok,
}

impl Severity {
    /// The stored and sent name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Ok => "ok",
        }
    }
}

/// What a deployment row says, for a message about one of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// Its id.
    pub id: i64,
    /// The release before it, when one ran everywhere.
    pub from: Option<String>,
    /// The release it deploys.
    pub to: String,
    /// A deploy or a manual rollback.
    pub rollback: bool,
    /// Who started it.
    pub actor: String,
    /// Why, as they said.
    pub reason: Option<String>,
}

/// What is known around an event.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The event's id.
    pub event_id: i64,
    /// When it was recorded.
    pub at_ms: i64,
    /// Its app.
    pub app: &'a str,
    /// Who recorded it (an operator for commands, else `rollguard`).
    pub actor: &'a str,
    /// Its reason, when one was given.
    pub reason: Option<&'a str>,
    /// Its deployment, if it belongs to one.
    pub deployment: Option<DeploymentFacts>,
    /// The app's `auto_rollback`, when the config names the app.
    pub auto_rollback: Option<AutoRollback>,
    /// When the event's incident (or else its deployment) began, when it
    /// is known.
    pub since_ms: Option<i64>,
}

/// A notification in words, before any receiver's format.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    /// What it tells of.
    #[serde(serialize_with = "topic_name")]
    pub topic: Topic,
    /// How bad it is.
    pub severity: Severity,
    /// The app.
    pub app: String,
    /// The release concerned, when there is one.
    pub release: Option<String>,
    /// The incident, for incident topics.
    pub incident: Option<i64>,
    /// The deployment, when the event belongs to one.
    pub deployment: Option<i64>,
    /// The event told of.
    pub event_id: i64,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
    /// One line: what happened.
    pub title: String,
    /// What happened, in a sentence.
    pub what: String,
    /// Why: one line per failing probe with its thresholds and measured
    /// values, or the failure's code and meaning.
    pub why: Vec<String>,
    /// What rollguard did or does about it.
    pub done: String,
    /// Who acted, and their reason.
    pub who: Option<String>,
    /// The command that shows more.
    pub look: String,
    /// Groups one incident's or one deployment's messages.
    pub dedup_key: String,
    /// A few words of why, for a subject line: "health failing on
    /// checkout-2", "after 4m 5s".
    pub cause: Option<String>,
    /// When the incident or deployment this message belongs to began:
    /// with `dedup_key`, it names the thread of an email receiver.
    pub since_ms: Option<i64>,
}

fn topic_name<S: serde::Serializer>(t: &Topic, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

impl Message {
    /// Every text of the message with `secrets` written as `***`.
    pub fn masked(mut self, secrets: &Secrets) -> Message {
        let m = |s: &mut String| *s = secrets.mask(s);
        m(&mut self.title);
        m(&mut self.what);
        self.why.iter_mut().for_each(m);
        m(&mut self.done);
        if let Some(w) = self.who.as_mut() {
            m(w);
        }
        m(&mut self.look);
        if let Some(c) = self.cause.as_mut() {
            m(c);
        }
        self
    }

    /// The message `rollguard notify test` sends.
    pub fn sample(receiver: &str, at_ms: i64) -> Message {
        Message {
            topic: Topic::IncidentOpened,
            severity: Severity::Info,
            app: "rollguard".into(),
            release: None,
            incident: None,
            deployment: None,
            event_id: 0,
            at_ms,
            title: format!("rollguard test message to {receiver}"),
            what: format!("`rollguard notify test {receiver}` sent this to check the receiver."),
            why: vec!["an operator asked for it".into()],
            done: "nothing: this is only a test".into(),
            who: None,
            look: format!("rollguard notify test {receiver}"),
            dedup_key: format!("test-{at_ms}"),
            cause: Some("a test".into()),
            since_ms: None,
        }
    }
}

/// The message of `event`, or `None` when nobody is told of it.
pub fn message(event: &EventKind, cx: &Context<'_>) -> Option<Message> {
    let topic = Topic::of(event)?;
    let mut m = base(topic, cx);
    let n = Names::of(cx);
    match event {
        EventKind::IncidentOpened { .. } | EventKind::IncidentResolved { .. } => {
            incident(&mut m, event, &n)
        }
        EventKind::RolloutFailed { .. }
        | EventKind::DeployRequested { .. }
        | EventKind::RolloutCompleted { .. } => rollout(&mut m, event, &n, cx),
        EventKind::RollbackArmed { .. }
        | EventKind::RollbackStarted { .. }
        | EventKind::RollbackCompleted { .. }
        | EventKind::RollbackFailed { .. } => rollback(&mut m, event, &n),
        _ => return None,
    }
    Some(m)
}

/// The names a message says: the app, its deployment, the release it
/// brings and the one before.
struct Names<'a> {
    app: &'a str,
    dep: Option<&'a DeploymentFacts>,
    release: Option<String>,
    target: String,
    previous: String,
}

impl<'a> Names<'a> {
    fn of(cx: &'a Context<'a>) -> Names<'a> {
        let dep = cx.deployment.as_ref();
        Names {
            app: cx.app,
            dep,
            release: dep.map(|d| d.to.clone()),
            target: dep.map_or("the new release".to_string(), |d| d.to.clone()),
            previous: dep
                .and_then(|d| d.from.clone())
                .unwrap_or_else(|| "the previous release".into()),
        }
    }
}

/// A message of `topic` before its words: about `cx`'s app and
/// deployment, an info, pointing at `rollguard status`.
fn base(topic: Topic, cx: &Context<'_>) -> Message {
    let app = cx.app;
    let dep = cx.deployment.as_ref();
    let deployment_key = dep.map_or_else(
        || format!("event-{}", cx.event_id),
        |d| format!("deployment-{}", d.id),
    );
    Message {
        topic,
        severity: Severity::Info,
        app: app.to_string(),
        release: dep.map(|d| d.to.clone()),
        incident: None,
        deployment: dep.map(|d| d.id),
        event_id: cx.event_id,
        at_ms: cx.at_ms,
        title: String::new(),
        what: String::new(),
        why: Vec::new(),
        done: String::new(),
        who: who(cx),
        look: format!("rollguard status {app}"),
        dedup_key: deployment_key,
        cause: None,
        since_ms: cx.since_ms,
    }
}

/// The words of an incident's opening or resolution.
fn incident(m: &mut Message, event: &EventKind, n: &Names<'_>) {
    let Names {
        app, dep, target, ..
    } = n;
    match event {
        EventKind::IncidentOpened {
            incident,
            cause,
            evidence,
        } => {
            m.severity = Severity::Critical;
            m.incident = Some(*incident);
            m.dedup_key = format!("incident-{incident}");
            let names = instances(evidence);
            m.title = format!("{app} is failing: incident {incident} opened");
            m.what = match cause {
                IncidentCause::Gate => {
                    format!("A rollout's gate failed on {app} ({names}).")
                }
                IncidentCause::Probe => format!("{app} turned unhealthy on {names}."),
            };
            m.why = evidence.iter().map(evidence_line).collect();
            m.cause = failing_words(evidence);
            m.done = match (cause, dep) {
                (IncidentCause::Gate, _) => {
                    format!("The rollout of {target} fails; what follows is its rollback policy.")
                }
                (IncidentCause::Probe, Some(d)) => format!(
                    "Deployment {} of {} was running: its gate decides whether it rolls back.",
                    d.id, d.to
                ),
                (IncidentCause::Probe, None) => {
                    "No rollout was running: nothing was changed. rollguard keeps watching and \
                         says when it is resolved."
                        .into()
                }
            };
            m.look = format!("rollguard events --app {app} --since 1h");
        }
        EventKind::IncidentResolved {
            incident,
            outage_ms,
            instances,
            ..
        } => {
            m.severity = Severity::Ok;
            m.incident = Some(*incident);
            m.dedup_key = format!("incident-{incident}");
            m.title = format!("{app} recovered: incident {incident} resolved");
            m.what = format!(
                "{app} is healthy again after an outage of {}.",
                elapsed_words(*outage_ms)
            );
            m.cause = Some(format!("after {}", elapsed_words(*outage_ms)));
            if !instances.is_empty() {
                m.why = vec![format!("instances that failed: {}", instances.join(", "))];
            }
            m.done = "The incident is closed.".into();
            m.look = format!("rollguard events --app {app} --since 1h");
        }
        _ => {}
    }
}

/// The words of a rollout's request, failure or success.
fn rollout(m: &mut Message, event: &EventKind, n: &Names<'_>, cx: &Context<'_>) {
    let Names {
        app,
        target,
        previous,
        ..
    } = n;
    match event {
        EventKind::RolloutFailed { code, evidence, .. } => {
            m.severity = Severity::Critical;
            m.title = format!("{app}: the rollout of {target} failed ({code})");
            m.what = format!("The rollout of {target} on {app} failed.");
            m.why = code_line(code).into_iter().collect();
            if let Ok(outcome) = serde_json::from_value::<GateOutcome>(evidence.clone()) {
                m.why.extend(gate_lines(&outcome));
            }
            m.done = match cx.auto_rollback {
                Some(AutoRollback::Auto) => format!("Rolling back to {previous} now."),
                Some(AutoRollback::Confirm) => format!(
                    "A rollback to {previous} is armed and fires unless held: \
                         `rollguard hold {app}` keeps {target}, `rollguard fire {app}` rolls back now."
                ),
                Some(AutoRollback::Off) => format!(
                    "Nothing was undone (auto_rollback = \"off\"): waiting for an operator; \
                         `rollguard rollback {app}` puts {previous} back."
                ),
                None => "Its rollback policy decides what follows.".into(),
            };
        }
        EventKind::DeployRequested { from, to, kind, .. } => {
            let verb = match kind {
                DeploymentKind::Rollback => "rolling back to",
                DeploymentKind::Deploy => "deploying",
            };
            m.release = Some(to.clone());
            m.title = match from {
                Some(f) => format!("{app}: {verb} {to} (from {f})"),
                None => format!("{app}: {verb} {to}"),
            };
            m.what = format!("A rollout of {to} on {app} began.");
            m.done = "Health-gated: it rolls back on failure as the app's policy says.".into();
        }
        EventKind::RolloutCompleted { version } => {
            m.severity = Severity::Ok;
            m.release = Some(version.clone());
            m.title = format!("{app}: {version} deployed");
            m.what = format!("Every stage of the rollout of {version} on {app} passed.");
            m.done = "Deployed.".into();
        }
        _ => {}
    }
}

/// The words of a rollback armed, started, finished or failed.
fn rollback(m: &mut Message, event: &EventKind, n: &Names<'_>) {
    let Names {
        app,
        dep,
        release,
        target,
        previous,
    } = n;
    match event {
        EventKind::RollbackArmed { fires_in_ms } => {
            m.severity = Severity::Warning;
            let wait = format_duration(std::time::Duration::from_millis(*fires_in_ms));
            m.title = format!("{app}: rollback to {previous} fires in {wait} unless held");
            m.what = format!("The rollout of {target} on {app} failed; its rollback is armed.");
            m.done = format!(
                "Armed with a countdown of {wait}: `rollguard hold {app}` keeps {target}, \
                     `rollguard fire {app}` rolls back now."
            );
        }
        EventKind::RollbackStarted { code, trigger } => {
            m.severity = Severity::Warning;
            m.title = format!("{app}: rolling back {target} to {previous}");
            m.what = format!("rollguard is rolling {app} back after {code} ({trigger}).");
            m.why = code_line(code).into_iter().collect();
            m.done = format!("Restoring {previous} on every instance the rollout replaced.");
        }
        EventKind::RollbackCompleted { outcome, .. } => {
            m.severity = Severity::Ok;
            m.release = dep.and_then(|d| d.from.clone()).or(release.clone());
            m.title = format!("{app}: rolled back to {previous}");
            m.what = format!("Every instance of {app} runs {previous} again.");
            m.done = format!("Rollback finished: {}.", outcome.as_str().replace('_', " "));
        }
        EventKind::RollbackFailed {
            unrestored,
            outcome,
        } => {
            m.severity = Severity::Critical;
            m.title = format!("{app}: the rollback to {previous} did not finish");
            m.what = format!("Some instances of {app} could not be restored.");
            if !unrestored.is_empty() {
                m.why = vec![format!("not restored: {}", unrestored.join(", "))];
            }
            m.done = format!(
                "{}: an operator must look; `rollguard status {app}` shows what runs where.",
                outcome.as_str().replace('_', " ")
            );
        }
        _ => {}
    }
}

/// "by ana: hotfix for checkout" from the event's actor, or the
/// deployment's when rollguard wrote the event.
fn who(cx: &Context<'_>) -> Option<String> {
    let (actor, reason) = if cx.actor != "rollguard" && !cx.actor.is_empty() {
        (cx.actor.to_string(), cx.reason.map(String::from))
    } else {
        let d = cx.deployment.as_ref()?;
        (d.actor.clone(), d.reason.clone())
    };
    let reason = reason.filter(|r| !r.trim().is_empty());
    Some(match reason {
        Some(r) => format!("{actor}: \"{r}\""),
        None => actor,
    })
}

/// The instances named in `evidence`, once each, joined.
fn instances(evidence: &[Evidence]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for e in evidence {
        if !names.contains(&e.instance.as_str()) {
            names.push(&e.instance);
        }
    }
    if names.is_empty() {
        "an instance".into()
    } else {
        names.join(", ")
    }
}

/// "health failing on checkout-2", "health on web-1, tcp on web-2
/// failing": what failed, in a few words; at most three named.
fn failing_words(evidence: &[Evidence]) -> Option<String> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for e in evidence {
        if !pairs.contains(&(e.probe.as_str(), e.instance.as_str())) {
            pairs.push((&e.probe, &e.instance));
        }
    }
    let (first, _) = *pairs.first()?;
    let more = pairs.len().saturating_sub(3);
    let shown = &pairs[..pairs.len().min(3)];
    let mut words = if shown.iter().all(|(p, _)| *p == first) {
        let names: Vec<&str> = shown.iter().map(|(_, i)| *i).collect();
        format!("{first} failing on {}", names.join(", "))
    } else {
        let names: Vec<String> = shown.iter().map(|(p, i)| format!("{p} on {i}")).collect();
        format!("{} failing", names.join(", "))
    };
    if more > 0 {
        words.push_str(&format!(" and {more} more"));
    }
    Some(words)
}

/// "health on checkout-2: 3 failures in a row (threshold 3); last: code
/// 500 in 12 ms, status 500".
pub fn evidence_line(e: &Evidence) -> String {
    let why = e.reason.clone().unwrap_or_else(|| e.budget());
    let mut line = format!("{} on {}: {why}", e.probe, e.instance);
    if let Some(s) = e.last_samples.last() {
        let mut last = Vec::new();
        if let Some(code) = s.code {
            last.push(format!("code {code}"));
        }
        if s.latency_ms.is_finite() {
            last.push(format!("{:.0} ms", s.latency_ms));
        }
        if !s.message.is_empty() {
            last.push(s.message.clone());
        }
        if !last.is_empty() {
            line.push_str(&format!("; last: {}", last.join(", ")));
        }
    }
    line
}

/// What a gate saw, a line per probe that failed.
fn gate_lines(outcome: &GateOutcome) -> Vec<String> {
    match outcome {
        GateOutcome::Failed { evidence } => vec![evidence_line(evidence)],
        GateOutcome::Deadline {
            deadline_ms,
            evidence,
        } => {
            let mut lines = vec![format!(
                "not healthy within {}",
                format_duration(std::time::Duration::from_millis(*deadline_ms))
            )];
            lines.extend(evidence.iter().map(evidence_line));
            lines
        }
        GateOutcome::Passed { .. } | GateOutcome::Cancelled => Vec::new(),
    }
}

/// "E_GATE_FAILED: a probe failed during a rollout ...".
fn code_line(code: &str) -> Option<String> {
    Code::parse(code).map(|c| format!("{c}: {}", c.meaning()))
}

/// A measured length in words: "3.8s", "4m 5s", "2h 10m".
fn elapsed_words(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::evidence::Sample;
    use crate::model::{Outcome, Trigger};

    fn cx(deployment: Option<DeploymentFacts>) -> Context<'static> {
        Context {
            event_id: 9,
            at_ms: 1_700_000_000_000,
            app: "checkout",
            actor: "rollguard",
            reason: None,
            deployment,
            auto_rollback: Some(AutoRollback::Confirm),
            since_ms: Some(1_699_999_990_000),
        }
    }

    fn dep() -> DeploymentFacts {
        DeploymentFacts {
            id: 7,
            from: Some("v1".into()),
            to: "v2".into(),
            rollback: false,
            actor: "ana".into(),
            reason: Some("ship the fix".into()),
        }
    }

    fn failing() -> Evidence {
        Evidence {
            instance: "checkout-2".into(),
            probe: "health".into(),
            failure_threshold: 3,
            reason: Some("3 failures in a row (threshold 3)".into()),
            last_samples: vec![Sample {
                at_ms: 0,
                ok: false,
                latency_ms: 12.4,
                code: Some(500),
                error_kind: Some("status".into()),
                message: "status 500".into(),
            }],
            ..Evidence::default()
        }
    }

    #[test]
    fn an_incident_says_what_failed_why_and_how_to_look() {
        let e = EventKind::IncidentOpened {
            incident: 4,
            cause: IncidentCause::Probe,
            evidence: vec![failing()],
        };
        let m = message(&e, &cx(None)).unwrap();
        assert_eq!(m.title, "checkout is failing: incident 4 opened");
        assert_eq!(m.what, "checkout turned unhealthy on checkout-2.");
        assert_eq!(
            m.why,
            [
                "health on checkout-2: 3 failures in a row (threshold 3); last: code 500, 12 ms, status 500"
            ]
        );
        assert!(m.done.contains("nothing was changed"), "{}", m.done);
        assert_eq!(m.look, "rollguard events --app checkout --since 1h");
        assert_eq!(m.cause.as_deref(), Some("health failing on checkout-2"));
        assert_eq!(m.since_ms, Some(1_699_999_990_000));
        assert_eq!(
            (m.severity, m.dedup_key.as_str()),
            (Severity::Critical, "incident-4")
        );
        let resolved = EventKind::IncidentResolved {
            incident: 4,
            opened_ms: 0,
            healthy_ms: 245_000,
            outage_ms: 245_000,
            instances: vec!["checkout-2".into()],
        };
        let r = message(&resolved, &cx(None)).unwrap();
        assert_eq!(r.dedup_key, m.dedup_key);
        assert_eq!(
            r.what,
            "checkout is healthy again after an outage of 4m 5s."
        );
        // A widening is told to nobody: one incident, two messages.
        let widened = EventKind::IncidentWidened {
            incident: 4,
            evidence: vec![failing()],
        };
        assert_eq!(message(&widened, &cx(None)), None);
        assert_eq!(r.cause.as_deref(), Some("after 4m 5s"));
    }

    #[test]
    fn a_cause_names_at_most_three_failures() {
        let on = |probe: &str, instance: &str| Evidence {
            probe: probe.into(),
            instance: instance.into(),
            ..failing()
        };
        let two = [on("health", "a"), on("health", "b"), on("health", "a")];
        assert_eq!(
            failing_words(&two).as_deref(),
            Some("health failing on a, b")
        );
        let mixed = [
            on("health", "a"),
            on("tcp", "b"),
            on("tcp", "c"),
            on("x", "d"),
        ];
        assert_eq!(
            failing_words(&mixed).as_deref(),
            Some("health on a, tcp on b, tcp on c failing and 1 more")
        );
        assert_eq!(failing_words(&[]), None);
    }

    #[test]
    fn a_failed_rollout_says_what_rollguard_does_and_who_deployed() {
        let e = EventKind::RolloutFailed {
            trigger: Trigger::GateFailed,
            code: Code::GateFailed.as_str().into(),
            evidence: serde_json::to_value(GateOutcome::Failed {
                evidence: failing(),
            })
            .unwrap(),
        };
        let m = message(&e, &cx(Some(dep()))).unwrap();
        assert_eq!(
            m.title,
            format!("checkout: the rollout of v2 failed ({})", Code::GateFailed)
        );
        assert!(
            m.why[0].starts_with(Code::GateFailed.as_str()),
            "{:?}",
            m.why
        );
        assert!(m.why[1].starts_with("health on checkout-2"), "{:?}", m.why);
        assert!(m.done.contains("armed") && m.done.contains("rollguard hold checkout"));
        assert_eq!(m.who.as_deref(), Some("ana: \"ship the fix\""));
        assert_eq!(m.dedup_key, "deployment-7");
        assert_eq!(m.release.as_deref(), Some("v2"));
        let armed = message(
            &EventKind::RollbackArmed {
                fires_in_ms: 30_000,
            },
            &cx(Some(dep())),
        )
        .unwrap();
        assert_eq!(
            armed.title,
            "checkout: rollback to v1 fires in 30s unless held"
        );
        let done = message(
            &EventKind::RollbackCompleted {
                unrestored: vec![],
                outcome: Outcome::RolledBack,
            },
            &cx(Some(dep())),
        )
        .unwrap();
        assert_eq!(done.title, "checkout: rolled back to v1");
        assert_eq!(done.release.as_deref(), Some("v1"));
    }

    #[test]
    fn an_operator_is_named_with_their_reason_and_secrets_are_masked() {
        let mut c = cx(Some(dep()));
        c.actor = "bo";
        c.reason = Some("latency with token s3cret-token");
        let m = message(
            &EventKind::RollbackStarted {
                trigger: Trigger::Abort,
                code: Code::Aborted.as_str().into(),
            },
            &c,
        )
        .unwrap();
        let secrets = Secrets::new([("T".to_string(), "s3cret-token".to_string())]);
        let m = m.masked(&secrets);
        assert_eq!(m.who.as_deref(), Some("bo: \"latency with token ***\""));
        assert!(message(&EventKind::LockTaken, &c).is_none());
    }
}
