//! The selected row of a table and how far it is scrolled: owned by each
//! table component, moved by the motion keys, and placed on screen by the
//! draw code (which remembers the offset and the page height in cells, so
//! that drawing stays `&self`).

use std::cell::Cell;

use crate::keys::Action;
use crate::tui::columns::scroll_offset;

/// A selected row among a table's rows, with its scroll offset.
#[derive(Debug)]
pub struct Selection {
    selected: usize,
    offset: Cell<usize>,
    page: Cell<usize>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            selected: 0,
            offset: Cell::new(0),
            page: Cell::new(10),
        }
    }
}

impl Selection {
    /// The selected row (a position among the rows shown, not an index
    /// into the fleet).
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// Selects row `row`, scrolled as it was.
    pub fn select(&mut self, row: usize) {
        self.selected = row;
    }

    /// Back to the first row, unscrolled.
    pub fn reset(&mut self) {
        self.selected = 0;
        self.offset.set(0);
    }

    /// Moves by a motion action over `rows` rows; returns whether `action`
    /// is a motion.
    pub fn apply(&mut self, action: Action, rows: usize) -> bool {
        let last = rows.saturating_sub(1);
        let page = self.page.get().max(1);
        let sel = self.selected;
        self.selected = match action {
            Action::Up => sel.saturating_sub(1),
            Action::Down => (sel + 1).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            Action::PageUp => sel.saturating_sub(page),
            Action::PageDown => (sel + page).min(last),
            _ => return false,
        };
        true
    }

    /// For drawing `rows` rows in `visible` lines: the selected row (kept
    /// within the rows) and the first row shown. Remembers both the offset
    /// and the page height for the next motion.
    pub fn place(&self, visible: usize, rows: usize) -> (usize, usize) {
        let selected = self.selected.min(rows.saturating_sub(1));
        let offset = scroll_offset(self.offset.get(), selected, visible, rows);
        self.offset.set(offset);
        self.page.set(visible.max(1));
        (selected, offset)
    }

    /// Selects the row shown `shown` lines under the first row shown, as
    /// last placed (a click), if there is such a row among `rows`; returns
    /// whether it did.
    pub fn select_shown(&mut self, shown: usize, rows: usize) -> bool {
        let row = self.offset.get() + shown;
        let ok = shown < self.page.get() && row < rows;
        if ok {
            self.selected = row;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motions_stay_within_the_rows() {
        let mut s = Selection::default();
        assert!(s.apply(Action::Up, 5));
        assert_eq!(s.selected(), 0);
        s.apply(Action::Bottom, 5);
        s.apply(Action::Down, 5);
        assert_eq!(s.selected(), 4);
        s.place(2, 5);
        s.apply(Action::PageUp, 5);
        assert_eq!(s.selected(), 2);
        assert!(!s.apply(Action::Open, 5));
        assert_eq!(s.place(2, 1), (0, 0), "fewer rows than the selection");
    }

    #[test]
    fn a_row_shown_is_selected_through_the_scroll() {
        let mut s = Selection::default();
        s.apply(Action::Bottom, 20);
        assert_eq!(s.place(5, 20), (19, 15));
        assert!(s.select_shown(1, 20));
        assert_eq!(s.selected(), 16);
        assert!(!s.select_shown(5, 20), "below the rows shown");
        assert!(!s.select_shown(4, 18), "past the last row");
        assert_eq!(s.selected(), 16);
    }
}
