//! A key of the [`App`], by mode: looked up in the keymap, then applied
//! in the view (moving, opening, switching views, asking for a deploy or
//! a rollback), in the help, the question, or the filter; typed into the
//! mode's line when no binding takes it.

use super::*;

impl App {
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
        self.recheck(state);
        if let Some(b) = self.keymap.lookup(&key, self.view, self.mode.modes()) {
            return self.apply(b.action, state);
        }
        // Esc and a key typed quickly after it arrive as Alt + the key
        // (terminals and tmux send Esc as the Alt prefix): unbound, it
        // is taken as the two keys it was.
        if key.modifiers.contains(KeyModifiers::ALT) && matches!(key.code, KeyCode::Char(_)) {
            let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
            self.handle_key(esc, state);
            let plain = KeyEvent::new(key.code, key.modifiers - KeyModifiers::ALT);
            return self.handle_key(plain, state);
        }
        if let Mode::Confirm(c) = &mut self.mode {
            c.edit(&key);
            return Action::None;
        }
        let Some(input) = self.mode.input_mut() else {
            return Action::None;
        };
        self.completions.clear();
        self.completion_note = None;
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
            Mode::Pending(_) => match action {
                Action::Back => {
                    self.mode = Mode::Normal;
                    self.notify("stopped waiting: nothing was started", false);
                    action
                }
                _ => Action::None,
            },
        }
    }

    /// A key in the view, with nothing open over it.
    fn apply_normal(&mut self, action: Action, state: &FleetState) -> Action {
        match action {
            Action::Rollout(verb) => match self.current_app() {
                Some(index) => self.ask(verb, index, state),
                None => Action::None,
            },
            Action::Deploy => self.deploy_line(),
            Action::Rollback => self.rollback(),
            Action::ShowHistory => {
                self.show(View::History);
                action
            }
            Action::NextView | Action::PrevView => self.next_view(action, state),
            Action::ShowLogs => {
                self.show_logs(state);
                action
            }
            Action::MoreDetail | Action::LessDetail | Action::SwitchPane => {
                if !self.logs_view.apply(action) {
                    return Action::None;
                }
                action
            }
            Action::ShowEvents => {
                self.show(View::Events);
                action
            }
            Action::ShowRollout => match self.current_app() {
                Some(index) => {
                    self.open_deployment(Shown::Newest(index));
                    action
                }
                None => Action::None,
            },
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => {
                self.move_selection(action, state);
                action
            }
            Action::Open => self.open(),
            Action::Back => self.back(),
            Action::ToggleLog => {
                self.log_pane.toggle();
                action
            }
            Action::Help => {
                self.mode = Mode::Help;
                action
            }
            Action::Filter => match self.view {
                View::Fleet => {
                    let typed = TextInput::with_text(self.fleet_view.filter(), FILTER_MAX);
                    self.mode = Mode::Filter(typed);
                    action
                }
                _ => Action::None,
            },
            Action::Command => {
                self.command_at = self.command_history.len();
                self.releases_wanted = true;
                self.mode = Mode::Command(TextInput::new(COMMAND_MAX));
                action
            }
            Action::Quit
            | Action::Accept
            | Action::Press
            | Action::SwitchButton
            | Action::SwitchLine
            | Action::Complete
            | Action::Older
            | Action::Newer
            | Action::Send
            | Action::None => Action::None,
        }
    }

    /// Deploy: opens the command line at `deploy APP `, and asks for the
    /// releases to complete (refused on a read-only console).
    fn deploy_line(&mut self) -> Action {
        let Some(a) = self.current_app().and_then(|i| self.fleet.apps.get(i)) else {
            return Action::None;
        };
        if self.read_only {
            self.notify("read-only console: deploy is not available", true);
            return Action::None;
        }
        let line = format!("deploy {} ", a.name);
        if let Some(i) = self.current_app() {
            self.want_available(i);
        }
        self.command_at = self.command_history.len();
        self.releases_wanted = true;
        self.mode = Mode::Command(TextInput::with_text(&line, COMMAND_MAX));
        Action::Deploy
    }

    /// Rollback: of the current app, to the deployment selected in the
    /// History view; left for the run loop to check.
    fn rollback(&mut self) -> Action {
        let Some(app) = self
            .current_app()
            .and_then(|i| self.fleet.apps.get(i))
            .map(|a| a.name.clone())
        else {
            return Action::None;
        };
        let to = match self.view {
            View::History => self
                .history_view
                .selected_deployment()
                .map(|d| format!("deployment:{}", d.id)),
            _ => None,
        };
        self.check(Intent::Rollback { app, to })
    }

    /// The next or the previous of the main views (Fleet, History,
    /// Events, Logs).
    fn next_view(&mut self, action: Action, state: &FleetState) -> Action {
        let main = [View::Fleet, View::History, View::Events, View::Logs];
        let at = main.iter().position(|v| *v == self.view).unwrap_or(0);
        let n = main.len();
        let to = match action {
            Action::NextView => main[(at + 1) % n],
            _ => main[(at + n - 1) % n],
        };
        if to == View::Logs {
            return self.apply_normal(Action::ShowLogs, state);
        }
        self.show(to);
        action
    }

    /// The Logs view, of the deployment shown, or the current app's
    /// running or last one, or the one the Logs view showed last.
    fn show_logs(&mut self, state: &FleetState) {
        let shown = match self.view {
            View::Deployment(_) => self
                .deployment_view
                .report()
                .map(|r| (r.deployment.id, r.deployment.app.clone())),
            _ => self.current_app().and_then(|i| {
                let r = state.rollouts(i)?;
                let id = r
                    .active
                    .as_ref()
                    .map(|a| a.id)
                    .or(r.last.as_ref().map(|l| l.id))?;
                Some((id, self.fleet.apps.get(i)?.name.clone()))
            }),
        };
        let shown = shown.or_else(|| {
            self.logs_view.deployment().map(|id| {
                let app = self
                    .deployment_view
                    .report()
                    .map(|r| r.deployment.app.clone());
                (id, app.unwrap_or_default())
            })
        });
        self.logs_view.show(shown);
        self.go(View::Logs);
    }

    /// Up, Down, Top, Bottom, PageUp, PageDown in the view shown.
    fn move_selection(&mut self, action: Action, state: &FleetState) {
        match self.view {
            View::Fleet => self.fleet_view.apply(action),
            View::App(i) => self.app_view.apply(action, state, i),
            View::History => self.history_view.apply(action),
            View::Deployment(_) => self.deployment_view.apply(action),
            View::Events => self.events_view.apply(action),
            View::Logs => self.logs_view.apply(action),
        };
    }

    /// Enter: the selected app of the fleet, or the selected deployment
    /// of the History.
    fn open(&mut self) -> Action {
        match self.view {
            View::Fleet => match self.fleet_view.selected_app() {
                Some(index) => {
                    self.view = View::App(index);
                    self.app_view.reset();
                }
                None => return Action::None,
            },
            View::History => match self.history_view.selected_deployment() {
                Some(d) => {
                    let id = d.id;
                    self.open_deployment(Shown::Id(id));
                }
                None => return Action::None,
            },
            _ => return Action::None,
        }
        Action::Open
    }

    /// Esc: back to the view this one was opened over, or to the fleet;
    /// in the fleet, clears the filter.
    fn back(&mut self) -> Action {
        match self.view {
            View::Deployment(_) | View::Logs => {
                self.view = self.back_to.pop().unwrap_or(View::Fleet);
            }
            View::App(_) | View::History | View::Events => {
                self.back_to.clear();
                self.view = View::Fleet;
            }
            View::Fleet if !self.fleet_view.filter().is_empty() => {
                self.fleet_view.set_filter("");
            }
            View::Fleet => return Action::None,
        }
        Action::Back
    }

    /// Shows `view` (the Fleet, History or Events): a place of its own,
    /// so Esc from it goes to the fleet.
    pub(super) fn show(&mut self, view: View) {
        self.back_to.clear();
        if view == View::History && self.view != View::History {
            self.history_view.reopen();
        }
        self.view = view;
    }

    /// Shows `view` over the one shown now, which Esc comes back to.
    fn go(&mut self, view: View) {
        if self.view != view {
            self.back_to.push(self.view);
            self.view = view;
        }
    }

    /// Shows the deployment `shown` says; Esc comes back to the view
    /// shown now. Nothing of another deployment shows until it is read.
    fn open_deployment(&mut self, shown: Shown) {
        let of = match shown {
            Shown::Id(id) => ReportOf::Id(id),
            Shown::Newest(index) => match self.fleet.apps.get(index) {
                Some(a) => ReportOf::NewestOf(a.name.clone()),
                None => return,
            },
        };
        self.deployment_view.show(of);
        if let View::Deployment(_) = self.view {
            self.view = View::Deployment(shown);
        } else {
            self.go(View::Deployment(shown));
        }
    }

    /// Leaves `intent` for the run loop to check and waits for its
    /// question (Esc stops waiting). Refused on a read-only console.
    pub(super) fn check(&mut self, intent: Intent) -> Action {
        let (what, done) = match intent {
            Intent::Deploy { .. } => ("deploy", Action::Deploy),
            Intent::Rollback { .. } => ("rollback", Action::Rollback),
        };
        if self.read_only {
            self.notify(format!("read-only console: {what} is not available"), true);
            return Action::None;
        }
        self.last_token += 1;
        let token = self.last_token;
        self.mode = Mode::Pending(Pending {
            token,
            what: intent.checking(),
        });
        self.checks = Some((token, intent));
        done
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
            Action::PageUp | Action::PageDown if c.scroll(action) => return action,
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
}
