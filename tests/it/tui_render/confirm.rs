//! The question before an action, key by key: it opens on Cancel, Enter
//! there closes it, abort and fire refuse without a reason, a protected
//! app's name must be typed, no action goes out with fewer than three
//! deliberate keys; and a read-only console acts on nothing.

use ratatui::style::Modifier;

use rollguard::tui::components::Button;

use super::*;

/// web's rollout (deployment 7, v2 → v3) in `state`; api has none.
fn rollout_in(f: &Arc<Fleet>, state_name: &str) -> FleetState {
    super::with_rollout(f, state_name, "v3", "canary")
}

/// The test fleet with web protected.
fn protected_fleet() -> Arc<Fleet> {
    let mut f = (*fleet()).clone();
    f.apps[0].protected = true;
    Arc::new(f)
}

fn typed(a: &mut App, s: &FleetState, text: &str) {
    for c in text.chars() {
        assert_eq!(a.handle_key(key(c), s), Action::None, "{c:?} is typed");
    }
}

fn question(a: &App) -> &rollguard::tui::Confirm {
    a.confirm().expect("the question is open")
}

#[test]
fn the_question_opens_on_cancel_and_enter_there_closes_it() {
    let f = fleet();
    let s = rollout_in(&f, "running");
    let mut a = new_app(&f);
    assert_eq!(a.handle_key(key('x'), &s), Action::Rollout(Verb::Abort));
    assert_eq!(question(&a).focus(), Button::Cancel);
    typed(&mut a, &s, "v3 fails");

    // Cancel is focused: reversed and between markers, so it shows
    // without colour; the action's button is plain.
    let buf = render(&a, &s, 100, 24);
    let text = screen(&buf);
    println!("{text}");
    assert!(text.contains("reason: v3 fails▏"), "{text}");
    assert!(text.contains("> Cancel <     Abort  "), "{text}");
    let y = row_of(&buf, "> Cancel <");
    let x = lines(&buf)[y as usize].find("> Cancel <").unwrap();
    let x = lines(&buf)[y as usize][..x].chars().count() as u16;
    for dx in 0..10 {
        assert!(
            buf[(x + dx, y)].modifier.contains(Modifier::REVERSED),
            "the focused button is reversed at {dx}"
        );
    }
    let abort_x = x + 15;
    assert_eq!(buf[(abort_x, y)].symbol(), "A");
    assert!(!buf[(abort_x, y)].modifier.contains(Modifier::REVERSED));
    assert!(text.contains("Enter press"), "the footer: {text}");

    // Enter on Cancel closes the question; nothing is sent.
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Back);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(a.take_confirmed(), None);

    // Tab, ← and → move between the buttons, and back to Cancel.
    a.handle_key(key('x'), &s);
    for (k, now) in [
        (KeyCode::Tab, Button::Act),
        (KeyCode::Tab, Button::Cancel),
        (KeyCode::Right, Button::Act),
        (KeyCode::Left, Button::Cancel),
        (KeyCode::BackTab, Button::Act),
    ] {
        assert_eq!(a.handle_key(code(k), &s), Action::SwitchButton);
        assert_eq!(question(&a).focus(), now, "after {k:?}");
    }
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains("  Cancel     > Abort <"), "{text}");
    // Esc still cancels from the action's button.
    assert_eq!(a.handle_key(code(KeyCode::Esc), &s), Action::Back);
    assert_eq!(a.take_confirmed(), None);
}

