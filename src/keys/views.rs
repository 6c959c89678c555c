//! Where a binding applies: a set of views ([`Views`]) and a set of
//! modes ([`Modes`]).

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
    pub(super) fn shared_words(self, other: Views) -> String {
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
