//! The footer line: a fresh notice (what a rollout command did), else the
//! main keys of the current view, generated from the keymap (bindings that
//! have a footer word). Rollout keys show only when they apply to the
//! rollout of the app they act on.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Popup};
use super::keymap::{Action, KEYMAP, Scope};
use super::state::FleetState;

/// Draws the footer into `area` (one line).
pub fn draw(frame: &mut Frame, area: Rect, app: &App, state: &FleetState) {
    let t = &app.theme;
    if let Some(n) = app.notice() {
        let color = if n.error { t.down } else { t.healthy };
        let line = Line::from(Span::styled(format!(" {}", n.text), Style::new().fg(color)));
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let key = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
    let word = Style::new().fg(t.dim);
    if app.popup() == Some(Popup::Confirm) {
        let spans = vec![
            Span::raw(" "),
            Span::styled("Enter", key),
            Span::styled(" send  ", word),
            Span::styled("Esc", key),
            Span::styled(" cancel  ", word),
            Span::styled("type a reason", word),
        ];
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
        return;
    }
    let scopes = app.scopes();
    let index = app.current_app();
    let name = app.fleet().apps.get(index).map_or("", |a| a.name.as_str());
    let active = state.rollouts(index).and_then(|r| r.active.as_ref());
    let mut spans = vec![Span::raw(" ")];
    for b in KEYMAP.iter().filter(|b| scopes.contains(&b.scope)) {
        let Some(label) = b.footer else { continue };
        // Back only means something in the app view or with a popup open.
        if b.scope == Scope::Global
            && b.action == Action::Back
            && scopes.contains(&Scope::Fleet)
            && app.popup().is_none()
        {
            continue;
        }
        if let Action::Rollout(verb) = b.action
            && (app.popup().is_some() || verb.check(name, active).is_err())
        {
            continue;
        }
        spans.push(Span::styled(b.keys[0].label(), key));
        spans.push(Span::styled(format!(" {label}  "), word));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
