//! The Logs view (`L`): what rollguard logs, from tui-logger's buffer,
//! shown from a chosen level up (`+` more detail, `-` less), over the log
//! of a rollout's worker: the deployment shown last, or the current app's
//! rollout. The worker's lines are read from its file about once a second
//! and made printable (drivers and hosts write into it), newest at the
//! bottom. Both panes wrap long lines at spaces and scroll: the scrolling
//! keys move the focused one (its border drawn bold in the accent
//! colour), `w` moves the focus. rollguard's log scrolls by half pages
//! (tui-logger's own scrolling), the worker's by lines; `G` follows the
//! newest again.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use tui_logger::{LevelFilter, TuiWidgetEvent, TuiWidgetState};

use crate::keys::{Action, Modes};
use crate::tui::text;
use crate::tui::view::View;

use super::{Component, DrawContext, Tail};

/// The levels `+` and `-` step through, least detail first.
const LEVELS: [LevelFilter; 5] = [
    LevelFilter::Error,
    LevelFilter::Warn,
    LevelFilter::Info,
    LevelFilter::Debug,
    LevelFilter::Trace,
];

/// The pane the scrolling keys move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogsFocus {
    /// rollguard's own log, above.
    Own,
    /// The rollout worker's log, below.
    #[default]
    Worker,
}

/// The Logs view's state.
pub struct LogsView {
    /// The pane the scrolling keys move.
    focus: LogsFocus,
    /// The deployment whose worker log is shown, and its app.
    deployment: Option<(i64, String)>,
    lines: Vec<String>,
    /// Index into [`LEVELS`].
    level: usize,
    state: TuiWidgetState,
    /// Where the worker's log is scrolled to.
    tail: Tail,
}

impl Default for LogsView {
    fn default() -> Self {
        LogsView {
            focus: LogsFocus::default(),
            deployment: None,
            lines: Vec::new(),
            level: 2,
            state: TuiWidgetState::new().set_default_display_level(LEVELS[2]),
            tail: Tail::with_page(10),
        }
    }
}

impl std::fmt::Debug for LogsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsView")
            .field("deployment", &self.deployment)
            .field("level", &LEVELS[self.level])
            .finish_non_exhaustive()
    }
}

impl LogsView {
    /// Shows the worker log of deployment `id` of `app` (none: no
    /// rollout to show).
    pub fn show(&mut self, deployment: Option<(i64, String)>) {
        if self.deployment != deployment {
            self.deployment = deployment;
            self.lines.clear();
            self.tail.reset();
        }
    }

    /// The deployment whose worker log is shown.
    pub fn deployment(&self) -> Option<i64> {
        self.deployment.as_ref().map(|d| d.0)
    }

    /// Takes in the worker log's last lines, read for deployment `id`.
    pub fn set_lines(&mut self, id: i64, lines: Vec<String>) {
        if self.deployment() == Some(id) {
            self.lines = lines;
        }
    }

    /// The level shown from.
    pub fn level(&self) -> LevelFilter {
        LEVELS[self.level]
    }

    /// The pane the scrolling keys move.
    pub fn focus(&self) -> LogsFocus {
        self.focus
    }

    /// `+` / `-` change the level shown, `w` moves the focus, ↑ ↓ and the
    /// other motions scroll the focused pane; whether `action` did
    /// something here.
    pub fn apply(&mut self, action: Action) -> bool {
        match (action, self.focus) {
            (Action::MoreDetail | Action::LessDetail, _) => {
                self.level = match action {
                    Action::MoreDetail => (self.level + 1).min(LEVELS.len() - 1),
                    _ => self.level.saturating_sub(1),
                };
                let state = std::mem::take(&mut self.state);
                self.state = state.set_default_display_level(LEVELS[self.level]);
                true
            }
            (Action::SwitchPane, _) => {
                self.focus = match self.focus {
                    LogsFocus::Own => LogsFocus::Worker,
                    LogsFocus::Worker => LogsFocus::Own,
                };
                true
            }
            (_, LogsFocus::Own) => {
                let event = match action {
                    Action::Up | Action::PageUp | Action::Top => TuiWidgetEvent::PrevPageKey,
                    Action::Down | Action::PageDown => TuiWidgetEvent::NextPageKey,
                    Action::Bottom => TuiWidgetEvent::EscapeKey,
                    _ => return false,
                };
                self.state.transition(event);
                true
            }
            (_, LogsFocus::Worker) => self.tail.apply(action, self.lines.len()),
        }
    }

