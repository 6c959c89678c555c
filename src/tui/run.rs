//! The console's run loop: owns the terminal, reads keys on a thread of
//! its own, hands each key to the [`App`], performs what the operator
//! confirmed through the [`Service`], drains the [`Queue`] of what
//! background tasks report, and redraws when the data or the view
//! changed, at most ten times a second. Always gives the terminal back, whether it ends by `q`,
//! the shutdown signal, SIGTERM/SIGHUP/SIGINT, an error or a panic (ratatui's
//! `try_init` installs a panic hook that restores the terminal).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::config::Fleet;
use crate::model::now_ms;

use super::app::App;
use super::keymap::Action;
use super::perform::Service;
use super::queue::Queue;
use super::state::FleetState;
use super::theme::Theme;

/// Shortest time between two frames (10 frames per second at most).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// How long the input thread waits for a key before checking whether to stop.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// How the console looks.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Colors.
    pub theme: Theme,
    /// Shown in the header after "rollguard", e.g. an environment name
    /// (not repeated if it is just the config path).
    pub title: String,
    /// A notice shown under the header, e.g. that this is a demo.
    pub banner: Option<String>,
    /// The history the rollout keys send their commands through; without
    /// it they are refused.
    pub db: Option<PathBuf>,
    /// Only watch: no key or `:` command acts, and the header says so.
    pub read_only: bool,
    /// Where `:theme` looks for theme files that are not built in.
    pub theme_dirs: Vec<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            theme: Theme::default(),
            title: "rollguard".into(),
            banner: None,
            db: None,
            read_only: false,
            theme_dirs: Vec::new(),
        }
    }
}

/// Gives the terminal back when dropped.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
    }
}

/// Runs the console until `q`/Ctrl-C, until `shutdown` becomes `true` (or
/// its sender is dropped), or until SIGTERM or SIGHUP. `state` is locked
/// only while a frame is rendered into memory, never while it is written
/// to the terminal. Logging must be routed away from the terminal first
/// (see [`super::init_logging`]).
pub async fn run(
    fleet: Arc<Fleet>,
    state: Arc<Mutex<FleetState>>,
    opts: RunOptions,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // Ctrl-C is a key in raw mode; a SIGINT sent from outside ends the
    // console like SIGTERM, giving the terminal back.
    let mut sigint = signal(SignalKind::interrupt())?;
    if *shutdown.borrow_and_update() {
        return Ok(());
    }

    let restore = Restore;
    let mut terminal = ratatui::try_init()?;
    let (tx, mut rx) = mpsc::channel(64);
    let stop = Arc::new(AtomicBool::new(false));
    let input = spawn_input(tx, stop.clone())?;

    let mut app = App::new(fleet, opts.theme);
    app.title = opts.title;
    app.banner = opts.banner;
    app.read_only = opts.read_only;
    let (queue, mut arrivals) = Queue::new();
    let theme_dirs = opts.theme_dirs.clone();
    let service = Service::new(
        app.fleet().clone(),
        opts.db,
        crate::rollout::lock::whoami(),
        queue.clone(),
    );
    let mut reads = Reads::default();

    let result = async {
        let mut tick = tokio::time::interval(FRAME_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut dirty = true;
        let mut drawn_generation = None;
        let mut drawn_second = i64::MIN;
        let mut last_frame: Option<Instant> = None;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(Ok(Event::Key(key))) => {
                        app.now_ms = now_ms();
                        let action = app.handle_key(key, &lock(&state));
                        if action == Action::Quit {
                            return Ok(());
                        }
                        if let Some(confirmed) = app.take_confirmed() {
                            match service.perform(confirmed) {
                                Ok(said) => app.notify(said, false),
                                Err(why) => app.notify(why, true),
                            }
                        }
                        if let Some((token, intent)) = app.take_check() {
                            service.prepare(token, intent);
                        }
                        if let Some(load) = app.take_releases_wanted() {
                            service.load(load);
                        }
                        if let Some(name) = app.take_theme_wanted() {
                            load_theme(name, theme_dirs.clone(), &queue);
                        }
                        dirty = true;
                    }
                    Some(Ok(Event::Resize(..))) => dirty = true,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(io::Error::other("the keyboard input thread stopped")),
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow_and_update() {
                        return Ok(());
                    }
                }
                Some(arrival) = arrivals.recv() => {
                    app.now_ms = now_ms();
                    reads.arrived(&arrival);
                    app.arrive(arrival);
                    // Take in whatever else has arrived before drawing.
                    while let Ok(more) = arrivals.try_recv() {
                        reads.arrived(&more);
                        app.arrive(more);
                    }
                    dirty = true;
                }
                _ = sigterm.recv() => return Ok(()),
                _ = sighup.recv() => return Ok(()),
                _ = sigint.recv() => return Ok(()),
                _ = tick.tick() => {}
            }

            reads.maybe_read(&app, &service);
            if last_frame.is_some_and(|t| t.elapsed() < FRAME_INTERVAL) {
                continue; // the next tick draws
            }
            let now = now_ms();
            let generation = lock(&state).generation();
            if !dirty && drawn_generation == Some(generation) && drawn_second == now / 1000 {
                continue;
            }
            terminal.autoresize()?;
            {
                let state = lock(&state);
                app.now_ms = now;
                let mut frame = terminal.get_frame();
                super::draw(&mut frame, &app, &state);
                drawn_generation = Some(state.generation());
            }
            terminal.apply_buffer()?;
            drawn_second = now / 1000;
            dirty = false;
            last_frame = Some(Instant::now());
        }
    }
    .await;

    stop.store(true, Ordering::Relaxed);
    drop(rx);
    // The input thread sees `stop` within INPUT_POLL. When the terminal is
    // gone (SSH dropped, tmux killed), crossterm's poll spins on it and
    // never returns: the thread is then left to end with the process, and
    // the console still stops, giving the prober's lease up.
    let waited = Instant::now();
    while !input.is_finished() && waited.elapsed() < INPUT_POLL * 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(input);
    // Dropping a terminal whose cursor cannot be shown prints to standard
    // error, which panics when the terminal is gone; it is not dropped
    // then, so the console goes on to stop cleanly.
    if terminal.show_cursor().is_ok() {
        drop(terminal);
    } else {
        std::mem::forget(terminal);
    }
    drop(restore);
    result
}

