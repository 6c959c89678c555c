//! Below 80x24 the console draws one plain message, in place of the views
//! and popups it would otherwise clip; at 80x24 it draws the fleet.

use super::*;

#[test]
fn below_80x24_one_message_says_so() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    a.banner = Some("demo".into());
    for (w, h) in [(79, 24), (80, 23), (70, 20), (50, 24), (30, 24), (40, 12)] {
        let text = screen(&render(&a, &s, w, h));
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let want =
            format!("rollguard needs at least 80x24; this terminal is {w}x{h} — make it larger");
        assert!(flat.contains(&want), "{w}x{h}:\n{text}");
        assert!(flat.contains("q quits"), "{w}x{h}:\n{text}");
        for view in ["fleet ·", "STATUS", "web", "demo"] {
            assert!(!text.contains(view), "{w}x{h} shows {view:?}:\n{text}");
        }
    }
}

#[test]
fn at_80x24_the_fleet_is_drawn() {
    let f = fleet();
    let s = state(&f);
    let a = new_app(&f);
    let text = screen(&render(&a, &s, 80, 24));
    assert!(!text.contains("needs at least"), "{text}");
    for want in ["fleet · 4 apps", "STATUS", "web", "api", "worker", "batch"] {
        assert!(text.contains(want), "{want:?}:\n{text}");
    }
}

#[test]
fn popups_are_not_clipped_but_replaced() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    a.handle_key(key('?'), &s);
    assert_eq!(a.mode(), &Mode::Help);
    let text = screen(&render(&a, &s, 79, 24));
    assert!(!text.contains(" keys "), "{text}");
    assert!(text.contains("needs at least 80x24"), "{text}");
    // The keys still work: the help closes, `q` quits.
    a.handle_key(code(KeyCode::Esc), &s);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(a.handle_key(key('q'), &s), Action::Quit);
    let text = screen(&render(&a, &s, 100, 30));
    assert!(text.contains("fleet · 4 apps"), "{text}");
}

#[test]
fn the_message_fits_any_size() {
    let f = fleet();
    let s = state(&f);
    let a = new_app(&f);
    // At 79 columns it takes two lines or fewer, centred.
    let lines = lines(&render(&a, &s, 79, 24));
    let used: Vec<_> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    assert!(used.len() <= 3, "{used:#?}");
    for (w, h) in [(1, 1), (2, 1), (10, 3), (20, 5), (79, 1)] {
        render(&a, &s, w, h);
    }
}
