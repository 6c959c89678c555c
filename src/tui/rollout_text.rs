//! How the console words an app's releases and rollouts: the fleet view's
//! RELEASE cell and the app view's rollout line. Pure functions of what the
//! history says ([`AppRollouts`]) and the time.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::model::{DeploymentState, Outcome};
use crate::rollout::watch::{ActiveRollout, AppRollouts};

use super::text;
use super::theme::Theme;

/// An ended rollout that did not deploy stays mentioned this long.
const RECENT_MS: i64 = 30 * 60 * 1000;

/// Seconds left until `at_ms`, rounded up, never below 0.
pub(crate) fn secs_until(at_ms: i64, now_ms: i64) -> i64 {
    ((at_ms - now_ms).max(0) + 999) / 1000
}

/// "v2→v3" (or "→v3" for an install).
fn change(a: &ActiveRollout) -> String {
    format!("{}→{}", a.from.as_deref().unwrap_or(""), a.to)
}

/// What an active rollout is doing, in a few words, and its style.
fn active_words(a: &ActiveRollout, now_ms: i64, t: &Theme) -> (String, Style) {
    let bold = Modifier::BOLD;
    if a.interrupted {
        return (
            format!("✖ {} interrupted", change(a)),
            Style::new().fg(t.down).add_modifier(bold),
        );
    }
    match a.state {
        DeploymentState::RollbackArmed => {
            let left = a
                .fires_at_ms
                .map(|f| format!(" in {}s", secs_until(f, now_ms)))
                .unwrap_or_default();
            (
                format!("⚠ rollback of {}{left}", a.to),
                Style::new().fg(t.down).add_modifier(bold),
            )
        }
        DeploymentState::RollbackHeld => (
            format!("⏸ rollback of {} held", a.to),
            Style::new().fg(t.degraded).add_modifier(bold),
        ),
        DeploymentState::Failing | DeploymentState::RollingBack => (
            format!("↺ rolling back {}", a.to),
            Style::new().fg(t.degraded).add_modifier(bold),
        ),
        DeploymentState::WaitingApproval => (
            format!("⏸ {} {}/{} approve?", change(a), a.stage, a.stages),
            Style::new().fg(t.rollout).add_modifier(bold),
        ),
        _ => (
            format!("▶ {} {}/{}", change(a), a.stage, a.stages),
            Style::new().fg(t.rollout),
        ),
    }
}

/// How wide the RELEASE cell of a rollout under way is, in columns (0
/// when none is): the fleet view makes room for it rather than cut off a
/// countdown.
pub fn active_width(r: Option<&AppRollouts>, now_ms: i64, t: &Theme) -> usize {
    r.and_then(|r| r.active.as_ref())
        .map_or(0, |a| text::width(&active_words(a, now_ms, t).0))
}

/// The fleet view's RELEASE cell: the rollout under way, else the versions
/// running (and a recent rollout that did not deploy), else a dash.
pub fn release_cell(
    r: Option<&AppRollouts>,
    now_ms: i64,
    width: usize,
    t: &Theme,
) -> Line<'static> {
    let dash = || Line::from(Span::styled("—", Style::new().fg(t.dim)));
    let Some(r) = r else {
        return dash();
    };
    if let Some(a) = &r.active {
        let (s, style) = active_words(a, now_ms, t);
        return Line::from(Span::styled(text::truncate(&s, width), style));
    }
    let mut spans = Vec::new();
    let running = r.versions.join(",");
    if !running.is_empty() {
        spans.push(Span::styled(running.clone(), Style::new().fg(t.text)));
    }
    if let Some(l) = &r.last
        && l.outcome != Outcome::Deployed
        && l.ended_at_ms.is_some_and(|e| now_ms - e < RECENT_MS)
    {
        let sep = if spans.is_empty() { "" } else { " " };
        spans.push(Span::styled(
            format!("{sep}({} {})", l.to, l.outcome.words()),
            Style::new().fg(t.degraded),
        ));
    }
    if spans.is_empty() {
        return dash();
    }
    let s: String = spans.iter().map(|s| s.content.as_ref()).collect();
    if text::width(&s) <= width {
        Line::from(spans)
    } else {
        Line::from(Span::styled(text::truncate(&s, width), spans[0].style))
    }
}

