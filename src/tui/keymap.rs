//! The one table of keys. Key handling, the `?` help popup and the footer
//! are all generated from [`KEYMAP`], so they cannot drift apart. Each
//! binding says in which views ([`Views`]) and modes ([`Modes`]) it
//! applies: the same key may mean one thing in the fleet view and another
//! in the app view, or be a letter of a reason while a question is open.
//! Within one view and one mode a key is bound at most once.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::View;
use super::control::Verb;
use super::mode::Mode;

/// What a key asks the console to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Leave the console.
    Quit,
    /// Select the row above.
    Up,
    /// Select the row below.
    Down,
    /// Select the first row.
    Top,
    /// Select the last row.
    Bottom,
    /// Move the selection a page up.
    PageUp,
    /// Move the selection a page down.
    PageDown,
    /// Open the selected app.
    Open,
    /// Close what is open (popup, question, filter, command line), go back
    /// to the fleet, or clear the fleet's filter.
    Back,
    /// Show or hide the log pane.
    ToggleLog,
    /// Show or hide the help popup.
    Help,
    /// Open the `/` filter of the list shown.
    Filter,
    /// Open the `:` command line.
    Command,
    /// Keep the filter typed, or run the command line.
    Accept,
    /// Ask to send a command to the selected app's rollout.
    Rollout(Verb),
    /// Start typing a deploy of the current app (`:deploy APP `).
    Deploy,
    /// Check a rollback by hand of the current app (in History: to the
    /// release the selected deployment deployed), then ask it.
    Rollback,
    /// Show the History view.
    ShowHistory,
    /// Show the Events view.
    ShowEvents,
    /// Show the rollout of the current app (the one in flight, else the
    /// last).
    ShowRollout,
    /// Complete the word typed on the command line.
    Complete,
    /// The command line typed before this one.
    Older,
    /// The command line typed after this one.
    Newer,
    /// Press the question's focused button (Cancel, or the action).
    Press,
    /// Move the question's focus to its other button.
    SwitchButton,
    /// Type into the question's other line (the reason, or a protected
    /// app's name).
    SwitchLine,
    /// Not a key's: what a press of the action's button came to when it
    /// confirmed the action (the run loop then performs it).
    Send,
    /// Nothing: the key is not bound here.
    None,
}

impl Action {
    /// Whether it changes something (so a read-only console refuses it and
    /// does not offer it).
    pub fn acts(self) -> bool {
        matches!(self, Action::Rollout(_) | Action::Deploy | Action::Rollback)
    }
}

/// A set of views, for where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Views(u8);

impl Views {
    /// The fleet view.
    pub const FLEET: Views = Views(1);
    /// The app view.
    pub const APP: Views = Views(1 << 1);
    /// The History view.
    pub const HISTORY: Views = Views(1 << 2);
    /// One deployment: the Rollout view, or one opened from History.
    pub const DEPLOYMENT: Views = Views(1 << 3);
    /// The Events view.
    pub const EVENTS: Views = Views(1 << 4);
    /// The views that are tables of rows.
    pub const TABLES: Views = Views(Self::FLEET.0 | Self::APP.0 | Self::HISTORY.0);
    /// The views that move or scroll with the arrows.
    pub const LISTS: Views = Views(Self::TABLES.0 | Self::DEPLOYMENT.0 | Self::EVENTS.0);
    /// The views about one app, where the rollout keys act on it.
    pub const OF_APP: Views = Views(Self::FLEET.0 | Self::APP.0 | Self::DEPLOYMENT.0);
    /// Every view.
    pub const ALL: Views = Views(u8::MAX);

    /// Both sets.
    pub const fn with(self, other: Views) -> Views {
        Views(self.0 | other.0)
    }

