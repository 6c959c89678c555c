//! Renders the console with ratatui's `TestBackend` from a synthetic fleet
//! and synthetic probe results, drives it with key events, and checks text
//! and the colors of particular cells (snapshots alone do not see color).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use rollguard::config::{
    App as AppConfig, CommandProbe, Console, DriverKind, Fleet, Health, Instance, Probe, ProbeKind,
    Strategy, TcpProbe,
};
use rollguard::model::{ErrorKind, ProbeKey, ProbeResult};
use rollguard::tui::{
    self, Action, App, ConfirmAction, ConfirmedAction, FAIL_BAR, FleetState, Mode, Shown, Theme,
    Verb, View,
};

mod confirm;
mod keys;
mod logs;
mod mouse;
mod snapshots;
mod theme;
mod too_small;

const T0: i64 = 1_700_000_000_000;

fn tcp(name: &str) -> Probe {
    Probe {
        name: name.into(),
        timeout: Duration::from_secs(2),
        kind: ProbeKind::Tcp(TcpProbe {
            port: None,
            send: None,
            expect: None,
        }),
    }
}

fn command(name: &str) -> Probe {
    Probe {
        name: name.into(),
        timeout: Duration::from_secs(2),
        kind: ProbeKind::Command(CommandProbe {
            command: "curl -fsS localhost:{port}/ready".into(),
            expect_exit: 0,
            output_contains: None,
        }),
    }
}

fn app(name: &str, instances: usize, probes: Vec<Probe>) -> AppConfig {
    AppConfig {
        name: name.into(),
        driver: DriverKind::Process,
        strategy: Strategy::Rolling,
        protected: false,
        instances: (1..=instances)
            .map(|i| Instance {
                name: format!("{name}-{i}"),
                host: "node1".into(),
                port: 8000 + i as u16,
                alt_port: None,
            })
            .collect(),
        probes,
        health: Health {
            success_threshold: 2,
            failure_threshold: 2,
            ..Health::default()
        },
        ..Default::default()
    }
}

fn fleet() -> Arc<Fleet> {
    Arc::new(Fleet {
        metrics: None,
        store: None,
        source: PathBuf::from("/etc/rollguard/fleet.toml"),
        console: Console::default(),
        hosts: vec![],
        apps: vec![
            app("web", 3, vec![tcp("tcp"), command("ready")]),
            app("api", 2, vec![tcp("tcp")]),
            app("worker", 2, vec![command("alive")]),
            app("batch", 1, vec![tcp("tcp")]),
        ],
    })
}

fn result(app: &str, instance: &str, probe: &str, at_ms: i64, ok: bool, lat: f64) -> ProbeResult {
    ProbeResult {
        key: ProbeKey {
            app: app.into(),
            instance: instance.into(),
            probe: probe.into(),
        },
        at_ms,
        ok,
        latency_ms: lat,
        code: Some(if ok { 0 } else { 7 }),
        error_kind: (!ok).then_some(ErrorKind::Refused),
        message: if ok {
            String::new()
        } else {
            format!("connection refused by {instance}:8003 (ECONNREFUSED)")
        },
    }
}

/// web: web-1, web-2 healthy, web-3 failing → degraded 2/3.
/// api: all healthy → 2/2. worker: all failing → down 0/2. batch: no data.
fn state(fleet: &Arc<Fleet>) -> FleetState {
    let mut s = FleetState::new(fleet.clone());
    for round in 0..40i64 {
        let at = T0 + round * 1_000;
        let lat = 5.0 + (round % 8) as f64 * 10.0;
        for i in 1..=3 {
            let ok = i != 3;
            s.observe(&result("web", &format!("web-{i}"), "tcp", at, ok, lat));
            s.observe(&result(
                "web",
                &format!("web-{i}"),
                "ready",
                at,
                ok,
                lat * 2.0,
            ));
        }
        for i in 1..=2 {
            s.observe(&result("api", &format!("api-{i}"), "tcp", at, true, lat));
            s.observe(&result(
                "worker",
                &format!("worker-{i}"),
                "alive",
                at,
                false,
                2000.0,
            ));
        }
    }
    s
}

fn now() -> i64 {
    T0 + 41_000
}

fn new_app(fleet: &Arc<Fleet>) -> App {
    let mut a = App::new(fleet.clone(), Theme::default());
    a.now_ms = now();
    a
}

fn render(app: &App, state: &FleetState, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| tui::draw(f, app, state)).unwrap();
    term.backend().buffer().clone()
}

