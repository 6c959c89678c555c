//! The console's own deploys and rollbacks, end to end in tmux, as a
//! person on call does them in the demo: `:deploy checkout v3`, the plan
//! in the question, Cancel does nothing, the deploy confirmed, its gate
//! failing and the rollback on screen, then History and the "why" card;
//! a good release deployed, rolled back by hand with `b`, and rolled
//! forward again by picking its deployment in History.

use crate::common;
use crate::common::demo as demo_footprint;
use demo_footprint::one_demo;

use std::path::Path;
use std::time::Duration;

use common::tmux::{Session, demo_dir, quit_and_check_stopped, session};

/// The deployments of the demo's history, newest first.
fn deployments(dir: &Path) -> Vec<rollguard::store::Deployment> {
    let store = rollguard::store::Store::open_read_only(&dir.join("history.db")).unwrap();
    store.deployments(None, 50).unwrap()
}

/// Types a `:` line and waits for its question, still on Cancel.
fn ask(s: &Session, line: &str, question: &str) -> String {
    s.keys(&[":"]);
    s.keys(&["-l", line]);
    s.keys(&["Enter"]);
    s.wait(question, Duration::from_secs(60), |sc| {
        sc.contains(question) && sc.contains("> Cancel <")
    })
}

/// Sends single keys one at a time (Esc then a letter would otherwise
/// read as Alt + the letter).
fn press(s: &Session, keys: &[&str]) {
    for k in keys {
        s.keys(&[k]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `rollguard demo` in a tmux pane of its own, with a private TMPDIR that
/// marks its processes, its folder, and what it started (to check it all
/// goes when it quits).
struct Demo {
    s: Session,
    tmp: common::TempDir,
    dir: std::path::PathBuf,
    sampler: demo_footprint::Sampler,
}

impl Demo {
    /// Starts the demo in session `name` and waits for `app` on v1.
    fn start(name: &str, app: &str) -> Demo {
        let bin = env!("CARGO_BIN_EXE_rollguard");
        let s = session(name);
        let tmp = common::TempDir::new(&format!("tmux-{name}"));
        let marker = tmp.0.to_string_lossy().to_string();
        s.keys(&[&format!("TMPDIR={marker} {bin} demo"), "Enter"]);
        let dir = demo_dir(&tmp.0);
        let sampler = demo_footprint::Sampler::start(&dir);
        s.wait("the fleet", Duration::from_secs(40), |sc| {
            sc.contains(app) && sc.contains("v1")
        });
        Demo {
            s,
            tmp,
            dir,
            sampler,
        }
    }

    /// Presses `q`: the prompt comes back and everything the demo started
    /// is gone.
    fn quit(self) {
        quit_and_check_stopped(&self.s, &self.tmp.0.to_string_lossy());
        self.sampler
            .finish()
            .assert_all_gone(Duration::from_secs(5));
    }
}

#[test]
fn a_deploy_from_the_console_rolls_back_and_history_says_why() {
    let test = "a_deploy_from_the_console_rolls_back_and_history_says_why";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let _one = one_demo();
    let demo = Demo::start("deploy", "checkout");
    let (s, dir) = (&demo.s, &demo.dir);

    // The question shows the plan and the way back before anything runs.
    let q = ask(s, "deploy checkout v3", "Deploy checkout v1 → v3 (rolling");
    assert!(q.contains("replace checkout-1"), "the plan's stages:\n{q}");
    assert!(q.contains("kept for a rollback"), "the way back:\n{q}");
    // Enter on Cancel closes it, and nothing is started.
    s.keys(&["Enter"]);
    s.wait("the question to close", Duration::from_secs(10), |sc| {
        !sc.contains("Deploy checkout v1 → v3 (rolling")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(deployments(dir).is_empty(), "Cancel started nothing");

    ask(s, "deploy checkout v3", "Deploy checkout v1 → v3 (rolling");
    s.keys(&["-l", "try v3"]);
    s.keys(&["Tab"]);
    s.wait("Deploy focused", Duration::from_secs(10), |sc| {
        sc.contains("> Deploy <")
    });
    s.keys(&["Enter"]);
    s.wait("the start", Duration::from_secs(30), |sc| {
        sc.contains("deployment 1 started")
    });
    let d = &deployments(dir)[0];
    assert_eq!(
        (d.to_version.as_str(), d.reason.as_deref()),
        ("v3", Some("try v3"))
    );

    // The log says what the console did, and who. Tall enough that the
    // rollout's own lines, arriving meanwhile, do not push it out of the
    // pane's view.
    s.resize(100, 80);
    press(s, &["L"]);
    s.wait(
        "the start in rollguard's log",
        Duration::from_secs(10),
        |sc| sc.contains("rollguard log") && sc.contains("rollguard::tui::perform"),
    );
    press(s, &["Escape"]);
    s.resize(100, 30);

    // The rollout view of checkout (once the console has read that it
    // runs): batches, instances, then the why.
    s.wait(
        "the rollout on checkout's row",
        Duration::from_secs(10),
        |sc| {
            sc.lines()
                .any(|l| l.contains("checkout") && l.contains("v1→v3"))
        },
    );
    press(s, &["R"]);
    s.wait("the rollout view", Duration::from_secs(10), |sc| {
        sc.contains("deploy 1 · checkout v1 → v3") && sc.contains("replace checkout-1")
    });
    let why = s.wait("the rollback and its why", Duration::from_secs(120), |sc| {
        sc.contains("rolled back") && sc.contains("WHY") && sc.contains("E_GATE_FAILED")
    });
    assert!(why.contains("probe health on checkout-"), "{why}");
    assert!(why.contains("thresholds"), "{why}");
    assert!(why.contains("measured"), "{why}");
    assert!(why.contains("✖"), "the failed samples:\n{why}");

    // History lists it as a rolled-back deploy; Enter opens the same card.
    press(s, &["Escape", "H"]);
    let history = s.wait("History", Duration::from_secs(10), |sc| {
        sc.contains("History") && sc.contains("rolled back")
    });
    assert!(
        history
            .lines()
            .any(|l| l.contains("checkout") && l.contains("deploy") && l.contains("try v3")),
        "{history}"
    );
    press(s, &["Enter"]);
    s.wait("the why card from History", Duration::from_secs(10), |sc| {
        sc.contains("WHY") && sc.contains("E_GATE_FAILED")
    });

    demo.quit();
}

#[test]
fn a_rollback_by_hand_and_one_picked_from_history() {
    let test = "a_rollback_by_hand_and_one_picked_from_history";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let _one = one_demo();
    let demo = Demo::start("rollback", "checkout");
    let (s, dir) = (&demo.s, &demo.dir);
    let finished = |n: usize| {
        let end = std::time::Instant::now() + Duration::from_secs(150);
        loop {
            let d = deployments(dir);
            let store = rollguard::store::Store::open_read_only(&dir.join("history.db")).unwrap();
            let unlocked = store.lock("checkout").unwrap().is_none();
            if d.len() >= n && d[0].outcome.is_some() && unlocked {
                return d;
            }
            assert!(
                std::time::Instant::now() < end,
                "deployment {n} did not end: {d:#?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };

    // v1 must be known good before it is replaced, to be the way back.
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while rollguard::store::Store::open_read_only(&dir.join("history.db"))
        .and_then(|st| st.last_good_release("checkout", None))
        .ok()
        .flatten()
        .is_none()
    {
        assert!(std::time::Instant::now() < end, "v1 never recorded good");
        std::thread::sleep(Duration::from_millis(500));
    }
    ask(s, "deploy checkout v2", "Deploy checkout v1 → v2 (rolling");
    press(s, &["Tab", "Enter"]);
    let d = finished(1);
    assert_eq!(
        d[0].outcome.map(rollguard::model::Outcome::as_str),
        Some("deployed"),
        "{d:#?}"
    );

    // `b` on checkout's row: back to the last good release other than v2.
    s.wait("v2 running", Duration::from_secs(30), |sc| {
        sc.lines()
            .any(|l| l.contains("checkout") && l.contains("v2"))
    });
    press(s, &["b"]);
    let q = s.wait("the rollback question", Duration::from_secs(60), |sc| {
        sc.contains("Roll checkout back v2 → v1?") && sc.contains("> Cancel <")
    });
    assert!(q.contains("reason: ") && q.contains("(required)"), "{q}");
    // Without a reason the button refuses.
    press(s, &["Tab", "Enter"]);
    s.wait("the refusal", Duration::from_secs(10), |sc| {
        sc.contains("a reason is required")
    });
    s.keys(&["-l", "v2 slows checkout"]);
    press(s, &["Enter"]);
    let d = finished(2);
    assert_eq!(d[0].to_version, "v1");
    assert_eq!(
        d[0].outcome.map(rollguard::model::Outcome::as_str),
        Some("deployed"),
        "{d:#?}"
    );
    assert_eq!(d[0].reason.as_deref(), Some("rollback: v2 slows checkout"));

    // History shows it as a rollback; picking the v2 deploy rolls forward.
    press(s, &["H"]);
    let history = s.wait("History with the rollback", Duration::from_secs(10), |sc| {
        sc.lines()
            .any(|l| l.contains("rollback") && l.contains("v2 → v1"))
    });
    assert!(
        history
            .lines()
            .any(|l| l.contains("deploy") && l.contains("v1 → v2")),
        "{history}"
    );
    press(s, &["j", "b"]);
    s.wait(
        "the question for deployment 1",
        Duration::from_secs(60),
        |sc| sc.contains("Roll checkout back v1 → v2?") && sc.contains("deployment 1"),
    );
    s.keys(&["-l", "v2 was fine after all"]);
    press(s, &["Tab", "Enter"]);
    let d = finished(3);
    assert_eq!(
        (
            d[0].to_version.as_str(),
            d[0].outcome.map(rollguard::model::Outcome::as_str)
        ),
        ("v2", Some("deployed")),
        "{d:#?}"
    );

    demo.quit();
}

#[test]
fn two_consoles_see_each_others_hold_and_fire() {
    let test = "two_consoles_see_each_others_hold_and_fire";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let _one = one_demo();
    let demo = Demo::start("two-a", "payments");
    let (a, dir) = (&demo.s, &demo.dir);
    // The second console reads the demo's history (`rg` runs rollguard on
    // its config and history).
    let b = session("two-b");
    b.keys(&[&format!("{}", dir.join("rg").display()), "Enter"]);
    b.wait("the second console", Duration::from_secs(40), |sc| {
        sc.contains("payments") && sc.contains("v1")
    });

    // v3 of the demo's payments fails while watched; its rollback waits
    // for an operator (auto_rollback = "confirm").
    press(a, &["j"]);
    ask(a, "deploy payments v3", "Deploy payments v1 → v3 (rolling");
    press(a, &["Tab", "Enter"]);
    let armed_row = |sc: &str| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("rollback of v3"))
    };
    a.wait("the armed rollback", Duration::from_secs(120), armed_row);
    b.wait(
        "the armed rollback, in the other console",
        Duration::from_secs(10),
        armed_row,
    );

    // Held in the second console: the first one sees it held.
    press(&b, &["j", "h"]);
    b.wait("the hold question", Duration::from_secs(10), |sc| {
        sc.contains("Hold the rollback of payments")
    });
    b.keys(&["-l", "looking at it"]);
    press(&b, &["Tab", "Enter"]);
    let held_row = |sc: &str| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("held"))
    };
    b.wait("held", Duration::from_secs(15), held_row);
    a.wait(
        "held, in the other console",
        Duration::from_secs(10),
        held_row,
    );

    // Fired in the first: both see it rolled back.
    press(a, &["f"]);
    a.wait("the fire question", Duration::from_secs(10), |sc| {
        sc.contains("Roll payments back now")
    });
    a.keys(&["-l", "v3 is bad"]);
    press(a, &["Tab", "Enter"]);
    let back_row = |sc: &str| {
        sc.lines()
            .any(|l| l.contains("payments") && l.contains("v3 rolled back"))
    };
    a.wait("the rollback", Duration::from_secs(90), back_row);
    b.wait(
        "the rollback, in the other console",
        Duration::from_secs(10),
        back_row,
    );

    let store = rollguard::store::Store::open_read_only(&dir.join("history.db")).unwrap();
    let id = deployments(dir)[0].id;
    let kinds: Vec<(String, Option<String>)> = store
        .deployment_events(id, 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.starts_with("command_"))
        .map(|e| (e.kind, e.reason))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "command_hold".to_string(),
                Some("looking at it".to_string())
            ),
            ("command_fire".to_string(), Some("v3 is bad".to_string())),
        ]
    );

    b.keys(&["q"]);
    demo.quit();
}

#[test]
fn quitting_the_console_mid_rollout_stops_nothing() {
    let test = "quitting_the_console_mid_rollout_stops_nothing";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let Some(env) = common::rollout::Env::new(test, "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    let bin = env!("CARGO_BIN_EXE_rollguard");
    let s = session("quit-mid");
    let db = env.dir.join("history.db");
    s.keys(&[
        &format!(
            "{bin} --config {} --db {}",
            env.config().display(),
            db.display()
        ),
        "Enter",
    ]);
    s.wait("the console", Duration::from_secs(30), |sc| {
        sc.contains("web") && sc.contains("v1")
    });
    ask(&s, "deploy web v2", "Deploy web v1 → v2 (rolling");
    press(&s, &["Tab", "Enter"]);
    s.wait("the start", Duration::from_secs(30), |sc| {
        sc.contains("deployment 2 started")
    });
    s.keys(&["q"]);
    s.wait("the prompt", Duration::from_secs(15), |sc| {
        sc.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| l.starts_with("RGPROMPT$"))
    });
    // The rollout goes on without the console, to the end.
    let end = std::time::Instant::now() + Duration::from_secs(120);
    let d = loop {
        let store = rollguard::store::Store::open_read_only(&db).unwrap();
        let d = store.deployment(2).unwrap().expect("deployment 2");
        if d.outcome.is_some() {
            break d;
        }
        assert!(
            std::time::Instant::now() < end,
            "deployment 2 did not end: {d:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        (
            d.to_version.as_str(),
            d.outcome.map(rollguard::model::Outcome::as_str)
        ),
        ("v2", Some("deployed")),
        "{d:#?}"
    );
    let (code, out, _) = env.rollguard(&["status", "web", "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"v2\""), "every instance runs v2: {out}");
}

/// At 80x24, as a newcomer's terminal often is: the set-up screen wraps
/// its text at spaces (no row filled to the last column, where the
/// terminal would break a word); the banner names the demo's `rg` script
/// with the command to run, whole; so does rollguard's log in the Logs
/// view, on a line of its own; at 100x30 the banner still does; and once
/// the console has quit, standard error says in the scrollback what was
/// removed, the `rg` script named.
#[test]
fn at_80_columns_the_demo_names_its_rg_script_whole_and_says_what_quitting_removed() {
    let test = "at_80_columns_the_demo_names_its_rg_script_whole_and_says_what_quitting_removed";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let _one = one_demo();
    let s = Session::start(test, 80, 24).expect("tmux is installed");
    // In /tmp, where a newcomer's demo is: the folder is named after the
    // demo's pid, which `exec` keeps.
    let pid_file = common::TempDir::new("rg-80");
    let pid_path = pid_file.join("pid");
    let bin = env!("CARGO_BIN_EXE_rollguard");
    s.run(&format!(
        "TMPDIR=/tmp sh -c 'echo $$ > {}; exec {bin} demo'",
        pid_path.display()
    ));
    let setting_up = s.wait("the set-up screen", Duration::from_secs(30), |sc| {
        sc.contains("Setting up the demo")
    });
    let rows: Vec<&str> = setting_up
        .lines()
        .skip_while(|l| !l.contains("Setting up the demo"))
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(
        rows.len() >= 2,
        "its text wraps at 80 columns:\n{setting_up}"
    );
    for row in &rows {
        assert!(
            row.trim_end().chars().count() < 80,
            "a row filled to the last column, broken by the terminal:\n{setting_up}"
        );
    }
    let pid = std::fs::read_to_string(&pid_path).unwrap();
    let dir = std::path::PathBuf::from(format!("/tmp/rollguard-demo-{}", pid.trim()));
    let sampler = demo_footprint::Sampler::start(&dir);
    let rg = format!("{}/rg deploy checkout v3", dir.display());
    let banner = |sc: &str| sc.lines().nth(1).unwrap_or_default().to_string();
    let fleet = s.wait("the fleet", Duration::from_secs(40), |sc| {
        sc.contains("checkout") && sc.contains("v1")
    });
    assert!(
        banner(&fleet).contains("try :deploy checkout v3") && banner(&fleet).contains(&rg),
        "the banner names the rg script whole at 80 columns:\n{fleet}"
    );

    // rollguard's log says it on a line of its own, `--yes` included.
    press(&s, &["L", "w"]);
    let line = format!("{rg} --yes");
    let mut logs = String::new();
    for _ in 0..20 {
        logs = s.capture();
        if logs.contains(&line) {
            break;
        }
        press(&s, &["PageUp"]);
    }
    assert!(
        logs.lines().any(|l| l.contains(&line)),
        "rollguard's log names the rg script:\n{logs}"
    );
    press(&s, &["Escape"]);

    s.resize(100, 30);
    let wide = s.wait("the banner at 100 columns", Duration::from_secs(10), |sc| {
        banner(sc).contains(&rg) && banner(sc).contains("R: its rollout")
    });
    assert!(
        !banner(&wide).contains('…'),
        "nothing of the banner is cut:\n{wide}"
    );

    quit_and_check_stopped(&s, &dir.to_string_lossy());
    let end = s.capture();
    assert!(
        end.contains("The demo's fleet is stopped")
            && end.contains(&format!("{}/rg (its rg script)", dir.display())),
        "what quitting removed, in the scrollback:\n{end}"
    );
    assert!(!dir.exists(), "the folder is gone");
    sampler.finish().assert_all_gone(Duration::from_secs(5));
}
