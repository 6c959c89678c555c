//! One deployment, as it runs or as it ended: the Rollout view of an app's
//! rollout in flight (`R`), and what History opens. From its report
//! ([`DeploymentReport`], read about once a second while shown):
//!
//! - a summary: the change, strategy, state, who started it and why, how
//!   long it has run; an armed rollback's countdown and a pause's;
//! - a gauge per batch or canary step, with its instances and traffic;
//! - each instance's state (waiting, starting, verifying,
//!   healthy, failed, restored) and the gate's failure budget;
//! - the "why" card when it rolled back or failed: the probe that failed,
//!   its thresholds, what was measured, the last samples, and the incident
//!   it belongs to;
//! - the timeline: every event with its actor and reason (↑ ↓ scroll it).
//!
//! Everything from the history is made printable before it is drawn.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::audit::{reason_suffix, what};
use crate::clock::clock_time;
use crate::keys::{Action, Modes};
use crate::model::event::EventKind;
use crate::model::evidence::{Evidence, GateOutcome};
use crate::model::{BatchState, ChangeAction, ChangeState, DeploymentState, Outcome};
use crate::printable::printable;
use crate::rollout::plan::Stage;
use crate::rollout::report::{BatchReport, DeploymentReport, RollbackReport};
use crate::store::{Event, Incident};
use crate::tui::control::Verb;
use crate::tui::load::ReportOf;
use crate::tui::rollout_text::secs_until;
use crate::tui::text;
use crate::tui::theme::Theme;

use super::{Component, DrawContext, Tail};

/// How many of the failing probe's last samples the "why" card lists; on
/// a terminal shorter than [`TALL`] rows, [`WHY_SAMPLES_SHORT`], so that
/// the timeline keeps some rows.
const WHY_SAMPLES: usize = 5;
const WHY_SAMPLES_SHORT: usize = 2;
/// The inner height from which the view is not short.
const TALL: u16 = 30;
/// The rows the timeline keeps in one column (when the view has them).
const TIMELINE_ROWS: u16 = 3;

/// The deployment shown, as last read, and the timeline's scroll.
#[derive(Debug, Default)]
pub struct DeploymentView {
    /// Which deployment it shows: one, or an app's newest.
    of: Option<ReportOf>,
    /// Its report, once read since it was opened.
    report: Option<Box<DeploymentReport>>,
    incident: Option<Incident>,
    missing: bool,
    error: Option<String>,
    /// Where the timeline is scrolled to.
    timeline: Tail,
}

impl DeploymentView {
    /// Starts showing `of`: until its first read arrives, nothing of an
    /// earlier deployment shows (the view says it is reading).
    pub fn show(&mut self, of: ReportOf) {
        if self.of.as_ref() != Some(&of) {
            *self = DeploymentView {
                of: Some(of),
                ..DeploymentView::default()
            };
        }
    }

    /// Which deployment it shows.
    pub fn of(&self) -> Option<&ReportOf> {
        self.of.as_ref()
    }

    /// Its report, once read.
    pub fn report(&self) -> Option<&DeploymentReport> {
        self.report.as_deref()
    }

    /// Takes in what was read for `of` (ignored if another is shown by
    /// now). Following an app's newest deployment, a newer one replaces
    /// the one shown, its timeline scrolled to the end.
    pub fn set(
        &mut self,
        of: ReportOf,
        report: Option<Box<DeploymentReport>>,
        incident: Option<Incident>,
    ) {
        if self.of.as_ref() != Some(&of) {
            return;
        }
        if let (Some(old), Some(new)) = (&self.report, &report)
            && old.deployment.id != new.deployment.id
        {
            self.timeline = Tail::default();
        }
        self.missing = report.is_none();
        self.report = report;
        self.incident = incident;
        self.error = None;
    }

    /// Says why it could not be read (what was read stays).
    pub fn set_error(&mut self, why: String) {
        self.error = Some(why);
    }

    /// Scrolls the timeline; whether `action` is a motion.
    pub fn apply(&mut self, action: Action) -> bool {
        let n = self.report.as_ref().map_or(0, |r| r.events.len());
        self.timeline.apply(action, n)
    }
}