fn lines(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn screen(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// Every cell of `buf` in the terminal's own colors.
fn assert_no_color(buf: &Buffer) {
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            assert!(
                c.fg == Color::Reset && c.bg == Color::Reset,
                "({x}, {y}) {:?} has fg {:?} bg {:?}\n{}",
                c.symbol(),
                c.fg,
                c.bg,
                screen(buf)
            );
        }
    }
}

fn row_of(buf: &Buffer, needle: &str) -> u16 {
    lines(buf)
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", screen(buf))) as u16
}

/// Whether the cell at `(x, y)` is drawn as the selected row is in `t`:
/// its background and its modifiers.
fn selected_cell(buf: &Buffer, x: u16, y: u16, t: &Theme) -> bool {
    let cell = &buf[(x, y)];
    cell.bg == t.selection && cell.modifier.contains(t.selection_modifiers)
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn fleet_view_80x24_text() {
    let f = fleet();
    let s = state(&f);
    let a = new_app(&f);
    let buf = render(&a, &s, 80, 24);
    let text = screen(&buf);
    println!("{text}");
    for want in [
        "rollguard",
        "4 apps",
        "8 inst",
        "fleet.toml",
        "STATUS",
        "APP",
        "INST",
        "LATENCY",
        "OK 5M",
        "LAST ERROR",
        "web",
        "api",
        "worker",
        "batch",
        "● healthy",
        "◐ degraded",
        "✖ down",
        "○ unknown",
        "2/3",
        "2/2",
        "0/2",
        "0/1",
        "66.6%",
        "100%",
        "0.0%",
        "q quit",
        "? help",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The degraded app's current error is shown (truncated).
    let web = row_of(&buf, "web ");
    assert!(lines(&buf)[web as usize].contains("web-3/"), "{text}");
    assert!(lines(&buf)[web as usize].contains('…'), "{text}");
}

#[test]
fn fleet_view_colors() {
    let f = fleet();
    let s = state(&f);
    let a = new_app(&f);
    let t = Theme::default();
    let buf = render(&a, &s, 80, 24);

    // Status cells carry the status colors.
    let api = row_of(&buf, "api ");
    assert_eq!(buf[(1, api)].symbol(), "●");
    assert_eq!(buf[(1, api)].fg, t.healthy);
    let worker = row_of(&buf, "worker ");
    assert_eq!(buf[(1, worker)].symbol(), "✖");
    assert_eq!(buf[(1, worker)].fg, t.down);
    let web = row_of(&buf, "web ");
    assert_eq!(buf[(1, web)].fg, t.degraded);

    // Sparkline cells: the worker row has only failure bars in fail color;
    // the web row mixes ok bars and failure bars.
    let cells = |y: u16| (0..80).map(move |x| (x, y));
    let fail_cells = |y| {
        cells(y)
            .filter(|&p| buf[p].symbol() == FAIL_BAR.to_string() && buf[p].fg == t.fail_bar)
            .count()
    };
    let ok_cells = |y| {
        cells(y)
            .filter(|&p| {
                tui::BARS.iter().any(|b| buf[p].symbol() == b.to_string()) && buf[p].fg == t.ok_bar
            })
            .count()
    };
    assert!(fail_cells(worker) >= 8, "{}", screen(&buf));
    assert_eq!(ok_cells(worker), 0);
    assert!(
        fail_cells(web) >= 2 && ok_cells(web) >= 2,
        "{}",
        screen(&buf)
    );
    assert_eq!(fail_cells(api), 0);
    assert!(ok_cells(api) >= 8);
    assert_ne!(t.ok_bar, t.fail_bar);

    // The first row is selected: it has the selection's style (reverse
    // video in the default theme), and only it.
    assert!(selected_cell(&buf, 1, web, &t));
    assert!(!selected_cell(&buf, 1, api, &t));
}

#[test]
fn keys_move_open_back_help_quit() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    let t = Theme::default();

    assert_eq!(a.handle_key(key('j'), &s), Action::Down);
    assert_eq!(a.handle_key(code(KeyCode::Down), &s), Action::Down);
    assert_eq!(a.selected(), 2);
    assert_eq!(a.handle_key(key('k'), &s), Action::Up);
    assert_eq!(a.selected(), 1);
    let buf = render(&a, &s, 80, 24);
    let api = row_of(&buf, "api ");
    assert!(selected_cell(&buf, 1, api, &t));

    // Enter opens the app view of the selected app.
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Open);
    assert_eq!(a.view(), View::App(1));
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("api-1") && text.contains("api-2"), "{text}");
    assert!(!text.contains("worker"), "{text}");
    assert!(text.contains("Esc back"), "{text}");

    // Esc goes back; Backspace too.
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.view(), View::Fleet);
    a.handle_key(code(KeyCode::Enter), &s);
    assert_eq!(a.handle_key(code(KeyCode::Backspace), &s), Action::Back);
    assert_eq!(a.view(), View::Fleet);
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::None);

    // ? opens the help listing every key; Esc closes it.
    assert_eq!(a.handle_key(key('?'), &s), Action::Help);
    assert_eq!(a.mode(), &Mode::Help);
    let text = screen(&render(&a, &s, 80, 24));
    println!("{text}");
    // Every key of the fleet view (all of them but those of the lines one
    // types in: the question, the filter, the command line).
    let keymap = tui::keymap::Keymap::default();
    let listed = keymap.help_bindings(View::Fleet).count();
    assert!(listed >= 17, "{listed} keys listed");
    for b in keymap.help_bindings(View::Fleet) {
        assert!(
            text.contains(&b.keys_label()),
            "help lacks {:?}\n{text}",
            b.keys_label()
        );
        assert!(text.contains(b.help), "help lacks {:?}\n{text}", b.help);
    }
    assert!(text.contains("q, Ctrl-c"), "{text}");
    // Keys other than Esc/?/q/l do nothing while the popup is open.
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
    assert_eq!(a.view(), View::Fleet);
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.mode(), &Mode::Normal);

    // l toggles the log pane.
    assert!(!a.log_visible());
    assert_eq!(a.handle_key(key('l'), &s), Action::ToggleLog);
    assert!(a.log_visible());
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains(" log "), "{text}");
    a.handle_key(key('l'), &s);

    // g/G jump; selection never leaves the table.
    a.handle_key(key('G'), &s);
    assert_eq!(a.selected(), 3);
    a.handle_key(key('j'), &s);
    assert_eq!(a.selected(), 3);
    a.handle_key(key('g'), &s);
    assert_eq!(a.selected(), 0);

    // q and Ctrl-C quit, from anywhere.
    assert_eq!(a.handle_key(key('q'), &s), Action::Quit);
    a.handle_key(key('?'), &s);
    assert_eq!(
        a.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &s),
        Action::Quit
    );
    assert_eq!(a.handle_key(key('z'), &s), Action::None);
}

