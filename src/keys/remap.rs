//! `[console.keys]` checked against the table ([`remapped`]): an unknown
//! action, a key that cannot be read and a key that would mean two things
//! in one view and mode refused, at the line at fault.

use std::borrow::Cow;

use super::key::KEY_WORDS;
use super::{Action, Binding, KEYMAP, Key, REDRAW, SUSPEND};

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

/// Where a key of a binding was written: the line and the key of
/// `[console.keys]`; `None` for a built-in key.
type Origin = Option<(usize, usize)>;

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
        let Some(action) = action_of(n, remap, &bindings, &mut errors) else {
            continue;
        };
        let Some((keys, from)) = keys_of(n, remap, &mut errors) else {
            continue;
        };
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

/// The action line `n` of `[console.keys]` (`remap`) gives keys to; an
/// error (and `None`) when it is unknown, keeps its keys or is given none.
fn action_of(
    n: usize,
    remap: &KeyRemap,
    bindings: &[Binding],
    errors: &mut Vec<RemapError>,
) -> Option<Action> {
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
            return None;
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
        return None;
    }
    Some(action)
}

/// The keys line `n` of `[console.keys]` (`remap`) gives, each once, and
/// where each was written; errors (and `None`) when one cannot be read
/// or is taken before the keymap.
fn keys_of(
    n: usize,
    remap: &KeyRemap,
    errors: &mut Vec<RemapError>,
) -> Option<(Vec<Key>, Vec<Origin>)> {
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
    readable.then_some((keys, from))
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
