//! The console as a person meets it: `rollguard demo` in a real tmux pane.
//! Waits for sparklines, presses `?` then `q`, and checks the screen, that
//! the shell prompt comes back, and that everything the demo started is
//! gone (nginx's workers too), its ports closed and its folder removed.
//! Then a bad release of the demo's `payments`, whose armed rollback is
//! fired from the console's keys.

mod common;
#[path = "common/demo.rs"]
mod demo_footprint;

use common::tmux::{SPARK, demo_dir, quit_and_check_stopped, session};

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// A demo picks free ports and binds them a moment later: two demos at once
/// could pick the same port. Each test holds this while its demo runs.
static ONE_DEMO: Mutex<()> = Mutex::new(());

fn one_demo() -> MutexGuard<'static, ()> {
    ONE_DEMO.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn demo_in_tmux_shows_sparklines_help_and_quits() {
    let test = "demo_in_tmux_shows_sparklines_help_and_quits";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let _one = one_demo();
    let s = session("help");
    // A private TMPDIR marks this demo's processes (their files live there).
    let tmp = common::TempDir::new("tmux");
    let marker = tmp.0.to_string_lossy().to_string();
    s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);
    let sampler = demo_footprint::Sampler::start(&demo_dir(&tmp.0));

    // Each app row shows a sparkline of at least eight results.
    let screen = s.wait(
        "sparklines of all three apps",
        Duration::from_secs(40),
        |sc| {
            ["checkout", "payments", "search"].iter().all(|app| {
                sc.lines().any(|l| {
                    l.contains(app)
                        && l.chars().filter(|c| SPARK.contains(c) || *c == '✖').count() >= 8
                })
            })
        },
    );
    assert!(screen.contains("rollguard"), "header missing:\n{screen}");
    assert!(screen.contains("/3"), "healthy counts missing:\n{screen}");

    s.keys(&["?"]);
    let help = s.wait("the help popup", Duration::from_secs(10), |sc| {
        sc.contains(" keys ") && sc.contains("show / hide this help")
    });
    for line in [
        "open the selected app",
        "close popup / go back",
        "show / hide the log pane",
    ] {
        assert!(help.contains(line), "help lists {line:?}:\n{help}");
    }

    quit_and_check_stopped(&s, &marker);
    sampler.finish().assert_all_gone(Duration::from_secs(5));
}

#[test]
fn an_armed_rollback_is_fired_from_the_console() {
    let test = "an_armed_rollback_is_fired_from_the_console";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let _one = one_demo();
    let s = session("fire");
    let tmp = common::TempDir::new("tmux-fire");
    let marker = tmp.0.to_string_lossy().to_string();
    s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);
    let dir = demo_dir(&tmp.0);
    let sampler = demo_footprint::Sampler::start(&dir);
    s.wait("the fleet", Duration::from_secs(40), |sc| {
        sc.contains("payments") && sc.contains("v1")
    });

    // v3 passes its first gate, fails while watched, and the rollback
    // waits for an operator (the demo's payments has confirm = 60 s).
    let out = Command::new(dir.join("rg"))
        .args(["deploy", "payments", "v3", "--yes", "--detach", "--json"])
        .output()
        .expect("run rg deploy");
    assert!(
        out.status.success(),
        "deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    s.keys(&["j"]); // select payments
    let armed = s.wait("the armed rollback", Duration::from_secs(90), |sc| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("rollback of v3"))
    });
    assert!(
        armed.contains("f fire rollback"),
        "the footer offers fire:\n{armed}"
    );
    assert!(armed.contains("h hold"), "the footer offers hold:\n{armed}");

    // f asks, on Cancel, with a reason; Tab moves to Fire, Enter sends.
    s.keys(&["f"]);
    let ask = s.wait("the question", Duration::from_secs(10), |sc| {
        sc.contains("Roll payments back now")
    });
    assert!(ask.contains("go back to v1"), "{ask}");
    s.keys(&["-l", "v3 fails its health checks"]);
    s.wait("the reason", Duration::from_secs(10), |sc| {
        sc.contains("reason: v3 fails its health checks") && sc.contains("> Cancel <")
    });
    s.keys(&["Tab"]);
    s.wait("Fire focused", Duration::from_secs(10), |sc| {
        sc.contains("> Fire <")
    });
    s.keys(&["Enter"]);
    s.wait("the rollback to end", Duration::from_secs(90), |sc| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("v3 rolled back"))
    });

    // The history says who fired it, why, and that it came from the key.
    let out = Command::new(dir.join("rg"))
        .args(["history", "payments", "--json"])
        .output()
        .expect("run rg history");
    let history: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("history prints JSON");
    let last = &history.as_array().expect("an array")[0];
    assert_eq!(last["outcome"], "rolled_back", "{last:#}");
    let store = rollguard::store::Store::open(&dir.join("history.db")).unwrap();
    let id = last["id"].as_i64().unwrap();
    let events = store.deployment_events(id, 0).unwrap();
    let fired = events
        .iter()
        .find(|e| e.kind == "command_fire")
        .unwrap_or_else(|| panic!("no command_fire in {events:#?}"));
    assert_eq!(fired.reason.as_deref(), Some("v3 fails its health checks"));
    assert!(
        events.iter().any(|e| e.kind == "rollback_fired"
            && e.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("fired by"))),
        "{events:#?}"
    );

    quit_and_check_stopped(&s, &marker);
    sampler.finish().assert_all_gone(Duration::from_secs(5));
}