    /// The border of a pane: bold in the accent colour when focused.
    fn border(&self, pane: LogsFocus, t: &crate::tui::theme::Theme) -> Style {
        if self.focus == pane {
            Style::new().fg(t.rollout).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(t.border)
        }
    }
}

/// The rows the last of `lines` fill in `rows` rows of `width` cells,
/// each wrapped at spaces (continuation rows indented): the newest at the
/// bottom, the oldest that fits at the top, cut at its top if it must be.
fn bottom_rows(lines: &[String], width: usize, rows: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines.iter().rev() {
        if out.len() >= rows {
            break;
        }
        let wrapped = text::wrap(line, width, width.saturating_sub(2).max(1));
        for (i, piece) in wrapped.into_iter().enumerate().rev() {
            out.push(if i == 0 { piece } else { format!("  {piece}") });
        }
    }
    out.truncate(rows);
    out.reverse();
    out
}

impl Component for LogsView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Min(3)]).areas(area);
        let level = LEVELS[self.level].as_str().to_lowercase();
        let block = Block::bordered()
            .title(Line::from(vec![
                Span::styled(" rollguard log ", Style::new().add_modifier(Modifier::BOLD)),
                Span::styled(
                    format!(
                        "· {level} and worse · {} more detail, {} less ",
                        cx.keys
                            .key_label(Action::MoreDetail, cx.view, Modes::NORMAL),
                        cx.keys
                            .key_label(Action::LessDetail, cx.view, Modes::NORMAL)
                    ),
                    Style::new().fg(t.dim),
                ),
            ]))
            .border_style(self.border(LogsFocus::Own, t));
        frame.render_widget(super::log_pane::logger(block, &self.state, t), top);

        let title = match &self.deployment {
            Some((id, app)) => format!(" worker log · deployment {id} of {app} "),
            None => " worker log · no rollout recorded for this app ".into(),
        };
        let block = Block::bordered()
            .title(Span::styled(
                title,
                Style::new().add_modifier(Modifier::BOLD),
            ))
            .title_bottom(Line::from(Span::styled(
                format!(
                    " {} scrolls the other pane ",
                    cx.keys
                        .key_label(Action::SwitchPane, cx.view, Modes::NORMAL)
                ),
                Style::new().fg(t.dim),
            )))
            .border_style(self.border(LogsFocus::Worker, t));
        let inner = block.inner(bottom);
        frame.render_widget(block, bottom);
        let shown = self.tail.window(self.lines.len(), inner.height as usize);
        if self.lines.is_empty() {
            let words = if self.deployment.is_some() {
                "nothing written yet".to_string()
            } else {
                let key = |a| cx.keys.key_label(a, View::Fleet, Modes::NORMAL);
                format!(
                    "open a rollout ({}) or a deployment in History ({}), then {}",
                    key(Action::ShowRollout),
                    key(Action::ShowHistory),
                    key(Action::ShowLogs)
                )
            };
            frame.render_widget(Paragraph::new(words).style(Style::new().fg(t.dim)), inner);
            return;
        }
        let rows = bottom_rows(
            &self.lines[..shown.end],
            inner.width as usize,
            inner.height as usize,
        );
        let lines: Vec<Line> = rows
            .into_iter()
            .map(|l| Line::from(Span::styled(l, Style::new().fg(t.text))))
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}
