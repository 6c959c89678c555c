//! The History view: every app's deployments and rollbacks by hand,
//! newest first, with who started each, why, how it ended and how long it
//! took. A rollback by hand reads as a rollback, not a deploy. Enter opens
//! one (its timeline and "why" card); `b` rolls its app back to the
//! release it deployed. The rows come from the history through
//! [`Load::History`](crate::tui::load::Load), about once a second while
//! the view is open. Above them, when there is room, each app's
//! availability over the last 24 hours, a cell per hour
//! ([`Load::Availability`](crate::tui::load::Load), once a minute).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};

use crate::clock::day_time;
use crate::keys::Action;
use crate::model::{DeploymentKind, DeploymentState, Outcome};
use crate::printable::printable;
use crate::report::HourBucket;
use crate::store::Deployment;
use crate::tui::columns::{Col, fit};
use crate::tui::load::HISTORY_ROWS;
use crate::tui::text;
use crate::tui::theme::Theme;

use super::{Component, DrawContext, Selection};

/// The History view's rows and selection.
#[derive(Debug, Default)]
pub struct HistoryView {
    rows: Vec<Deployment>,
    loaded: bool,
    /// Opened again since the rows were read: they are not shown (they
    /// may be stale) until the read that the opening asked for arrives.
    reading: bool,
    error: Option<String>,
    selection: Selection,
    /// Each app's hourly availability, oldest hour first, and when it was
    /// read.
    availability: Option<(i64, Vec<AppHours>)>,
}

/// An app and its hours, oldest first.
pub type AppHours = (String, Vec<HourBucket>);

/// How often the chart is read again.
const CHART_EVERY_MS: i64 = 60_000;
/// How soon a chart that could not be read is tried again.
const CHART_RETRY_MS: i64 = 5_000;

/// Lines drawn above the table in a panel whose inside is `height` lines
/// high: the error line, when there is one, and the chart of `apps` apps
/// (its title and a line per app) when it leaves the table eight lines.
/// What `draw` does, and what a click goes by.
pub fn lines_above(error: bool, apps: usize, height: u16) -> u16 {
    let error = u16::from(error);
    let chart = u16::try_from(apps).map_or(u16::MAX, |a| a.saturating_add(1));
    if apps > 0 && height.saturating_sub(error) >= chart.saturating_add(8) {
        error + chart
    } else {
        error
    }
}

impl HistoryView {
    /// The view is shown again: until its rows are read anew, it says it
    /// is reading rather than show rows that may be stale.
    pub fn reopen(&mut self) {
        self.reading = true;
    }

    /// Whether the chart should be read again (after the rows: those come
    /// first).
    pub fn availability_due(&self, now_ms: i64) -> bool {
        self.loaded
            && !self.reading
            && self
                .availability
                .as_ref()
                .is_none_or(|(at, _)| now_ms.saturating_sub(*at) >= CHART_EVERY_MS)
    }

    /// Takes in the chart read at `at_ms`; one that could not be read
    /// keeps the chart shown (if any) and is tried again after
    /// `CHART_RETRY_MS`, not a whole `CHART_EVERY_MS` later.
    pub fn set_availability(&mut self, at_ms: i64, apps: Result<Vec<AppHours>, String>) {
        match apps {
            Ok(apps) => self.availability = Some((at_ms, apps)),
            Err(_) => {
                let again = at_ms - CHART_EVERY_MS + CHART_RETRY_MS;
                let shown = self.availability.take().map(|(_, a)| a).unwrap_or_default();
                self.availability = Some((again, shown));
            }
        }
    }

    /// Whether the error line shows, and the apps the chart has: what
    /// [`lines_above`] goes by.
    pub fn above(&self) -> (bool, usize) {
        (
            self.error.is_some(),
            self.availability.as_ref().map_or(0, |(_, a)| a.len()),
        )
    }

    /// Takes in the rows read (newest first), keeping the same deployment
    /// selected when it is still listed.
    pub fn set_rows(&mut self, rows: Vec<Deployment>) {
        let keep = self.selected_deployment().map(|d| d.id);
        self.rows = rows;
        self.loaded = true;
        self.reading = false;
        self.error = None;
        if let Some(at) = keep.and_then(|id| self.rows.iter().position(|d| d.id == id)) {
            self.selection.select(at);
        }
    }

    /// Says why the rows could not be read (the last rows stay).
    pub fn set_error(&mut self, why: String) {
        self.error = Some(why);
        self.reading = false;
    }

