//! The mouse, when `--mouse` (or `[console] mouse = true`) turns it on:
//! the wheel moves the selection as `↑` `↓` do, and a click on a row of the
//! table selects that row. Which row is under a click is worked out here,
//! purely, from the screen's size and what is on it, the way
//! [`draw`](super::draw) lays it out; `tests/tui_render/mouse.rs` checks it
//! against the drawn screen.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Block;

use super::too_small;

/// What a mouse event asks of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gesture {
    /// The wheel turned up: the row above.
    Up,
    /// The wheel turned down: the row below.
    Down,
    /// The left button pressed at this cell.
    Click {
        /// Column, from 0 at the left.
        column: u16,
        /// Row, from 0 at the top.
        row: u16,
    },
}

impl Gesture {
    /// What `event` asks for; nothing for releases, drags, other buttons
    /// and sideways scrolling.
    pub fn of(event: &MouseEvent) -> Option<Gesture> {
        match event.kind {
            MouseEventKind::ScrollUp => Some(Gesture::Up),
            MouseEventKind::ScrollDown => Some(Gesture::Down),
            MouseEventKind::Down(MouseButton::Left) => Some(Gesture::Click {
                column: event.column,
                row: event.row,
            }),
            _ => None,
        }
    }
}

/// What is on the screen besides the table, as far as where its rows are
/// goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Around {
    /// A banner under the header.
    pub banner: bool,
    /// The log pane under the table.
    pub log: bool,
    /// A line above the table's headings (the app view's rollout line).
    pub line_above: bool,
    /// History's error line and the apps of its chart, above its table.
    pub history: Option<(bool, usize)>,
}

/// The row of the table shown at (`column`, `row`) on a screen of `area`:
/// 0 for the first row under the headings (whatever the scroll), up to the
/// last line the table has room for. `None` outside the table's rows (the
/// header, the headings, the borders, the log pane, the footer) and on a
/// screen too small to draw the views.
pub fn shown_row(area: Rect, around: Around, column: u16, row: u16) -> Option<usize> {
    if too_small::too_small(area) {
        return None;
    }
    // As `draw` lays the screen out.
    let banner_h = u16::from(around.banner && area.height >= 10);
    let footer_h = u16::from(area.height >= 3);
    let [_, _, body, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_h),
        Constraint::Min(0),
        Constraint::Length(footer_h),
    ])
    .areas(area);
    let table = if around.log && body.height >= 10 {
        let [t, _] = Layout::vertical([Constraint::Min(5), Constraint::Percentage(35)]).areas(body);
        t
    } else {
        body
    };
    // As `panel` frames it.
    let mut inner = if table.height < 6 {
        table
    } else {
        Block::bordered().inner(table)
    };
    if around.line_above && inner.height > 2 {
        inner.y += 1;
        inner.height -= 1;
    }
    if let Some((error, apps)) = around.history {
        let above = super::components::history_lines_above(error, apps, inner.height);
        inner.y += above;
        inner.height -= above;
    }
    let first = inner.y.saturating_add(1);
    let rows = inner.height.saturating_sub(1);
    let inside = (inner.x..inner.right()).contains(&column) && (first..first + rows).contains(&row);
    inside.then(|| usize::from(row - first))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crossterm::event::KeyModifiers;

    const AREA: Rect = Rect::new(0, 0, 100, 30);

    #[test]
    fn the_first_row_is_under_the_header_border_and_headings() {
        let plain = Around::default();
        // Row 0 header, 1 border, 2 headings, 3 the first row.
        assert_eq!(shown_row(AREA, plain, 10, 3), Some(0));
        assert_eq!(shown_row(AREA, plain, 10, 4), Some(1));
        for row in [0, 1, 2] {
            assert_eq!(shown_row(AREA, plain, 10, row), None, "row {row}");
        }
        // The last row above the bottom border and the footer.
        assert_eq!(shown_row(AREA, plain, 10, 27), Some(24));
        assert_eq!(shown_row(AREA, plain, 10, 28), None, "the bottom border");
        assert_eq!(shown_row(AREA, plain, 10, 29), None, "the footer");
        // Not on the side borders.
        assert_eq!(shown_row(AREA, plain, 0, 3), None);
        assert_eq!(shown_row(AREA, plain, 99, 3), None);
        assert_eq!(shown_row(AREA, plain, 1, 3), Some(0));
        assert_eq!(shown_row(AREA, plain, 98, 3), Some(0));
    }

    #[test]
    fn a_banner_and_a_rollout_line_push_the_rows_down() {
        let banner = Around {
            banner: true,
            ..Around::default()
        };
        assert_eq!(shown_row(AREA, banner, 10, 3), None);
        assert_eq!(shown_row(AREA, banner, 10, 4), Some(0));
        let both = Around {
            line_above: true,
            ..banner
        };
        assert_eq!(shown_row(AREA, both, 10, 3), None, "the rollout line");
        assert_eq!(shown_row(AREA, both, 10, 4), None, "the headings");
        assert_eq!(shown_row(AREA, both, 10, 5), Some(0));
    }

    #[test]
    fn the_log_pane_takes_the_bottom() {
        let log = Around {
            log: true,
            ..Around::default()
        };
        // Body rows 1..29 (28 rows): the table gets 65%, the log the rest.
        let last = (0..30).filter_map(|r| shown_row(AREA, log, 10, r)).max();
        let with_log = last.unwrap();
        let without = (0..30)
            .filter_map(|r| shown_row(AREA, Around::default(), 10, r))
            .max()
            .unwrap();
        assert!(with_log < without, "{with_log} < {without}");
        assert_eq!(shown_row(AREA, log, 10, 25), None, "in the log pane");
    }

    #[test]
    fn nothing_is_under_a_click_on_a_screen_too_small() {
        let s = Around::default();
        assert_eq!(shown_row(Rect::new(0, 0, 79, 24), s, 10, 3), None);
        assert_eq!(shown_row(Rect::new(0, 0, 80, 23), s, 10, 3), None);
        assert_eq!(shown_row(Rect::new(0, 0, 80, 24), s, 10, 3), Some(0));
        assert_eq!(
            shown_row(Rect::new(0, 0, 80, 24), s, u16::MAX, u16::MAX),
            None
        );
    }

    #[test]
    fn gestures_are_the_wheel_and_the_left_button() {
        let ev = |kind| MouseEvent {
            kind,
            column: 7,
            row: 9,
            modifiers: KeyModifiers::NONE,
        };
        assert_eq!(
            Gesture::of(&ev(MouseEventKind::ScrollUp)),
            Some(Gesture::Up)
        );
        assert_eq!(
            Gesture::of(&ev(MouseEventKind::ScrollDown)),
            Some(Gesture::Down)
        );
        assert_eq!(
            Gesture::of(&ev(MouseEventKind::Down(MouseButton::Left))),
            Some(Gesture::Click { column: 7, row: 9 })
        );
        for kind in [
            MouseEventKind::Up(MouseButton::Left),
            MouseEventKind::Down(MouseButton::Right),
            MouseEventKind::Drag(MouseButton::Left),
            MouseEventKind::Moved,
            MouseEventKind::ScrollLeft,
        ] {
            assert_eq!(Gesture::of(&ev(kind)), None, "{kind:?}");
        }
    }
}
