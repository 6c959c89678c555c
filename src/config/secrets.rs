//! The values `${NAME}` was replaced with while loading, kept so that text
//! built from the config can be cleaned of them before it is stored or
//! logged: a token in `app.process.run` must not end up in the history.
//!
//! Two ways out. [`Secrets::mask`] writes each value as `***`, for messages
//! (errors, command output, logs) that are only read by people.
//! [`Secrets::template`] writes each value back as the `${NAME}` it came
//! from, for data that is read back later (a driver's snapshot): its
//! [`Secrets::expand`] gives the original text again, with the values the
//! config holds when it is read back.
//!
//! In a template, `$$` is a literal `$` where a `$` would otherwise be
//! followed by `$` or `{`, so text that already held `${...}` reads back
//! unchanged.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// Values shorter than this are not treated as secrets: masking a `3` or
/// an `on` would garble every message while hiding nothing worth hiding.
pub const SECRET_MIN_CHARS: usize = 4;

/// What masked values are written as.
pub const MASK: &str = "***";

/// The mark an excerpt ends with where it cut text short.
pub const CUT: char = '…';

/// A secret's start cut short by an excerpt is masked from this many
/// characters on (shorter, it tells nothing).
const CUT_MIN_CHARS: usize = 3;

/// The values that came from the environment, by the variable they came
/// from. Cheap to clone; its `Debug` shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// (name, value), longest value first so that a value inside another
    /// never splits it; each value once.
    entries: Arc<[(String, String)]>,
}

impl Secrets {
    /// The secrets among `(name, value)` pairs: values of at least
    /// [`SECRET_MIN_CHARS`] characters, each kept under its first name.
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Secrets {
        let mut entries: Vec<(String, String)> = Vec::new();
        for (name, value) in values {
            if value.chars().count() >= SECRET_MIN_CHARS
                && !entries.iter().any(|(_, v)| *v == value)
            {
                entries.push((name, value));
            }
        }
        entries.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        Secrets {
            entries: entries.into(),
        }
    }

