//! The console's view state: which view is shown, what is selected, which
//! popup is open. Keys change it through [`App::handle_key`]; the draw code
//! only reads it. The data shown lives in [`FleetState`](super::FleetState).

use std::cell::Cell;
use std::sync::Arc;

use crossterm::event::{KeyEvent, KeyEventKind};
use tui_logger::TuiWidgetState;

use crate::config::Fleet;

use super::keymap::{self, Action, Scope};
use super::theme::Theme;

/// Which table fills the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One row per app.
    Fleet,
    /// One row per (instance, probe) of the app at this position.
    App(usize),
}

/// A popup over the view; at most one is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Popup {
    /// The list of keys.
    Help,
}

/// View state of the console.
pub struct App {
    fleet: Arc<Fleet>,
    /// Colors.
    pub theme: Theme,
    /// Shown in the header after "rollguard" (unless it is just the
    /// config path, which the header shows anyway).
    pub title: String,
    /// A notice shown under the header (e.g. that this is a demo).
    pub banner: Option<String>,
    /// "Now" for the frame being drawn, ms since the epoch: set by the run
    /// loop (or a test) before drawing, so drawing never reads a clock.
    pub now_ms: i64,
    view: View,
    popup: Option<Popup>,
    show_log: bool,
    fleet_selected: usize,
    app_selected: usize,
    /// Scroll offsets and page height, remembered by the draw code.
    pub(crate) fleet_offset: Cell<usize>,
    pub(crate) app_offset: Cell<usize>,
    pub(crate) page: Cell<usize>,
    pub(crate) log_state: TuiWidgetState,
}

impl App {
    /// The fleet view, nothing selected but the first app.
    pub fn new(fleet: Arc<Fleet>, theme: Theme) -> Self {
        App {
            fleet,
            theme,
            title: "rollguard".into(),
            banner: None,
            now_ms: 0,
            view: View::Fleet,
            popup: None,
            show_log: false,
            fleet_selected: 0,
            app_selected: 0,
            fleet_offset: Cell::new(0),
            app_offset: Cell::new(0),
            page: Cell::new(10),
            log_state: TuiWidgetState::new(),
        }
    }

    /// The fleet shown.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// The open popup.
    pub fn popup(&self) -> Option<Popup> {
        self.popup
    }

    /// Whether the log pane is shown.
    pub fn log_visible(&self) -> bool {
        self.show_log
    }

    /// Selected row of the current view.
    pub fn selected(&self) -> usize {
        match self.view {
            View::Fleet => self.fleet_selected,
            View::App(_) => self.app_selected,
        }
    }

    /// Selected app in the fleet view (also the app an app view shows).
    pub fn selected_app(&self) -> usize {
        self.fleet_selected
    }

    /// The scopes whose keys work in the current view.
    pub fn scopes(&self) -> &'static [Scope] {
        match self.view {
            View::Fleet => &[Scope::Global, Scope::Tables, Scope::Fleet],
            View::App(_) => &[Scope::Global, Scope::Tables, Scope::App],
        }
    }

    fn rows(&self) -> usize {
        match self.view {
            View::Fleet => self.fleet.apps.len(),
            View::App(a) => self
                .fleet
                .apps
                .get(a)
                .map_or(0, |a| a.instances.len() * a.probes.len()),
        }
    }

    /// Handles a key: looks it up in the keymap, applies it, and returns
    /// what was done ([`Action::None`] if nothing). The caller stops on
    /// [`Action::Quit`]. Key releases are ignored.
    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        match keymap::lookup(&key) {
            Some(b) => self.apply(b.action),
            None => Action::None,
        }
    }

    /// Applies an action; returns it, or [`Action::None`] if it does not
    /// apply here (e.g. `Open` while a popup is open).
    pub fn apply(&mut self, action: Action) -> Action {
        if self.popup.is_some() {
            return match action {
                Action::Back | Action::Help => {
                    self.popup = None;
                    action
                }
                Action::Quit => Action::Quit,
                Action::ToggleLog => {
                    self.show_log = !self.show_log;
                    action
                }
                _ => Action::None,
            };
        }
        let rows = self.rows();
        let page = self.page.get().max(1);
        let sel = match self.view {
            View::Fleet => &mut self.fleet_selected,
            View::App(_) => &mut self.app_selected,
        };
        let last = rows.saturating_sub(1);
        match action {
            Action::Quit | Action::None => {}
            Action::Up => *sel = sel.saturating_sub(1),
            Action::Down => *sel = (*sel + 1).min(last),
            Action::Top => *sel = 0,
            Action::Bottom => *sel = last,
            Action::PageUp => *sel = sel.saturating_sub(page),
            Action::PageDown => *sel = (*sel + page).min(last),
            Action::Open => match self.view {
                View::Fleet if rows > 0 => {
                    self.view = View::App(self.fleet_selected);
                    self.app_selected = 0;
                    self.app_offset.set(0);
                }
                _ => return Action::None,
            },
            Action::Back => match self.view {
                View::App(_) => self.view = View::Fleet,
                View::Fleet => return Action::None,
            },
            Action::ToggleLog => self.show_log = !self.show_log,
            Action::Help => self.popup = Some(Popup::Help),
        }
        action
    }
}
