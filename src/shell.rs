//! Shell quoting and command templates.
//!
//! Every command rollguard runs is a shell line built from a user template
//! such as `docker logs --tail 5 {app}-{instance}`. Values come from the
//! config and from operators, so they are always quoted before they reach a
//! shell: [`render`] replaces each `{name}` with [`quote`]d text and refuses
//! templates that put a placeholder where quoting cannot protect it (inside
//! quotes, comments, here-documents, or after a backslash).

use std::fmt;

/// Quotes `s` so that POSIX `sh` reads it back as exactly one word equal to
/// `s`. Plain safe words (letters, digits and `_-./:@%+,`) stay unquoted;
/// everything else is wrapped in single quotes, with `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'-' | b'.' | b'/' | b':' | b'@' | b'%' | b'+' | b','
                )
        });
    if safe {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Why a template could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{name}` names no known value.
    #[error(
        "unknown placeholder {{{name}}} (known: {}); write {{{{ and }}}} for literal braces",
        known_list(.known)
    )]
    Unknown {
        /// The placeholder's name.
        name: String,
        /// The names that may be used.
        known: Vec<String>,
    },
    /// `{name}` stands where a quoted value would not stay one literal word.
    #[error(
        "placeholder {{{name}}} is {place}, where its value cannot be quoted safely; \
         values are shell-quoted automatically, so write {{{name}}} as a separate word outside any quotes"
    )]
    Unsafe {
        /// The placeholder's name.
        name: String,
        /// Where it stands, e.g. `inside double quotes`.
        place: Place,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none".into()
    } else {
        known
            .iter()
            .map(|k| format!("{{{k}}}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A spot in a shell line where a placeholder is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `'...{name}...'`.
    SingleQuotes,
    /// `"...{name}..."`.
    DoubleQuotes,
    /// `# ... {name}`.
    Comment,
    /// The body or delimiter of a `<<` here-document.
    HereDoc,
    /// `\{name}`.
    AfterBackslash,
    /// `${x:-{name}}` and the like.
    ParamExpansion,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::SingleQuotes => "inside single quotes",
            Place::DoubleQuotes => "inside double quotes",
            Place::Comment => "inside a comment",
            Place::HereDoc => "inside a here-document",
            Place::AfterBackslash => "after a backslash",
            Place::ParamExpansion => "inside a ${...} expansion",
        })
    }
}

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// A character of shell text.
    Ch(char),
    /// `{name}`: index into the name list.
    Ph(usize),
}

/// Splits a template into shell characters and placeholders.
fn tokenize(template: &str) -> (Vec<Tok>, Vec<String>) {
    let chars: Vec<char> = template.chars().collect();
    let mut toks = Vec::with_capacity(chars.len());
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' if chars.get(i + 1) == Some(&'{') => {
                toks.push(Tok::Ch('{'));
                i += 2;
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                toks.push(Tok::Ch('}'));
                i += 2;
            }
            // `${x}` is the shell's own parameter expansion.
            '{' if matches!(toks.last(), Some(Tok::Ch('$'))) => {
                toks.push(Tok::Ch('{'));
                i += 1;
            }
            '{' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_lowercase() || chars[j] == '_') {
                    j += 1;
                }
                if j > i + 1 && chars.get(j) == Some(&'}') {
                    names.push(chars[i + 1..j].iter().collect());
                    toks.push(Tok::Ph(names.len() - 1));
                    i = j + 1;
                } else {
                    toks.push(Tok::Ch('{'));
                    i += 1;
                }
            }
            _ => {
                toks.push(Tok::Ch(c));
                i += 1;
            }
        }
    }
    (toks, names)
}

