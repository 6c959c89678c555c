//! The console's keymap: the one table of keys ([`KEYMAP`], kept with the
//! actions and the reading of keys in [`crate::keys`], below the config
//! that checks `[console.keys]` against it) with the config's remaps,
//! looked up by the view shown and the mode open. Key handling, the `?`
//! help popup and the footer are all generated from it, so they cannot
//! drift apart.

use crossterm::event::KeyEvent;

use super::view::View;
use crate::keys::{Action, Binding, KEYMAP, Key, KeyRemap, Modes, RemapError, Views, remapped};

/// The keys in effect: [`KEYMAP`] with the keys `[console.keys]` gives
/// actions (see [`crate::keys`]). [`Keymap::default`] is [`KEYMAP`] as it
/// is. Built once when the console opens; looking a key up does no I/O.
#[derive(Clone, Debug)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: KEYMAP.to_vec(),
        }
    }
}

impl Keymap {
    /// [`KEYMAP`] with `remaps` (the lines of `[console.keys]`, in file
    /// order), or every line that cannot be taken (see [`remapped`]).
    pub fn new(remaps: &[KeyRemap]) -> Result<Keymap, Vec<RemapError>> {
        remapped(remaps).map(|bindings| Keymap { bindings })
    }

    /// The binding `ev` triggers in `view` in `modes` (what is open, see
    /// [`Mode::modes`](super::Mode::modes)), if any.
    pub fn lookup(&self, ev: &KeyEvent, view: View, modes: Modes) -> Option<&Binding> {
        self.bindings(view, modes)
            .find(|b| b.keys.iter().any(|k| k.matches(ev)))
    }

    /// The bindings that apply in `view` in `modes`, in table order.
    pub fn bindings(&self, view: View, modes: Modes) -> impl Iterator<Item = &Binding> {
        self.bindings_in(view, modes)
    }

    fn bindings_in(&self, view: View, modes: Modes) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(move |b| b.views.meets(views_of(view)) && b.modes.meets(modes))
    }

    /// The bindings the help popup lists over `view`: those of the view
    /// itself and those of the help popup.
    pub fn help_bindings(&self, view: View) -> impl Iterator<Item = &Binding> {
        self.bindings_in(view, Modes::BROWSING)
    }

    /// The first key bound to `action` in `view` in one of `modes`, as
    /// shown ("Enter"), for popups that name their keys; "?" if none is.
    pub fn key_label(&self, action: Action, view: View, modes: Modes) -> String {
        self.bindings_in(view, modes)
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first())
            .map_or_else(|| "?".into(), Key::label)
    }
}

/// The first key bound to `action` in `view` in one of `modes`, as shown
/// ("Enter"), in the built-in table. Right for the keys of the modes with
/// a line to type in, which `[console.keys]` never changes; for the others
/// ask the console's [`Keymap`].
pub fn key_label(action: Action, view: View, modes: Modes) -> String {
    KEYMAP
        .iter()
        .filter(|b| b.views.meets(views_of(view)) && b.modes.meets(modes))
        .find(|b| b.action == action)
        .and_then(|b| b.keys.first())
        .map_or_else(|| "?".into(), Key::label)
}

