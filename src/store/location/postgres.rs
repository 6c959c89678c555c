//! A PostgreSQL history's connection settings, read as libpq reads them: a
//! `postgres://[user[:password]@][host][:port][/dbname][?param=value&…]`
//! URL, then libpq's environment variables for what it leaves out
//! (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGPASSFILE`), then
//! libpq's defaults (the Unix socket folder `/var/run/postgresql`, port
//! 5432, the user's login name, a database named as the user). The
//! password comes from the URL only where it is not on a command line
//! (`$ROLLGUARD_DB`, or `[store] url` with `${NAME}`), else from
//! `PGPASSWORD` or the password file (`~/.pgpass`, ignored when others may
//! read it, as libpq does). It is never shown: [`PgSettings`]'s `Display`
//! and `Debug` leave it out.
//!
//! `sslmode` is libpq's: `disable`, `allow` and `prefer` (TLS when the
//! server offers it, unverified), `require` (TLS, unverified, unless a CA
//! file is given: then as `verify-ca`), `verify-ca` (the server's
//! certificate must chain to the CA file), `verify-full` (and name the
//! host). The CA file is `sslrootcert` (or `ca_file`), else
//! `~/.postgresql/root.crt` when it exists; `sslrootcert=system` trusts the
//! system's roots.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Source;

/// libpq's default folder of the server's Unix socket on Debian.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// How TLS is used, as libpq's `sslmode` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it (libpq's `allow` and `prefer`),
    /// without checking the certificate.
    Prefer,
    /// TLS always, the certificate unchecked (checked as `VerifyCa` when
    /// a CA file is given).
    Require,
    /// TLS, the certificate chaining to the CA file.
    VerifyCa,
    /// TLS, the certificate chaining to the CA file and naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgHost {
    /// A host name or address, over TCP.
    Tcp(String),
    /// The folder of the server's Unix socket (a host that starts with
    /// `/`, as in libpq).
    Socket(PathBuf),
}

/// Which certificates a verified TLS connection trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// The system's roots (`sslrootcert=system`).
    System,
}

/// A PostgreSQL history's connection settings. The password is kept but
/// never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// Where the server listens.
    pub host: PgHost,
    /// Its port (also the socket's name, `.s.PGSQL.PORT`).
    pub port: u16,
    /// The role to log in as.
    pub user: String,
    /// The database.
    pub dbname: String,
    /// The password, when one was given (or found in the password file at
    /// connect time: see [`PgSettings::resolve_password`]).
    pub password: Option<String>,
    /// How TLS is used.
    pub sslmode: SslMode,
    /// The CA a verified connection trusts.
    pub ca: Option<CaSource>,
    /// Shown in the server's `pg_stat_activity`.
    pub application_name: String,
    /// How long connecting may take (libpq's `connect_timeout`; 10 s
    /// unless set, where libpq waits forever).
    pub connect_timeout: Duration,
    /// `PGPASSFILE`, when set.
    pub passfile: Option<PathBuf>,
}

impl PgSettings {
    /// Reads a `postgres://` URL (`text`), filling what it leaves out
    /// from the environment (`env`) and libpq's defaults. The error says
    /// what is wrong and what to do.
    pub fn parse(
        text: &str,
        source: Source,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgSettings, String> {
        let url = Url::split(text)?;
        if url.password.is_some() && source == Source::CommandLine {
            return Err(
                "a password in a URL on the command line can be read by every user \
                 of this machine: set PGPASSWORD, use ~/.pgpass, or put the URL in \
                 $ROLLGUARD_DB or in [store] url with the password as ${NAME}"
                    .into(),
            );
        }
        let mut p = Params::default();
        for (k, v) in &url.query {
            p.set(k, v)?;
        }
        let pick = |from_url: Option<String>, from_query: Option<String>, var: &str| {
            from_query
                .or(from_url)
                .or_else(|| env(var).filter(|v| !v.is_empty()))
        };
        let host = pick(url.host, p.host, "PGHOST").unwrap_or_else(|| DEFAULT_SOCKET_DIR.into());
        let port = match pick(url.port, p.port, "PGPORT") {
            None => 5432,
            Some(s) => s
                .parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("port {s:?} is not a port number (1-65535)"))?,
        };
        let user = pick(url.user, p.user, "PGUSER")
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .unwrap_or_else(crate::host::whoami);
        let dbname = pick(url.dbname, p.dbname, "PGDATABASE").unwrap_or_else(|| user.clone());
        let password = if source == Source::CommandLine && p.password.is_some() {
            return Err(
                "a password on the command line can be read by every user of this \
                 machine: set PGPASSWORD or use ~/.pgpass"
                    .into(),
            );
        } else {
            p.password
                .or(url.password)
                .or_else(|| env("PGPASSWORD").filter(|v| !v.is_empty()))
        };
        let (sslmode, ca) = tls(p.sslmode.take(), p.sslrootcert.take(), env)?;
        let connect_timeout = timeout(p.connect_timeout.take(), env)?;
        Ok(PgSettings {
            host: if host.starts_with('/') {
                PgHost::Socket(PathBuf::from(host))
            } else {
                PgHost::Tcp(host)
            },
            port,
            user,
            dbname,
            password,
            sslmode,
            ca,
            application_name: p
                .application_name
                .or_else(|| env("PGAPPNAME"))
                .unwrap_or_else(|| "rollguard".into()),
            connect_timeout,
            passfile: env("PGPASSFILE").map(PathBuf::from),
        })
    }

