//! The console's keys: what a key may ask for ([`Action`]), the one table
//! of bindings ([`KEYMAP`]), a key as `[console.keys]` writes it ([`Key`]),
//! and those lines checked against the table ([`remapped`]). Each binding
//! says in which views ([`Views`]) and modes ([`Modes`]) it applies: the
//! same key may mean one thing in the fleet view and another in the app
//! view, or be a letter of a reason while a question is open. Within one
//! view and one mode a key is bound at most once.
//!
//! A line of `[console.keys]` gives an action, by name ([`Action::name`]),
//! keys that replace those of its bindings where letters are keys (the
//! normal and help modes); the keys of the modes with a line to type in
//! (the question, the `/` filter, the `:` command line) and of the wait
//! for a deploy's checks (Esc, Ctrl-C) are fixed, so a letter there is
//! always text and the question's keys are always the same deliberate
//! ones. [`remapped`] refuses an unknown action, a key it cannot read and
//! a key that would mean two things in one view and mode, saying which
//! line of `[console.keys]` is at fault.
//!
//! Pure, and below the config: the config checks `[console.keys]` here
//! when it loads (an error at the line at fault), and the console
//! (`tui::keymap`) looks keys up in the table by its view and mode.

use std::borrow::Cow;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::model::Verb;

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
    /// Show the Logs view.
    ShowLogs,
    /// The next of the main views (Fleet, History, Events, Logs).
    NextView,
    /// The previous of the main views.
    PrevView,
    /// Show more detail of rollguard's log (a lower level).
    MoreDetail,
    /// Show less detail of rollguard's log.
    LessDetail,
    /// Move the scrolling keys to the Logs view's other pane (rollguard's
    /// log, or the worker's).
    SwitchPane,
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

    /// Its name in `[console.keys]`, e.g. `toggle_log`, `abort`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Up => "up",
            Action::Down => "down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Open => "open",
            Action::Back => "back",
            Action::ToggleLog => "toggle_log",
            Action::Help => "help",
            Action::Filter => "filter",
            Action::Command => "command",
            Action::Accept => "accept",
            Action::Rollout(verb) => verb.as_str(),
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::ShowHistory => "history",
            Action::ShowEvents => "events",
            Action::ShowRollout => "rollout",
            Action::ShowLogs => "logs",
            Action::NextView => "next_view",
            Action::PrevView => "previous_view",
            Action::MoreDetail => "more_detail",
            Action::LessDetail => "less_detail",
            Action::SwitchPane => "switch_pane",
            Action::Complete => "complete",
            Action::Older => "older",
            Action::Newer => "newer",
            Action::Press => "press",
            Action::SwitchButton => "switch_button",
            Action::SwitchLine => "switch_line",
            Action::Send => "send",
            Action::None => "none",
        }
    }

    /// The names `[console.keys]` takes: the actions with a binding where
    /// letters are keys, in [`KEYMAP`] order.
    pub fn remappable() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for b in KEYMAP.iter().filter(|b| b.remappable()) {
            if !names.contains(&b.action.name()) {
                names.push(b.action.name());
            }
        }
        names
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
    /// The Logs view.
    pub const LOGS: Views = Views(1 << 5);
    /// The views that are tables of rows.
    pub const TABLES: Views = Views(Self::FLEET.0 | Self::APP.0 | Self::HISTORY.0);
    /// The views that move or scroll with the arrows.
    pub const LISTS: Views =
        Views(Self::TABLES.0 | Self::DEPLOYMENT.0 | Self::EVENTS.0 | Self::LOGS.0);
    /// The views about one app, where the rollout keys act on it.
    pub const OF_APP: Views = Views(Self::FLEET.0 | Self::APP.0 | Self::DEPLOYMENT.0);
    /// Every view.
    pub const ALL: Views = Views(u8::MAX);

    /// Both sets.
    pub const fn with(self, other: Views) -> Views {
        Views(self.0 | other.0)
    }

    /// Whether the sets share a view.
    pub fn meets(self, other: Views) -> bool {
        self.0 & other.0 != 0
    }

    /// The views of both sets, in words: "fleet view", "fleet and app
    /// views", ...
    fn shared_words(self, other: Views) -> String {
        let both = self.0 & other.0;
        let names: Vec<&str> = [
            (Self::FLEET, "fleet"),
            (Self::APP, "app"),
            (Self::HISTORY, "History"),
            (Self::DEPLOYMENT, "rollout"),
            (Self::EVENTS, "Events"),
            (Self::LOGS, "Logs"),
        ]
        .iter()
        .filter(|(v, _)| both & v.0 != 0)
        .map(|(_, n)| *n)
        .collect();
        match names.as_slice() {
            [] => "same view".into(),
            [one] => format!("{one} view"),
            [first @ .., last] => format!("{} and {last} views", first.join(", ")),
        }
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

    /// Whether the sets share a mode.
    pub fn meets(self, other: Modes) -> bool {
        self.0 & other.0 != 0
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

    /// A key as `[console.keys]` writes it: one character (`x`, `X`, `?`,
    /// `↑`), or a name, whatever its case: `Enter`, `Esc`, `Tab`,
    /// `Shift-Tab`, `Up`, `Down`, `Left`, `Right`, `Home`, `End`, `PageUp`,
    /// `PageDown`, `Backspace`, `Delete`, `Insert`, `Space`, `F1`..`F12`
    /// (and the labels help shows, such as `PgUp`, `Bksp`); after any of
    /// `ctrl-` and `alt-`. `None` for anything else.
    pub fn parse(text: &str) -> Option<Key> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let prefix = |p: &str| {
                rest.len() > p.len()
                    && rest
                        .get(..p.len())
                        .is_some_and(|h| h.eq_ignore_ascii_case(p))
            };
            if prefix("ctrl-") {
                modifiers |= KeyModifiers::CONTROL;
                rest = &rest[5..];
            } else if prefix("alt-") {
                modifiers |= KeyModifiers::ALT;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => match c {
                '↑' => KeyCode::Up,
                '↓' => KeyCode::Down,
                '←' => KeyCode::Left,
                '→' => KeyCode::Right,
                c if c.is_control() => return None,
                // Ctrl-x and Ctrl-X are one key (see `matches`).
                c if modifiers.contains(KeyModifiers::CONTROL) => {
                    KeyCode::Char(c.to_ascii_lowercase())
                }
                c => KeyCode::Char(c),
            },
            _ => named_key(rest)?,
        };
        Some(Key { code, modifiers })
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
            KeyCode::Delete => "Del".into(),
            KeyCode::Insert => "Ins".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        let ctrl = if self.modifiers.contains(KeyModifiers::CONTROL) {
            "Ctrl-"
        } else {
            ""
        };
        let alt = if self.modifiers.contains(KeyModifiers::ALT) {
            "Alt-"
        } else {
            ""
        };
        format!("{ctrl}{alt}{base}")
    }
}

