//! The header line: what this console is watching, how fresh it is, and
//! whether it is read-only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::AppStatus;
use crate::state::Role;

use super::app::App;
use super::text;
use crate::state::FleetState;

/// Draws the header into `area` (one line).
pub fn draw(frame: &mut Frame, area: Rect, app: &App, state: &FleetState) {
    let t = &app.theme;
    let fleet = state.fleet();
    let tracker = state.tracker();
    let instances: usize = fleet.apps.iter().map(|a| a.instances.len()).sum();
    let (mut down, mut degraded) = (0, 0);
    for i in 0..fleet.apps.len() {
        match tracker.app_status(i) {
            AppStatus::Down => down += 1,
            AppStatus::Degraded => degraded += 1,
            _ => {}
        }
    }
    let rate = state.probes_per_sec(app.now_ms);
    let age = state.last_update_ms().map(|at| text::age(app.now_ms - at));
    let path = fleet.source.display().to_string();
    let file = fleet
        .source
        .file_name()
        .map_or_else(|| path.clone(), |f| f.to_string_lossy().into_owned());
    // Long to short; the first that fits is used, the last is cut.
    // The tightest leaves the instance count out.
    let variants = [(0, &path), (0, &file), (1, &file), (2, &file)];
    // The brand, then the caller's title unless it only repeats the path.
    // Then "read-only" when it only watches: never cut.
    let mut title = if app.title.is_empty() || app.title == "rollguard" || app.title == path {
        " rollguard".to_string()
    } else {
        format!(" rollguard · {}", app.title)
    };
    if app.read_only {
        title.push_str(" · read-only");
    }
    title.push(' ');
    let room = (area.width as usize).saturating_sub(text::width(&title) + 1);
    let mut summary = String::new();
    for (level, where_) in variants {
        let short = level > 0;
        let mut parts = vec![format!("{} apps", fleet.apps.len())];
        match level {
            0 => parts.push(format!("{instances} instances")),
            1 => parts.push(format!("{instances} inst")),
            _ => {}
        }
        if down > 0 {
            parts.push(format!("{down} down"));
        }
        if degraded > 0 {
            parts.push(format!("{degraded} degraded"));
        }
        match (short, role_short(state.role())) {
            (false, _) => parts.push(state.role().describe()),
            (true, Some(r)) => parts.push(r.to_string()),
            (true, None) => {}
        }
        parts.push(if short {
            format!("{rate:.1}/s")
        } else {
            format!("{rate:.1} probes/s")
        });
        parts.push(match (&age, short) {
            (Some(a), false) => format!("updated {a} ago"),
            (Some(a), true) => format!("{a} ago"),
            (None, _) => "waiting for probes".into(),
        });
        parts.push(where_.clone());
        summary = parts.join(" · ");
        if text::width(&summary) <= room {
            break;
        }
    }
    let line = Line::from(vec![
        Span::styled(title, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(" {summary}")),
    ]);
    frame.render_widget(
        Paragraph::new(line).style(Style::new().fg(t.header_fg).bg(t.header_bg)),
        area,
    );
}

/// The role in a word, for a narrow header; nothing for the usual one
/// (this console probes) and for the first moment.
fn role_short(role: &Role) -> Option<&'static str> {
    Some(match role {
        Role::Starting | Role::Prober => return None,
        Role::Reader {
            other_fleet: false, ..
        } => "reading",
        Role::Reader {
            other_fleet: true, ..
        } => "reading (other config)",
        Role::Alone(_) => "alone",
    })
}

/// What separates the parts of a banner.
pub const BANNER_PARTS: &str = " · ";

/// Draws the banner line (a notice such as "demo mode"): as many of its
/// parts as fit ([`fit_banner`]).
pub fn draw_banner(frame: &mut Frame, area: Rect, app: &App, banner: &str) {
    let t = &app.theme;
    let shown = fit_banner(banner, usize::from(area.width).saturating_sub(1));
    frame.render_widget(
        Paragraph::new(format!(" {shown}"))
            .style(Style::new().fg(t.degraded).add_modifier(Modifier::BOLD)),
        area,
    );
}

/// The parts of `banner` (separated by [`BANNER_PARTS`], the first the
/// most wanted) that fit in `width` cells, in their order: a part too wide
/// for the room left is left out whole, never cut, and a later, shorter
/// one may still go in. Only a first part wider than `width` is cut.
pub fn fit_banner(banner: &str, width: usize) -> String {
    let mut parts = banner.split(BANNER_PARTS);
    let first = parts.next().unwrap_or_default();
    if text::width(first) > width {
        return text::truncate(first, width);
    }
    let mut shown = first.to_string();
    let mut used = text::width(first);
    for part in parts {
        let w = text::width(BANNER_PARTS) + text::width(part);
        if used + w <= width {
            shown.push_str(BANNER_PARTS);
            shown.push_str(part);
            used += w;
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_banner_shows_the_parts_that_fit_whole_in_their_order() {
        let b = "try :deploy · /tmp/x/rg deploy · a long explanation here · H: history";
        assert_eq!(fit_banner(b, 200), b);
        // The third is too long for 45 cells; the fourth still fits.
        assert_eq!(
            fit_banner(b, 45),
            "try :deploy · /tmp/x/rg deploy · H: history"
        );
        assert_eq!(fit_banner(b, 30), "try :deploy · /tmp/x/rg deploy");
        assert_eq!(fit_banner(b, 20), "try :deploy");
        // Only the first is ever cut.
        assert_eq!(fit_banner(b, 8), "try :de…");
        assert_eq!(fit_banner("one part", 8), "one part");
    }
}
