//! Text from hosts, users and the history made safe inside a Markdown
//! document: control characters made visible ([`printable`]), then either
//! every character Markdown reads as markup inside a line escaped with a
//! backslash ([`text`]), or the whole put in a code span long enough for
//! the backticks it holds ([`code`]). Pure.

use crate::printable::printable;

/// The characters that change inline Markdown (CommonMark and GitHub's):
/// emphasis, code, links, images, HTML and entities, strikethrough, table
/// cells. Each is written with a backslash, which CommonMark allows before
/// any ASCII punctuation. Line-start markup (`#`, `-`, `1.`) cannot occur:
/// text is never put at the start of a line and holds no newline.
const MARKUP: &[char] = &[
    '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '&', '!', '#',
];

/// `s` as plain text in a line of Markdown: printable, markup escaped.
pub fn text(s: &str) -> String {
    let s = printable(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if MARKUP.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as a code span: printable, fenced by one more backtick than the
/// longest run it holds, padded with a space when it starts or ends with
/// a backtick (CommonMark strips one space on each side). An empty `s` is
/// `""` in a span.
pub fn code(s: &str) -> String {
    let s = printable(s);
    if s.is_empty() {
        return "`\"\"`".into();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.starts_with(' ') && s.ends_with(' ') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped_and_control_characters_shown() {
        assert_eq!(text("web-1"), "web-1");
        assert_eq!(
            text("*bold* _it_ [x](http://e) <b> a|b `c` &amp; ~s~"),
            "\\*bold\\* \\_it\\_ \\[x\\](http://e) \\<b\\> a\\|b \\`c\\` \\&amp; \\~s\\~"
        );
        // The backslash `printable` writes is escaped too: it shows.
        assert_eq!(text("a\n# forged"), "a\\\\n\\# forged");
        assert!(!text("\x1b[2J").contains('\x1b'));
    }

    #[test]
    fn code_spans_outlast_the_backticks_inside() {
        assert_eq!(code("status 500"), "`status 500`");
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code(""), "`\"\"`");
        assert_eq!(code("line\nnext"), "`line\\nnext`");
    }
}
