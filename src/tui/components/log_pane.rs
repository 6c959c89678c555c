//! The log pane (`l`): rollguard's own log messages, captured by
//! tui-logger (see [`crate::tui::init_logging`]) instead of being printed
//! over the console.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;
use tui_logger::{ExtLogRecord, LogFormatter, TuiLoggerWidget, TuiWidgetState};

use super::{Component, DrawContext};
use crate::printable::printable_lines;
use crate::tui::text;
use crate::tui::theme::Theme;

/// The log pane: whether it is shown, and tui-logger's own state.
#[derive(Default)]
pub struct LogPane {
    visible: bool,
    state: TuiWidgetState,
}

impl LogPane {
    /// Whether it is shown.
    pub fn visible(&self) -> bool {
        self.visible
    }

    /// Shows it, or hides it.
    pub fn toggle(&mut self) {
        self.visible = !self.visible;
    }
}

impl Component for LogPane {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let block = Block::bordered()
            .title(" log ")
            .border_style(Style::new().fg(t.border));
        frame.render_widget(logger(block, &self.state, t), area);
    }
}

/// rollguard's log as the log pane and the Logs view draw it: time, level,
/// target and message, coloured by level, in `block`, wrapped at spaces
/// by display width ([`LogLines`]).
pub(super) fn logger<'a>(
    block: Block<'a>,
    state: &'a TuiWidgetState,
    t: &Theme,
) -> TuiLoggerWidget<'a> {
    TuiLoggerWidget::default()
        .block(block)
        .style(Style::new().fg(t.text))
        .formatter(Box::new(LogLines {
            error: Style::new().fg(t.down),
            warn: Style::new().fg(t.degraded),
            info: Style::new().fg(t.text),
            detail: Style::new().fg(t.dim),
        }))
        .state(state)
}

/// How many cells continuation lines are indented by.
const INDENT: usize = 4;

/// One log record as lines: `HH:MM:SS L target message`, long messages
/// wrapped at spaces by display width (wide characters and emoji take
/// two cells), continuation lines indented; the text made printable.
struct LogLines {
    error: Style,
    warn: Style,
    info: Style,
    detail: Style,
}

impl LogFormatter for LogLines {
    fn min_width(&self) -> u16 {
        (INDENT + 8) as u16
    }

    fn format(&self, width: usize, evt: &ExtLogRecord) -> Vec<Line<'_>> {
        let level = evt.level.as_str();
        let style = match level {
            "ERROR" => self.error,
            "WARN" => self.warn,
            "INFO" => self.info,
            _ => self.detail,
        };
        let head = format!(
            "{} {} {} ",
            evt.timestamp.strftime("%H:%M:%S"),
            &level[..1],
            evt.target()
        );
        let mut lines = Vec::new();
        for (n, part) in printable_lines(evt.msg()).lines().enumerate() {
            let text = if n == 0 {
                format!("{head}{part}")
            } else {
                part.to_string()
            };
            let first = if n == 0 { width } else { width - INDENT };
            for (i, piece) in text::wrap(&text, first, width - INDENT)
                .into_iter()
                .enumerate()
            {
                let indent = if n == 0 && i == 0 { "" } else { "    " };
                lines.push(Line::from(Span::styled(format!("{indent}{piece}"), style)));
            }
        }
        if lines.is_empty() {
            lines.push(Line::from(Span::styled(head, style)));
        }
        lines
    }
}
