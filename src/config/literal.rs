//! Where each character of a string value was written: TOML strings are
//! decoded (escapes, a multi-line string's first newline and line-ending
//! backslashes), so a column inside the value is not a column in the file.
//! [`char_offsets`] maps one to the other.

/// Byte offsets, from the start of `raw` (a TOML string literal as written,
/// quotes included), of each character of its decoded `value`, plus one
/// past the last (just before the closing quotes). `None` when `raw` does
/// not decode to `value` here (a form this reader does not know): callers
/// then point at the start of the string instead.
pub(super) fn char_offsets(raw: &str, value: &str) -> Option<Vec<usize>> {
    let (quote, multi) = if raw.starts_with("\"\"\"") {
        ('"', true)
    } else if raw.starts_with("'''") {
        ('\'', true)
    } else if raw.starts_with('"') {
        ('"', false)
    } else if raw.starts_with('\'') {
        ('\'', false)
    } else {
        return None;
    };
    let open = if multi { 3 } else { 1 };
    let body_end = raw.len().checked_sub(open)?;
    if body_end < open {
        return None;
    }
    let body = raw.get(open..body_end)?;
    let mut out = Vec::new();
    let mut decoded = String::new();
    let mut chars = body.char_indices().peekable();
    // A newline right after the opening quotes is not part of the value.
    if multi {
        if body.starts_with("\r\n") {
            chars.next();
            chars.next();
        } else if body.starts_with('\n') {
            chars.next();
        }
    }
    while let Some((i, c)) = chars.next() {
        if c != '\\' || quote == '\'' {
            out.push(open + i);
            decoded.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        let simple = match e {
            'b' => Some('\u{8}'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            'e' => Some('\u{1b}'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            _ => None,
        };
        if let Some(d) = simple {
            out.push(open + i);
            decoded.push(d);
            continue;
        }
        let digits = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            c if multi && c.is_whitespace() => {
                // A line-ending backslash: whitespace and newlines vanish.
                while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                    chars.next();
                }
                continue;
            }
            _ => return None,
        };
        let mut code = 0u32;
        for _ in 0..digits {
            let (_, h) = chars.next()?;
            code = code * 16 + h.to_digit(16)?;
        }
        out.push(open + i);
        decoded.push(char::from_u32(code)?);
    }
    out.push(body_end);
    (decoded == value).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each decoded character's text as written.
    fn written(raw: &str, value: &str) -> Vec<String> {
        let offs = char_offsets(raw, value).unwrap();
        offs.windows(2)
            .map(|w| raw[w[0]..w[1]].to_string())
            .collect()
    }

    #[test]
    fn maps_escapes_and_wide_characters() {
        assert_eq!(written(r#""a\té""#, "a\té"), ["a", "\\t", "é"]);
        assert_eq!(written(r#""\u00e9x""#, "éx"), ["\\u00e9", "x"]);
        assert_eq!(written(r#""\U0001F600""#, "😀"), ["\\U0001F600"]);
        assert_eq!(written(r"'a\tb'", "a\\tb"), ["a", "\\", "t", "b"]);
        assert_eq!(written("'''\nab'''", "ab"), ["a", "b"]);
        assert_eq!(written("\"\"\"a\\\n   b\"\"\"", "ab"), ["a\\\n   ", "b"]);
        assert_eq!(char_offsets(r#""é""#, "é"), Some(vec![1, 3]));
    }

    #[test]
    fn refuses_what_does_not_decode_to_the_value() {
        assert_eq!(char_offsets(r#""a""#, "b"), None);
        assert_eq!(char_offsets(r#""\q""#, "q"), None);
        assert_eq!(char_offsets(r#""\u00""#, ""), None);
        assert_eq!(char_offsets("x", "x"), None);
        assert_eq!(char_offsets("\"", ""), None);
        assert_eq!(char_offsets("", ""), None);
    }
}