#[test]
fn abort_and_fire_refuse_without_a_reason() {
    let f = fleet();
    let s = rollout_in(&f, "rollback_armed");
    let mut a = new_app(&f);
    for (k, verb) in [('x', Verb::Abort), ('f', Verb::Fire)] {
        assert_eq!(a.handle_key(key(k), &s), Action::Rollout(verb));
        let text = screen(&render(&a, &s, 100, 24));
        assert!(text.contains("reason: ▏ (required)"), "{text}");
        assert!(text.contains("type a reason (required)"), "{text}");
        a.handle_key(code(KeyCode::Tab), &s);
        // Blank, or only spaces: refused, and the question says why.
        for blank in ["", "  "] {
            typed(&mut a, &s, blank);
            assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
            assert!(matches!(a.mode(), Mode::Confirm(_)), "still open");
            assert_eq!(a.take_confirmed(), None);
            let text = screen(&render(&a, &s, 100, 24));
            let why = format!("✖ a reason is required to {}: type it first", verb.as_str());
            assert!(text.contains(&why), "{text}");
        }
        // Typing clears the refusal; then Enter sends, with the reason.
        typed(&mut a, &s, "v3 fails");
        assert_eq!(question(&a).refusal(), None);
        assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
        let sent = a.take_confirmed().expect("sent");
        assert_eq!(sent.reason.as_deref(), Some("v3 fails"));
        assert_eq!(
            sent.action,
            ConfirmAction::Rollout {
                app: "web".into(),
                deployment: 7,
                verb
            }
        );
    }
    // Hold takes an optional reason: none is fine.
    a.handle_key(key('h'), &s);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains("reason: ▏ (optional)"), "{text}");
    a.handle_key(code(KeyCode::Tab), &s);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
    assert_eq!(a.take_confirmed().map(|c| c.reason), Some(None));
}

#[test]
fn a_protected_app_wants_its_name_typed_exactly() {
    let f = protected_fleet();
    let s = rollout_in(&f, "running");
    let mut a = new_app(&f);
    a.handle_key(key('x'), &s);
    typed(&mut a, &s, "v3 fails");
    let text = screen(&render(&a, &s, 100, 24));
    println!("{text}");
    assert!(text.contains("type web to confirm: "), "{text}");
    assert!(
        text.contains("↑ line"),
        "the footer offers the other line: {text}"
    );
    assert!(text.contains("type a reason and the app's name"), "{text}");

    // With the reason alone, the action's button refuses.
    a.handle_key(code(KeyCode::Tab), &s);
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(
        text.contains("✖ web is protected: type its name exactly to abort"),
        "{text}"
    );
    // ↓ types into the name; a wrong case or a part is refused too.
    assert_eq!(a.handle_key(code(KeyCode::Down), &s), Action::SwitchLine);
    for wrong in ["Web", "we"] {
        typed(&mut a, &s, wrong);
        assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
        assert_eq!(a.take_confirmed(), None);
        for _ in 0..wrong.len() {
            a.handle_key(code(KeyCode::Backspace), &s);
        }
    }
    typed(&mut a, &s, "web");
    let text = screen(&render(&a, &s, 100, 24));
    assert!(text.contains("type web to confirm: web▏"), "{text}");
    assert!(
        text.contains("reason: v3 fails "),
        "the reason is kept: {text}"
    );
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::Send);
    let sent = a.take_confirmed().expect("sent");
    assert_eq!(
        sent.reason.as_deref(),
        Some("v3 fails"),
        "the name is not the reason"
    );

    // An app that is not protected has one line: ↑ ↓ do nothing there.
    let plain = fleet();
    let s = rollout_in(&plain, "running");
    let mut a = new_app(&plain);
    a.handle_key(key('x'), &s);
    assert_eq!(a.handle_key(code(KeyCode::Down), &s), Action::None);
    let text = screen(&render(&a, &s, 100, 24));
    assert!(
        !text.contains("to confirm") && !text.contains("↑ line"),
        "{text}"
    );
}

/// Every key that could take part in sending an action.
fn deliberate_keys() -> Vec<KeyEvent> {
    let mut keys: Vec<KeyEvent> = "ahfxw :".chars().map(key).collect();
    keys.extend(
        [
            KeyCode::Enter,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Esc,
            KeyCode::Backspace,
        ]
        .map(code),
    );
    keys
}

