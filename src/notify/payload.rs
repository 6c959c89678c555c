//! Each receiver type's body, built from one [`Message`]: Slack blocks,
//! a Discord embed, rollguard's own webhook JSON, a PagerDuty Events v2
//! trigger or resolve, and what a command receiver is given (the webhook
//! JSON on standard input and a Markdown timeline in a file), an email's
//! subject, thread ids and text (`email`). Pure. A
//! body holds no secret: a PagerDuty routing key is added when it is
//! sent ([`with_routing_key`]), a signature is made when it is sent.
//!
//! Slack and Discord bodies are short enough to read on a phone: the
//! title, one sentence of what happened, a bullet per reason, what
//! rollguard did, who acted, and the command to look further.

use serde_json::{Value, json};

use super::message::{Message, Severity};
use crate::config::ReceiverKind;
use crate::model::topic::Topic;

/// The version of the webhook body, its `version` field.
pub const WEBHOOK_VERSION: u32 = 1;

/// The body `kind` gets for `m`, or `None` when that receiver type has
/// nothing to say about its topic (PagerDuty is told of failures and
/// their ends only).
pub fn body(kind: &ReceiverKind, m: &Message) -> Option<Value> {
    Some(match kind {
        ReceiverKind::Slack { .. } => slack(m),
        ReceiverKind::Discord { .. } => discord(m),
        ReceiverKind::Webhook { .. } => webhook(m),
        ReceiverKind::Pagerduty { .. } => pagerduty(m)?,
        ReceiverKind::Command { .. } => json!({
            "event": webhook(m),
            "timeline": markdown(m),
        }),
        ReceiverKind::Email(spec) => super::email::body(m, &spec.from),
        // A live stream, not told through the outbox.
        ReceiverKind::Websocket { .. } => return None,
    })
}

/// rollguard's webhook body (documented in the README).
pub fn webhook(m: &Message) -> Value {
    json!({
        "version": WEBHOOK_VERSION,
        "topic": m.topic.as_str(),
        "severity": m.severity.as_str(),
        "app": m.app,
        "release": m.release,
        "incident": m.incident,
        "deployment": m.deployment,
        "event_id": m.event_id,
        "at": rfc3339(m.at_ms),
        "at_ms": m.at_ms,
        "title": m.title,
        "what": m.what,
        "why": m.why,
        "done": m.done,
        "who": m.who,
        "look": m.look,
        "dedup_key": m.dedup_key,
    })
}

/// A Slack incoming-webhook message: a header, what happened, the app and
/// release, why, what was done, who, and the command to look.
pub fn slack(m: &Message) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&format!("{} {}", mark(m.severity), m.title), 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&slack_escape(&m.what), 3000)}}),
    ];
    let mut fields =
        vec![json!({"type": "mrkdwn", "text": format!("*App*\n{}", slack_escape(&m.app))})];
    if let Some(r) = &m.release {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Release*\n{}", slack_escape(r))}));
    }
    if let Some(i) = m.incident {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Incident*\n{i}")}));
    }
    if let Some(d) = m.deployment {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Deployment*\n{d}")}));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    if !m.why.is_empty() {
        let lines: Vec<String> = m
            .why
            .iter()
            .map(|w| format!("• {}", slack_escape(w)))
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*Why*\n{}", lines.join("\n")), 3000)}}));
    }
    if !m.done.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*What rollguard did*\n{}", slack_escape(&m.done)), 3000)}}));
    }
    let mut context =
        vec![json!({"type": "mrkdwn", "text": format!("`{}`", slack_escape(&m.look))})];
    if let Some(w) = &m.who {
        context.push(json!({"type": "mrkdwn", "text": format!("by {}", slack_escape(w))}));
    }
    blocks.push(json!({"type": "context", "elements": context}));
    json!({"text": m.title, "blocks": blocks})
}

