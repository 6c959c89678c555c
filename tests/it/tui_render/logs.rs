//! The Logs view: both panes wrap long lines at spaces by display width
//! (emoji and wide characters take two cells, nothing is dropped), and
//! both scroll, the focused one shown by its border.

use ratatui::style::Modifier;
use rollguard::tui::Arrival;
use rollguard::tui::load::Loaded;

use super::*;

/// Every row of `buf` between its side borders, trimmed.
fn rows(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (1..buf.area.width.saturating_sub(1))
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn logs_wrap_at_spaces_by_display_width_and_both_panes_scroll() {
    tui::init_logging();
    let message = "🟠 rollback to v1 fired by ana: accepted as a good release of web after checks";
    tracing::info!(target: "rollguard::notify", "{message}");
    tui_logger::move_events();

    let f = fleet();
    let s = with_rollout(&f, "running", "v3", "rolling");
    let mut a = new_app(&f);
    a.handle_key(key('L'), &s);
    assert_eq!(a.view(), View::Logs);
    // Web's rollout, deployment 7: its worker's lines arrive as the run
    // loop hands them in.
    let worker = "starting web-2 on node1: docker run --name web-2 registry.example/web:v3 \
                  then waiting for its health check to pass before traffic moves";
    a.arrive(Arrival::Loaded(Ok(Loaded::WorkerLog {
        id: 7,
        lines: vec![worker.to_string()],
    })));
    let buf = render(&a, &s, 80, 24);
    let shown = rows(&buf);
    let own: Vec<&String> = shown
        .iter()
        .skip_while(|l| !l.contains("rollguard::notify"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(own.len() >= 2, "{}", screen(&buf));
    // Nothing of the message is lost, and no line is cut inside a word.
    let joined = own
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ")
        .replace("  ", " ");
    for word in message.split(' ') {
        assert!(joined.contains(word), "{word:?} lost:\n{}", screen(&buf));
    }
    for l in &own {
        let last = l.split(' ').next_back().unwrap_or_default();
        assert!(
            message.split(' ').any(|w| w == last) || last.ends_with("notify"),
            "{l:?} ends inside a word:\n{}",
            screen(&buf)
        );
    }
    // The worker's line wraps at spaces too, every word kept.
    let below: Vec<&String> = shown
        .iter()
        .skip_while(|l| !l.contains("worker log"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let joined = below.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    for word in worker.split_whitespace() {
        assert!(joined.contains(word), "{word:?} lost:\n{}", screen(&buf));
    }
    assert!(!joined.contains('…'), "{}", screen(&buf));
    // The worker's pane has the focus first: its border is bold.
    let bold = |y: u16| buf[(0, y)].modifier.contains(Modifier::BOLD);
    let worker_top = row_of(&buf, "worker log");
    assert!(bold(worker_top + 1), "{}", screen(&buf));
    assert!(!bold(1));
    // `w` moves the focus to rollguard's own log.
    a.handle_key(key('w'), &s);
    let buf = render(&a, &s, 80, 24);
    assert!(buf[(0, 1)].modifier.contains(Modifier::BOLD));
    assert!(!buf[(0, worker_top + 1)].modifier.contains(Modifier::BOLD));
}
