//! The `?` popup: every binding of the view underneath (and of the help
//! itself), with all its keys, generated from the console's keymap (so a
//! key `[console.keys]` gave shows). On a read-only console the keys that
//! act are listed as unavailable.

use std::sync::Arc;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::tui::keymap::{Action, Binding, Keymap, Modes};
use crate::tui::text;

use super::{Component, DrawContext};

/// The help popup: the keys it lists. (A scroll offset will come with
/// views that have more keys than a screen has rows.)
#[derive(Debug, Default)]
pub struct Help {
    keymap: Arc<Keymap>,
}

impl Help {
    /// A popup that lists the keys of `keymap`.
    pub fn new(keymap: Arc<Keymap>) -> Self {
        Help { keymap }
    }
}

impl Component for Help {
    /// Draws the popup centred in `area`.
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let rows: Vec<&Binding> = self.keymap.help_bindings(cx.view).collect();
        let key_w = rows
            .iter()
            .map(|b| text::width(&b.keys_label()))
            .max()
            .unwrap_or(0);
        let mut lines: Vec<Line> = rows
            .iter()
            .map(|b| {
                let keys = format!(" {:<key_w$}  ", b.keys_label());
                if cx.read_only && b.action.acts() {
                    let dim = Style::new().fg(t.dim).add_modifier(Modifier::CROSSED_OUT);
                    return Line::from(vec![
                        Span::styled(keys, dim),
                        Span::styled(b.help, dim),
                        Span::styled(" (unavailable: read-only)", Style::new().fg(t.dim)),
                    ]);
                }
                Line::from(vec![
                    Span::styled(
                        keys,
                        Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(b.help, Style::new().fg(t.text)),
                ])
            })
            .collect();
        let key = |a| self.keymap.key_label(a, cx.view, Modes::HELP);
        lines.push(Line::from(Span::styled(
            format!(
                " {} or {} closes this help",
                key(Action::Back),
                key(Action::Help)
            ),
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
}