impl Component for DeploymentView {
    fn draw(&self, frame: &mut Frame, area: Rect, cx: &DrawContext) {
        let t = cx.theme;
        let Some(r) = self.report.as_deref() else {
            let what = match &self.of {
                Some(ReportOf::Id(id)) => format!("deployment {id}"),
                Some(ReportOf::NewestOf(app)) => {
                    format!("the newest deployment of {}", printable(app))
                }
                None => "the deployment".into(),
            };
            let words = match (&self.of, self.missing, &self.error) {
                (Some(ReportOf::NewestOf(app)), true, _) => format!(
                    "no deployment of {0} yet: `:deploy {0} VERSION` starts one",
                    printable(app)
                ),
                (_, true, _) => format!("there is no {what}"),
                (_, false, Some(e)) => format!("✖ cannot read {what}: {}", printable(e)),
                (_, false, None) => format!("reading {what}…"),
            };
            let block = crate::tui::panel(Line::from(" Deployment "), area, t);
            frame.render_widget(
                Paragraph::new(words)
                    .style(Style::new().fg(t.dim))
                    .block(block),
                area,
            );
            return;
        };
        let block = crate::tui::panel(title(r, t), area, t);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.is_empty() {
            return;
        }
        let why = r.rollback.as_ref().map(|rb| {
            let samples = if inner.height < TALL {
                WHY_SAMPLES_SHORT
            } else {
                WHY_SAMPLES
            };
            why_lines(rb, self.incident.as_ref(), samples, t)
        });
        let mut left = summary_lines(r, cx);
        if inner.width >= 120 {
            left.push(Line::default());
            left.extend(stage_lines(r, inner.width, cx));
            left.push(Line::default());
            left.extend(instance_lines(r, t));
            if let Some(w) = why {
                left.push(Line::default());
                left.extend(w);
            }
            let [l, right] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .areas(inner);
            frame.render_widget(Paragraph::new(left).wrap(Wrap { trim: false }), l);
            self.draw_timeline(frame, right, r, t);
            return;
        }
        // One column: what matters most first (the summary, then why it
        // rolled back, then the stages and instances), each line cut to
        // the width; the timeline gets what is left, at least
        // [`TIMELINE_ROWS`] rows when the view has twice that.
        let has_why = why.is_some();
        // A short terminal spends no rows on blank lines between parts.
        let gap = inner.height >= TALL;
        if let Some(w) = why {
            if gap {
                left.push(Line::default());
            }
            left.extend(w);
        }
        if gap {
            left.push(Line::default());
        }
        left.extend(stage_lines(r, inner.width, cx));
        left.extend(instance_lines(r, t));
        let width = inner.width as usize;
        let left: Vec<Line> = left.into_iter().map(|l| fit(l, width)).collect();
        let keep_for_timeline = if has_why { TIMELINE_ROWS } else { 4 };
        let top_h = (left.len() as u16).min(inner.height.saturating_sub(keep_for_timeline));
        let [top, bottom] =
            Layout::vertical([Constraint::Length(top_h), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(left), top);
        self.draw_timeline(frame, bottom, r, t);
    }
}

/// `line` cut to `width` columns, the last one kept shown as `…`.
fn fit(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut used = 0;
    let mut spans = Vec::new();
    for span in line.spans {
        let w = span.width();
        if used + w < width {
            used += w;
            spans.push(span);
            continue;
        }
        let room = width - used;
        spans.push(Span::styled(
            text::truncate(&span.content, room),
            span.style,
        ));
        break;
    }
    Line::from(spans)
}

impl DeploymentView {
    /// The timeline, newest at the bottom, where it is scrolled to.
    fn draw_timeline(&self, frame: &mut Frame, area: Rect, r: &DeploymentReport, t: &Theme) {
        if area.height < 2 {
            return;
        }
        let block = Block::new()
            .title(Span::styled(
                format!(" timeline · {} events ", r.events.len()),
                Style::new().fg(t.dim),
            ))
            .borders(ratatui::widgets::Borders::TOP)
            .border_style(Style::new().fg(t.border));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let shown = self.timeline.window(r.events.len(), inner.height as usize);
        let lines: Vec<Line> = r.events[shown]
            .iter()
            .map(|e| timeline_line(e, inner.width as usize, t))
            .collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

fn title(r: &DeploymentReport, t: &Theme) -> Line<'static> {
    let kind = r.kind().as_str();
    let r = &r.deployment;
    let change = match &r.from_version {
        Some(f) => format!("{} → {}", printable(f), printable(&r.to_version)),
        None => format!("→ {}", printable(&r.to_version)),
    };
    Line::from(vec![
        Span::styled(
            format!(" {kind} {} · {} ", r.id, printable(&r.app)),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("{change} "), Style::new().fg(t.rollout)),
    ])
}

/// The words and colour of where a deployment is.
fn state_span(r: &DeploymentReport, t: &Theme) -> Span<'static> {
    let r = &r.deployment;
    let (word, style) = match r.outcome {
        Some(Outcome::Deployed) => ("✔ deployed".to_string(), Style::new().fg(t.healthy)),
        Some(Outcome::Aborted) => ("↩ aborted".to_string(), Style::new().fg(t.degraded)),
        Some(Outcome::RolledBack) => ("↩ rolled back".to_string(), Style::new().fg(t.degraded)),
        Some(o) => (
            format!("✖ {}", o.words()),
            Style::new().fg(t.down).add_modifier(Modifier::BOLD),
        ),
        None if r.state == DeploymentState::RollbackArmed => (
            "⚠ rollback armed".to_string(),
            Style::new().fg(t.down).add_modifier(Modifier::BOLD),
        ),
        None if r.state == DeploymentState::RollbackHeld => (
            "⏸ rollback held".to_string(),
            Style::new().fg(t.degraded).add_modifier(Modifier::BOLD),
        ),
        None => (
            format!("▶ {}", r.state.words()),
            Style::new().fg(t.rollout).add_modifier(Modifier::BOLD),
        ),
    };
    Span::styled(word, style)
}

fn summary_lines(r: &DeploymentReport, cx: &DrawContext) -> Vec<Line<'static>> {
    let t = cx.theme;
    let dim = Style::new().fg(t.dim);
    let d = &r.deployment;
    let took = match r.duration_ms() {
        Some(ms) => format!("took {}", text::age(ms)),
        None => format!(
            "running for {}",
            text::age(cx.now_ms.saturating_sub(d.started_at_ms))
        ),
    };
    let mut lines = vec![Line::from(vec![
        state_span(r, t),
        Span::styled(
            format!(
                " · {} · started {} by {} · {took}",
                d.strategy,
                clock_time(d.started_at_ms),
                printable(&d.actor)
            ),
            dim,
        ),
    ])];
    if let Some(reason) = d.reason.as_deref().filter(|s| !s.is_empty()) {
        lines.push(Line::from(Span::styled(
            format!("reason: {}", printable(reason)),
            Style::new().fg(t.text),
        )));
    }
    if d.outcome.is_none() {
        lines.extend(countdown(r, cx).or_else(|| gate_deadline(r, cx)));
        if let Some(split) = traffic_split(r) {
            lines.push(Line::from(vec![
                Span::styled("traffic: ", dim),
                Span::styled(printable(&split).into_owned(), Style::new().fg(t.text)),
            ]));
        }
    }
    lines
}

