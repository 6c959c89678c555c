//! The history store: one SQLite file holding probe results, the audit log
//! and (from the rollout milestone on) deployments and their details.
//!
//! This file exists to open the database safely: it creates only a missing
//! file (mode 0600, complete before it appears), refuses an existing file
//! that is not a rollguard history, turns on WAL, `synchronous=NORMAL`, a
//! 5 s busy timeout and foreign keys, then migrates the schema. Commands
//! that only read use [`Store::open_read_only`], which writes nothing.
//!
//! - [`schema`]: the migrations and the schema itself.
//! - `queries`: reading and writing probe results and events.
//! - [`follow`]: probe results read back by row id.
//! - `lease`: who holds the prober's lease.
//! - `incident`: incidents opened, widened and resolved with their events.
//! - `outbox`: notifications written before they are sent, claimed by
//!   one sender at a time, marked sent or given up.
//! - `verdict`: each instance's verdict as the prober last wrote it.
//! - `report`: what `rollguard report` and `rollguard incident` read:
//!   probe results aggregated per instance, per probe and per hour,
//!   deployments and rollbacks counted, the rows around one incident.
//! - `start`: a deployment's start (lock, row, batches, first events) in
//!   one transaction.
//! - The rollout tables, one file each: `deployment` (a deployment's row,
//!   its end in one transaction with its batches settled, its events),
//!   `batch` (what is written when a batch ends, in one place), `change`
//!   (instance changes), `snapshot`, `release`, `instance_state`, `lock`
//!   (the per-app deployment lock) and `command` (the command queue);
//!   `column`: how their columns are read.
//! - [`db`]: the connection every table's file speaks (statements with
//!   numbered arguments, rows read by position, transactions): what a
//!   second backend implements; SQLite's side in `db/sqlite.rs`.
//! - [`writer`]: a dedicated thread that batches probe results to disk so
//!   probes never wait for it.
//! - `error`: [`StoreError`].
//!
//! Conventions of the rollout tables, as in `queries`:
//! - Times are milliseconds since the Unix epoch ([`crate::model::now_ms`]).
//! - JSON columns take and return [`serde_json::Value`]. Text in a JSON
//!   column that does not parse is returned as a JSON string.
//! - Reads are lenient: a row with odd values (written by hand or by a
//!   future version) is read as best it can be, never a panic or an error.
//!   A non-number reads as 0 (or `None` where the field is optional).
//!   A column holding a typed name (a strategy, a state, an outcome, a
//!   change's action, a verb) is the exception: a name this version does
//!   not know is [`StoreError::Unknown`] (`E_STORE`, naming the table, the
//!   column and the value), never a guess.
//! - Changes touching several rows run in one transaction. The lock and
//!   the command queue use `BEGIN IMMEDIATE`, which takes SQLite's write
//!   lock before reading, so two processes cannot both win a lock or both
//!   receive one command.
//! - A write that returns what it wrote (`INSERT … RETURNING`) reads its
//!   statement to the end (`query_one`), so a commit that fails (a full
//!   disk) is an error, never an id of a row that was not kept.
//! - Updating a row that does not exist (an unknown deployment, batch or
//!   change id, or an app without a lock) fails with
//!   [`StoreError::Query`] whose source is
//!   [`rusqlite::Error::QueryReturnedNoRows`], rather than silently doing
//!   nothing.
//!
//! A [`Store`] is one connection: `Send` but not `Sync`. Any number of
//! `Store`s (in threads or processes) may use the same file at once; WAL
//! lets readers run while one writer writes, and the busy timeout makes
//! writers queue instead of failing.

mod batch;
mod change;
pub mod cli;
mod column;
mod command;
mod copy;
pub mod db;
mod deployment;
mod error;
mod file;
pub mod follow;
mod incident;
mod instance_state;
mod lease;
pub mod location;
mod lock;
mod outbox;
mod queries;
mod release;
mod report;
pub mod schema;
mod server;
mod snapshot;
mod start;
mod verdict;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use db::{Begin, Db, DbError, Tx};