/// The app view's rollout line: the rollout under way with its stage and
/// its newest progress (and how to recover it when its worker is gone);
/// else the last rollout.
/// `None` when rollguard never deployed the app.
pub fn rollout_line(app: &str, r: &AppRollouts, now_ms: i64, t: &Theme) -> Option<Line<'static>> {
    let dim = Style::new().fg(t.dim);
    if let Some(a) = &r.active {
        let (words, style) = active_words(a, now_ms, t);
        let mut spans = vec![
            Span::styled(words, style),
            Span::styled(format!(" · {} · deployment {}", a.strategy, a.id), dim),
        ];
        if let Some(l) = &a.latest {
            spans.push(Span::styled(format!(" · {l}"), Style::new().fg(t.text)));
        }
        // The keys that steer it are in the footer; a dead worker needs
        // the CLI.
        if a.interrupted {
            spans.push(Span::styled(
                format!(" · rollguard recover {app} --rollback|--resume"),
                dim,
            ));
        }
        return Some(Line::from(spans));
    }
    let l = r.last.as_ref()?;
    let mut spans = vec![Span::styled("last rollout: ", dim)];
    let style = if l.outcome == Outcome::Deployed {
        Style::new().fg(t.text)
    } else {
        Style::new().fg(t.degraded)
    };
    spans.push(Span::styled(
        format!("{} {}", l.to, l.outcome.words()),
        style,
    ));
    if let Some(e) = l.ended_at_ms {
        spans.push(Span::styled(format!(" {} ago", text::age(now_ms - e)), dim));
    }
    if !r.versions.is_empty() {
        spans.push(Span::styled(
            format!(" · running {}", r.versions.join(", ")),
            dim,
        ));
    }
    spans.push(Span::styled(
        format!(" · deployment {} · rollguard history {app}", l.id),
        dim,
    ));
    Some(Line::from(spans))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::watch::EndedRollout;

    fn plain(l: &Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn active(state: &str) -> AppRollouts {
        AppRollouts {
            versions: vec!["v2".into(), "v3".into()],
            active: Some(ActiveRollout {
                id: 7,
                from: Some("v2".into()),
                to: "v3".into(),
                strategy: crate::config::Strategy::Rolling,
                state: DeploymentState::parse(state).expect("a known state"),
                stage: 2,
                stages: 4,
                latest: Some("healthy: web-2 (512 ms)".into()),
                fires_at_ms: Some(20_500),
                interrupted: false,
                ..ActiveRollout::default()
            }),
            last: None,
            ..AppRollouts::default()
        }
    }

    #[test]
    fn release_cell_words_each_state() {
        let t = Theme::default();
        let cell = |r: &AppRollouts| plain(&release_cell(Some(r), 10_000, 40, &t));
        assert_eq!(cell(&active("running")), "▶ v2→v3 2/4");
        assert_eq!(cell(&active("waiting_approval")), "⏸ v2→v3 2/4 approve?");
        assert_eq!(cell(&active("rollback_armed")), "⚠ rollback of v3 in 11s");
        assert_eq!(cell(&active("rollback_held")), "⏸ rollback of v3 held");
        assert_eq!(cell(&active("rolling_back")), "↺ rolling back v3");
        let mut gone = active("running");
        gone.active.as_mut().unwrap().interrupted = true;
        assert_eq!(cell(&gone), "✖ v2→v3 interrupted");

        let settled = AppRollouts {
            versions: vec!["v2".into()],
            alt_live: Vec::new(),
            active: None,
            last: Some(EndedRollout {
                id: 8,
                to: "v3".into(),
                outcome: Outcome::RolledBack,
                ended_at_ms: Some(9_000),
            }),
        };
        assert_eq!(cell(&settled), "v2 (v3 rolled back)");
        assert_eq!(
            plain(&release_cell(Some(&settled), 9_000 + RECENT_MS, 40, &t)),
            "v2"
        );
        assert_eq!(
            plain(&release_cell(Some(&settled), 10_000, 6, &t)),
            "v2 (v…"
        );
        assert_eq!(plain(&release_cell(None, 0, 10, &t)), "—");
        assert_eq!(
            plain(&release_cell(Some(&AppRollouts::default()), 0, 10, &t)),
            "—"
        );
    }

    #[test]
    fn rollout_line_says_what_the_rollout_does() {
        let t = Theme::default();
        let line = |r: &AppRollouts| rollout_line("web", r, 10_000, &t).map(|l| plain(&l));
        assert_eq!(
            line(&active("running")).unwrap(),
            "▶ v2→v3 2/4 · rolling · deployment 7 · healthy: web-2 (512 ms)"
        );
        let mut gone = active("running");
        gone.active.as_mut().unwrap().interrupted = true;
        assert!(
            line(&gone)
                .unwrap()
                .ends_with("rollguard recover web --rollback|--resume")
        );
        assert_eq!(line(&AppRollouts::default()), None);
    }

    #[test]
    fn countdown_rounds_up() {
        assert_eq!(secs_until(20_500, 10_000), 11);
        assert_eq!(secs_until(20_000, 10_000), 10);
        assert_eq!(secs_until(5_000, 10_000), 0);
    }
}
