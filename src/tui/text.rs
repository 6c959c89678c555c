//! Small text formatting shared by the panels: truncation to a display
//! width, and how rates, latencies and ages are written.

use ratatui::text::Span;

/// Display width of `s` in terminal cells.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// `s` cut to at most `max` cells, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut b = [0u8; 4];
    for c in s.chars() {
        let w = width(c.encode_utf8(&mut b));
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `s` cut to `w` cells and padded with spaces to `w` cells: a column
/// that stays aligned whatever wide characters `s` has.
pub fn pad(s: &str, w: usize) -> String {
    let cut = truncate(s, w);
    let fill = w.saturating_sub(width(&cut));
    format!("{cut}{}", " ".repeat(fill))
}

/// `s` broken into lines by display width: the first at most `first`
/// cells, the others at most `rest`; at spaces where it can, inside a
/// word only when the word is longer than a line.
pub fn wrap(s: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    let room = |lines: &Vec<String>| if lines.is_empty() { first } else { rest }.max(1);
    for word in s.split(' ') {
        let w = width(word);
        let gap = usize::from(!line.is_empty());
        if used + gap + w <= room(&lines) {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            used += gap + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        let mut word = word;
        while width(word) > room(&lines) {
            let (head, tail) = split_at_width(word, room(&lines));
            lines.push(head.to_string());
            word = tail;
        }
        line.push_str(word);
        used = width(word);
    }
    lines.push(line);
    lines
}

/// `s` split where its first part is as wide as fits in `max` cells (at
/// least one character, so that splitting always moves on).
fn split_at_width(s: &str, max: usize) -> (&str, &str) {
    let mut used = 0;
    let mut b = [0u8; 4];
    for (i, c) in s.char_indices() {
        let w = width(c.encode_utf8(&mut b));
        if i > 0 && used + w > max {
            return s.split_at(i);
        }
        used += w;
    }
    (s, "")
}

/// A success rate: `99.3%`. Never rounds up to `100.0%` while something
/// failed; `100%` only when everything passed.
pub fn rate(ok: u64, total: u64) -> String {
    if total == 0 {
        return "—".into();
    }
    if ok == total {
        return "100%".into();
    }
    let tenths = ok * 1000 / total; // floor
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A latency: `0.4ms`, `12ms`, `1.2s`, `14s`.
pub fn latency(ms: f32) -> String {
    if !ms.is_finite() || ms < 0.0 {
        "?".into()
    } else if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 10_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        format!("{:.0}s", ms / 1000.0)
    }
}

/// A duration in the past, coarsely: `0s`, `4s`, `12m`, `3h`, `2d`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 5), "hell…");
        assert_eq!(truncate("hello", 1), "…");
        assert_eq!(truncate("hello", 0), "");
        assert_eq!(truncate("日本語です", 5), "日本…");
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("web", 5), "web  ");
        assert_eq!(width(&pad("日本語です", 5)), 5);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_measures_by_display_width() {
        assert_eq!(
            wrap("accepted as a good release of web", 12, 12),
            ["accepted as", "a good", "release of", "web"]
        );
        // Continuation lines may be narrower (an indent).
        assert_eq!(
            wrap("one two three four", 9, 5),
            ["one two", "three", "four"]
        );
        // Wide characters take two cells.
        assert_eq!(
            wrap("🟠 rollback to v1 fired", 11, 11),
            ["🟠 rollback", "to v1 fired"]
        );
        assert_eq!(wrap("日本語です", 4, 4), ["日本", "語で", "す"]);
        // A word longer than a line is broken; nothing is lost.
        assert_eq!(wrap("abcdefgh ij", 3, 3), ["abc", "def", "gh", "ij"]);
        assert_eq!(wrap("", 5, 5), [""]);
        for (s, w) in [("🟠🟠🟠", 1), ("x yy zzz", 2), ("a  b", 1)] {
            let lines = wrap(s, w, w);
            assert_eq!(lines.concat().replace(' ', ""), s.replace(' ', ""), "{s}");
            assert!(lines.iter().all(|l| width(l) <= w.max(2)), "{lines:?}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(rate(0, 0), "—");
        assert_eq!(rate(10, 10), "100%");
        assert_eq!(rate(9999, 10000), "99.9%");
        assert_eq!(rate(993, 1000), "99.3%");
        assert_eq!(rate(0, 3), "0.0%");
        assert_eq!(rate(2, 3), "66.6%");
    }

    #[test]
    fn latencies_and_ages() {
        assert_eq!(latency(0.42), "0.4ms");
        assert_eq!(latency(12.4), "12ms");
        assert_eq!(latency(1234.0), "1.2s");
        assert_eq!(latency(12_345.0), "12s");
        assert_eq!(age(500), "0s");
        assert_eq!(age(-5_000), "0s");
        assert_eq!(age(4_000), "4s");
        assert_eq!(age(125_000), "2m");
        assert_eq!(age(2 * 86_400_000), "2d");
    }
}