    /// The deployment on the selected row.
    pub fn selected_deployment(&self) -> Option<&Deployment> {
        self.rows.get(
            self.selection
                .selected()
                .min(self.rows.len().saturating_sub(1)),
        )
    }

    /// The selected row.
    pub fn selected(&self) -> usize {
        self.selection.selected()
    }

    /// Selects the `shown`-th row on screen (a click); whether there is one.
    pub fn select_shown(&mut self, shown: usize) -> bool {
        self.selection.select_shown(shown, self.rows.len())
    }

    /// Moves the selection; whether `action` is a motion.
    pub fn apply(&mut self, action: Action) -> bool {
        self.selection.apply(action, self.rows.len())
    }
}

/// Whether `d` is a rollback by hand.
pub fn is_rollback(d: &Deployment) -> bool {
    d.kind() == DeploymentKind::Rollback
}

/// The colour of an outcome or a state, and its symbol (so it reads
/// without colour too).
pub fn outcome_style(d: &Deployment, t: &Theme) -> (Style, &'static str) {
    match d.outcome {
        Some(Outcome::Deployed) => (Style::new().fg(t.healthy), "✔"),
        Some(Outcome::RolledBack | Outcome::Aborted) => (Style::new().fg(t.degraded), "↩"),
        Some(_) => (Style::new().fg(t.down).add_modifier(Modifier::BOLD), "✖"),
        None => match d.state {
            DeploymentState::RollbackArmed => {
                (Style::new().fg(t.down).add_modifier(Modifier::BOLD), "⚠")
            }
            DeploymentState::RollbackHeld => (
                Style::new().fg(t.degraded).add_modifier(Modifier::BOLD),
                "⏸",
            ),
            DeploymentState::Failing | DeploymentState::RollingBack => {
                (Style::new().fg(t.degraded), "↺")
            }
            _ => (Style::new().fg(t.rollout), "▶"),
        },
    }
}

impl Component for HistoryView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let title = Line::from(vec![
            Span::styled(" History ", Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(
                match self.rows.len() {
                    _ if self.reading || !self.loaded => "· reading… ".to_string(),
                    1 => "· 1 deployment ".to_string(),
                    n if n >= HISTORY_ROWS => format!("· the newest {n} deployments "),
                    n => format!("· {n} deployments "),
                },
                Style::new().fg(t.dim),
            ),
        ]);
        let block = crate::tui::panel(title, area, t);
        let mut inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.is_empty() {
            return;
        }
        let (error, apps) = self.above();
        let chart = lines_above(error, apps, inner.height) - u16::from(error);
        if let Some(why) = &self.error {
            let top = Rect { height: 1, ..inner };
            frame.render_widget(
                Paragraph::new(format!("✖ cannot read the history: {}", printable(why)))
                    .style(Style::new().fg(t.down)),
                top,
            );
            inner.y += 1;
            inner.height = inner.height.saturating_sub(1);
        }
        if chart > 0
            && let Some((_, availability)) = &self.availability
        {
            let top = Rect {
                height: chart,
                ..inner
            };
            frame.render_widget(Paragraph::new(chart_lines(availability, cx)), top);
            inner.y += chart;
            inner.height -= chart;
        }
        if self.rows.is_empty() || self.reading {
            let words = if self.loaded && !self.reading {
                "no deployments yet: `:deploy APP VERSION` starts one"
            } else {
                "reading the history…"
            };
            frame.render_widget(Paragraph::new(words).style(Style::new().fg(t.dim)), inner);
            return;
        }
        let widths = fit(
            inner.width,
            1,
            &[
                Col::fixed(5),
                Col::new(6, 8, 20, 0),
                Col::fixed(8),
                Col::new(10, 14, 34, 0),
                Col::new(16, 18, 20, 0),
                Col::new(10, 10, 10, 6),
                Col::new(14, 14, 14, 3),
                Col::new(6, 8, 8, 2),
                Col::new(8, 12, 20, 5),
                Col::new(10, 30, u16::MAX, 4),
            ],
        );
        let visible = inner.height.saturating_sub(1) as usize;
        let n = self.rows.len();
        let (selected, offset) = self.selection.place(visible, n);
        let rows = self.rows[offset..n.min(offset + visible)]
            .iter()
            .map(|d| row(d, &widths, cx));
        super::draw_table(
            frame,
            inner,
            &[
                "ID", "APP", "KIND", "CHANGE", "OUTCOME", "STRATEGY", "STARTED", "TOOK", "ACTOR",
                "REASON",
            ],
            &widths,
            rows,
            selected - offset,
            t,
        );
    }
}

