//! Where the history is, as a user gives it: `--db` (a path or a
//! `postgres://` URL without a password), else `$ROLLGUARD_DB`, else
//! `[store] url` of the config, else the default file. A location of
//! another scheme is refused with what to give, and creates nothing.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;
use rollguard::store::Store;
use serde_json::json;

const FLEET: &str = "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = 1\n\
                     [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n";

/// Runs rollguard in `dir` (its working folder, its home and its
/// `$XDG_DATA_HOME` under it), no history or config from this
/// environment, `env` set: (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .current_dir(dir)
        .env_remove("ROLLGUARD_DB")
        .env_remove("ROLLGUARD_CONFIG")
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A history at `path` whose one deployment is of version `version`.
fn history_of(path: &Path, version: &str) {
    let store = Store::open(path).unwrap();
    let id = store
        .create_deployment(
            "web",
            None,
            version,
            rollguard::config::Strategy::Rolling,
            "alice",
            None,
            &json!({}),
            &[],
        )
        .unwrap();
    store
        .finish_deployment(
            id,
            rollguard::model::DeploymentState::Done,
            rollguard::model::Outcome::Deployed,
        )
        .unwrap();
}

#[test]
fn a_location_of_another_scheme_is_refused_and_creates_nothing() {
    let dir = TempDir::new("location-scheme");
    std::fs::write(dir.join("fleet.toml"), FLEET).unwrap();
    let url = "mysql://x@y/z";
    for (args, env, source) in [
        (
            vec!["--config", "fleet.toml", "--db", url, "status"],
            vec![],
            "--db",
        ),
        (vec!["--db", url, "history"], vec![], "--db"),
        (
            vec!["--config", "fleet.toml", "status"],
            vec![("ROLLGUARD_DB", url)],
            "$ROLLGUARD_DB",
        ),
        (vec!["events"], vec![("ROLLGUARD_DB", url)], "$ROLLGUARD_DB"),
    ] {
        let (code, out, err) = run(&dir.0, &args, &env);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(
            err.starts_with(&format!("E_USAGE: {source}: mysql://")),
            "{err}"
        );
        assert!(
            err.contains("give a history file's path (SQLite) or a postgres:// URL"),
            "{err}"
        );
        assert_eq!(names(&dir.0), ["fleet.toml"], "{args:?} created something");
    }
}

#[test]
fn a_bad_store_url_in_the_config_is_a_config_error_at_its_place() {
    let dir = TempDir::new("location-config");
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        format!("{FLEET}\n[store]\nurl = \"sqlite:///tmp/h.db\"\n"),
    )
    .unwrap();
    let line = FLEET.lines().count() + 3;
    for args in [
        vec!["--config", "fleet.toml", "status"],
        vec!["--config", "fleet.toml", "history"],
        vec!["--config", "fleet.toml", "check"],
    ] {
        let (code, out, err) = run(&dir.0, &args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(
            err.starts_with(&format!(
                "E_CONFIG: fleet.toml:{line}:7: [store] url: sqlite:// is not a store"
            )),
            "{args:?}: {err}"
        );
        assert_eq!(names(&dir.0), ["fleet.toml"], "{args:?} created something");
    }
    // A password written in the file is refused when the file loads.
    std::fs::write(
        &config,
        format!("{FLEET}\n[store]\nurl = \"postgres://rg:hunter2@db/rg\"\n"),
    )
    .unwrap();
    let (code, out, err) = run(&dir.0, &["--config", "fleet.toml", "check"], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(&format!(
            "fleet.toml:{line}:7: [store] url has a password written in the file"
        )),
        "{err}"
    );
    assert!(err.contains("${NAME}"), "{err}");
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    let dir = TempDir::new("location-password");
    let (code, out, err) = run(
        &dir.0,
        &["--db", "postgres://u:pw@127.0.0.1/db", "history"],
        &[],
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.starts_with("E_USAGE: --db: a password"), "{err}");
    assert!(err.contains("PGPASSWORD"), "{err}");
    assert!(!err.contains("pw@"), "the password is not repeated: {err}");
    assert!(names(&dir.0).is_empty(), "created {:?}", names(&dir.0));
}

#[test]
fn a_postgres_url_never_becomes_a_folder() {
    // Nothing listens on port 1: however the connection fails, no
    // `postgres:` folder with an SQLite file inside appears.
    let dir = TempDir::new("location-postgres");
    let (code, out, err) = run(
        &dir.0,
        &[
            "--db",
            "postgres://rg@127.0.0.1:1/rg?connect_timeout=2",
            "history",
        ],
        &[],
    );
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(!err.contains("E_USAGE"), "a good URL: {err}");
    assert!(names(&dir.0).is_empty(), "created {:?}", names(&dir.0));
}

/// A command's arguments, its environment, and what it must read.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn the_flag_wins_over_the_environment_which_wins_over_the_config() {
    let dir = TempDir::new("location-precedence");
    let at = |name: &str| -> PathBuf { dir.join(name) };
    history_of(&at("configured.db"), "from-config");
    history_of(&at("flag.db"), "from-flag");
    history_of(&at("env.db"), "from-env");
    std::fs::create_dir_all(at("data/rollguard")).unwrap();
    history_of(&at("data/rollguard/history.db"), "from-default");
    std::fs::write(
        at("fleet.toml"),
        format!("{FLEET}\n[store]\nurl = \"${{RG_HISTORY}}\"\n"),
    )
    .unwrap();
    let configured = at("configured.db");
    let configured_env = ("RG_HISTORY", configured.to_str().unwrap());
    let flag = at("flag.db");
    let flag = flag.to_str().unwrap();
    let env = at("env.db");
    let env = ("ROLLGUARD_DB", env.to_str().unwrap());
    let cases: [Case<'_>; 6] = [
        (vec!["history", "--json"], vec![], "from-default"),
        (
            vec!["--config", "fleet.toml", "history", "--json"],
            vec![configured_env],
            "from-config",
        ),
        (
            vec!["--config", "fleet.toml", "--db", flag, "history", "--json"],
            vec![configured_env],
            "from-flag",
        ),
        (
            vec!["--config", "fleet.toml", "history", "--json"],
            vec![configured_env, env],
            "from-env",
        ),
        (
            vec!["--config", "fleet.toml", "--db", flag, "history", "--json"],
            vec![configured_env, env],
            "from-flag",
        ),
        // `status` needs the config, and reads the same history.
        (
            vec!["--config", "fleet.toml", "status", "--json"],
            vec![configured_env],
            "from-config",
        ),
    ];
    for (args, env, wanted) in cases {
        let (code, out, err) = run(&dir.0, &args, &env);
        assert_eq!(code, Some(0), "{args:?} {env:?}: {out}{err}");
        assert!(out.contains(wanted), "{args:?} {env:?} read {out}");
    }
}