/// Every confirmed action that some sequence of `n` keys from `keys`
/// sends from a fresh console (`read_only` or not), with the sequence.
fn sent_within(
    f: &Arc<Fleet>,
    s: &FleetState,
    keys: &[KeyEvent],
    n: usize,
    read_only: bool,
) -> Vec<(Vec<KeyCode>, ConfirmedAction)> {
    let mut sent = Vec::new();
    let mut seq = vec![0usize; n];
    loop {
        let mut a = new_app(f);
        a.read_only = read_only;
        for &k in &seq {
            if a.handle_key(keys[k], s) == Action::Quit {
                break;
            }
            if let Some(c) = a.take_confirmed() {
                sent.push((seq.iter().map(|&i| keys[i].code).collect(), c));
                break;
            }
        }
        // The next sequence, as an odometer.
        let Some(pos) = (0..n).rev().find(|&p| seq[p] + 1 < keys.len()) else {
            return sent;
        };
        seq[pos] += 1;
        seq[pos + 1..].iter_mut().for_each(|k| *k = 0);
    }
}

#[test]
fn no_action_goes_out_with_fewer_than_three_deliberate_keys() {
    let keys = deliberate_keys();
    for (fleet, protected) in [(fleet(), false), (protected_fleet(), true)] {
        for state_name in ["waiting_approval", "rollback_armed", "running"] {
            let s = rollout_in(&fleet, state_name);
            for n in 1..=2 {
                let sent = sent_within(&fleet, &s, &keys, n, false);
                assert!(sent.is_empty(), "{state_name}, {n} keys: {sent:?}");
            }
            // Three keys send only what needs no reason, on an app that is
            // not protected, and only as the verb's key, a move to the
            // action's button, Enter.
            for (seq, c) in sent_within(&fleet, &s, &keys, 3, false) {
                assert!(!protected, "{state_name}: {seq:?} sent {c:?}");
                assert!(!c.action.needs_reason(), "{seq:?} sent {c:?}");
                assert!(
                    matches!(
                        seq[1],
                        KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right
                    ) && seq[2] == KeyCode::Enter,
                    "{seq:?}"
                );
            }
        }
    }
    // The bound is reached: `a`, Tab, Enter approves.
    let f = fleet();
    let s = rollout_in(&f, "waiting_approval");
    let sent = sent_within(&f, &s, &keys, 3, false);
    assert!(
        sent.iter()
            .any(|(seq, _)| seq == &[KeyCode::Char('a'), KeyCode::Tab, KeyCode::Enter]),
        "{sent:?}"
    );
}

#[test]
fn a_read_only_console_acts_on_nothing_and_says_so() {
    let f = fleet();
    let s = rollout_in(&f, "rollback_armed");
    let mut a = new_app(&f);
    a.read_only = true;

    // The header says so; the footer offers no action.
    let buf = render(&a, &s, 100, 24);
    let text = screen(&buf);
    println!("{text}");
    assert!(
        lines(&buf)[0].starts_with(" rollguard · read-only "),
        "{}",
        lines(&buf)[0]
    );
    for offer in ["x abort", "f fire rollback", "h hold", "a approve"] {
        assert!(!text.contains(offer), "{offer} is offered: {text}");
    }
    assert!(text.contains("q quit"), "the rest is: {text}");
    // Still there at 80 columns.
    assert!(lines(&render(&a, &s, 80, 24))[0].contains("read-only"));

    // Keys and `:` commands that act say so, and open nothing.
    for k in ['x', 'f', 'h', 'a'] {
        assert_eq!(a.handle_key(key(k), &s), Action::None);
        assert_eq!(a.mode(), &Mode::Normal);
        let said = a.notice().map(|n| n.text.clone()).unwrap_or_default();
        assert!(said.starts_with("read-only console: "), "{k}: {said}");
    }
    let text = screen(&render(&a, &s, 100, 24));
    assert!(
        text.contains("read-only console: approve is not available"),
        "{text}"
    );
    a.handle_key(key(':'), &s);
    typed(&mut a, &s, "abort web");
    assert_eq!(a.handle_key(code(KeyCode::Enter), &s), Action::None);
    assert_eq!(a.mode(), &Mode::Normal);
    assert_eq!(
        a.notice().map(|n| n.text.as_str()),
        Some("read-only console: abort is not available")
    );
    assert_eq!(a.take_confirmed(), None);
    // No sequence of up to three keys sends anything (on a console that
    // acts, `a` Tab Enter would approve).
    let keys = deliberate_keys();
    assert!(!sent_within(&f, &s, &keys, 3, false).is_empty());
    for n in 1..=3 {
        let sent = sent_within(&f, &s, &keys, n, true);
        assert!(sent.is_empty(), "{n} keys: {sent:?}");
    }

    // The help lists the keys that act as unavailable.
    a.handle_key(key('?'), &s);
    let text = screen(&render(&a, &s, 100, 30));
    println!("{text}");
    assert!(
        text.contains("abort the rollout and roll back (unavailable: read-only)"),
        "{text}"
    );
    assert!(!text.contains("next row (unavailable"), "{text}");
}