    /// Whether `view` is in the set.
    pub fn contains(self, view: View) -> bool {
        let bit = match view {
            View::Fleet => Self::FLEET,
            View::App(_) => Self::APP,
            View::History => Self::HISTORY,
            View::Deployment(_) => Self::DEPLOYMENT,
            View::Events => Self::EVENTS,
        };
        self.0 & bit.0 != 0
    }
}

/// A set of modes, for where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes(u8);

impl Modes {
    /// Nothing open over the view.
    pub const NORMAL: Modes = Modes(1);
    /// The help popup.
    pub const HELP: Modes = Modes(1 << 1);
    /// The question before an action.
    pub const CONFIRM: Modes = Modes(1 << 2);
    /// The `/` filter.
    pub const FILTER: Modes = Modes(1 << 3);
    /// The `:` command line.
    pub const COMMAND: Modes = Modes(1 << 4);
    /// Waiting for a deploy's or a rollback's checks.
    pub const PENDING: Modes = Modes(1 << 5);
    /// Normal or help: where letters are keys.
    pub const BROWSING: Modes = Modes(Self::NORMAL.0 | Self::HELP.0);
    /// Every mode with a line to type in: there letters are text.
    pub const TYPING: Modes = Modes(Self::CONFIRM.0 | Self::FILTER.0 | Self::COMMAND.0);

    /// The set holding only `mode`.
    pub fn of(mode: &Mode) -> Modes {
        match mode {
            Mode::Normal => Self::NORMAL,
            Mode::Help => Self::HELP,
            Mode::Confirm(_) => Self::CONFIRM,
            Mode::Filter(_) => Self::FILTER,
            Mode::Command(_) => Self::COMMAND,
            Mode::Pending(_) => Self::PENDING,
        }
    }

    /// Whether the sets share a mode.
    pub fn meets(self, other: Modes) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether `mode` is in the set.
    pub fn contains(self, mode: &Mode) -> bool {
        self.meets(Modes::of(mode))
    }
}

/// One key: a code and the modifiers that must be held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Ctrl/Alt that must be held (Shift is ignored for characters).
    pub modifiers: KeyModifiers,
}

impl Key {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Key {
        Key {
            code,
            modifiers: KeyModifiers::NONE,
        }
    }

    /// A character key without modifiers.
    pub const fn char(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    /// Ctrl + a character.
    pub const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            modifiers: KeyModifiers::CONTROL,
        }
    }

    /// Whether `ev` is this key.
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        let mods = ev.modifiers & relevant;
        match (self.code, ev.code) {
            (KeyCode::Char(a), KeyCode::Char(b)) => {
                let same = if self.modifiers.contains(KeyModifiers::CONTROL) {
                    a.eq_ignore_ascii_case(&b)
                } else {
                    a == b
                };
                same && mods == self.modifiers
            }
            (a, b) => a == b && mods == self.modifiers,
        }
    }

    /// How help and footer show it, e.g. `q`, `Ctrl-c`, `↑`, `Enter`.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            other => format!("{other:?}"),
        };
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{base}")
        } else if self.modifiers.contains(KeyModifiers::ALT) {
            format!("Alt-{base}")
        } else {
            base
        }
    }
}

/// A binding: keys, what they do, where, and how help and footer
/// describe it.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The keys; the first is the one shown in the footer.
    pub keys: &'static [Key],
    /// What they do.
    pub action: Action,
    /// The views it applies in.
    pub views: Views,
    /// The modes it applies in.
    pub modes: Modes,
    /// One line for the help popup.
    pub help: &'static str,
    /// A word for the footer; `None` keeps it out of the footer.
    pub footer: Option<&'static str>,
}

impl Binding {
    /// All keys, joined for the help popup: `k, ↑`.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(Key::label)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether it applies in `view` while `mode` is open.
    pub fn applies(&self, view: View, mode: &Mode) -> bool {
        self.views.contains(view) && self.modes.contains(mode)
    }
}

