//! A click (with `--mouse`) selects the row under it: the row the click
//! lands on is found on the drawn screen, the click is given to the app,
//! and the app of that row is then the one selected (and opened by Enter),
//! whatever is on the screen above the table.

use ratatui::layout::Rect;

use super::*;

/// Clicks on the line of the drawn screen that holds `needle`.
fn click_on(a: &mut App, s: &FleetState, (w, h): (u16, u16), needle: &str) -> bool {
    let buf = render(a, s, w, h);
    let row = row_of(&buf, needle);
    a.click(20, row, Rect::new(0, 0, w, h), s)
}

#[test]
fn a_click_selects_the_app_on_that_row() {
    let f = fleet();
    let s = state(&f);
    for banner in [None, Some("demo · a banner")] {
        for size in [(80, 24), (100, 30), (160, 48)] {
            let mut a = new_app(&f);
            a.banner = banner.map(String::from);
            assert!(click_on(&mut a, &s, size, "worker"), "{size:?} {banner:?}");
            assert_eq!(a.selected_app(), Some(2), "{size:?} {banner:?}");
            assert!(click_on(&mut a, &s, size, "api"));
            assert_eq!(a.selected_app(), Some(1));
            a.handle_key(code(KeyCode::Enter), &s);
            assert_eq!(a.view(), View::App(1));
        }
    }
}

#[test]
fn a_click_with_the_log_pane_open_and_in_the_app_view() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    a.handle_key(key('l'), &s);
    assert!(a.log_visible());
    assert!(click_on(&mut a, &s, (100, 30), "batch"));
    assert_eq!(a.selected_app(), Some(3));
    // web's view: a row per (instance, probe); web-2's ready is the 4th.
    let mut a = new_app(&f);
    a.handle_key(code(KeyCode::Enter), &s);
    assert_eq!(a.view(), View::App(0));
    let buf = render(&a, &s, 100, 30);
    let y = lines(&buf)
        .iter()
        .position(|l| l.contains("web-2") && l.contains("ready"))
        .expect("web-2's ready row") as u16;
    assert!(a.click(20, y, Rect::new(0, 0, 100, 30), &s));
    assert_eq!(a.selected(), 3);
}

#[test]
fn a_click_in_the_app_view_under_a_rollout_line() {
    let f = fleet();
    let s = with_rollout(&f, "running", "v3", "rolling");
    let mut a = new_app(&f);
    a.handle_key(code(KeyCode::Enter), &s);
    let buf = render(&a, &s, 100, 30);
    let text = screen(&buf);
    assert!(text.contains("deployment 7"), "the rollout line:\n{text}");
    let y = lines(&buf)
        .iter()
        .position(|l| l.contains("web-3") && l.contains("tcp"))
        .expect("web-3's tcp row") as u16;
    assert!(a.click(20, y, Rect::new(0, 0, 100, 30), &s), "{text}");
    assert_eq!(a.selected(), 4);
}

#[test]
fn a_click_elsewhere_or_with_a_popup_open_does_nothing() {
    let f = fleet();
    let s = state(&f);
    let area = Rect::new(0, 0, 100, 30);
    let mut a = new_app(&f);
    render(&a, &s, 100, 30);
    for row in [0, 1, 2, 28, 29] {
        assert!(!a.click(20, row, area, &s), "row {row}");
    }
    assert!(!a.click(20, 20, area, &s), "below the last app");
    assert_eq!(a.selected_app(), Some(0));
    let worker = row_of(&render(&a, &s, 100, 30), "worker");
    a.handle_key(key('?'), &s);
    assert!(!a.click(20, worker, area, &s), "the help is open");
    assert!(!a.click(20, 5, Rect::new(0, 0, 79, 24), &s), "too small");
}