pub use batch::Batch;
pub use change::InstanceChange;
pub use command::Command;
pub use copy::Copied;
pub use db::UnknownValue;
pub use deployment::Deployment;
pub use error::{NotHistory, StoreError};
pub use incident::{INCIDENT_ACTOR, Incident, Opened};
pub use instance_state::InstanceState;
pub use lease::{LeaseHolder, LeaseTake};
pub use location::{Location, LocationError, PgSettings, Source as LocationSource};
pub use lock::{Lock, LockOwner};
pub use outbox::{NOTIFY_ACTOR, NewNotification, Notification, NotificationState};
pub use queries::Event;
pub use release::Release;
pub use report::{DeploymentCount, FailureSpan, ResultPoint, ResultTally};
pub use schema::SCHEMA_VERSION;
pub use snapshot::SnapshotRow;
pub use start::{NewBatch, NewDeployment, StartEvent, StartRecord, lock_evidence};
pub use verdict::StoredVerdict;
pub use writer::{ResultSender, ResultWriter, WriterStats};

/// How long a statement waits for another connection's write lock before
/// failing with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open history database: one connection ([`Db`]) plus its path (for
/// error messages).
#[derive(Debug)]
pub struct Store {
    db: Db,
    path: PathBuf,
    /// The schema version of the file as opened (older only for a file
    /// opened read-only, which is not migrated).
    schema: i64,
}

impl Store {
    /// Opens the history database at `path` for reading and writing,
    /// creating it if the file is missing, and brings its schema up to
    /// date.
    ///
    /// Only a missing file is created: a new database is built under a
    /// temporary name next to it (mode 0600, in a folder created with mode
    /// 0700 if missing) and linked into place complete, so no process ever
    /// sees a half-made history, and of several processes creating it at
    /// once one wins and the others open its file. An existing file keeps
    /// its mode and must be a rollguard history: an empty file, a file that
    /// is not SQLite, or another program's SQLite database is refused with
    /// [`StoreError::NotHistory`] and left untouched. Fails with
    /// [`StoreError::TooNew`] if a newer rollguard wrote the file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = file::open(path)?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path: path.to_owned(),
            schema: schema::SCHEMA_VERSION,
        })
    }

    /// An empty history in memory, with the schema: what a command that
    /// only reads (`status`, `history`) reads when no database file
    /// exists yet. Nothing is created on disk.
    pub fn empty(path: &Path) -> Result<Store, StoreError> {
        let conn = file::empty(path)?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path: path.to_owned(),
            schema: schema::SCHEMA_VERSION,
        })
    }

    /// Opens an existing history database for reading only, for commands
    /// that only read (`status`, `history`): nothing is created, migrated
    /// or written, so it works on a read-only file system or without write
    /// permission on the file or its folder.
    ///
    /// - A missing file fails with [`StoreError::NoHistory`] (no history
    ///   has been recorded there yet); nothing is created.
    /// - An empty file, a file that is not SQLite or another program's
    ///   database fails with [`StoreError::NotHistory`], as in
    ///   [`Store::open`].
    /// - A schema newer than this binary fails with [`StoreError::TooNew`].
    ///   An older one is read as it is (it is not migrated) when this
    ///   binary's readers understand it, from [`schema::READABLE_FROM`] on;
    ///   one older than that fails with [`StoreError::TooOld`], which says
    ///   to open it once with a command that writes.
    /// - A WAL database is read with its `-wal` and `-shm` files where they
    ///   exist or SQLite may create them. Where SQLite cannot make its
    ///   `-shm` file (a read-only file system, a full disk) and no `-wal`
    ///   file holds changes (the last writer closed cleanly, so the main
    ///   file holds everything), the file is read as immutable: a writer
    ///   that starts later is not seen. If only the `-wal` file exists on a
    ///   read-only file system, its changes cannot be read and opening
    ///   fails with [`StoreError::WalWithoutShm`]; on a full disk that
    ///   leaves no room to read it, with [`StoreError::DiskFull`].
    ///
    /// Every writing method of the returned store fails (SQLite's
    /// `SQLITE_READONLY`).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let (conn, schema) = file::open_read_only(path)?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path: path.to_owned(),
            schema,
        })
    }

    /// Opens the history at `location` for reading and writing: an SQLite
    /// file as [`Store::open`] does; a PostgreSQL database by connecting
    /// and bringing its schema up to date.
    pub fn open_at(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::File(path) => Store::open(path),
            Location::Postgres(pg) => Store::open_postgres(pg, false),
        }
    }

    /// Opens the history at `location` for reading only, as
    /// [`Store::open_read_only`] does for a file; a PostgreSQL database is
    /// read in read-only transactions, its schema not migrated.
    pub fn open_read_only_at(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::File(path) => Store::open_read_only(path),
            Location::Postgres(pg) => Store::open_postgres(pg, true),
        }
    }

    /// The store's clock, ms since the epoch: the server's for PostgreSQL
    /// (every bastion judges heartbeats, leases and claims by it, never by
    /// comparing its own clock with another's), this machine's for an
    /// SQLite file (see [`db::Dialect::now_ms`]).
    pub fn clock_ms(&self) -> Result<i64, StoreError> {
        match &self.db {
            Db::Sqlite(_) => Ok(crate::model::now_ms()),
            Db::Postgres(_) => self
                .db
                .query_row(
                    &format!("SELECT {}", self.db.dialect().now_ms()),
                    &[],
                    |r| r.get(0),
                )
                .map_err(self.sql_err("read the server's clock")),
        }
    }

    /// The database file, or for PostgreSQL its URL without the password
    /// (what messages name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file (`PRAGMA user_version`);
    /// equal to [`SCHEMA_VERSION`] once opened.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match &self.db {
            Db::Sqlite(c) => {
                schema::user_version(c).map_err(self.sql_err("read the schema version"))
            }
            Db::Postgres(_) => server::schema_version(&self.db)
                .map_err(self.sql_err("read the schema version"))
                .map(|v| v.unwrap_or(0)),
        }
    }

    /// Maps an error of the connection to a [`StoreError`] naming this
    /// file.
    fn sql_err<E: Into<DbError>>(&self, op: &'static str) -> impl FnOnce(E) -> StoreError + '_ {
        move |e| StoreError::query(&self.path, op, e.into())
    }

    /// Whether this store's connection has ended (a PostgreSQL server that
    /// restarted or a link that broke), so it must be opened again; never
    /// for a file.
    pub fn is_broken(&self) -> bool {
        match &self.db {
            Db::Sqlite(_) => false,
            Db::Postgres(c) => c.is_closed(),
        }
    }

    /// The SQLite connection under the store, when the history is a file.
    fn sqlite(&self) -> Option<&Connection> {
        match &self.db {
            Db::Sqlite(c) => Some(c),
            Db::Postgres(_) => None,
        }
    }
}

