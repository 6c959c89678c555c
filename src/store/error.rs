//! The one error type of the history store. It exists as its own file so
//! every store error names the database file and tells the user what to do,
//! in one place, and converts to a [`UserError`] with code `E_STORE`.

use std::fmt;
use std::path::PathBuf;

use rusqlite::ErrorCode;

use super::db::{DbError, UnknownValue};

use crate::error::{Code, UserError};

/// Something went wrong opening, migrating, reading or writing the history
/// database. Every variant carries the database path; `Display` ends with a
/// hint saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system step failed (creating the folder or the file, starting
    /// the writer thread).
    Io {
        /// The database file concerned.
        path: PathBuf,
        /// What was being done, e.g. `create the folder of`.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    Query {
        /// The database file concerned.
        path: PathBuf,
        /// What was being done, e.g. `insert probe results`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: DbError,
    },
    /// SQLite could not make the room it needs on the disk holding the
    /// file (a write, or the -shm file a reader shares): the disk is full.
    DiskFull {
        /// The database file concerned.
        path: PathBuf,
        /// What was being done, e.g. `read the schema version`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: DbError,
    },
    /// The database was written by a newer rollguard whose schema this
    /// binary does not know; opening it could corrupt it.
    TooNew {
        /// The database file concerned.
        path: PathBuf,
        /// The `user_version` found in the file.
        found: i64,
        /// The newest schema version this binary knows.
        supported: i64,
    },
    /// The file's `user_version` is negative: not a rollguard database.
    BadVersion {
        /// The database file concerned.
        path: PathBuf,
        /// The `user_version` found in the file.
        found: i64,
    },
    /// The file exists but is not a rollguard history database; it is left
    /// untouched. Only a missing file is created as a new history.
    NotHistory {
        /// The file concerned.
        path: PathBuf,
        /// What it is instead.
        why: NotHistory,
    },
    /// [`Store::open_read_only`](super::Store::open_read_only) found no
    /// file: no history has been recorded there yet.
    NoHistory {
        /// The missing file.
        path: PathBuf,
    },
    /// The schema is older than this binary reads without migrating it
    /// (see [`READABLE_FROM`](super::schema::READABLE_FROM)).
    TooOld {
        /// The database file concerned.
        path: PathBuf,
        /// The `user_version` found in the file.
        found: i64,
        /// The oldest version this binary reads as it is.
        readable_from: i64,
    },
    /// A read-only open found changes in the `-wal` file but no `-shm`
    /// file, and SQLite cannot create one (read-only file system or
    /// folder), so those changes cannot be read.
    WalWithoutShm {
        /// The database file concerned.
        path: PathBuf,
    },
    /// The operation was refused to keep a history whole (a copy into a
    /// store that already holds one, or out of one a rollout still writes).
    Refused {
        /// The history concerned.
        path: PathBuf,
        /// Why, and what to do.
        message: String,
    },
    /// The database server could not be reached or refused the login.
    Unreachable {
        /// The database (its URL without the password).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A row holds a value this version has no name for (a state, an
    /// outcome, a verb, ...): written by hand or by a newer rollguard.
    Unknown {
        /// The database file concerned.
        path: PathBuf,
        /// What was being done, e.g. `read deployments`.
        op: &'static str,
        /// The table, the column and the value found.
        value: UnknownValue,
    },
}

/// Why an existing file is not taken as a history database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotHistory {
    /// The file has no bytes at all.
    Empty,
    /// A folder, device or other thing that is not a regular file.
    NotAFile,
    /// The file does not start with SQLite's header.
    NotSqlite,
    /// An SQLite database without rollguard's schema (`user_version` 0).
    NoSchema,
    /// An SQLite database with a rollguard schema version that lacks these
    /// rollguard tables.
    MissingTables(Vec<String>),
}

