//! What a key may ask the console to do ([`Action`]), and its name in
//! `[console.keys]`.

use super::KEYMAP;
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
