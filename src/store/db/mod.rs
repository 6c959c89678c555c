//! The connection under the store: the one API every table's file speaks,
//! whatever database holds the history.
//!
//! A second backend implements this file's [`Db`] (statements with numbered
//! arguments, rows read by position, transactions), not the store's
//! domain methods: those are written once, above it, in the tables' files.
//! SQL is written in the subset both dialects share (`?1`-style arguments,
//! `RETURNING`, `ON CONFLICT … DO UPDATE`, `coalesce`, `IS NOT DISTINCT
//! FROM`); the few pieces they write differently (a JSON member, a
//! number's test in a column SQLite may fill with text, the store's clock,
//! a group's values joined, an index to walk) are named in [`Dialect`];
//! how a transaction takes its locks is [`Begin`]'s; opening, the schema
//! and its migrations are each backend's own (`store/file.rs`,
//! `store/server.rs`).
//!
//! - [`Arg`]: a statement's argument, borrowed where it can be.
//! - [`Row`] and [`ValueRef`]: a row as read, a column's value as stored;
//!   [`FromColumn`] for the strict reads, the lenient ones in `queries`.
//! - [`DbError`]: what the connection refused, with the backend's own error
//!   kept as the source.
//! - [`Tx`]: a transaction, rolled back when dropped without
//!   [`Tx::commit`].
//! - `sqlite`: SQLite's side of each call; [`postgres`]: PostgreSQL's,
//!   its client on a thread of its own.

pub mod postgres;
mod sqlite;

use std::borrow::Cow;
use std::fmt;

/// An open connection to the history's database.
///
/// `Send`, not `Sync`: one connection serves one thread at a time, as a
/// [`Store`](super::Store) does.
#[derive(Debug)]
pub enum Db {
    /// An SQLite file (or an empty history in memory).
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL database, through a connection on its own thread.
    Postgres(postgres::PgConn),
}

/// How a transaction takes its locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// Reads see one snapshot; the write lock is taken by the first write.
    Deferred,
    /// The write lock is taken at once (waiting up to the busy timeout), so
    /// what the transaction reads cannot change before it writes: two
    /// processes cannot both win a lock or both take one command. SQLite
    /// takes its one write lock; PostgreSQL one advisory lock that every
    /// immediate transaction of the history takes ([`IMMEDIATE_LOCK`]).
    Immediate,
}

/// The PostgreSQL advisory lock every [`Begin::Immediate`] transaction
/// takes until it ends, so such transactions run one at a time across
/// every connection to the history, as SQLite's write lock makes them.
pub const IMMEDIATE_LOCK: i64 = 0x726f_6c6c_6775_6172; // "rollguar"

/// The SQL dialect of a connection, for the few statements the two write
/// differently; each difference is a named piece of SQL here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: a column may hold a value of any type.
    Sqlite,
    /// PostgreSQL: a column holds values of its type only.
    Postgres,
}

impl Dialect {
    /// SQL that is true where `column` holds a number (in SQLite a row
    /// written by hand may hold text there; in PostgreSQL it cannot, so
    /// any value is one).
    pub fn is_number(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("typeof({column}) IN ('integer', 'real')"),
            Dialect::Postgres => format!("{column} IS NOT NULL"),
        }
    }

    /// SQL giving the member `key` of the JSON text in `column` as text;
    /// `NULL` where the text is not JSON or has no such member.
    /// PostgreSQL reads it with `rollguard_json`, which the schema defines
    /// to give `NULL` for text that is not JSON.
    pub fn json_text(self, column: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "CAST(CASE WHEN json_valid({column}) THEN json_extract({column}, '$.{key}') END \
                 AS TEXT)"
            ),
            Dialect::Postgres => format!("(rollguard_json({column}) ->> '{key}')"),
        }
    }

    /// A subquery giving each string of the JSON array given as argument
    /// `arg` (`?N`).
    pub fn json_strings(self, arg: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({arg})"),
            Dialect::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST(CAST({arg} AS TEXT) AS JSONB))")
            }
        }
    }

    /// SQL giving the store's clock, in ms since the epoch: PostgreSQL's
    /// for a shared history (every bastion stamps and judges heartbeats by
    /// the server's clock, never by comparing its own with another's);
    /// this machine's for an SQLite file, which one machine uses. It reads
    /// the same wherever it appears in one statement.
    pub fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
            }
            // One reading per statement, as SQLite's 'now'.
            Dialect::Postgres => {
                "CAST(floor(extract(epoch FROM statement_timestamp()) * 1000) AS BIGINT)"
            }
        }
    }

    /// The distinct values of `expr` in a group, joined by commas.
    pub fn joined_distinct(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("group_concat(DISTINCT {expr})"),
            Dialect::Postgres => format!("string_agg(DISTINCT {expr}, ',')"),
        }
    }

    /// ` INDEXED BY index` where SQLite must be told which index to walk;
    /// nothing for PostgreSQL, whose planner picks it.
    pub fn indexed_by(self, index: &str) -> String {
        match self {
            Dialect::Sqlite => format!(" INDEXED BY {index}"),
            Dialect::Postgres => String::new(),
        }
    }
}

