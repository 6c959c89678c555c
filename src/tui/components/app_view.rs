//! The app view: one row per (instance, probe) of one app, with the
//! probe's verdict, its own sparkline, its last latency and code, and its
//! last error, under a line on the rollout under way (or the last one);
//! below it the app's releases (the last known good one marked) and its
//! recent deployments, read from the history about once a second. Where
//! an engineer goes to see *which* instance is failing and why. `Esc`
//! goes back to the fleet.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};

use crate::health::ProbeLoc;
use crate::keys::Action;
use crate::model::{Outcome, Verdict};
use crate::state::{FleetState, ProbeHistory};
use crate::tui::columns::{Col, fit};
use crate::tui::load::AppRecords;
use crate::tui::rollout_text::rollout_line;
use crate::tui::sparkline::LatencySparkline;
use crate::tui::text;
use crate::tui::theme::Theme;
use crate::tui::view::View;

use super::fleet_view::{rate_color, status_symbol};
use super::{Component, DrawContext, Selection};

/// Symbol of a verdict: ● healthy, ✖ unhealthy, ○ unknown.
pub fn verdict_symbol(v: Verdict) -> char {
    match v {
        Verdict::Healthy => '●',
        Verdict::Unhealthy => '✖',
        Verdict::Unknown => '○',
    }
}

/// The table of one app (the one [`View::App`] names): its selected row,
/// and its records as last read.
#[derive(Debug, Default)]
pub struct AppView {
    selection: Selection,
    records: Option<AppRecords>,
}

impl AppView {
    /// The selected row.
    pub fn selected(&self) -> usize {
        self.selection.selected()
    }

    /// Starts over at the first row, for a newly opened app.
    pub fn reset(&mut self) {
        self.selection.reset();
        self.records = None;
    }

    /// Takes in the app's releases and deployments as read.
    pub fn set_records(&mut self, records: AppRecords) {
        self.records = Some(records);
    }

    /// The releases of `app` last read (for completion).
    pub fn known_releases<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.records
            .iter()
            .filter(move |r| r.app == app)
            .flat_map(|r| r.releases.iter().map(|x| x.version.as_str()))
    }

    /// Moves the selection among the rows of app `index`; returns whether
    /// `action` is a motion.
    pub fn apply(&mut self, action: Action, state: &FleetState, index: usize) -> bool {
        let rows = state
            .fleet()
            .apps
            .get(index)
            .map_or(0, |a| a.instances.len() * a.probes.len());
        self.selection.apply(action, rows)
    }

    /// Selects the row shown `shown` lines under the first one shown among
    /// the rows of app `index` (a click); returns whether there is one.
    pub(crate) fn select_shown(&mut self, shown: usize, state: &FleetState, index: usize) -> bool {
        let rows = state
            .fleet()
            .apps
            .get(index)
            .map_or(0, |a| a.instances.len() * a.probes.len());
        self.selection.select_shown(shown, rows)
    }
}

impl Component for AppView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        if let View::App(index) = cx.view {
            draw(self, frame, area, cx, index);
        }
    }
}

/// Draws the table of app `index` into `area`.
fn draw(view: &AppView, frame: &mut Frame, area: Rect, cx: &DrawContext, index: usize) {
    let (t, state) = (cx.theme, cx.state);
    let fleet = state.fleet();
    let Some(a) = fleet.apps.get(index) else {
        return;
    };
    let block = crate::tui::panel(title(a, index, cx), area, t);
    let mut inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }
    // The rollout under way (or the last one) on the first line.
    rollout_on_top(frame, &mut inner, a, index, cx);
    // Releases and recent deployments at the bottom, when there is room.
    if let Some(records) = view.records.as_ref().filter(|r| r.app == a.name) {
        records_at_bottom(frame, &mut inner, a, records, cx);
    }
    let np = a.probes.len();
    let n = a.instances.len() * np;
    if n == 0 {
        frame.render_widget(
            Paragraph::new("no instances or no probes").style(Style::new().fg(t.dim)),
            inner,
        );
        return;
    }

    // Below 90 columns the verdict is a colored symbol only.
    let compact = inner.width < 90;
    let probe_labels: Vec<String> = a
        .probes
        .iter()
        .map(|p| format!("{} ({})", p.name, p.kind.type_name()))
        .collect();
    let room = inner.width.saturating_sub(t.marker_width());
    let widths = column_widths(a, &probe_labels, room, compact);

    let visible = inner.height.saturating_sub(1) as usize;
    let (selected, offset) = view.selection.place(visible, n);

    let headings = [
        "INSTANCE",
        "RELEASE",
        "PROBE",
        if compact { "" } else { "VERDICT" },
        "LATENCY",
        "LAST",
        "LAST ERROR",
    ];

    let rows = (offset..n.min(offset + visible)).map(|r| {
        let loc = ProbeLoc {
            app: index,
            instance: r / np,
            probe: r % np,
        };
        let release = view
            .records
            .as_ref()
            .filter(|r| r.app == a.name)
            .and_then(|r| {
                let name = &a.instances[loc.instance].name;
                r.running.iter().find(|(i, _)| i == name)
            })
            .map(|(_, v)| v.as_str());
        probe_row(loc, release, &probe_labels, &widths, compact, cx)
    });

    super::draw_table(frame, inner, &headings, &widths, rows, selected - offset, t);
}