    /// The password to log in with: the one given, else the password
    /// file's line for this host, port, database and user (`PGPASSFILE`,
    /// else `~/.pgpass`; a file others may read is ignored with a warning,
    /// as libpq does).
    pub fn resolve_password(&self, home: Option<&Path>) -> Option<String> {
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let file = self
            .passfile
            .clone()
            .or_else(|| home.map(|h| h.join(".pgpass")))?;
        let meta = std::fs::metadata(&file).ok()?;
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                "password file has group or world access; permissions should be u=rw (0600) \
                 or less: it is not read"
            );
            return None;
        }
        let text = std::fs::read_to_string(&file).ok()?;
        let host = match &self.host {
            PgHost::Tcp(h) => h.as_str(),
            // libpq matches a socket connection as `localhost`.
            PgHost::Socket(_) => "localhost",
        };
        pgpass_lookup(&text, host, self.port, &self.dbname, &self.user)
    }
}

impl fmt::Display for PgSettings {
    /// The URL without the password: `postgres://user@host:port/db`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let host = match &self.host {
            PgHost::Tcp(h) if h.contains(':') => format!("[{h}]"),
            PgHost::Tcp(h) => enc(h),
            PgHost::Socket(d) => enc(&d.to_string_lossy()),
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            enc(&self.user),
            self.port,
            enc(&self.dbname)
        )?;
        if self.sslmode != SslMode::Prefer {
            write!(f, "?sslmode={}", self.sslmode.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgSettings({self})")
    }
}

/// `sslmode` and the CA file from the URL, else the environment, else
/// libpq's defaults; a verifying mode without a CA is an error.
fn tls(
    sslmode: Option<String>,
    rootcert: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(SslMode, Option<CaSource>), String> {
    let sslmode = match sslmode.or_else(|| env("PGSSLMODE")) {
        None => SslMode::Prefer,
        Some(s) => SslMode::parse(&s).ok_or_else(|| {
            format!(
                "sslmode {s:?} is not one of disable, allow, prefer, require, \
                 verify-ca, verify-full"
            )
        })?,
    };
    let ca = rootcert
        .or_else(|| env("PGSSLROOTCERT"))
        .map(|s| match s.as_str() {
            "system" => CaSource::System,
            _ => CaSource::File(PathBuf::from(s)),
        })
        .or_else(|| {
            let home = env("HOME")?;
            let file = Path::new(&home).join(".postgresql/root.crt");
            file.exists().then_some(CaSource::File(file))
        });
    if matches!(sslmode, SslMode::VerifyCa | SslMode::VerifyFull) && ca.is_none() {
        return Err(format!(
            "sslmode={} needs the CA that signed the server's certificate: set \
             sslrootcert=FILE (or ca_file=FILE) in the URL, PGSSLROOTCERT, or \
             sslrootcert=system to trust the system's roots",
            sslmode.as_str()
        ));
    }
    Ok((sslmode, ca))
}

/// libpq's `connect_timeout` (whole seconds, at least 2), 10 s unset.
fn timeout(
    value: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Duration, String> {
    match value.or_else(|| env("PGCONNECT_TIMEOUT")) {
        None => Ok(Duration::from_secs(10)),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(|n| Duration::from_secs(n.max(2)))
            .ok_or_else(|| format!("connect_timeout {s:?} is not a whole number of seconds")),
    }
}

/// The password of the first line of a password file's `text` that
/// matches (`host:port:database:user:password`, each of the first four a
/// value or `*`; `\:` and `\\` escaped; `#` lines skipped).
pub fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), db, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w);
            matches.then(|| fields[4].clone())
        })
}

