//! Reading the fleet: finding the config file, parsing it, replacing
//! `${NAME}` from the environment, and validating it into an immutable
//! [`Fleet`]. Every error names `FILE:LINE:COL` and, where it helps, what to
//! write instead; all errors of a file are reported at once.

mod duration;
mod literal;
mod notify;
mod raw;
mod secrets;
mod types;
mod validate;

pub use validate::{LOCAL_HOST, PROBE_PLACEHOLDERS, valid_name};

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Code;
use crate::printable::printable;

pub use duration::{format_duration, parse_duration};
pub use notify::{COMMAND_PLACEHOLDERS, EmailSpec, PAGERDUTY_URL, Receiver, ReceiverKind, SmtpTls};
pub use secrets::{MASK, SECRET_MIN_CHARS, Secrets};
pub use types::*;

/// One problem in a config file, at a place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

/// Every text of a config error is printed as [`printable`] makes it: a
/// value from the file (an app's name holding an escape sequence) or its
/// path never reaches the terminal raw.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            printable(&self.file.display().to_string()),
            self.line,
            self.col,
            printable(&self.message)
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {}", printable(h))?;
        }
        Ok(())
    }
}

/// Why a config could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// No file was given and none was found where rollguard looks.
    NotFound {
        /// Every place that was tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The file could not be read.
    Read {
        /// The file.
        file: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file was read but is invalid; every problem found.
    Invalid(Vec<ConfigError>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotFound { tried } => {
                writeln!(f, "{}: no config file found; looked in:", Code::Config)?;
                for t in tried {
                    writeln!(f, "  {}", printable(&t.display().to_string()))?;
                }
                write!(
                    f,
                    "  hint: pass --config FILE, set ROLLGUARD_CONFIG, or start from config.example.toml"
                )
            }
            LoadError::Read { file, error } => {
                write!(
                    f,
                    "{}: cannot read {}: {error}",
                    Code::Config,
                    printable(&file.display().to_string())
                )
            }
            LoadError::Invalid(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Where the config is looked for, in order: `explicit` (`--config`),
/// `$ROLLGUARD_CONFIG`, `./rollguard.toml`, `$XDG_CONFIG_HOME/rollguard/config.toml`.
/// Returns the first that exists, or every place tried.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ROLLGUARD_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut tried = vec![PathBuf::from("./rollguard.toml")];
    tried.push(xdg_dir("XDG_CONFIG_HOME", ".config").join("rollguard/config.toml"));
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(LoadError::NotFound { tried }),
    }
}

/// `$VAR` if set and absolute, else `$HOME/fallback` (the XDG rule).
pub fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => home_dir().join(fallback),
    }
}

/// The user's home folder (`$HOME`, else `/`).
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// The default history database: `$XDG_DATA_HOME/rollguard/history.db`.
pub fn default_db_path() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share").join("rollguard/history.db")
}

/// The apps a config's text names (`[[app]] name`), in its order, read as
/// TOML without any check (for shell completion: an unset `${NAME}` or a
/// mistake elsewhere does not hide them); none when it does not parse.
pub fn app_names(text: &str) -> Vec<String> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let apps = doc.get("app").and_then(toml::Value::as_array);
    apps.into_iter()
        .flatten()
        .filter_map(|a| a.get("name")?.as_str().map(str::to_string))
        .collect()
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Fleet, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    parse(path, &text, &|name| std::env::var(name).ok())
}

/// Validates `text` as if read from `path`; `env` answers `${NAME}`.
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Fleet, LoadError> {
    validate::validate(path, text, env).map_err(LoadError::Invalid)
}
