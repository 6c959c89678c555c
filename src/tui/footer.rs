//! The footer line: the main keys of the current view, generated from the
//! keymap (bindings that have a footer word).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use super::keymap::{KEYMAP, Scope};

/// Draws the footer into `area` (one line).
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let key = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
    let word = Style::new().fg(t.dim);
    let scopes = app.scopes();
    let mut spans = vec![Span::raw(" ")];
    for b in KEYMAP.iter().filter(|b| scopes.contains(&b.scope)) {
        let Some(label) = b.footer else { continue };
        // Back only means something in the app view or with a popup open.
        if b.scope == Scope::Global
            && b.action == super::Action::Back
            && scopes.contains(&Scope::Fleet)
            && app.popup().is_none()
        {
            continue;
        }
        spans.push(Span::styled(b.keys[0].label(), key));
        spans.push(Span::styled(format!(" {label}  "), word));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