/// How long the running stage has left: the monitoring time of a monitor
/// stage; for a stage that starts instances (replace, start beside the
/// old), the gate's `health.deadline` counted from the newest change of its
/// instances (the gate starts once they are started, so this is a little
/// early, never late). Other stages have no deadline of their own.
fn gate_deadline(r: &DeploymentReport, cx: &DrawContext) -> Option<Line<'static>> {
    let app = cx
        .state
        .fleet()
        .apps
        .iter()
        .find(|a| a.name == r.deployment.app)?;
    let b = r.batches.iter().find(|b| b.state == BatchState::Running)?;
    let started = b.started_at_ms?;
    let style = Style::new().fg(cx.theme.rollout);
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if b.stage == Some(Stage::Monitor) {
        let left = started
            .saturating_add(ms(app.health.monitor))
            .saturating_sub(cx.now_ms);
        return Some(Line::from(Span::styled(
            format!("⏱ monitoring: ends in {}", text::age(left.max(0))),
            style,
        )));
    }
    if !matches!(
        b.stage,
        Some(Stage::Replace { .. } | Stage::StartIdle { .. })
    ) {
        return None;
    }
    let passed = r
        .events
        .iter()
        .any(|e| e.at_ms >= started && e.kind == "gate_passed");
    if passed {
        return None;
    }
    let from = r
        .changes
        .iter()
        .filter(|c| b.instances.contains(&c.instance) && c.at_ms >= started)
        .map(|c| c.at_ms)
        .max()
        .unwrap_or(started);
    let left = from
        .saturating_add(ms(app.health.deadline))
        .saturating_sub(cx.now_ms);
    Some(Line::from(Span::styled(
        format!(
            "⏱ stage {}: healthy within {} or its gate fails",
            b.index.saturating_add(1),
            text::age(left.max(0))
        ),
        style,
    )))
}