impl Store {
    /// Connects to the PostgreSQL history `pg` and, unless `read_only`,
    /// brings its schema up to date (see `server.rs`).
    fn open_postgres(pg: &PgSettings, read_only: bool) -> Result<Store, StoreError> {
        let (db, schema) = server::open(pg, read_only)?;
        Ok(Store {
            db,
            path: PathBuf::from(pg.to_string()),
            schema,
        })
    }
}

/// Transactions and updates, shared by the tables' files.
impl Store {
    /// Starts an IMMEDIATE transaction on this connection: it takes the
    /// write lock at once (waiting up to the busy timeout), so what it
    /// reads cannot change before it writes. Rolled back when dropped
    /// without `commit`.
    pub(super) fn immediate(&self, op: &'static str) -> Result<Tx<'_>, StoreError> {
        self.db
            .transaction(Begin::Immediate)
            .map_err(self.sql_err(op))
    }

    /// `Ok` if an UPDATE changed a row, else a "no such row" error.
    pub(super) fn expect_row(&self, changed: usize, op: &'static str) -> Result<(), StoreError> {
        if changed > 0 {
            Ok(())
        } else {
            Err(StoreError::Query {
                path: self.path.clone(),
                op,
                source: DbError::NoRows,
            })
        }
    }
}

/// A store opened on first use and kept for the next round, shared by one
/// task's blocking jobs (the monitor's, a notifier's).
pub type SharedStore = std::sync::Arc<std::sync::Mutex<Option<Store>>>;

/// Runs `f` on the history at `location`, opening it into `store` first
/// if it is not open yet, and dropping it when its connection ended (so a
/// PostgreSQL server that restarted is connected to again on the next
/// call). Blocking.
pub fn with_store<T>(
    location: &Location,
    store: &SharedStore,
    f: impl FnOnce(&Store) -> Result<T, String>,
) -> Result<T, String> {
    let mut slot = store.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(Store::open_at(location).map_err(|e| e.message())?);
    }
    let s = slot.as_ref().ok_or("the history is not open")?;
    let out = f(s);
    if out.is_err() && s.is_broken() {
        // The server went away: the next call connects again.
        *slot = None;
    }
    out
}
