//! The fleet view: one row per app, with its status, healthy instances,
//! the release it runs or the rollout under way, a latency sparkline of
//! recent probes, the success rate over the last five minutes and the last
//! error. The first screen an on-call engineer
//! sees; `Enter` opens an app.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use crate::model::AppStatus;

use super::app::App;
use super::columns::{Col, fit, scroll_offset};
use super::rollout_text::release_cell;
use super::sparkline::LatencySparkline;
use super::state::FleetState;
use super::text;
use super::theme::Theme;

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

/// Draws the fleet table into `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App, state: &FleetState) {
    let t = &app.theme;
    let fleet = state.fleet();
    let tracker = state.tracker();
    let n = fleet.apps.len();
    let block = super::panel(Line::from(format!(" fleet · {n} apps ")), area, t);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.is_empty() {
        return;
    }
    if n == 0 {
        let msg = format!("no apps in {}", fleet.source.display());
        frame.render_widget(Paragraph::new(msg).style(Style::new().fg(t.dim)), inner);
        return;
    }

    let compact = inner.width < 44;
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
    let widths = fit(
        inner.width,
        1,
        &[
            Col::fixed(if compact { 1 } else { 10 }),
            Col::new(name_w.min(8), name_w, name_w, 0),
            Col::fixed(inst_w),
            Col::new(10, 20, 24, 2),
            Col::new(8, 16, 30, 2),
            Col::new(6, 6, 6, 1),
            Col::new(12, 48, u16::MAX, 3),
        ],
    );

    let visible = inner.height.saturating_sub(1) as usize;
    let selected = app.selected_app().min(n - 1);
    let offset = scroll_offset(app.fleet_offset.get(), selected, visible, n);
    app.fleet_offset.set(offset);
    app.page.set(visible.max(1));

    let header = Row::new(
        [
            if compact { "" } else { "STATUS" },
            "APP",
            "INST",
            "RELEASE",
            "LATENCY",
            "OK 5M",
            "LAST ERROR",
        ]
        .into_iter()
        .zip(&widths)
        .filter(|(_, w)| **w > 0)
        .map(|(h, _)| Cell::from(h)),
    )
    .style(Style::new().fg(t.dim).add_modifier(Modifier::BOLD));

    let rows = (offset..n.min(offset + visible)).map(|i| {
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
                app.now_ms,
                widths[3] as usize,
                t,
            )));
        }
        if widths[4] > 0 {
            let spark = LatencySparkline::new(state.app_samples(i), t);
            cells.push(Cell::from(spark.to_line(widths[4] as usize)));
        }
        if widths[5] > 0 {
            let (ok, total) = state.success_counts(i, app.now_ms);
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
                    let what = if e.message.is_empty() {
                        e.error_kind.map_or("failed", |k| k.as_str())
                    } else {
                        &e.message
                    };
                    let s = format!(
                        "{inst}/{probe}: {what} ({} ago)",
                        text::age(app.now_ms - e.at_ms)
                    );
                    let style = if state.last_error_is_current(i) {
                        Style::new().fg(t.down)
                    } else {
                        Style::new().fg(t.dim)
                    };
                    Cell::from(Span::styled(text::truncate(&s, widths[6] as usize), style))
                }
                None => Cell::from(""),
            };
            cells.push(cell);
        }
        Row::new(cells)
    });

    let table = Table::new(
        rows,
        widths
            .iter()
            .filter(|w| **w > 0)
            .map(|w| Constraint::Length(*w)),
    )
    .header(header)
    .column_spacing(1)
    .row_highlight_style(Style::new().bg(t.selection));
    let mut ts = TableState::new().with_selected(Some(selected - offset));
    frame.render_stateful_widget(table, inner, &mut ts);
}
