//! The one table of keys. Key handling, the `?` help popup and the footer
//! are all generated from [`KEYMAP`], so they cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::control::Verb;

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
    /// Close the popup, or go back to the fleet.
    Back,
    /// Show or hide the log pane.
    ToggleLog,
    /// Show or hide the help popup.
    Help,
    /// Ask to send a command to the selected app's rollout.
    Rollout(Verb),
    /// Send the command the open question asks about.
    Send,
    /// Nothing: the key is not bound here.
    None,
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere.
    Global,
    /// In tables (fleet and app views).
    Tables,
    /// In the fleet view.
    Fleet,
    /// In the app view.
    App,
    /// On the rollout of the selected app (fleet and app views).
    Rollout,
}

impl Scope {
    /// How the help popup names it.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Global => "",
            Scope::Tables => "",
            Scope::Fleet => "fleet",
            Scope::App => "app",
            Scope::Rollout => "rollout",
        }
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

/// A binding: keys, what they do, and how help and footer describe it.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The keys; the first is the one shown in the footer.
    pub keys: &'static [Key],
    /// What they do.
    pub action: Action,
    /// Where they apply.
    pub scope: Scope,
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
}

/// Every key of the console, most important first (the footer is cut
/// from the right on narrow terminals).
pub const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[Key::char('q'), Key::ctrl('c')],
        action: Action::Quit,
        scope: Scope::Global,
        help: "quit",
        footer: Some("quit"),
    },
    Binding {
        keys: &[Key::char('?')],
        action: Action::Help,
        scope: Scope::Global,
        help: "show / hide this help",
        footer: Some("help"),
    },
    Binding {
        keys: &[Key::char('a')],
        action: Action::Rollout(Verb::Approve),
        scope: Scope::Rollout,
        help: "approve the step the rollout waits on",
        footer: Some("approve"),
    },
    Binding {
        keys: &[Key::char('f')],
        action: Action::Rollout(Verb::Fire),
        scope: Scope::Rollout,
        help: "fire the armed rollback now",
        footer: Some("fire rollback"),
    },
    Binding {
        keys: &[Key::char('h')],
        action: Action::Rollout(Verb::Hold),
        scope: Scope::Rollout,
        help: "hold the armed rollback",
        footer: Some("hold"),
    },
    Binding {
        keys: &[Key::char('x')],
        action: Action::Rollout(Verb::Abort),
        scope: Scope::Rollout,
        help: "abort the rollout and roll back",
        footer: Some("abort"),
    },
    Binding {
        keys: &[Key::plain(KeyCode::Enter)],
        action: Action::Open,
        scope: Scope::Fleet,
        help: "open the selected app",
        footer: Some("open"),
    },
    Binding {
        keys: &[Key::plain(KeyCode::Esc), Key::plain(KeyCode::Backspace)],
        action: Action::Back,
        scope: Scope::Global,
        help: "close popup / back to fleet",
        footer: Some("back"),
    },
    Binding {
        keys: &[Key::char('j'), Key::plain(KeyCode::Down)],
        action: Action::Down,
        scope: Scope::Tables,
        help: "select next row",
        footer: Some("down"),
    },
    Binding {
        keys: &[Key::char('k'), Key::plain(KeyCode::Up)],
        action: Action::Up,
        scope: Scope::Tables,
        help: "select previous row",
        footer: Some("up"),
    },
    Binding {
        keys: &[Key::char('l')],
        action: Action::ToggleLog,
        scope: Scope::Global,
        help: "show / hide the log pane",
        footer: Some("logs"),
    },
    Binding {
        keys: &[Key::char('g'), Key::plain(KeyCode::Home)],
        action: Action::Top,
        scope: Scope::Tables,
        help: "select first row",
        footer: None,
    },
    Binding {
        keys: &[Key::char('G'), Key::plain(KeyCode::End)],
        action: Action::Bottom,
        scope: Scope::Tables,
        help: "select last row",
        footer: None,
    },
    Binding {
        keys: &[Key::plain(KeyCode::PageUp), Key::ctrl('u')],
        action: Action::PageUp,
        scope: Scope::Tables,
        help: "page up",
        footer: None,
    },
    Binding {
        keys: &[Key::plain(KeyCode::PageDown), Key::ctrl('d')],
        action: Action::PageDown,
        scope: Scope::Tables,
        help: "page down",
        footer: None,
    },
];

/// The binding `ev` triggers, if any. Scope is not checked here: the
/// console decides what an action means where it is.
pub fn lookup(ev: &KeyEvent) -> Option<&'static Binding> {
    KEYMAP.iter().find(|b| b.keys.iter().any(|k| k.matches(ev)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    #[test]
    fn keys_resolve() {
        let a = |code, m| lookup(&ev(code, m)).map(|b| b.action);
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
    fn no_key_is_bound_twice() {
        let keys: Vec<Key> = KEYMAP.iter().flat_map(|b| b.keys.iter().copied()).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(k), "{k:?} bound twice");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(Key::ctrl('c').label(), "Ctrl-c");
        assert_eq!(Key::plain(KeyCode::Up).label(), "↑");
        let quit = KEYMAP.iter().find(|b| b.action == Action::Quit).unwrap();
        assert_eq!(quit.keys_label(), "q, Ctrl-c");
    }
}
