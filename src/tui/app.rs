//! The console's view state and its event pump. [`App`] holds the
//! components as named fields (each owns its state and draws itself), the
//! [`Mode`] that says what is open over the view, and the notice the
//! footer shows. A key goes: [`App::handle_key`] → the keymap binding of
//! the current view and mode → [`App::apply`] (one method per mode) → a
//! component's state, a new mode, or a confirmed action left for the run
//! loop to perform. Keys no binding takes are typed into the mode's line.
//! The data shown lives in [`FleetState`].

use std::sync::Arc;

use crossterm::event::{KeyEvent, KeyEventKind};
use ratatui::layout::Rect;

use crate::config::Fleet;

use super::action::{ConfirmAction, ConfirmedAction};
use super::command::{self, Command};
use super::components::{AppView, Confirm, FleetView, Help, LogPane, Press, TextInput};
use super::control::Verb;
use super::keymap::{self, Action};
use super::mode::{COMMAND_MAX, FILTER_MAX, Mode};
use super::mouse;
use super::queue::Arrival;
use super::state::FleetState;
use super::theme::Theme;

/// How long the footer shows a notice.
pub const NOTICE_MS: i64 = 8_000;

/// Which table fills the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One row per app.
    Fleet,
    /// One row per (instance, probe) of the app at this fleet index.
    App(usize),
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

/// View state of the console. See the module docs.
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
    /// Only watch: no key or `:` command acts (`--read-only`,
    /// `[console] read_only`).
    pub read_only: bool,
    view: View,
    mode: Mode,
    notice: Option<Notice>,
    outbox: Option<ConfirmedAction>,
    /// The fleet table.
    pub(crate) fleet_view: FleetView,
    /// The table of one app.
    pub(crate) app_view: AppView,
    /// The log pane.
    pub(crate) log_pane: LogPane,
    /// The `?` popup.
    pub(crate) help: Help,
}