#[test]
fn app_view_80x24() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    let t = Theme::default();
    a.handle_key(code(KeyCode::Enter), &s);
    assert_eq!(a.view(), View::App(0));
    let buf = render(&a, &s, 80, 24);
    let text = screen(&buf);
    println!("{text}");
    for want in [
        "web",
        "◐ degraded",
        "2/3 healthy",
        "INSTANCE",
        "PROBE",
        "LATENCY",
        "LAST",
        "web-1",
        "web-2",
        "web-3",
        "tcp (tcp)",
        "ready (command)",
        "refused: connection re…",
        "75ms 7",
        "150ms 0",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // 3 instances × 2 probes = 6 rows.
    assert_eq!(lines(&buf).iter().filter(|l| l.contains("web-")).count(), 6);

    // The failing instance's verdict cell is in the down color, and its
    // sparkline consists of failure bars.
    let y = row_of(&buf, "web-3");
    let line = &lines(&buf)[y as usize];
    let x = line.chars().position(|c| c == '✖').unwrap() as u16;
    assert_eq!(buf[(x, y)].fg, t.down);
    let fails = (0..80)
        .filter(|&x| buf[(x, y)].symbol() == FAIL_BAR.to_string() && buf[(x, y)].fg == t.fail_bar)
        .count();
    assert!(fails >= 8, "{text}");
    let y = row_of(&buf, "web-1");
    let line = &lines(&buf)[y as usize];
    let x = line.chars().position(|c| c == '●').unwrap() as u16;
    assert_eq!(buf[(x, y)].fg, t.healthy);
}

#[test]
fn wide_160x48_shows_full_errors() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    let text = screen(&render(&a, &s, 160, 48));
    println!("{text}");
    assert!(
        text.contains("web-3/tcp: connection refused by web-3:8003 (ECONNREFUSED)")
            || text.contains("web-3/ready: connection refused by web-3:8003 (ECONNREFUSED)"),
        "{text}"
    );
    assert!(text.contains("2/3") && text.contains("66.6%"), "{text}");
    a.handle_key(code(KeyCode::Enter), &s);
    let text = screen(&render(&a, &s, 160, 48));
    println!("{text}");
    assert!(
        text.contains("refused: connection refused by web-3:8003 (ECONNREFUSED)"),
        "{text}"
    );
}