/// What a stage does, in words: from the plan and the app's config, else
/// as its `stage_started` event said it.
fn stage_describe(r: &DeploymentReport, b: &BatchReport, cx: &DrawContext) -> Option<String> {
    let app = cx
        .state
        .fleet()
        .apps
        .iter()
        .find(|a| a.name == r.deployment.app);
    if let (Some(stage), Some(app)) = (&b.stage, app) {
        return Some(stage.describe(app));
    }
    r.events.iter().find_map(|e| match e.typed().ok()? {
        EventKind::StageStarted {
            index, describe, ..
        } if index as i64 == b.index && !describe.is_empty() => Some(describe),
        _ => None,
    })
}

/// The newest traffic split, in words ("web-1 drained, web-2 50%, …").
fn traffic_split(r: &DeploymentReport) -> Option<String> {
    r.events.iter().rev().find_map(|e| match e.typed().ok()? {
        EventKind::TrafficChanged {
            describe: Some(d), ..
        } => Some(d),
        _ => None,
    })
}

/// An armed rollback's or a pause's countdown, for a rollout in flight.
fn countdown(r: &DeploymentReport, cx: &DrawContext) -> Option<Line<'static>> {
    let t = cx.theme;
    let last = r.events.iter().rev().find_map(|e| match e.typed().ok()? {
        k @ (EventKind::RollbackArmed { .. } | EventKind::Paused { .. }) => Some((e.at_ms, k)),
        EventKind::RollbackHeld
        | EventKind::RollbackFired
        | EventKind::RollbackStarted { .. }
        | EventKind::StageStarted { .. } => Some((e.at_ms, EventKind::LockTaken)),
        _ => None,
    })?;
    let key = |a| cx.keys.key_label(a, cx.view, Modes::NORMAL);
    // Rounded up, as the fleet view counts.
    let left = |ms: u64| {
        let at = last.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
        format!("{}s", secs_until(at, cx.now_ms))
    };
    match last.1 {
        EventKind::RollbackArmed { fires_in_ms }
            if r.deployment.state == DeploymentState::RollbackArmed =>
        {
            let why = r
                .rollback
                .as_ref()
                .and_then(|rb| rb.reason.clone())
                .unwrap_or_else(|| "a gate failed".into());
            Some(Line::from(vec![
                Span::styled(
                    format!("⚠ rollback fires in {} ", left(fires_in_ms)),
                    Style::new().fg(t.down).add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    format!(
                        "unless held ({}) · fire now ({}) · {}",
                        key(Action::Rollout(Verb::Hold)),
                        key(Action::Rollout(Verb::Fire)),
                        printable(&why)
                    ),
                    Style::new().fg(t.text),
                ),
            ]))
        }
        EventKind::Paused { ms } if r.deployment.state == DeploymentState::Running => {
            Some(Line::from(Span::styled(
                format!("⏸ pause ends in {}", left(ms)),
                Style::new().fg(t.rollout),
            )))
        }
        _ => None,
    }
}

/// A gauge per batch or step: how many of its instances are done.
fn stage_lines(r: &DeploymentReport, width: u16, cx: &DrawContext) -> Vec<Line<'static>> {
    let t = cx.theme;
    let bar_w = if width >= 100 { 20 } else { 10 };
    r.batches
        .iter()
        .map(|b| {
            let done = b
                .instances
                .iter()
                .filter(|i| instance_state(r, i) == "healthy")
                .count();
            let total = b.instances.len().max(1);
            let filled = match b.state {
                BatchState::Passed => bar_w,
                BatchState::Running => done * bar_w / total,
                _ => 0,
            };
            let style = match b.state {
                BatchState::Passed => Style::new().fg(t.healthy),
                BatchState::Failed | BatchState::RolledBack => Style::new().fg(t.down),
                BatchState::Interrupted => Style::new().fg(t.degraded),
                BatchState::Running => Style::new().fg(t.rollout),
                _ => Style::new().fg(t.dim),
            };
            let traffic = b
                .traffic_percent
                .map(|p| format!(" · {p:.0}% traffic"))
                .unwrap_or_default();
            let what = stage_describe(r, b, cx).unwrap_or_else(|| b.instances.join(", "));
            Line::from(vec![
                Span::styled(
                    format!("{:>2}. ", b.index.saturating_add(1)),
                    Style::new().fg(t.text),
                ),
                Span::styled("█".repeat(filled), style),
                Span::styled("░".repeat(bar_w - filled), Style::new().fg(t.dim)),
                Span::styled(format!(" {:<8} ", stage_word(b)), style),
                Span::styled(
                    format!("{}{traffic}", printable(&what)),
                    Style::new().fg(t.dim),
                ),
            ])
        })
        .collect()
}