impl App {
    /// The fleet view, nothing selected but the first app.
    pub fn new(fleet: Arc<Fleet>, theme: Theme) -> Self {
        App {
            fleet_view: FleetView::new(fleet.clone()),
            fleet,
            theme,
            title: "rollguard".into(),
            banner: None,
            now_ms: 0,
            read_only: false,
            view: View::Fleet,
            mode: Mode::Normal,
            notice: None,
            outbox: None,
            app_view: AppView::default(),
            log_pane: LogPane::default(),
            help: Help,
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

    /// What is open over the view.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The open question, in [`Mode::Confirm`].
    pub fn confirm(&self) -> Option<&Confirm> {
        match &self.mode {
            Mode::Confirm(c) => Some(c),
            _ => None,
        }
    }

    /// The fleet table (its filter and the rows it shows).
    pub fn fleet_view(&self) -> &FleetView {
        &self.fleet_view
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

    /// The action the operator confirmed, for the run loop to perform
    /// (through [`Service::perform`](super::Service::perform)).
    pub fn take_confirmed(&mut self) -> Option<ConfirmedAction> {
        self.outbox.take()
    }

    /// Takes in what a background task reports.
    pub fn arrive(&mut self, arrival: Arrival) {
        match arrival {
            Arrival::Sent {
                request,
                result: Ok(()),
            } => self.notify(request.sent_text(), false),
            Arrival::Sent {
                request,
                result: Err(e),
            } => self.notify(
                format!(
                    "could not send {} to {}: {e}",
                    request.verb.as_str(),
                    request.app
                ),
                true,
            ),
        }
    }

    /// The fleet index of the app the rollout keys act on: the one shown,
    /// or the one on the selected row; none when the filter shows none.
    pub fn current_app(&self) -> Option<usize> {
        match self.view {
            View::App(a) => Some(a),
            View::Fleet => self.fleet_view.selected_app(),
        }
    }

    /// Whether the log pane is shown.
    pub fn log_visible(&self) -> bool {
        self.log_pane.visible()
    }

    /// Selected row of the current view (a position among the rows shown).
    pub fn selected(&self) -> usize {
        match self.view {
            View::Fleet => self.fleet_view.selected(),
            View::App(_) => self.app_view.selected(),
        }
    }

    /// The fleet index of the app on the fleet view's selected row.
    pub fn selected_app(&self) -> Option<usize> {
        self.fleet_view.selected_app()
    }

    /// Whether `action` would do something now, for the footer: rollout
    /// verbs only where they apply to the current app's rollout (never on a
    /// read-only console), Back in the fleet view only to clear a filter,
    /// the question's other line only on a protected app.
    pub fn offers(&self, action: Action, state: &FleetState) -> bool {
        if self.read_only && action.acts() {
            return false;
        }
        match (action, &self.mode, self.view) {
            (Action::Rollout(verb), Mode::Normal, _) => {
                let index = self.current_app();
                let name = index.and_then(|i| self.fleet.apps.get(i)).map(|a| &a.name);
                let active = index
                    .and_then(|i| state.rollouts(i))
                    .and_then(|r| r.active.as_ref());
                name.is_some_and(|n| verb.check(n, active).is_ok())
            }
            (Action::Rollout(_), _, _) => false,
            (Action::Back, Mode::Normal, View::Fleet) => !self.fleet_view.filter().is_empty(),
            (Action::SwitchLine, Mode::Confirm(c), _) => c.name.is_some(),
            _ => true,
        }
    }

    /// Handles a key: looks it up in the keymap for the current view and
    /// mode and applies it; returns what was done ([`Action::None`] if
    /// nothing). A key no binding takes is typed into the line of the mode
    /// (the question's reason or app name, the filter, the command line).
    /// The caller stops on [`Action::Quit`], and after [`Action::Send`]
    /// performs [`App::take_confirmed`]. Key releases are ignored.
    pub fn handle_key(&mut self, key: KeyEvent, state: &FleetState) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if let Some(b) = keymap::lookup(&key, self.view, &self.mode) {
            return self.apply(b.action, state);
        }
        if let Mode::Confirm(c) = &mut self.mode {
            c.edit(&key);
            return Action::None;
        }
        let Some(input) = self.mode.input_mut() else {
            return Action::None;
        };
        if input.edit(&key)
            && let Mode::Filter(f) = &self.mode
        {
            self.fleet_view.set_filter(&f.text());
        }
        Action::None
    }

    /// Applies an action in the current mode; returns it, or
    /// [`Action::None`] if it does not apply there.
    pub fn apply(&mut self, action: Action, state: &FleetState) -> Action {
        if action == Action::Quit {
            return Action::Quit;
        }
        match self.mode {
            Mode::Normal => self.apply_normal(action, state),
            Mode::Help => self.apply_help(action),
            Mode::Confirm(_) => self.apply_confirm(action),
            Mode::Filter(_) => self.apply_filter(action),
            Mode::Command(_) => self.apply_command(action, state),
        }
    }

    fn apply_normal(&mut self, action: Action, state: &FleetState) -> Action {
        match action {
            Action::Rollout(verb) => {
                return match self.current_app() {
                    Some(index) => self.ask(verb, index, state),
                    None => Action::None,
                };
            }
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => {
                match self.view {
                    View::Fleet => self.fleet_view.apply(action),
                    View::App(i) => self.app_view.apply(action, state, i),
                };
            }
            Action::Open => match (self.view, self.fleet_view.selected_app()) {
                (View::Fleet, Some(index)) => {
                    self.view = View::App(index);
                    self.app_view.reset();
                }
                _ => return Action::None,
            },
            Action::Back => match self.view {
                View::App(_) => self.view = View::Fleet,
                View::Fleet if !self.fleet_view.filter().is_empty() => {
                    self.fleet_view.set_filter("");
                }
                View::Fleet => return Action::None,
            },
            Action::ToggleLog => self.log_pane.toggle(),
            Action::Help => self.mode = Mode::Help,
            Action::Filter => match self.view {
                View::Fleet => {
                    let typed = TextInput::with_text(self.fleet_view.filter(), FILTER_MAX);
                    self.mode = Mode::Filter(typed);
                }
                View::App(_) => return Action::None,
            },
            Action::Command => self.mode = Mode::Command(TextInput::new(COMMAND_MAX)),
            Action::Quit
            | Action::Accept
            | Action::Press
            | Action::SwitchButton
            | Action::SwitchLine
            | Action::Send
            | Action::None => return Action::None,
        }
        action
    }

    fn apply_help(&mut self, action: Action) -> Action {
        match action {
            Action::Back | Action::Help => self.mode = Mode::Normal,
            Action::ToggleLog => self.log_pane.toggle(),
            _ => return Action::None,
        }
        action
    }

    /// In the question: Esc and Cancel close it; Enter on the action's
    /// button confirms it unless the question refuses (a reason or the
    /// name missing), which it says.
    fn apply_confirm(&mut self, action: Action) -> Action {
        let Mode::Confirm(c) = &mut self.mode else {
            return Action::None;
        };
        match action {
            Action::Back => {}
            Action::SwitchButton => {
                c.switch_button();
                return action;
            }
            Action::SwitchLine if c.switch_line() => return action,
            Action::Press => match c.press() {
                Press::Cancel => {}
                Press::Refused => return Action::None,
                Press::Confirmed(done) => {
                    self.outbox = Some(done);
                    self.mode = Mode::Normal;
                    return Action::Send;
                }
            },
            _ => return Action::None,
        }
        self.mode = Mode::Normal;
        Action::Back
    }

    fn apply_filter(&mut self, action: Action) -> Action {
        match action {
            Action::Back => self.fleet_view.set_filter(""),
            Action::Accept => {}
            _ => return Action::None,
        }
        self.mode = Mode::Normal;
        action
    }

    fn apply_command(&mut self, action: Action, state: &FleetState) -> Action {
        match (action, std::mem::take(&mut self.mode)) {
            (Action::Back, _) => action,
            (Action::Accept, Mode::Command(line)) => self.run_command(&line.text(), state),
            (_, mode) => {
                self.mode = mode;
                Action::None
            }
        }
    }

    /// Carries out a `:` line the way its key would be.
    fn run_command(&mut self, line: &str, state: &FleetState) -> Action {
        match command::parse(line) {
            Ok(Command::Quit) => Action::Quit,
            Ok(Command::Rollout { verb, app }) => {
                match self.fleet.apps.iter().position(|a| a.name == app) {
                    Some(index) => self.ask(verb, index, state),
                    None => {
                        self.notify(format!("no app is named {app:?}"), true);
                        Action::None
                    }
                }
            }
            Err(why) => {
                self.notify(why, true);
                Action::None
            }
        }
    }

    /// Opens the question for `verb` on the rollout of the app at fleet
    /// index `index` (asking a protected app's name too), or says in the
    /// footer why it does not apply. Every action of a key or a `:` line
    /// comes here, so this is where a read-only console refuses them.
    fn ask(&mut self, verb: Verb, index: usize, state: &FleetState) -> Action {
        if self.read_only {
            self.notify(
                format!("read-only console: {} is not available", verb.as_str()),
                true,
            );
            return Action::None;
        }
        let Some((name, protected)) = self
            .fleet
            .apps
            .get(index)
            .map(|a| (a.name.clone(), a.protected))
        else {
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
        let action = ConfirmAction::Rollout {
            app: name,
            deployment: r.id,
            verb,
        };
        let confirm = Confirm::new(action, question, then, protected);
        self.mode = Mode::Confirm(Box::new(confirm));
        Action::Rollout(verb)
    }

    /// A click (with `--mouse`) at (`column`, `row`) of a screen of `area`:
    /// selects the table row under it, as [`Action::Up`] and
    /// [`Action::Down`] would move there; returns whether it did. Only
    /// with nothing open over the view; a click elsewhere does nothing.
    pub fn click(&mut self, column: u16, row: u16, area: Rect, state: &FleetState) -> bool {
        if !matches!(self.mode, Mode::Normal) {
            return false;
        }
        let around = mouse::Around::of(self, state);
        let Some(shown) = mouse::shown_row(area, around, column, row) else {
            return false;
        };
        match self.view {
            View::Fleet => self.fleet_view.select_shown(shown),
            View::App(i) => self.app_view.select_shown(shown, state, i),
        }
    }
}