#[test]
fn tiny_sizes_do_not_panic() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    a.banner = Some("DEMO: everything here is simulated".into());
    let buf = render(&a, &s, 20, 5);
    println!("{}", screen(&buf));
    let screens: [&[char]; 4] = [&[], &['\r'], &['?'], &['l']];
    for keys in screens {
        let mut a = new_app(&f);
        a.banner = Some("DEMO".into());
        for k in keys {
            if *k == '\r' {
                a.handle_key(code(KeyCode::Enter), &s);
            } else {
                a.handle_key(key(*k), &s);
            }
        }
        for w in [0u16, 1, 2, 3, 5, 8, 13, 20, 21, 34, 43, 44, 49, 50, 55, 79] {
            for h in [0u16, 1, 2, 3, 4, 5, 6, 9, 10, 11, 24] {
                if w == 0 || h == 0 {
                    continue; // TestBackend needs a non-empty area
                }
                render(&a, &s, w, h);
            }
        }
    }
}

#[test]
fn empty_state_and_empty_fleet() {
    let f = fleet();
    let s = FleetState::new(f.clone());
    let a = new_app(&f);
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("waiting for probes"), "{text}");
    assert!(text.contains("○ unknown") && text.contains("—"), "{text}");

    let empty = Arc::new(Fleet {
        metrics: None,
        store: None,
        source: PathBuf::from("empty.toml"),
        console: Console::default(),
        hosts: vec![],
        apps: vec![],
    });
    let s = FleetState::new(empty.clone());
    let mut a = new_app(&empty);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
    a.handle_key(key('j'), &s);
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("no apps in empty.toml"), "{text}");
}

#[test]
fn light_theme_colors_cells() {
    let f = fleet();
    let s = state(&f);
    let light = Theme::load("light", &[]).unwrap();
    let mut a = App::new(f.clone(), light.clone());
    a.now_ms = now();
    let buf = render(&a, &s, 80, 24);
    let api = row_of(&buf, "api ");
    assert_eq!(buf[(1, api)].fg, light.healthy);
    assert_ne!(light.healthy, Theme::default().healthy);
    assert!(matches!(light.fail_bar, Color::Rgb(..)));
}

#[test]
fn many_rows_scroll_with_the_selection() {
    let apps: Vec<AppConfig> = (0..60)
        .map(|i| app(&format!("svc{i:02}"), 1, vec![tcp("tcp")]))
        .collect();
    let f = Arc::new(Fleet {
        metrics: None,
        store: None,
        source: PathBuf::from("big.toml"),
        console: Console::default(),
        hosts: vec![],
        apps,
    });
    let s = FleetState::new(f.clone());
    let mut a = new_app(&f);
    render(&a, &s, 80, 24);
    for _ in 0..30 {
        a.handle_key(key('j'), &s);
    }
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("svc30") && !text.contains("svc00"), "{text}");
    a.handle_key(code(KeyCode::PageDown), &s);
    a.handle_key(code(KeyCode::End), &s);
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("svc59"), "{text}");
    a.handle_key(code(KeyCode::Home), &s);
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("svc00"), "{text}");
}

/// web's rollout (deployment 7, v2 → `to`, at stage 2 of 4) in `state_name`
/// in the test fleet's state; the other apps have none. An armed rollback
/// fires in about a minute.
fn with_rollout(f: &Arc<Fleet>, state_name: &str, to: &str, strategy: &str) -> FleetState {
    use rollguard::rollout::watch::{ActiveRollout, AppRollouts};
    let mut s = state(f);
    let mut r = vec![AppRollouts::default(); f.apps.len()];
    r[0].active = Some(ActiveRollout {
        id: 7,
        from: Some("v2".into()),
        to: to.into(),
        strategy: rollguard::config::Strategy::parse(strategy).unwrap(),
        state: rollguard::model::DeploymentState::parse(state_name).unwrap(),
        stage: 2,
        stages: 4,
        fires_at_ms: (state_name == "rollback_armed").then_some(now() + 57_500),
        ..ActiveRollout::default()
    });
    s.set_rollouts(r);
    s
}

/// An armed rollback's countdown is never cut off in the fleet view:
/// other columns give way first.
#[test]
fn an_armed_rollback_countdown_is_never_cut_off() {
    let f = fleet();
    let s = with_rollout(&f, "rollback_armed", "v3-release-candidate", "rolling");
    let a = new_app(&f);
    for (w, h) in [(80, 24), (100, 30), (120, 40)] {
        let text = screen(&render(&a, &s, w, h));
        assert!(
            text.contains("⚠ rollback of v3-release-candidate in 5"),
            "{w}x{h}:\n{text}"
        );
    }
}

