//! The file as written: serde types that keep the byte span of every value
//! so that validation can point at `FILE:LINE:COL`. Unknown keys are
//! errors, and [`read`] reports every one (and every value of the wrong
//! type) rather than the first.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

pub(super) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub console: Option<RawConsole>,
    #[serde(default)]
    pub host: Vec<S<RawHost>>,
    #[serde(default)]
    pub app: Vec<S<RawApp>>,
    #[serde(default)]
    pub notify: Vec<S<RawNotify>>,
    pub metrics: Option<S<RawMetrics>>,
    pub store: Option<S<RawStore>>,
}

/// `[store]`: where the history is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub url: Option<S<String>>,
}

/// `[metrics]`: where `/metrics` is served.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub listen: Option<S<String>>,
}

/// `[[notify]]`: keys of every receiver type; validation refuses those
/// that do not apply to its type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub on: Option<S<Vec<S<String>>>>,
    pub apps: Option<S<Vec<S<String>>>>,
    pub timeout: Option<S<String>>,
    pub retry_for: Option<S<String>>,
    pub url: Option<S<String>>,
    pub secret: Option<S<String>>,
    pub routing_key: Option<S<String>>,
    pub run: Option<S<String>>,
    pub host: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub tls: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
    pub from: Option<S<String>>,
    pub to: Option<S<Vec<S<String>>>>,
    pub ca_file: Option<S<String>>,
    pub listen: Option<S<String>>,
    pub token: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    pub refresh: Option<S<String>>,
    pub theme: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub read_only: Option<bool>,
    pub keys: Option<BTreeMap<S<String>, S<RawKeys>>>,
    pub mouse: Option<bool>,
}

/// A value of `[console.keys]`: one key (whose place is the value's), or a
/// list of keys, each with its place.
pub(super) enum RawKeys {
    One(String),
    List(Vec<S<String>>),
}

