//! The `:` command line of the [`App`]: running a line the way its key
//! would be, completing a word, recalling earlier lines.

use super::*;

impl App {
    pub(super) fn apply_command(&mut self, action: Action, state: &FleetState) -> Action {
        if action != Action::Complete {
            self.completions.clear();
        }
        self.completion_note = None;
        match (action, std::mem::take(&mut self.mode)) {
            (Action::Back, _) => action,
            (Action::Accept, Mode::Command(line)) => {
                let text = line.text();
                let text = text.trim();
                if !text.is_empty() && self.command_history.last().map(String::as_str) != Some(text)
                {
                    self.command_history.push(text.to_string());
                    if self.command_history.len() > COMMAND_HISTORY {
                        self.command_history.remove(0);
                    }
                }
                self.run_command(text, state)
            }
            (Action::Complete, Mode::Command(line)) => {
                // Completing a release: list what is on the app's hosts
                // too, for the next Tab.
                let text = line.text();
                let typed: Vec<&str> = text.split_whitespace().collect();
                if let ["deploy" | "rollback", app, ..] = typed.as_slice()
                    && let Some(i) = self.fleet.apps.iter().position(|a| a.name == *app)
                {
                    self.want_available(i);
                }
                let words = self.words(state);
                let completed = command::complete(&line.text(), &words);
                if completed.is_none()
                    && let ["deploy" | "rollback", app] = typed.as_slice()
                    && text.ends_with(' ')
                {
                    let listed = self.available.iter().any(|(a, _)| a == app);
                    let words = if listed {
                        format!("no other release of {app} is on its hosts or in the history")
                    } else {
                        format!(
                            "no other release of {app} is known yet: its hosts are being listed, Tab again in a moment"
                        )
                    };
                    self.completion_note = Some(words);
                }
                self.mode = Mode::Command(match completed {
                    Some((text, all)) => {
                        self.completions = all;
                        TextInput::with_text(&text, COMMAND_MAX)
                    }
                    None => {
                        self.completions.clear();
                        line
                    }
                });
                action
            }
            (Action::Older | Action::Newer, Mode::Command(line)) => {
                let n = self.command_history.len();
                self.command_at = match action {
                    Action::Older => self.command_at.saturating_sub(1),
                    _ => (self.command_at + 1).min(n),
                };
                self.mode = Mode::Command(match self.command_history.get(self.command_at) {
                    Some(old) => TextInput::with_text(old, COMMAND_MAX),
                    None if self.command_at == n => TextInput::new(COMMAND_MAX),
                    None => line,
                });
                action
            }
            (_, mode) => {
                self.mode = mode;
                Action::None
            }
        }
    }

    /// What completion offers: the apps, the releases the console knows
    /// of each (what runs, what was deployed, what the history records,
    /// what is on its hosts), the themes.
    fn words<'a>(&'a self, state: &'a FleetState) -> Words<'a> {
        let releases = self
            .fleet
            .apps
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut known: Vec<String> = Vec::new();
                let mut add = |v: &str| {
                    if !known.iter().any(|k| k == v) {
                        known.push(v.to_string());
                    }
                };
                if let Some(r) = state.rollouts(i) {
                    r.versions.iter().for_each(|v| add(v));
                    if let Some(x) = &r.active {
                        add(&x.to);
                        x.from.iter().for_each(|v| add(v));
                    }
                    if let Some(x) = &r.last {
                        add(&x.to);
                    }
                }
                self.app_view.known_releases(&a.name).for_each(&mut add);
                self.releases
                    .iter()
                    .chain(&self.available)
                    .filter(|(app, _)| *app == a.name)
                    .flat_map(|(_, v)| v)
                    .for_each(|v| add(v));
                // What every instance runs already is no release to go to
                // (deploying it would be `E_NOTHING_TO_DO`).
                if let Some([everywhere]) = state.rollouts(i).map(|r| r.versions.as_slice()) {
                    known.retain(|v| v != everywhere);
                }
                known.sort();
                (a.name.as_str(), known)
            })
            .collect();
        Words {
            apps: self.fleet.apps.iter().map(|a| a.name.as_str()).collect(),
            releases,
            themes: crate::tui::BUILTIN_THEMES.to_vec(),
        }
    }

    /// Carries out a `:` line the way its key would be.
    fn run_command(&mut self, line: &str, state: &FleetState) -> Action {
        let command = match command::parse(line) {
            Ok(c) => c,
            Err(why) => {
                self.notify(why, true);
                return Action::None;
            }
        };
        let known = |app: &str| self.fleet.apps.iter().position(|a| a.name == app);
        let app = match &command {
            Command::Rollout { app, .. }
            | Command::Deploy { app, .. }
            | Command::Rollback { app, .. }
            | Command::BreakLock { app } => Some(app.clone()),
            Command::Quit | Command::Theme(_) | Command::Show(_) => None,
        };
        let index = match app.as_deref().map(|a| (a, known(a))) {
            Some((_, Some(i))) => Some(i),
            Some((a, None)) => {
                self.notify(format!("no app is named {a:?}"), true);
                return Action::None;
            }
            None => None,
        };
        match (command, index) {
            (Command::Quit, _) => Action::Quit,
            (Command::Rollout { verb, .. }, Some(i)) => self.ask(verb, i, state),
            (
                Command::Deploy {
                    app,
                    version,
                    strategy,
                },
                Some(_),
            ) => self.check(Intent::Deploy {
                app,
                version,
                strategy,
            }),
            (Command::Rollback { app, to }, Some(_)) => self.check(Intent::Rollback { app, to }),
            (Command::BreakLock { app }, Some(i)) => self.ask_break_lock(app, i),
            (Command::Theme(name), _) => {
                match Theme::builtin(&name) {
                    Some(theme) => {
                        self.theme = theme;
                        self.notify(format!("theme {name}"), false);
                    }
                    None => self.theme_wanted = Some(name),
                }
                Action::Command
            }
            (Command::Show(view), _) => {
                self.show(match view {
                    "history" => View::History,
                    "events" => View::Events,
                    _ => View::Fleet,
                });
                Action::Command
            }
            (_, None) => Action::None,
        }
    }

    /// Opens the question before breaking the lock of `app`.
    fn ask_break_lock(&mut self, app: String, index: usize) -> Action {
        if self.read_only {
            self.notify("read-only console: break-lock is not available", true);
            return Action::None;
        }
        let protected = self.fleet.apps.get(index).is_some_and(|a| a.protected);
        let confirm = Confirm::new(
            ConfirmAction::BreakLock { app: app.clone() },
            format!("Break the lock of {app}?"),
            "Only an abandoned lock is broken (its process gone or its heartbeat stale); a live one is refused.".into(),
            protected,
        );
        self.mode = Mode::Confirm(Box::new(confirm));
        Action::Command
    }
}
