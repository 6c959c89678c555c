//! Below [`MIN_WIDTH`]x[`MIN_HEIGHT`] the console draws one plain message
//! in place of its views and popups, rather than clipping them: a cut-off
//! question or a table without its verdicts would mislead more than it
//! helps. Keys still work (the quit key quits); the views come back as soon as the
//! terminal is large enough.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::keymap::Keymap;
use super::theme::Theme;
use super::view::View;
use crate::keys::{Action, Modes};

/// The narrowest terminal the console draws its views in.
pub const MIN_WIDTH: u16 = 80;
/// The lowest terminal the console draws its views in.
pub const MIN_HEIGHT: u16 = 24;

/// Whether `area` is too small for the views.
pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// The words, e.g. "rollguard needs at least 80x24; this terminal is
/// 70x20 — make it larger".
pub fn message(area: Rect) -> String {
    format!(
        "rollguard needs at least {MIN_WIDTH}x{MIN_HEIGHT}; this terminal is {}x{} — make it larger",
        area.width, area.height
    )
}

/// Draws [`message`] over the whole frame, wrapped and centred; the quit
/// key still quits, so it says that too (named as `keys` bind it in
/// `view`) when there is room.
pub fn draw(frame: &mut Frame, theme: &Theme, keys: &Keymap, view: View) {
    let area = frame.area();
    let quit = keys.key_label(Action::Quit, view, Modes::NORMAL);
    let lines = vec![
        Line::styled(
            message(area),
            Style::new().fg(theme.text).add_modifier(Modifier::BOLD),
        ),
        Line::styled(format!("{quit} quits"), Style::new().fg(theme.dim)),
    ];
    // Rows the wrapped words take, and one more, as words wrap whole.
    let width = usize::from(area.width.max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(width)).sum();
    let height = u16::try_from(rows + 1).unwrap_or(u16::MAX).min(area.height);
    let text = Paragraph::new(lines).centered().wrap(Wrap { trim: true });
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(text, middle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_are_80x24() {
        assert!(!too_small(Rect::new(0, 0, 80, 24)));
        assert!(!too_small(Rect::new(0, 0, 200, 60)));
        assert!(too_small(Rect::new(0, 0, 79, 24)));
        assert!(too_small(Rect::new(0, 0, 80, 23)));
        assert!(too_small(Rect::new(0, 0, 1, 1)));
        assert_eq!(
            message(Rect::new(0, 0, 70, 20)),
            "rollguard needs at least 80x24; this terminal is 70x20 — make it larger"
        );
    }
}
