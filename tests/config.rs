//! Config loading: the example file is valid, and every kind of mistake is
//! reported at its FILE:LINE:COL with a useful message.

use std::path::Path;

use rollguard::config::{self, LoadError, ProbeKind, Require};

fn env(name: &str) -> Option<String> {
    match name {
        "PORT" => Some("8081".into()),
        "TOKEN" => Some("s3cret".into()),
        _ => None,
    }
}

fn errors(text: &str) -> Vec<String> {
    match config::parse(Path::new("fleet.toml"), text, &env) {
        Ok(_) => vec![],
        Err(LoadError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect(),
        Err(other) => panic!("unexpected {other}"),
    }
}

const BASE: &str = r#"
[[host]]
name = "web-1"
address = "127.0.0.1"

[[app]]
name = "checkout"

[[app.instance]]
name = "checkout-1"
host = "web-1"
port = 8081

[[app.probe]]
name = "health"
type = "http"
path = "/health"
"#;

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let fleet = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fleet.apps.len(), 2);
    let checkout = fleet.app("checkout").unwrap();
    assert_eq!(checkout.probes.len(), 4);
    assert_eq!(checkout.health.require, Require::All);
    assert_eq!(checkout.health.failure_threshold, 3);
    match &checkout.probes[0].kind {
        ProbeKind::Http(h) => assert_eq!(h.conditions.len(), 3),
        other => panic!("{other:?}"),
    }
    // The app without hosts runs on the implicit local host.
    assert_eq!(fleet.app("search").unwrap().instances[0].host, "local");
    assert!(fleet.host("local").is_some());
}

#[test]
fn minimal_config_gets_defaults() {
    let fleet = config::parse(Path::new("f.toml"), BASE, &env).unwrap();
    let app = &fleet.apps[0];
    assert_eq!(app.health.interval.as_secs(), 10);
    assert_eq!(app.health.success_threshold, 1);
    match &app.probes[0].kind {
        ProbeKind::Http(h) => {
            assert_eq!(h.method, "GET");
            assert!(h.expect_status[0].contains(204) && h.expect_status[0].contains(399));
            assert!(!h.expect_status[0].contains(404));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fleet.console.retention.as_secs(), 30 * 86_400);
}

#[test]
fn env_interpolation() {
    let text = BASE.replace("/health", "/health?t=${TOKEN}");
    let fleet = config::parse(Path::new("f.toml"), &text, &env).unwrap();
    match &fleet.apps[0].probes[0].kind {
        ProbeKind::Http(h) => assert!(format!("{:?}", h.target).contains("t=s3cret")),
        other => panic!("{other:?}"),
    }
    let errs = errors(&BASE.replace("/health", "/health?t=${NOPE}"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("fleet.toml:17:8: environment variable `NOPE` is not set"),
        "{errs:?}"
    );
    let literal = BASE.replace("/health", "/health?t=$${X}");
    let fleet = config::parse(Path::new("f.toml"), &literal, &env).unwrap();
    match &fleet.apps[0].probes[0].kind {
        ProbeKind::Http(h) => assert!(format!("{:?}", h.target).contains("t=${X}")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn syntax_error_has_position() {
    let errs = errors("[console\nrefresh = 1");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("fleet.toml:1:"), "{errs:?}");
}

#[test]
fn unknown_key_is_an_error() {
    let errs = errors(&BASE.replace("port = 8081", "port = 8081\nprot = 1"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("unknown field `prot`"), "{errs:?}");
    assert!(errs[0].starts_with("fleet.toml:13:1:"), "{errs:?}");
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let text = r#"
[[host]]
name = "web-1"

[[host]]
name = "web-1"

[[app]]
name = "checkout"

[[app.instance]]
name = "c-1"
host = "web-9"
port = 70000

[[app.instance]]
name = "c-1"
host = "web-1"
port = 8080

[[app.probe]]
name = "health"
type = "http"
path = "/health"
conditions = ['[BODY].status = "ok"']

[[app.probe]]
name = "cmd"
type = "command"

[[app.probe]]
name = "x"
type = "ftp"

[app.health]
success_threshold = 0
interval = "10"
"#;
    let errs = errors(text);
    let expect = [
        "fleet.toml:6:8: duplicate host name \"web-1\"",
        "fleet.toml:13:8: unknown host \"web-9\"",
        "fleet.toml:14:8: port 70000 is out of range",
        "fleet.toml:17:8: duplicate instance name \"c-1\"",
        // Column inside the string: the string starts at column 16 of the
        // line and its `=` is the condition's 15th character.
        "fleet.toml:25:30: condition does not parse: use `==` to compare",
        "fleet.toml:28:8: command probe \"cmd\" has no `command`",
        "fleet.toml:33:8: unknown probe type \"ftp\"",
        "fleet.toml:36:21: success_threshold must be at least 1, not 0",
        "fleet.toml:37:12: `10` has no unit",
    ];
    for e in expect {
        assert!(
            errs.iter().any(|got| got.starts_with(e)),
            "missing {e:?} in:\n{}",
            errs.join("\n")
        );
    }
    assert_eq!(errs.len(), expect.len(), "{}", errs.join("\n"));
    // Hints say what to do.
    assert!(
        errs.iter()
            .any(|e| e.contains("hint: known hosts: \"web-1\""))
    );
}

#[test]
fn probe_keys_must_fit_their_type() {
    let text = BASE.replace(
        "path = \"/health\"",
        "path = \"/health\"\ncommand = \"true\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("`command` does not apply to a http probe"),
        "{errs:?}"
    );
    let text = BASE.replace(
        "path = \"/health\"",
        "path = \"/health\"\nurl = \"http://x/\"",
    );
    assert!(errors(&text)[0].contains("either path or url"));
    let text = BASE.replace(
        "path = \"/health\"",
        "expect_status = [200, \"500-299\", \"abc\"]",
    );
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.contains("neither `path` nor `url`")),
        "{errs:?}"
    );
    assert_eq!(
        errs.iter()
            .filter(|e| e.contains("not a status range"))
            .count(),
        2,
        "{errs:?}"
    );
}

#[test]
fn templates_are_checked() {
    let text = BASE.replace(
        "type = \"http\"\npath = \"/health\"",
        "type = \"command\"\ncommand = \"curl {hots}:{port} | awk '{print $1}'\"",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("unknown placeholder {hots}"), "{errs:?}");
    let text = BASE.replace(
        "type = \"http\"\npath = \"/health\"",
        "type = \"command\"\ncommand = \"echo '{instance}'\"",
    );
    let errs = errors(&text);
    assert!(errs[0].contains("cannot be quoted safely"), "{errs:?}");
}

#[test]
fn hostile_names_are_refused() {
    let errs = errors(&BASE.replace("name = \"checkout-1\"", "name = \"x; rm -rf /\""));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("is not allowed"), "{errs:?}");
}

#[test]
fn discovery_order() {
    // An explicit path wins without touching the file system.
    let p = config::discover(Some(Path::new("/nonexistent/x.toml"))).unwrap();
    assert_eq!(p, Path::new("/nonexistent/x.toml"));
    // A missing explicit file is a read error naming it.
    let e = config::load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");
}
