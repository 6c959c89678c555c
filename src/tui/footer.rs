//! The footer line: the line being typed in the `/` filter or the `:`
//! command line, else a fresh notice (what a rollout command did), else
//! the keys of the current view and mode, generated from the console's
//! keymap, remapped keys and all (bindings that have a footer word and
//! that [`App::offers`] now).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use super::mode::Mode;
use crate::state::FleetState;

/// Draws the footer into `area` (one line).
pub fn draw(frame: &mut Frame, area: Rect, app: &App, state: &FleetState) {
    let t = &app.theme;
    let key = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
    let word = Style::new().fg(t.dim);
    let mut spans = vec![Span::raw(" ")];
    let prompt = match app.mode() {
        Mode::Filter(line) => Some(('/', line)),
        Mode::Command(line) => Some((':', line)),
        _ => None,
    };
    if let Some((mark, line)) = prompt {
        spans.push(Span::styled(mark.to_string(), key));
        spans.extend(line.spans(Style::new().fg(t.text), key));
        spans.push(Span::raw("  "));
        if let (Mode::Command(_), Some(note)) = (app.mode(), app.completion_note()) {
            spans.push(Span::styled(
                crate::printable::printable(note).into_owned(),
                word,
            ));
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
            return;
        }
        // What Tab could complete to, when it could be more than one.
        if let (Mode::Command(_), [_, _, ..]) = (app.mode(), app.completions()) {
            let all = app.completions().join("  ");
            spans.push(Span::styled(
                crate::printable::printable(&all).into_owned(),
                word,
            ));
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
            return;
        }
    } else if let Some(n) = app.notice() {
        let color = if n.error { t.down } else { t.healthy };
        let line = Line::from(Span::styled(format!(" {}", n.text), Style::new().fg(color)));
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    // Whole keys only: one that does not fit is left out, never cut.
    let mut used: usize = spans.iter().map(Span::width).sum();
    let room = area.width as usize;
    for b in app.keymap.bindings(app.view(), app.mode().modes()) {
        let Some(label) = b.footer else { continue };
        if !app.offers(b.action, state) {
            continue;
        }
        let k = Span::styled(b.keys[0].label(), key);
        let w = Span::styled(format!(" {label}  "), word);
        let need = k.width() + w.width() - 2;
        if used + need > room {
            break;
        }
        used += k.width() + w.width();
        spans.push(k);
        spans.push(w);
    }
    if let Some(hint) = app.mode().hint().filter(|h| used + h.len() <= room) {
        spans.push(Span::styled(hint, word));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