/// How often a view's records are read again while it is shown.
const READ_EVERY: Duration = Duration::from_secs(1);

/// The reading of what the view shown wants: one read at a time, again
/// about every [`READ_EVERY`], at once when another view is shown.
#[derive(Default)]
struct Reads {
    in_flight: bool,
    last: Option<(super::app::View, Instant)>,
}

impl Reads {
    /// Starts a read if the view wants one and it is due.
    fn maybe_read(&mut self, app: &App, service: &Service) {
        if self.in_flight {
            return;
        }
        let Some(load) = app.wanted() else {
            return;
        };
        let due = match self.last {
            Some((view, at)) => view != app.view() || at.elapsed() >= READ_EVERY,
            None => true,
        };
        if due && service.load(load) {
            self.in_flight = true;
            self.last = Some((app.view(), Instant::now()));
        }
    }

    /// Notes that a read came back.
    fn arrived(&mut self, arrival: &super::queue::Arrival) {
        use super::load::Loaded;
        use super::queue::Arrival;
        match arrival {
            // Completion's reading is not the view's.
            Arrival::Loaded(Ok(Loaded::Releases(_))) => {}
            Arrival::Loaded(_) => self.in_flight = false,
            _ => {}
        }
    }
}

/// Reads theme `name` from `dirs` on a blocking task; it arrives as
/// [`Arrival::Theme`](super::queue::Arrival::Theme).
fn load_theme(name: String, dirs: Vec<PathBuf>, queue: &Queue) {
    let queue = queue.clone();
    tokio::task::spawn_blocking(move || {
        let result = Theme::load(&name, &dirs)
            .map(Box::new)
            .map_err(|e| e.to_string());
        queue.post(super::queue::Arrival::Theme { name, result });
    });
}

fn lock(state: &Mutex<FleetState>) -> std::sync::MutexGuard<'_, FleetState> {
    // A prober that panicked while holding the lock leaves usable data.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads terminal events on a thread so that nothing async ever blocks on
/// the terminal. Stops when `stop` is set or the receiver is gone.
fn spawn_input(
    tx: mpsc::Sender<io::Result<Event>>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rollguard-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(INPUT_POLL) {
                    Ok(false) => {}
                    Ok(true) => {
                        let ev = event::read();
                        let failed = ev.is_err();
                        if tx.blocking_send(ev).is_err() || failed {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        })
}
