//! `[store]`: where the history is, as the file gives it.

use std::fmt;
use std::path::PathBuf;

use crate::config::ConfigError;

/// `[store] url`: a history file's path or a `postgres://` URL, each
/// `${NAME}` expanded. Which store it names is read above the config (by
/// `store::Location`), which reports a bad one with [`StoreUrl::error`].
/// The text may hold a password (from `${NAME}`): it is never shown, and
/// its `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The value, expanded.
    text: String,
    /// The config file it is written in.
    file: PathBuf,
    /// Its 1-based line.
    line: usize,
    /// Its 1-based column, in characters.
    col: usize,
}

impl StoreUrl {
    /// `text` as written at `file:line:col`.
    pub(crate) fn new(text: String, file: PathBuf, line: usize, col: usize) -> StoreUrl {
        StoreUrl {
            text,
            file,
            line,
            col,
        }
    }

    /// The value, `${NAME}` expanded: never to be printed or logged (read
    /// it as a location, which shows itself without its password).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// An error about the value, at its place in the file.
    pub fn error(&self, message: impl Into<String>, hint: Option<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StoreUrl({}:{}:{})",
            self.file.display(),
            self.line,
            self.col
        )
    }
}
