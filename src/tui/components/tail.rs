//! Where a list shown newest at the bottom is scrolled to: the timeline of
//! a deployment, the Events view, a worker's log. At 0 it follows the
//! newest line; ↑ and PgUp go back in time, never past a page before the
//! oldest line. Drawing tells it how many rows fit (for page motions).

use std::cell::Cell;
use std::ops::Range;

use crate::keys::Action;

/// Rows scrolled up from the newest, and the rows the last drawing had.
#[derive(Debug, Default)]
pub struct Tail {
    up: usize,
    page: Cell<usize>,
}

impl Tail {
    /// A tail that takes `page` rows to a page until it is first drawn.
    pub fn with_page(page: usize) -> Self {
        Tail {
            up: 0,
            page: Cell::new(page),
        }
    }

    /// Rows scrolled up from the newest (0: following it).
    pub fn up(&self) -> usize {
        self.up
    }

    /// Follows the newest again.
    pub fn reset(&mut self) {
        self.up = 0;
    }

    /// Moves over `n` lines; whether `action` is a motion.
    pub fn apply(&mut self, action: Action, n: usize) -> bool {
        let page = self.page.get().max(1);
        self.up = match action {
            Action::Up => self.up + 1,
            Action::Down => self.up.saturating_sub(1),
            Action::PageUp => self.up + page,
            Action::PageDown => self.up.saturating_sub(page),
            Action::Top => n,
            Action::Bottom => 0,
            _ => return false,
        }
        .min(n.saturating_sub(page));
        true
    }

    /// One line came in below, `n` lines now: a tail that was scrolled
    /// keeps the same lines in view.
    pub fn grew(&mut self, n: usize) {
        if self.up > 0 {
            self.up = (self.up + 1).min(n.saturating_sub(self.page.get().max(1)));
        }
    }

    /// The lines of `n` to draw in `rows` rows (and `rows` is the page).
    pub fn window(&self, n: usize, rows: usize) -> Range<usize> {
        self.page.set(rows);
        let end = n.saturating_sub(self.up.min(n.saturating_sub(1)));
        end.saturating_sub(rows)..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_follows_the_newest_until_scrolled_and_keeps_its_lines_after() {
        let mut t = Tail::default();
        assert_eq!(t.window(10, 4), 6..10);
        assert!(t.apply(Action::Up, 10));
        assert_eq!(t.window(10, 4), 5..9);
        t.grew(11);
        assert_eq!(t.window(11, 4), 5..9, "the same lines stay in view");
        assert!(t.apply(Action::Top, 11));
        assert_eq!(t.up(), 7, "never past a page before the oldest");
        assert!(t.apply(Action::Bottom, 11));
        assert_eq!(t.window(11, 4), 7..11);
        assert!(!t.apply(Action::Open, 11));
        assert_eq!(t.window(0, 4), 0..0);
    }
}
