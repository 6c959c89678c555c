//! The one table of the console's bindings ([`KEYMAP`]): keys, what
//! they do, in which views and modes, and how help and footer describe
//! them; and the two keys taken before it ([`SUSPEND`], [`REDRAW`]).

use std::borrow::Cow;

use crossterm::event::KeyCode;

use super::{Action, Key, Modes, Views};
use crate::model::Verb;

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
