//! The `?` popup: every binding of the view underneath (and of the help
//! itself), with all its keys, generated from the console's keymap (so a
//! key `[console.keys]` gave shows). On a read-only console the keys that
//! act are listed as unavailable.

use std::sync::Arc;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::keys::{Action, Binding, Modes};
use crate::tui::control::Verb;
use crate::tui::keymap::Keymap;
use crate::tui::text;

use super::{Component, DrawContext};

/// The help popup: the keys it lists.
#[derive(Debug, Default)]
pub struct Help {
    keymap: Arc<Keymap>,
}

impl Help {
    /// A popup that lists the keys of `keymap`.
    pub fn new(keymap: Arc<Keymap>) -> Self {
        Help { keymap }
    }
}

impl Component for Help {
    /// Draws the popup centred in `area`.
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let rows: Vec<&Binding> = self.keymap.help_bindings(cx.view).collect();
        let entries = entries(&rows);
        // Keys longer than this (a motion and its opposite) push their
        // words right instead of widening the column for every line.
        let key_w = entries
            .iter()
            .map(|e| text::width(&e.keys))
            .filter(|w| *w <= 16)
            .max()
            .unwrap_or(0);
        let lines: Vec<Line> = entries
            .iter()
            .map(|e| {
                let keys = format!(" {}  ", text::pad(&e.keys, key_w.max(text::width(&e.keys))));
                if cx.read_only && e.acts {
                    let dim = Style::new().fg(t.dim).add_modifier(Modifier::CROSSED_OUT);
                    return Line::from(vec![
                        Span::styled(keys, dim),
                        Span::styled(e.help.clone(), dim),
                        Span::styled(" (unavailable: read-only)", Style::new().fg(t.dim)),
                    ]);
                }
                Line::from(vec![
                    Span::styled(
                        keys,
                        Style::new().fg(t.header_bg).add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(e.help.clone(), Style::new().fg(t.text)),
                ])
            })
            .collect();
        let key = |a| self.keymap.key_label(a, cx.view, Modes::HELP);
        // Ctrl-Z and Ctrl-L are taken before the keymap, in every view.
        let title = format!(
            " keys · {} or {} closes · Ctrl-Z suspends · Ctrl-L redraws ",
            key(Action::Back),
            key(Action::Help)
        );
        let want_w = lines
            .iter()
            .map(Line::width)
            .max()
            .unwrap_or(0)
            .max(text::width(&title) + 2) as u16
            + 3;
        let want_h = lines.len() as u16 + 2;
        let w = want_w.min(area.width);
        let h = want_h.min(area.height);
        let popup = Rect::new(
            area.x + (area.width - w) / 2,
            area.y + (area.height - h) / 2,
            w,
            h,
        );
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(lines).block(
                Block::bordered()
                    .title(title)
                    .border_style(Style::new().fg(t.border)),
            ),
            popup,
        );
    }
}

/// One line of the help: keys, words, and whether it acts.
struct Entry {
    keys: String,
    help: String,
    acts: bool,
}

/// The lines of the help: one per binding, except that a motion and its
/// opposite (down and up, top and bottom, page up and down, the next and
/// the previous view, pause and resume) share one, so
/// the keys of the busiest view fit an 80x24 terminal.
fn entries(rows: &[&Binding]) -> Vec<Entry> {
    let pairs = [
        (Action::Down, Action::Up),
        (Action::Top, Action::Bottom),
        (Action::PageUp, Action::PageDown),
        (Action::NextView, Action::PrevView),
        (Action::Rollout(Verb::Pause), Action::Rollout(Verb::Resume)),
    ];
    let mut out: Vec<Entry> = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        let b = rows[i];
        let next = rows.get(i + 1);
        if let Some(n) = next.filter(|n| pairs.contains(&(b.action, n.action))) {
            out.push(Entry {
                keys: format!("{} / {}", b.keys_label(), n.keys_label()),
                help: format!("{} / {}", b.help, n.help),
                acts: b.action.acts() || n.action.acts(),
            });
            i += 2;
            continue;
        }
        out.push(Entry {
            keys: b.keys_label(),
            help: b.help.to_string(),
            acts: b.action.acts(),
        });
        i += 1;
    }
    out
}
