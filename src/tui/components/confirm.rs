//! The question before a destructive action: what will happen, a line to
//! type the reason (stored with the actor), on a protected app a line to
//! type its name, and two buttons, Cancel and the action. It is open while
//! the console's mode is [`Mode::Confirm`](crate::tui::Mode::Confirm),
//! which holds it.
//!
//! Nothing is done by accident: the question opens with Cancel focused,
//! so Enter alone closes it; the operator moves to the action's button
//! (Tab, ← →) and presses Enter. The action's button refuses, with a line
//! saying why, while a required reason is blank (abort, fire) or while the
//! name typed is not the protected app's exactly. Characters go to the
//! line being typed (the reason, or the name: ↑ ↓ move between them),
//! whichever button is focused. The focused button is drawn reversed and
//! between `>` `<`, so it shows without colour too.

use std::cell::Cell;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Wrap};

use crate::keys::{Action, Modes};
use crate::tui::action::{ConfirmAction, ConfirmedAction};
use crate::tui::keymap;
use crate::tui::text;

use super::{Component, DrawContext, TextInput};

/// The longest reason the question takes, in characters.
pub const REASON_MAX: usize = 200;
/// The longest app name the question takes, in characters.
const NAME_MAX: usize = 64;

/// The buttons of the question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    /// Close the question; nothing is done.
    Cancel,
    /// Do the action (if its reason and name are given).
    Act,
}

/// What pressing the focused button came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Press {
    /// Cancel was pressed: close the question.
    Cancel,
    /// The action's button refused; the question says why.
    Refused,
    /// The action is confirmed.
    Confirmed(ConfirmedAction),
}

/// An open question: the action it confirms, in words, the lines typed so
/// far, and the button focused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// What will be done once confirmed.
    pub action: ConfirmAction,
    /// The question, e.g. "Abort deployment 7 of web (v2 → v3)?".
    pub question: String,
    /// What happens then.
    pub then: String,
    /// What was checked: the plan, the preflight report, warnings (a
    /// deploy's and a rollback's; empty for the others).
    pub details: Vec<String>,
    /// The reason being typed.
    pub reason: TextInput,
    /// The app's name being typed, when the app is protected.
    pub name: Option<TextInput>,
    /// Whether keys type into the name (else into the reason).
    typing_name: bool,
    /// The button Enter presses.
    focus: Button,
    /// Why the action's button refused last, until the next edit.
    refusal: Option<String>,
    /// When the armed rollback it is about fires by itself (epoch ms):
    /// the question counts down to it.
    fires_at_ms: Option<i64>,
    /// Why it no longer applies (its deployment ended, or moved on to
    /// where the action means nothing): the action's button sends nothing.
    moot: Option<String>,
    /// The first of the details shown, and how many the last drawing
    /// showed (a page).
    details_at: usize,
    details_page: Cell<usize>,
}

impl Confirm {
    /// A question about `action`, Cancel focused, no reason typed yet;
    /// `protected` asks for the app's name too.
    pub fn new(action: ConfirmAction, question: String, then: String, protected: bool) -> Self {
        Confirm {
            action,
            question,
            then,
            details: Vec::new(),
            fires_at_ms: None,
            reason: TextInput::new(REASON_MAX),
            name: protected.then(|| TextInput::new(NAME_MAX)),
            typing_name: false,
            focus: Button::Cancel,
            refusal: None,
            moot: None,
            details_at: 0,
            details_page: Cell::new(1),
        }
    }

    /// Says why the action no longer applies (`None`: it does again, or
    /// still does). While it does not, the question says so, stops
    /// counting down and its action's button refuses.
    pub fn set_moot(&mut self, why: Option<String>) {
        self.moot = why;
    }

    /// Why the action no longer applies, if it does not.
    pub fn moot(&self) -> Option<&str> {
        self.moot.as_deref()
    }

    /// The question counting down to `fires_at_ms`, when an armed
    /// rollback fires by itself.
    pub fn with_countdown(mut self, fires_at_ms: Option<i64>) -> Self {
        self.fires_at_ms = fires_at_ms;
        self
    }

    /// The question with the report of what was checked.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    /// The button Enter presses.
    pub fn focus(&self) -> Button {
        self.focus
    }

    /// Why the action's button refused, if it did since the last edit.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// The line keys type into.
    pub fn line(&self) -> &TextInput {
        match &self.name {
            Some(name) if self.typing_name => name,
            _ => &self.reason,
        }
    }

    /// The line keys type into, to edit.
    pub fn line_mut(&mut self) -> &mut TextInput {
        match &mut self.name {
            Some(name) if self.typing_name => name,
            _ => &mut self.reason,
        }
    }

