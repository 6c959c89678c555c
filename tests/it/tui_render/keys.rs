//! Keys given in `[console.keys]`: they act, the old ones no longer do,
//! and the help popup and the footer show them.

use rollguard::config::KeyRemap;

use super::*;

/// The test fleet with quit on Q, the log pane on L or Ctrl-l, abort on X.
fn remapped_fleet() -> Arc<Fleet> {
    let remap = |action: &str, keys: &[&str]| KeyRemap {
        action: action.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    let mut f = (*fleet()).clone();
    f.console.keys = vec![
        remap("quit", &["Q"]),
        remap("toggle_log", &["Z", "ctrl-t"]),
        remap("abort", &["X"]),
    ];
    Arc::new(f)
}

#[test]
fn help_and_footer_show_the_remapped_keys() {
    let f = remapped_fleet();
    let s = with_rollout(&f, "waiting_approval", "v3", "canary");
    let mut a = new_app(&f);

    let text = screen(&render(&a, &s, 120, 24));
    println!("{text}");
    assert!(text.contains(" Q quit "), "{text}");
    assert!(text.contains(" X abort "), "{text}");
    assert!(
        !text.contains(" q quit ") && !text.contains(" x abort "),
        "{text}"
    );

    assert_eq!(a.handle_key(key('?'), &s), Action::Help);
    let buf = render(&a, &s, 120, 30);
    let text = screen(&buf);
    println!("{text}");
    let line_of = |help: &str| lines(&buf)[row_of(&buf, help) as usize].clone();
    let quit = line_of(" quit ");
    assert!(quit.contains(" Q ") && !quit.contains("Ctrl-c"), "{text}");
    assert!(
        line_of("show / hide the log pane").contains("Z, Ctrl-t"),
        "{text}"
    );
    assert!(line_of("abort the rollout").contains(" X "), "{text}");
    assert!(!text.contains("q, Ctrl-c"), "{text}");
    // Keys nobody remapped keep theirs.
    assert!(line_of("next row").contains("j, ↓"), "{text}");
    assert!(text.contains("Esc or ? closes"), "{text}");

    // The new keys act; the old ones are free.
    assert_eq!(a.handle_key(key('q'), &s), Action::None);
    assert_eq!(a.handle_key(key('Z'), &s), Action::ToggleLog);
    assert!(a.log_visible());
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.handle_key(key('x'), &s), Action::None);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(
        a.handle_key(key('X'), &s),
        Action::Rollout(Verb::Abort),
        "X asks to abort web's rollout"
    );
    // The question's keys are fixed: Esc cancels it.
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.handle_key(key('Q'), &s), Action::Quit);
}

/// Below 80x24 the one message names the quit key as remapped, and the
/// Logs view's hint names its keys through the keymap too.
#[test]
fn the_small_terminal_message_and_the_logs_hint_name_remapped_keys() {
    let f = remapped_fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    let text = screen(&render(&a, &s, 70, 20));
    assert!(text.contains("Q quits"), "{text}");
    assert!(!text.contains("q quits"), "{text}");
    a.handle_key(key('L'), &s);
    let text = screen(&render(&a, &s, 100, 30));
    assert!(
        text.contains("open a rollout (R) or a deployment in History (H), then L"),
        "{text}"
    );
}
