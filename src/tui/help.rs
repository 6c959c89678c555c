//! The `?` popup: every binding of the keymap, with all its keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::app::App;
use super::keymap::KEYMAP;
use super::text;

/// Draws the help popup centred in `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let key_w = KEYMAP
        .iter()
        .map(|b| text::width(&b.keys_label()))
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = KEYMAP
        .iter()
        .map(|b| {
            let scope = b.scope.label();
            let mut spans = vec![
                Span::styled(
                    format!(" {:<key_w$}  ", b.keys_label()),
                    Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD),
                ),
                Span::styled(b.help, Style::new().fg(t.text)),
            ];
            if !scope.is_empty() {
                spans.push(Span::styled(format!("  ({scope})"), Style::new().fg(t.dim)));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::from(Span::styled(
        " Esc or ? closes this help",
        Style::new().fg(t.dim),
    )));
    let want_w = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 3;
    let want_h = lines.len() as u16 + 2;
    let w = want_w.min(area.width);
    let h = want_h.min(area.height);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" keys ")
                .border_style(Style::new().fg(t.border)),
        ),
        popup,
    );
}