impl Db {
    /// The connection's dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<usize, DbError> {
        match self {
            Db::Sqlite(c) => sqlite::execute(c, sql, args),
            Db::Postgres(c) => c.execute(sql, args),
        }
    }

    /// Runs several statements without arguments (a schema, a pragma).
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).map_err(DbError::from),
            Db::Postgres(c) => c.batch(sql),
        }
    }

    /// Calls `f` on each row the statement gives, in order, stopping at
    /// the first error.
    pub fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => sqlite::each(c, sql, args, &mut f),
            Db::Postgres(c) => {
                for row in c.query(sql, args)? {
                    f(&Row {
                        inner: RowInner::Postgres(&row),
                    })?;
                }
                Ok(())
            }
        }
    }

    /// Every row the statement gives, each read by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.each(sql, args, |row| {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row the statement gives, read by `f`; [`DbError::NoRows`]
    /// when it gives none. The statement is run to its end, so a write
    /// that returns what it wrote (`INSERT … RETURNING`) and then fails to
    /// commit is an error, never the id of a row that was not kept.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut f = Some(f);
        let mut first = None;
        self.each(sql, args, |row| {
            if let Some(f) = f.take() {
                first = Some(f(row)?);
            }
            Ok(())
        })?;
        first.ok_or(DbError::NoRows)
    }

    /// Begins a transaction on this connection.
    pub fn transaction(&self, begin: Begin) -> Result<Tx<'_>, DbError> {
        match self {
            Db::Sqlite(c) => sqlite::begin(c, begin)?,
            Db::Postgres(c) => {
                c.batch("BEGIN")?;
                if begin == Begin::Immediate
                    && let Err(e) =
                        c.execute("SELECT pg_advisory_xact_lock(?1)", args![IMMEDIATE_LOCK])
                {
                    let _ = c.batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
        Ok(Tx {
            db: self,
            open: true,
        })
    }
}

/// A transaction on a [`Db`]: statements go through it as through the
/// connection (it derefs to it); dropped without [`Tx::commit`], it is
/// rolled back.
#[derive(Debug)]
pub struct Tx<'a> {
    db: &'a Db,
    open: bool,
}

impl Tx<'_> {
    /// Commits what the transaction wrote.
    pub fn commit(mut self) -> Result<(), DbError> {
        self.db.execute_batch("COMMIT")?;
        // A failed COMMIT leaves `open` set: the drop rolls back what the
        // backend did not end itself.
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing more can be done about a failed rollback here: the
            // connection ends the transaction when it closes.
            let _ = self.db.execute_batch("ROLLBACK");
        }
    }
}

/// A statement's argument: borrowed text where the caller has it.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A float (NaN is stored as `NULL`).
    Real(f64),
    /// Text.
    Text(Cow<'a, str>),
}

/// A value a statement takes as an argument, borrowed as it is bound (as
/// `rusqlite`'s `params!` borrows): text is not copied.
pub trait ToArg {
    /// The argument.
    fn to_arg(&self) -> Arg<'_>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Arg<'_> {
                Arg::Int(i64::from(*self))
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u16, u8, bool);

impl ToArg for usize {
    /// Saturating: a count or limit past `i64::MAX` is `i64::MAX`.
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToArg for u64 {
    /// Saturating, as for `usize`.
    fn to_arg(&self) -> Arg<'_> {
        Arg::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToArg for f64 {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Real(*self)
    }
}

impl ToArg for str {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(Cow::Borrowed(self))
    }
}

impl ToArg for String {
    fn to_arg(&self) -> Arg<'_> {
        Arg::Text(Cow::Borrowed(self))
    }
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Arg<'_> {
        (**self).to_arg()
    }
}