/// The question that holds or fires an armed rollback counts down to the
/// moment it fires by itself, at 80 columns too.
#[test]
fn a_question_about_an_armed_rollback_shows_its_countdown() {
    let f = fleet();
    let s = rollout_in(&f, "rollback_armed");
    for k in ['h', 'f'] {
        let mut a = new_app(&f);
        a.handle_key(key(k), &s);
        for (w, h) in [(80, 24), (100, 30)] {
            let text = screen(&render(&a, &s, w, h));
            assert!(
                text.contains("⚠ the rollback fires by itself in 5"),
                "{k} at {w}x{h}:\n{text}"
            );
        }
    }
    // A held rollback does not fire by itself: no countdown.
    let s = rollout_in(&f, "rollback_held");
    let mut a = new_app(&f);
    a.handle_key(key('f'), &s);
    let text = screen(&render(&a, &s, 100, 30));
    assert!(text.contains("Roll web back now"), "{text}");
    assert!(!text.contains("fires by itself"), "{text}");
}

/// A long question about a protected app, with more checked than the
/// terminal has rows (a canary's steps), fits the smallest supported
/// terminal: the question, the lines to type and the buttons always show
/// inside its frame, and what was checked scrolls inside it.
#[test]
fn a_long_question_fits_80x24_and_scrolls_what_was_checked() {
    let f = protected_fleet();
    let s = state(&f);
    let mut a = new_app(&f);
    a.handle_key(key(':'), &s);
    typed(&mut a, &s, "deploy web v3");
    a.handle_key(code(KeyCode::Enter), &s);
    let (token, _) = a.take_check().expect("the deploy is checked");
    let details: Vec<String> = (1..=30)
        .map(|i| format!("{i:>4}. shift {}% of traffic to the canary of web", i * 3))
        .collect();
    a.arrive(tui::Arrival::Prepared {
        token,
        result: Ok(Box::new(tui::Question {
            action: ConfirmAction::BreakLock { app: "web".into() },
            question: "Deploy web v2 → v3-with-a-rather-long-release-name (canary, 3 instances, \
                       30 steps of traffic)?"
                .into(),
            then: "A detached worker runs it; quitting the console stops nothing, and every \
                   step waits for its gate."
                .into(),
            details: details.clone(),
            protected: true,
        })),
    });
    let buf = render(&a, &s, 80, 24);
    let text = screen(&buf);
    let rows = lines(&buf);
    let top = row_of(&buf, "┌ break the lock");
    let bottom = (top as usize + 1..rows.len())
        .find(|&y| rows[y].contains('└'))
        .unwrap_or_else(|| panic!("the frame has no bottom:\n{text}"));
    let inside = rows[top as usize..=bottom].join("\n");
    for must in [
        "Deploy web v2",
        "reason:",
        "type web to confirm:",
        "> Cancel <",
        "chooses",
        "   1. shift",
        "20 more lines below: PgDn scrolls",
    ] {
        assert!(inside.contains(must), "{must:?} not in the frame:\n{text}");
    }
    assert!(!inside.contains("30. shift"), "{text}");
    // PgDn scrolls what was checked, inside the frame.
    for _ in 0..5 {
        a.handle_key(code(KeyCode::PageDown), &s);
    }
    let text = screen(&render(&a, &s, 80, 24));
    assert!(text.contains("30. shift"), "{text}");
    assert!(!text.contains("   1. shift"), "{text}");
    assert!(text.contains("> Cancel <"), "{text}");
    a.handle_key(code(KeyCode::PageUp), &s);
    assert!(question(&a).name.is_some(), "still the question");
}
