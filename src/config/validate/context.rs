//! The context of validation ([`Ctx`]): where a byte of the file is as
//! `LINE:COL`, errors collected at a place, `${NAME}` expanded (with where
//! each character came from), and the checks every section shares: a
//! duration within its bounds, a port, a threshold, one of a few words, a
//! template's placeholders, a unique plain name.

use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::bounds::Bounds;
use super::valid_name;
use crate::config::raw::S;
use crate::config::{ConfigError, format_duration, literal, parse_duration};

/// What validation carries from check to check: the file's text (for
/// `LINE:COL`), the environment that answers `${NAME}`, the errors found so
/// far, and every `${NAME}` expanded.
pub(super) struct Ctx<'a> {
    /// The file, for errors.
    pub(super) file: PathBuf,
    /// The file's text, to turn a byte offset into `LINE:COL`.
    pub(super) text: &'a str,
    /// Answers `${NAME}`.
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    /// Every error found so far, in the order found.
    pub(super) errors: Vec<ConfigError>,
    /// Every `${NAME}` expanded so far, with its value.
    pub(super) interpolated: Vec<(String, String)>,
}

/// A string after `${NAME}` expansion.
#[derive(Default)]
pub(super) struct Expanded {
    /// The value.
    pub(super) text: String,
    /// For each character of `text`, the index of the character of the
    /// value as written that it comes from (for an expansion: its `$`).
    origin: Vec<usize>,
}

impl Expanded {
    /// Appends `s`, whose first character is character `at` as written.
    fn push_str(&mut self, s: &str, at: usize) {
        self.text.push_str(s);
        self.origin.extend(at..at + s.chars().count());
    }
}