/// A binding in one view, in the modes of `modes`.
const fn bind(
    keys: &'static [Key],
    action: Action,
    views: Views,
    modes: Modes,
    help: &'static str,
    footer: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        action,
        views,
        modes,
        help,
        footer,
    }
}

const ENTER: Key = Key::plain(KeyCode::Enter);
const ESC: Key = Key::plain(KeyCode::Esc);
const ALL: Views = Views::ALL;
const TABLES: Views = Views::TABLES;
const LISTS: Views = Views::LISTS;
const OF_APP: Views = Views::OF_APP;
const NORMAL: Modes = Modes::NORMAL;
const BROWSING: Modes = Modes::BROWSING;

/// Every key of the console, most important first (the footer is cut
/// from the right on narrow terminals).
#[rustfmt::skip]
pub const KEYMAP: &[Binding] = &[
    bind(&[Key::char('q'), Key::ctrl('c')], Action::Quit, ALL, BROWSING, "quit", Some("quit")),
    bind(&[Key::ctrl('c')], Action::Quit, ALL, Modes::TYPING, "quit", None),
    bind(&[Key::ctrl('c')], Action::Quit, ALL, Modes::PENDING, "quit", None),
    bind(&[Key::char('?')], Action::Help, ALL, BROWSING, "show / hide this help", Some("help")),
    bind(&[Key::char('a')], Action::Rollout(Verb::Approve), OF_APP, NORMAL,
        "approve the step the rollout waits on", Some("approve")),
    bind(&[Key::char('f')], Action::Rollout(Verb::Fire), OF_APP, NORMAL,
        "fire the armed rollback now", Some("fire rollback")),
    bind(&[Key::char('h')], Action::Rollout(Verb::Hold), OF_APP, NORMAL,
        "hold the armed rollback", Some("hold")),
    bind(&[Key::char('x')], Action::Rollout(Verb::Abort), OF_APP, NORMAL,
        "abort the rollout and roll back", Some("abort")),
    bind(&[Key::char('p')], Action::Rollout(Verb::Pause), OF_APP, NORMAL,
        "pause the rollout at its next safe point", Some("pause")),
    bind(&[Key::char('r')], Action::Rollout(Verb::Resume), OF_APP, NORMAL,
        "resume the paused rollout", Some("resume")),
    bind(&[ENTER], Action::Open, Views::FLEET, NORMAL, "open the selected app", Some("open")),
    bind(&[ENTER], Action::Open, Views::HISTORY, NORMAL,
        "open the deployment: timeline and why", Some("open")),
    bind(&[Key::char('d')], Action::Deploy, Views::FLEET.with(Views::APP), NORMAL,
        "deploy a release of the app (checked, then asked)", Some("deploy")),
    bind(&[Key::char('b')], Action::Rollback, TABLES.with(Views::DEPLOYMENT), NORMAL,
        "roll back by hand (History: to the selected deployment's release)", Some("rollback")),
    bind(&[Key::char('R')], Action::ShowRollout, OF_APP, NORMAL,
        "the app's rollout: batches, instances, why", Some("rollout")),
    bind(&[Key::char('H')], Action::ShowHistory, ALL, NORMAL,
        "history of deployments and rollbacks", Some("history")),
    bind(&[Key::char('E')], Action::ShowEvents, ALL, NORMAL,
        "live events of every app", Some("events")),
    bind(&[ENTER], Action::Press, ALL, Modes::CONFIRM, "press the focused button", Some("press")),
    bind(&[Key::plain(KeyCode::Tab), Key::plain(KeyCode::BackTab), Key::plain(KeyCode::Left),
        Key::plain(KeyCode::Right)], Action::SwitchButton, ALL, Modes::CONFIRM,
        "move between Cancel and the action", Some("choose")),
    bind(&[Key::plain(KeyCode::Up), Key::plain(KeyCode::Down)], Action::SwitchLine, ALL,
        Modes::CONFIRM, "type the reason or the app's name", Some("line")),
    bind(&[ENTER], Action::Accept, ALL, Modes::FILTER, "keep the filter", Some("keep")),
    bind(&[ENTER], Action::Accept, ALL, Modes::COMMAND, "run the command", Some("run")),
    bind(&[Key::plain(KeyCode::Tab)], Action::Complete, ALL, Modes::COMMAND,
        "complete the word", Some("complete")),
    bind(&[Key::plain(KeyCode::Up)], Action::Older, ALL, Modes::COMMAND,
        "the command typed before", None),
    bind(&[Key::plain(KeyCode::Down)], Action::Newer, ALL, Modes::COMMAND,
        "the command typed after", None),
    bind(&[ESC, Key::plain(KeyCode::Backspace)], Action::Back, ALL, BROWSING,
        "close popup / go back / clear the filter", Some("back")),
    bind(&[ESC], Action::Back, ALL, Modes::CONFIRM, "cancel", Some("cancel")),
    bind(&[ESC], Action::Back, ALL, Modes::FILTER, "clear the filter", Some("clear")),
    bind(&[ESC], Action::Back, ALL, Modes::COMMAND, "close the command line", Some("close")),
    bind(&[ESC], Action::Back, ALL, Modes::PENDING, "stop waiting (nothing was started)",
        Some("stop waiting")),
    bind(&[Key::char('j'), Key::plain(KeyCode::Down)], Action::Down, LISTS, NORMAL,
        "next row / scroll down", Some("down")),
    bind(&[Key::char('k'), Key::plain(KeyCode::Up)], Action::Up, LISTS, NORMAL,
        "previous row / scroll up", Some("up")),
    bind(&[Key::char('l')], Action::ToggleLog, ALL, BROWSING, "show / hide the log pane", Some("logs")),
    bind(&[Key::char('/')], Action::Filter, Views::FLEET, NORMAL, "filter apps by name", Some("filter")),
    bind(&[Key::char(':')], Action::Command, ALL, NORMAL,
        "command line (:deploy APP V, :rollback APP, :abort APP, :theme NAME, :q; Tab completes)",
        Some("command")),
    bind(&[Key::char('g'), Key::plain(KeyCode::Home)], Action::Top, LISTS, NORMAL,
        "first row / oldest", None),
    bind(&[Key::char('G'), Key::plain(KeyCode::End)], Action::Bottom, LISTS, NORMAL,
        "last row / newest", None),
    bind(&[Key::plain(KeyCode::PageUp), Key::ctrl('u')], Action::PageUp, LISTS, NORMAL,
        "page up", None),
    bind(&[Key::plain(KeyCode::PageDown), Key::ctrl('d')], Action::PageDown, LISTS, NORMAL,
        "page down", None),
];