fn row<'a>(d: &Deployment, w: &[u16], cx: &DrawContext) -> Row<'a> {
    let t = cx.theme;
    let cut = |s: &str, i: usize| text::truncate(&printable(s), w[i] as usize);
    let (style, symbol) = outcome_style(d, t);
    let outcome = d.outcome.map_or_else(|| d.state.words(), Outcome::words);
    let kind = if is_rollback(d) { "rollback" } else { "deploy" };
    let change = match &d.from_version {
        Some(f) => format!("{f} → {}", d.to_version),
        None => format!("→ {}", d.to_version),
    };
    let took = match d.ended_at_ms {
        Some(end) => text::age(end.saturating_sub(d.started_at_ms)),
        None => format!("{}…", text::age(cx.now_ms.saturating_sub(d.started_at_ms))),
    };
    let dim = Style::new().fg(t.dim);
    let cells = vec![
        Cell::from(Span::styled(d.id.to_string(), dim)),
        Cell::from(Span::styled(
            cut(&d.app, 1),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Cell::from(if kind == "rollback" {
            Span::styled(kind, Style::new().fg(t.degraded))
        } else {
            Span::raw(kind)
        }),
        Cell::from(cut(&change, 3)),
        Cell::from(Span::styled(cut(&format!("{symbol} {outcome}"), 4), style)),
        Cell::from(cut(d.strategy.as_str(), 5)),
        Cell::from(Span::styled(day_time(d.started_at_ms), dim)),
        Cell::from(took),
        Cell::from(cut(&d.actor, 8)),
        Cell::from(Span::styled(cut(d.reason.as_deref().unwrap_or(""), 9), dim)),
    ];
    Row::new(
        cells
            .into_iter()
            .zip(w)
            .filter(|(_, w)| **w > 0)
            .map(|(c, _)| c),
    )
}

/// The chart: a title, then per app its name, a cell per hour (oldest at
/// the left; its height and colour say the hour's availability, `·` an
/// hour without results) and the availability over the whole window.
fn chart_lines(apps: &[AppHours], cx: &DrawContext) -> Vec<Line<'static>> {
    let t = cx.theme;
    let dim = Style::new().fg(t.dim);
    let name_w = apps
        .iter()
        .map(|(a, _)| text::width(&printable(a)))
        .max()
        .unwrap_or(0)
        .clamp(4, 16);
    let mut lines = vec![Line::from(Span::styled(
        "availability, last 24 h to now: █ ≥99.9%  ▆ ≥99%  ▄ ≥95%  ▂ less  · no results",
        dim,
    ))];
    for (app, hours) in apps {
        let mut spans = vec![Span::styled(
            format!("{} ", text::pad(&printable(app), name_w)),
            Style::new().add_modifier(Modifier::BOLD),
        )];
        for h in hours {
            let (cell, style) = match h.availability() {
                None => ("·", dim),
                Some(a) => level(a, t),
            };
            spans.push(Span::styled(cell, style));
        }
        let (ok, total) = hours
            .iter()
            .fold((0u64, 0u64), |(o, n), h| (o + h.ok, n + h.total));
        let whole = if total == 0 {
            Span::styled("  no results", dim)
        } else {
            let a = ok as f64 / total as f64;
            Span::styled(format!(" {:>6.2}%", floor_2(a * 100.0)), level(a, t).1)
        };
        spans.push(whole);
        lines.push(Line::from(spans));
    }
    lines
}

/// The cell and colour of availability `a` (0 to 1).
fn level(a: f64, t: &Theme) -> (&'static str, Style) {
    if a >= 0.999 {
        ("█", Style::new().fg(t.healthy))
    } else if a >= 0.99 {
        ("▆", Style::new().fg(t.degraded))
    } else if a >= 0.95 {
        ("▄", Style::new().fg(t.degraded))
    } else {
        ("▂", Style::new().fg(t.down))
    }
}

/// `x` cut (not rounded) to two decimals, so 99.996% never reads 100.00%.
fn floor_2(x: f64) -> f64 {
    (x * 100.0).floor() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_shows_only_where_it_leaves_the_table_room() {
        assert_eq!(lines_above(false, 3, 12), 4);
        assert_eq!(lines_above(false, 3, 11), 0);
        assert_eq!(lines_above(true, 3, 13), 5);
        assert_eq!(lines_above(true, 3, 12), 1);
        assert_eq!(lines_above(false, 0, 40), 0);
    }

    #[test]
    fn availability_is_cut_not_rounded_up() {
        assert_eq!(floor_2(99.996), 99.99);
        assert_eq!(floor_2(100.0), 100.0);
    }
}