/// The line of `a`'s rollout under way (or its last one) at the top of
/// `inner`, which loses it, when there is room.
fn rollout_on_top(
    frame: &mut Frame,
    inner: &mut Rect,
    a: &crate::config::App,
    index: usize,
    cx: &DrawContext,
) {
    if inner.height > 2
        && let Some(line) = cx
            .state
            .rollouts(index)
            .and_then(|r| rollout_line(&a.name, r, cx.now_ms, cx.theme))
    {
        let top = Rect {
            height: 1,
            ..*inner
        };
        frame.render_widget(Paragraph::new(line), top);
        inner.y += 1;
        inner.height -= 1;
    }
}

/// `a`'s releases, recent deployments and what its receivers were told,
/// at the bottom of `inner` (a third of it at most), which loses them,
/// when it is at least 10 lines high.
fn records_at_bottom(
    frame: &mut Frame,
    inner: &mut Rect,
    a: &crate::config::App,
    records: &AppRecords,
    cx: &DrawContext,
) {
    if inner.height < 10 {
        return;
    }
    let mut lines = record_lines(records, inner.width as usize, cx);
    lines.push(told_line(a, records, inner.width as usize, cx));
    let h = (lines.len() as u16).min(inner.height / 3);
    let bottom = Rect {
        y: inner.y + inner.height - h,
        height: h,
        ..*inner
    };
    frame.render_widget(Paragraph::new(lines), bottom);
    inner.height -= h;
}

/// The panel's title: the app, its status, healthy instances, success rate.
fn title(a: &crate::config::App, index: usize, cx: &DrawContext) -> Line<'static> {
    let (t, state) = (cx.theme, cx.state);
    let tracker = state.tracker();
    let status = tracker.app_status(index);
    let (healthy, total) = tracker.healthy_count(index);
    let (ok, n_results) = state.success_counts(index, cx.now_ms);
    Line::from(vec![
        Span::styled(
            format!(" {} ", a.name),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!("{} {} ", status_symbol(status), status.as_str()),
            Style::new().fg(t.status(status)),
        ),
        Span::raw(format!("· {healthy}/{total} healthy · ")),
        Span::styled(
            format!("{} ok 5m ", text::rate(ok, n_results)),
            Style::new().fg(rate_color(t, ok, n_results)),
        ),
    ])
}

/// The widths of the columns at `width`, for an app whose probes are
/// labelled `probe_labels`.
fn column_widths(
    a: &crate::config::App,
    probe_labels: &[String],
    width: u16,
    compact: bool,
) -> Vec<u16> {
    let inst_w = a
        .instances
        .iter()
        .map(|i| text::width(&i.name))
        .max()
        .unwrap_or(0)
        .clamp(8, 20) as u16;
    let probe_w = probe_labels
        .iter()
        .map(|l| text::width(l))
        .max()
        .unwrap_or(0)
        .clamp(5, 24) as u16;
    // Below 96 columns the last error needs the room more than the
    // release each instance runs.
    let with_release = width >= 96;
    let mut cols = vec![Col::new(inst_w.min(8), inst_w, inst_w, 0)];
    if with_release {
        cols.push(Col::new(7, 10, 16, 4));
    }
    cols.extend([
        Col::new(probe_w.min(8), probe_w, probe_w, 0),
        Col::fixed(if compact { 1 } else { 11 }),
        Col::new(8, 16, 30, 2),
        Col::new(10, 10, 10, 1),
        Col::new(12, 48, u16::MAX, 3),
    ]);
    let mut widths = fit(width, 1, &cols);
    if !with_release {
        widths.insert(1, 0);
    }
    widths
}

