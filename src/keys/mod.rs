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

mod action;
mod key;
mod remap;
mod table;
mod views;

pub use action::Action;
pub use key::Key;
pub use remap::{KeyRemap, RemapError, RemapPlace, remapped};
pub use table::{Binding, KEYMAP, REDRAW, SUSPEND};
pub use views::{Modes, Views};

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyModifiers};

    use super::*;
    use crate::model::Verb;

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