impl<T: ToArg> ToArg for Option<T> {
    fn to_arg(&self) -> Arg<'_> {
        self.as_ref().map_or(Arg::Null, ToArg::to_arg)
    }
}

/// The arguments of a statement, each borrowed as an [`Arg`]:
/// `args![id, app, None::<i64>]`.
macro_rules! args {
    ($($e:expr),* $(,)?) => {
        &[$($crate::store::db::ToArg::to_arg(&$e)),*]
    };
}
pub(crate) use args;

/// The `VALUES` list of a multi-row `INSERT`: `rows` tuples of `width`
/// numbered arguments, `(?1, ?2), (?3, ?4)` for two rows of two.
pub fn values(rows: usize, width: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|r| {
            let args: Vec<String> = (1..=width).map(|c| format!("?{}", r * width + c)).collect();
            format!("({})", args.join(", "))
        })
        .collect();
    tuples.join(", ")
}

/// A column's value as stored, borrowed from its row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text, as bytes (not checked to be UTF-8).
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    /// The bytes of text or a blob; `None` for anything else.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// The kind of value, for an error message.
    pub fn kind(&self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "an integer",
            ValueRef::Real(_) => "a float",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "bytes",
        }
    }
}

/// A row as a statement gives it, its columns read by position.
pub struct Row<'a> {
    inner: RowInner<'a>,
}

enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a ::postgres::Row),
}

impl Row<'_> {
    /// The value of column `idx` as stored.
    pub fn get_ref(&self, idx: usize) -> Result<ValueRef<'_>, DbError> {
        match &self.inner {
            RowInner::Sqlite(r) => sqlite::value(r, idx),
            RowInner::Postgres(r) => postgres::value(r, idx),
        }
    }

    /// The value of column `idx` as a `T`: an error when the stored value
    /// is not one (see [`FromColumn`]).
    pub fn get<T: FromColumn>(&self, idx: usize) -> Result<T, DbError> {
        let v = self.get_ref(idx)?;
        T::from_column(v).ok_or(DbError::Type {
            idx,
            wanted: T::WANTED,
            found: v.kind(),
        })
    }
}

/// A Rust value read strictly from a column: an integer column as an
/// integer, text as text; `Option` for a column that may be `NULL`. Rows
/// that may hold odd values are read with the lenient readers instead.
pub trait FromColumn: Sized {
    /// What the column must hold, for an error message.
    const WANTED: &'static str;
    /// The value, or `None` when the column holds something else.
    fn from_column(v: ValueRef<'_>) -> Option<Self>;
}

impl FromColumn for i64 {
    const WANTED: &'static str = "an integer";
    fn from_column(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Integer(i) => Some(i),
            _ => None,
        }
    }
}

impl FromColumn for bool {
    const WANTED: &'static str = "an integer";
    fn from_column(v: ValueRef<'_>) -> Option<Self> {
        i64::from_column(v).map(|i| i != 0)
    }
}

impl FromColumn for f64 {
    const WANTED: &'static str = "a number";
    fn from_column(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Real(f) => Some(f),
            ValueRef::Integer(i) => Some(i as f64),
            _ => None,
        }
    }
}

impl FromColumn for String {
    const WANTED: &'static str = "text";
    fn from_column(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Text(b) => std::str::from_utf8(b).ok().map(str::to_owned),
            _ => None,
        }
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    const WANTED: &'static str = T::WANTED;
    fn from_column(v: ValueRef<'_>) -> Option<Self> {
        match v {
            ValueRef::Null => Some(None),
            v => T::from_column(v).map(Some),
        }
    }
}

/// A stored value this version does not know, where it was found. Row
/// readers give it as [`DbError::Unknown`]; [`StoreError::query`](super::StoreError::query)
/// turns that into [`StoreError::Unknown`](super::StoreError::Unknown).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{table}.{column} holds {value:?}, which this rollguard does not know")]
pub struct UnknownValue {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// The value found.
    pub value: String,
}

