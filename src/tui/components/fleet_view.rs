//! The fleet view: one row per app, with its status, healthy instances,
//! the release it runs or the rollout under way, a latency sparkline of
//! recent probes, the success rate over the last five minutes and the last
//! error. The first screen an on-call engineer
//! sees; `Enter` opens an app.
//!
//! The rows shown are kept apart from the fleet's index: a `/` filter
//! picks which apps are shown ([`FleetView::rows`] maps each row to its
//! app), and an action always takes the app of the selected row through
//! [`FleetView::selected_app`], never the row's position.

use std::sync::Arc;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};

use crate::config::Fleet;
use crate::keys::Action;
use crate::model::AppStatus;
use crate::tui::columns::{Col, fit};
use crate::tui::rollout_text::{active_width, release_cell};
use crate::tui::sparkline::LatencySparkline;
use crate::tui::text;
use crate::tui::theme::Theme;

use super::{Component, DrawContext, Selection};

/// Symbol of an app status: ● healthy, ◐ degraded, ✖ down, ○ unknown.
pub fn status_symbol(s: AppStatus) -> char {
    match s {
        AppStatus::Healthy => '●',
        AppStatus::Degraded => '◐',
        AppStatus::Down => '✖',
        AppStatus::Unknown => '○',
    }
}

/// Color of a success rate.
pub(crate) fn rate_color(t: &Theme, ok: u64, total: u64) -> Color {
    if total == 0 {
        t.dim
    } else if ok == total || ok * 100 >= total * 99 {
        t.text
    } else if ok * 10 >= total * 9 {
        t.degraded
    } else {
        t.down
    }
}

/// The fleet table: its filter, the rows it shows and the selected row.
#[derive(Debug)]
pub struct FleetView {
    fleet: Arc<Fleet>,
    filter: String,
    /// The fleet index of the app on each row shown.
    rows: Vec<usize>,
    selection: Selection,
}

impl FleetView {
    /// Every app of `fleet`, the first selected.
    pub fn new(fleet: Arc<Fleet>) -> Self {
        let rows = (0..fleet.apps.len()).collect();
        FleetView {
            fleet,
            filter: String::new(),
            rows,
            selection: Selection::default(),
        }
    }

    /// The fleet index of the app on each row shown, top to bottom.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// The selected row.
    pub fn selected(&self) -> usize {
        self.selection.selected()
    }

    /// The fleet index of the app on the selected row; none when no app is
    /// shown.
    pub fn selected_app(&self) -> Option<usize> {
        let last = self.rows.len().checked_sub(1)?;
        self.rows.get(self.selection.selected().min(last)).copied()
    }

    /// The filter applied ("" for none).
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Shows only the apps whose name contains `filter` (ignoring case;
    /// "" shows all). The selected app stays selected if it is still
    /// shown; otherwise the first row is.
    pub fn set_filter(&mut self, filter: &str) {
        if filter == self.filter {
            return;
        }
        let kept = self.selected_app();
        let needle = filter.to_lowercase();
        self.filter = filter.to_string();
        self.rows = (self.fleet.apps.iter().enumerate())
            .filter(|(_, a)| a.name.to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect();
        match kept.and_then(|k| self.rows.iter().position(|&i| i == k)) {
            Some(row) => self.selection.select(row),
            None => self.selection.reset(),
        }
    }

    /// Moves the selection; returns whether `action` is a motion.
    pub fn apply(&mut self, action: Action) -> bool {
        self.selection.apply(action, self.rows.len())
    }

    /// Selects the row shown `shown` lines under the first one shown (a
    /// click); returns whether there is one.
    pub(crate) fn select_shown(&mut self, shown: usize) -> bool {
        self.selection.select_shown(shown, self.rows.len())
    }
}

impl Component for FleetView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        draw(self, frame, area, cx);
    }
}

/// Draws the fleet table into `area`.
fn draw(view: &FleetView, frame: &mut Frame, area: Rect, cx: &DrawContext) {
    let (t, state) = (cx.theme, cx.state);
    let fleet = state.fleet();
    let n = view.rows.len();
    let title = if view.filter.is_empty() {
        format!(" fleet · {n} apps ")
    } else {
        format!(
            " fleet · {n} of {} apps · /{} ",
            fleet.apps.len(),
            view.filter
        )
    };
    let block = crate::tui::panel(Line::from(title), area, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }
    if n == 0 {
        let msg = if fleet.apps.is_empty() {
            format!("no apps in {}", fleet.source.display())
        } else {
            format!("no app's name contains {:?}", view.filter)
        };
        frame.render_widget(Paragraph::new(msg).style(Style::new().fg(t.dim)), inner);
        return;
    }

    let compact = inner.width < 44;
    // Every app's rollout words count (not only the rows shown), so that a
    // filter does not make the columns jump.
    let rollout_w = (0..fleet.apps.len())
        .map(|i| active_width(cx.state.rollouts(i), cx.now_ms, t))
        .max()
        .unwrap_or(0)
        .min(60) as u16;
    let room = inner.width.saturating_sub(t.marker_width());
    let widths = column_widths(fleet, room, compact, rollout_w);

    let visible = inner.height.saturating_sub(1) as usize;
    let (selected, offset) = view.selection.place(visible, n);

    let headings = [
        if compact { "" } else { "STATUS" },
        "APP",
        "INST",
        "RELEASE",
        "LATENCY",
        "OK 5M",
        "LAST ERROR",
    ];

    let rows = view.rows[offset..n.min(offset + visible)]
        .iter()
        .map(|&i| app_row(i, &widths, compact, cx));

    super::draw_table(frame, inner, &headings, &widths, rows, selected - offset, t);
}

