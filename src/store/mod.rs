//! The history store: one SQLite file holding probe results, the audit log
//! and (from the rollout milestone on) deployments and their details.
//!
//! This file exists to open the database safely: it creates the file with
//! mode 0600 before SQLite touches it, turns on WAL, `synchronous=NORMAL`,
//! a 5 s busy timeout and foreign keys, then migrates the schema.
//!
//! - [`schema`]: the migrations and the schema itself.
//! - `queries`: reading and writing probe results and events.
//! - `start`: a deployment's start (lock, row, batches, first events) in
//!   one transaction.
//! - [`writer`]: a dedicated thread that batches probe results to disk so
//!   probes never wait for it.
//! - `error`: [`StoreError`].
//!
//! A [`Store`] is one connection: `Send` but not `Sync`. Any number of
//! `Store`s (in threads or processes) may use the same file at once; WAL
//! lets readers run while one writer writes, and the busy timeout makes
//! writers queue instead of failing.

mod error;
mod queries;
pub mod rollout;
pub mod schema;
mod start;
pub mod writer;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use error::StoreError;
pub use queries::Event;
pub use rollout::{
    BATCH_END_STATES, Batch, Command, Deployment, InstanceChange, InstanceState, Lock, LockOwner,
    Release, SnapshotRow,
};
pub use schema::SCHEMA_VERSION;
pub use start::{NewBatch, NewDeployment, StartEvent, StartRecord, lock_evidence};
pub use writer::{ResultSender, ResultWriter, WriterStats};

/// How long a statement waits for another connection's write lock before
/// failing with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open history database: one SQLite connection plus its path (for
/// error messages).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the history database at `path` and brings
    /// its schema up to date.
    ///
    /// Missing parent folders are created with mode 0700 and a missing file
    /// with mode 0600, before SQLite opens it (SQLite gives the `-wal` and
    /// `-shm` files the same mode). An existing file keeps its mode. Fails
    /// with [`StoreError::TooNew`] if a newer rollguard wrote the file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let io_err = |action| {
            move |source| StoreError::Io {
                path: path.to_owned(),
                action,
                source,
            }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(io_err("create the folder of"))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_err("create"))?;
        if let Ok(meta) = file.metadata()
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "history database is readable by other users; consider chmod 600"
            );
        }
        drop(file);

        let mut store = Store::connect(path)?;
        schema::migrate(&mut store.conn, path)?;
        Ok(store)
    }

    /// Opens the existing file and applies the connection settings.
    fn connect(path: &Path) -> Result<Store, StoreError> {
        let sql_err = |op| {
            move |source| StoreError::Sqlite {
                path: path.to_owned(),
                op,
                source,
            }
        };
        // No CREATE flag: the file exists (we just made it with mode 0600);
        // if it vanished meanwhile, fail rather than create it with 0644.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql_err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err("set the busy timeout"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql_err("switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // E.g. a file system without shared memory. Still works, but
            // readers and the writer then block each other more.
            tracing::warn!(path = %path.display(), %mode, "history database could not use WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_err("set synchronous=NORMAL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql_err("enable foreign keys"))?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file (`PRAGMA user_version`);
    /// equal to [`SCHEMA_VERSION`] once opened.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::user_version(&self.conn).map_err(self.sql_err("read the schema version"))
    }

    /// Maps a SQLite error to a [`StoreError`] naming this file.
    fn sql_err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            op,
            source,
        }
    }
}
