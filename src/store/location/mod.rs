//! Where the history is: an SQLite file (a path, the default) or a
//! PostgreSQL database (a `postgres://` or `postgresql://` URL, configured
//! as libpq users configure it: see [`postgres`]).
//!
//! It is given by `--db`, else `$ROLLGUARD_DB`, else `[store] url`, else
//! the default file (`$XDG_DATA_HOME/rollguard/history.db`); the caller
//! picks which text applies and says where it came from ([`Source`]).
//! Anything that looks like a URL of another scheme is refused: a path
//! never has `scheme://` in it by accident, and a typo in a URL must not
//! create a folder named `postgres:` with an SQLite file inside.

pub mod postgres;

use std::fmt;
use std::path::{Path, PathBuf};

pub use postgres::{PgSettings, SslMode};

/// Where a location's text came from: it decides whether a password may
/// be written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--db` on the command line, which every user of the machine can
    /// read in the process list: no password.
    CommandLine,
    /// `$ROLLGUARD_DB`.
    Environment,
    /// `[store] url` of the config (where a password comes from `${NAME}`).
    Config,
}

impl Source {
    /// How a message names it.
    pub fn words(self) -> &'static str {
        match self {
            Source::CommandLine => "--db",
            Source::Environment => "$ROLLGUARD_DB",
            Source::Config => "[store] url",
        }
    }
}

/// Where the history is.
#[derive(Clone, PartialEq)]
pub enum Location {
    /// An SQLite file.
    File(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgSettings>),
}

/// A location that cannot be used, said with where it came from and what
/// to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_words}: {message}")]
pub struct LocationError {
    /// Where the text came from (`--db`, `$ROLLGUARD_DB`, `[store] url`).
    pub source_words: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl Location {
    /// Reads `text` as a location: a `postgres://` or `postgresql://` URL,
    /// or a path. A URL of any other scheme is an error, and so is a
    /// password written in a URL given on the command line. `env` reads
    /// the environment (libpq's `PG…` variables fill what the URL leaves
    /// out; see [`PgSettings::parse`]).
    pub fn parse(
        text: &str,
        source: Source,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Location, LocationError> {
        let err = |message: String| LocationError {
            source_words: source.words(),
            message,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(err(
                "is empty: give a history file's path or a postgres:// URL".into(),
            ));
        }
        match scheme(text) {
            None => Ok(Location::File(PathBuf::from(text))),
            Some(s)
                if s.eq_ignore_ascii_case("postgres") || s.eq_ignore_ascii_case("postgresql") =>
            {
                PgSettings::parse(text, source, env)
                    .map(|p| Location::Postgres(Box::new(p)))
                    .map_err(err)
            }
            Some(s) => Err(err(format!(
                "{s}:// is not a store rollguard knows: give a history file's path \
                 (SQLite) or a postgres:// URL (PostgreSQL)"
            ))),
        }
    }

    /// The history file, for SQLite.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// The folder on this machine that holds what rollguard keeps beside
    /// the history (rollout workers' logs): the history file's folder, or
    /// for PostgreSQL `fallback` (the default history's folder).
    pub fn local_dir(&self, fallback: &Path) -> PathBuf {
        match self {
            Location::File(p) => p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            Location::Postgres(_) => fallback.to_path_buf(),
        }
    }
}

impl fmt::Display for Location {
    /// The path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Postgres(p) => p.fmt(f),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// The scheme of `text` when it is written as a URL (`letters://`): a
/// letter, then letters, digits, `+`, `-` or `.`, then `://`.
fn scheme(text: &str) -> Option<&str> {
    let (s, _) = text.split_once("://")?;
    let mut chars = s.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_path_is_a_file_and_a_postgres_url_is_postgres() {
        let l = Location::parse("/var/lib/rg/history.db", Source::CommandLine, &no_env).unwrap();
        assert_eq!(l.file(), Some(Path::new("/var/lib/rg/history.db")));
        assert_eq!(l.local_dir(Path::new("/x")), Path::new("/var/lib/rg"));
        let l = Location::parse("history.db", Source::CommandLine, &no_env).unwrap();
        assert_eq!(l.local_dir(Path::new("/x")), Path::new("."));
        for url in [
            "postgres://rg@127.0.0.1:5432/rollguard",
            "POSTGRESQL://rg@db/rg",
        ] {
            let l = Location::parse(url, Source::CommandLine, &no_env).unwrap();
            assert!(matches!(l, Location::Postgres(_)), "{url}");
            assert_eq!(l.local_dir(Path::new("/x")), Path::new("/x"));
        }
    }

    #[test]
    fn an_unknown_scheme_is_refused_and_says_what_to_give() {
        for (text, scheme) in [
            ("mysql://rg@db/rg", "mysql"),
            ("sqlite:///tmp/h.db", "sqlite"),
            ("postgress://rg@db/rg", "postgress"),
        ] {
            let e = Location::parse(text, Source::Environment, &no_env).unwrap_err();
            assert_eq!(e.source_words, "$ROLLGUARD_DB");
            assert!(e.message.starts_with(&format!("{scheme}://")), "{e}");
            assert!(e.message.contains("postgres:// URL"), "{e}");
        }
        let e = Location::parse("  ", Source::Config, &no_env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[store] url: is empty: give a history file's path or a postgres:// URL"
        );
        // A colon in a file name is not a scheme.
        assert!(Location::parse("./a:b.db", Source::CommandLine, &no_env).is_ok());
        assert!(Location::parse("1ab://x", Source::CommandLine, &no_env).is_ok());
    }
}
