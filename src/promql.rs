//! A PromQL query's placeholders (`{app}`, `{instance}`, `{host}`,
//! `{port}`), filled in. A placeholder may stand only inside a string
//! literal, where its value is escaped so that no value can change the
//! query's structure ([`fill`]); inside a regular expression matcher (`=~`,
//! `!~`) the value is also taken literally. Pure: the config checks a
//! query with it when it loads, the prometheus probe fills it on each run.

/// The placeholders a query may use.
pub const QUERY_PLACEHOLDERS: &[&str] = &["app", "instance", "host", "port"];

/// Where a placeholder stands in a query that cannot take it: the
/// character column (from 0) and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FillError {
    /// Character index of the `{` in the query.
    pub at: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// The kind of literal being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `"…"` or `'…'`: backslash escapes.
    Escaped(char),
    /// `` `…` ``: no escapes.
    Raw,
}

/// `query` with each `{name}` of `vars` replaced by its value, escaped for
/// the string literal it stands in (and for the regular expression, after
/// `=~` or `!~`). A placeholder outside a string literal is an error: a
/// value there could add to the query.
pub fn fill(query: &str, vars: &[(&str, &str)]) -> Result<String, FillError> {
    let chars: Vec<char> = query.chars().collect();
    let mut out = String::with_capacity(query.len() + 16);
    let mut quote: Option<(Quote, bool)> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{'
            && let Some((name, len)) = placeholder_at(&chars[i..], vars)
        {
            let value = vars
                .iter()
                .find(|(k, _)| *k == name)
                .map_or("", |(_, v)| *v);
            match quote {
                None => {
                    return Err(FillError {
                        at: i,
                        message: format!(
                            "{{{name}}} stands outside a string, where a value could change the query; \
                             put it in quotes, e.g. {name}=\"{{{name}}}\""
                        ),
                    });
                }
                Some((q, regex)) => {
                    let literal = if regex {
                        regex_escape(value)
                    } else {
                        value.to_string()
                    };
                    out.push_str(&escape_for(q, &literal).ok_or_else(|| FillError {
                        at: i,
                        message: format!(
                            "the value of {{{name}}} holds a backtick, which a raw string cannot hold; \
                             use \"…\" quotes"
                        ),
                    })?);
                }
            }
            i += len;
            continue;
        }
        if quote.is_none() && c == '#' {
            // A comment, to the end of its line: copied as it is (a quote in
            // it starts no string, a placeholder in it is not filled).
            while i < chars.len() && chars[i] != '\n' {
                out.push(chars[i]);
                i += 1;
            }
            continue;
        }
        out.push(c);
        match quote {
            None if c == '"' || c == '\'' || c == '`' => {
                let regex = out[..out.len() - 1].trim_end().ends_with('~');
                let q = if c == '`' {
                    Quote::Raw
                } else {
                    Quote::Escaped(c)
                };
                quote = Some((q, regex));
            }
            Some((Quote::Escaped(_), _)) if c == '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            }
            Some((Quote::Escaped(q), _)) if c == q => quote = None,
            Some((Quote::Raw, _)) if c == '`' => quote = None,
            _ => {}
        }
        i += 1;
    }
    Ok(out)
}

/// The placeholder of `vars` that `chars` starts with, and its length.
fn placeholder_at<'a>(chars: &[char], vars: &[(&'a str, &str)]) -> Option<(&'a str, usize)> {
    vars.iter().map(|(k, _)| *k).find_map(|k| {
        let len = k.chars().count() + 2;
        let matches = chars.len() >= len
            && chars[1..len - 1].iter().copied().eq(k.chars())
            && chars[len - 1] == '}';
        matches.then_some((k, len))
    })
}

/// `s` taken literally by a regular expression (RE2).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` written inside a string literal of kind `q`; `None` when it cannot
/// be (a backtick in a raw string).
fn escape_for(q: Quote, s: &str) -> Option<String> {
    match q {
        Quote::Raw => (!s.contains('`')).then(|| s.to_string()),
        Quote::Escaped(quote) => {
            let mut out = String::with_capacity(s.len());
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: &[(&str, &str)] = &[("app", "checkout"), ("instance", "web-1.a")];

    #[test]
    fn a_placeholder_in_a_string_is_filled_and_escaped() {
        let q = r#"sum(rate(x{app="{app}",instance="{instance}"}[1m]))"#;
        assert_eq!(
            fill(q, VARS).unwrap(),
            r#"sum(rate(x{app="checkout",instance="web-1.a"}[1m]))"#
        );
        let hostile = [("app", r#"a"} or vector(1) or x{b=""#)];
        let filled = fill(r#"up{app="{app}"}"#, &hostile).unwrap();
        assert_eq!(filled, r#"up{app="a\"} or vector(1) or x{b=\""}"#);
        let filled = fill("up{app='{app}'}", &[("app", "it's\\")]).unwrap();
        assert_eq!(filled, r"up{app='it\'s\\'}");
        let filled = fill(r#"up{app="{app}"}"#, &[("app", "a\nb")]).unwrap();
        assert_eq!(filled, r#"up{app="a\nb"}"#);
    }

    #[test]
    fn in_a_regex_matcher_a_value_is_taken_literally() {
        let filled = fill(r#"up{instance=~"{instance}"}"#, VARS).unwrap();
        assert_eq!(filled, r#"up{instance=~"web-1\\.a"}"#);
        let filled = fill(r#"up{instance !~ "{instance}|x"}"#, VARS).unwrap();
        assert_eq!(filled, r#"up{instance !~ "web-1\\.a|x"}"#);
    }

    #[test]
    fn a_placeholder_outside_a_string_is_refused() {
        let e = fill("up{app}", VARS).unwrap_err();
        assert_eq!(e.at, 2);
        assert!(e.message.contains("put it in quotes"), "{}", e.message);
        let e = fill(r#"up{job="x"} * {instance}"#, VARS).unwrap_err();
        assert_eq!(e.at, 14);
        // A quote inside a string does not end it.
        let q = r#"up{a="say \"{app}\""}"#;
        assert_eq!(fill(q, VARS).unwrap(), r#"up{a="say \"checkout\""}"#);
        // Braces that are not placeholders are the query's own.
        assert_eq!(fill("up{job=\"x\"}", VARS).unwrap(), "up{job=\"x\"}");
    }

    #[test]
    fn a_comment_starts_no_string() {
        let q = "up # it's a comment {app}\n* on() {instance}";
        let e = fill(q, VARS).unwrap_err();
        assert_eq!(e.at, q.find("{instance}").unwrap());
        let q = "up{a=\"{app}\"} # {app}";
        assert_eq!(fill(q, VARS).unwrap(), "up{a=\"checkout\"} # {app}");
    }

    #[test]
    fn a_raw_string_cannot_take_a_backtick() {
        assert_eq!(fill("up{a=`{app}`}", VARS).unwrap(), "up{a=`checkout`}");
        assert!(fill("up{a=`{app}`}", &[("app", "a`b")]).is_err());
    }
}