    /// These secrets and `other`'s.
    pub fn union(&self, other: &Secrets) -> Secrets {
        Secrets::new(self.entries.iter().chain(other.entries.iter()).cloned())
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry whose value starts `text`, if any.
    fn at<'a>(&'a self, text: &str) -> Option<&'a (String, String)> {
        self.entries
            .iter()
            .find(|(_, v)| text.starts_with(v.as_str()))
    }

    /// The length of the start of a secret (at least [`CUT_MIN_CHARS`]
    /// characters) that `text` begins with and that an excerpt cut short
    /// right after: [`CUT`] follows it at once.
    fn cut_at(&self, text: &str) -> Option<usize> {
        let end = text.find(CUT)?;
        let head = &text[..end];
        (head.chars().count() >= CUT_MIN_CHARS
            && self.entries.iter().any(|(_, v)| v.starts_with(head)))
        .then_some(end)
    }

    /// `text` with every secret written as [`MASK`], and the start of one
    /// that an excerpt cut short (`tok-SEC…`) too.
    pub fn mask(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        let cut = text.contains(CUT);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let len = match self.at(rest) {
                Some((_, v)) => Some(v.len()),
                None if cut => self.cut_at(rest),
                None => None,
            };
            match len {
                Some(len) => {
                    out.push_str(MASK);
                    rest = &rest[len..];
                }
                None => {
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        out
    }

    /// `text` with every secret written as the `${NAME}` it came from (and
    /// `$` doubled where it could be misread); [`Secrets::expand`] undoes it.
    pub fn template(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some((name, v)) = self.at(rest) {
                out.push_str("${");
                out.push_str(name);
                out.push('}');
                rest = &rest[v.len()..];
                continue;
            }
            rest = &rest[c.len_utf8()..];
            out.push(c);
            // The next piece starts with `$` or `{`: this `$` is doubled.
            let next_is_special = rest.starts_with(['$', '{']) || self.at(rest).is_some();
            if c == '$' && next_is_special {
                out.push('$');
            }
        }
        out
    }

    /// The text a [`Secrets::template`] was made from, with today's
    /// values; an error names a `${NAME}` these secrets do not hold.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("$$") {
                out.push('$');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${") {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("`${{` without a closing `}}` in {template:?}"))?;
                let name = &after[..end];
                let (_, value) = self
                    .entries
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| {
                        format!("${{{name}}} is no longer interpolated by the config")
                    })?;
                out.push_str(value);
                rest = &after[end + 1..];
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(out)
    }

    /// [`Secrets::template`] on every string value inside `value` (object
    /// keys are names and are kept).
    pub fn template_json(&self, value: &Value) -> Value {
        self.map_json(value, &mut |s| Ok(self.template(s)))
            .unwrap_or_else(|_: String| value.clone())
    }

    /// [`Secrets::expand`] on every string value inside `value`.
    pub fn expand_json(&self, value: &Value) -> Result<Value, String> {
        self.map_json(value, &mut |s| self.expand(s))
    }

    fn map_json(
        &self,
        value: &Value,
        f: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(f(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.map_json(v, f))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.map_json(v, f)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.entries.iter().map(|(n, _)| n))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_of_a_secret_an_excerpt_cut_short_is_masked() {
        let s = Secrets::new([("T".to_string(), "tok-SECRET-1234".to_string())]);
        assert_eq!(
            s.mask("\"token=tok-SEC…\" == \"ok\""),
            "\"token=***…\" == \"ok\""
        );
        assert_eq!(s.mask("tok…"), "***…");
        // Too short to tell anything, or not followed by the cut: kept.
        assert_eq!(s.mask("to… tok-SE tok"), "to… tok-SE tok");
        assert_eq!(s.mask("tok-SECRET-1234…"), "***…");
    }

    fn secrets() -> Secrets {
        Secrets::new([
            ("TOKEN".to_string(), "s3cret-tok".to_string()),
            ("INNER".to_string(), "cret".to_string()),
            ("SHORT".to_string(), "ab".to_string()),
            ("SAME".to_string(), "s3cret-tok".to_string()),
            ("WIDE".to_string(), "é日😀x".to_string()),
            ("DOLLAR".to_string(), "a$b{c".to_string()),
        ])
    }

    #[test]
    fn masks_every_secret_and_only_secrets() {
        let s = secrets();
        assert_eq!(
            s.mask("run --token s3cret-tok --x cret ab é日😀x"),
            "run --token *** --x *** ab ***"
        );
        assert_eq!(s.mask(""), "");
        assert_eq!(Secrets::default().mask("s3cret-tok"), "s3cret-tok");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn templates_read_back_exactly() {
        let s = secrets();
        let t = s.template("A=s3cret-tok B=cret");
        assert_eq!(t, "A=${TOKEN} B=${INNER}");
        assert_eq!(s.expand(&t).unwrap(), "A=s3cret-tok B=cret");
        // Odd text around and inside the values reads back too.
        let mut g: u64 = 0x2545_F491_4F6C_DD1D;
        let pieces = [
            "$",
            "{",
            "}",
            "${",
            "$${",
            "$$",
            "s3cret-tok",
            "cret",
            "s3cret",
            "é日😀x",
            "a$b{c",
            "x",
            "${TOKEN}",
            "${NOPE}",
            "日",
        ];
        for _ in 0..5000 {
            let mut text = String::new();
            for _ in 0..(g % 9) {
                g ^= g << 13;
                g ^= g >> 7;
                g ^= g << 17;
                text.push_str(pieces[(g % pieces.len() as u64) as usize]);
            }
            let t = s.template(&text);
            assert!(
                !t.contains("s3cret-tok") && !t.contains("é日😀x"),
                "{text:?} → {t:?}"
            );
            assert_eq!(s.expand(&t).as_deref(), Ok(text.as_str()), "{t:?}");
        }
    }

    #[test]
    fn expanding_a_name_it_does_not_hold_is_an_error() {
        let s = secrets();
        assert!(s.expand("${GONE}").unwrap_err().contains("GONE"));
        assert!(s.expand("${TOKEN").is_err());
    }

    #[test]
    fn json_strings_are_templated_keys_kept() {
        let s = secrets();
        let v = serde_json::json!({"env": ["T=s3cret-tok"], "cret": 1, "n": {"k": "cret"}});
        let t = s.template_json(&v);
        assert_eq!(
            t,
            serde_json::json!({"env": ["T=${TOKEN}"], "cret": 1, "n": {"k": "${INNER}"}})
        );
        assert_eq!(s.expand_json(&t).unwrap(), v);
    }
}
