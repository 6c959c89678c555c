//! The console's components, in the manner of gitui: each is one file,
//! owns the state only it needs (a selection, a scroll offset, a filter,
//! the text being typed) and draws itself from that state and a
//! [`DrawContext`]. [`App`](super::App) holds them as named fields; the
//! question and the lines being typed live in its [`Mode`](super::Mode).
//! Drawing is `&self` and does no I/O: what it must remember (a scroll
//! offset, the page height) is kept in `Cell`s.

mod app_view;
mod confirm;
mod fleet_view;
mod help;
mod log_pane;
mod selection;
mod text_input;

use ratatui::Frame;
use ratatui::layout::Rect;

pub use app_view::{AppView, verdict_symbol};
pub use confirm::{Button, Confirm, Press, REASON_MAX};
pub use fleet_view::{FleetView, status_symbol};
pub use help::Help;
pub use log_pane::LogPane;
pub use selection::Selection;
pub use text_input::{CURSOR, TextInput};

use super::app::View;
use super::state::FleetState;
use super::theme::Theme;

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
}

/// A part of the screen that draws itself.
pub trait Component {
    /// Draws into `area`; reads only itself and `cx`.
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext);
}