/// A key's name as [`Key::parse`] takes it, whatever its case.
fn named_key(name: &str) -> Option<KeyCode> {
    Some(match name.to_ascii_lowercase().as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "shift-tab" | "backtab" => KeyCode::BackTab,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" => KeyCode::PageDown,
        "backspace" | "bksp" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "space" => KeyCode::Char(' '),
        other => {
            let digits = other.strip_prefix('f').filter(|d| {
                !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit())
            })?;
            match digits.parse() {
                Ok(n @ 1..=12) => KeyCode::F(n),
                _ => return None,
            }
        }
    })
}

/// What [`Key::parse`] takes, for a hint.
const KEY_WORDS: &str = "a key is one character (\"x\", \"X\", \"?\") or a name: Enter, Esc, Tab, Shift-Tab, Up, Down, Left, Right, Home, End, PageUp, PageDown, Backspace, Delete, Insert, Space, F1..F12; with ctrl- or alt- in front for a chord (\"ctrl-f\")";

/// A binding: keys, what they do, where, and how help and footer
/// describe it.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The keys; the first is the one shown in the footer. Never empty.
    pub keys: Cow<'static, [Key]>,
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

    /// Whether `[console.keys]` may change its keys: only where letters
    /// are keys, never in a mode with a line to type in.
    pub fn remappable(&self) -> bool {
        !self.modes.meets(Modes::TYPING) && !self.modes.meets(Modes::PENDING)
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
        keys: Cow::Borrowed(keys),
        action,
        views,
        modes,
        help,
        footer,
    }
}

/// Ctrl-Z: taken before the keymap, to suspend the console.
pub const SUSPEND: Key = Key::ctrl('z');

