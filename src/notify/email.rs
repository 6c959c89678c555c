//! What an email says: its subject, its thread headers and its plain-text
//! body, built from one [`Message`]. Pure; `smtp` sends it.
//!
//! One thread per incident or deployment: the message that starts it
//! (`incident_opened`, `deploy_started`) has the thread's own
//! `Message-ID`, and every later one (`incident_resolved`, a rollback...)
//! has an id of its own and names the thread's in `In-Reply-To` and
//! `References`, so mail clients put them together whichever were sent.
//! The ids come from the app, the dedup key (`incident-ID`,
//! `deployment-ID`), when the incident or deployment began and the
//! event, under the `from` address's domain: the same on every attempt,
//! and different for a new history whose ids start again at 1.

use serde_json::{Value, json};

use super::message::Message;
use crate::model::topic::Topic;

/// Characters of a subject kept (mail clients cut long ones anyway).
pub const SUBJECT_CHARS: usize = 200;

/// The email body stored in the outbox: `subject`, `text`, `message_id`,
/// and `in_reply_to` (null when the message starts its thread). `from`
/// is the sender's address (its domain names the ids).
pub fn body(m: &Message, from: &str) -> Value {
    let ids = thread(m, &domain(from));
    json!({
        "subject": subject(m),
        "text": text(m),
        "message_id": ids.message_id,
        "in_reply_to": ids.in_reply_to,
    })
}

/// "\[rollguard\] checkout is failing: incident 4 opened (health failing on
/// checkout-2; release v2)": the title, with why in a few words and the
/// release when the title does not name it. One line.
pub fn subject(m: &Message) -> String {
    let mut extra: Vec<String> = m.cause.iter().cloned().collect();
    if let Some(r) = m.release.as_ref().filter(|r| !m.title.contains(r.as_str())) {
        extra.push(format!("release {r}"));
    }
    let mut s = format!("[rollguard] {}", m.title);
    if !extra.is_empty() {
        s.push_str(&format!(" ({})", extra.join("; ")));
    }
    let line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= SUBJECT_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(SUBJECT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A message's thread headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    /// Its own `Message-ID`, with its angle brackets.
    pub message_id: String,
    /// The thread's first message, for `In-Reply-To` and `References`;
    /// `None` for the first message itself.
    pub in_reply_to: Option<String>,
}

/// The thread headers of `m`, with ids under `domain`.
pub fn thread(m: &Message, domain: &str) -> Thread {
    let since = m.since_ms.map_or(String::new(), |t| format!(".{t}"));
    let root = format!(
        "<rollguard.{}.{}{since}@{domain}>",
        atom(&m.app),
        atom(&m.dedup_key)
    );
    let starts = match m.topic {
        Topic::IncidentOpened => m.incident.is_some() || m.deployment.is_none(),
        Topic::DeployStarted => true,
        _ => m.incident.is_none() && m.deployment.is_none(),
    };
    if starts {
        Thread {
            message_id: root,
            in_reply_to: None,
        }
    } else {
        Thread {
            message_id: format!(
                "<rollguard.{}.{}{since}.{}@{domain}>",
                atom(&m.app),
                atom(&m.dedup_key),
                m.event_id
            ),
            in_reply_to: Some(root),
        }
    }
}

/// The domain of `from` ("Ops <ops@example.com>" → "example.com"), or
/// `rollguard.invalid` when it has none.
pub fn domain(from: &str) -> String {
    from.parse::<lettre::message::Mailbox>()
        .map(|m| atom(m.email.domain()))
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "rollguard.invalid".into())
}