/// The row of the probe at `loc`, its cells cut to `widths`.
fn probe_row(
    loc: ProbeLoc,
    release: Option<&str>,
    labels: &[String],
    widths: &[u16],
    compact: bool,
    cx: &DrawContext,
) -> Row<'static> {
    let (t, state, now_ms) = (cx.theme, cx.state, cx.now_ms);
    let tracker = state.tracker();
    let index = loc.app;
    let a = &state.fleet().apps[index];
    let inst = &a.instances[loc.instance];
    let history = state.probe(loc);
    let iv = tracker.instance_verdict(index, loc.instance);
    let mut cells: Vec<Cell> = Vec::with_capacity(6);
    cells.push(Cell::from(Span::styled(
        text::truncate(&inst.name, widths[0] as usize),
        Style::new().fg(t.verdict(iv)).add_modifier(Modifier::BOLD),
    )));
    if widths[1] > 0 {
        cells.push(Cell::from(match release {
            Some(v) => Span::styled(
                text::truncate(&crate::printable::printable(v), widths[1] as usize),
                Style::new().fg(t.text),
            ),
            None => Span::styled("—", Style::new().fg(t.dim)),
        }));
    }
    cells.push(Cell::from(Span::styled(
        text::truncate(&labels[loc.probe], widths[2] as usize),
        Style::new().fg(t.text),
    )));
    cells.push(verdict_cell(loc, compact, cx));
    if widths[4] > 0 {
        let spark = LatencySparkline::new(history.samples(), t);
        cells.push(Cell::from(spark.to_line(widths[4] as usize)));
    }
    if widths[5] > 0 {
        cells.push(last_cell(history, t));
    }
    if widths[6] > 0 {
        cells.push(last_error_cell(history, widths[6] as usize, now_ms, t));
    }
    Row::new(cells)
}

/// The probe's verdict at `loc` (a symbol only when `compact`; "grace"
/// while its instance is in its grace).
fn verdict_cell(loc: ProbeLoc, compact: bool, cx: &DrawContext) -> Cell<'static> {
    let tracker = cx.state.tracker();
    let pv = tracker.probe_verdict(loc);
    let mut verdict = if compact {
        verdict_symbol(pv).to_string()
    } else {
        format!("{} {}", verdict_symbol(pv), pv.as_str())
    };
    if !compact && tracker.in_grace(loc.app, loc.instance, cx.now_ms) {
        verdict = format!("{} grace", verdict_symbol(pv));
    }
    Cell::from(Span::styled(verdict, Style::new().fg(cx.theme.verdict(pv))))
}

/// The last result's latency and code.
fn last_cell(history: &ProbeHistory, t: &Theme) -> Cell<'static> {
    let s = match history.last() {
        Some(l) => {
            let code = l.code.map(|c| format!(" {c}")).unwrap_or_default();
            let style = Style::new().fg(if l.ok { t.text } else { t.down });
            Span::styled(format!("{}{code}", text::latency(l.latency_ms)), style)
        }
        None => Span::styled("—", Style::new().fg(t.dim)),
    };
    Cell::from(s)
}

/// The last failure, how long ago, and whether it still fails, cut to
/// `width`.
fn last_error_cell(history: &ProbeHistory, width: usize, now_ms: i64, t: &Theme) -> Cell<'static> {
    match history.last_failure() {
        Some(e) => {
            let kind = e.error_kind.map_or("failed", |k| k.as_str());
            let ago = text::age(now_ms - e.at_ms);
            // What a host said, made printable (and as wide as drawn).
            let what = if e.message.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {}", crate::printable::printable(&e.message))
            };
            // One that is no longer current says how old it is first.
            let current = history.last().is_some_and(|l| !l.ok);
            let s = if current {
                format!("{what} ({ago} ago)")
            } else {
                format!("{ago} ago, passes now: {what}")
            };
            let style = Style::new().fg(if current { t.down } else { t.dim });
            Cell::from(Span::styled(text::truncate(&s, width), style))
        }
        None => Cell::from(""),
    }
}

