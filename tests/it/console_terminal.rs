//! The console and its terminal, in a real tmux pane with a shell that has
//! job control: the fleet is on the screen before the first probe result;
//! Ctrl-Z gives the terminal back and stops the console for the shell, and
//! `fg` brings it back whole; a resize redraws at the new size, and below
//! 80x24 one message says so; the mouse is off unless `--mouse` turns it
//! on, and then a click selects a row and the wheel moves the selection.
//! Every way out leaves the terminal as it was (main screen, cursor shown,
//! no mouse reports). Ctrl-L draws the whole screen again.

use crate::common;

use std::net::TcpListener;
use std::time::Duration;

use common::TempDir;
use common::tmux::{Session, process_with};

const T: Duration = Duration::from_secs(20);

/// A config of three apps, `alpha`, `bravo`, `charlie`, with one instance
/// each, probed over TCP on `port` (a listener of the test: healthy).
fn fleet_config(dir: &TempDir, port: u16) -> String {
    let mut t = String::new();
    for app in ["alpha", "bravo", "charlie"] {
        t.push_str(&format!(
            "[[app]]\nname = \"{app}\"\n[[app.instance]]\nname = \"{app}-1\"\nport = {port}\n\
             [[app.probe]]\nname = \"tcp\"\ntype = \"tcp\"\n[app.health]\ninterval = \"1s\"\n\
             success_threshold = 1\n\n"
        ));
    }
    let path = dir.join("fleet.toml");
    std::fs::write(&path, t).unwrap();
    path.to_string_lossy().into_owned()
}

/// The command line of the console on `config`, its history in `dir`.
fn console(dir: &TempDir, config: &str, extra: &str) -> String {
    format!(
        "{} {extra} --config {config} --db {}",
        env!("CARGO_BIN_EXE_rollguard"),
        dir.join("history.db").display()
    )
}

fn has_fleet(sc: &str) -> bool {
    ["alpha", "bravo", "charlie"].iter().all(|a| sc.contains(a)) && sc.contains("fleet · 3 apps")
}

/// The console gave the terminal back: the main screen, the cursor shown,
/// no mouse reports, the prompt.
fn assert_given_back(s: &Session) {
    s.wait_prompt(T);
    s.wait_flag("#{alternate_on}", "0", T);
    assert_eq!(s.flag("#{cursor_flag}"), "1", "the cursor is shown");
    assert_eq!(s.flag("#{mouse_any_flag}"), "0", "no mouse reports");
}

#[test]
fn the_fleet_shows_before_the_first_probe_result() {
    let test = "the_fleet_shows_before_the_first_probe_result";
    let Some(s) = Session::start(test, 100, 30) else {
        return;
    };
    let dir = TempDir::new("first-frame");
    // Each probe's first result comes when its command ends, 30 s on.
    let mut t = String::new();
    for app in ["alpha", "bravo"] {
        t.push_str(&format!(
            "[[app]]\nname = \"{app}\"\n[[app.instance]]\nname = \"{app}-1\"\nport = 1\n\
             [[app.probe]]\nname = \"slow\"\ntype = \"command\"\ncommand = \"sleep 30\"\n\
             timeout = \"60s\"\n\n"
        ));
    }
    let config = dir.join("slow.toml");
    std::fs::write(&config, t).unwrap();
    s.run(&console(&dir, &config.to_string_lossy(), ""));
    let first = s.wait("the fleet", T, |sc| {
        sc.contains("alpha") && sc.contains("bravo")
    });
    assert!(first.contains("fleet · 2 apps"), "{first}");
    assert!(
        first.contains("waiting for probes"),
        "no result yet:\n{first}"
    );
    assert_eq!(
        first.matches("○ unknown").count(),
        2,
        "no verdict yet:\n{first}"
    );
    s.keys(&["q"]);
    assert_given_back(&s);
}

