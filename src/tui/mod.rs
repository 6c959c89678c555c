//! The interactive console, built like gitui and oxker. Data state
//! ([`FleetState`], a layer of its own below the monitor: [`crate::state`])
//! is kept apart from view state ([`App`]); [`run`] owns the terminal.
//!
//! | file | holds |
//! |---|---|
//! | `app.rs` | [`App`]: the components as named fields, the [`View`] and the views Esc goes back to, the [`Mode`], the notice, the `:` lines typed; the event pump (`handle_key` → `apply`, one method per mode); what the view wants read ([`App::wanted`]) and taking in what arrives ([`App::arrive`]); `app/command_line.rs`: the `:` line run, completed and recalled |
//! | `mode.rs` | [`Mode`]: what is open over the view (normal, help, the question with its action, the `/` filter, the `:` command line, a deploy or rollback being checked); one at a time |
//! | `keymap.rs` | the one table of keys (kept in [`crate::keys`], where the config checks `[console.keys]` against it) with the config's remaps, made once at start ([`keymap::Keymap`]); key lookup by view and mode, the help popup and the footer all read it |
//! | `components/` | one file each: the fleet view (its filter and the rows it shows, kept apart from the fleet index), the app view (probes, releases with the last good, recent deployments, what each receiver was last told), History (and each app's availability an hour a cell over 24 hours), one deployment (the Rollout view: gauges per batch, instance states, the failure budget, countdowns, the "why" card, the timeline), Events, Logs (rollguard's log by level, a worker's log), the help popup, the confirm modal (Cancel and the action's button, the report of what was checked, the reason, a protected app's name), the log pane, the selection of a table, [`TextInput`] |
//! | `action.rs` | [`ConfirmAction`] (built by a key, a `:` line or a checked deploy or rollback) and [`ConfirmedAction`] (with the reason) |
//! | `prepare.rs` | a deploy's or rollback's [`Intent`] checked through the rollout service (preflight, rollback checks) into the [`Question`] the modal asks |
//! | `perform.rs` | [`Service`]: `perform`, the one `match` that carries a confirmed action out through the rollout service; `prepare`; `load` (on blocking tasks); `available`, the releases on an app's hosts (a task of its own, over SSH where the host is remote) |
//! | `load.rs` | what a view reads from the history ([`load::Load`] → [`load::Loaded`]): History's deployments, a deployment's report and incident, events after an id, an app's releases, a worker's log |
//! | `queue.rs` | [`Queue`]: the one queue background tasks post an [`Arrival`] into; the run loop drains it |
//! | `command.rs` | what a `:` line asks for ([`Command`]) and how a word is completed, pure |
//! | `control.rs` | the rollout verbs: where each applies, its question, sending it ([`Request::send`]) |
//! | `header.rs`, `footer.rs` | the top line (with "read-only" when it is) and the bottom line |
//! | `rollout_text.rs`, `sparkline.rs`, `columns.rs`, `text.rs`, `theme.rs` | how the data state ([`crate::state`]) is worded, drawn and coloured |
//! | `run.rs`, `terminal.rs` | the run loop (keys, Ctrl-Z, Ctrl-L, the mouse, when a frame is due); the terminal held and given back (a panic included), suspended, and written to sparingly |
//! | `mouse.rs`, `too_small.rs` | the table row under a click (pure); the one message drawn below 80x24 |
//!
//! A key goes: the input thread (crossterm) → the run loop →
//! [`App::handle_key`] → the binding for the current view and mode (or,
//! unbound, the mode's line of text) → [`App::apply`]. A destructive key
//! opens [`Mode::Confirm`] with its [`ConfirmAction`], focused on Cancel;
//! Enter on the action's button (Tab or ← → to reach it), once a required
//! reason and a protected app's name are typed, leaves a
//! [`ConfirmedAction`] that the run loop hands to [`Service::perform`],
//! whose outcome comes back through the [`Queue`] to [`App::arrive`]. A
//! deploy or a rollback by hand is checked first: [`Mode::Pending`] waits
//! while [`Service::prepare`] runs the preflight, and its question (the
//! plan, the way back, the warnings) arrives through the queue. The view
//! shown says what it wants read; the run loop has [`Service::load`] read
//! it about once a second. On a read-only console ([`App::read_only`])
//! every action is refused where the question would open, and none is
//! offered. Nothing on the draw or input path does I/O.
//!
//! Screen, top to bottom: header, optional banner, the view (fleet, app,
//! History, a deployment, Events, Logs), optional log pane, footer (or
//! the line being typed); the help popup or the question on top. Below
//! 80x24, one message saying so instead.