#[test]
fn rollouts_show_in_the_fleet_and_app_views() {
    use rollguard::rollout::watch::{ActiveRollout, AppRollouts, EndedRollout};
    let f = fleet();
    let mut s = state(&f);
    let mut r = vec![AppRollouts::default(); f.apps.len()];
    r[0] = AppRollouts {
        versions: vec!["v2".into(), "v3".into()],
        active: Some(ActiveRollout {
            id: 7,
            from: Some("v2".into()),
            to: "v3".into(),
            strategy: rollguard::config::Strategy::Rolling,
            state: rollguard::model::DeploymentState::Running,
            stage: 2,
            stages: 4,
            latest: Some("healthy: web-1 (512 ms)".into()),
            fires_at_ms: None,
            interrupted: false,
            ..ActiveRollout::default()
        }),
        last: None,
        ..AppRollouts::default()
    };
    r[1] = AppRollouts {
        versions: vec!["v5".into()],
        alt_live: Vec::new(),
        active: None,
        last: Some(EndedRollout {
            id: 3,
            to: "v6".into(),
            outcome: rollguard::model::Outcome::RolledBack,
            ended_at_ms: Some(now() - 60_000),
        }),
    };
    let g = s.generation();
    s.set_rollouts(r.clone());
    assert_eq!(s.generation(), g + 1, "new rollouts redraw");
    s.set_rollouts(r);
    assert_eq!(s.generation(), g + 1, "the same rollouts do not");

    let mut a = new_app(&f);
    let t = Theme::default();
    let buf = render(&a, &s, 100, 24);
    let text = screen(&buf);
    println!("{text}");
    assert!(text.contains("RELEASE"), "{text}");
    let web = row_of(&buf, "▶ v2→v3 2/4");
    assert!(lines(&buf)[web as usize].contains("web "), "{text}");
    let x = lines(&buf)[web as usize]
        .chars()
        .position(|c| c == '▶')
        .unwrap() as u16;
    assert_eq!(
        buf[(x, web)].fg,
        t.rollout,
        "a rollout under way stands out"
    );
    let api = row_of(&buf, "v5 (v6 rolled back)");
    assert!(lines(&buf)[api as usize].contains("api "), "{text}");
    let worker = row_of(&buf, "worker ");
    assert!(lines(&buf)[worker as usize].contains('—'), "{text}");

    assert!(text.contains("x abort"), "the footer offers abort: {text}");
    assert!(
        !text.contains("a approve"),
        "nothing waits for approval: {text}"
    );

    // The app view says where the rollout is.
    a.handle_key(code(KeyCode::Enter), &s);
    let buf = render(&a, &s, 120, 24);
    let text = screen(&buf);
    println!("{text}");
    assert!(
        text.contains("▶ v2→v3 2/4 · rolling · deployment 7 · healthy: web-1 (512 ms)"),
        "{text}"
    );
    assert!(text.contains("INSTANCE"), "the table follows: {text}");
}

/// web waits for approval (deployment 7, v2 → v3); api has no rollout.
fn waiting_for_approval(f: &Arc<Fleet>) -> FleetState {
    use rollguard::rollout::watch::{ActiveRollout, AppRollouts};
    let mut s = state(f);
    let mut r = vec![AppRollouts::default(); f.apps.len()];
    r[0].active = Some(ActiveRollout {
        id: 7,
        from: Some("v2".into()),
        to: "v3".into(),
        strategy: rollguard::config::Strategy::Canary,
        state: rollguard::model::DeploymentState::WaitingApproval,
        stage: 2,
        stages: 4,
        ..ActiveRollout::default()
    });
    s.set_rollouts(r);
    s
}

