//! Config loading: the example file is valid, and every kind of mistake is
//! reported at its FILE:LINE:COL with a useful message.

use std::path::Path;

use rollguard::config::{self, KeyRemap, LoadError, ProbeKind, Require};
use rollguard::tui::View;
use rollguard::tui::keymap::Keymap;

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
    assert_eq!(checkout.probes.len(), 6);
    match &checkout.probes[4].kind {
        ProbeKind::Prometheus(p) => {
            assert_eq!(p.conditions.len(), 1);
            assert_eq!(p.on_no_data, config::NoData::Pass);
            assert!(!checkout.probes[4].compares());
        }
        other => panic!("{other:?}"),
    }
    // The comparison of a canary with its baseline.
    assert!(checkout.probes[5].compares());
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
fn the_example_gives_every_action_its_default_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let fleet = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut named: Vec<&str> = fleet
        .console
        .keys
        .iter()
        .map(|r| r.action.as_str())
        .collect();
    let mut all = rollguard::tui::Action::remappable();
    named.sort_unstable();
    all.sort_unstable();
    assert_eq!(
        named, all,
        "config.example.toml lists every action that takes keys"
    );
    let example = Keymap::new(&fleet.console.keys).unwrap();
    let default = Keymap::default();
    for view in [View::Fleet, View::App(0)] {
        let keys =
            |k: &Keymap| -> Vec<String> { k.help_bindings(view).map(|b| b.keys_label()).collect() };
        assert_eq!(keys(&example), keys(&default), "{view:?}");
    }
    // The README names each of them, and the keys they take.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for name in all {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README lacks `{name}`"
        );
    }
}

#[test]
fn console_keys_are_read_in_file_order() {
    let text = format!(
        "[console.keys]\nquit = \"Q\"\ndown = [\"j\", \"Down\"]\nabort = \"X\"\nfire = \"ctrl-f\"\n{BASE}"
    );
    let fleet = config::parse(Path::new("f.toml"), &text, &env).unwrap_or_else(|e| panic!("{e}"));
    let remap = |action: &str, keys: &[&str]| KeyRemap {
        action: action.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    assert_eq!(
        fleet.console.keys,
        [
            remap("quit", &["Q"]),
            remap("down", &["j", "Down"]),
            remap("abort", &["X"]),
            remap("fire", &["ctrl-f"]),
        ]
    );
    let plain = config::parse(Path::new("f.toml"), BASE, &env).unwrap();
    assert!(plain.console.keys.is_empty(), "no remap unless asked");
}

#[test]
fn a_key_conflict_is_an_error_at_the_key() {
    // Two lines on one key: the later one is at fault.
    let errs = errors("[console.keys]\nquit = \"Q\"\nabort = [\"x\", \"Q\"]\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("fleet.toml:3:15: key \"Q\" would mean both abort and quit"),
        "{errs:?}"
    );
    assert!(errs[0].contains("hint: "), "{errs:?}");
    // A key another action has by default.
    let errs = errors("[console]\ntheme = \"mono\"\n\n[console.keys]\nhelp = \"q\"\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("fleet.toml:5:8: key \"q\" would mean both help and quit"),
        "{errs:?}"
    );
    assert!(errs[0].contains("quit's key by default"), "{errs:?}");
    // An unknown action at its name, an unreadable key at the key; every
    // one reported.
    let errs = errors("[console.keys]\nabrot = \"X\"\nup = [\"k\", \"Upp\"]\npress = \"p\"\n");
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("fleet.toml:2:1: unknown action \"abrot\""),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("hint: actions that take keys: quit"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("fleet.toml:3:12: \"Upp\" is not a key"),
        "{errs:?}"
    );
    assert!(errs[1].contains("PageDown"), "{errs:?}");
    assert!(
        errs[2].starts_with("fleet.toml:4:1: press keeps its keys"),
        "{errs:?}"
    );
    // A value that is neither a key nor a list of keys.
    let errs = errors("[console.keys]\nfire = 3\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("fleet.toml:2:8:"), "{errs:?}");
    assert!(errs[0].contains("a key such as \"q\""), "{errs:?}");
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
    assert!(
        !fleet.console.read_only,
        "a console acts unless told not to"
    );
    assert!(!app.protected, "apps are not protected unless told so");
}

