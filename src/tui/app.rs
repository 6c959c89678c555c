//! The console's view state and its event pump. [`App`] holds the
//! components as named fields (each owns its state and draws itself), the
//! [`Mode`] that says what is open over the view, and the notice the
//! footer shows. A key goes: [`App::handle_key`] → the keymap binding of
//! the current view and mode → [`App::apply`] (one method per mode) → a
//! component's state, a new mode, or a confirmed action left for the run
//! loop to perform. Keys no binding takes are typed into the mode's line.
//! The data shown lives in [`FleetState`].

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;

use crate::config::Fleet;

use super::action::{ConfirmAction, ConfirmedAction};
use super::command::{self, Command, Words};
use super::components::{
    AppView, Confirm, DeploymentView, EventsView, FleetView, Help, HistoryView, LogPane, LogsView,
    Press, TextInput,
};
use super::control::{self, Verb};
use super::keymap::Keymap;
use super::load::{Load, Loaded, ReportOf};
use super::mode::{COMMAND_MAX, FILTER_MAX, Mode, Pending};
use super::mouse;
use super::prepare::Intent;
use super::queue::Arrival;
use super::rollout_text::rollout_line;
use super::theme::Theme;
use crate::keys::Action;
use crate::rollout::watch::ActiveRollout;
use crate::state::FleetState;

/// How long the footer shows a notice.
pub const NOTICE_MS: i64 = 5_000;

pub use super::view::{Shown, View};

mod command_line;
mod keys;

/// How many `:` lines the command line remembers.
const COMMAND_HISTORY: usize = 50;

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
    /// The views Esc goes back to from a deployment's or the Logs view,
    /// the last one first.
    back_to: Vec<View>,
    mode: Mode,
    notice: Option<Notice>,
    outbox: Option<ConfirmedAction>,
    /// A deploy or rollback to check, with its token, for the run loop.
    checks: Option<(u64, Intent)>,
    /// The token of the last check asked.
    last_token: u64,
    /// A theme asked for by `:theme` that is not built in, for the run
    /// loop to read.
    theme_wanted: Option<String>,
    /// The releases the history knows, by app, for completion; and
    /// whether to read them again (each time the command line opens).
    releases: Vec<(String, Vec<String>)>,
    releases_wanted: bool,
    /// What the last Tab could complete to, while the line is unchanged.
    completions: Vec<String>,
    /// Why the last Tab completed nothing, when there is something to say
    /// (shown while the line is unchanged).
    completion_note: Option<String>,
    /// The releases whose artifacts are on each app's hosts, as last
    /// listed, by app; when each app was last asked (ms); the app to ask
    /// for now, for the run loop.
    available: Vec<(String, Vec<String>)>,
    available_asked: Vec<(usize, i64)>,
    available_wanted: Option<usize>,
    /// The `:` lines run, oldest first, and where ↑ ↓ are among them.
    command_history: Vec<String>,
    command_at: usize,
    /// The fleet table.
    pub(crate) fleet_view: FleetView,
    /// The table of one app.
    pub(crate) app_view: AppView,
    /// The log pane.
    pub(crate) log_pane: LogPane,
    /// The `?` popup.
    pub(crate) help: Help,
    /// The History view.
    pub(crate) history_view: HistoryView,
    /// One deployment (Rollout view, or opened from History).
    pub(crate) deployment_view: DeploymentView,
    /// The Events view.
    pub(crate) events_view: EventsView,
    /// The Logs view.
    pub(crate) logs_view: LogsView,
    /// The keys: the built-in table with the fleet's `[console.keys]`
    /// (the help popup lists the same).
    pub(crate) keymap: Arc<Keymap>,
}