fn stage_word(b: &BatchReport) -> String {
    b.state.words()
}

/// What an instance is going through, from the newest change recorded
/// for it: waiting, starting, verifying, healthy, failed,
/// restoring, restored.
pub fn instance_state(r: &DeploymentReport, instance: &str) -> &'static str {
    let Some(c) = r.changes.iter().rev().find(|c| c.instance == instance) else {
        // Not reached yet, or never, once the deployment has ended.
        return if r.deployment.ended_at_ms.is_some() {
            "untouched"
        } else {
            "waiting"
        };
    };
    let failed_gate = r.events.iter().any(|e| {
        e.at_ms >= c.at_ms
            && match e.typed() {
                Ok(EventKind::GateFailed(o) | EventKind::DeadlineExceeded(o)) => match o {
                    GateOutcome::Failed { evidence } => evidence.instance == instance,
                    GateOutcome::Deadline { evidence, .. } => {
                        evidence.iter().any(|ev| ev.instance == instance)
                    }
                    _ => false,
                },
                _ => false,
            }
    });
    if failed_gate && c.action != ChangeAction::Restore {
        return "failed";
    }
    match (c.action, c.state) {
        (_, ChangeState::Failed) => "failed",
        (ChangeAction::Restore, ChangeState::Done) => "restored",
        (ChangeAction::Restore, _) => "restoring",
        (ChangeAction::Start, ChangeState::Done) => {
            if r.events.iter().rev().any(|e| {
                matches!(e.typed(), Ok(EventKind::GatePassed(GateOutcome::Passed { ref evidence, .. }))
                    if evidence.iter().any(|ev| ev.instance == instance))
            }) {
                "healthy"
            } else {
                "verifying"
            }
        }
        _ => "starting",
    }
}

fn instance_lines(r: &DeploymentReport, t: &Theme) -> Vec<Line<'static>> {
    let mut names: Vec<&str> = Vec::new();
    for b in &r.batches {
        for i in &b.instances {
            if !names.contains(&i.as_str()) {
                names.push(i);
            }
        }
    }
    let mut spans = vec![Span::styled("instances: ", Style::new().fg(t.dim))];
    for (n, name) in names.iter().enumerate() {
        let state = instance_state(r, name);
        let (symbol, style) = match state {
            "healthy" => ("●", Style::new().fg(t.healthy)),
            "failed" => ("✖", Style::new().fg(t.down).add_modifier(Modifier::BOLD)),
            "restored" => ("↩", Style::new().fg(t.degraded)),
            "waiting" | "untouched" => ("○", Style::new().fg(t.dim)),
            _ => ("◐", Style::new().fg(t.rollout)),
        };
        if n > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            format!("{symbol} {} {state}", printable(name)),
            style,
        ));
    }
    let mut lines = vec![Line::from(spans)];
    if r.deployment.outcome.is_none()
        && let Some(ev) = latest_evidence(r)
    {
        lines.push(Line::from(Span::styled(
            format!(
                "gate: {} on {} · {} in the window · {} of {} in a row",
                printable(&ev.probe),
                printable(&ev.instance),
                ev.budget(),
                ev.consecutive_fail,
                ev.failure_threshold
            ),
            Style::new().fg(t.text),
        )));
    }
    lines
}

/// The evidence of the newest gate decision.
fn latest_evidence(r: &DeploymentReport) -> Option<Evidence> {
    r.events.iter().rev().find_map(|e| match e.typed().ok()? {
        EventKind::GateFailed(GateOutcome::Failed { evidence })
        | EventKind::DeadlineExceeded(GateOutcome::Failed { evidence }) => Some(evidence),
        EventKind::GatePassed(GateOutcome::Passed { evidence, .. })
        | EventKind::GateFailed(GateOutcome::Deadline { evidence, .. })
        | EventKind::DeadlineExceeded(GateOutcome::Deadline { evidence, .. }) => {
            evidence.into_iter().next()
        }
        _ => None,
    })
}

