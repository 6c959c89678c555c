//! An SQLite history file: created only where none exists (complete
//! before it appears, mode 0600), checked to be a rollguard history before
//! anything is written, opened read-write (WAL, `synchronous=NORMAL`, a
//! busy timeout, foreign keys, the schema migrated) or read-only (nothing
//! written; as immutable where SQLite cannot share it). The store wraps
//! the connection these give (`Store::open`, `Store::open_read_only` and
//! `Store::empty` say what each refuses).

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{BUSY_TIMEOUT, NotHistory, StoreError, schema};

/// The file at `path` opened for reading and writing, created if missing,
/// its schema brought up to date.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
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
    let mut conn = connect_unconfigured(path)?;
    // Before anything is written (switching to WAL writes the header).
    schema::verify(&conn, path)?;
    configure(&conn, path)?;
    schema::migrate(&mut conn, path)?;
    Ok(conn)
}

/// An empty history in memory, with the schema.
pub(super) fn empty(path: &Path) -> Result<Connection, StoreError> {
    let sql_err = |op| sqlite_error(path, op);
    let mut conn = Connection::open_in_memory().map_err(sql_err("open an empty history for"))?;
    schema::migrate(&mut conn, path)?;
    Ok(conn)
}

/// The existing file at `path` opened for reading only, with its schema
/// version.
pub(super) fn open_read_only(path: &Path) -> Result<(Connection, i64), StoreError> {
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
    let conn = connect_read_only(path, false)?;
    let version = match schema::verify(&conn, path) {
        Err(e) if cannot_share(&e) && !wal_has_frames(path) => {
            // WAL mode where SQLite cannot make its -shm file: a
            // read-only file system, or a full disk. With no change in
            // a -wal file, the main file holds every change and may be
            // read as immutable.
            drop(conn);
            let conn = connect_read_only(path, true)?;
            let version = schema::verify(&conn, path)?;
            schema::check_readable(version, schema::READABLE_FROM, path)?;
            return Ok((conn, version));
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
    Ok((conn, version))
}

/// Opens the existing file and applies the connection settings.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = connect_unconfigured(path)?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Opens the existing file for reading and writing, with the busy
/// timeout, writing nothing yet.
fn connect_unconfigured(path: &Path) -> Result<Connection, StoreError> {
    let sql_err = |op| sqlite_error(path, op);
    // No CREATE flag: the file exists (it was checked or just made);
    // if it vanished meanwhile, fail rather than create it with 0644.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql_err("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_err("set the busy timeout"))?;
    Ok(conn)
}

/// Switches to WAL, `synchronous=NORMAL` and foreign keys.
fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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
fn connect_read_only(path: &Path, immutable: bool) -> Result<Connection, StoreError> {
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
    Ok(conn)
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
    let built = connect(&tmp).and_then(|mut conn| {
        schema::migrate(&mut conn, &tmp)?;
        // Closing the last connection checkpoints the WAL into the file
        // and removes the -wal and -shm files.
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
