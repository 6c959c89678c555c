//! The question before a destructive action: what will happen, a line to
//! type the reason (stored with the actor), and the keys that send or
//! cancel, named from the keymap. It is open while the console's mode is
//! [`Mode::Confirm`](crate::tui::Mode::Confirm), which holds it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Wrap};

use crate::tui::action::{ConfirmAction, ConfirmedAction};
use crate::tui::keymap::{self, Action, Modes};
use crate::tui::text;

use super::{Component, DrawContext, TextInput};

/// The longest reason the question takes, in characters.
pub const REASON_MAX: usize = 200;

/// An open question: the action it confirms, in words, and the reason
/// typed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// What will be done once confirmed.
    pub action: ConfirmAction,
    /// The question, e.g. "Abort deployment 7 of web (v2 → v3)?".
    pub question: String,
    /// What happens then.
    pub then: String,
    /// The reason being typed.
    pub reason: TextInput,
}

impl Confirm {
    /// A question about `action`, no reason typed yet.
    pub fn new(action: ConfirmAction, question: String, then: String) -> Self {
        Confirm {
            action,
            question,
            then,
            reason: TextInput::new(REASON_MAX),
        }
    }

    /// The action, confirmed with the reason typed.
    pub fn confirmed(&self) -> ConfirmedAction {
        self.action.clone().confirmed(&self.reason.text())
    }
}

impl Component for Confirm {
    /// Draws the question centred in `area`.
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let key = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
        let dim = Style::new().fg(t.dim);
        let label = |a| keymap::key_label(a, cx.view, Modes::CONFIRM);
        let mut reason = vec![Span::styled("reason: ", dim)];
        reason.extend(self.reason.spans(Style::new().fg(t.text), key));
        let lines = vec![
            Line::from(Span::styled(
                self.question.as_str(),
                Style::new().fg(t.text).add_modifier(Modifier::BOLD),
            )),
            Line::from(Span::styled(self.then.as_str(), Style::new().fg(t.text))),
            Line::default(),
            Line::from(reason),
            Line::default(),
            Line::from(vec![
                Span::styled(label(Action::Send), key),
                Span::styled(" sends  ", dim),
                Span::styled(label(Action::Back), key),
                Span::styled(" cancels", dim),
            ]),
        ];
        let widest = [&self.question, &self.then]
            .iter()
            .map(|s| text::width(s))
            .max()
            .unwrap_or(0)
            .max(8 + text::width(&self.reason.text()) + 1)
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
                    .title(format!(" {} ", self.action.name()))
                    .border_style(Style::new().fg(t.rollout)),
            ),
            popup,
        );
    }
}