/// The releases line and one line per recent deployment.
fn record_lines(r: &AppRecords, width: usize, cx: &DrawContext) -> Vec<Line<'static>> {
    use crate::printable::printable;
    let t = cx.theme;
    let dim = Style::new().fg(t.dim);
    let mut spans = vec![Span::styled("releases: ", dim)];
    for (i, rel) in r.releases.iter().take(8).enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        let good = r.last_good.as_deref() == Some(rel.version.as_str());
        spans.push(Span::styled(
            printable(&rel.version).into_owned(),
            Style::new().fg(t.text).add_modifier(if good {
                Modifier::BOLD
            } else {
                Modifier::empty()
            }),
        ));
        if good {
            spans.push(Span::styled(" ✔ last good", Style::new().fg(t.healthy)));
        }
    }
    if r.releases.is_empty() {
        spans.push(Span::styled("none recorded yet", dim));
    }
    let mut lines = vec![Line::from(spans)];
    for d in r.deployments.iter().take(4) {
        let (style, symbol) = super::history_view::outcome_style(d, t);
        let kind = if super::is_rollback(d) {
            "rollback"
        } else {
            "deploy"
        };
        let change = match &d.from_version {
            Some(f) => format!("{f} → {}", d.to_version),
            None => format!("→ {}", d.to_version),
        };
        let outcome = d.outcome.map_or_else(|| d.state.words(), Outcome::words);
        let text = format!(
            "#{} {kind} {change} · {} ago by {}{}",
            d.id,
            text::age(cx.now_ms.saturating_sub(d.started_at_ms)),
            d.actor,
            d.reason
                .as_deref()
                .map(|r| format!(" · {r}"))
                .unwrap_or_default()
        );
        lines.push(Line::from(vec![
            Span::styled(format!("{symbol} {outcome:<11} "), style),
            Span::styled(
                text::truncate(&printable(&text), width.saturating_sub(14)),
                dim,
            ),
        ]));
    }
    lines
}

/// What each of the app's receivers was last told and how it went:
/// `told: oncall ✓ rollback_finished 2m ago · pager ✖ HTTP 500 (3 tries)`.
/// A receiver with nothing sent yet about the app says so.
fn told_line(
    a: &crate::config::App,
    r: &AppRecords,
    width: usize,
    cx: &DrawContext,
) -> Line<'static> {
    use crate::printable::printable;
    use crate::store::NotificationState as S;
    let t = cx.theme;
    let dim = Style::new().fg(t.dim);
    let mut spans = vec![Span::styled("told: ", dim)];
    if a.notify.is_empty() {
        spans.push(Span::styled(
            "no [[notify]] receiver hears of this app",
            dim,
        ));
        return Line::from(spans);
    }
    let mut used = 6;
    for (i, rc) in a.notify.iter().enumerate() {
        let told = r.told.iter().find(|n| n.receiver == rc.name);
        let (mark, style, what) = match told {
            None if !rc.kind.outbox() => ("~", dim, "a live stream".to_string()),
            None => ("·", dim, "nothing yet".to_string()),
            Some(n) => {
                let age = |ms: i64| text::age(cx.now_ms.saturating_sub(ms));
                match n.state {
                    S::Sent => (
                        "✓",
                        Style::new().fg(t.healthy),
                        format!("{} {} ago", n.topic, age(n.sent_ms.unwrap_or(n.created_ms))),
                    ),
                    S::Pending | S::Sending => (
                        "…",
                        Style::new().fg(t.degraded),
                        match &n.last_error {
                            Some(e) => {
                                format!("{} retrying after {}: {e}", n.topic, tries(n.attempts))
                            }
                            None => format!("{} sending", n.topic),
                        },
                    ),
                    S::Failed => (
                        "✖",
                        Style::new().fg(t.down),
                        format!(
                            "{} failed after {}: {}",
                            n.topic,
                            tries(n.attempts),
                            n.last_error.as_deref().unwrap_or("no answer")
                        ),
                    ),
                }
            }
        };
        let part = format!("{} {mark} {}", rc.name, printable(&what));
        let sep = if i > 0 { 3 } else { 0 };
        let room = width.saturating_sub(used + sep);
        if room < 8 {
            break;
        }
        if i > 0 {
            spans.push(Span::styled(" · ", dim));
        }
        let part = text::truncate(&part, room);
        used += sep + text::width(&part);
        spans.push(Span::styled(part, style));
    }
    Line::from(spans)
}

fn tries(n: u32) -> String {
    if n == 1 {
        "1 try".to_string()
    } else {
        format!("{n} tries")
    }
}