#[test]
fn rollout_keys_ask_then_hand_over_the_command() {
    let f = fleet();
    let s = waiting_for_approval(&f);
    let mut a = new_app(&f);

    // The footer offers only what applies: approve and abort, not fire.
    let text = screen(&render(&a, &s, 100, 24));
    assert!(
        text.contains("a approve") && text.contains("x abort"),
        "{text}"
    );
    assert!(!text.contains("fire rollback"), "{text}");

    // A key that does not apply says why, and opens nothing.
    assert_eq!(a.handle_key(key('f'), &s), Action::None);
    assert_eq!(a.mode(), &Mode::Normal);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(
        text.contains("no rollback of web is armed: the rollout is waiting approval"),
        "{text}"
    );
    // The notice fades.
    a.now_ms += tui::NOTICE_MS;
    assert!(a.notice().is_none());

    // `a` asks first; typing fills the reason; Tab moves to the action's
    // button, and Enter there hands it over.
    assert_eq!(a.handle_key(key('a'), &s), Action::Rollout(Verb::Approve));
    assert!(matches!(a.mode(), Mode::Confirm(_)));
    for c in "step 2 looks fine!".chars() {
        assert_eq!(a.handle_key(key(c), &s), Action::None, "{c:?} is typed");
    }
    a.handle_key(code(KeyCode::Backspace), &s);
    let text = screen(&render(&a, &s, 100, 24));
    println!("{text}");
    assert!(
        text.contains("Approve deployment 7 of web (v2 → v3)?"),
        "{text}"
    );
    assert!(text.contains("reason: step 2 looks fine▏"), "{text}");
    assert!(text.contains("> Cancel <     Approve"), "{text}");
    assert!(
        text.contains("Tab chooses  Enter presses  Esc cancels"),
        "{text}"
    );
    assert_eq!(a.handle_key(code(KeyCode::Tab), &s), Action::SwitchButton);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains("  Cancel     > Approve <"), "{text}");
    assert_eq!(a.take_confirmed(), None, "nothing is sent before Enter");
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(
        a.take_confirmed(),
        Some(ConfirmedAction {
            action: ConfirmAction::Rollout {
                app: "web".into(),
                deployment: 7,
                verb: Verb::Approve,
            },
            reason: Some("step 2 looks fine".into()),
        })
    );
    assert_eq!(a.take_confirmed(), None);

    // Esc cancels; an empty reason is none.
    assert_eq!(a.handle_key(key('x'), &s), Action::Rollout(Verb::Abort));
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(a.take_confirmed(), None);
    a.handle_key(key('a'), &s);
    a.handle_key(key(' '), &s);
    a.handle_key(code(KeyCode::Tab), &s);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
    assert_eq!(a.take_confirmed().map(|r| r.reason), Some(None));

    // In the popup `q` is a letter of the reason; Ctrl-C still quits.
    a.handle_key(key('x'), &s);
    assert_eq!(a.handle_key(key('q'), &s), Action::None);
    assert_eq!(a.confirm().map(|c| c.reason.text()).as_deref(), Some("q"));
    assert_eq!(
        a.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &s),
        Action::Quit
    );
    a.handle_key(code(KeyCode::Esc), &s);

    // On an app with no rollout the keys say so; in its app view too.
    a.handle_key(key('j'), &s);
    assert_eq!(a.handle_key(key('x'), &s), Action::None);
    assert_eq!(
        a.notice().map(|n| n.text.as_str()),
        Some("no rollout of api is running")
    );
    a.handle_key(code(KeyCode::Enter), &s);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(!text.contains("x abort"), "{text}");
    assert_eq!(a.handle_key(key('a'), &s), Action::None);

    // The question fits narrow terminals without a panic.
    a.handle_key(code(KeyCode::Esc), &s);
    a.handle_key(key('k'), &s);
    a.handle_key(key('x'), &s);
    for (w, h) in [(80, 24), (40, 12), (20, 5), (3, 3)] {
        render(&a, &s, w, h);
    }
}

#[test]
fn the_header_says_whether_this_console_probes_or_reads() {
    use rollguard::state::Role;
    use rollguard::store::LeaseHolder;
    let f = fleet();
    let mut s = state(&f);
    let a = new_app(&f);
    s.set_role(Role::Prober);
    let top = |s: &FleetState, w| lines(&render(&a, s, w, 24))[0].clone();
    assert!(top(&s, 160).contains("· probing ·"), "{}", top(&s, 160));
    let holder = LeaseHolder {
        kind: "agent".into(),
        user: "ana".into(),
        host: "db-1".into(),
        pid: 4242,
        token: "t".into(),
        fleet: String::new(),
        acquired_ms: 0,
        heartbeat_ms: 0,
    };
    s.set_role(Role::Reader {
        holder: holder.clone(),
        other_fleet: false,
    });
    let wide = top(&s, 160);
    assert!(
        wide.contains("reading · agent ana@db-1 (pid 4242) probes"),
        "{wide}"
    );
    // At 80 columns it says so in a word, and still names the file.
    let narrow = top(&s, 80);
    assert!(
        narrow.contains(" reading ") && narrow.contains("fleet.toml"),
        "{narrow}"
    );
    s.set_role(Role::Reader {
        holder,
        other_fleet: true,
    });
    assert!(
        top(&s, 160).contains("probes another config"),
        "{}",
        top(&s, 160)
    );
}