/// Ctrl-L: taken before the keymap, to redraw the whole screen, as in
/// every terminal program.
pub const REDRAW: Key = Key::ctrl('l');

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
        "resume it", Some("resume")),
    bind(&[ENTER], Action::Open, Views::FLEET, NORMAL, "open the selected app", Some("open")),
    bind(&[ENTER], Action::Open, Views::HISTORY, NORMAL,
        "open the deployment: timeline and why", Some("open")),
    bind(&[ESC, Key::plain(KeyCode::Backspace)], Action::Back, ALL, BROWSING,
        "close popup / go back / clear the filter", Some("back")),
    bind(&[Key::char('d')], Action::Deploy, Views::FLEET.with(Views::APP), NORMAL,
        "deploy a release of the app (checked, then asked)", Some("deploy")),
    bind(&[Key::char('b')], Action::Rollback, TABLES.with(Views::DEPLOYMENT), NORMAL,
        "roll back by hand (in History: to the row's release)", Some("rollback")),
    bind(&[Key::char('R')], Action::ShowRollout, OF_APP, NORMAL,
        "the app's rollout: batches, instances, why", Some("rollout")),
    bind(&[Key::char('H')], Action::ShowHistory, ALL, NORMAL,
        "history of deployments and rollbacks", Some("history")),
    bind(&[Key::char('E')], Action::ShowEvents, ALL, NORMAL,
        "live events of every app", Some("events")),
    bind(&[Key::char('L')], Action::ShowLogs, ALL, NORMAL,
        "rollguard's log and the rollout worker's", Some("logs")),
    bind(&[Key::plain(KeyCode::Tab)], Action::NextView, ALL, NORMAL,
        "next view: fleet, History, Events, Logs", None),
    bind(&[Key::plain(KeyCode::BackTab)], Action::PrevView, ALL, NORMAL,
        "previous view", None),
    bind(&[Key::char('+')], Action::MoreDetail, Views::LOGS, NORMAL,
        "more detail in rollguard's log", Some("more")),
    bind(&[Key::char('-')], Action::LessDetail, Views::LOGS, NORMAL,
        "less detail in rollguard's log", Some("less")),
    bind(&[Key::char('w')], Action::SwitchPane, Views::LOGS, NORMAL,
        "scroll the other pane: rollguard's log or the worker's", Some("other pane")),
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
    bind(&[ESC], Action::Back, ALL, Modes::CONFIRM, "cancel", Some("cancel")),
    bind(&[Key::plain(KeyCode::PageUp)], Action::PageUp, ALL, Modes::CONFIRM,
        "scroll what was checked up", None),
    bind(&[Key::plain(KeyCode::PageDown)], Action::PageDown, ALL, Modes::CONFIRM,
        "scroll what was checked down", None),
    bind(&[ESC], Action::Back, ALL, Modes::FILTER, "clear the filter", Some("clear")),
    bind(&[ESC], Action::Back, ALL, Modes::COMMAND, "close the command line", Some("close")),
    bind(&[ESC], Action::Back, ALL, Modes::PENDING, "stop waiting (nothing was started)",
        Some("stop waiting")),
    bind(&[Key::char('j'), Key::plain(KeyCode::Down)], Action::Down, LISTS, NORMAL,
        "next row", Some("down")),
    bind(&[Key::char('k'), Key::plain(KeyCode::Up)], Action::Up, LISTS, NORMAL,
        "previous row", Some("up")),
    bind(&[Key::char('l')], Action::ToggleLog, ALL, BROWSING, "show / hide the log pane", Some("log pane")),
    bind(&[Key::char('/')], Action::Filter, Views::FLEET, NORMAL, "filter apps by name", Some("filter")),
    bind(&[Key::char(':')], Action::Command, ALL, NORMAL,
        "command line: :deploy, :rollback, :theme, :q, Tab completes",
        Some("command")),
    bind(&[Key::char('g'), Key::plain(KeyCode::Home)], Action::Top, LISTS, NORMAL,
        "first row", None),
    bind(&[Key::char('G'), Key::plain(KeyCode::End)], Action::Bottom, LISTS, NORMAL,
        "last row", None),
    bind(&[Key::plain(KeyCode::PageUp), Key::ctrl('u')], Action::PageUp, LISTS, NORMAL,
        "page up", None),
    bind(&[Key::plain(KeyCode::PageDown), Key::ctrl('d')], Action::PageDown, LISTS, NORMAL,
        "page down", None),
];