impl App {
    /// The fleet view, nothing selected but the first app; the keys are
    /// the fleet's (its `[console.keys]` were checked when it loaded).
    pub fn new(fleet: Arc<Fleet>, theme: Theme) -> Self {
        let keymap = Arc::new(Keymap::new(&fleet.console.keys).unwrap_or_default());
        App {
            fleet_view: FleetView::new(fleet.clone()),
            fleet,
            theme,
            title: "rollguard".into(),
            banner: None,
            now_ms: 0,
            read_only: false,
            view: View::Fleet,
            back_to: Vec::new(),
            mode: Mode::Normal,
            notice: None,
            outbox: None,
            checks: None,
            last_token: 0,
            theme_wanted: None,
            releases: Vec::new(),
            releases_wanted: false,
            completions: Vec::new(),
            completion_note: None,
            available: Vec::new(),
            available_asked: Vec::new(),
            available_wanted: None,
            command_history: Vec::new(),
            command_at: 0,
            app_view: AppView::default(),
            log_pane: LogPane::default(),
            help: Help::new(keymap.clone()),
            history_view: HistoryView::default(),
            deployment_view: DeploymentView::default(),
            events_view: EventsView::default(),
            logs_view: LogsView::default(),
            keymap,
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
    /// Text from hosts and the history is made printable here.
    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        let text: String = text.into();
        self.notice = Some(Notice {
            text: crate::printable::printable(&text).into_owned(),
            error,
            at_ms: self.now_ms,
        });
    }

    /// The action the operator confirmed, for the run loop to perform
    /// (through [`Service::perform`](super::Service::perform)).
    pub fn take_confirmed(&mut self) -> Option<ConfirmedAction> {
        self.outbox.take()
    }

    /// What the last Tab on the command line could complete to (shown
    /// while the line is unchanged).
    pub fn completions(&self) -> &[String] {
        &self.completions
    }

    /// Why the last Tab completed nothing, when it says something.
    pub fn completion_note(&self) -> Option<&str> {
        self.completion_note.as_deref()
    }

    /// The deploy or rollback to check, for the run loop (through
    /// [`Service::prepare`](super::Service::prepare)), with the token its
    /// answer must carry.
    pub fn take_check(&mut self) -> Option<(u64, Intent)> {
        self.checks.take()
    }

    /// A theme `:theme` asked for that is not built in, for the run loop
    /// to read from the theme folders.
    pub fn take_theme_wanted(&mut self) -> Option<String> {
        self.theme_wanted.take()
    }

    /// The reading of every app's releases (for completion) the command
    /// line asks for when it opens, for the run loop.
    pub fn take_releases_wanted(&mut self) -> Option<Load> {
        std::mem::take(&mut self.releases_wanted)
            .then(|| Load::Releases(self.fleet.apps.iter().map(|a| a.name.clone()).collect()))
    }

    /// The app whose hosts to list releases on (for completion), for the
    /// run loop (through [`Service::available`](super::Service::available)).
    pub fn take_available_wanted(&mut self) -> Option<usize> {
        self.available_wanted.take()
    }

    /// Asks for the releases on the hosts of the app at fleet index
    /// `index`, unless they were asked for in the last 30 seconds.
    fn want_available(&mut self, index: usize) {
        const AGAIN_MS: i64 = 30_000;
        let now = self.now_ms;
        if self
            .available_asked
            .iter()
            .any(|(i, at)| *i == index && now - at < AGAIN_MS)
        {
            return;
        }
        self.available_asked.retain(|(i, _)| *i != index);
        self.available_asked.push((index, now));
        self.available_wanted = Some(index);
    }

    /// What the view shown wants read from the history, for the run loop
    /// (through [`Service::load`](super::Service::load)).
    pub fn wanted(&self) -> Option<Load> {
        match self.view {
            View::Fleet => None,
            View::App(i) => self
                .fleet
                .apps
                .get(i)
                .map(|a| Load::AppRecords(a.name.clone())),
            View::History if self.history_view.availability_due(self.now_ms) => {
                Some(Load::Availability {
                    apps: (self.fleet.apps.iter())
                        .map(|a| (a.name.clone(), a.uncounted_probes()))
                        .collect(),
                    now_ms: self.now_ms,
                })
            }
            View::History => Some(Load::History),
            View::Deployment(_) => self.deployment_view.of().cloned().map(Load::Report),
            View::Events => Some(Load::Events {
                after: self.events_view.last_id(),
            }),
            View::Logs => self.logs_view.deployment().map(Load::WorkerLog),
        }
    }

    /// What History shows above its table: its error line, and its chart's
    /// apps.
    pub fn history_above(&self) -> (bool, usize) {
        self.history_view.above()
    }

    /// Takes in what a background task reports.
    pub fn arrive(&mut self, arrival: Arrival) {
        match arrival {
            Arrival::Prepared { token, result } => {
                if !matches!(&self.mode, Mode::Pending(p) if p.token == token) {
                    return; // no longer waited for
                }
                self.mode = Mode::Normal;
                match result {
                    Ok(q) => {
                        let q = *q;
                        if self.read_only {
                            return;
                        }
                        let confirm = Confirm::new(q.action, q.question, q.then, q.protected)
                            .with_details(q.details);
                        self.mode = Mode::Confirm(Box::new(confirm));
                    }
                    Err(why) => self.notify(why, true),
                }
            }
            Arrival::Theme {
                name,
                result: Ok(theme),
            } => {
                self.theme = *theme;
                self.notify(format!("theme {name}"), false);
            }
            Arrival::Theme {
                result: Err(why), ..
            } => self.notify(why, true),
            Arrival::Done(Ok(said)) => self.notify(said, false),
            Arrival::Done(Err(why)) => self.notify(why, true),
            Arrival::Loaded(Ok(loaded)) => match loaded {
                Loaded::History(rows) => self.history_view.set_rows(rows),
                Loaded::Availability { at_ms, apps } => {
                    self.history_view.set_availability(at_ms, apps)
                }
                Loaded::Report {
                    of,
                    report,
                    incident,
                } => self.deployment_view.set(of, report, incident),
                Loaded::Events(events) => self.events_view.extend(events),
                Loaded::AppRecords(records) => self.app_view.set_records(records),
                Loaded::WorkerLog { id, lines } => self.logs_view.set_lines(id, lines),
                Loaded::Releases(releases) => self.releases = releases,
                Loaded::Available { app, versions } => {
                    self.available.retain(|(a, _)| *a != app);
                    self.available.push((app, versions));
                }
            },
            Arrival::Loaded(Err(why)) => match self.view {
                View::History => self.history_view.set_error(why),
                View::Deployment(_) => self.deployment_view.set_error(why),
                View::Events => self.events_view.set_error(why),
                View::Fleet | View::App(_) | View::Logs => self.notify(why, true),
            },
            Arrival::Sent {
                request,
                result: Ok(()),
            } => self.notify(request.sent_text(), false),
            // The service's refusal names the deployment and the verb.
            Arrival::Sent { result: Err(e), .. } => self.notify(e, true),
        }
    }

    /// The fleet index of the app the rollout keys act on: the one shown,
    /// the one on the selected row, or the deployment's; none when the
    /// filter shows none.
    pub fn current_app(&self) -> Option<usize> {
        let by_name = |name: &str| self.fleet.apps.iter().position(|a| a.name == name);
        match self.view {
            View::App(a) => Some(a),
            View::Fleet => self.fleet_view.selected_app(),
            View::Deployment(Shown::Newest(a)) => Some(a),
            View::Deployment(Shown::Id(_)) => self
                .deployment_view
                .report()
                .and_then(|r| by_name(&r.deployment.app)),
            View::History => self
                .history_view
                .selected_deployment()
                .and_then(|d| by_name(&d.app)),
            View::Events | View::Logs => None,
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
            View::History => self.history_view.selected(),
            View::Deployment(_) | View::Events | View::Logs => 0,
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
            (Action::Rollout(verb), Mode::Normal, _) => self
                .current_app()
                .is_some_and(|i| self.rollout_target(verb, i, state).is_ok()),
            (Action::Rollout(_), _, _) => false,
            (Action::Deploy | Action::Rollback, Mode::Normal, _) => self.current_app().is_some(),
            (Action::ShowRollout, Mode::Normal, _) => self
                .current_app()
                .and_then(|i| state.rollouts(i))
                .is_some_and(|r| r.active.is_some() || r.last.is_some()),
            (Action::Back, Mode::Normal, View::Fleet) => !self.fleet_view.filter().is_empty(),
            (Action::SwitchLine, Mode::Confirm(c), _) => c.name.is_some(),
            _ => true,
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
        let r = match self.rollout_target(verb, index, state) {
            Ok(r) => r,
            Err(why) => {
                self.notify(why, true);
                return Action::None;
            }
        };
        let (question, then) = verb.question(&name, r);
        let action = ConfirmAction::Rollout {
            app: name,
            deployment: r.id,
            verb,
        };
        // A question about an armed rollback counts down to its firing.
        let countdown = match verb {
            Verb::Hold | Verb::Fire | Verb::Abort => r.fires_at_ms,
            _ => None,
        };
        let confirm = Confirm::new(action, question, then, protected).with_countdown(countdown);
        self.mode = Mode::Confirm(Box::new(confirm));
        Action::Rollout(verb)
    }

    /// Checks the open question against the rollouts as last read
    /// (`state`): one about a rollout that has since ended, or moved to
    /// where its verb means nothing, says so and sends nothing
    /// ([`control::still_applies`]). The run loop calls it before each
    /// frame; keys call it first too.
    pub fn recheck(&mut self, state: &FleetState) {
        let Mode::Confirm(c) = &mut self.mode else {
            return;
        };
        let ConfirmAction::Rollout {
            app,
            deployment,
            verb,
        } = &c.action
        else {
            return;
        };
        let index = self.fleet.apps.iter().position(|a| a.name == *app);
        let r = index.and_then(|i| state.rollouts(i));
        let moot = control::still_applies(app, *deployment, *verb, r).err();
        c.set_moot(moot);
    }

    /// The rollout `verb` would go to, for the app at fleet index
    /// `index`: its running rollout as last read, if `verb` applies to it
    /// (else why not, in words). In the Deployment view, only the
    /// deployment shown: while another one runs, or the one shown has
    /// ended or is still being read, there is none.
    fn rollout_target<'s>(
        &self,
        verb: Verb,
        index: usize,
        state: &'s FleetState,
    ) -> Result<&'s ActiveRollout, String> {
        let app = self.fleet.apps.get(index).map_or("", |a| a.name.as_str());
        let active = state.rollouts(index).and_then(|r| r.active.as_ref());
        if let View::Deployment(_) = self.view {
            let Some(shown) = self.deployment_view.report() else {
                return Err(format!("the deployment of {app} is still being read"));
            };
            let shown = &shown.deployment;
            if active.is_none_or(|a| a.id != shown.id) {
                return Err(control::not_running(app, shown.id, shown.outcome));
            }
        }
        verb.check(app, active)?;
        active.ok_or_else(|| format!("no rollout of {app} is running"))
    }