/// A password file line's fields, `\` escapes taken away.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

/// The parts of a URL, percent-decoded.
#[derive(Default)]
struct Url {
    user: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<String>,
    dbname: Option<String>,
    query: Vec<(String, String)>,
}

impl Url {
    fn split(text: &str) -> Result<Url, String> {
        let (_, rest) = text
            .split_once("://")
            .ok_or_else(|| "is not a URL".to_string())?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut url = Url::default();
        if let Some(u) = userinfo {
            let (user, password) = match u.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (u, None),
            };
            url.user = non_empty(decode(user)?);
            url.password = password.map(decode).transpose()?;
        }
        if hostport.contains(',') {
            return Err(
                "lists several hosts: rollguard connects to one; give one host \
                 (a load balancer or the primary's address)"
                    .into(),
            );
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| "has a '[' without ']' around its IPv6 address".to_string())?;
            (h.to_string(), after.strip_prefix(':').map(str::to_string))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.to_string())),
                None => (hostport.to_string(), None),
            }
        };
        url.host = non_empty(decode(&host)?);
        url.port = port.filter(|p| !p.is_empty());
        url.dbname = path.map(decode).transpose()?.and_then(non_empty);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            url.query.push((decode(k)?, decode(v)?));
        }
        Ok(url)
    }
}

/// The query parameters the URL may set (libpq's names; `ca_file` is
/// `sslrootcert`).
#[derive(Default)]
struct Params {
    host: Option<String>,
    port: Option<String>,
    dbname: Option<String>,
    user: Option<String>,
    password: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    application_name: Option<String>,
    connect_timeout: Option<String>,
}

impl Params {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let slot = match key {
            "host" => &mut self.host,
            "port" => &mut self.port,
            "dbname" => &mut self.dbname,
            "user" => &mut self.user,
            "password" => &mut self.password,
            "sslmode" => &mut self.sslmode,
            "sslrootcert" | "ca_file" => &mut self.sslrootcert,
            "application_name" => &mut self.application_name,
            "connect_timeout" => &mut self.connect_timeout,
            other => {
                return Err(format!(
                    "?{other}= is not a setting rollguard reads; it reads host, port, dbname, \
                     user, sslmode, sslrootcert (or ca_file), application_name and \
                     connect_timeout"
                ));
            }
        };
        *slot = Some(value.to_string());
        Ok(())
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// `%XX` decoded; text that is not UTF-8 afterwards is an error.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                // The text is not quoted: it may be the password.
                .ok_or_else(|| "has a bad %-escape (write a % as %25)".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "has a %-escape that does not decode to UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(text: &str, source: Source, vars: &[(&str, &str)]) -> Result<PgSettings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PgSettings::parse(text, source, &|k| vars.get(k).cloned())
    }

    #[test]
    fn a_full_url_is_read_and_shown_without_its_password() {
        let p = parse(
            "postgres://rg:s%3Acret@db.example.com:6543/roll%20guard?sslmode=require&application_name=bastion-a",
            Source::Environment,
            &[("USER", "me")],
        )
        .unwrap();
        assert_eq!(p.host, PgHost::Tcp("db.example.com".into()));
        assert_eq!(
            (p.port, p.user.as_str(), p.dbname.as_str()),
            (6543, "rg", "roll guard")
        );
        assert_eq!(p.password.as_deref(), Some("s:cret"));
        assert_eq!(p.sslmode, SslMode::Require);
        assert_eq!(p.application_name, "bastion-a");
        let shown = p.to_string();
        assert_eq!(
            shown,
            "postgres://rg@db.example.com:6543/roll%20guard?sslmode=require"
        );
        assert!(!format!("{p:?}").contains("cret"));
    }

