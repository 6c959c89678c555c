//! The question before a rollout command is sent: what will happen, a
//! line to type the reason (stored with the command), Enter or Esc.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Wrap};

use super::app::App;
use super::text;

/// Draws the open question centred in `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(c) = app.confirm() else { return };
    let t = &app.theme;
    let key = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(t.dim);
    let lines = vec![
        Line::from(Span::styled(
            c.question.as_str(),
            Style::new().fg(t.text).add_modifier(Modifier::BOLD),
        )),
        Line::from(Span::styled(c.then.as_str(), Style::new().fg(t.text))),
        Line::default(),
        Line::from(vec![
            Span::styled("reason: ", dim),
            Span::styled(c.reason.as_str(), Style::new().fg(t.text)),
            Span::styled("▏", key),
        ]),
        Line::default(),
        Line::from(vec![
            Span::styled("Enter", key),
            Span::styled(" sends  ", dim),
            Span::styled("Esc", key),
            Span::styled(" cancels", dim),
        ]),
    ];
    let widest = [&c.question, &c.then]
        .iter()
        .map(|s| text::width(s))
        .max()
        .unwrap_or(0)
        .max(8 + text::width(&c.reason) + 1)
        .max(48);
    let w = (widest as u16).saturating_add(6).min(area.width);
    let inner_w = w.saturating_sub(4).max(1) as usize;
    // Rows once wrapped at the inner width.
    let rows: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_w))
        .sum();
    let h = (rows as u16).saturating_add(2).min(area.height);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .padding(Padding::horizontal(1))
                .title(format!(" {} ", c.request.verb.as_str()))
                .border_style(Style::new().fg(t.rollout)),
        ),
        popup,
    );
}
