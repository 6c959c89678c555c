//! PostgreSQL's side of [`Db`](super::Db): one connection per store, run
//! on a thread of its own.
//!
//! The `postgres` client blocks on a runtime of its own and must not be
//! called from inside tokio's (it panics there), while the store is called
//! from anywhere: from the writer's thread, from blocking tasks, and from
//! the rollout worker's async code. So the client lives on its own thread
//! and every call is a job sent to it, with its statement and arguments
//! copied and its rows sent back; the caller waits, as it waits for SQLite.
//!
//! Statements are written with SQLite's `?N` arguments and read here as
//! PostgreSQL's `$N`, prepared once per connection. An argument is sent as
//! the type the server asks for (an integer as `int8`, `int4` or a
//! boolean; text as text), and a column read as the [`ValueRef`] its type
//! holds (`numeric`, what `sum` gives, read as a number).

mod tls;

use std::collections::HashMap;
use std::error::Error;
use std::sync::mpsc;
use std::thread::JoinHandle;

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use super::{Arg, DbError, ValueRef};
use crate::store::location::postgres::{PgHost, PgSettings, SslMode};

/// A job for the connection's thread.
type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A connection to PostgreSQL, served by its own thread.
#[derive(Debug)]
pub struct PgConn {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// The client and its prepared statements, owned by the connection's
/// thread.
struct Session {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// Connects with `settings` (the password resolved from the password
    /// file when not given; `home` is the user's home folder), on a new
    /// thread. With `read_only`, every transaction of the session is read
    /// only. The error says what went wrong, in the server's words.
    pub fn connect(
        settings: &PgSettings,
        home: Option<&std::path::Path>,
        read_only: bool,
    ) -> Result<PgConn, String> {
        let config = client_config(settings, home);
        let tls = match settings.sslmode {
            SslMode::Disable => None,
            mode => Some(tls::client_config(mode, settings.ca.as_ref())?),
        };
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("rollguard-postgres".into())
            .spawn(move || {
                let client = match tls {
                    None => config.connect(NoTls),
                    Some(c) => config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(c)),
                };
                let mut client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(words(&e)));
                        return;
                    }
                };
                if read_only
                    && let Err(e) = client.batch_execute("SET default_transaction_read_only = on")
                {
                    let _ = ready.send(Err(words(&e)));
                    return;
                }
                let _ = ready.send(Ok(()));
                let mut session = Session {
                    client,
                    statements: HashMap::new(),
                };
                while let Ok(job) = inbox.recv() {
                    job(&mut session);
                }
            })
            .map_err(|e| format!("cannot start the connection's thread: {e}"))?;
        match started.recv() {
            Ok(Ok(())) => Ok(PgConn {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the connection's thread ended".into()),
        }
    }

    /// Runs `f` on the connection's thread and waits for its answer.
    fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, DbError> + Send + 'static,
    ) -> Result<R, DbError> {
        let (answer, wait) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = answer.send(f(s));
        });
        self.jobs
            .as_ref()
            .ok_or(DbError::Closed)?
            .send(job)
            .map_err(|_| DbError::Closed)?;
        wait.recv().map_err(|_| DbError::Closed)?
    }

    /// Runs one statement; how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<usize, DbError> {
        let (sql, args) = (sql.to_owned(), owned(args));
        self.run(move |s| {
            let stmt = s.statement(&sql)?;
            let params = params(&args);
            let n = s.client.execute(&stmt, &params)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// Every row one statement gives.
    pub fn query(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<postgres::Row>, DbError> {
        let (sql, args) = (sql.to_owned(), owned(args));
        self.run(move |s| {
            let stmt = s.statement(&sql)?;
            let params = params(&args);
            Ok(s.client.query(&stmt, &params)?)
        })
    }

    /// Whether the connection to the server has ended (the server
    /// restarted, the link broke): then every call fails, and the store
    /// must be opened again.
    pub fn is_closed(&self) -> bool {
        self.run(|s| Ok(s.client.is_closed())).unwrap_or(true)
    }

    /// Runs statements without arguments.
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        let sql = sql.to_owned();
        self.run(move |s| Ok(s.client.batch_execute(&sql)?))
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; the client closes
        // with it.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Session {
    /// `sql` prepared on this connection, once.
    fn statement(&mut self, sql: &str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(&dollar_arguments(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

/// The client's settings from ours.
fn client_config(s: &PgSettings, home: Option<&std::path::Path>) -> postgres::Config {
    let mut c = postgres::Config::new();
    match &s.host {
        PgHost::Tcp(h) => c.host(h),
        PgHost::Socket(dir) => c.host_path(dir),
    };
    c.port(s.port)
        .user(&s.user)
        .dbname(&s.dbname)
        .application_name(&s.application_name)
        .connect_timeout(s.connect_timeout)
        .ssl_mode(match s.sslmode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
    if let Some(p) = s.resolve_password(home) {
        c.password(p);
    }
    c
}

/// What the client's error says, with the server's own message when it
/// gave one.
fn words(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// `sql` with SQLite's `?N` arguments written as PostgreSQL's `$N`;
/// quoted text and names are left alone.
pub fn dollar_arguments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            (None, c) => out.push(c),
        }
    }
    out
}

/// The arguments copied, to go to the connection's thread.
fn owned(args: &[Arg<'_>]) -> Vec<Arg<'static>> {
    args.iter()
        .map(|a| match a {
            Arg::Null => Arg::Null,
            Arg::Int(i) => Arg::Int(*i),
            Arg::Real(f) => Arg::Real(*f),
            Arg::Text(t) => Arg::Text(std::borrow::Cow::Owned(t.to_string())),
        })
        .collect()
}

fn params<'a>(args: &'a [Arg<'static>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Arg<'_> {
    /// Sent as the type the server asks for: an integer as any integer
    /// type, a boolean (non-zero is true) or a float; a float as a float
    /// (NaN as `NULL`, as SQLite stores it); text as text.
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(i) => {
                if *ty == Type::INT8 {
                    i.to_sql(ty, out)
                } else if *ty == Type::INT4 {
                    i32::try_from(*i)?.to_sql(ty, out)
                } else if *ty == Type::INT2 {
                    i16::try_from(*i)?.to_sql(ty, out)
                } else if *ty == Type::BOOL {
                    (*i != 0).to_sql(ty, out)
                } else if *ty == Type::FLOAT8 {
                    (*i as f64).to_sql(ty, out)
                } else if is_text(ty) {
                    i.to_string().as_str().to_sql(ty, out)
                } else {
                    Err(format!("an integer cannot be sent as {ty}").into())
                }
            }
            Arg::Real(f) if f.is_nan() => Ok(IsNull::Yes),
            Arg::Real(f) => {
                if *ty == Type::FLOAT8 {
                    f.to_sql(ty, out)
                } else if *ty == Type::FLOAT4 {
                    (*f as f32).to_sql(ty, out)
                } else if is_text(ty) {
                    f.to_string().as_str().to_sql(ty, out)
                } else {
                    Err(format!("a float cannot be sent as {ty}").into())
                }
            }
            Arg::Text(t) => {
                if is_text(ty) {
                    t.as_ref().to_sql(&Type::TEXT, out)
                } else {
                    Err(format!("text cannot be sent as {ty}").into())
                }
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// Column `idx` of `row` as the value its type holds.
pub(super) fn value(row: &postgres::Row, idx: usize) -> Result<ValueRef<'_>, DbError> {
    let ty = row
        .columns()
        .get(idx)
        .map(|c| c.type_().clone())
        .ok_or(DbError::Type {
            idx,
            wanted: "a column",
            found: "no column",
        })?;
    let int = |v: Option<i64>| v.map_or(ValueRef::Null, ValueRef::Integer);
    Ok(if ty == Type::INT8 {
        int(row.try_get(idx)?)
    } else if ty == Type::INT4 {
        int(row.try_get::<_, Option<i32>>(idx)?.map(i64::from))
    } else if ty == Type::INT2 {
        int(row.try_get::<_, Option<i16>>(idx)?.map(i64::from))
    } else if ty == Type::BOOL {
        int(row.try_get::<_, Option<bool>>(idx)?.map(i64::from))
    } else if ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(idx)?
            .map_or(ValueRef::Null, ValueRef::Real)
    } else if ty == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(idx)?
            .map_or(ValueRef::Null, |f| ValueRef::Real(f64::from(f)))
    } else if ty == Type::NUMERIC {
        match row.try_get::<_, Option<Numeric>>(idx)? {
            None => ValueRef::Null,
            Some(Numeric::Int(i)) => ValueRef::Integer(i),
            Some(Numeric::Real(f)) => ValueRef::Real(f),
        }
    } else if ty == Type::BYTEA {
        row.try_get::<_, Option<&[u8]>>(idx)?
            .map_or(ValueRef::Null, ValueRef::Blob)
    } else {
        // Text, and anything else the server sends as text.
        row.try_get::<_, Option<Raw<'_>>>(idx)?
            .map_or(ValueRef::Null, |r| ValueRef::Text(r.0))
    })
}

/// A `numeric` (what `sum` of integers gives): an integer when it is one
/// that fits, else a float.
enum Numeric {
    Int(i64),
    Real(f64),
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let word = |i: usize| -> Result<i16, BoxError> {
            let b = raw.get(i * 2..i * 2 + 2).ok_or("a short numeric")?;
            Ok(i16::from_be_bytes([b[0], b[1]]))
        };
        let (ndigits, weight, sign, scale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
        if sign == 0xC000 {
            return Ok(Numeric::Real(f64::NAN));
        }
        let mut value = 0f64;
        for d in 0..usize::try_from(ndigits).unwrap_or(0) {
            let power = i32::from(weight) - i32::try_from(d).unwrap_or(0);
            value += f64::from(word(4 + d)?) * 10_000f64.powi(power);
        }
        if sign == 0x4000 {
            value = -value;
        }
        Ok(if scale == 0 && value.abs() < 9.0e15 {
            Numeric::Int(value as i64)
        } else {
            Numeric::Real(value)
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// A column's bytes as the server sent them (text types send UTF-8).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_numbered_as_postgres_numbers_them_outside_quotes() {
        assert_eq!(
            dollar_arguments("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND \"?3\" = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND \"?3\" = $12"
        );
        assert_eq!(
            dollar_arguments("SELECT 'it''s ?1', ?2"),
            "SELECT 'it''s ?1', $2"
        );
        assert_eq!(dollar_arguments("a ? b"), "a ? b");
    }

    #[test]
    fn a_numeric_reads_as_an_integer_or_a_float() {
        let n = |words: &[i16]| {
            let raw: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            Numeric::from_sql(&Type::NUMERIC, &raw).unwrap()
        };
        // 12345678 = 1234 * 10000 + 5678: two digits, weight 1.
        assert!(matches!(
            n(&[2, 1, 0, 0, 1234, 5678]),
            Numeric::Int(12_345_678)
        ));
        assert!(matches!(n(&[1, 0, 0x4000, 0, 7]), Numeric::Int(-7)));
        assert!(matches!(n(&[0, 0, 0, 0]), Numeric::Int(0)));
        // 1.5 = 1 + 5000/10000, scale 1.
        match n(&[2, 0, 0, 1, 1, 5000]) {
            Numeric::Real(f) => assert!((f - 1.5).abs() < 1e-9),
            Numeric::Int(i) => panic!("{i}"),
        }
    }
}
