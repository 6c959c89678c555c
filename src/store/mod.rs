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
mod column;
mod command;
pub mod db;
mod deployment;
mod error;
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
mod snapshot;
mod start;
mod verdict;
pub mod writer;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use db::{Begin, Db, DbError, Tx};

pub use batch::Batch;
pub use change::InstanceChange;
pub use command::Command;
pub use deployment::Deployment;
pub use error::{NotHistory, StoreError, UnknownValue};
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
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(io_err("read")(e)),
            Ok(_) => {}
        }
        check_file(path)?;
        // Fail plainly on a read-only file system or a file we may not
        // write, before SQLite reports it as "unable to open".
        check_writable(path).map_err(io_err("write"))?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "history database is readable by other users; consider chmod 600"
            );
        }
        let mut store = Store::connect_unconfigured(path)?;
        // Before anything is written (switching to WAL writes the header).
        schema::verify(store.sqlite(), path)?;
        store.configure()?;
        schema::migrate(store.sqlite_mut(), path)?;
        store.schema = schema::SCHEMA_VERSION;
        Ok(store)
    }

    /// An empty history in memory, with the schema: what a command that
    /// only reads (`status`, `history`) reads when no database file
    /// exists yet. Nothing is created on disk.
    pub fn empty(path: &Path) -> Result<Store, StoreError> {
        let sql_err = |op| sqlite_error(path, op);
        let conn = Connection::open_in_memory().map_err(sql_err("open an empty history for"))?;
        let mut store = Store {
            db: Db::Sqlite(conn),
            path: path.to_owned(),
            schema: schema::SCHEMA_VERSION,
        };
        schema::migrate(store.sqlite_mut(), path)?;
        Ok(store)
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
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NoHistory {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_owned(),
                    action: "read",
                    source,
                });
            }
            Ok(_) => {}
        }
        check_file(path)?;
        let store = Store::connect_read_only(path, false)?;
        let version = match schema::verify(store.sqlite(), path) {
            Err(e) if cannot_share(&e) && !wal_has_frames(path) => {
                // WAL mode where SQLite cannot make its -shm file: a
                // read-only file system, or a full disk. With no change in
                // a -wal file, the main file holds every change and may be
                // read as immutable.
                drop(store);
                let mut store = Store::connect_read_only(path, true)?;
                let version = schema::verify(store.sqlite(), path)?;
                schema::check_readable(version, schema::READABLE_FROM, path)?;
                store.schema = version;
                return Ok(store);
            }
            Err(StoreError::Query { source, .. })
                if source.sqlite_code() == Some(ErrorCode::CannotOpen)
                    && companion(path, "-wal").exists()
                    && !companion(path, "-shm").exists() =>
            {
                return Err(StoreError::WalWithoutShm {
                    path: path.to_owned(),
                });
            }
            other => other?,
        };
        schema::check_readable(version, schema::READABLE_FROM, path)?;
        let mut store = store;
        store.schema = version;
        Ok(store)
    }

    /// Opens the existing file and applies the connection settings.
    fn connect(path: &Path) -> Result<Store, StoreError> {
        let store = Store::connect_unconfigured(path)?;
        store.configure()?;
        Ok(store)
    }

    /// Opens the existing file for reading and writing, with the busy
    /// timeout, writing nothing yet.
    fn connect_unconfigured(path: &Path) -> Result<Store, StoreError> {
        let sql_err = |op| sqlite_error(path, op);
        // No CREATE flag: the file exists (it was checked or just made);
        // if it vanished meanwhile, fail rather than create it with 0644.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql_err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err("set the busy timeout"))?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path: path.to_owned(),
            schema: schema::SCHEMA_VERSION,
        })
    }

    /// Switches to WAL, `synchronous=NORMAL` and foreign keys.
    fn configure(&self) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let conn = self.sqlite();
        let sql_err = |op| sqlite_error(path, op);
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
        Ok(())
    }

    /// Opens the existing file read-only (as immutable when asked: no
    /// locks, no -wal or -shm), touching nothing.
    fn connect_read_only(path: &Path, immutable: bool) -> Result<Store, StoreError> {
        let sql_err = |op| sqlite_error(path, op);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if immutable {
            let mut uri = b"file:".to_vec();
            uri.extend(uri_path(path));
            uri.extend_from_slice(b"?immutable=1");
            let uri = String::from_utf8_lossy(&uri).into_owned();
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(sql_err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_err("set the busy timeout"))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(sql_err("make the connection read-only"))?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path: path.to_owned(),
            schema: schema::SCHEMA_VERSION,
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

    /// The database file, or for PostgreSQL its URL without the password
    /// (what messages name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file (`PRAGMA user_version`);
    /// equal to [`SCHEMA_VERSION`] once opened.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::user_version(self.sqlite()).map_err(self.sql_err("read the schema version"))
    }

    /// Maps an error of the connection to a [`StoreError`] naming this
    /// file.
    fn sql_err<E: Into<DbError>>(&self, op: &'static str) -> impl FnOnce(E) -> StoreError + '_ {
        move |e| StoreError::query(&self.path, op, e.into())
    }

    /// The SQLite connection under the store: opening, the schema and its
    /// migrations are SQLite's own.
    fn sqlite(&self) -> &Connection {
        match &self.db {
            Db::Sqlite(c) => c,
        }
    }

    /// [`Store::sqlite`], to migrate.
    fn sqlite_mut(&mut self) -> &mut Connection {
        match &mut self.db {
            Db::Sqlite(c) => c,
        }
    }
}

impl Store {
    /// Connects to the PostgreSQL history `pg` (see `db/postgres.rs`).
    fn open_postgres(pg: &PgSettings, read_only: bool) -> Result<Store, StoreError> {
        let _ = read_only;
        Err(StoreError::Unreachable {
            path: PathBuf::from(pg.to_string()),
            message: "PostgreSQL is not built yet".into(),
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

/// Maps a SQLite error met doing `op` on the database at `path`.
fn sqlite_error<'a>(
    path: &'a Path,
    op: &'static str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::query(path, op, source.into())
}

/// Refuses an existing file that cannot be a history database: not a
/// regular file, or empty. Looks only at its metadata: the file is never
/// opened here, because closing any descriptor of a database file drops
/// every POSIX lock this process holds on it, including those of its open
/// SQLite connections (a file that is not SQLite is told by SQLite's first
/// read, see `schema::verify`).
fn check_file(path: &Path) -> Result<(), StoreError> {
    let not_history = |why| StoreError::NotHistory {
        path: path.to_owned(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        action: "read",
        source,
    })?;
    if !meta.is_file() {
        return Err(not_history(NotHistory::NotAFile));
    }
    if meta.len() == 0 {
        return Err(not_history(NotHistory::Empty));
    }
    Ok(())
}

/// Whether this process may write the file at `path` (`faccessat` with
/// the effective ids: permissions, a read-only file system), without
/// opening it (see [`check_file`]).
fn check_writable(path: &Path) -> std::io::Result<()> {
    crate::host::may_write(path)
}

/// Creates a new history database at `path`, which was missing: builds it
/// under a temporary name in the same folder and links it into place, so
/// `path` only ever appears complete. If another process linked its own
/// first, that one is kept and this one discarded.
fn create(path: &Path) -> Result<(), StoreError> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let io_err = |action| {
        move |source| StoreError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.new-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let discard = |tmp: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(companion(tmp, suffix));
        }
    };
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err("create"))?;
    let built = Store::connect(&tmp).and_then(|mut store| {
        schema::migrate(store.sqlite_mut(), &tmp)?;
        // Closing the last connection checkpoints the WAL into the file
        // and removes the -wal and -shm files.
        let Db::Sqlite(conn) = store.db;
        conn.close()
            .map_err(|(_, source)| StoreError::query(&tmp, "close the new database", source.into()))
    });
    if let Err(e) = built {
        discard(&tmp);
        return Err(e.for_path(path));
    }
    let placed = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        // Another process placed its new database first; use that one.
        Err(_) if path.exists() => Ok(()),
        // A file system without hard links: rename instead, which could
        // replace a file another process made in the instant since the
        // check.
        Err(_) => std::fs::rename(&tmp, path),
    };
    discard(&tmp);
    placed.map_err(io_err("create"))
}

/// Whether a read-only open failed because SQLite could not make or size
/// the -shm file it shares with other connections (a read-only file
/// system, a full disk).
fn cannot_share(e: &StoreError) -> bool {
    match e {
        StoreError::DiskFull { .. } => true,
        StoreError::Query { source, .. } => matches!(
            source.sqlite_code(),
            Some(ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull)
        ),
        _ => false,
    }
}

/// Whether the -wal file of `path` may hold changes the main file lacks:
/// it exists and is not empty.
fn wal_has_frames(path: &Path) -> bool {
    std::fs::metadata(companion(path, "-wal")).is_ok_and(|m| m.len() > 0)
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `path` made absolute and escaped for an SQLite `file:` URI.
fn uri_path(path: &Path) -> Vec<u8> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = Vec::new();
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").into_bytes());
        }
    }
    out
}

/// A store opened on first use and kept for the next round, shared by one
/// task's blocking jobs (the monitor's, a notifier's).
pub type SharedStore = std::sync::Arc<std::sync::Mutex<Option<Store>>>;

/// Runs `f` on the history at `location`, opening it into `store` first
/// if it is not open yet. Blocking.
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
    f(s)
}