impl<'de> Deserialize<'de> for RawKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = RawKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key such as \"q\", or a list of keys such as [\"j\", \"Down\"]")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawKeys, E> {
                Ok(RawKeys::One(v.to_string()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawKeys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<S<String>>()? {
                    keys.push(key);
                }
                Ok(RawKeys::List(keys))
            }
        }
        d.deserialize_any(Keys)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub name: S<String>,
    pub address: Option<S<String>>,
    pub ssh: Option<S<RawSsh>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    pub user: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub identity: Option<S<String>>,
    pub known_hosts: Option<S<String>>,
    pub host_key_check: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub name: S<String>,
    pub driver: Option<S<String>>,
    pub strategy: Option<S<String>>,
    pub protected: Option<bool>,
    #[serde(default)]
    pub instance: Vec<S<RawInstance>>,
    #[serde(default)]
    pub probe: Vec<S<RawProbe>>,
    pub health: Option<RawHealth>,
    pub docker: Option<S<RawDocker>>,
    pub process: Option<S<RawProcess>>,
    pub command: Option<S<RawCommand>>,
    pub traffic: Option<S<RawTraffic>>,
    pub rollout: Option<RawRollout>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocker {
    pub image: S<String>,
    pub container: Option<S<String>>,
    pub port: Option<S<i64>>,
    #[serde(default)]
    pub args: Vec<S<String>>,
    pub keep: Option<S<i64>>,
    pub stop_timeout: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProcess {
    pub run: S<String>,
    pub present: Option<S<String>>,
    pub grace: Option<S<String>>,
    pub run_dir: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommand {
    pub start: S<String>,
    pub stop: S<String>,
    pub current: Option<S<String>>,
    pub present: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraffic {
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub host: Option<S<String>>,
    pub upstream_file: Option<S<String>>,
    pub validate: Option<S<String>>,
    pub reload: Option<S<String>>,
    pub socket: Option<S<String>>,
    pub backend: Option<S<String>>,
    pub drain_timeout: Option<S<String>>,
    pub drain: Option<S<String>>,
    pub undrain: Option<S<String>>,
    pub weight: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    pub batch: Option<S<toml::Value>>,
    pub pause: Option<S<String>>,
    pub min_healthy: Option<S<i64>>,
    pub max_failed_batches: Option<S<i64>>,
    pub canary: Option<S<i64>>,
    pub steps: Option<S<Vec<S<i64>>>>,
    pub step_pause: Option<S<String>>,
    pub auto_rollback: Option<S<String>>,
    pub confirm_window: Option<S<String>>,
    pub rollback_batch: Option<S<i64>>,
    pub surge: Option<S<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub name: S<String>,
    pub host: Option<S<String>>,
    pub port: S<i64>,
    pub alt_port: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub timeout: Option<S<String>>,
    // http
    pub method: Option<S<String>>,
    pub path: Option<S<String>>,
    pub url: Option<S<String>>,
    pub scheme: Option<S<String>>,
    pub headers: Option<S<BTreeMap<String, S<String>>>>,
    pub expect_status: Option<S<Vec<S<toml::Value>>>>,
    pub body_contains: Option<S<String>>,
    pub conditions: Option<S<Vec<S<String>>>>,
    pub insecure_tls: Option<S<bool>>,
    // tcp
    pub port: Option<S<i64>>,
    pub send: Option<S<String>>,
    pub expect: Option<S<String>>,
    // command
    pub command: Option<S<String>>,
    pub expect_exit: Option<S<i64>>,
    pub output_contains: Option<S<String>>,
    // docker
    pub container: Option<S<String>>,
    // prometheus (and url, conditions, insecure_tls)
    pub query: Option<S<String>>,
    pub on_no_data: Option<S<String>>,
    pub bearer_token: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub interval: Option<S<String>>,
    pub initial_delay: Option<S<String>>,
    pub success_threshold: Option<S<i64>>,
    pub failure_threshold: Option<S<i64>>,
    pub max_failures: Option<S<i64>>,
    pub require: Option<S<String>>,
    pub deadline: Option<S<String>>,
    pub monitor: Option<S<String>>,
    pub resolve_after: Option<S<String>>,
}

/// A problem met reading the file's shape (its syntax, a key no table
/// has, a value of the wrong type, a key missing), before any value is
/// checked: where it is, what is wrong, and what to do.
pub(super) struct Problem {
    /// The bytes it is about.
    pub span: Range<usize>,
    /// What is wrong, naming the key and its table.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

/// How many problems of its shape a file is read past: each one read past
/// costs a pass over the document.
const MOST_PROBLEMS: usize = 64;

/// Reads `text` into the types above, reporting every problem of its
/// shape rather than the first. A syntax error stops it (what follows it
/// cannot be read); a key no table has, a value of the wrong type or a
/// table without a key it needs is reported, taken out of the document (a
/// table without its key: that table), and the document read again. The
/// file is `None` when it could not be read whole; what was said of it
/// stands either way.
pub(super) fn read(text: &str) -> (Option<RawFile>, Vec<Problem>) {
    let (raw, mut problems) = read_all(text);
    problems.sort_by_key(|p| p.span.start);
    (raw, problems)
}

/// [`read`], its problems in the order they were met (tables by name).
fn read_all(text: &str) -> (Option<RawFile>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(Problem {
                span: e.span().unwrap_or(0..0),
                message: e.message().trim().to_string(),
                hint: None,
            });
            return (None, problems);
        }
    };
    // Keys taken out over their value: a table that then misses one of
    // them says nothing new.
    let mut taken: Vec<String> = Vec::new();
    for _ in 0..MOST_PROBLEMS {
        let e = match RawFile::deserialize(toml::Deserializer::from(doc.clone())) {
            Ok(raw) => return (Some(raw), problems),
            Err(e) => e,
        };
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        let Some(place) = take_out(doc.get_mut(), &span, &mut Vec::new()) else {
            problems.push(Problem {
                span,
                message,
                hint: None,
            });
            return (None, problems);
        };
        let missing = between_ticks(&message, "missing field `");
        if missing.is_none_or(|key| !taken.iter().any(|t| t == key)) {
            problems.push(describe(&message, span, &place));
        }
        taken.push(place.key.clone());
    }
    (None, problems)
}

/// Where a problem was, in the document: the key and the tables around it.
struct Place {
    /// The key (or `NAME[N]`, an entry of an array).
    key: String,
    /// The tables it is in, outermost first, as people name them: `app
    /// "web"`, `health`.
    tables: Vec<String>,
}

impl Place {
    /// `in app "web" › health`, or `at the top of the file`.
    fn words(&self) -> String {
        if self.tables.is_empty() {
            "at the top of the file".to_string()
        } else {
            format!("in {}", self.tables.join(" › "))
        }
    }
}

/// A table or array entry as people name it: `probe "health"` for a table
/// with a name, else `probe 2` (counted from 1).
fn entry_name(key: &str, index: usize, value: &DeValue<'_>) -> String {
    match value
        .as_table()
        .and_then(|t| t.get("name"))
        .and_then(|n| n.get_ref().as_str())
    {
        Some(name) => format!("{key} {name:?}"),
        None => format!("{key} {}", index + 1),
    }
}

/// Takes out of `table` what the error at `span` is about: the key whose
/// name or value is at `span`, or the array entry (a `[[table]]`) there;
/// returns where that was. `tables` are the tables around `table`. (A
/// table's span is its header's, so spans are matched, not nested.)
fn take_out(
    table: &mut DeTable<'_>,
    span: &Range<usize>,
    tables: &mut Vec<String>,
) -> Option<Place> {
    // An array of tables has its first entry's span: the entry is meant.
    let entry_at = |v: &toml::Spanned<DeValue<'_>>| {
        v.get_ref()
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i.span() == *span))
    };
    let hit = table
        .iter()
        .find(|(k, v)| k.span() == *span || (v.span() == *span && !entry_at(v)))
        .map(|(k, _)| k.get_ref().to_string());
    if let Some(key) = hit {
        table.remove(key.as_str());
        return Some(Place {
            key,
            tables: tables.clone(),
        });
    }
    for (k, v) in table.iter_mut() {
        let key = k.get_ref().to_string();
        match v.get_mut() {
            DeValue::Table(inner) => {
                tables.push(key);
                if let Some(place) = take_out(inner, span, tables) {
                    return Some(place);
                }
                tables.pop();
            }
            DeValue::Array(items) => {
                if let Some(at) = items.iter().position(|i| i.span() == *span) {
                    let entry = entry_name(&key, at, items[at].get_ref());
                    let mut kept = DeArray::new();
                    let all = std::mem::replace(items, DeArray::new());
                    for (i, item) in all.into_iter().enumerate() {
                        if i != at {
                            kept.push(item);
                        }
                    }
                    *items = kept;
                    return Some(Place {
                        key: entry,
                        tables: tables.clone(),
                    });
                }
                for (at, item) in items.as_mut().iter_mut().enumerate() {
                    let entry = entry_name(&key, at, item.get_ref());
                    if let DeValue::Table(inner) = item.get_mut() {
                        tables.push(entry);
                        if let Some(place) = take_out(inner, span, tables) {
                            return Some(place);
                        }
                        tables.pop();
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The text between `prefix` and the next backtick in `message`.
fn between_ticks<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// A problem in words: what, where, and what to write instead.
fn describe(message: &str, span: Range<usize>, place: &Place) -> Problem {
    let example = "config.example.toml has every key and where it goes";
    let (message, hint) = if let Some(key) = between_ticks(message, "unknown field `") {
        // serde names the keys the table has: "expected one of `a`, `b`"
        // or "expected `a`".
        let known: Vec<&str> = message
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let near = closest(key, &known);
        let hint = match (near, known.is_empty()) {
            (Some(near), _) => format!("did you mean `{near}`? {example}"),
            (None, false) => format!("the keys here are {}; {example}", known.join(", ")),
            (None, true) => example.to_string(),
        };
        (format!("unknown key `{key}` {}", place.words()), hint)
    } else if let Some(key) = between_ticks(message, "missing field `") {
        (
            format!("{} has no `{key}`", place_name(place)),
            format!("add `{key} = ...` to it; {example}"),
        )
    } else {
        (
            format!("`{}` {}: {message}", place.key, place.words()),
            format!("see config.example.toml for what `{}` takes", place.key),
        )
    };
    Problem {
        span,
        message,
        hint: Some(hint),
    }
}

/// The table that was taken out, as people name it.
fn place_name(place: &Place) -> String {
    let mut tables = place.tables.clone();
    tables.push(place.key.clone());
    tables.join(" › ")
}

/// The one of `known` closest to `key` by edit distance, when it is close
/// (a typo: at most a third of its letters differ).
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edits(key, k), *k))
        .filter(|(d, _)| *d <= key.chars().count().div_ceil(3).max(1))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev + usize::from(ca != *cb);
            prev = row[j + 1];
            row[j + 1] = sub.min(prev + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(text: &str) -> Vec<(usize, String, String)> {
        let (_, problems) = read(text);
        problems
            .into_iter()
            .map(|p| (p.span.start, p.message, p.hint.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn every_unknown_key_is_said_with_its_table_and_the_key_meant() {
        let text = "[console]\nrefersh = \"1s\"\n\n[[app]]\nname = \"web\"\n\
                    [app.health]\nintervall = \"5s\"\n[[app.probe]]\nname = \"h\"\ntype = \"http\"\nport = \"80\"\n";
        let got = said(text);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, text.find("refersh").unwrap());
        assert_eq!(got[0].1, "unknown key `refersh` in console");
        assert!(got[0].2.starts_with("did you mean `refresh`?"), "{got:?}");
        assert_eq!(got[1].1, "unknown key `intervall` in app \"web\" › health");
        assert!(got[1].2.starts_with("did you mean `interval`?"), "{got:?}");
        assert!(
            got[2]
                .1
                .starts_with("`port` in app \"web\" › probe \"h\": invalid type"),
            "{got:?}"
        );
        // Each taken out, the rest reads.
        assert!(read(text).0.is_some());
    }

    #[test]
    fn a_table_without_a_key_it_needs_is_said_once() {
        let text = "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"w1\"\nport = \"x\"\n\
                    [[app.probe]]\ntype = \"http\"\n";
        let got = said(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0]
                .1
                .starts_with("`port` in app \"web\" › instance \"w1\""),
            "{got:?}"
        );
        assert_eq!(got[1].1, "app \"web\" › probe 1 has no `name`");
        let (raw, _) = read(text);
        let raw = raw.unwrap();
        assert!(raw.app[0].get_ref().instance.is_empty() && raw.app[0].get_ref().probe.is_empty());
    }

    #[test]
    fn a_syntax_error_stops_the_reading() {
        let (raw, problems) = read("[console\nrefresh = 1");
        assert!(raw.is_none());
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn the_key_meant_is_a_near_one() {
        assert_eq!(
            closest("intervall", &["interval", "deadline"]),
            Some("interval")
        );
        assert_eq!(closest("prot", &["port", "name"]), Some("port"));
        assert_eq!(closest("colour", &["port", "name"]), None);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