impl fmt::Display for NotHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotHistory::Empty => f.write_str("the file is empty (0 bytes)"),
            NotHistory::NotAFile => f.write_str("it is not a regular file"),
            NotHistory::NotSqlite => f.write_str("the file is not an SQLite database"),
            NotHistory::NoSchema => {
                f.write_str("it is an SQLite database with no rollguard tables")
            }
            NotHistory::MissingTables(t) => write!(
                f,
                "it is an SQLite database that lacks rollguard tables: {}",
                t.join(", ")
            ),
        }
    }
}

impl StoreError {
    /// The error the database gave doing `op` on the history at `path`: a
    /// full disk when SQLite says so, or when an I/O failure came with less
    /// than [`FULL_BELOW`](crate::host::FULL_BELOW) free on its disk.
    /// A value a row reader did not know ([`UnknownValue`]) is
    /// [`StoreError::Unknown`].
    pub fn query(path: &std::path::Path, op: &'static str, source: DbError) -> Self {
        if let DbError::Unknown(value) = source {
            return StoreError::Unknown {
                path: path.to_owned(),
                op,
                value,
            };
        }
        let full = match source.sqlite_code() {
            Some(ErrorCode::DiskFull) => true,
            Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
                crate::host::disk_full(path)
            }
            _ => false,
        };
        let path = path.to_owned();
        if full {
            StoreError::DiskFull { path, op, source }
        } else {
            StoreError::Query { path, op, source }
        }
    }

    /// [`StoreError::NoHistory`] for the history at `location`.
    pub fn no_history(location: &super::Location) -> StoreError {
        StoreError::NoHistory {
            path: PathBuf::from(location.to_string()),
        }
    }

    /// The database file the error concerns.
    pub fn path(&self) -> &std::path::Path {
        match self {
            StoreError::Io { path, .. }
            | StoreError::Query { path, .. }
            | StoreError::DiskFull { path, .. }
            | StoreError::TooNew { path, .. }
            | StoreError::BadVersion { path, .. }
            | StoreError::NotHistory { path, .. }
            | StoreError::NoHistory { path }
            | StoreError::TooOld { path, .. }
            | StoreError::WalWithoutShm { path }
            | StoreError::Unreachable { path, .. }
            | StoreError::Refused { path, .. }
            | StoreError::Unknown { path, .. } => path,
        }
    }

    /// The same error about `path` instead (for a database built under a
    /// temporary name).
    pub(crate) fn for_path(mut self, new: &std::path::Path) -> StoreError {
        match &mut self {
            StoreError::Io { path, .. }
            | StoreError::Query { path, .. }
            | StoreError::DiskFull { path, .. }
            | StoreError::TooNew { path, .. }
            | StoreError::BadVersion { path, .. }
            | StoreError::NotHistory { path, .. }
            | StoreError::NoHistory { path }
            | StoreError::TooOld { path, .. }
            | StoreError::WalWithoutShm { path }
            | StoreError::Unreachable { path, .. }
            | StoreError::Refused { path, .. }
            | StoreError::Unknown { path, .. } => *path = new.to_owned(),
        }
        self
    }

    /// Whether retrying later may succeed (lock contention, full disk,
    /// transient I/O), as opposed to a broken or foreign file.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Query { source, .. } => matches!(
                source.sqlite_code(),
                Some(
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::OutOfMemory
                )
            ),
            StoreError::DiskFull { .. } | StoreError::Unreachable { .. } => true,
            StoreError::Io { .. }
            | StoreError::TooNew { .. }
            | StoreError::BadVersion { .. }
            | StoreError::NotHistory { .. }
            | StoreError::NoHistory { .. }
            | StoreError::TooOld { .. }
            | StoreError::WalWithoutShm { .. }
            | StoreError::Refused { .. }
            | StoreError::Unknown { .. } => false,
        }
    }

    /// Whether SQLite found the file damaged (`SQLITE_CORRUPT`, or
    /// `SQLITE_NOTADB` past its first page): what it holds cannot be
    /// trusted, and retrying does not help.
    pub fn is_damaged(&self) -> bool {
        match self {
            StoreError::Query { source, .. } => is_damage(source),
            _ => false,
        }
    }

    /// What happened, naming the file (without the hint).
    pub fn message(&self) -> String {
        match self {
            StoreError::Io {
                path,
                action,
                source,
            } => format!(
                "cannot {action} history database {}: {source}",
                path.display()
            ),
            StoreError::Query { path, op, source } if is_damage(source) => format!(
                "history database {} is damaged: cannot {op}: {source}",
                path.display()
            ),
            StoreError::Query { path, op, source } => {
                format!("history database {}: cannot {op}: {source}", path.display())
            }
            StoreError::DiskFull { path, op, source } => format!(
                "history database {}: cannot {op}: {} ({source})",
                path.display(),
                crate::host::full_disk_words(path)
            ),
            StoreError::TooNew {
                path,
                found,
                supported,
            } => format!(
                "history database {} has schema version {found}, newer than this \
                 rollguard understands (up to {supported}); it was written by a newer rollguard",
                path.display()
            ),
            StoreError::BadVersion { path, found } => format!(
                "history database {} has schema version {found}, which no rollguard writes",
                path.display()
            ),
            StoreError::NotHistory { path, why } => format!(
                "{} is not a rollguard history database: {why}",
                path.display()
            ),
            StoreError::NoHistory { path } if is_url(path) => format!(
                "no history yet: the database {} has no rollguard tables",
                path.display()
            ),
            StoreError::NoHistory { path } => format!(
                "no history yet: there is no history database at {}",
                path.display()
            ),
            StoreError::TooOld {
                path,
                found,
                readable_from,
            } => format!(
                "history database {} has schema version {found}, older than this rollguard \
                 reads without upgrading it (from {readable_from} on)",
                path.display()
            ),
            StoreError::WalWithoutShm { path } => format!(
                "history database {} has changes in its -wal file but no -shm file, and none \
                 can be created here (read-only file system or folder)",
                path.display()
            ),
            StoreError::Unknown { path, op, value } => {
                format!("history database {}: cannot {op}: {value}", path.display())
            }
            StoreError::Unreachable { path, message } => {
                format!("history database {}: {message}", path.display())
            }
            StoreError::Refused { path, message } => {
                format!("history database {}: refused: {message}", path.display())
            }
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            StoreError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::ReadOnlyFilesystem => {
                    "the file system is mounted read-only: remount it read-write or choose \
                     another history path; commands that only read the history can still \
                     open it read-only"
                        .into()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "check that you own the file and its folder and can write them, \
                     or choose another history path"
                        .into()
                }
                _ => "check that the folder exists and is writable and that the disk has \
                      free space, or choose another history path"
                    .into(),
            },
            StoreError::Query { source, .. } => sqlite_hint(source).into(),
            StoreError::DiskFull { .. } => {
                "free space there (old logs, the rollouts/ folder beside the history), or \
                 point --db at a history on another disk; commands that only read the \
                 history need a little room too, for SQLite's shared-memory file"
                    .into()
            }
            StoreError::TooNew { .. } => "upgrade rollguard to the version that wrote this \
                                          file, or point rollguard at another history path; \
                                          do not downgrade the file by hand"
                .into(),
            StoreError::BadVersion { .. } => "this is not a rollguard history database; move it \
                                              aside or point rollguard at another history path"
                .into(),
            StoreError::NotHistory { .. } => {
                "if it is yours, point --db at the history file instead; otherwise move it \
                 aside, and a new history is created there on the next start"
                    .into()
            }
            StoreError::NoHistory { path } if is_url(path) => {
                "nothing has been recorded there yet; check the URL's database, or run \
                 rollguard (the console, a probe run or a deploy) to start the history"
                    .into()
            }
            StoreError::NoHistory { .. } => {
                "nothing has been recorded at this path; point --db at the history file, or \
                 run rollguard (the console, a probe run or a deploy) to start one"
                    .into()
            }
            StoreError::WalWithoutShm { .. } => {
                "open it once where it is writable, so the changes are folded into the file, \
                 or copy the file with its -wal to a writable folder and point --db there"
                    .into()
            }
            StoreError::TooOld { .. } => {
                "open it once with a command that writes the history (the console or a \
                 deploy), which upgrades it, then retry"
                    .into()
            }
            StoreError::Unknown { .. } => {
                "the row was written by a newer rollguard or by hand: read it with the \
                 rollguard that wrote it, or correct the value"
                    .into()
            }
            StoreError::Refused { .. } => {
                "nothing was written; do what the message says, then run the command again".into()
            }
            StoreError::Unreachable { .. } => {
                "check that the server runs and this machine reaches it (`pg_isready -d URL`), \
                 the URL's user and database, and the password (PGPASSWORD or ~/.pgpass)"
                    .into()
            }
        }
    }
}