    /// Applies an editing key to the line typed into; returns whether the
    /// text changed (which clears a refusal).
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        let changed = self.line_mut().edit(key);
        if changed {
            self.refusal = None;
        }
        changed
    }

    /// Moves the focus to the other button.
    pub fn switch_button(&mut self) {
        self.focus = match self.focus {
            Button::Cancel => Button::Act,
            Button::Act => Button::Cancel,
        };
    }

    /// Types into the other line; false when there is only the reason.
    pub fn switch_line(&mut self) -> bool {
        if self.name.is_none() {
            return false;
        }
        self.typing_name = !self.typing_name;
        true
    }

    /// Presses the focused button.
    pub fn press(&mut self) -> Press {
        if self.focus == Button::Cancel {
            return Press::Cancel;
        }
        if let Some(why) = &self.moot {
            self.refusal = Some(format!("{why}: nothing was sent"));
            return Press::Refused;
        }
        match self.missing() {
            Some(why) => {
                self.refusal = Some(why);
                Press::Refused
            }
            None => Press::Confirmed(self.action.clone().confirmed(&self.reason.text())),
        }
    }

    /// What the action still needs, in words, if anything.
    fn missing(&self) -> Option<String> {
        let verb = self.action.name();
        let app = self.action.app();
        if self.action.needs_reason() && self.reason.text().trim().is_empty() {
            return Some(format!("a reason is required to {verb}: type it first"));
        }
        match &self.name {
            Some(name) if name.text() != app => Some(format!(
                "{app} is protected: type its name exactly to {verb}"
            )),
            _ => None,
        }
    }

    /// The two buttons, the focused one reversed and marked.
    fn buttons<'a>(&self, cx: &DrawContext) -> Line<'a> {
        let t = cx.theme;
        let button = |word: &str, which: Button| {
            if self.focus == which {
                Span::styled(
                    format!("> {word} <"),
                    Style::new()
                        .fg(t.text)
                        .add_modifier(Modifier::REVERSED | Modifier::BOLD),
                )
            } else {
                Span::styled(format!("  {word}  "), Style::new().fg(t.text))
            }
        };
        Line::from(vec![
            Span::raw("  "),
            button("Cancel", Button::Cancel),
            Span::raw("   "),
            button(self.action.button(), Button::Act),
        ])
    }
}

/// The line of a text field: its label, then the text (with the cursor
/// when it is the line typed into), or a dim placeholder while it is empty.
fn field<'a>(
    label: String,
    input: &TextInput,
    typing: bool,
    placeholder: &'static str,
    cx: &DrawContext,
) -> Line<'a> {
    let t = cx.theme;
    let dim = Style::new().fg(t.dim);
    let cursor = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::styled(label, dim)];
    if typing {
        spans.extend(input.spans(Style::new().fg(t.text), cursor));
    } else {
        spans.push(Span::styled(input.text(), Style::new().fg(t.text)));
    }
    if input.is_empty() {
        spans.push(Span::styled(placeholder, dim));
    }
    Line::from(spans)
}

impl Confirm {
    /// Scrolls what was checked (the details) by a page; whether `action`
    /// is a scrolling one.
    pub fn scroll(&mut self, action: Action) -> bool {
        let page = self.details_page.get().max(1);
        let last = self.details.len().saturating_sub(page);
        self.details_at = match action {
            Action::PageUp | Action::Up => self.details_at.saturating_sub(page),
            Action::PageDown | Action::Down => (self.details_at + page).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            _ => return false,
        };
        true
    }

    /// The lines above the details: the question, what happens, and a
    /// line that it no longer applies or when the rollback fires.
    fn head_lines<'a>(&self, cx: &DrawContext) -> Vec<Line<'a>> {
        let t = cx.theme;
        let mut lines = vec![
            Line::from(Span::styled(
                self.question.clone(),
                Style::new().fg(t.text).add_modifier(Modifier::BOLD),
            )),
            Line::from(Span::styled(self.then.clone(), Style::new().fg(t.text))),
        ];
        let warning = Style::new().fg(t.down).add_modifier(Modifier::BOLD);
        if let Some(why) = &self.moot {
            let words = format!("✖ {why}: {} would send nothing", self.action.button());
            lines.push(Line::from(Span::styled(words, warning)));
        } else if let Some(at) = self.fires_at_ms {
            let left = crate::tui::rollout_text::secs_until(at, cx.now_ms);
            let words = if left > 0 {
                format!("⚠ the rollback fires by itself in {left}s")
            } else {
                "⚠ the rollback's window has passed: it fires now".into()
            };
            lines.push(Line::from(Span::styled(words, warning)));
        }
        lines.push(Line::default());
        lines
    }