    /// What is on the screen besides the table over `state`, as far as
    /// where the table's rows are goes (for a click).
    pub fn around(&self, state: &FleetState) -> mouse::Around {
        let line_above = match self.view {
            View::Fleet | View::History | View::Deployment(_) | View::Events | View::Logs => false,
            View::App(i) => match (state.fleet().apps.get(i), state.rollouts(i)) {
                (Some(a), Some(r)) => rollout_line(&a.name, r, self.now_ms, &self.theme).is_some(),
                _ => false,
            },
        };
        mouse::Around {
            banner: self.banner.is_some(),
            log: self.log_visible(),
            line_above,
            history: (self.view == View::History).then(|| self.history_above()),
        }
    }

    /// A click (with `--mouse`) at (`column`, `row`) of a screen of `area`:
    /// selects the table row under it, as [`Action::Up`] and
    /// [`Action::Down`] would move there; returns whether it did. Only
    /// with nothing open over the view; a click elsewhere does nothing.
    pub fn click(&mut self, column: u16, row: u16, area: Rect, state: &FleetState) -> bool {
        if !matches!(self.mode, Mode::Normal) {
            return false;
        }
        let around = self.around(state);
        let Some(shown) = mouse::shown_row(area, around, column, row) else {
            return false;
        };
        match self.view {
            View::Fleet => self.fleet_view.select_shown(shown),
            View::App(i) => self.app_view.select_shown(shown, state, i),
            View::History => self.history_view.select_shown(shown),
            // Not tables: the wheel scrolls them, a click does nothing.
            View::Deployment(_) | View::Events | View::Logs => false,
        }
    }
}