#[test]
fn a_read_only_console_and_a_protected_app() {
    let text = format!(
        "[console]\nread_only = true\n{}",
        BASE.replace(
            "name = \"checkout\"\n",
            "name = \"checkout\"\nprotected = true\n"
        )
    );
    let fleet = config::parse(Path::new("f.toml"), &text, &env).unwrap();
    assert!(fleet.console.read_only);
    assert!(fleet.app("checkout").unwrap().protected);
    let errs = errors("[console]\nread_only = \"yes\"\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("fleet.toml:2:"), "{errs:?}");
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
    assert!(
        errs[0].starts_with(
            "fleet.toml:13:1: unknown key `prot` in app \"checkout\" › instance \"checkout-1\""
        ),
        "{errs:?}"
    );
    assert!(errs[0].contains("hint: did you mean `port`?"), "{errs:?}");
}

/// One run of `check` says every problem of a file: keys no table has (in
/// two tables), a value of the wrong type, a duration without a unit and
/// a probe of no known type, each at its place with what to do, and
/// exits 2 once.
#[test]
fn every_problem_of_a_file_is_reported_in_one_run() {
    let text = r#"[console]
refersh = "1s"

[[host]]
name = "web-1"
address = "127.0.0.1"

[[app]]
name = "checkout"

[[app.instance]]
name = "checkout-1"
host = "web-1"
port = 8081
prot = 8082

[[app.instance]]
name = "checkout-2"
host = "web-1"
port = "8083"

[[app.probe]]
name = "health"
type = "htp"
path = "/health"

[app.health]
intervall = "5s"
deadline = "10"
"#;
    let errs = errors(text);
    let expect = [
        (
            "fleet.toml:2:1: unknown key `refersh` in console",
            "did you mean `refresh`?",
        ),
        (
            "fleet.toml:15:1: unknown key `prot` in app \"checkout\" › instance \"checkout-1\"",
            "did you mean `port`?",
        ),
        (
            "fleet.toml:20:8: `port` in app \"checkout\" › instance \"checkout-2\": invalid type: string \"8083\"",
            "what `port` takes",
        ),
        ("fleet.toml:24:8: unknown probe type \"htp\"", "hint:"),
        (
            "fleet.toml:28:1: unknown key `intervall` in app \"checkout\" › health",
            "did you mean `interval`?",
        ),
        ("fleet.toml:29:12: `10` has no unit", "hint:"),
    ];
    for (e, hint) in expect {
        let got = errs.iter().find(|got| got.starts_with(e));
        let got = got.unwrap_or_else(|| panic!("missing {e:?} in:\n{}", errs.join("\n")));
        assert!(got.contains(hint), "{got}");
    }
    assert_eq!(errs.len(), expect.len(), "{}", errs.join("\n"));

    // The binary: every one of them, then one line with the code; exit 2.
    let dir = std::env::temp_dir().join(format!("rollguard-test-every-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fleet.toml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollguard"))
        .arg("--config")
        .arg(&file)
        .arg("check")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    for (e, _) in expect {
        let (_, rest) = e.split_once(':').unwrap();
        assert!(said.contains(rest), "missing {rest:?} in:\n{said}");
    }
    assert!(
        said.trim_end().ends_with(
            "E_CONFIG: 6 problems in the config: fix them and run `rollguard check` again"
        ),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
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

/// The errors of `text`, or the panic message when parsing panicked.
fn errors_or_panic(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let text = text.to_string();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match config::parse(Path::new("fleet.toml"), &text, env) {
            Ok(_) => vec![],
            Err(LoadError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect(),
            Err(other) => vec![other.to_string()],
        }
    }));
    caught.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// BASE with one condition line (written as `literal`) on its probe, which
/// is line 18.
fn with_condition(literal: &str) -> String {
    BASE.replace(
        "path = \"/health\"",
        &format!("path = \"/health\"\nconditions = [{literal}]"),
    )
}

#[test]
fn condition_errors_point_into_the_string_as_written() {
    // A tab escape before a two-byte character: the decoded column must be
    // mapped back through the escape, not applied to the raw bytes.
    let errs = errors_or_panic(&with_condition(r#""\t[BODY].é""#), &env).unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    // `conditions = [` is 14 characters, the quote the 15th, `\t` the
    // 16th and 17th; the condition's error is after it.
    let e = config::parse(
        Path::new("f.toml"),
        &with_condition(r#""\t[BODY].é""#),
        &env,
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    let decoded = match rollguard::condition::Condition::parse("\t[BODY].é") {
        Err(c) => c.column,
        Ok(_) => panic!("the condition is expected not to parse"),
    };
    assert!(decoded > 1, "the error is past the tab: {decoded}");
    // Raw column: 15 (the quote) + 2 (the escape) + (decoded - 1).
    let col = 16 + decoded;
    assert!(
        e.starts_with(&format!("f.toml:18:{col}: condition does not parse")),
        "{e}"
    );

    // An expansion before a multi-byte character: the error points into
    // the text as written, past the `${...}`.
    let text = with_condition(r#""${TOKEN}[BODY].é""#);
    let errs = errors_or_panic(&text, &env).unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    let decoded = match rollguard::condition::Condition::parse("s3cret[BODY].é") {
        Err(c) => c.column,
        Ok(_) => panic!("the condition is expected not to parse"),
    };
    assert!(decoded == 1, "the value itself is the problem: {decoded}");
    assert!(
        errs[0].starts_with("fleet.toml:18:16: condition does not parse"),
        "{errs:?}"
    );

    // A multi-byte value expanded before the error: the column is the one
    // in the file, after `${NAME}` as written.
    let wide = |n: &str| (n == "WIDE").then(|| "ééé".to_string());
    let text = with_condition(r#""[BODY].a${WIDE} = 1""#);
    let errs = errors_or_panic(&text, &wide).unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    // `=` is the 13th decoded character; in the file it is the 17th of the
    // string (`${WIDE}` is 7 characters for 3), so column 15 + 17.
    assert!(
        errs[0].starts_with("fleet.toml:18:32: condition does not parse"),
        "{errs:?}"
    );

    // Multi-line and literal strings.
    let text = with_condition("'''\n\t[BODY].é'''");
    let errs = errors_or_panic(&text, &env).unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("fleet.toml:19:"), "{errs:?}");
}

/// A small deterministic generator, so the test needs no dependency and
/// reproduces the same strings on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

#[test]
fn odd_strings_never_panic_and_errors_point_inside_the_file() {
    let pieces = [
        "\\t",
        "\\n",
        "\\\\",
        "\\\"",
        "\\u00e9",
        "\\U0001F600",
        "é",
        "日本",
        "😀",
        "\t",
        " ",
        "[BODY]",
        "[STATUS]",
        ".a",
        "==",
        "=",
        "<",
        "200",
        "\"",
        "'",
        "${TOKEN}",
        "${WIDE}",
        "${NOPE}",
        "$${",
        "${",
        "}",
        "$",
        "{",
        "x",
        "\u{301}",
    ];
    let env = |n: &str| match n {
        "TOKEN" => Some("s3cret".to_string()),
        "WIDE" => Some("é日😀\t".to_string()),
        _ => None,
    };
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let len = (g.next() % 8) as usize;
        let body: String = (0..len).map(|_| g.pick(&pieces)).collect();
        // Only the pieces valid in each kind of string.
        let literal = match round % 4 {
            0 => format!("\"{body}\""),
            1 => format!("\"\"\"\n{body}\"\"\""),
            2 => format!("'{}'", body.replace(['\'', '\n'], "")),
            _ => format!("'''{}'''", body.replace('\'', "")),
        };
        let key = g.pick(&["conditions", "path", "body_contains", "timeout", "url"]);
        let text = if key == "conditions" {
            with_condition(&literal)
        } else {
            BASE.replace("path = \"/health\"", &format!("{key} = {literal}"))
        };
        let errs = errors_or_panic(&text, &env)
            .unwrap_or_else(|p| panic!("panicked on {literal} ({key}): {p}\n{text}"));
        let lines: Vec<&str> = text.split('\n').collect();
        for e in &errs {
            let Some(pos) = e.strip_prefix("fleet.toml:") else {
                panic!("{e}");
            };
            let mut parts = pos.splitn(3, ':');
            let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
            let col: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            assert!(line >= 1 && line <= lines.len(), "{e} for {literal}");
            let width = lines[line - 1].chars().count();
            assert!(
                col >= 1 && col <= width + 1,
                "{e} (line has {width}) for {literal}"
            );
        }
    }
}

#[test]
fn durations_out_of_bounds_are_errors_at_their_key() {
    // Sums that overflow, and values that would make a wait last forever.
    let huge = format!("1{}s", "0".repeat(400));
    for (value, what) in [
        ("10000000000000000000s10000000000000000000s", "out of range"),
        ("18446744073709551615s1s", "out of range"),
        ("5000000000000d", "at most 1d"),
        (huge.as_str(), "out of range"),
        ("2d", "at most 1d"),
    ] {
        let text = BASE.replace(
            "path = \"/health\"",
            &format!("path = \"/health\"\n\n[app.health]\ninterval = \"{value}\""),
        );
        let errs = errors_or_panic(&text, &env).unwrap_or_else(|p| panic!("{value}: {p}"));
        assert_eq!(errs.len(), 1, "{value}: {errs:?}");
        assert!(
            errs[0].starts_with("fleet.toml:20:12: "),
            "{value}: {errs:?}"
        );
        assert!(errs[0].contains(what), "{value}: {errs:?}");
        assert!(errs[0].contains("hint: "), "{value}: {errs:?}");
    }

    // Every duration key has bounds; one past them is refused at its
    // place, with what is allowed, and the bound itself is accepted.
    let cases: [(&str, &str, &str, &str, &str); 14] = [
        ("[console]", "refresh", "2h", "1h", "at most 1h"),
        ("[console]", "refresh", "50ms", "100ms", "at least 100ms"),
        ("[console]", "retention", "3651d", "3650d", "at most 3650d"),
        ("[app.health]", "initial_delay", "25h", "1d", "at most 1d"),
        ("[app.health]", "deadline", "8d", "7d", "at most 7d"),
        ("[app.health]", "deadline", "500ms", "1s", "at least 1s"),
        ("[app.health]", "monitor", "8d", "0s", "at most 7d"),
        ("[app.rollout]", "pause", "8d", "7d", "at most 7d"),
        ("[app.rollout]", "step_pause", "8d", "7d", "at most 7d"),
        ("[app.rollout]", "confirm_window", "8d", "7d", "at most 7d"),
        ("[app.process]", "grace", "2h", "1h", "at most 1h"),
        ("[app.traffic]", "drain_timeout", "2d", "1d", "at most 1d"),
        ("[[app.probe]]", "timeout", "11m", "10m", "at most 10m"),
        (
            "[[host]]",
            "ssh",
            "{ connect_timeout = \"11m\" }",
            "{ connect_timeout = \"10m\" }",
            "at most 10m",
        ),
    ];
    for (section, key, bad, good, what) in cases {
        let block = |v: &str| {
            let body = match section {
                "[app.process]" => format!("run = \"app\"\n{key} = \"{v}\""),
                "[app.traffic]" => {
                    format!("type = \"haproxy\"\nsocket = \"/s\"\nbackend = \"b\"\n{key} = \"{v}\"")
                }
                "[[app.probe]]" => format!("name = \"p2\"\ntype = \"tcp\"\n{key} = \"{v}\""),
                "[[host]]" => format!("name = \"web-2\"\n{key} = {v}"),
                _ => format!("{key} = \"{v}\""),
            };
            let mut text = BASE.to_string();
            if section == "[console]" || section == "[[host]]" {
                text = format!("{section}\n{body}\n{text}");
            } else {
                text.push_str(&format!("\n{section}\n{body}\n"));
            }
            text
        };
        let text = block(good);
        assert_eq!(
            errors(&text),
            Vec::<String>::new(),
            "{section} {key} = {good}"
        );
        let text = block(bad);
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{section} {key} = {bad}: {errs:?}");
        let line = text
            .lines()
            .position(|l| l.contains(bad))
            .map_or(0, |i| i + 1);
        assert!(
            errs[0].starts_with(&format!("fleet.toml:{line}:")),
            "{section} {key} = {bad}: {errs:?}"
        );
        let named = if key == "ssh" { "connect_timeout" } else { key };
        assert!(
            errs[0].contains(&format!(": {named} must be {what}")) && errs[0].contains("hint: "),
            "{section} {key} = {bad}: {errs:?}"
        );
    }
}

#[test]
fn url_ports_and_header_values_are_checked_at_load() {
    let with = |lines: &str| BASE.replace("path = \"/health\"", lines);
    // Line 17 holds the key; columns are inside the string as written.
    for (lines, expect) in [
        (
            r#"url = "http://{host}:99999/health""#,
            "fleet.toml:17:22: port 99999 in url is out of range",
        ),
        (
            r#"url = "https://user:pw@example.com:0""#,
            "fleet.toml:17:36: port 0 in url is out of range",
        ),
        (
            r#"url = "http://[::1]:65536/""#,
            "fleet.toml:17:21: port 65536 in url is out of range",
        ),
        (
            r#"url = "http://x:8o/""#,
            "fleet.toml:17:17: `8o` in url is not a port",
        ),
        (
            r#"url = "http://x/a\nb""#,
            "fleet.toml:17:18: url holds a control character",
        ),
        (
            r#"path = "/a\u0000""#,
            "fleet.toml:17:11: path holds a control character",
        ),
        (
            "path = \"/h\"\nheaders = { X-Token = \"a\\nb\" }",
            "fleet.toml:18:25: header X-Token holds a control character",
        ),
        (
            "path = \"/h\"\nheaders = { X-Token = \"${CRLF}\" }",
            "fleet.toml:18:24: header X-Token holds a control character",
        ),
        (
            "path = \"/h\"\nheaders = { \"Bad Name\" = \"v\" }",
            "fleet.toml:18:26: \"Bad Name\" is not a header name",
        ),
    ] {
        let env = |n: &str| match n {
            "CRLF" => Some("ok\r\nInjected: 1".to_string()),
            other => env(other),
        };
        let errs = errors_or_panic(&with(lines), &env).unwrap_or_else(|p| panic!("{lines}: {p}"));
        assert_eq!(errs.len(), 1, "{lines}: {errs:?}");
        assert!(errs[0].starts_with(expect), "{lines}: {errs:?}");
        assert!(errs[0].contains("hint: "), "{lines}: {errs:?}");
    }
    // What is fine stays fine: placeholders, a tab in a value, IPv6, no port.
    for lines in [
        r#"url = "http://{host}:{port}/health""#,
        r#"url = "http://[::1]:8080/""#,
        r#"url = "https://example.com/a:b?c=d:1""#,
        r#"url = "http://example.com:65535""#,
        "path = \"/h\"\nheaders = { X-Token = \"a\\tb\", Authorization = \"Bearer ${TOKEN}\" }",
    ] {
        assert_eq!(errors(&with(lines)), Vec::<String>::new(), "{lines}");
    }
}

#[test]
fn every_app_knows_the_values_from_the_environment() {
    let text =
        format!("{BASE}\n[app.process]\nrun = \"app --token ${{TOKEN}} --port ${{PORT}}\"\n")
            .replace("address = \"127.0.0.1\"", "address = \"${HOSTADDR}\"");
    let env = |n: &str| match n {
        "HOSTADDR" => Some("10.1.2.3".to_string()),
        other => env(other),
    };
    let fleet = config::parse(Path::new("f.toml"), &text, &env).unwrap_or_else(|e| panic!("{e}"));
    let app = &fleet.apps[0];
    let run = &app.process.as_ref().unwrap().run;
    assert_eq!(run, "app --token s3cret --port 8081");
    assert_eq!(app.secrets.mask(run), "app --token *** --port ***");
    assert_eq!(app.secrets.mask("ssh 10.1.2.3"), "ssh ***");
    let template = app.secrets.template(run);
    assert_eq!(template, "app --token ${TOKEN} --port ${PORT}");
    assert_eq!(app.secrets.expand(&template).as_deref(), Ok(run.as_str()));
    assert!(!format!("{:?}", app.secrets).contains("s3cret"));
    // Nothing interpolated, nothing to hide.
    let plain = config::parse(Path::new("f.toml"), BASE, &env).unwrap();
    assert!(plain.apps[0].secrets.is_empty());
}

/// The `[[notify]]` examples of config.example.toml, uncommented.
fn example_receivers() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let block = text
        .split("# notify examples begin\n")
        .nth(1)
        .and_then(|rest| rest.split("# notify examples end").next())
        .expect("config.example.toml has its notify examples");
    block
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .collect::<Vec<_>>()
        .join("\n")
}

fn notify_env(name: &str) -> Option<String> {
    match name {
        "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/T1/B2/sl4ck-t0ken".into()),
        "DISCORD_WEBHOOK_URL" => Some("https://discord.com/api/webhooks/1/d1sc0rd-t0ken".into()),
        "ROLLGUARD_HOOK_SECRET" => Some("h00k-s3cret".into()),
        "PAGERDUTY_ROUTING_KEY" => Some("r0uting-k3y".into()),
        "SMTP_PASSWORD" => Some("smtp-pa55".into()),
        "ROLLGUARD_STREAM_TOKEN" => Some("str3am-t0k".into()),
        other => env(other),
    }
}

#[test]
fn the_example_receivers_load_with_their_secrets_hidden() {
    use rollguard::config::ReceiverKind;
    use rollguard::model::topic::Topic;
    let text = format!("{BASE}\n{}", example_receivers());
    let fleet =
        config::parse(Path::new("f.toml"), &text, &notify_env).unwrap_or_else(|e| panic!("{e}"));
    let receivers = fleet.receivers();
    let types: Vec<&str> = receivers.iter().map(|r| r.kind.type_name()).collect();
    assert_eq!(
        types,
        [
            "slack",
            "discord",
            "webhook",
            "pagerduty",
            "command",
            "email",
            "websocket"
        ]
    );
    let mail = fleet.receiver("oncall-mail").unwrap();
    let ReceiverKind::Email(spec) = &mail.kind else {
        panic!("{mail:?}")
    };
    assert_eq!((spec.port, spec.tls), (587, config::SmtpTls::Starttls));
    assert_eq!(spec.password.as_deref(), Some("smtp-pa55"));
    let pager = fleet.receiver("pager").unwrap();
    assert!(matches!(
        &pager.kind,
        ReceiverKind::Pagerduty { url, routing_key }
            if url == config::PAGERDUTY_URL && routing_key == "r0uting-k3y"
    ));
    assert_eq!(pager.retry_for, std::time::Duration::from_secs(6 * 3600));
    let discord = fleet.receiver("team-discord").unwrap();
    assert_eq!(discord.on, Topic::DEFAULT);
    assert_eq!(discord.timeout, std::time::Duration::from_secs(10));
    assert_eq!(
        fleet.apps[0].notify.len(),
        7,
        "every receiver hears of checkout"
    );
    for r in &receivers {
        let shown = format!("{r:?}");
        for var in [
            "SLACK_WEBHOOK_URL",
            "DISCORD_WEBHOOK_URL",
            "ROLLGUARD_HOOK_SECRET",
            "PAGERDUTY_ROUTING_KEY",
            "SMTP_PASSWORD",
            "ROLLGUARD_STREAM_TOKEN",
        ] {
            let s = notify_env(var).unwrap();
            assert!(!shown.contains(&s), "{shown}");
            assert_eq!(r.secrets.mask(&format!("x {s} y")), "x *** y", "{}", r.name);
        }
    }
    // A URL written in the file is hidden as well.
    let hook = fleet.receiver("audit-hook").unwrap();
    assert_eq!(
        hook.secrets
            .mask("POST https://hooks.example.internal/rollguard"),
        "POST ***"
    );
}

/// An email receiver's lines, from line 20.
const EMAIL: &str = "name = \"a\"\ntype = \"email\"\nhost = \"smtp.example.com\"\n\
                     from = \"rg@example.com\"\nto = [\"oncall@example.com\"]";

#[test]
fn receivers_are_checked_at_their_place() {
    let with = |entry: &str| errors(&format!("{BASE}\n[[notify]]\n{entry}"));
    // The entry's first line (its name) is line 20.
    for (entry, at, what) in [
        (
            "name = \"a\"\ntype = \"sms\"\nurl = \"http://x\"",
            "21:8",
            "unknown receiver type \"sms\"",
        ),
        (
            "name = \"a\"\ntype = \"websocket\"\ntoken = \"${TOKEN}\"",
            "20:8",
            "websocket receiver \"a\" has no `listen`",
        ),
        (
            &format!("{EMAIL}\nusername = \"ops\"\npassword = \"hunter22\""),
            "26:12",
            "password is written in the file",
        ),
        (
            &format!("{EMAIL}\ntls = \"none\"\nusername = \"ops\"\npassword = \"${{TOKEN}}\""),
            "27:12",
            "the password would cross the network unencrypted to smtp.example.com",
        ),
        (
            &format!("{EMAIL}\npassword = \"${{TOKEN}}\""),
            "25:12",
            "password without a username",
        ),
        (
            &EMAIL.replace("rg@example.com", "not an address"),
            "23:8",
            "from is not an email address",
        ),
        (
            &EMAIL.replace("\nto = [\"oncall@example.com\"]", ""),
            "20:8",
            "email receiver \"a\" has no `to`",
        ),
        (
            &format!("{EMAIL}\nport = 70000"),
            "25:8",
            "port 70000 is out of range",
        ),
        (
            &format!("{EMAIL}\ntls = \"ssl\""),
            "25:7",
            "unknown tls \"ssl\"",
        ),
        (
            &format!("{EMAIL}\nca_file = \"no-such-ca.pem\""),
            "25:11",
            "cannot read ca_file",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\nport = 25",
            "23:8",
            "`port` does not apply to a slack receiver",
        ),
        (
            "name = \"a\"\ntype = \"slack\"",
            "20:8",
            "slack receiver \"a\" has no `url`",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"hooks.slack.com\"",
            "22:7",
            "not an http:// or https:// URL",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\nrouting_key = \"k\"",
            "23:15",
            "`routing_key` does not apply to a slack receiver",
        ),
        (
            "name = \"a\"\ntype = \"pagerduty\"",
            "20:8",
            "has no `routing_key`",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\non = [\"incident_opened\", \"incident_widened\"]",
            "23:26",
            "unknown notification \"incident_widened\"",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\non = []",
            "23:6",
            "listens to nothing",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\napps = [\"checkout\", \"shop\"]",
            "23:21",
            "no app named \"shop\"",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\napps = []",
            "23:8",
            "apps is empty",
        ),
        (
            "name = \"a\"\ntype = \"command\"\nrun = \"notify '{app}'\"",
            "22:7",
            "inside single quotes",
        ),
        (
            "name = \"a\"\ntype = \"command\"\nrun = \"notify {nope}\"",
            "22:7",
            "unknown placeholder {nope}",
        ),
        (
            "name = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\ntimeout = \"10m\"",
            "23:11",
            "timeout must be at most 5m",
        ),
        (
            "name = \"a b\"\ntype = \"slack\"\nurl = \"http://x\"",
            "20:8",
            "receiver name \"a b\" is not allowed",
        ),
    ] {
        let errs = with(entry);
        assert_eq!(errs.len(), 1, "{entry}: {errs:?}");
        assert!(
            errs[0].starts_with(&format!("fleet.toml:{at}: ")),
            "{entry}: {errs:?}"
        );
        assert!(errs[0].contains(what), "{entry}: {errs:?}");
    }
    let twice = errors(&format!(
        "{BASE}\n[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"http://x\"\n\
         [[notify]]\nname = \"a\"\ntype = \"discord\"\nurl = \"http://y\"\n"
    ));
    assert_eq!(twice.len(), 1, "{twice:?}");
    assert!(
        twice[0].contains("duplicate receiver name \"a\""),
        "{twice:?}"
    );
    // A secret that is not a URL is pointed at, never repeated.
    let secret = errors(&format!(
        "{BASE}\n[[notify]]\nname = \"a\"\ntype = \"slack\"\nurl = \"${{TOKEN}}\"\n"
    ));
    assert_eq!(secret.len(), 1, "{secret:?}");
    assert!(!secret[0].contains("s3cret"), "{secret:?}");
}

/// A value from the environment may be a secret: an error that quotes
/// what it read masks it.
#[test]
fn an_error_never_quotes_a_value_from_the_environment() {
    let text = format!("{BASE}conditions = [\"[STATUS] == ${{TOKEN}}\"]\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("condition does not parse"), "{errs:?}");
    assert!(!errs[0].contains("s3cret"), "{errs:?}");
    assert!(errs[0].contains("***"), "{errs:?}");
}

/// `rollguard check` on a config whose values or path hold control
/// characters: what it prints of them is escaped, as what hosts send is;
/// nothing sets the terminal's title or clears its screen.
#[test]
fn check_prints_nothing_from_a_config_raw() {
    let dir = std::env::temp_dir().join(format!("rollguard-test-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let check = |file: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollguard"))
            .arg("--config")
            .arg(file)
            .arg("check")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };
    let raw = |said: &str| said.chars().any(|c| c.is_control() && c != '\n');

    // The issue's app name: an OSC that sets the title, then a clear.
    let hostile = BASE.replace(
        "name = \"checkout\"",
        r#"name = "web\u001b]0;pwned\u0007\u001b[2J""#,
    );
    let file = dir.join("fleet.toml");
    std::fs::write(&file, &hostile).unwrap();
    let (code, said) = check(&file);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("is not allowed"), "{said}");
    assert!(!raw(&said), "printed raw: {said:?}");
    assert!(said.contains(r"web\x1b]0;pwned\x07\x1b[2J"), "{said}");

    // A valid config at a path with the same bytes in its name.
    let file = dir.join("fleet\u{1b}]0;pwned\u{7}.toml");
    std::fs::write(&file, BASE).unwrap();
    let (code, said) = check(&file);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains(": ok:"), "{said}");
    assert!(!raw(&said), "printed raw: {said:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
