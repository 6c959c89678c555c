//! The Logs view (`L`): what rollguard logs, from tui-logger's buffer,
//! shown from a chosen level up (`+` more detail, `-` less), over the log
//! of a rollout's worker: the deployment shown last, or the current app's
//! rollout. The worker's lines are read from its file about once a second
//! and made printable (drivers and hosts write into it), newest at the
//! bottom; ↑ ↓ scroll them.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use tui_logger::{LevelFilter, TuiLoggerLevelOutput, TuiLoggerWidget, TuiWidgetState};

use crate::tui::keymap::{Action, Modes};
use crate::tui::text;

use super::{Component, DrawContext};

/// The levels `+` and `-` step through, least detail first.
const LEVELS: [LevelFilter; 5] = [
    LevelFilter::Error,
    LevelFilter::Warn,
    LevelFilter::Info,
    LevelFilter::Debug,
    LevelFilter::Trace,
];

/// The Logs view's state.
pub struct LogsView {
    /// The deployment whose worker log is shown, and its app.
    deployment: Option<(i64, String)>,
    lines: Vec<String>,
    /// Index into [`LEVELS`].
    level: usize,
    state: TuiWidgetState,
    /// Worker log rows scrolled up from the newest.
    scroll: usize,
    page: Cell<usize>,
}

impl Default for LogsView {
    fn default() -> Self {
        LogsView {
            deployment: None,
            lines: Vec::new(),
            level: 2,
            state: TuiWidgetState::new().set_default_display_level(LEVELS[2]),
            scroll: 0,
            page: Cell::new(10),
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
            self.scroll = 0;
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

    /// `+` / `-` change the level shown, ↑ ↓ scroll the worker's log;
    /// whether `action` did something here.
    pub fn apply(&mut self, action: Action) -> bool {
        let n = self.lines.len();
        let page = self.page.get().max(1);
        match action {
            Action::MoreDetail | Action::LessDetail => {
                self.level = match action {
                    Action::MoreDetail => (self.level + 1).min(LEVELS.len() - 1),
                    _ => self.level.saturating_sub(1),
                };
                let state = std::mem::take(&mut self.state);
                self.state = state.set_default_display_level(LEVELS[self.level]);
                return true;
            }
            Action::Up => self.scroll += 1,
            Action::Down => self.scroll = self.scroll.saturating_sub(1),
            Action::PageUp => self.scroll += page,
            Action::PageDown => self.scroll = self.scroll.saturating_sub(page),
            Action::Top => self.scroll = n,
            Action::Bottom => self.scroll = 0,
            _ => return false,
        }
        self.scroll = self.scroll.min(n.saturating_sub(page));
        true
    }
}

impl Component for LogsView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Min(3)]).areas(area);
        let level = LEVELS[self.level].as_str().to_lowercase();
        let logger = TuiLoggerWidget::default()
            .block(
                Block::bordered()
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
                    .border_style(Style::new().fg(t.border)),
            )
            .style(Style::new().fg(t.text))
            .style_error(Style::new().fg(t.down))
            .style_warn(Style::new().fg(t.degraded))
            .style_info(Style::new().fg(t.text))
            .style_debug(Style::new().fg(t.dim))
            .style_trace(Style::new().fg(t.dim))
            .output_separator(' ')
            .output_timestamp(Some("%H:%M:%S".into()))
            .output_level(Some(TuiLoggerLevelOutput::Abbreviated))
            .output_target(true)
            .output_file(false)
            .output_line(false)
            .state(&self.state);
        frame.render_widget(logger, top);

        let title = match &self.deployment {
            Some((id, app)) => format!(" worker log · deployment {id} of {app} "),
            None => " worker log · no rollout recorded for this app ".into(),
        };
        let block = Block::bordered()
            .title(Span::styled(
                title,
                Style::new().add_modifier(Modifier::BOLD),
            ))
            .border_style(Style::new().fg(t.border));
        let inner = block.inner(bottom);
        frame.render_widget(block, bottom);
        let rows = inner.height as usize;
        self.page.set(rows);
        if self.lines.is_empty() {
            let words = if self.deployment.is_some() {
                "nothing written yet"
            } else {
                "open a rollout (R) or a deployment in History, then L"
            };
            frame.render_widget(Paragraph::new(words).style(Style::new().fg(t.dim)), inner);
            return;
        }
        let n = self.lines.len();
        let end = n - self.scroll.min(n - 1);
        let start = end.saturating_sub(rows);
        let width = inner.width as usize;
        let lines: Vec<Line> = self.lines[start..end]
            .iter()
            .map(|l| {
                Line::from(Span::styled(
                    text::truncate(l, width),
                    Style::new().fg(t.text),
                ))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}