/// One line of `[console.keys]`: an action's name and the keys given it,
/// as written (`abort = "X"`, `down = ["j", "Down"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRemap {
    /// The action, e.g. `abort`.
    pub action: String,
    /// Its keys, e.g. `X`, `ctrl-f`, `Down`.
    pub keys: Vec<String>,
}

/// Where in `[console.keys]` a problem is: lines are counted in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemapPlace {
    /// The action's name on line `n`.
    Action(usize),
    /// Key `k` of line `n`.
    Key(usize, usize),
}

/// A line of `[console.keys]` that cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemapError {
    /// Where.
    pub place: RemapPlace,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// The action `[console.keys]` names `name`, if it may be given keys;
/// else why not.
fn remappable_action(name: &str) -> Result<Action, String> {
    let action = KEYMAP.iter().map(|b| b.action).find(|a| a.name() == name);
    match action {
        Some(a) if KEYMAP.iter().any(|b| b.action == a && b.remappable()) => Ok(a),
        Some(_) => Err(format!(
            "{name} keeps its keys: those of the question, the filter and the command line are fixed"
        )),
        None => Err(format!("unknown action {name:?} in [console.keys]")),
    }
}

/// The bindings of [`KEYMAP`] with `remaps` (the lines of
/// `[console.keys]`, in file order): each replaces the keys of its action
/// where letters are keys. Every line that cannot be taken is an error: an
/// action that is unknown or keeps its keys, a key [`Key::parse`] cannot
/// read, no key at all, or a key that would mean two actions in one view
/// and mode (blamed on the later line; a built-in key is never blamed).
pub fn remapped(remaps: &[KeyRemap]) -> Result<Vec<Binding>, Vec<RemapError>> {
    let mut bindings = KEYMAP.to_vec();
    // Which line and key of `remaps` each key of each binding is.
    let mut origins: Vec<Vec<Option<(usize, usize)>>> =
        bindings.iter().map(|b| vec![None; b.keys.len()]).collect();
    let mut errors = Vec::new();
    for (n, remap) in remaps.iter().enumerate() {
        let action = match remappable_action(&remap.action) {
            Ok(a) => a,
            Err(message) => {
                errors.push(RemapError {
                    place: RemapPlace::Action(n),
                    message,
                    hint: format!(
                        "actions that take keys: {}",
                        Action::remappable().join(", ")
                    ),
                });
                continue;
            }
        };
        if remap.keys.is_empty() {
            let now = bindings
                .iter()
                .find(|b| b.action == action && b.remappable())
                .map_or_else(String::new, Binding::keys_label);
            errors.push(RemapError {
                place: RemapPlace::Action(n),
                message: format!("{} is given no key", remap.action),
                hint: format!(
                    "give it a key (\"X\") or a list ([\"X\", \"ctrl-x\"]), or leave it out to keep {now}"
                ),
            });
            continue;
        }
        let mut keys: Vec<Key> = Vec::new();
        let mut from = Vec::new();
        let mut readable = true;
        for (k, text) in remap.keys.iter().enumerate() {
            match Key::parse(text) {
                Some(key) if key == SUSPEND || key == REDRAW => {
                    readable = false;
                    let does = if key == SUSPEND {
                        "suspends the console (back with `fg`)"
                    } else {
                        "redraws the whole screen"
                    };
                    errors.push(RemapError {
                        place: RemapPlace::Key(n, k),
                        message: format!("{text:?} {does}; it cannot be given to {}", remap.action),
                        hint: "pick another key".into(),
                    });
                }
                Some(key) if keys.contains(&key) => {}
                Some(key) => {
                    keys.push(key);
                    from.push(Some((n, k)));
                }
                None => {
                    readable = false;
                    errors.push(RemapError {
                        place: RemapPlace::Key(n, k),
                        message: format!("{text:?} is not a key"),
                        hint: KEY_WORDS.into(),
                    });
                }
            }
        }
        if !readable {
            continue;
        }
        for (b, origin) in bindings.iter_mut().zip(&mut origins) {
            if b.action == action && b.remappable() {
                b.keys = Cow::Owned(keys.clone());
                origin.clone_from(&from);
            }
        }
    }
    errors.extend(conflicts(&bindings, &origins, remaps));
    if errors.is_empty() {
        return Ok(bindings);
    }
    errors.sort_by_key(|e| match e.place {
        RemapPlace::Action(n) => (n, 0),
        RemapPlace::Key(n, k) => (n, k),
    });
    Err(errors)
}

