//! The themes as drawn. Under `mono` (the theme `NO_COLOR` picks) no cell
//! has a color, yet the selected row shows (reverse video and a marker in
//! front of it) and so does a failure (its symbol, not only a color).

use ratatui::style::Modifier;

use rollguard::tui::BUILTIN_THEMES;

use super::*;

fn themed_app(f: &Arc<Fleet>, theme: &str) -> App {
    let mut a = App::new(f.clone(), Theme::load(theme, &[]).unwrap());
    a.now_ms = now();
    a
}

/// The rows of `buf` that start with `marker` inside the panel's border.
fn marked_rows(buf: &Buffer, marker: &str) -> Vec<usize> {
    lines(buf)
        .iter()
        .enumerate()
        .filter(|(_, l)| l.strip_prefix('│').unwrap_or(l).starts_with(marker))
        .map(|(y, _)| y)
        .collect()
}

#[test]
fn mono_draws_no_color_yet_marks_the_selection_and_failures() {
    let f = fleet();
    let s = state(&f);
    let mut a = themed_app(&f, "mono");
    let marker = a.theme.selection_marker.clone();
    assert_eq!(marker, "> ");
    assert_eq!(a.handle_key(key('j'), &s), Action::Down, "api is selected");

    let buf = render(&a, &s, 80, 24);
    let text = screen(&buf);
    println!("{text}");
    assert_no_color(&buf);
    // The selected row, and only it, has the marker and reverse video.
    let api = row_of(&buf, "api ");
    assert_eq!(marked_rows(&buf, &marker), vec![api as usize], "{text}");
    let web = row_of(&buf, "web ");
    for x in 1..40 {
        assert!(buf[(x, api)].modifier.contains(Modifier::REVERSED), "{x}");
        assert!(!buf[(x, web)].modifier.contains(Modifier::REVERSED), "{x}");
    }
    // A down app and a degraded one say so by their symbols and words,
    // and a failed probe is a ✖ in the sparkline, not a colored bar.
    let line = |y: u16| lines(&buf)[y as usize].clone();
    let worker = row_of(&buf, "worker ");
    assert!(line(worker).contains("✖ down"), "{text}");
    assert!(line(web).contains("◐ degraded"), "{text}");
    assert!(line(api).contains("● healthy"), "{text}");
    let fail_bars = line(worker).matches(FAIL_BAR).count();
    assert!(fail_bars >= 8, "{text}");

    // At the smallest size drawn, the status symbol is still there.
    let buf = render(&a, &s, 80, 24);
    let text = screen(&buf);
    println!("{text}");
    assert_no_color(&buf);
    assert!(
        lines(&buf)[row_of(&buf, "worker") as usize].contains('✖'),
        "{text}"
    );
    assert_eq!(marked_rows(&buf, &marker).len(), 1, "{text}");

    // The app view: the failing instance's rows are ✖ unhealthy, the
    // others ● healthy; the selected row is marked.
    a.handle_key(code(KeyCode::Up), &s);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Open);
    a.handle_key(key('G'), &s);
    let buf = render(&a, &s, 100, 24);
    let text = screen(&buf);
    println!("{text}");
    assert_no_color(&buf);
    let rows = lines(&buf);
    let of = |inst: &str| -> Vec<&String> { rows.iter().filter(|l| l.contains(inst)).collect() };
    assert_eq!(of("web-3").len(), 2, "{text}");
    for l in of("web-3") {
        assert!(l.contains("✖ unhealthy"), "{text}");
    }
    for l in of("web-1") {
        assert!(l.contains("● healthy"), "{text}");
    }
    let marked = marked_rows(&buf, &marker);
    assert_eq!(marked.len(), 1, "{text}");
    assert!(
        rows[marked[0]].contains("web-3"),
        "the last row is selected\n{text}"
    );
}

#[test]
fn every_builtin_theme_shows_the_selected_row() {
    let f = fleet();
    let s = state(&f);
    for name in BUILTIN_THEMES {
        let mut a = themed_app(&f, name);
        a.handle_key(key('j'), &s);
        let t = a.theme.clone();
        let buf = render(&a, &s, 80, 24);
        let text = screen(&buf);
        let api = row_of(&buf, "api ");
        let web = row_of(&buf, "web ");
        let x = 1 + t.selection_marker.chars().count() as u16;
        assert!(selected_cell(&buf, x, api, &t), "{name}\n{text}");
        assert!(!selected_cell(&buf, x, web, &t), "{name}\n{text}");
        // Something sets the selected row apart: a background of its own,
        // a modifier, or a marker.
        assert!(
            t.selection != Color::Reset
                || !t.selection_modifiers.is_empty()
                || !t.selection_marker.is_empty(),
            "{name}"
        );
        if !t.selection_marker.is_empty() {
            assert_eq!(
                marked_rows(&buf, &t.selection_marker),
                vec![api as usize],
                "{name}\n{text}"
            );
        }
        // The status column is where it always is, whatever the marker.
        assert!(
            lines(&buf)[api as usize].contains("● healthy"),
            "{name}\n{text}"
        );
    }
}