/// The set holding only `view`.
fn views_of(view: View) -> Views {
    match view {
        View::Fleet => Views::FLEET,
        View::App(_) => Views::APP,
        View::History => Views::HISTORY,
        View::Deployment(_) => Views::DEPLOYMENT,
        View::Events => Views::EVENTS,
        View::Logs => Views::LOGS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Verb;
    use crate::tui::components::TextInput;
    use crate::tui::mode::Mode;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn ev(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    fn remap(action: &str, keys: &[&str]) -> KeyRemap {
        KeyRemap {
            action: action.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn keymap(remaps: &[KeyRemap]) -> Keymap {
        Keymap::new(remaps).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// The action `ev` triggers in the fleet view, nothing open.
    fn fleet_action(k: &Keymap, ev: KeyEvent) -> Option<Action> {
        k.lookup(&ev, View::Fleet, Mode::Normal.modes())
            .map(|b| b.action)
    }

    #[test]
    fn keys_resolve() {
        let k = Keymap::default();
        let a = |code, m| fleet_action(&k, ev(code, m));
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
        let k = Keymap::default();
        let enter = ev(KeyCode::Enter, KeyModifiers::NONE);
        let q = ev(KeyCode::Char('q'), KeyModifiers::NONE);
        let act = |e: &KeyEvent, v, m: &Mode| k.lookup(e, v, m.modes()).map(|b| b.action);
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
        let k = Keymap::default();
        for view in [
            View::Fleet,
            View::App(0),
            View::History,
            View::Deployment(crate::tui::Shown::Id(1)),
            View::Events,
            View::Logs,
        ] {
            for mode in &modes {
                let keys: Vec<Key> = k
                    .bindings(view, mode.modes())
                    .flat_map(|b| b.keys.iter().copied())
                    .collect();
                for (i, key) in keys.iter().enumerate() {
                    assert!(
                        !keys[i + 1..].contains(key),
                        "{key:?} bound twice in {view:?}"
                    );
                }
            }
        }
        let confirm: Vec<Key> = KEYMAP
            .iter()
            .filter(|b| b.modes.meets(Modes::CONFIRM))
            .flat_map(|b| b.keys.iter().copied())
            .collect();
        for (i, key) in confirm.iter().enumerate() {
            assert!(!confirm[i + 1..].contains(key), "{key:?} bound twice");
        }
        // The same check as a remap gets: the built-in table passes it.
        assert!(Keymap::new(&[]).is_ok());
        assert!(KEYMAP.iter().all(|b| !b.keys.is_empty()));
    }

    #[test]
    fn labels() {
        assert_eq!(Key::ctrl('c').label(), "Ctrl-c");
        assert_eq!(Key::plain(KeyCode::Up).label(), "↑");
        assert_eq!(Key::plain(KeyCode::F(5)).label(), "F5");
        let quit = KEYMAP.iter().find(|b| b.action == Action::Quit).unwrap();
        assert_eq!(quit.keys_label(), "q, Ctrl-c");
        assert_eq!(key_label(Action::Back, View::Fleet, Modes::HELP), "Esc");
    }

    #[test]
    fn a_remap_replaces_the_keys_where_letters_are_keys() {
        let k = keymap(&[
            remap("quit", &["Q"]),
            remap("down", &["n", "Down", "n"]),
            remap("abort", &["X"]),
            remap("fire", &["ctrl-F"]),
            remap("back", &["Esc"]),
        ]);
        let plain = |c| ev(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(fleet_action(&k, plain('Q')), Some(Action::Quit));
        assert_eq!(fleet_action(&k, plain('q')), None, "q no longer quits");
        assert_eq!(
            fleet_action(&k, ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            None,
            "quit's keys are Q only"
        );
        assert_eq!(fleet_action(&k, plain('n')), Some(Action::Down));
        assert_eq!(fleet_action(&k, plain('j')), None);
        assert_eq!(
            fleet_action(&k, plain('X')),
            Some(Action::Rollout(Verb::Abort))
        );
        assert_eq!(fleet_action(&k, plain('x')), None);
        assert_eq!(
            fleet_action(&k, ev(KeyCode::Char('f'), KeyModifiers::CONTROL)),
            Some(Action::Rollout(Verb::Fire))
        );
        assert_eq!(
            fleet_action(&k, ev(KeyCode::Backspace, KeyModifiers::NONE)),
            None
        );
        // In the help popup too, in both views.
        assert_eq!(
            k.lookup(&plain('Q'), View::App(0), Mode::Help.modes())
                .map(|b| b.action),
            Some(Action::Quit)
        );
        // The typing modes keep theirs: Ctrl-c quits, Esc closes.
        let filter = Mode::Filter(TextInput::new(8));
        let ctrl_c = ev(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            k.lookup(&ctrl_c, View::Fleet, filter.modes())
                .map(|b| b.action),
            Some(Action::Quit)
        );
        assert!(k.lookup(&plain('Q'), View::Fleet, filter.modes()).is_none());
        // Help and footer read the new keys; duplicates are kept once.
        let help: Vec<String> = k
            .help_bindings(View::Fleet)
            .map(|b| b.keys_label())
            .collect();
        assert!(help.contains(&"Q".to_string()), "{help:?}");
        assert!(help.contains(&"n, ↓".to_string()), "{help:?}");
        assert!(help.contains(&"Ctrl-f".to_string()), "{help:?}");
        assert_eq!(k.key_label(Action::Back, View::Fleet, Modes::HELP), "Esc");
        assert_eq!(
            k.key_label(Action::Rollout(Verb::Abort), View::App(0), Modes::NORMAL),
            "X"
        );
        // Keys freed by a remap may be taken by another action.
        let k = keymap(&[remap("quit", &["Q"]), remap("hold", &["q"])]);
        assert_eq!(
            fleet_action(&k, plain('q')),
            Some(Action::Rollout(Verb::Hold))
        );
    }
}