/// The binding `ev` triggers in `view` while `mode` is open, if any.
pub fn lookup(ev: &KeyEvent, view: View, mode: &Mode) -> Option<&'static Binding> {
    bindings(view, mode).find(|b| b.keys.iter().any(|k| k.matches(ev)))
}

/// The bindings that apply in `view` while `mode` is open, in table order.
pub fn bindings(view: View, mode: &Mode) -> impl Iterator<Item = &'static Binding> {
    bindings_in(view, Modes::of(mode))
}

fn bindings_in(view: View, modes: Modes) -> impl Iterator<Item = &'static Binding> {
    KEYMAP
        .iter()
        .filter(move |b| b.views.contains(view) && b.modes.meets(modes))
}

/// The bindings the help popup lists over `view`: those of the view itself
/// and those of the help popup.
pub fn help_bindings(view: View) -> impl Iterator<Item = &'static Binding> {
    KEYMAP
        .iter()
        .filter(move |b| b.views.contains(view) && b.modes.meets(BROWSING))
}

/// The first key bound to `action` in `view` in one of `modes`, as shown
/// ("Enter"), for popups that name their keys.
pub fn key_label(action: Action, view: View, modes: Modes) -> String {
    bindings_in(view, modes)
        .find(|b| b.action == action)
        .map_or_else(|| "?".into(), |b| b.keys[0].label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::components::TextInput;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn keys_resolve() {
        let a = |code, m| lookup(&ev(code, m), View::Fleet, &Mode::Normal).map(|b| b.action);
        assert_eq!(
            a(KeyCode::Char('q'), KeyModifiers::NONE),
            Some(Action::Quit)
        );
        assert_eq!(
            a(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Action::Quit)
        );
        assert_eq!(a(KeyCode::Char('c'), KeyModifiers::NONE), None);
        assert_eq!(
            a(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Some(Action::Bottom)
        );
        assert_eq!(
            a(KeyCode::Char('?'), KeyModifiers::SHIFT),
            Some(Action::Help)
        );
        assert_eq!(a(KeyCode::Char('j'), KeyModifiers::ALT), None);
        assert_eq!(a(KeyCode::Down, KeyModifiers::NONE), Some(Action::Down));
        assert_eq!(a(KeyCode::Enter, KeyModifiers::NONE), Some(Action::Open));
    }

    #[test]
    fn a_key_means_what_the_view_and_mode_say() {
        let enter = ev(KeyCode::Enter, KeyModifiers::NONE);
        let q = ev(KeyCode::Char('q'), KeyModifiers::NONE);
        let act = |e: &KeyEvent, v, m: &Mode| lookup(e, v, m).map(|b| b.action);
        let filter = Mode::Filter(TextInput::new(8));
        assert_eq!(act(&enter, View::Fleet, &Mode::Normal), Some(Action::Open));
        assert_eq!(act(&enter, View::App(0), &Mode::Normal), None);
        assert_eq!(act(&enter, View::Fleet, &Mode::Help), None);
        assert_eq!(act(&enter, View::Fleet, &filter), Some(Action::Accept));
        assert_eq!(act(&q, View::Fleet, &Mode::Help), Some(Action::Quit));
        assert_eq!(act(&q, View::Fleet, &filter), None, "q is a letter there");
        let slash = ev(KeyCode::Char('/'), KeyModifiers::NONE);
        assert_eq!(act(&slash, View::App(0), &Mode::Normal), None);
    }

    #[test]
    fn no_key_is_bound_twice_in_one_view_and_mode() {
        let modes = [
            Mode::Normal,
            Mode::Help,
            Mode::Filter(TextInput::new(1)),
            Mode::Command(TextInput::new(1)),
            Mode::Pending(crate::tui::mode::Pending {
                token: 1,
                what: String::new(),
            }),
        ];
        for view in [
            View::Fleet,
            View::App(0),
            View::History,
            View::Deployment(1),
            View::Events,
        ] {
            for mode in &modes {
                let keys: Vec<Key> = bindings(view, mode)
                    .flat_map(|b| b.keys.iter().copied())
                    .collect();
                for (i, k) in keys.iter().enumerate() {
                    assert!(!keys[i + 1..].contains(k), "{k:?} bound twice in {view:?}");
                }
            }
        }
        let confirm: Vec<Key> = KEYMAP
            .iter()
            .filter(|b| b.modes.meets(Modes::CONFIRM))
            .flat_map(|b| b.keys.iter().copied())
            .collect();
        for (i, k) in confirm.iter().enumerate() {
            assert!(!confirm[i + 1..].contains(k), "{k:?} bound twice");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(Key::ctrl('c').label(), "Ctrl-c");
        assert_eq!(Key::plain(KeyCode::Up).label(), "↑");
        let quit = KEYMAP.iter().find(|b| b.action == Action::Quit).unwrap();
        assert_eq!(quit.keys_label(), "q, Ctrl-c");
        assert_eq!(key_label(Action::Back, View::Fleet, Modes::HELP), "Esc");
    }
}