/// A Discord webhook message with one embed, coloured by severity;
/// mentions are off so no text from the history pings anyone.
pub fn discord(m: &Message) -> Value {
    let mut fields = vec![json!({"name": "App", "value": cut(&m.app, 1024), "inline": true})];
    if let Some(r) = &m.release {
        fields.push(json!({"name": "Release", "value": cut(r, 1024), "inline": true}));
    }
    if !m.why.is_empty() {
        let lines: Vec<String> = m.why.iter().map(|w| format!("• {w}")).collect();
        fields.push(json!({"name": "Why", "value": cut(&lines.join("\n"), 1024)}));
    }
    if !m.done.is_empty() {
        fields.push(json!({"name": "What rollguard did", "value": cut(&m.done, 1024)}));
    }
    if let Some(w) = &m.who {
        fields.push(json!({"name": "Who", "value": cut(w, 1024)}));
    }
    fields.push(json!({"name": "Look", "value": cut(&format!("`{}`", m.look), 1024)}));
    let footer = match (m.incident, m.deployment) {
        (Some(i), _) => format!("rollguard · incident {i}"),
        (None, Some(d)) => format!("rollguard · deployment {d}"),
        _ => "rollguard".to_string(),
    };
    json!({
        "username": "rollguard",
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": cut(&m.title, 256),
            "description": cut(&m.what, 4096),
            "color": color(m.severity),
            "fields": fields,
            "timestamp": rfc3339(m.at_ms),
            "footer": {"text": footer},
        }],
    })
}

/// A PagerDuty Events API v2 event without its routing key: `trigger`
/// for an incident, a failed rollout or its rollback, `resolve` when the
/// incident or the rollout's rollback ends; the dedup key is the
/// incident's or the deployment's. `None` for other topics.
pub fn pagerduty(m: &Message) -> Option<Value> {
    let action = match m.topic {
        Topic::IncidentOpened
        | Topic::RolloutFailed
        | Topic::RollbackArmed
        | Topic::RollbackStarted => "trigger",
        Topic::IncidentResolved => "resolve",
        Topic::RollbackFinished if m.severity == Severity::Ok => "resolve",
        // A rollback that did not finish stays open, and says so.
        Topic::RollbackFinished => "trigger",
        Topic::DeployStarted | Topic::DeployFinished => return None,
    };
    let mut event = json!({
        "event_action": action,
        "dedup_key": format!("rollguard-{}", m.dedup_key),
        "client": "rollguard",
    });
    if action == "trigger" {
        event["payload"] = json!({
            "summary": cut(&m.title, 1024),
            "source": m.app,
            "severity": match m.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning",
                Severity::Info | Severity::Ok => "info",
            },
            "timestamp": rfc3339(m.at_ms),
            "component": m.app,
            "class": m.topic.as_str(),
            "custom_details": {
                "what": m.what,
                "why": m.why,
                "done": m.done,
                "who": m.who,
                "look": m.look,
                "release": m.release,
                "incident": m.incident,
                "deployment": m.deployment,
            },
        });
    }
    Some(event)
}

/// `body` with `routing_key` added, as PagerDuty is sent it.
pub fn with_routing_key(body: &Value, routing_key: &str) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.insert("routing_key".into(), Value::String(routing_key.to_string()));
    }
    b
}

/// The message as Markdown: the start of a timeline a team can keep.
pub fn markdown(m: &Message) -> String {
    let mut out = format!("# {}\n\n{}\n\n", m.title, m.what);
    out.push_str(&format!("- app: {}\n", m.app));
    if let Some(r) = &m.release {
        out.push_str(&format!("- release: {r}\n"));
    }
    if let Some(i) = m.incident {
        out.push_str(&format!("- incident: {i}\n"));
    }
    if let Some(d) = m.deployment {
        out.push_str(&format!("- deployment: {d}\n"));
    }
    if let Some(at) = rfc3339(m.at_ms) {
        out.push_str(&format!("- at: {at}\n"));
    }
    if !m.why.is_empty() {
        out.push_str("\n## Why\n\n");
        for w in &m.why {
            out.push_str(&format!("- {w}\n"));
        }
    }
    if !m.done.is_empty() {
        out.push_str(&format!("\n## What rollguard did\n\n{}\n", m.done));
    }
    if let Some(w) = &m.who {
        out.push_str(&format!("\n## Who\n\n{w}\n"));
    }
    out.push_str(&format!("\n## Look\n\n    {}\n", m.look));
    out
}

