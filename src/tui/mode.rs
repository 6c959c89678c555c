//! What is open over the view: nothing, the help, the question before an
//! action, the `/` filter or the `:` command line. One enum instead of a
//! flag per popup, so that two things are never open at once and the
//! keymap can say in which of them a key applies
//! ([`Modes`](crate::keys::Modes)).

pub use super::components::Pending;
use super::components::{Confirm, TextInput};
use crate::keys::Modes;

/// The longest filter, in characters.
pub const FILTER_MAX: usize = 64;
/// The longest command line, in characters.
pub const COMMAND_MAX: usize = 200;

/// What is open over the view; at most one thing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Nothing: keys move, open and act.
    #[default]
    Normal,
    /// The list of keys.
    Help,
    /// The question before a destructive action, with the action it
    /// confirms, the lines being typed and the button focused.
    Confirm(Box<Confirm>),
    /// The `/` filter being typed (the fleet view filters as it changes).
    Filter(TextInput),
    /// The `:` command line being typed.
    Command(TextInput),
    /// A deploy or a rollback is being checked before it is asked; Esc
    /// stops waiting for it.
    Pending(Pending),
}

impl Mode {
    /// The set of [`Modes`] holding only this one, as the keymap looks
    /// keys up by.
    pub fn modes(&self) -> Modes {
        match self {
            Mode::Normal => Modes::NORMAL,
            Mode::Help => Modes::HELP,
            Mode::Confirm(_) => Modes::CONFIRM,
            Mode::Filter(_) => Modes::FILTER,
            Mode::Command(_) => Modes::COMMAND,
            Mode::Pending(_) => Modes::PENDING,
        }
    }

    /// The line being typed, in the modes that have one.
    pub fn input(&self) -> Option<&TextInput> {
        match self {
            Mode::Confirm(c) => Some(c.line()),
            Mode::Filter(t) | Mode::Command(t) => Some(t),
            Mode::Normal | Mode::Help | Mode::Pending(_) => None,
        }
    }

    /// The line being typed, to edit.
    pub fn input_mut(&mut self) -> Option<&mut TextInput> {
        match self {
            Mode::Confirm(c) => Some(c.line_mut()),
            Mode::Filter(t) | Mode::Command(t) => Some(t),
            Mode::Normal | Mode::Help | Mode::Pending(_) => None,
        }
    }

    /// What the footer says after the keys of the mode, if anything.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Mode::Confirm(c) if c.name.is_some() => Some("type a reason and the app's name"),
            Mode::Confirm(c) if c.action.needs_reason() => Some("type a reason (required)"),
            Mode::Confirm(_) => Some("type a reason"),
            _ => None,
        }
    }
}