#[test]
fn ctrl_z_suspends_and_fg_brings_the_console_back() {
    let test = "ctrl_z_suspends_and_fg_brings_the_console_back";
    let Some(s) = Session::start(test, 100, 30) else {
        return;
    };
    let dir = TempDir::new("ctrl-z");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = fleet_config(&dir, listener.local_addr().unwrap().port());
    s.run(&console(&dir, &config, ""));
    s.wait("the fleet, healthy", T, |sc| {
        has_fleet(sc) && sc.matches("● healthy").count() == 3
    });
    let marker = dir.join("history.db").to_string_lossy().into_owned();
    let (pid, _) = process_with(&marker).expect("the console runs");

    s.keys(&["C-z"]);
    let stopped = s.wait_prompt(T);
    assert!(stopped.contains("Stopped"), "the shell says so:\n{stopped}");
    assert!(
        !has_fleet(&stopped),
        "the console's screen is gone:\n{stopped}"
    );
    assert_eq!(s.flag("#{alternate_on}"), "0", "the main screen");
    assert_eq!(s.flag("#{cursor_flag}"), "1", "the cursor is shown");
    assert_eq!(
        process_with(&marker),
        Some((pid, 'T')),
        "the console is stopped"
    );
    // What is typed now is the shell's.
    s.run("echo typed-while-stopped");
    s.wait("the shell's answer", T, |sc| {
        sc.lines().any(|l| l.trim() == "typed-while-stopped")
    });

    s.run("fg");
    let back = s.wait("the console again", T, has_fleet);
    assert!(
        !back.contains("typed-while-stopped"),
        "drawn whole:\n{back}"
    );
    s.wait_flag("#{alternate_on}", "1", T);
    let (_, state) = process_with(&marker).expect("the console runs");
    assert_ne!(state, 'T', "the console runs again");
    // Its keys work again.
    s.keys(&["?"]);
    s.wait("the help", T, |sc| sc.contains(" keys "));
    s.keys(&["Escape"]);
    s.wait("the help closed", T, |sc| {
        !sc.contains(" keys ") && has_fleet(sc)
    });

    s.keys(&["q"]);
    assert_given_back(&s);
    assert_eq!(process_with(&marker), None, "the console has ended");
}

#[test]
fn a_resize_redraws_at_the_new_size_and_says_when_too_small() {
    let test = "a_resize_redraws_at_the_new_size_and_says_when_too_small";
    let Some(s) = Session::start(test, 100, 30) else {
        return;
    };
    let dir = TempDir::new("resize");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = fleet_config(&dir, listener.local_addr().unwrap().port());
    s.run(&console(&dir, &config, ""));
    s.wait("the fleet", T, has_fleet);

    // The table's frame spans the width, the footer is on the last line.
    let framed = |w: usize, h: usize| {
        move |sc: &str| {
            let lines: Vec<&str> = sc.lines().collect();
            let top = lines.iter().find(|l| l.starts_with("┌ fleet"));
            has_fleet(sc)
                && top.is_some_and(|l| l.chars().count() == w && l.ends_with('┐'))
                && lines.len() == h
                && lines
                    .iter()
                    .any(|l| l.starts_with('└') && l.chars().count() == w)
                && lines[h - 1].contains("quit")
        }
    };
    s.resize(120, 40);
    s.wait("the fleet at 120x40", T, framed(120, 40));
    s.resize(70, 20);
    let small = s.wait("the message", T, |sc| sc.contains("this terminal is 70x20"));
    let flat = small.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("rollguard needs at least 80x24; this terminal is 70x20 — make it larger"),
        "{small}"
    );
    assert!(!small.contains("fleet ·"), "no view under it:\n{small}");
    s.resize(90, 26);
    let back = s.wait("the fleet at 90x26", T, framed(90, 26));
    assert!(!back.contains("needs at least"), "{back}");

    s.keys(&["q"]);
    assert_given_back(&s);
}

