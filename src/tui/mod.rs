//! The interactive console, built like gitui and oxker: data state
//! ([`FleetState`], fed by the prober) is kept apart from view state
//! ([`App`]: view, selection, popup); each panel is one file with a draw
//! function that only reads them; keys go through one [`keymap`] that
//! also generates the help popup and the footer; [`run`] owns the
//! terminal.
//!
//! Screen, top to bottom: header, optional banner, the fleet or app table,
//! optional log pane, footer; the help popup or the question before a
//! rollout command ([`control`]) on top.

mod app;
mod app_view;
mod columns;
mod confirm;
pub mod control;
mod fleet_view;
mod footer;
mod header;
mod help;
pub mod keymap;
mod log_pane;
mod logging;
mod rollout_text;
mod run;
mod sparkline;
pub mod state;
mod text;
mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Block;

pub use app::{App, Confirm, NOTICE_MS, Notice, Popup, View};
pub use app_view::verdict_symbol;
pub use control::{Request, Verb};
pub use fleet_view::status_symbol;
pub use keymap::{Action, KEYMAP};
pub use logging::{LOG_ENV, init_logging};
pub use run::{FRAME_INTERVAL, RunOptions, run};
pub use sparkline::{BARS, FAIL_BAR, LatencySparkline};
pub use state::{FleetState, LastError, LastResult, ProbeHistory, Sample};
pub use theme::{BUILTIN_THEMES, Theme, ThemeError};

/// Draws the whole console for the current view. Reads `app.now_ms` as
/// "now"; does no I/O. Works at any size, down to 1x1.
pub fn draw(frame: &mut Frame, app: &App, state: &FleetState) {
    let area = frame.area();
    if area.is_empty() {
        return;
    }
    let banner_h = u16::from(app.banner.is_some() && area.height >= 10);
    let footer_h = u16::from(area.height >= 3);
    let [header_area, banner_area, body, footer_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_h),
        Constraint::Min(0),
        Constraint::Length(footer_h),
    ])
    .areas(area);

    header::draw(frame, header_area, app, state);
    if let Some(b) = app.banner.as_deref().filter(|_| banner_h > 0) {
        header::draw_banner(frame, banner_area, app, b);
    }

    let (table_area, log_area) = if app.log_visible() && body.height >= 10 {
        let [t, l] = Layout::vertical([Constraint::Min(5), Constraint::Percentage(35)]).areas(body);
        (t, Some(l))
    } else {
        (body, None)
    };
    match app.view() {
        View::Fleet => fleet_view::draw(frame, table_area, app, state),
        View::App(i) => app_view::draw(frame, table_area, app, state, i),
    }
    if let Some(l) = log_area {
        log_pane::draw(frame, l, app);
    }
    if footer_h > 0 {
        footer::draw(frame, footer_area, app, state);
    }
    match app.popup() {
        Some(Popup::Help) => help::draw(frame, area, app),
        Some(Popup::Confirm) => confirm::draw(frame, area, app),
        None => {}
    }
}

/// The frame around a table: bordered with a title, or bare when `area`
/// is too low to spend two rows on borders.
pub(crate) fn panel<'a>(title: Line<'a>, area: Rect, theme: &Theme) -> Block<'a> {
    if area.height < 6 {
        Block::new()
    } else {
        Block::bordered()
            .title(title)
            .border_style(Style::new().fg(theme.border))
    }
}