/// What the connection refused.
#[derive(Debug)]
pub enum DbError {
    /// SQLite's error.
    Sqlite(rusqlite::Error),
    /// PostgreSQL's error (the server's, or the connection's).
    Postgres(::postgres::Error),
    /// The connection to the server has ended.
    Closed,
    /// A statement expected to give a row gave none, or an update expected
    /// to change a row changed none.
    NoRows,
    /// A column held a kind of value its reader does not take.
    Type {
        /// The column's position.
        idx: usize,
        /// What the reader takes.
        wanted: &'static str,
        /// What the column held.
        found: &'static str,
    },
    /// A column held a name (a state, an outcome, a verb) this version does
    /// not know.
    Unknown(UnknownValue),
}

impl DbError {
    /// SQLite's primary error code, when SQLite gave the error.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            DbError::Sqlite(e) => e.sqlite_error_code(),
            _ => None,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => e.fmt(f),
            DbError::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.severity(), db.message()),
                None => e.fmt(f),
            },
            DbError::Closed => f.write_str("the connection to the server has ended"),
            DbError::NoRows => f.write_str("no such row"),
            DbError::Type { idx, wanted, found } => {
                write!(f, "column {idx} holds {found}, not {wanted}")
            }
            DbError::Unknown(v) => v.fmt(f),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Sqlite(e) => Some(e),
            DbError::Postgres(e) => Some(e),
            DbError::Unknown(v) => Some(v),
            _ => None,
        }
    }
}

impl From<::postgres::Error> for DbError {
    fn from(e: ::postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => DbError::NoRows,
            e => DbError::Sqlite(e),
        }
    }
}

/// `Ok(None)` for a statement that gave no row, as `rusqlite`'s
/// `OptionalExtension` does.
pub trait Optional<T> {
    /// The row's value, `None` when there was no row.
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> Optional<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_values_list_numbers_its_arguments_row_by_row() {
        assert_eq!(values(2, 2), "(?1, ?2), (?3, ?4)");
        assert_eq!(values(1, 3), "(?1, ?2, ?3)");
    }

    #[test]
    fn counts_and_limits_saturate() {
        assert_eq!(usize::MAX.to_arg(), Arg::Int(i64::MAX));
        assert_eq!(u64::MAX.to_arg(), Arg::Int(i64::MAX));
        assert_eq!(10usize.to_arg(), Arg::Int(10));
        assert_eq!(None::<&str>.to_arg(), Arg::Null);
        assert_eq!(true.to_arg(), Arg::Int(1));
        assert_eq!("a".to_arg(), Arg::Text(Cow::Borrowed("a")));
    }

    #[test]
    fn strict_reads_say_what_they_found() {
        assert_eq!(i64::from_column(ValueRef::Integer(3)), Some(3));
        assert_eq!(i64::from_column(ValueRef::Text(b"3")), None);
        assert_eq!(Option::<i64>::from_column(ValueRef::Null), Some(None));
        assert_eq!(f64::from_column(ValueRef::Integer(2)), Some(2.0));
        assert_eq!(String::from_column(ValueRef::Blob(b"x")), None);
        let db = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        let e = db
            .query_row("SELECT 'x'", &[], |r| r.get::<i64>(0))
            .unwrap_err();
        assert_eq!(e.to_string(), "column 0 holds text, not an integer");
        assert!(matches!(
            db.query_row("SELECT 1 WHERE 0", &[], |r| r.get::<i64>(0)),
            Err(DbError::NoRows)
        ));
    }

    #[test]
    fn a_transaction_dropped_without_commit_is_rolled_back() {
        let db = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        {
            let tx = db.transaction(Begin::Immediate).unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", args![1]).unwrap();
        }
        let tx = db.transaction(Begin::Deferred).unwrap();
        tx.execute("INSERT INTO t VALUES (?1)", args![2]).unwrap();
        tx.commit().unwrap();
        let kept = db
            .query_map("SELECT v FROM t", &[], |r| r.get::<i64>(0))
            .unwrap();
        assert_eq!(kept, [2]);
    }
}
