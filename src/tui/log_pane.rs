//! The log pane (`l`): rollguard's own log messages, captured by
//! tui-logger (see [`super::logging`]) instead of being printed over the
//! console.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Block;
use tui_logger::{TuiLoggerLevelOutput, TuiLoggerWidget};

use super::app::App;

/// Draws the log pane into `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let widget = TuiLoggerWidget::default()
        .block(
            Block::bordered()
                .title(" log ")
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
        .state(&app.log_state);
    frame.render_widget(widget, area);
}