/// `s` with only what a `Message-ID` part may hold (letters, digits,
/// `.`, `-`, `_`); anything else is `-`.
fn atom(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The plain-text body: what happened, the facts, why, what rollguard
/// did, who, and the command to look.
pub fn text(m: &Message) -> String {
    let mut out = format!("{}\n\n{}\n\n", m.title, m.what);
    let mut facts = vec![("App", m.app.clone())];
    if let Some(r) = &m.release {
        facts.push(("Release", r.clone()));
    }
    if let Some(i) = m.incident {
        facts.push(("Incident", i.to_string()));
    }
    if let Some(d) = m.deployment {
        facts.push(("Deployment", d.to_string()));
    }
    if let Some(at) = chrono::DateTime::from_timestamp_millis(m.at_ms) {
        facts.push(("At", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    }
    for (k, v) in facts {
        out.push_str(&format!("{:<12}{v}\n", format!("{k}:")));
    }
    if !m.why.is_empty() {
        out.push_str("\nWhy\n");
        for w in &m.why {
            out.push_str(&format!("  - {w}\n"));
        }
    }
    if !m.done.is_empty() {
        out.push_str(&format!("\nWhat rollguard did\n  {}\n", m.done));
    }
    if let Some(w) = &m.who {
        out.push_str(&format!("\nWho\n  {w}\n"));
    }
    out.push_str(&format!("\nLook\n  {}\n", m.look));
    out.push_str(&format!(
        "\n-- \nrollguard · {} · {}\n",
        m.topic.as_str(),
        m.dedup_key
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::Severity;

    fn msg(topic: Topic) -> Message {
        Message {
            topic,
            severity: Severity::Critical,
            app: "checkout".into(),
            release: Some("v2".into()),
            incident: Some(4),
            deployment: None,
            event_id: 9,
            at_ms: 1_700_000_000_000,
            title: "checkout is failing: incident 4 opened".into(),
            what: "checkout turned unhealthy on checkout-2.".into(),
            why: vec!["health on checkout-2: 3 failures in a row".into()],
            done: "Nothing was changed.".into(),
            who: Some("ana: \"ship it\"".into()),
            look: "rollguard events --app checkout --since 1h".into(),
            dedup_key: "incident-4".into(),
            cause: Some("health failing on checkout-2".into()),
            since_ms: Some(1_699_999_990_000),
        }
    }

    #[test]
    fn the_subject_says_app_what_why_and_release() {
        assert_eq!(
            subject(&msg(Topic::IncidentOpened)),
            "[rollguard] checkout is failing: incident 4 opened \
             (health failing on checkout-2; release v2)"
        );
        let mut m = msg(Topic::RolloutFailed);
        m.title = "checkout: the rollout of v2 failed (E_GATE_FAILED)\r\nBcc: x".into();
        m.cause = None;
        let s = subject(&m);
        assert_eq!(
            s,
            "[rollguard] checkout: the rollout of v2 failed (E_GATE_FAILED)  Bcc: x"
        );
        m.title = "x".repeat(500);
        assert_eq!(subject(&m).chars().count(), SUBJECT_CHARS);
    }

    #[test]
    fn an_incident_is_one_thread_under_the_senders_domain() {
        let d = domain("Rollguard <rg@ops.example.com>");
        assert_eq!(d, "ops.example.com");
        let opened = thread(&msg(Topic::IncidentOpened), &d);
        assert_eq!(
            opened.message_id,
            "<rollguard.checkout.incident-4.1699999990000@ops.example.com>"
        );
        assert_eq!(opened.in_reply_to, None);
        let mut r = msg(Topic::IncidentResolved);
        r.event_id = 12;
        let resolved = thread(&r, &d);
        assert_eq!(
            resolved.in_reply_to.as_deref(),
            Some(opened.message_id.as_str())
        );
        assert_eq!(
            resolved.message_id,
            "<rollguard.checkout.incident-4.1699999990000.12@ops.example.com>"
        );
        // A deployment's thread starts with its deploy_started.
        let mut dep = msg(Topic::DeployStarted);
        (dep.incident, dep.deployment, dep.dedup_key) = (None, Some(7), "deployment-7".into());
        let started = thread(&dep, &d);
        dep.topic = Topic::RolloutFailed;
        assert_eq!(thread(&dep, &d).in_reply_to, Some(started.message_id));
        // A test message stands alone.
        let mut t = msg(Topic::IncidentOpened);
        (t.incident, t.dedup_key, t.since_ms) = (None, "test 1".into(), None);
        let alone = thread(&t, "x.org");
        assert_eq!(alone.message_id, "<rollguard.checkout.test-1@x.org>");
        assert_eq!(alone.in_reply_to, None);
        assert_eq!(domain("not an address"), "rollguard.invalid");
    }

    #[test]
    fn the_body_says_what_the_other_receivers_say() {
        let t = text(&msg(Topic::IncidentOpened));
        assert!(
            t.starts_with("checkout is failing: incident 4 opened\n\n"),
            "{t}"
        );
        for part in [
            "checkout turned unhealthy on checkout-2.",
            "App:        checkout\n",
            "Release:    v2\n",
            "Incident:   4\n",
            "At:         2023-11-14T22:13:20Z\n",
            "Why\n  - health on checkout-2: 3 failures in a row\n",
            "What rollguard did\n  Nothing was changed.\n",
            "Who\n  ana: \"ship it\"\n",
            "Look\n  rollguard events --app checkout --since 1h\n",
        ] {
            assert!(t.contains(part), "{part:?} not in\n{t}");
        }
        let b = body(&msg(Topic::IncidentOpened), "rg@example.com");
        assert_eq!(b["in_reply_to"], Value::Null);
        assert!(b["subject"].as_str().unwrap().starts_with("[rollguard] "));
    }
}