fn sqlite_hint(e: &DbError) -> &'static str {
    match e.sqlite_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "another process held the database lock for more than 5 s; look for a stuck \
             rollguard or sqlite3 process using the file (`fuser FILE`) and retry"
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            "check that you own the file, its -wal and -shm companions and their folder, \
             and can write them"
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            "restore the file from a backup, or move it aside with its -wal and -shm \
             files (a new, empty history is created on the next start); \
             `sqlite3 FILE .recover` may save part of it"
        }
        Some(ErrorCode::SystemIoFailure) => {
            "the disk reported an I/O error; check free space and the kernel log (dmesg)"
        }
        _ => {
            "check the file's permissions and free disk space; if it persists, move the \
             file aside to start a fresh history"
        }
    }
}

/// Whether the history named is a PostgreSQL URL rather than a file.
fn is_url(path: &std::path::Path) -> bool {
    path.to_string_lossy().starts_with("postgres://")
}

/// Whether a SQLite error says the file's contents are damaged.
fn is_damage(e: &DbError) -> bool {
    matches!(
        e.sqlite_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (hint: {})", self.message(), self.hint())
    }
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        UserError::new(Code::Store, e.message()).hint(e.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_names_the_path_and_has_a_hint() {
        let path = PathBuf::from("/var/lib/rollguard/history.db");
        let busy = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(5),
            None,
        ));
        let errors = [
            StoreError::Io {
                path: path.clone(),
                action: "create",
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            },
            StoreError::Query {
                path: path.clone(),
                op: "insert probe results",
                source: busy,
            },
            StoreError::TooNew {
                path: path.clone(),
                found: 9,
                supported: 1,
            },
            StoreError::BadVersion {
                path: path.clone(),
                found: -1,
            },
            StoreError::NotHistory {
                path: path.clone(),
                why: NotHistory::MissingTables(vec!["locks".into()]),
            },
            StoreError::NoHistory { path: path.clone() },
            StoreError::TooOld {
                path: path.clone(),
                found: 1,
                readable_from: 2,
            },
            StoreError::WalWithoutShm { path: path.clone() },
            StoreError::Unknown {
                path: path.clone(),
                op: "read deployments",
                value: UnknownValue {
                    table: "deployments",
                    column: "state",
                    value: "teleporting".into(),
                },
            },
            StoreError::Io {
                path: path.clone(),
                action: "write",
                source: std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem),
            },
        ];
        for e in errors {
            let s = e.to_string();
            assert!(s.contains("/var/lib/rollguard/history.db"), "{s}");
            assert!(s.contains("hint: "), "{s}");
            assert_eq!(e.path(), path.as_path());
        }
    }

    #[test]
    fn damage_says_so_and_points_to_a_backup() {
        for code in [11, 26] {
            let e = StoreError::Query {
                path: PathBuf::from("/h.db"),
                op: "read deployments",
                source: DbError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(code),
                    None,
                )),
            };
            assert!(e.is_damaged());
            assert!(!e.is_transient());
            let s = e.to_string();
            assert!(
                s.starts_with("history database /h.db is damaged: cannot read deployments"),
                "{s}"
            );
            assert!(s.contains("backup"), "{s}");
        }
    }

    #[test]
    fn busy_is_transient() {
        let busy = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(5),
            None,
        ));
        let e = StoreError::Query {
            path: PathBuf::from("x"),
            op: "write",
            source: busy,
        };
        assert!(e.is_transient());
        assert!(e.hint().contains("lock"));
    }
}
