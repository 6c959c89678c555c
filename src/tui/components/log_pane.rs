//! The log pane (`l`): rollguard's own log messages, captured by
//! tui-logger (see [`crate::tui::init_logging`]) instead of being printed
//! over the console.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Block;
use tui_logger::{TuiLoggerLevelOutput, TuiLoggerWidget, TuiWidgetState};

use super::{Component, DrawContext};
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
/// target and message, coloured by level, in `block`.
pub(super) fn logger<'a>(
    block: Block<'a>,
    state: &'a TuiWidgetState,
    t: &Theme,
) -> TuiLoggerWidget<'a> {
    TuiLoggerWidget::default()
        .block(block)
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
        .state(state)
}