/// The names of the placeholders `template` uses, each once, in order of
/// first use. Lets config validation check templates at load.
pub fn placeholders(template: &str) -> Vec<String> {
    let (_, names) = tokenize(template);
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Checks that `template` renders with values for exactly the names in
/// `known` (unknown names and unsafe placements are errors).
pub fn validate(template: &str, known: &[&str]) -> Result<(), TemplateError> {
    let vars: Vec<(&str, &str)> = known.iter().map(|k| (*k, "x")).collect();
    render(template, &vars).map(|_| ())
}

/// Fills in `template`: each `{name}` (lowercase letters and `_`) becomes
/// the [`quote`]d value of `name` from `vars`. `{{` and `}}` are literal
/// braces; braces around anything else (awk's `{print $1}`, the shell's
/// `${HOME}`) stay as they are.
///
/// Errors when a name is not in `vars`, or when a placeholder stands inside
/// quotes, a comment, a here-document, a `${...}` or after a backslash,
/// where a quoted value could be re-interpreted by the shell.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, TemplateError> {
    let (toks, names) = tokenize(template);
    let values = lookup(&names, vars)?;
    let places = Lexer::new(&toks).run();
    if let Some((idx, place)) = places.iter().flatten().next() {
        return Err(TemplateError::Unsafe {
            name: names[*idx].clone(),
            place: *place,
        });
    }
    let mut out = String::with_capacity(template.len() + 16);
    for t in &toks {
        match t {
            Tok::Ch(c) => out.push(*c),
            Tok::Ph(i) => out.push_str(&quote(values[*i])),
        }
    }
    Ok(out)
}

/// Fills in `template` like [`render`] but inserts values as they are,
/// unquoted, and does no shell checks. For text that never reaches a shell:
/// URLs, container names. Errors on unknown names.
pub fn render_plain(template: &str, vars: &[(&str, &str)]) -> Result<String, TemplateError> {
    let (toks, names) = tokenize(template);
    let values = lookup(&names, vars)?;
    let mut out = String::with_capacity(template.len() + 16);
    for t in &toks {
        match t {
            Tok::Ch(c) => out.push(*c),
            Tok::Ph(i) => out.push_str(values[*i]),
        }
    }
    Ok(out)
}

/// The value of each name, in order; the first unknown name is an error.
fn lookup<'v>(names: &[String], vars: &[(&str, &'v str)]) -> Result<Vec<&'v str>, TemplateError> {
    names
        .iter()
        .map(|name| match vars.iter().find(|(k, _)| k == name) {
            Some((_, v)) => Ok(*v),
            None => Err(TemplateError::Unknown {
                name: name.clone(),
                known: vars.iter().map(|(k, _)| k.to_string()).collect(),
            }),
        })
        .collect()
}

/// What encloses the current position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Unquoted text; `paren` when opened by `$(` or `(` and closed by `)`.
    Plain { paren: bool },
    /// Inside backticks.
    Backtick,
    /// Inside double quotes.
    Double,
}

/// A small POSIX sh lexer that finds where each placeholder stands. It errs
/// on the side of refusing: a misparse can only produce a false refusal of a
/// placeholder it believes quoted, never hide one that is.
struct Lexer<'a> {
    t: &'a [Tok],
    i: usize,
    stack: Vec<Frame>,
    /// Placeholder index -> refused place.
    bad: Vec<Option<(usize, Place)>>,
    /// Here-documents whose bodies start at the next newline: (delimiter, strip tabs).
    heredocs: Vec<(Vec<Tok>, bool)>,
}

impl<'a> Lexer<'a> {
    fn new(t: &'a [Tok]) -> Self {
        Lexer {
            t,
            i: 0,
            stack: vec![Frame::Plain { paren: false }],
            bad: Vec::new(),
            heredocs: Vec::new(),
        }
    }

    fn ch(&self, i: usize) -> Option<char> {
        match self.t.get(i) {
            Some(Tok::Ch(c)) => Some(*c),
            _ => None,
        }
    }

    fn refuse(&mut self, i: usize, place: Place) {
        if let Some(Tok::Ph(p)) = self.t.get(i) {
            self.bad.push(Some((*p, place)));
        }
    }