/// The evidence stored with a rollback: one probe's, or the first of a
/// deadline's.
fn rollback_evidence(rb: &RollbackReport) -> Option<Evidence> {
    if let Ok(one) = serde_json::from_value::<Evidence>(rb.evidence.clone())
        && !one.probe.is_empty()
    {
        return Some(one);
    }
    serde_json::from_value::<Vec<Evidence>>(rb.evidence.clone())
        .ok()
        .and_then(|v| v.into_iter().next())
}

/// The "why" card: what started the rollback, the probe, its thresholds,
/// what was measured, the last samples, and the incident.
pub fn why_lines(
    rb: &RollbackReport,
    incident: Option<&Incident>,
    samples: usize,
    t: &Theme,
) -> Vec<Line<'static>> {
    let head = Style::new().fg(t.down).add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(t.dim);
    let body = Style::new().fg(t.text);
    let mut lines = vec![Line::from(vec![
        Span::styled("WHY ", head),
        Span::styled(
            format!(
                "{} ({})",
                rb.trigger.as_str().replace('_', " "),
                printable(&rb.code),
            ),
            head,
        ),
    ])];
    if let Some(reason) = rb.reason.as_deref() {
        lines.push(Line::from(Span::styled(
            printable(reason).into_owned(),
            body,
        )));
    }
    if let Some(ev) = rollback_evidence(rb) {
        lines.push(Line::from(vec![
            Span::styled("probe ", dim),
            Span::styled(
                format!(
                    "{} on {} (port {}, {} side)",
                    printable(&ev.probe),
                    printable(&ev.instance),
                    ev.port,
                    ev.side.as_str()
                ),
                body.add_modifier(Modifier::BOLD),
            ),
        ]));
        lines.push(Line::from(vec![
            Span::styled("thresholds ", dim),
            Span::styled(
                format!(
                    "fails after {} in a row or {} in the window; passes after {} in a row",
                    ev.failure_threshold, ev.max_failures, ev.success_threshold
                ),
                body,
            ),
        ]));
        lines.push(Line::from(vec![
            Span::styled("measured ", dim),
            Span::styled(
                match ev.reason.as_deref() {
                    Some(why) => format!("{} · {} in the window", printable(why), ev.budget()),
                    None => format!(
                        "{} failed in a row · {} in the window",
                        ev.consecutive_fail,
                        ev.budget()
                    ),
                },
                Style::new().fg(t.down),
            ),
        ]));
        if let Some(compared) = ev.comparison() {
            lines.push(Line::from(vec![
                Span::styled("compared ", dim),
                Span::styled(printable(&compared).into_owned(), body),
            ]));
        }
        let n = ev.last_samples.len();
        for s in &ev.last_samples[n.saturating_sub(samples)..] {
            let (mark, style) = if s.ok {
                ("✔", Style::new().fg(t.healthy))
            } else {
                ("✖", Style::new().fg(t.down))
            };
            let code = s.code.map(|c| format!(" {c}")).unwrap_or_default();
            let kind = s
                .error_kind
                .as_deref()
                .map(|k| format!(" {k}"))
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("  {mark} {} ", clock_time(s.at_ms)), style),
                Span::styled(
                    format!(
                        "{}{code}{kind} {}",
                        text::latency(s.latency_ms as f32),
                        printable(&s.message)
                    ),
                    body,
                ),
            ]));
        }
    }
    if let Some(i) = incident {
        let state = match i.resolved_ms {
            Some(ms) => format!("resolved {}", clock_time(ms)),
            None => "open".into(),
        };
        lines.push(Line::from(vec![
            Span::styled("incident ", dim),
            Span::styled(
                format!(
                    "#{} opened {} ({}), {} · `rollguard events --app {}`",
                    i.id,
                    clock_time(i.opened_ms),
                    i.evidence.cause.as_str(),
                    state,
                    printable(&i.app)
                ),
                body,
            ),
        ]));
    }
    lines
}

fn timeline_line(e: &Event, width: usize, t: &Theme) -> Line<'static> {
    let (what, reason) = (what(e), reason_suffix(e));
    let style = if e.kind.contains("fail") || e.kind.starts_with("rollback") {
        Style::new().fg(t.down)
    } else if e.kind.starts_with("command") {
        Style::new().fg(t.rollout)
    } else {
        Style::new().fg(t.text)
    };
    let rest = printable(&format!("{} · {} · {what}{reason}", e.kind, e.actor)).into_owned();
    Line::from(vec![
        Span::styled(format!("{} ", clock_time(e.at_ms)), Style::new().fg(t.dim)),
        Span::styled(text::truncate(&rest, width.saturating_sub(9)), style),
    ])
}