fn mark(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "🔴",
        Severity::Warning => "🟠",
        Severity::Info => "🔵",
        Severity::Ok => "🟢",
    }
}

fn color(s: Severity) -> u32 {
    match s {
        Severity::Critical => 0xD0_2F_2F,
        Severity::Warning => 0xF5_9E_0B,
        Severity::Info => 0x3B_82_F6,
        Severity::Ok => 0x16_A3_4A,
    }
}

/// Slack's mrkdwn escapes: `&`, `<` and `>`, so no text makes a link or a
/// mention.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `s` cut to at most `max` characters, with `…` where it was cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: Topic, severity: Severity) -> Message {
        Message {
            topic,
            severity,
            app: "checkout".into(),
            release: Some("v2".into()),
            incident: Some(4),
            deployment: None,
            event_id: 9,
            at_ms: 1_700_000_000_000,
            title: "checkout is failing: incident 4 opened".into(),
            what: "checkout turned unhealthy on <checkout-2>.".into(),
            why: vec!["health on checkout-2: 3 failures in a row".into()],
            done: "nothing was changed".into(),
            who: None,
            look: "rollguard events --app checkout --since 1h".into(),
            dedup_key: "incident-4".into(),
            cause: Some("health failing on checkout-2".into()),
            since_ms: Some(1_699_999_990_000),
        }
    }

    #[test]
    fn slack_gets_blocks_with_escaped_text() {
        let b = slack(&msg(Topic::IncidentOpened, Severity::Critical));
        assert_eq!(b["text"], "checkout is failing: incident 4 opened");
        assert_eq!(b["blocks"][0]["type"], "header");
        assert_eq!(
            b["blocks"][1]["text"]["text"],
            "checkout turned unhealthy on &lt;checkout-2&gt;."
        );
        let all = b.to_string();
        assert!(
            all.contains("*Why*") && all.contains("`rollguard events --app checkout --since 1h`")
        );
    }

    #[test]
    fn discord_gets_an_embed_without_mentions() {
        let b = discord(&msg(Topic::IncidentOpened, Severity::Critical));
        let e = &b["embeds"][0];
        assert_eq!(e["title"], "checkout is failing: incident 4 opened");
        assert_eq!(e["color"], 0xD0_2F_2F);
        assert_eq!(e["timestamp"], "2023-11-14T22:13:20.000Z");
        assert_eq!(e["footer"]["text"], "rollguard · incident 4");
        assert_eq!(b["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn pagerduty_triggers_then_resolves_with_one_dedup_key() {
        let t = pagerduty(&msg(Topic::IncidentOpened, Severity::Critical)).unwrap();
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["dedup_key"], "rollguard-incident-4");
        assert_eq!(t["payload"]["severity"], "critical");
        assert!(t.get("routing_key").is_none());
        let r = pagerduty(&msg(Topic::IncidentResolved, Severity::Ok)).unwrap();
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert!(r.get("payload").is_none());
        assert_eq!(pagerduty(&msg(Topic::DeployFinished, Severity::Ok)), None);
        assert_eq!(with_routing_key(&r, "rk")["routing_key"], "rk");
    }

    #[test]
    fn webhook_json_and_markdown_say_everything() {
        let m = msg(Topic::IncidentOpened, Severity::Critical);
        let w = webhook(&m);
        assert_eq!(w["version"], 1);
        assert_eq!(w["topic"], "incident_opened");
        assert_eq!(w["at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(w["why"][0], "health on checkout-2: 3 failures in a row");
        let md = markdown(&m);
        assert!(
            md.starts_with("# checkout is failing: incident 4 opened\n"),
            "{md}"
        );
        assert!(md.contains("## Why\n\n- health on checkout-2"), "{md}");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
