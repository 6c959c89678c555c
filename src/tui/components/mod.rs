//! The console's components, in the manner of gitui: each is one file,
//! owns the state only it needs (a selection, a scroll offset, a filter,
//! the text being typed) and draws itself from that state and a
//! [`DrawContext`]. [`App`](super::App) holds them as named fields; the
//! question and the lines being typed live in its [`Mode`](super::Mode).
//! Drawing is `&self` and does no I/O: what it must remember (a scroll
//! offset, the page height) is kept in `Cell`s.

mod app_view;
mod confirm;
mod deployment_view;
mod events_view;
mod fleet_view;
mod help;
mod history_view;
mod log_pane;
mod logs_view;
mod selection;
mod tail;
mod text_input;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Cell, Row, Table, TableState};

pub use app_view::{AppView, verdict_symbol};
pub use confirm::{Button, Confirm, Press, REASON_MAX};
pub use deployment_view::{DeploymentView, instance_state, why_lines};
pub use events_view::EventsView;
pub use fleet_view::{FleetView, status_symbol};
pub use help::Help;
pub use history_view::{HistoryView, is_rollback, lines_above as history_lines_above};
pub use log_pane::LogPane;
pub use logs_view::LogsView;
pub use selection::Selection;
pub use tail::Tail;
pub use text_input::{CURSOR, TextInput};

use super::theme::Theme;
use super::view::View;
use crate::state::FleetState;

/// What every component reads while it draws: the data, the colours,
/// "now" and the view shown.
#[derive(Clone, Copy)]
pub struct DrawContext<'a> {
    /// What is known about the fleet.
    pub state: &'a FleetState,
    /// Colours.
    pub theme: &'a Theme,
    /// "Now" for this frame, ms since the epoch.
    pub now_ms: i64,
    /// The view shown.
    pub view: View,
    /// Whether the console only watches (the help marks the keys that act
    /// as unavailable).
    pub read_only: bool,
    /// The keys in effect, for words that name one.
    pub keys: &'a super::keymap::Keymap,
}

/// A part of the screen that draws itself.
pub trait Component {
    /// Draws into `area`; reads only itself and `cx`.
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext);
}

/// Draws a table view's rows under its column headings: a column of width
/// 0 (dropped by [`fit`](super::columns::fit)) is left out of both, and
/// `selected` (a position among `rows`) is highlighted in the theme's
/// selection style, behind its marker if it has one.
pub(crate) fn draw_table<'a>(
    frame: &mut Frame,
    area: Rect,
    headings: &[&'a str],
    widths: &[u16],
    rows: impl IntoIterator<Item = Row<'a>>,
    selected: usize,
    t: &Theme,
) {
    let header = Row::new(
        headings
            .iter()
            .zip(widths)
            .filter(|(_, w)| **w > 0)
            .map(|(h, _)| Cell::from(*h)),
    )
    .style(Style::new().fg(t.dim).add_modifier(Modifier::BOLD));
    let table = Table::new(
        rows,
        widths
            .iter()
            .filter(|w| **w > 0)
            .map(|w| Constraint::Length(*w)),
    )
    .header(header)
    .column_spacing(1)
    .row_highlight_style(t.selection_style());
    // The marker shows the selection without color (mono, NO_COLOR).
    let table = match t.selection_marker.as_str() {
        "" => table,
        marker => table.highlight_symbol(marker.to_string()),
    };
    let mut ts = TableState::new().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// What the console waits for before it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The check's token: only its answer is taken.
    pub token: u64,
    /// What is being checked, in words.
    pub what: String,
}

/// The line shown while a deploy or a rollback is checked: what is
/// checked, and that Esc stops waiting.
pub(crate) fn draw_pending(frame: &mut Frame, area: Rect, p: &Pending, cx: &DrawContext) {
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Block, Clear, Padding, Paragraph};
    let t = cx.theme;
    let lines = vec![
        Line::from(Span::styled(p.what.clone(), Style::new().fg(t.text))),
        Line::from(Span::styled(
            "plan, artifacts, the way back… Esc stops waiting (nothing starts)",
            Style::new().fg(t.dim),
        )),
    ];
    let w = (lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 6).min(area.width);
    let h = 4.min(area.height);
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
                .title(" checking ")
                .padding(Padding::horizontal(1))
                .border_style(Style::new().fg(t.rollout)),
        ),
        popup,
    );
}