    /// The lines below the details: the reason, the app's name, the
    /// buttons, why the action refused, and the keys.
    fn tail_lines<'a>(&self, cx: &DrawContext) -> Vec<Line<'a>> {
        let t = cx.theme;
        let key = Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD);
        let dim = Style::new().fg(t.dim);
        let label = |a| keymap::key_label(a, cx.view, Modes::CONFIRM);
        let mut lines = vec![field(
            "reason: ".into(),
            &self.reason,
            !self.typing_name,
            if self.action.needs_reason() {
                " (required)"
            } else {
                " (optional)"
            },
            cx,
        )];
        if let Some(name) = &self.name {
            let label = format!("type {} to confirm: ", self.action.app());
            lines.push(field(label, name, self.typing_name, "", cx));
        }
        lines.push(Line::default());
        lines.push(self.buttons(cx));
        if let Some(why) = &self.refusal {
            lines.push(Line::from(Span::styled(
                format!("✖ {why}"),
                Style::new().fg(t.down).add_modifier(Modifier::BOLD),
            )));
        }
        lines.push(Line::from(vec![
            Span::styled(label(Action::SwitchButton), key),
            Span::styled(" chooses  ", dim),
            Span::styled(label(Action::Press), key),
            Span::styled(" presses  ", dim),
            Span::styled(label(Action::Back), key),
            Span::styled(" cancels", dim),
        ]));
        lines
    }

    /// The details shown in `room` rows of `width` cells from where they
    /// are scrolled to, each cut to the width, with a line saying what is
    /// above or below and how to scroll to it.
    fn detail_lines<'a>(&self, room: usize, width: usize, cx: &DrawContext) -> Vec<Line<'a>> {
        let t = cx.theme;
        let dim = Style::new().fg(t.dim);
        let n = self.details.len();
        if n == 0 || room == 0 {
            self.details_page.set(1);
            return Vec::new();
        }
        // One row says what else there is, when not all fit.
        let page = if n > room {
            room.saturating_sub(1).max(1)
        } else {
            n
        };
        self.details_page.set(page);
        let at = self.details_at.min(n.saturating_sub(page));
        let mut lines: Vec<Line> = self.details[at..(at + page).min(n)]
            .iter()
            .map(|d| {
                let style = if d.contains("warning") || d.contains("MISSING") || d.starts_with('✖')
                {
                    Style::new().fg(t.degraded)
                } else {
                    dim
                };
                Line::from(Span::styled(text::truncate(d, width), style))
            })
            .collect();
        if page < n {
            let below = n - (at + page).min(n);
            let up = keymap::key_label(Action::PageUp, cx.view, Modes::CONFIRM);
            let down = keymap::key_label(Action::PageDown, cx.view, Modes::CONFIRM);
            let words = match (at, below) {
                (0, b) => format!("… {b} more lines below: {down} scrolls"),
                (a, 0) => format!("… {a} lines above: {up} scrolls back"),
                (a, b) => format!("… {a} lines above, {b} below: {up} {down} scroll"),
            };
            lines.push(Line::from(Span::styled(text::truncate(&words, width), dim)));
        }
        lines
    }
}

impl Component for Confirm {
    /// Draws the question centred in `area`, never taller than it: the
    /// question, the lines to type and the buttons always show (wrapped
    /// to the width); what was checked gets the rows left, and scrolls.
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let head = self.head_lines(cx);
        let tail = self.tail_lines(cx);
        let widest = (head.iter().chain(&tail))
            .map(Line::width)
            .chain(self.details.iter().map(|d| text::width(d)))
            .max()
            .unwrap_or(0)
            .max(48);
        let w = (widest as u16).saturating_add(4).min(area.width);
        let inner_w = w.saturating_sub(4).max(1) as usize;
        let rows = |lines: &[Line]| -> usize {
            lines
                .iter()
                .map(|l| l.width().max(1).div_ceil(inner_w))
                .sum()
        };
        let fixed = rows(&head) + rows(&tail);
        let room = (area.height as usize).saturating_sub(2 + fixed);
        let mut details = self.detail_lines(room.saturating_sub(1), inner_w, cx);
        if !details.is_empty() {
            details.push(Line::default());
        }
        let body = rows(&head) + details.len() + rows(&tail);
        let h = (body as u16).saturating_add(2).min(area.height);
        let popup = Rect::new(
            area.x + (area.width - w) / 2,
            area.y + (area.height - h) / 2,
            w,
            h,
        );
        let lines: Vec<Line> = head.into_iter().chain(details).chain(tail).collect();
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .padding(Padding::horizontal(1))
                    .title(format!(" {} ", self.action.name()))
                    .border_style(Style::new().fg(cx.theme.rollout)),
            ),
            popup,
        );
    }
}