    #[test]
    fn what_the_url_leaves_out_comes_from_libpqs_variables_then_its_defaults() {
        let p = parse(
            "postgres://",
            Source::CommandLine,
            &[
                ("PGHOST", "/tmp/pg"),
                ("PGPORT", "5433"),
                ("PGUSER", "ops"),
                ("PGPASSWORD", "pw"),
                ("PGSSLMODE", "disable"),
            ],
        )
        .unwrap();
        assert_eq!(p.host, PgHost::Socket("/tmp/pg".into()));
        assert_eq!(
            (p.port, p.user.as_str(), p.dbname.as_str()),
            (5433, "ops", "ops")
        );
        assert_eq!(p.password.as_deref(), Some("pw"));
        assert_eq!(p.sslmode, SslMode::Disable);
        let p = parse("postgresql:///rollguard", Source::Config, &[("USER", "me")]).unwrap();
        assert_eq!(p.host, PgHost::Socket(DEFAULT_SOCKET_DIR.into()));
        assert_eq!(
            (p.port, p.user.as_str(), p.dbname.as_str()),
            (5432, "me", "rollguard")
        );
        assert_eq!(p.sslmode, SslMode::Prefer);
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        // The URL wins over the environment; a socket folder as ?host=.
        let p = parse(
            "postgres://a@h/d?host=/run/pg&port=7000",
            Source::Config,
            &[("PGHOST", "x"), ("PGPORT", "1")],
        )
        .unwrap();
        assert_eq!(p.host, PgHost::Socket("/run/pg".into()));
        assert_eq!(p.port, 7000);
        let p = parse("postgres://a@[::1]:5000/d", Source::Config, &[]).unwrap();
        assert_eq!(p.host, PgHost::Tcp("::1".into()));
        assert_eq!(p.to_string(), "postgres://a@[::1]:5000/d");
    }

    #[test]
    fn a_password_on_the_command_line_is_refused() {
        for url in ["postgres://rg:pw@db/rg", "postgres://rg@db/rg?password=pw"] {
            let e = parse(url, Source::CommandLine, &[]).unwrap_err();
            assert!(e.contains("PGPASSWORD"), "{e}");
            assert!(!e.contains("pw@") && !e.contains("=pw"), "{e}");
            assert!(parse(url, Source::Environment, &[]).is_ok());
        }
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let cases = [
            ("postgres://a@h:99999/d", "is not a port number"),
            ("postgres://a@h/d?sslmode=verify", "is not one of disable"),
            ("postgres://a@h/d?sslmode=verify-full", "needs the CA"),
            (
                "postgres://a@h/d?sslcompression=1",
                "?sslcompression= is not a setting",
            ),
            ("postgres://a@h1,h2/d", "several hosts"),
            ("postgres://a@h/d%zz", "bad %-escape"),
            (
                "postgres://a:s3cr%zzet@h/d",
                "bad %-escape (write a % as %25)",
            ),
            (
                "postgres://a@h/d?connect_timeout=soon",
                "whole number of seconds",
            ),
        ];
        for (url, says) in cases {
            let e = parse(url, Source::Config, &[]).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("s3cr"), "a password is never quoted: {e}");
        }
        let p = parse(
            "postgres://a@h/d?sslmode=verify-full&ca_file=/etc/rg/ca.pem",
            Source::Config,
            &[],
        )
        .unwrap();
        assert_eq!(p.ca, Some(CaSource::File("/etc/rg/ca.pem".into())));
        let p = parse(
            "postgres://a@h/d?sslmode=verify-ca&sslrootcert=system",
            Source::Config,
            &[],
        )
        .unwrap();
        assert_eq!(p.ca, Some(CaSource::System));
    }

    #[test]
    fn the_password_file_is_read_as_libpq_reads_it() {
        let text = "# comment\n\
                    other:5432:*:rg:no\n\
                    db.example.com:5432:rollguard:rg:p\\:ss\\\\word\n\
                    *:*:*:rg:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db.example.com", 5432, "rollguard", "rg").as_deref(),
            Some("p:ss\\word")
        );
        assert_eq!(
            pgpass_lookup(text, "elsewhere", 6000, "x", "rg").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup(text, "elsewhere", 6000, "x", "ops"), None);
        let dir = std::env::temp_dir().join(format!("rg-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "localhost:5432:rg:rg:secret\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mut p = parse("postgres:///rg?user=rg", Source::Config, &[]).unwrap();
        p.passfile = Some(file.clone());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            p.resolve_password(None),
            None,
            "a file others read is ignored"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(p.resolve_password(None).as_deref(), Some("secret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