#[test]
fn the_mouse_is_off_by_default_and_clicks_and_scrolls_with_mouse() {
    let test = "the_mouse_is_off_by_default_and_clicks_and_scrolls_with_mouse";
    let Some(s) = Session::start(test, 100, 30) else {
        return;
    };
    let dir = TempDir::new("mouse");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = fleet_config(&dir, listener.local_addr().unwrap().port());

    s.run(&console(&dir, &config, ""));
    s.wait("the fleet", T, has_fleet);
    assert_eq!(s.flag("#{mouse_any_flag}"), "0", "no mouse without --mouse");
    s.keys(&["q"]);
    assert_given_back(&s);

    s.run(&format!("clear; {}", console(&dir, &config, "--mouse")));
    let screen = s.wait("the fleet", T, has_fleet);
    s.wait_flag("#{mouse_standard_flag}", "1", T);
    assert_eq!(s.flag("#{mouse_sgr_flag}"), "1", "SGR reports");
    assert_eq!(s.flag("#{mouse_all_flag}"), "0", "no reports of every move");

    // A click (SGR, 1-based) on charlie's row selects it; Enter opens it.
    let row = screen
        .lines()
        .position(|l| l.contains("charlie"))
        .expect("charlie's row")
        + 1;
    s.literal(&format!("\x1b[<0;20;{row}M\x1b[<0;20;{row}m"));
    // The selection moved before Enter is read: both keys are in order.
    s.keys(&["Enter"]);
    let view = s.wait("charlie's view", T, |sc| sc.contains("charlie-1"));
    assert!(!view.contains("alpha"), "{view}");
    s.keys(&["Escape"]);
    s.wait("the fleet", T, has_fleet);

    // The wheel up, from charlie: bravo.
    s.literal("\x1b[<64;20;10M");
    s.keys(&["Enter"]);
    s.wait("bravo's view", T, |sc| sc.contains("bravo-1"));
    s.keys(&["Escape"]);
    s.wait("the fleet", T, has_fleet);

    s.keys(&["q"]);
    assert_given_back(&s);
}

/// Ctrl-L draws the whole screen again, as in every terminal program:
/// whatever wrote into the terminal behind the console's back (here the
/// test, straight to the pane's tty) is gone after it.
#[test]
fn ctrl_l_redraws_the_whole_screen() {
    let test = "ctrl_l_redraws_the_whole_screen";
    let Some(s) = Session::start(test, 100, 30) else {
        return;
    };
    let dir = TempDir::new("redraw");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = fleet_config(&dir, listener.local_addr().unwrap().port());
    s.run(&console(&dir, &config, ""));
    s.wait("the fleet", T, has_fleet);
    // Stray text at the middle of the screen, where the console drew
    // blanks: the console does not know it is there.
    let tty = s.flag("#{pane_tty}");
    std::fs::write(&tty, "\x1b[15;40HSTRAYTEXT").unwrap();
    s.wait("the stray text", T, |sc| sc.contains("STRAYTEXT"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        s.capture().contains("STRAYTEXT"),
        "only Ctrl-L redraws cells the console did not change"
    );
    s.keys(&["C-l"]);
    // Between the clear and the next frame the pane may be blank for a
    // moment: wait for the fleet drawn again, without the stray text.
    s.wait("the redrawn screen", T, |sc| {
        !sc.contains("STRAYTEXT") && has_fleet(sc)
    });

    s.keys(&["q"]);
    assert_given_back(&s);
}

/// What a host says with emoji, joiners and presentation marks (here a
/// command probe's output) is drawn as wide as the console measures it:
/// every row of the fleet and of the app's view keeps its right border in
/// the last column, in the fleet, the app view, and after going back.
#[test]
fn emoji_from_a_host_keep_every_row_in_step() {
    let test = "emoji_from_a_host_keep_every_row_in_step";
    let Some(s) = Session::start(test, 200, 40) else {
        return;
    };
    let dir = TempDir::new("emoji");
    let config = dir.join("emoji.toml");
    std::fs::write(
        &config,
        "[[app]]\nname = \"alpha\"\n[[app.instance]]\nname = \"alpha-1\"\nport = 1\n\
         [[app.probe]]\nname = \"disk\"\ntype = \"command\"\n\
         command = \"echo '⚠\u{fe0f} 🟠 disk 👩\u{200d}💻 full 日本'; exit 1\"\n\
         [app.health]\ninterval = \"1s\"\n",
    )
    .unwrap();
    s.run(&console(&dir, &config.to_string_lossy(), ""));
    let in_step = |sc: &str| {
        sc.lines()
            .filter(|l| l.starts_with('│'))
            .all(|l| l.ends_with('│') && ratatui::text::Span::raw(l).width() == 200)
    };
    let fleet = s.wait("the failing probe's output", T, |sc| sc.contains("🟠"));
    assert!(in_step(&fleet), "{fleet}");
    s.keys(&["Enter"]);
    let app = s.wait("alpha's view", T, |sc| {
        sc.contains("alpha-1") && sc.contains("🟠")
    });
    assert!(in_step(&app), "{app}");
    s.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(1500));
    let back = s.capture();
    assert!(in_step(&back), "{back}");
    assert!(back.contains("fleet · 1 apps"), "{back}");

    s.keys(&["q"]);
    assert_given_back(&s);
}