    /// Refuses every placeholder in `from..to`.
    fn refuse_range(&mut self, from: usize, to: usize, place: Place) {
        for i in from..to.min(self.t.len()) {
            self.refuse(i, place);
        }
    }

    fn at_word_start(&self) -> bool {
        if self.i == 0 {
            return true;
        }
        match self.t.get(self.i - 1) {
            Some(Tok::Ch(c)) => {
                c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '<' | '>')
            }
            _ => false,
        }
    }

    /// Index just past the `}` matching the `{` of `${` at `open`.
    fn skip_param(&self, open: usize) -> usize {
        let mut depth = 0usize;
        let mut j = open;
        while j < self.t.len() {
            match self.ch(j) {
                Some('{') => depth += 1,
                Some('}') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return j + 1;
                    }
                }
                Some('\\') => j += 1,
                _ => {}
            }
            j += 1;
        }
        self.t.len()
    }

    fn run(mut self) -> Vec<Option<(usize, Place)>> {
        while self.i < self.t.len() {
            let top = *self.stack.last().unwrap_or(&Frame::Plain { paren: false });
            match top {
                Frame::Double => self.step_double(),
                Frame::Plain { .. } | Frame::Backtick => self.step_plain(top),
            }
        }
        self.bad
    }

    fn step_double(&mut self) {
        let i = self.i;
        match self.t[i] {
            Tok::Ph(_) => {
                self.refuse(i, Place::DoubleQuotes);
                self.i += 1;
            }
            Tok::Ch('\\') => {
                self.refuse(i + 1, Place::DoubleQuotes);
                self.i += 2;
            }
            Tok::Ch('"') => {
                self.stack.pop();
                self.i += 1;
            }
            Tok::Ch('`') => {
                self.stack.push(Frame::Backtick);
                self.i += 1;
            }
            Tok::Ch('$') if self.ch(i + 1) == Some('(') => {
                self.stack.push(Frame::Plain { paren: true });
                self.i += 2;
            }
            Tok::Ch('$') if self.ch(i + 1) == Some('{') => {
                let end = self.skip_param(i + 1);
                self.refuse_range(i, end, Place::DoubleQuotes);
                self.i = end;
            }
            Tok::Ch(_) => self.i += 1,
        }
    }

    fn step_plain(&mut self, top: Frame) {
        let i = self.i;
        let c = match self.t[i] {
            Tok::Ph(_) => {
                if i > 0 && self.ch(i - 1) == Some('$') {
                    self.refuse(i, Place::ParamExpansion);
                }
                self.i += 1;
                return;
            }
            Tok::Ch(c) => c,
        };
        match c {
            '\\' => {
                self.refuse(i + 1, Place::AfterBackslash);
                self.i += 2;
            }
            '\'' => {
                let mut j = i + 1;
                while j < self.t.len() && self.ch(j) != Some('\'') {
                    self.refuse(j, Place::SingleQuotes);
                    j += 1;
                }
                self.i = j + 1;
            }
            '"' => {
                self.stack.push(Frame::Double);
                self.i += 1;
            }
            '`' => {
                if top == Frame::Backtick {
                    self.stack.pop();
                } else {
                    self.stack.push(Frame::Backtick);
                }
                self.i += 1;
            }
            '$' if self.ch(i + 1) == Some('(') => {
                self.stack.push(Frame::Plain { paren: true });
                self.i += 2;
            }
            '$' if self.ch(i + 1) == Some('{') => {
                let end = self.skip_param(i + 1);
                self.refuse_range(i, end, Place::ParamExpansion);
                self.i = end;
            }
            '(' => {
                self.stack.push(Frame::Plain { paren: true });
                self.i += 1;
            }
            ')' => {
                if top == (Frame::Plain { paren: true }) && self.stack.len() > 1 {
                    self.stack.pop();
                }
                self.i += 1;
            }
            '#' if self.at_word_start() => {
                let mut j = i;
                while j < self.t.len() && self.ch(j) != Some('\n') {
                    self.refuse(j, Place::Comment);
                    j += 1;
                }
                self.i = j;
            }
            '<' if self.ch(i + 1) == Some('<') && self.ch(i + 2) != Some('<') => {
                self.i += 2;
                self.heredoc_start();
            }
            '\n' => {
                self.i += 1;
                self.heredoc_bodies();
            }
            _ => self.i += 1,
        }
    }

    /// After `<<`: reads `[-] word` and remembers the here-document.
    fn heredoc_start(&mut self) {
        let mut strip = false;
        if self.ch(self.i) == Some('-') {
            strip = true;
            self.i += 1;
        }
        while matches!(self.ch(self.i), Some(' ' | '\t')) {
            self.i += 1;
        }
        let mut delim = Vec::new();
        while self.i < self.t.len() {
            match self.t[self.i] {
                Tok::Ph(_) => {
                    self.refuse(self.i, Place::HereDoc);
                    delim.push(self.t[self.i].clone());
                    self.i += 1;
                }
                Tok::Ch(c) if c.is_whitespace() || ";&|<>()".contains(c) => break,
                Tok::Ch(q @ ('\'' | '"')) => {
                    self.i += 1;
                    while self.i < self.t.len() && self.ch(self.i) != Some(q) {
                        self.refuse(self.i, Place::HereDoc);
                        delim.push(self.t[self.i].clone());
                        self.i += 1;
                    }
                    self.i += 1;
                }
                Tok::Ch('\\') => {
                    if let Some(t) = self.t.get(self.i + 1) {
                        self.refuse(self.i + 1, Place::HereDoc);
                        delim.push(t.clone());
                    }
                    self.i += 2;
                }
                Tok::Ch(c) => {
                    delim.push(Tok::Ch(c));
                    self.i += 1;
                }
            }
        }
        if !delim.is_empty() {
            self.heredocs.push((delim, strip));
        }
    }

    /// At the start of a line: skips the bodies of pending here-documents,
    /// refusing placeholders in them.
    fn heredoc_bodies(&mut self) {
        for (delim, strip) in std::mem::take(&mut self.heredocs) {
            loop {
                if self.i >= self.t.len() {
                    return;
                }
                let start = self.i;
                let mut end = start;
                while end < self.t.len() && self.ch(end) != Some('\n') {
                    end += 1;
                }
                let mut s = start;
                if strip {
                    while self.ch(s) == Some('\t') {
                        s += 1;
                    }
                }
                let done = self.t[s..end] == delim[..];
                if !done {
                    self.refuse_range(start, end, Place::HereDoc);
                }
                self.i = (end + 1).min(self.t.len());
                if done {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` with `sh -c` and returns its stdout.
    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{script:?}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    const HOSTILE: &[&str] = &[
        "; rm -rf /",
        "$(touch /tmp/rollguard-pwned-subst)",
        "`touch /tmp/rollguard-pwned-backtick`",
        "it's",
        "'",
        "\"",
        "a\nb\n; echo injected",
        "x' ; echo injected ; '",
        "$HOME",
        "*",
        "~",
        "a b\tc",
        "",
        "-n",
        "\\",
        "a=b",
        "#not a comment",
        "{app}",
        "héllo wörld",
        "!!",
    ];

    #[test]
    fn quote_keeps_safe_words() {
        assert_eq!(quote("abc-1.2_x/y"), "abc-1.2_x/y");
        assert_eq!(quote("host:8080"), "host:8080");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a=b"), "'a=b'");
        assert_eq!(quote("~"), "'~'");
    }

    #[test]
    fn hostile_values_stay_single_literal_arguments() {
        for v in HOSTILE {
            let script = render("printf '%s\\n' {v}", &[("v", v)]).unwrap();
            assert_eq!(sh(&script), format!("{v}\n"), "script {script:?}");
            // Two placeholders side by side and glued to text.
            let script = render("printf '%s\\n' pre{v}post {v}", &[("v", v)]).unwrap();
            assert_eq!(
                sh(&script),
                format!("pre{v}post\n{v}\n"),
                "script {script:?}"
            );
            // Inside $(...) and backticks the quoting holds too.
            let script = render("printf '%s\\n' \"$(printf '%s' {v})\"x", &[("v", v)]).unwrap();
            assert_eq!(
                sh(&script),
                format!("{}x\n", v.trim_end_matches('\n')),
                "script {script:?}"
            );
            let script =
                render("x=$(printf '%s' {v}); printf '%s\\n' \"$x\"", &[("v", v)]).unwrap();
            assert_eq!(
                sh(&script),
                format!("{}\n", v.trim_end_matches('\n')),
                "script {script:?}"
            );
        }
        assert!(!std::path::Path::new("/tmp/rollguard-pwned-subst").exists());
        assert!(!std::path::Path::new("/tmp/rollguard-pwned-backtick").exists());
    }

    #[test]
    fn awk_and_shell_braces_survive() {
        let t = "printf 'a b\\n' | awk '{print $2}'; echo ${HOME:+set} {x}";
        assert_eq!(placeholders(t), vec!["x".to_string()]);
        let s = render(t, &[("x", "y z")]).unwrap();
        assert_eq!(
            s,
            "printf 'a b\\n' | awk '{print $2}'; echo ${HOME:+set} 'y z'"
        );
        assert_eq!(sh(&s), "b\nset y z\n");
        assert_eq!(render("{{x}} }} {{", &[]).unwrap(), "{x} } {");
        assert_eq!(render("{X} {1} {} {a-b}", &[]).unwrap(), "{X} {1} {} {a-b}");
        assert_eq!(sh(&render("echo {{a}}", &[]).unwrap()), "{a}\n");
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let err = render("echo {app} {nope}", &[("app", "a"), ("host", "h")]).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Unknown {
                name: "nope".into(),
                known: vec!["app".into(), "host".into()],
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("{nope}") && msg.contains("{app}, {host}"),
            "{msg}"
        );
        assert!(validate("echo {app}", &["app"]).is_ok());
        assert!(validate("echo {port}", &["app"]).is_err());
    }

    #[test]
    fn placeholders_lists_each_name_once() {
        assert_eq!(
            placeholders("curl {host}:{port}/{host} {{lit}} ${env}"),
            vec!["host".to_string(), "port".to_string()]
        );
    }

    #[test]
    fn placeholders_where_quoting_fails_are_refused() {
        let v = &[("v", "x")];
        let cases = [
            ("echo '{v}'", Place::SingleQuotes),
            ("echo \"{v}\"", Place::DoubleQuotes),
            ("echo \"a $(echo b) {v}\"", Place::DoubleQuotes),
            ("echo hi # {v}", Place::Comment),
            ("cat <<EOF\n{v}\nEOF", Place::HereDoc),
            ("cat <<-'EOF'\n\tx {v}\n\tEOF", Place::HereDoc),
            ("echo \\{v}", Place::AfterBackslash),
            ("echo ${x:-{v}}", Place::ParamExpansion),
        ];
        for (t, place) in cases {
            match render(t, v) {
                Err(TemplateError::Unsafe { name, place: p }) => {
                    assert_eq!((name.as_str(), p), ("v", place), "{t:?}")
                }
                other => panic!("{t:?}: {other:?}"),
            }
        }
        // Fine: after the here-document ends, in $(...), in backticks, a#b.
        let ok = [
            "cat <<EOF\nhi\nEOF\necho {v}",
            "echo \"$(echo {v})\"",
            "echo `echo {v}`",
            "echo a#{v}",
            "echo 'it''s' {v} # it's",
            "( echo {v} )",
        ];
        for t in ok {
            assert!(render(t, v).is_ok(), "{t:?}: {:?}", render(t, v));
        }
        assert_eq!(
            sh(&render(
                "cat <<EOF\nhi $(echo there)\nEOF\necho {v}",
                &[("v", "a;b")]
            )
            .unwrap()),
            "hi there\na;b\n"
        );
    }
}
