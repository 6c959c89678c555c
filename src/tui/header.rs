//! The header line: what this console is watching and how fresh it is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::AppStatus;
use crate::monitor::Role;

use super::app::App;
use super::state::FleetState;
use super::text;

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
    let variants = [(false, &path), (false, &file), (true, &file)];
    // The brand, then the caller's title unless it only repeats the path.
    let title = if app.title.is_empty() || app.title == "rollguard" || app.title == path {
        " rollguard ".to_string()
    } else {
        format!(" rollguard · {} ", app.title)
    };
    let room = (area.width as usize).saturating_sub(text::width(&title) + 1);
    let mut summary = String::new();
    for (short, where_) in variants {
        let mut parts = vec![format!("{} apps", fleet.apps.len())];
        parts.push(if short {
            format!("{instances} inst")
        } else {
            format!("{instances} instances")
        });
        if down > 0 {
            parts.push(format!("{down} down"));
        }
        if degraded > 0 {
            parts.push(format!("{degraded} degraded"));
        }
        parts.push(if short {
            role_short(state.role()).to_string()
        } else {
            state.role().describe()
        });
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

/// The role in one word, for a narrow header.
fn role_short(role: &Role) -> &'static str {
    match role {
        Role::Starting => "starting",
        Role::Prober => "probing",
        Role::Reader {
            other_fleet: false, ..
        } => "reading",
        Role::Reader {
            other_fleet: true, ..
        } => "reading (other config)",
        Role::Alone(_) => "alone",
    }
}

/// Draws the banner line (a notice such as "demo mode").
pub fn draw_banner(frame: &mut Frame, area: Rect, app: &App, banner: &str) {
    let t = &app.theme;
    frame.render_widget(
        Paragraph::new(format!(" {banner}"))
            .style(Style::new().fg(t.degraded).add_modifier(Modifier::BOLD)),
        area,
    );
}
