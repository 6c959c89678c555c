//! Nothing an endpoint answers reaches the terminal raw: `rollguard probe`
//! prints what a hostile server sent (escape sequences that set the window
//! title and clear the screen) as visible text. And a reader that goes
//! away (`| head`) ends the output of a reading command without a panic.
//! What the binary prints for the shell and for `man`: a completion script
//! that bash takes and that, at a TAB, offers the subcommands, the
//! config's apps and an app's releases from the history; a manual page
//! with every command.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

#[test]
fn probe_output_shows_escape_sequences_instead_of_sending_them() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let body = "\u{1b}]0;owned\u{7}\u{1b}[2Jnot healthy";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = std::env::temp_dir().join(format!("rollguard-terminal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("rollguard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[app]]
name = "web"

[[app.probe]]
name = "health"
type = "http"
path = "/health"
body_contains = "healthy-and-well"

[[app.instance]]
name = "web-1"
port = {port}
"#
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(dir.join("history.db"))
        .arg("probe")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the probe fails: {stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "no raw control character reaches the terminal: {stdout:?}"
    );
    assert!(stdout.contains("web-1"), "{stdout}");
}

#[test]
fn a_closed_pipe_ends_the_output_of_reading_commands_without_a_panic() {
    let dir = std::env::temp_dir().join(format!("rollguard-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("rollguard.toml");
    std::fs::write(
        &config,
        "[[app]]\nname = \"web\"\n[[app.instance]]\nname = \"web-1\"\nport = 1\n\
         [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\ntimeout = \"200ms\"\n",
    )
    .unwrap();
    let commands: [&[&str]; 6] = [
        &["status"],
        &["status", "--json"],
        &["history"],
        &["history", "--json"],
        &["probe"],
        &["probe", "--json"],
    ];
    for args in commands {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("--db")
            .arg(dir.join("history.db"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Nobody reads: the pipe is closed before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The subcommands a user sees (the hidden `worker` and `demo-app` are
/// not offered).
const COMMANDS: [&str; 21] = [
    "demo",
    "agent",
    "check",
    "probe",
    "deploy",
    "rollback",
    "approve",
    "hold",
    "fire",
    "abort",
    "pause",
    "resume",
    "status",
    "history",
    "events",
    "report",
    "incident",
    "recover",
    "notify",
    "completions",
    "man",
];

/// What bash offers at a TAB after `line` (the script `rollguard
/// completions bash` printed, sourced; its function called as bash calls
/// it), one candidate a line.
fn bash_offers(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let cword = line.len() - 1;
    let prev = if cword > 0 { line[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_TYPE=9\n\
         _clap_complete_rollguard rollguard '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        words.join(" "),
        line[cword],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .env_remove("ROLLGUARD_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_bash_completion_offers_commands_apps_and_releases() {
    let dir = std::env::temp_dir().join(format!("rollguard-complete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("-F _clap_complete_rollguard rollguard"),
        "{script}"
    );
    let file = dir.join("rollguard.bash");
    std::fs::write(&file, &script).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // The subcommands, as the parser knows them.
    let offered = bash_offers(&file, &["rollguard", ""]);
    for c in COMMANDS {
        assert!(
            offered.iter().any(|o| o == c),
            "{c} not offered: {offered:?}"
        );
    }
    for hidden in ["worker", "demo-app"] {
        assert!(!offered.iter().any(|o| o == hidden), "{offered:?}");
    }

    // The config's apps (an unset ${NAME} in it does not hide them).
    let config = dir.join("rollguard.toml");
    std::fs::write(
        &config,
        "[[app]]\nname = \"checkout\"\n[[app.instance]]\nname = \"c-1\"\nport = 1\n\
         [[app]]\nname = \"web\"\n[[app.instance]]\nname = \"w-1\"\nport = \"${UNSET_PORT}\"\n",
    )
    .unwrap();
    let db = dir.join("history.db");
    {
        let store = rollguard::store::Store::open(&db).unwrap();
        store.touch_release("web", "v1").unwrap();
        store.mark_release_healthy("web", "v2", 1).unwrap();
        store.touch_release("api", "v9").unwrap();
    }
    let (config, db) = (config.display().to_string(), db.display().to_string());
    let offered = bash_offers(
        &file,
        &["rollguard", "--config", &config, "--db", &db, "deploy", ""],
    );
    for app in ["checkout", "web"] {
        assert!(offered.iter().any(|o| o == app), "{app}: {offered:?}");
    }
    let offered = bash_offers(&file, &["rollguard", "--config", &config, "abort", "we"]);
    assert_eq!(offered, ["web"]);

    // The releases of the app typed, from the history.
    let offered = bash_offers(
        &file,
        &[
            "rollguard",
            "--config",
            &config,
            "--db",
            &db,
            "deploy",
            "web",
            "",
        ],
    );
    for v in ["v1", "v2"] {
        assert!(offered.iter().any(|o| o == v), "{v}: {offered:?}");
    }
    assert!(!offered.iter().any(|o| o == "v9"), "{offered:?}");
    let offered = bash_offers(
        &file,
        &["rollguard", "--db", &db, "rollback", "web", "--to", ""],
    );
    assert!(offered.iter().any(|o| o == "v2"), "{offered:?}");

    // zsh and fish get their scripts too.
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("rollguard") && script.contains("COMPLETE"),
            "{script}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_manual_page_lists_every_command() {
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".TH rollguard 1 "), "{}", &page[..80]);
    assert!(
        page.contains(".SH SYNOPSIS") && page.contains(".SH COMMANDS"),
        "{page}"
    );
    for c in COMMANDS {
        let section = format!(".SS \"rollguard {}\"", c.replace('-', "\\-"));
        assert!(page.contains(&section), "{c} missing");
    }
    // A command's own options, and the commands of a command.
    assert!(page.contains(".SS \"rollguard notify test\""), "{page}");
    assert!(page.contains(r"\-\-confirm\-app"), "{page}");
    for hidden in ["worker", "demo\\-app"] {
        assert!(!page.contains(&format!("rollguard {hidden}")), "{hidden}");
    }
    // man reads it, when man is here.
    if let Ok(rendered) = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(page.as_bytes())?;
            child.wait_with_output()
        })
        && rendered.status.success()
    {
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(text.contains("rollguard deploy"), "{text}");
    }
}
