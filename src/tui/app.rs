//! The console's view state: which view is shown, what is selected, which
//! popup is open. Keys change it through [`App::handle_key`]; the draw code
//! only reads it. The data shown lives in [`FleetState`](super::FleetState).

use std::cell::Cell;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_logger::TuiWidgetState;

use crate::config::Fleet;

use super::control::{Request, Verb};
use super::keymap::{self, Action, Scope};
use super::state::FleetState;
use super::theme::Theme;

/// How long the footer shows a notice.
pub const NOTICE_MS: i64 = 8_000;
/// The longest reason the question takes, in characters.
pub const REASON_MAX: usize = 200;

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
    /// The question before a rollout command is sent ([`App::confirm`]).
    Confirm,
}

/// The question the console asks before it sends a rollout command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// What will be sent (its reason is filled in from [`Confirm::reason`]).
    pub request: Request,
    /// The question, e.g. "Abort deployment 7 of web (v2 → v3)?".
    pub question: String,
    /// What happens then.
    pub then: String,
    /// The reason typed so far.
    pub reason: String,
}

/// A line the footer shows for [`NOTICE_MS`]: what a command did, or why
/// it could not be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The words.
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
    /// When it was made, ms since the epoch.
    pub at_ms: i64,
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
    confirm: Option<Confirm>,
    notice: Option<Notice>,
    outbox: Option<Request>,
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
            confirm: None,
            notice: None,
            outbox: None,
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

    /// The open question, when [`Popup::Confirm`] is shown.
    pub fn confirm(&self) -> Option<&Confirm> {
        self.confirm.as_ref()
    }

    /// The notice to show at [`App::now_ms`], if one is still fresh.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice
            .as_ref()
            .filter(|n| self.now_ms - n.at_ms < NOTICE_MS)
    }

    /// Shows `text` in the footer for a while.
    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
            at_ms: self.now_ms,
        });
    }

    /// The command the operator confirmed, for the run loop to send.
    pub fn take_request(&mut self) -> Option<Request> {
        self.outbox.take()
    }

    /// The app the rollout keys act on: the one shown, or the one selected.
    pub fn current_app(&self) -> usize {
        match self.view {
            View::App(a) => a,
            View::Fleet => self.fleet_selected,
        }
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
            View::Fleet => &[Scope::Global, Scope::Tables, Scope::Fleet, Scope::Rollout],
            View::App(_) => &[Scope::Global, Scope::Tables, Scope::App, Scope::Rollout],
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
    /// [`Action::Quit`], and after [`Action::Send`] sends
    /// [`App::take_request`]. `state` tells whether a rollout key applies.
    /// While a question is open, keys type its reason. Key releases are
    /// ignored.
    pub fn handle_key(&mut self, key: KeyEvent, state: &FleetState) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if self.popup == Some(Popup::Confirm) {
            return self.answer(key);
        }
        match keymap::lookup(&key) {
            Some(b) => self.apply(b.action, state),
            None => Action::None,
        }
    }

    /// A key while the question is open: Enter sends, Esc cancels, Ctrl-C
    /// quits, the rest edits the reason.
    fn answer(&mut self, key: KeyEvent) -> Action {
        let held = key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let Some(c) = self.confirm.as_mut() else {
            self.popup = None;
            return Action::None;
        };
        match key.code {
            KeyCode::Char('c') if held == KeyModifiers::CONTROL => Action::Quit,
            KeyCode::Esc => {
                self.popup = None;
                self.confirm = None;
                Action::Back
            }
            KeyCode::Enter => {
                let mut request = c.request.clone();
                let reason = c.reason.trim();
                request.reason = (!reason.is_empty()).then(|| reason.to_string());
                self.outbox = Some(request);
                self.popup = None;
                self.confirm = None;
                Action::Send
            }
            KeyCode::Backspace => {
                c.reason.pop();
                Action::None
            }
            KeyCode::Char(ch)
                if held.is_empty() && !ch.is_control() && c.reason.chars().count() < REASON_MAX =>
            {
                c.reason.push(ch);
                Action::None
            }
            _ => Action::None,
        }
    }

    /// Opens the question for `verb` on the current app's rollout, or says
    /// in the footer why it does not apply.
    fn ask(&mut self, verb: Verb, state: &FleetState) -> Action {
        let index = self.current_app();
        let Some(name) = self.fleet.apps.get(index).map(|a| a.name.clone()) else {
            return Action::None;
        };
        let active = state.rollouts(index).and_then(|r| r.active.as_ref());
        let r = match (verb.check(&name, active), active) {
            (Ok(()), Some(r)) => r,
            (Err(why), _) => {
                self.notify(why, true);
                return Action::None;
            }
            (Ok(()), None) => return Action::None,
        };
        let (question, then) = verb.question(&name, r);
        self.confirm = Some(Confirm {
            request: Request {
                app: name,
                deployment: r.id,
                verb,
                reason: None,
            },
            question,
            then,
            reason: String::new(),
        });
        self.popup = Some(Popup::Confirm);
        Action::Rollout(verb)
    }

    /// Applies an action; returns it, or [`Action::None`] if it does not
    /// apply here (e.g. `Open` while a popup is open).
    pub fn apply(&mut self, action: Action, state: &FleetState) -> Action {
        if self.popup.is_some() {
            return match action {
                Action::Back | Action::Help => {
                    self.popup = None;
                    self.confirm = None;
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
            Action::Send => return Action::None,
            Action::Rollout(verb) => return self.ask(verb, state),
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