/// web waits for approval of deployment 7, worker of deployment 9.
fn two_waiting(f: &Arc<Fleet>) -> FleetState {
    use rollguard::rollout::watch::{ActiveRollout, AppRollouts};
    let mut s = state(f);
    let waiting = |id, app: &str| ActiveRollout {
        id,
        from: Some(format!("{app}-v1")),
        to: format!("{app}-v2"),
        strategy: rollguard::config::Strategy::Canary,
        state: rollguard::model::DeploymentState::WaitingApproval,
        stage: 1,
        stages: 3,
        ..ActiveRollout::default()
    };
    let mut r = vec![AppRollouts::default(); f.apps.len()];
    r[0].active = Some(waiting(7, "web"));
    r[2].active = Some(waiting(9, "worker"));
    s.set_rollouts(r);
    s
}

fn approve(app: &str, deployment: i64) -> ConfirmedAction {
    ConfirmAction::Rollout {
        app: app.into(),
        deployment,
        verb: Verb::Approve,
    }
    .confirmed("")
}

#[test]
fn a_filter_changes_the_rows_not_the_app_an_action_hits() {
    let f = fleet();
    let s = two_waiting(&f);
    let mut a = new_app(&f);
    let t = Theme::default();
    assert_eq!(a.selected_app(), Some(0), "row 0 is web");

    // `/` filters as it is typed, ignoring case: only worker is shown,
    // on row 0.
    assert_eq!(a.handle_key(key('/'), &s), Action::Filter);
    for c in "WOR".chars() {
        assert_eq!(a.handle_key(key(c), &s), Action::None, "{c:?} is typed");
    }
    assert_eq!(a.fleet_view().rows(), &[2]);
    let buf = render(&a, &s, 100, 24);
    let text = screen(&buf);
    println!("{text}");
    assert!(
        text.contains("/WOR▏"),
        "the footer shows the filter: {text}"
    );
    assert!(text.contains("fleet · 1 of 4 apps · /WOR"), "{text}");
    assert!(!text.contains("web ") && !text.contains("api "), "{text}");
    let worker = row_of(&buf, "worker ");
    assert!(
        selected_cell(&buf, 1, worker, &t),
        "worker's row is selected"
    );

    // Enter keeps the filter; the action on row 0 hits worker, not web.
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Accept);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!((a.selected(), a.selected_app()), (0, Some(2)));
    assert_eq!(a.handle_key(key('a'), &s), Action::Rollout(Verb::Approve));
    let text = screen(&render(&a, &s, 100, 24));
    assert!(
        text.contains("Approve deployment 9 of worker (worker-v1 → worker-v2)?"),
        "{text}"
    );
    a.handle_key(code(KeyCode::Tab), &s);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
    assert_eq!(a.take_confirmed(), Some(approve("worker", 9)));

    // Enter opens worker; back in the fleet the filter is still there.
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Open);
    assert_eq!(a.view(), View::App(2));
    a.handle_key(code(KeyCode::Esc), &s);
    assert_eq!(a.fleet_view().rows(), &[2]);
    // Esc in the fleet view clears it (the footer offers it only then);
    // worker stays selected, now on its own row.
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains("Esc back"), "{text}");
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.fleet_view().rows(), &[0, 1, 2, 3]);
    assert_eq!((a.selected(), a.selected_app()), (2, Some(2)));
    let text = screen(&render(&a, &s, 100, 24));
    assert!(!text.contains("Esc back"), "{text}");

    // Esc while typing clears the filter too.
    a.handle_key(key('/'), &s);
    a.handle_key(key('b'), &s);
    assert_eq!(a.fleet_view().rows(), &[0, 3], "web and batch");
    a.handle_key(key('a'), &s);
    assert_eq!(a.fleet_view().rows(), &[3]);
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.fleet_view().rows(), &[0, 1, 2, 3]);

    // A filter no app matches: nothing is selected, no key acts.
    a.handle_key(key('/'), &s);
    for c in "zz".chars() {
        a.handle_key(key(c), &s);
    }
    a.handle_key(code(KeyCode::Enter), &s);
    assert_eq!(a.selected_app(), None);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains("no app's name contains \"zz\""), "{text}");
    assert!(!text.contains("a approve"), "{text}");
    assert_eq!(a.handle_key(key('a'), &s), Action::None);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
    assert_eq!(a.mode(), &Mode::Normal);
    for (w, h) in [(80, 24), (20, 5), (3, 3)] {
        render(&a, &s, w, h);
    }
}

