//! Text from hosts, endpoints and users made safe for a terminal: every
//! control character (escape sequences that set the window title, clear
//! the screen or move the cursor, and bare newlines that forge lines) is
//! written as a visible escape instead of reaching the terminal raw, and
//! so is a bidirectional override that would reorder the line; joiners
//! and emoji presentation marks, which terminals draw at widths a program
//! cannot know, are left out, so every width the console measures is the
//! width the terminal draws.
//!
//! Every plain-text line the command line prints with such text goes
//! through [`printable`]; the console draws through ratatui, which is
//! given the same text.

use std::borrow::Cow;
use std::io::Write as _;

/// Writes `text` to standard output at once. Nobody reading it any more
/// (the closed pipe that `| head` leaves) is not an error: the output
/// simply ends there.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `s` with each control character written as a visible escape (`\n`,
/// `\t`, `\x1b`, `\u{9b}`); unchanged (and not copied) when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// [`printable`], but newlines stay: for messages of several lines.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// [`printable`] of `s` without its colour and style codes (`ESC [ … m`),
/// for logs written by programs that colour their output: the colours are
/// dropped, every other control character is made visible as usual.
pub fn printable_uncoloured(s: &str) -> Cow<'_, str> {
    if !s.contains("\x1b[") {
        return printable(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            out.push('\x1b');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(printable(&out).into_owned())
}

/// What [`escape`] does with a character that is not plain text.
enum Unusual {
    /// A control character, or a bidirectional override that would
    /// reorder what follows it on screen: written as a visible escape.
    Escape,
    /// A joiner or presentation mark that makes a terminal draw several
    /// characters as one cell, or one character two cells wide, where a
    /// program measuring the text cannot know it (`U+200D`, `U+FE0E`,
    /// `U+FE0F`, skin tones): left out, so the screen and the program
    /// agree on every width.
    Drop,
}

fn unusual(c: char, keep_newlines: bool) -> Option<Unusual> {
    match c {
        '\n' if keep_newlines => None,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some(Unusual::Escape),
        '\u{200d}' | '\u{fe0e}' | '\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}' => Some(Unusual::Drop),
        c if c.is_control() => Some(Unusual::Escape),
        _ => None,
    }
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| unusual(c, keep_newlines).is_some()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match (c, unusual(c, keep_newlines)) {
            (c, None) => out.push(c),
            (_, Some(Unusual::Drop)) => {}
            ('\n', _) => out.push_str("\\n"),
            ('\r', _) => out.push_str("\\r"),
            ('\t', _) => out.push_str("\\t"),
            (c, _) if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            (c, _) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(printable("ok"), "ok");
        assert_eq!(
            printable("\x1b]0;pwned\x07\x1b[2Jx"),
            "\\x1b]0;pwned\\x07\\x1b[2Jx"
        );
        assert_eq!(printable("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(printable("\u{9b}31m é"), "\\u{9b}31m é");
        assert_eq!(super::printable_lines("a\nb\x1b"), "a\nb\\x1b");
    }

    #[test]
    fn text_is_drawn_as_wide_as_it_is_measured() {
        use ratatui::text::Span;
        // A bidirectional override would reorder the rest of the line.
        assert_eq!(printable("ok \u{202e}gnp.exe"), "ok \\u{202e}gnp.exe");
        // Emoji presentation, joiners and skin tones: each terminal draws
        // them its own way; without them every width is agreed on.
        for (raw, shown) in [
            ("⚠\u{fe0f} warn", "⚠ warn"),
            ("👩\u{200d}💻 dev", "👩💻 dev"),
            ("👍\u{1f3fd}", "👍"),
            ("🟠 rollback", "🟠 rollback"),
        ] {
            assert_eq!(printable(raw), shown);
            assert_eq!(
                Span::raw(printable(raw)).width(),
                shown
                    .chars()
                    .map(|c| Span::raw(c.to_string()).width())
                    .sum::<usize>(),
                "{shown}"
            );
        }
    }

    #[test]
    fn colour_codes_are_dropped_and_other_escapes_shown() {
        use super::printable_uncoloured as u;
        assert_eq!(u("plain"), "plain");
        assert_eq!(
            u("\x1b[2m03:48\x1b[0m \x1b[32m INFO\x1b[0m x"),
            "03:48  INFO x"
        );
        assert_eq!(u("\x1b[2Jclear"), "\\x1b[2Jclear");
        assert_eq!(u("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(u("end\x1b["), "end\\x1b[");
    }
}
