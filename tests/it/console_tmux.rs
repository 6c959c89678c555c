//! The console as a person meets it: `rollguard demo` in a real tmux pane.
//! Waits for sparklines, presses `?` then `q`, and checks the screen, that
//! the shell prompt comes back, and that everything the demo started is
//! gone (nginx's workers too), its ports closed and its folder removed.
//! Then a bad release of the demo's `payments`, whose armed rollback is
//! fired from the console's keys. And what the demo shows while it sets
//! up, before the fleet is up.

use crate::common;
use crate::common::demo as demo_footprint;
use demo_footprint::one_demo;

use common::tmux::{SPARK, demo_dir, quit_and_check_stopped, session};

use std::process::Command;
use std::time::Duration;

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

/// The reproduced bug: the screen stayed blank for about three seconds
/// while the demo's instances started. What the demo writes to the
/// terminal is recorded from its first byte (`tmux pipe-pane`): a screen
/// that says the demo is being set up comes before the first frame that
/// names an app, and the console then takes that screen over.
#[test]
fn the_demo_says_it_is_setting_up_before_its_fleet_is_up() {
    let test = "the_demo_says_it_is_setting_up_before_its_fleet_is_up";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let _one = one_demo();
    let s = session("setting-up");
    let tmp = common::TempDir::new("tmux-setting-up");
    let marker = tmp.0.to_string_lossy().to_string();
    let record = tmp.0.join("terminal.out");
    s.tmux(&[
        "pipe-pane",
        "-o",
        "-t",
        &s.0,
        &format!("cat >> '{}'", record.display()),
    ]);
    s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);
    let sampler = demo_footprint::Sampler::start(&demo_dir(&tmp.0));
    s.wait("the fleet", Duration::from_secs(40), |sc| {
        sc.contains("checkout") && sc.contains("v1")
    });
    let out = String::from_utf8_lossy(&std::fs::read(&record).unwrap()).into_owned();
    let setting_up = out
        .find("Setting up the demo")
        .unwrap_or_else(|| panic!("no set-up screen in what the demo wrote:\n{out:?}"));
    let first_app = ["checkout", "payments", "search"]
        .iter()
        .filter_map(|app| out.find(app))
        .min()
        .expect("the fleet was drawn");
    assert!(
        setting_up < first_app,
        "the set-up screen comes first ({setting_up} vs {first_app})"
    );
    // Handed over: the shell's screen is not put back between the two.
    let between = &out[setting_up..first_app];
    assert!(
        !between.contains("\x1b[?1049l"),
        "the alternate screen was left between set-up and the console: {between:?}"
    );
    quit_and_check_stopped(&s, &marker);
    sampler.finish().assert_all_gone(Duration::from_secs(5));
}