/// The widths of the columns at `width`; names and instance counts of all
/// apps count, so that a filter does not make the columns jump. A rollout
/// under way needs `rollout_w` columns of RELEASE: it gets them before
/// any other column but STATUS, APP and INST grows, and is never dropped.
fn column_widths(fleet: &Fleet, width: u16, compact: bool, rollout_w: u16) -> Vec<u16> {
    let name_w = fleet
        .apps
        .iter()
        .map(|a| text::width(&a.name))
        .max()
        .unwrap_or(0)
        .clamp(3, 24) as u16;
    let most = fleet
        .apps
        .iter()
        .map(|a| a.instances.len())
        .max()
        .unwrap_or(0);
    let inst_w = (most.to_string().len() as u16 * 2 + 1).max(4);
    fit(
        width,
        1,
        &[
            Col::fixed(if compact { 1 } else { 10 }),
            Col::new(name_w.min(8), name_w, name_w, 0),
            Col::fixed(inst_w),
            if rollout_w > 0 {
                Col::new(rollout_w, rollout_w.max(20), rollout_w.max(24), 0)
            } else {
                Col::new(10, 20, 24, 2)
            },
            Col::new(8, 16, 30, 2),
            Col::new(6, 6, 6, 1),
            Col::new(12, 48, u16::MAX, 3),
        ],
    )
}

/// The row of the app at fleet index `i`, its cells cut to `widths`.
fn app_row(i: usize, widths: &[u16], compact: bool, cx: &DrawContext) -> Row<'static> {
    let (t, state, now_ms) = (cx.theme, cx.state, cx.now_ms);
    let fleet = state.fleet();
    let tracker = state.tracker();
    let a = &fleet.apps[i];
    let status = tracker.app_status(i);
    let color = t.status(status);
    let mut cells: Vec<Cell> = Vec::with_capacity(7);
    cells.push(Cell::from(Span::styled(
        if compact {
            status_symbol(status).to_string()
        } else {
            format!("{} {}", status_symbol(status), status.as_str())
        },
        Style::new().fg(color),
    )));
    cells.push(Cell::from(Span::styled(
        text::truncate(&a.name, widths[1] as usize),
        Style::new().fg(t.text).add_modifier(Modifier::BOLD),
    )));
    let (healthy, total) = tracker.healthy_count(i);
    cells.push(Cell::from(Span::styled(
        format!("{healthy}/{total}"),
        Style::new().fg(color),
    )));
    if widths[3] > 0 {
        cells.push(Cell::from(release_cell(
            state.rollouts(i),
            now_ms,
            widths[3] as usize,
            t,
        )));
    }
    if widths[4] > 0 {
        let spark = LatencySparkline::new(state.app_samples(i), t);
        cells.push(Cell::from(spark.to_line(widths[4] as usize)));
    }
    if widths[5] > 0 {
        let (ok, total) = state.success_counts(i, now_ms);
        cells.push(Cell::from(Line::from(Span::styled(
            text::rate(ok, total),
            Style::new().fg(rate_color(t, ok, total)),
        ))));
    }
    if widths[6] > 0 {
        let cell = match state.last_error(i) {
            Some(e) => {
                let inst = a.instances.get(e.instance).map_or("?", |x| &x.name);
                let probe = a.probes.get(e.probe).map_or("?", |x| &x.name);
                // What a host said, made printable (and as wide as drawn).
                let what = if e.message.is_empty() {
                    e.error_kind.map_or("failed", |k| k.as_str()).into()
                } else {
                    crate::printable::printable(&e.message)
                };
                // An error that is no longer current says how old it is
                // first (never cut off), and is dimmed.
                let age = text::age(now_ms - e.at_ms);
                let (s, style) = if state.last_error_is_current(i) {
                    (
                        format!("{inst}/{probe}: {what} ({age} ago)"),
                        Style::new().fg(t.down),
                    )
                } else {
                    (
                        format!("{age} ago, passes now: {inst}/{probe}: {what}"),
                        Style::new().fg(t.dim),
                    )
                };
                Cell::from(Span::styled(text::truncate(&s, widths[6] as usize), style))
            }
            None => Cell::from(""),
        };
        cells.push(cell);
    }
    Row::new(cells)
}
