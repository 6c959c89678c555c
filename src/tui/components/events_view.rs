//! The Events view: the live audit log of every app (incidents opened and
//! resolved, rollouts, gates, commands with actor and reason), the same
//! stream as `rollguard events --follow`, newest at the bottom, each line
//! shortened to what fits a screen: time, app, kind, what happened, why
//! and who. It follows the newest until scrolled (↑ ↓ PgUp PgDn; `G`
//! follows again). New events are read by id about once a second.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::audit::{reason_suffix, what};
use crate::clock::clock_time;
use crate::keys::Action;
use crate::printable::printable;
use crate::store::Event;
use crate::tui::load::EVENTS_KEPT;
use crate::tui::text;

use super::{Component, DrawContext, Tail};

/// The events shown and the scroll.
#[derive(Debug, Default)]
pub struct EventsView {
    /// Each event's id, kind and line, oldest first.
    lines: VecDeque<(i64, String, String)>,
    loaded: bool,
    error: Option<String>,
    /// Where it is scrolled to.
    tail: Tail,
}

impl EventsView {
    /// The id of the newest event shown (0: none yet).
    pub fn last_id(&self) -> i64 {
        self.lines.back().map_or(0, |l| l.0)
    }

    /// Adds events newer than those shown, keeping the newest
    /// [`EVENTS_KEPT`].
    pub fn extend(&mut self, events: Vec<Event>) {
        self.loaded = true;
        self.error = None;
        let last = self.last_id();
        for e in events.into_iter().filter(|e| e.id > last) {
            self.tail.grew(self.lines.len() + 1);
            self.lines.push_back((e.id, e.kind.clone(), line(&e)));
        }
        while self.lines.len() > EVENTS_KEPT {
            self.lines.pop_front();
        }
    }

    /// Says why events could not be read.
    pub fn set_error(&mut self, why: String) {
        self.error = Some(why);
    }

    /// Scrolls; whether `action` is a motion.
    pub fn apply(&mut self, action: Action) -> bool {
        self.tail.apply(action, self.lines.len())
    }
}

impl Component for EventsView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let follow = match self.tail.up() {
            0 => "following".to_string(),
            up => format!("{up} newer below · G follows"),
        };
        let title = Line::from(vec![
            Span::styled(" Events ", Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(format!("· every app · {follow} "), Style::new().fg(t.dim)),
        ]);
        let block = crate::tui::panel(title, area, t);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.is_empty() {
            return;
        }
        if self.lines.is_empty() {
            let words = match (&self.error, self.loaded) {
                (Some(e), _) => format!("✖ cannot read events: {e}"),
                (None, true) => "no events yet".into(),
                (None, false) => "reading events…".into(),
            };
            frame.render_widget(Paragraph::new(words).style(Style::new().fg(t.dim)), inner);
            return;
        }
        let shown = self.tail.window(self.lines.len(), inner.height as usize);
        let width = inner.width as usize;
        let lines: Vec<Line> = self
            .lines
            .range(shown)
            .map(|(_, kind, line)| {
                let style = if kind.contains("fail") || kind.starts_with("incident_opened") {
                    Style::new().fg(t.down)
                } else if kind.starts_with("rollback") {
                    Style::new().fg(t.degraded)
                } else if kind.starts_with("command") {
                    Style::new().fg(t.rollout)
                } else if kind.ends_with("resolved") || kind == "rollout_completed" {
                    Style::new().fg(t.healthy)
                } else {
                    Style::new().fg(t.text)
                };
                Line::from(Span::styled(text::truncate(line, width), style))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// One event in a line: time, app, kind, what happened (from its typed
/// payload), its reason and who; everything from the history printable.
fn line(e: &Event) -> String {
    let (what, reason) = (what(e), reason_suffix(e));
    let deployment = e
        .deployment_id
        .map(|d| format!(" #{d}"))
        .unwrap_or_default();
    format!(
        "{} {} {} {}",
        clock_time(e.at_ms),
        text::pad(&printable(&e.app), 10),
        text::pad(&printable(&e.kind), 18),
        printable(&format!("{what}{reason} · {}{deployment}", e.actor))
    )
}