/// Every key of `remaps` that would mean two actions in one view and mode
/// of `bindings` (whose keys come from the places in `origins`), once
/// each, blamed on the later line.
fn conflicts(
    bindings: &[Binding],
    origins: &[Vec<Option<(usize, usize)>>],
    remaps: &[KeyRemap],
) -> Vec<RemapError> {
    let mut blamed: Vec<(usize, usize)> = Vec::new();
    let mut errors = Vec::new();
    for (i, a) in bindings.iter().enumerate() {
        for (j, b) in bindings.iter().enumerate().skip(i + 1) {
            if a.action == b.action || !a.views.meets(b.views) || !a.modes.meets(b.modes) {
                continue;
            }
            for (ka, oa) in a.keys.iter().zip(&origins[i]) {
                for (kb, ob) in b.keys.iter().zip(&origins[j]) {
                    if ka != kb {
                        continue;
                    }
                    let (at, this, other, other_given) = match (*oa, *ob) {
                        (None, None) => continue,
                        (Some(x), None) => (x, a, b, false),
                        (None, Some(y)) => (y, b, a, false),
                        (Some(x), Some(y)) if x > y => (x, a, b, true),
                        (Some(_), Some(y)) => (y, b, a, true),
                    };
                    if blamed.contains(&at) {
                        continue;
                    }
                    blamed.push(at);
                    let (this, other) = (this.action.name(), other.action.name());
                    let hint = if other_given {
                        format!(
                            "a key means one thing in a view: pick another key for {this} or for {other}"
                        )
                    } else {
                        format!(
                            "it is {other}'s key by default: pick another key for {this}, or give {other} another key in [console.keys] as well"
                        )
                    };
                    errors.push(RemapError {
                        place: RemapPlace::Key(at.0, at.1),
                        message: format!(
                            "key {:?} would mean both {this} and {other} in the {}",
                            remaps[at.0].keys[at.1],
                            a.views.shared_words(b.views)
                        ),
                        hint,
                    });
                }
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remap(action: &str, keys: &[&str]) -> KeyRemap {
        KeyRemap {
            action: action.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn errors(remaps: &[KeyRemap]) -> Vec<RemapError> {
        remapped(remaps).expect_err("refused")
    }

    #[test]
    fn keys_parse_from_characters_and_names() {
        let key = |code, modifiers| Some(Key { code, modifiers });
        let none = KeyModifiers::NONE;
        assert_eq!(Key::parse("q"), Some(Key::char('q')));
        assert_eq!(Key::parse("X"), Some(Key::char('X')));
        assert_eq!(Key::parse("?"), Some(Key::char('?')));
        assert_eq!(Key::parse("-"), Some(Key::char('-')));
        assert_eq!(Key::parse(" "), Some(Key::char(' ')));
        assert_eq!(Key::parse("Space"), Some(Key::char(' ')));
        assert_eq!(Key::parse("enter"), key(KeyCode::Enter, none));
        assert_eq!(Key::parse("ESC"), key(KeyCode::Esc, none));
        assert_eq!(Key::parse("PageDown"), key(KeyCode::PageDown, none));
        assert_eq!(Key::parse("pgup"), key(KeyCode::PageUp, none));
        assert_eq!(Key::parse("Shift-Tab"), key(KeyCode::BackTab, none));
        assert_eq!(Key::parse("f12"), key(KeyCode::F(12), none));
        assert_eq!(Key::parse("↓"), key(KeyCode::Down, none));
        assert_eq!(Key::parse("ctrl-f"), Some(Key::ctrl('f')));
        assert_eq!(Key::parse("Ctrl-F"), Some(Key::ctrl('f')), "one key");
        assert_eq!(Key::parse("ctrl--"), Some(Key::ctrl('-')));
        assert_eq!(
            Key::parse("alt-x"),
            key(KeyCode::Char('x'), KeyModifiers::ALT)
        );
        assert_eq!(
            Key::parse("ctrl-alt-Up"),
            key(KeyCode::Up, KeyModifiers::CONTROL | KeyModifiers::ALT)
        );
        for bad in [
            "", "qq", "ctrl-", "ctrl", "shift-x", "f0", "f13", "f+1", "hyper-x", "\u{1b}", "\t",
            "Entr",
        ] {
            assert_eq!(Key::parse(bad), None, "{bad:?}");
        }
        // Every key help shows reads back as itself.
        for b in KEYMAP {
            for k in b.keys.iter() {
                assert_eq!(Key::parse(&k.label()), Some(*k), "{}", k.label());
            }
        }
    }

    #[test]
    fn every_action_has_a_name_and_the_remappable_ones_are_those_with_keys() {
        let names = Action::remappable();
        for want in [
            "quit",
            "help",
            "approve",
            "fire",
            "hold",
            "abort",
            "open",
            "back",
            "down",
            "up",
            "toggle_log",
            "filter",
            "command",
            "top",
            "bottom",
            "page_up",
            "page_down",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        for fixed in [
            "press",
            "switch_button",
            "switch_line",
            "accept",
            "send",
            "none",
        ] {
            assert!(!names.contains(&fixed), "{fixed}");
        }
        let mut all: Vec<&str> = KEYMAP.iter().map(|b| b.action.name()).collect();
        all.dedup();
        for n in &all {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
        }
        assert_eq!(Action::Rollout(Verb::Abort).name(), "abort");
    }

    #[test]
    fn ctrl_z_is_kept_for_suspending() {
        let e = errors(&[remap("abort", &["ctrl-z"])]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("suspends the console"), "{e:?}");
        let e = errors(&[remap("abort", &["ctrl-l"])]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("redraws the whole screen"), "{e:?}");
    }

    #[test]
    fn a_key_meaning_two_things_is_refused_at_the_later_line() {
        // Against a built-in key: the remap is blamed.
        let e = errors(&[remap("abort", &["X", "q"])]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].place, RemapPlace::Key(0, 1));
        assert!(
            e[0].message
                .contains("\"q\" would mean both abort and quit"),
            "{e:?}"
        );
        assert!(
            e[0].message.contains("fleet, app and rollout views"),
            "{e:?}"
        );
        assert!(e[0].hint.contains("quit's key by default"), "{e:?}");
        // Between two lines: the later one.
        let e = errors(&[remap("quit", &["Q"]), remap("toggle_log", &["Z", "Q"])]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].place, RemapPlace::Key(1, 1));
        assert!(e[0].message.contains("both toggle_log and quit"), "{e:?}");
        // Only where both apply: Enter opens in the fleet view alone.
        let e = errors(&[remap("command", &["Enter"])]);
        assert!(
            e[0].message
                .contains("both command and open in the fleet view"),
            "{e:?}"
        );
        // A key of a typing mode is no conflict: Enter presses in the
        // question, and may open in the fleet view as it does by default.
        assert!(remapped(&[remap("open", &["Enter", "o"])]).is_ok());
    }

    #[test]
    fn unknown_actions_unreadable_keys_and_empty_lists_are_refused() {
        let e = errors(&[
            remap("abrot", &["X"]),
            remap("press", &["p"]),
            remap("up", &["k", "ctrl-", "Upp"]),
            remap("down", &[]),
        ]);
        let places: Vec<RemapPlace> = e.iter().map(|e| e.place).collect();
        assert_eq!(
            places,
            [
                RemapPlace::Action(0),
                RemapPlace::Action(1),
                RemapPlace::Key(2, 1),
                RemapPlace::Key(2, 2),
                RemapPlace::Action(3),
            ]
        );
        assert!(e[0].message.contains("unknown action \"abrot\""), "{e:?}");
        assert!(e[0].hint.contains("abort"), "{e:?}");
        assert!(e[1].message.contains("press keeps its keys"), "{e:?}");
        assert!(e[2].message.contains("\"ctrl-\" is not a key"), "{e:?}");
        assert!(e[2].hint.contains("PageDown"), "{e:?}");
        assert!(e[4].message.contains("down is given no key"), "{e:?}");
        assert!(e[4].hint.contains("j, ↓"), "{e:?}");
    }
}
