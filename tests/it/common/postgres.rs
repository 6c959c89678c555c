//! A real, private PostgreSQL cluster for the tests: made once per test run
//! in a temporary folder with Debian's `initdb` and `pg_ctl` (as the
//! `postgres` user when the tests run as root, since the server refuses
//! root), listening on its own Unix socket and on a free loopback port,
//! and stopped and removed by a watcher process when the test binary
//! ends, however it ends. Each test gets a database of its own.
//!
//! The role `rollguard` (password [`PASSWORD`]) owns the tests' databases
//! and logs in over TCP with its password, as a bastion would; the
//! superuser `postgres` logs in over the socket without one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use rollguard::store::{Location, LocationSource, Store};

use super::{free_port, missing};

/// The test role's password.
pub const PASSWORD: &str = "rollguard-test-pw";

/// The running cluster.
pub struct Cluster {
    /// Its folder (data, socket, log).
    pub dir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    /// The folder of its Unix socket.
    pub socket: PathBuf,
    bin: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The cluster, started on first use; `None` (skipped loudly, or a failure
/// under `ROLLGUARD_REQUIRE_REAL=1`) when PostgreSQL is not installed.
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    match CLUSTER.get_or_init(|| start("shared")) {
        Ok(c) => Some(c),
        Err(e) if e.starts_with("missing:") => missing(test, "PostgreSQL (initdb, pg_ctl)"),
        Err(e) => panic!("{test}: the test PostgreSQL did not start: {e}"),
    }
}

/// A new, empty database for `test` in the cluster, owned by the test role;
/// its URL (with the password: pass it as [`LocationSource::Environment`]).
pub fn database(test: &str) -> Option<String> {
    let c = cluster(test)?;
    static N: AtomicU32 = AtomicU32::new(0);
    let name: String = format!("{test}_{}", N.fetch_add(1, Ordering::Relaxed))
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let name = name[name.len().saturating_sub(60)..].to_string();
    c.psql(&format!("DROP DATABASE IF EXISTS \"{name}\""));
    c.psql(&format!("CREATE DATABASE \"{name}\" OWNER rollguard"));
    Some(c.url(&name))
}

/// A new database's location, as a bastion would be given it.
pub fn location(test: &str) -> Option<Location> {
    let url = database(test)?;
    Some(Location::parse(&url, LocationSource::Environment, &|_| None).unwrap())
}

/// A store on a new database (schema created).
pub fn store(test: &str) -> Option<(Location, Store)> {
    let l = location(test)?;
    let s = Store::open_at(&l).unwrap_or_else(|e| panic!("{test}: {e}"));
    Some((l, s))
}

impl Cluster {
    /// The URL of database `db` for the test role over TCP.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://rollguard:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Runs `sql` as the superuser over the socket; panics on failure.
    pub fn psql(&self, sql: &str) -> String {
        let out = as_postgres(Command::new(self.bin.join("psql")))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// Debian's newest PostgreSQL binaries folder.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `cmd` run as the `postgres` user when the tests run as root.
fn as_postgres(cmd: Command) -> Command {
    if !root() {
        return cmd;
    }
    let mut wrapped = Command::new("runuser");
    wrapped
        .args(["-u", "postgres", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    wrapped
}

/// A cluster of `test`'s own, for a test that stops or restarts its
/// server (the shared one serves the other tests meanwhile); stopped and
/// removed when dropped.
pub fn private(test: &str) -> Option<Private> {
    match start(test) {
        Ok(c) => Some(Private(c)),
        Err(e) if e.starts_with("missing:") => missing(test, "PostgreSQL (initdb, pg_ctl)"),
        Err(e) => panic!("{test}: a test PostgreSQL did not start: {e}"),
    }
}

/// A cluster that is a test's own (see [`private`]).
pub struct Private(pub Cluster);

impl Private {
    /// A new database in it, owned by the test role; its URL.
    pub fn database(&self, name: &str) -> String {
        self.0
            .psql(&format!("CREATE DATABASE \"{name}\" OWNER rollguard"));
        self.0.url(name)
    }

    /// Restarts the server, dropping every connection.
    pub fn restart(&self) {
        let out = as_postgres(self.0.pg_ctl())
            .args(["-m", "fast", "-w", "-t", "30", "restart"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = as_postgres(self.0.pg_ctl())
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

impl Cluster {
    /// `pg_ctl` on this cluster's data, with its log and options.
    fn pg_ctl(&self) -> Command {
        let mut c = Command::new(self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(options(self.port, &self.socket));
        c
    }
}

/// The server's options: its port, its socket folder, loopback only, and
/// no waiting for the disk (the data is thrown away).
fn options(port: u16, socket: &Path) -> String {
    format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        socket.display()
    )
}

fn start(tag: &str) -> Result<Cluster, String> {
    let bin = bin_dir().ok_or("missing: no /usr/lib/postgresql/*/bin/initdb")?;
    let dir = std::env::temp_dir().join(format!("rollguard-test-pg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("socket")).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    if root() {
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("chown to postgres failed".into());
        }
    }
    let data = dir.join("data");
    let run = |mut cmd: Command, what: &str| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--auth-local=trust",
        ])
        .args(["--auth-host=scram-sha-256"]);
    run(as_postgres(initdb), "initdb")?;
    let port = free_port();
    let socket = dir.join("socket");
    let c = Cluster {
        dir: dir.clone(),
        port,
        socket,
        bin: bin.clone(),
    };
    let mut pg_ctl = c.pg_ctl();
    pg_ctl.args(["-w", "-t", "30", "start"]);
    run(as_postgres(pg_ctl), "pg_ctl start")?;
    watch(&bin, &dir, &data);
    c.psql(&format!(
        "CREATE ROLE rollguard LOGIN CREATEDB PASSWORD '{PASSWORD}'"
    ));
    Ok(c)
}

/// Starts a process, in a session of its own, that stops the cluster and
/// removes its folder once this test binary has ended.
fn watch(bin: &Path, dir: &Path, data: &Path) {
    let stop = format!(
        "{} {} -D {} -m immediate stop",
        if root() { "runuser -u postgres --" } else { "" },
        bin.join("pg_ctl").display(),
        data.display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    let mut cmd = Command::new("setsid");
    cmd.args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = cmd.spawn();
}

/// One history of one backend, for tests that run on both.
#[derive(Clone)]
pub struct Backend {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    open: Arc<dyn Fn() -> Store + Send + Sync>,
    sql: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Backend {
    /// Another connection to the history (the first one creates it).
    pub fn open(&self) -> Store {
        (self.open)()
    }

    /// Runs `sql` on the history behind the store's back (to backdate a
    /// row, or write one by hand); panics on failure.
    pub fn sql(&self, sql: &str) {
        (self.sql)(sql)
    }

    /// Whether it is the SQLite file (where a column holds any type).
    pub fn is_sqlite(&self) -> bool {
        self.name == "sqlite"
    }
}

/// A new history on each backend: an SQLite file in a folder of its own,
/// and a PostgreSQL database of the test cluster (left out, loudly, where
/// PostgreSQL is not installed and real components are not required).
/// Each run is announced on stderr, so a failure names its backend.
pub fn backends(test: &str) -> Vec<Backend> {
    let dir = Arc::new(super::TempDir::new(test));
    let file = dir.join("history.db");
    let raw_file = file.clone();
    let mut out = vec![Backend {
        name: "sqlite",
        open: Arc::new(move || {
            let _keep = &dir;
            eprintln!("-- on sqlite");
            Store::open(&file).unwrap()
        }),
        sql: Arc::new(move |sql| {
            let c = rusqlite::Connection::open(&raw_file).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            c.execute_batch(sql).unwrap();
        }),
    }];
    if let Some(url) = database(test) {
        let location = Location::parse(&url, LocationSource::Environment, &|_| None).unwrap();
        out.push(Backend {
            name: "postgres",
            open: Arc::new(move || {
                eprintln!("-- on postgres");
                Store::open_at(&location).unwrap_or_else(|e| panic!("postgres: {e}"))
            }),
            sql: Arc::new(move |sql| {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.batch_execute(sql).unwrap();
            }),
        });
    }
    out
}
