//! SQLite's side of [`Db`](super::Db): statements prepared once per
//! connection (`prepare_cached`), arguments bound by position, rows read as
//! SQLite stores them.

use rusqlite::types::{ToSqlOutput, ValueRef as SqliteValue};
use rusqlite::{Connection, ToSql};

use super::{Arg, Begin, DbError, Row, RowInner, ValueRef};

impl ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Null => SqliteValue::Null,
            Arg::Int(i) => SqliteValue::Integer(*i),
            // SQLite stores NaN as NULL; say so rather than leave it to it.
            Arg::Real(f) if f.is_nan() => SqliteValue::Null,
            Arg::Real(f) => SqliteValue::Real(*f),
            Arg::Text(t) => SqliteValue::Text(t.as_bytes()),
        }))
    }
}

pub(super) fn execute(c: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<usize, DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    Ok(stmt.execute(rusqlite::params_from_iter(args))?)
}

pub(super) fn each(
    c: &Connection,
    sql: &str,
    args: &[Arg<'_>],
    f: &mut dyn FnMut(&Row<'_>) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        f(&Row {
            inner: RowInner::Sqlite(row),
        })?;
    }
    Ok(())
}

pub(super) fn begin(c: &Connection, begin: Begin) -> Result<(), DbError> {
    c.execute_batch(match begin {
        Begin::Deferred => "BEGIN DEFERRED",
        Begin::Immediate => "BEGIN IMMEDIATE",
    })?;
    Ok(())
}

pub(super) fn value<'a>(row: &'a rusqlite::Row<'a>, idx: usize) -> Result<ValueRef<'a>, DbError> {
    Ok(match row.get_ref(idx)? {
        SqliteValue::Null => ValueRef::Null,
        SqliteValue::Integer(i) => ValueRef::Integer(i),
        SqliteValue::Real(f) => ValueRef::Real(f),
        SqliteValue::Text(b) => ValueRef::Text(b),
        SqliteValue::Blob(b) => ValueRef::Blob(b),
    })
}
