//! Shell completion: the script `rollguard completions SHELL` prints, and
//! what the shell is offered at each TAB. The script is clap_complete's
//! dynamic one (`clap_complete::env`): at a TAB the shell runs `rollguard`
//! again with `COMPLETE=SHELL` and the words typed, and the answer comes
//! from the same clap definition as the parser, so subcommands and flags
//! never go stale; an app (`deploy <TAB>`) is one the config or the history
//! names, and a release (`deploy web <TAB>`, `rollback web --to <TAB>`)
//! one the history has seen of that app. Nothing here writes: the config
//! is read as TOML without its checks (an unset `${NAME}` does not hide
//! the apps), the history is opened read-only when it exists, and anything
//! that cannot be read offers nothing.

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::store::{Location, LocationSource, Store};

/// The variable that makes `rollguard` answer a TAB instead of running.
pub const VAR: &str = "COMPLETE";

/// A shell `rollguard completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash 4.4 or later.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// The script that registers `rollguard`'s completion in `shell`; at a TAB
/// it runs `completer` (the program as it was called, found on the PATH
/// when it was called by its name).
pub fn script(shell: Shell, completer: &str) -> std::io::Result<Vec<u8>> {
    let adapter: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
    };
    let mut out = Vec::new();
    adapter.write_registration(VAR, "rollguard", "rollguard", completer, &mut out)?;
    Ok(out)
}

/// Apps to offer: those the config names (in its order), then those only
/// the history knows.
pub fn apps() -> Vec<CompletionCandidate> {
    let words = typed();
    let mut names = configured_apps(&words);
    if let Some(store) = history(&words)
        && let Ok(more) = store.history_apps()
    {
        for a in more {
            if !names.contains(&a) {
                names.push(a);
            }
        }
    }
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// Releases to offer for the app typed after `deploy` or `rollback`: those
/// the history has seen of it, most recently first seen first, each with
/// whether it was seen healthy.
pub fn releases() -> Vec<CompletionCandidate> {
    let words = typed();
    let Some(app) = app_typed(&words) else {
        return Vec::new();
    };
    let Some(store) = history(&words) else {
        return Vec::new();
    };
    let Ok(found) = store.releases(&app) else {
        return Vec::new();
    };
    found
        .into_iter()
        .map(|r| {
            let help = if r.last_healthy_ms.is_some() {
                "seen healthy"
            } else {
                "never seen healthy"
            };
            CompletionCandidate::new(r.version).help(Some(help.into()))
        })
        .collect()
}

/// The words the shell passed: what follows `--` in this process's
/// arguments (`rollguard -- rollguard deploy web ''`), else none.
fn typed() -> Vec<String> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let after = args
        .iter()
        .position(|a| a == "--")
        .map_or(args.len(), |i| i + 1);
    args[after..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The value of `--NAME VALUE` or `--NAME=VALUE` among `words`.
fn flag(words: &[String], name: &str) -> Option<String> {
    let long = format!("--{name}");
    let joined = format!("--{name}=");
    words.iter().enumerate().find_map(|(i, w)| {
        if *w == long {
            words.get(i + 1).cloned()
        } else {
            w.strip_prefix(&joined).map(str::to_string)
        }
    })
}

/// Flags of the command line that take a value (the word after them is
/// not a positional argument).
const VALUED: &[&str] = &[
    "--config",
    "--db",
    "--theme",
    "--strategy",
    "--reason",
    "--confirm-app",
    "--to",
];

/// The first positional word after `deploy` or `rollback` among `words`
/// (the app), before the last word (the one being completed).
fn app_typed(words: &[String]) -> Option<String> {
    let at = words
        .iter()
        .position(|w| w == "deploy" || w == "rollback")?;
    let done = words.get(at + 1..words.len().saturating_sub(1))?;
    let mut rest = done.iter();
    while let Some(w) = rest.next() {
        if VALUED.contains(&w.as_str()) {
            rest.next();
        } else if !w.starts_with('-') {
            return Some(w.clone());
        }
    }
    None
}

/// The apps the config names (`[[app]] name`), read as TOML without its
/// checks; none when there is no config or it does not parse.
fn configured_apps(words: &[String]) -> Vec<String> {
    let explicit = flag(words, "config").map(PathBuf::from);
    let Ok(path) = crate::config::discover(explicit.as_deref()) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    crate::config::app_names(&text)
}

/// The history, read-only, when it exists: `--db`, else `$ROLLGUARD_DB`,
/// else the default file (`[store] url` is not read: the config is read
/// unchecked here). A location that cannot be read offers nothing.
fn history(words: &[String]) -> Option<Store> {
    let env = |name: &str| std::env::var(name).ok();
    let location = match flag(words, "db") {
        Some(text) => Location::parse(&text, LocationSource::CommandLine, &env).ok()?,
        None => match env("ROLLGUARD_DB").filter(|t| !t.trim().is_empty()) {
            Some(text) => Location::parse(&text, LocationSource::Environment, &env).ok()?,
            None => Location::File(crate::config::default_db_path()),
        },
    };
    if location.file().is_some_and(|path| !path.exists()) {
        return None;
    }
    Store::open_read_only_at(&location).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_app_is_the_first_word_after_the_command() {
        assert_eq!(
            app_typed(&words("rollguard deploy web ")),
            Some("web".into())
        );
        assert_eq!(
            app_typed(&words("rollguard --db h.db deploy --strategy canary web v")),
            Some("web".into())
        );
        assert_eq!(
            app_typed(&words("rollguard rollback web --reason why --to ")),
            Some("web".into())
        );
        // The app is the word being completed: no app yet.
        assert_eq!(app_typed(&words("rollguard deploy we")), None);
        assert_eq!(app_typed(&words("rollguard status web")), None);
    }

    #[test]
    fn flags_are_read_with_a_space_or_an_equals_sign() {
        let w = words("rollguard --config a.toml --db=h.db deploy");
        assert_eq!(flag(&w, "config").as_deref(), Some("a.toml"));
        assert_eq!(flag(&w, "db").as_deref(), Some("h.db"));
        assert_eq!(flag(&w, "theme"), None);
    }
}
