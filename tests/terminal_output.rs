//! Nothing an endpoint answers reaches the terminal raw: `rollguard probe`
//! prints what a hostile server sent (escape sequences that set the window
//! title and clear the screen) as visible text. And a reader that goes
//! away (`| head`) ends the output of a reading command without a panic.

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
