//! Validating `[console]`: its durations, and `[console.keys]` checked
//! against the console's key table.

use std::collections::BTreeMap;

use super::bounds::{REFRESH, RETENTION};
use super::context::Ctx;
use crate::config::Console;
use crate::config::raw::{RawConsole, RawKeys, S};
use crate::keys::{KeyRemap, RemapPlace, remapped};

/// `[console]`, with the defaults for what it leaves out.
pub(super) fn console(cx: &mut Ctx<'_>, c: &RawConsole) -> Console {
    let d = Console::default();
    let refresh = cx.duration(&c.refresh, "refresh", d.refresh, REFRESH);
    let theme = cx.opt_string(&c.theme).unwrap_or(d.theme);
    let retention = cx.duration(&c.retention, "retention", d.retention, RETENTION);
    let keys = c
        .keys
        .as_ref()
        .map_or(d.keys, |table| console_keys(cx, table));
    Console {
        refresh,
        theme,
        retention,
        read_only: c.read_only.unwrap_or(d.read_only),
        keys,
        mouse: c.mouse.unwrap_or(d.mouse),
    }
}

/// `[console.keys]`, in file order. What the keymap refuses (an unknown
/// action, a key it cannot read, a key that would mean two things) is an
/// error at the action's name or at the key.
fn console_keys(cx: &mut Ctx<'_>, table: &BTreeMap<S<String>, S<RawKeys>>) -> Vec<KeyRemap> {
    let mut lines: Vec<(&S<String>, Vec<S<String>>)> = table
        .iter()
        .map(|(action, keys)| {
            let keys = match keys.get_ref() {
                RawKeys::One(key) => vec![S::new(keys.span(), key.clone())],
                RawKeys::List(list) => list.clone(),
            };
            (action, keys)
        })
        .collect();
    lines.sort_by_key(|(action, _)| action.span().start);
    let remaps: Vec<KeyRemap> = lines
        .iter()
        .map(|(action, keys)| KeyRemap {
            action: action.get_ref().clone(),
            keys: keys.iter().map(|k| k.get_ref().clone()).collect(),
        })
        .collect();
    if let Err(errors) = remapped(&remaps) {
        for e in errors {
            let span = match e.place {
                RemapPlace::Action(n) => lines.get(n).map(|(action, _)| action.span()),
                RemapPlace::Key(n, k) => {
                    lines.get(n).and_then(|(_, keys)| keys.get(k)).map(S::span)
                }
            };
            let span = span.unwrap_or_default();
            cx.error(span, e.message, Some(e.hint));
        }
    }
    remaps
}