#[test]
fn the_command_line_asks_as_the_keys_do() {
    let f = fleet();
    let s = two_waiting(&f);
    let mut a = new_app(&f);

    assert_eq!(a.handle_key(key(':'), &s), Action::Command);
    for c in "approve worker".chars() {
        a.handle_key(key(c), &s);
    }
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains(":approve worker▏"), "{text}");
    assert_eq!(
        a.handle_key(code(KeyCode::Enter), &s),
        Action::Rollout(Verb::Approve)
    );
    assert_eq!(
        a.confirm().map(|c| c.question.as_str()),
        Some("Approve deployment 9 of worker (worker-v1 → worker-v2)?")
    );
    a.handle_key(code(KeyCode::Right), &s);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
    assert_eq!(a.take_confirmed(), Some(approve("worker", 9)));

    let run = |a: &mut App, line: &str| {
        a.handle_key(key(':'), &s);
        for c in line.chars() {
            a.handle_key(key(c), &s);
        }
        a.handle_key(code(KeyCode::Enter), &s)
    };
    // A deploy is checked before it is asked: the console waits for the
    // check (Esc stops waiting) and leaves it for the run loop.
    assert_eq!(run(&mut a, "deploy web v3"), Action::Deploy);
    assert!(matches!(a.mode(), tui::Mode::Pending(_)), "{:?}", a.mode());
    assert!(matches!(
        a.take_check(),
        Some((_, tui::Intent::Deploy { ref app, .. })) if app == "web"
    ));
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.mode(), &tui::Mode::Normal);
    assert_eq!(run(&mut a, "launch web"), Action::None);
    let said = a.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(said.starts_with("unknown command :launch"), "{said}");
    assert_eq!(run(&mut a, "fire web"), Action::None);
    assert_eq!(
        a.notice().map(|n| n.text.as_str()),
        Some("no rollback of web is armed: the rollout is waiting approval")
    );
    assert_eq!(run(&mut a, "abort nosuch"), Action::None);
    assert_eq!(
        a.notice().map(|n| n.text.as_str()),
        Some("no app is named \"nosuch\"")
    );
    assert_eq!(a.take_confirmed(), None, "nothing was confirmed");
    assert_eq!(run(&mut a, "q"), Action::Quit);

    // Esc closes the line; `q` in it is a letter.
    a.handle_key(key(':'), &s);
    assert_eq!(a.handle_key(key('q'), &s), Action::None);
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.mode(), &Mode::Normal);
}

#[test]
fn help_lists_the_keys_of_the_view_underneath() {
    let f = fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    a.handle_key(code(KeyCode::Enter), &s);
    a.handle_key(key('?'), &s);
    let text = screen(&render(&a, &s, 80, 24));
    println!("{text}");
    assert!(text.contains("next row"), "{text}");
    assert!(text.contains("Esc or ? closes"), "{text}");
    assert!(!text.contains("open the selected app"), "{text}");
    assert!(!text.contains("filter apps by name"), "{text}");
}

/// An error that has since passed reads as old: at every width from 80
/// up its age comes first and it is dimmed, on the fleet's row and on the
/// instance's row of the app view.
#[test]
fn an_old_error_on_a_healthy_row_says_its_age_first_and_is_dimmed() {
    let f = fleet();
    let mut s = state(&f);
    // api-2 failed once, three minutes before the last round, then passed.
    let last = T0 + 39_000;
    s.observe(&result("api", "api-2", "tcp", last - 180_000, false, 3.0));
    s.observe(&result("api", "api-2", "tcp", last + 500, true, 3.0));
    let mut a = new_app(&f);
    a.now_ms = last + 1_000;
    let t = Theme::default();
    for (w, h) in [(80, 24), (100, 30), (200, 50)] {
        let buf = render(&a, &s, w, h);
        let y = row_of(&buf, "api");
        let line = &lines(&buf)[y as usize];
        let Some(x) = line.find("3m ago") else {
            // At 80 columns the column may be left out; it must not show
            // the error without its age.
            assert!(!line.contains("api-2/tcp"), "{w}x{h}: {line}");
            continue;
        };
        let x = line[..x].chars().count() as u16;
        assert_eq!(buf[(x, y)].fg, t.dim, "{w}x{h}: {line}");
    }
    // The app view's row of api-2.
    a.handle_key(key('j'), &s);
    a.handle_key(code(KeyCode::Enter), &s);
    let buf = render(&a, &s, 100, 30);
    let y = row_of(&buf, "api-2");
    let line = &lines(&buf)[y as usize];
    assert!(line.contains("3m ago, passes now: refus"), "{line}");
}