mod action;
mod app;
mod columns;
mod command;
pub mod components;
pub mod control;
mod footer;
mod header;
pub mod keymap;
pub mod load;
mod logging;
mod mode;
pub mod mouse;
mod perform;
mod prepare;
mod queue;
mod rollout_text;
mod run;
mod sparkline;
mod terminal;
mod text;
mod theme;
pub mod too_small;
mod view;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Block;

pub use crate::keys::{Action, KEYMAP};
pub use action::{ConfirmAction, ConfirmedAction, Prepared};
pub use app::{App, NOTICE_MS, Notice, Shown, View};
pub use command::Command;
pub use components::{Confirm, TextInput, status_symbol, verdict_symbol};
pub use control::{Request, Verb};
pub use logging::{LOG_ENV, init_logging};
pub use mode::{Mode, Pending};
pub use perform::Service;
pub use prepare::{Intent, Question};
pub use queue::{Arrival, Queue};
pub use run::{FRAME_INTERVAL, RunOptions, run};
pub use sparkline::{BARS, FAIL_BAR, LatencySparkline};
pub use terminal::{LightBackend, SettingUp};
pub use theme::{BUILTIN_THEMES, Theme, ThemeError};

pub use crate::state::{FleetState, LastError, LastResult, ProbeHistory, Sample};

use components::{Component, DrawContext};

/// Draws the whole console for the current view and mode. Reads
/// `app.now_ms` as "now"; does no I/O. Below 80x24 it draws only a
/// message saying so ([`too_small`]); it never panics, down to 1x1.
pub fn draw(frame: &mut Frame, app: &App, state: &FleetState) {
    let area = frame.area();
    if area.is_empty() {
        return;
    }
    if too_small::too_small(area) {
        return too_small::draw(frame, &app.theme, &app.keymap, app.view());
    }
    let cx = DrawContext {
        state,
        theme: &app.theme,
        now_ms: app.now_ms,
        view: app.view(),
        read_only: app.read_only,
        keys: &app.keymap,
    };
    let banner_h = u16::from(app.banner.is_some() && area.height >= 10);
    let footer_h = u16::from(area.height >= 3);
    let [header_area, banner_area, body, footer_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_h),
        Constraint::Min(0),
        Constraint::Length(footer_h),
    ])
    .areas(area);

    header::draw(frame, header_area, app, state);
    if let Some(b) = app.banner.as_deref().filter(|_| banner_h > 0) {
        header::draw_banner(frame, banner_area, app, b);
    }

    let (table_area, log_area) = if app.log_visible() && body.height >= 10 {
        let [t, l] = Layout::vertical([Constraint::Min(5), Constraint::Percentage(35)]).areas(body);
        (t, Some(l))
    } else {
        (body, None)
    };
    match app.view() {
        View::Fleet => app.fleet_view.draw(frame, table_area, &cx),
        View::App(_) => app.app_view.draw(frame, table_area, &cx),
        View::History => app.history_view.draw(frame, table_area, &cx),
        View::Deployment(_) => app.deployment_view.draw(frame, table_area, &cx),
        View::Events => app.events_view.draw(frame, table_area, &cx),
        View::Logs => app.logs_view.draw(frame, table_area, &cx),
    }
    if let Some(l) = log_area {
        app.log_pane.draw(frame, l, &cx);
    }
    if footer_h > 0 {
        footer::draw(frame, footer_area, app, state);
    }
    match app.mode() {
        Mode::Help => app.help.draw(frame, area, &cx),
        Mode::Confirm(c) => c.draw(frame, area, &cx),
        Mode::Pending(p) => components::draw_pending(frame, area, p, &cx),
        Mode::Normal | Mode::Filter(_) | Mode::Command(_) => {}
    }
}

/// The frame around a table: bordered with a title, or bare when `area`
/// is too low to spend two rows on borders.
pub(crate) fn panel<'a>(title: Line<'a>, area: Rect, theme: &Theme) -> Block<'a> {
    if area.height < 6 {
        Block::new()
    } else {
        Block::bordered()
            .title(title)
            .border_style(Style::new().fg(theme.border))
    }
}
