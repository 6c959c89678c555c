//! Text from hosts, endpoints and users made safe for a terminal: every
//! control character (escape sequences that set the window title, clear
//! the screen or move the cursor, and bare newlines that forge lines) is
//! written as a visible escape instead of reaching the terminal raw.
//!
//! Every plain-text line the command line prints with such text goes
//! through [`printable`]; the console draws through ratatui, which is
//! given the same text.

use std::borrow::Cow;

/// `s` with each control character written as a visible escape (`\n`,
/// `\t`, `\x1b`, `\u{9b}`); unchanged (and not copied) when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// [`printable`], but newlines stay: for messages of several lines.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !s
        .chars()
        .any(|c| c.is_control() && !(keep_newlines && c == '\n'))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' if keep_newlines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
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
}