impl Ctx<'_> {
    /// The 1-based line and column (in characters) of byte `offset`.
    pub(super) fn pos(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// An error at the start of `span`, with a hint.
    pub(super) fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, col) = self.pos(span.start);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }

    /// An error at the start of `span`, without a hint.
    pub(super) fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.error(span, message, None);
    }

    /// The string with `${NAME}` replaced; `$${` is a literal `${`.
    pub(super) fn string(&mut self, s: &S<String>) -> String {
        self.expand(s).text
    }

    /// [`Ctx::string`], with where each character of the result came from.
    pub(super) fn expand(&mut self, s: &S<String>) -> Expanded {
        let raw = s.get_ref();
        let mut out = Expanded::default();
        let mut rest = raw.as_str();
        // Character index in `raw` of the start of `rest`.
        let mut at = 0;
        while let Some(i) = rest.find("${") {
            let before = &rest[..i];
            if before.ends_with('$') {
                out.push_str(&before[..i - 1], at);
                // The first `$` of `$${` is the escape.
                let dollar = at + before.chars().count() - 1;
                out.push_str("${", dollar + 1);
                rest = &rest[i + 2..];
                at = dollar + 3;
                continue;
            }
            out.push_str(before, at);
            at += before.chars().count();
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                self.error(
                    s.span(),
                    "`${` without a closing `}`",
                    Some("write ${NAME}, or $${ for a literal ${".into()),
                );
                let mut whole = Expanded::default();
                whole.push_str(raw, 0);
                return whole;
            };
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.err(s.span(), format!("`${{{name}}}` is not a variable name"));
            } else {
                match (self.env)(name) {
                    Some(v) => {
                        // Every character of the value points at its `${`.
                        out.text.push_str(&v);
                        out.origin
                            .extend(std::iter::repeat_n(at, v.chars().count()));
                        self.interpolated.push((name.to_string(), v));
                    }
                    None => self.error(
                        s.span(),
                        format!("environment variable `{name}` is not set"),
                        Some(format!("export {name}=... before starting rollguard")),
                    ),
                }
            }
            at += name.chars().count() + 3;
            rest = &after[end + 1..];
        }
        out.push_str(rest, at);
        out
    }

    /// Reports an error at character `index` of `value`, which
    /// [`Ctx::expand`] made from `s`: at the place in the file it came from.
    pub(super) fn error_in(
        &mut self,
        s: &S<String>,
        value: &Expanded,
        index: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let span = s.span();
        let written = self.text.get(span.clone()).unwrap_or("");
        // The character of the raw value, then where it is in the file.
        let raw_index = value
            .origin
            .get(index)
            .copied()
            .unwrap_or_else(|| s.get_ref().chars().count());
        let offset = literal::char_offsets(written, s.get_ref())
            .and_then(|offsets| offsets.get(raw_index).copied())
            .unwrap_or(0);
        let start = span.start + offset;
        self.error(start..start, message, hint);
    }

    /// Reports the first control character of `value` (made from `s`),
    /// which `what` cannot hold on the wire; a tab is fine where `tab`.
    pub(super) fn control_chars(&mut self, s: &S<String>, value: &Expanded, what: &str, tab: bool) {
        let found = value
            .text
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !(tab && *c == '\t'));
        if let Some((at, c)) = found {
            let hint = if tab {
                "keep it on one line of printable text (a tab is allowed)"
            } else {
                "keep it on one line; percent-encode what it needs (e.g. %0A)"
            };
            self.error_in(
                s,
                value,
                at,
                format!("{what} holds a control character (U+{:04X})", u32::from(c)),
                Some(hint.into()),
            );
        }
    }

    /// [`Ctx::string`], when the key is given.
    pub(super) fn opt_string(&mut self, s: &Option<S<String>>) -> Option<String> {
        s.as_ref().map(|s| self.string(s))
    }

    /// A duration key: its value within `bounds`, else an error at it
    /// saying what is allowed (and `default`).
    pub(super) fn duration(
        &mut self,
        s: &Option<S<String>>,
        key: &str,
        default: Duration,
        bounds: Bounds,
    ) -> Duration {
        let Some(s) = s else { return default };
        let text = self.string(s);
        let (min, max) = (format_duration(bounds.min), format_duration(bounds.max));
        let allowed = Some(format!(
            "{key} takes {min} to {max}, e.g. \"{}\"",
            format_duration(default.clamp(bounds.min, bounds.max))
        ));
        match parse_duration(&text) {
            Ok(d) if d < bounds.min => {
                self.error(
                    s.span(),
                    format!("{key} must be at least {min}, not {}", text.trim()),
                    allowed,
                );
                default
            }
            Ok(d) if d > bounds.max => {
                self.error(
                    s.span(),
                    format!("{key} must be at most {max}, not {}", text.trim()),
                    allowed,
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.error(s.span(), e, allowed);
                default
            }
        }
    }

    /// A port from 1 to 65535; an error at it otherwise.
    pub(super) fn port(&mut self, p: &S<i64>, what: &str) -> u16 {
        match u16::try_from(*p.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                self.error(
                    p.span(),
                    format!("{what} {} is out of range", p.get_ref()),
                    Some("a port is between 1 and 65535".into()),
                );
                1
            }
        }
    }

    /// A count of results of at least 1 (`default` when left out).
    pub(super) fn threshold(&mut self, t: &Option<S<i64>>, name: &str, default: u32) -> u32 {
        let Some(t) = t else { return default };
        match u32::try_from(*t.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                self.error(
                    t.span(),
                    format!("{name} must be at least 1, not {}", t.get_ref()),
                    Some(format!("{name} = 1 acts on the first result")),
                );
                default
            }
        }
    }

    /// One of the words of `options` (`default` when left out); an error
    /// naming them otherwise.
    pub(super) fn choice<T: Copy>(
        &mut self,
        s: &Option<S<String>>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(s) = s else { return default };
        let v = self.string(s);
        match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<_> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.error(
                    s.span(),
                    format!("unknown {key} \"{v}\""),
                    Some(format!("{key} is one of {}", names.join(", "))),
                );
                default
            }
        }
    }

    /// Checks a template's placeholders: only `allowed` names, and for a
    /// shell template (`shell`), none where quoting could not protect it.
    pub(super) fn template(&mut self, s: &S<String>, value: &str, allowed: &[&str], shell: bool) {
        use crate::shell as sh;
        let checked = if shell {
            sh::validate(value, allowed)
        } else {
            let vars: Vec<(&str, &str)> = allowed.iter().map(|k| (*k, "x")).collect();
            sh::render_plain(value, &vars).map(|_| ())
        };
        if let Err(e) = checked {
            self.err(s.span(), e.to_string());
        }
    }

    /// A `what`'s name: plain, and not in `seen` (it is added there).
    pub(super) fn unique<'n>(
        &mut self,
        seen: &mut HashSet<String>,
        name: &'n S<String>,
        what: &str,
    ) -> &'n str {
        if !seen.insert(name.get_ref().clone()) {
            self.error(
                name.span(),
                format!("duplicate {what} name \"{}\"", name.get_ref()),
                Some(format!("every {what} needs its own name")),
            );
        }
        if !valid_name(name.get_ref()) {
            self.error(
                name.span(),
                format!("{what} name \"{}\" is not allowed", name.get_ref()),
                Some("use letters, digits, `.`, `_` and `-`, starting with a letter or digit (at most 63)".into()),
            );
        }
        name.get_ref()
    }
}
