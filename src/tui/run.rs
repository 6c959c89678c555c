//! The console's run loop: holds the terminal ([`super::terminal`]), reads
//! keys (and, with `--mouse`, clicks and the wheel) on a thread of its own,
//! hands each key to the [`App`], performs what the operator confirmed
//! through the [`Service`], drains the [`Queue`] of what background tasks
//! report, and draws a frame when one is due. Always gives the terminal
//! back, whether it ends by `q`, the shutdown signal, SIGTERM/SIGHUP/SIGINT,
//! an error or a panic.
//!
//! When a frame is due: at once (within [`FRAME_INTERVAL`]) after a key, a
//! click, a resize, a report, or a change of a verdict, a rollout or the
//! role; and once a second for what only time and new samples change
//! (ages, rates, sparklines), however many results came in that second.
//! Only cells that changed are written, and a frame with none writes
//! nothing, so an idle console over SSH stays light.
//!
//! Ctrl-Z is taken here, before the [`App`] sees any key (it is not in the
//! keymap): the input thread stops reading at once, so that every key
//! typed while the console is suspended reaches the shell; the terminal is
//! given back and the job stopped; on `fg` the terminal is taken again and
//! the next frame drawn whole. Where no shell could continue it (`ssh -t
//! host rollguard`), the footer says so and the console goes on.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEvent, KeyEventKind, MouseEvent};
use ratatui::layout::Rect;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::config::Fleet;
use crate::model::now_ms;
use crate::shutdown::Shutdown;

use super::app::App;
use super::mouse::Gesture;
use super::perform::Service;
use super::queue::{Arrival, Queue};
use super::terminal::{Held, Screen};
use super::theme::Theme;
use super::too_small;
use crate::keys::Action;
use crate::state::FleetState;
use crate::store::Location;

/// Shortest time between two frames (10 frames per second at most).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// How long the input thread waits for a key before checking whether to stop.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// What the footer says when Ctrl-Z cannot suspend the console.
const CANNOT_SUSPEND: &str =
    "Ctrl-Z: no shell with job control started this console, so it cannot be suspended; q quits";

/// How the console looks and what it takes from the terminal.
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
    pub db: Option<Location>,
    /// Only watch: no key or `:` command acts, and the header says so.
    pub read_only: bool,
    /// Where `:theme` looks for theme files that are not built in.
    pub theme_dirs: Vec<PathBuf>,
    /// Take the mouse (`--mouse`, `[console] mouse`): a click selects a
    /// row, the wheel moves the selection. Off by default, so that the
    /// terminal's own selection and copy work as usual.
    pub mouse: bool,
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
            mouse: false,
        }
    }
}

/// What the input thread hands the run loop.
#[derive(Debug)]
enum Input {
    /// A key, a click, a resize.
    Event(Event),
    /// Ctrl-Z: the thread reads nothing more until it is told to go on.
    Suspend,
    /// Reading the terminal failed; the thread has stopped.
    Failed(io::Error),
}

/// What the last frame drew from.
#[derive(Debug)]
struct Drawn {
    /// The state's headline generation.
    headline: Option<u64>,
    /// The second of "now".
    second: i64,
    /// The size of the screen.
    area: Rect,
    /// When it was written.
    at: Option<Instant>,
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
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut shutdown = Shutdown::new(shutdown);
    let mut signals = Signals::take()?;
    if shutdown.is_set() {
        return Ok(());
    }
    // The local time zone, read here and kept: no frame reads a file.
    crate::clock::read_zone();

    let (held, mut screen) = Held::take(opts.mouse)?;
    let (tx, mut rx) = mpsc::channel(64);
    let stop = Arc::new(AtomicBool::new(false));
    let (go_on, told) = std::sync::mpsc::channel();
    let input = spawn_input(tx, stop.clone(), told)?;

    let (mut console, mut arrivals) = Console::new(fleet, state, opts);
    let result = async {
        let mut tick = tokio::time::interval(FRAME_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                input = rx.recv() => {
                    let terminal = Terminal { held: &held, screen: &mut screen, go_on: &go_on };
                    if console.input(input, terminal, &mut signals.cont).await? == Step::Quit {
                        return Ok(());
                    }
                }
                _ = shutdown.wait() => return Ok(()),
                Some(arrival) = arrivals.recv() => console.arrived(arrival, &mut arrivals),
                _ = signals.cont.recv() => {
                    held.retake(&mut screen)?;
                    console.dirty = true;
                }
                _ = signals.term.recv() => return Ok(()),
                _ = signals.hup.recv() => return Ok(()),
                _ = signals.int.recv() => return Ok(()),
                _ = tick.tick() => {}
            }
            console.frame(&mut screen)?;
        }
    }
    .await;

    stop.store(true, Ordering::Relaxed);
    drop(rx);
    drop(go_on);
    give_back(input, screen, held).await;
    result
}

/// The signals the console ends on (SIGTERM, SIGHUP, SIGINT) and goes on
/// after (SIGCONT).
struct Signals {
    term: Signal,
    hup: Signal,
    int: Signal,
    cont: Signal,
}

impl Signals {
    fn take() -> io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            // Ctrl-C is a key in raw mode; a SIGINT sent from outside ends
            // the console like SIGTERM, giving the terminal back.
            int: signal(SignalKind::interrupt())?,
            // Continued after a stop, by Ctrl-Z's `fg` or from outside:
            // the terminal is taken again and drawn whole.
            cont: signal(SignalKind::from_raw(libc::SIGCONT))?,
        })
    }
}

/// Whether the console goes on after what it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Go,
    Quit,
}

/// The terminal as the input's handling needs it.
struct Terminal<'a> {
    held: &'a Held,
    screen: &'a mut Screen,
    /// Tells the input thread to read again after Ctrl-Z.
    go_on: &'a std::sync::mpsc::Sender<()>,
}

/// The console while it runs: the [`App`], the state it draws, the
/// service its keys act through, and what the last frame drew.
struct Console {
    app: App,
    state: Arc<Mutex<FleetState>>,
    service: Service,
    queue: Queue,
    theme_dirs: Vec<PathBuf>,
    reads: Reads,
    /// Something changed that the next frame draws.
    dirty: bool,
    drawn: Drawn,
}

impl Console {
    /// The console for `fleet` as `opts` say, and the receiving end of
    /// its queue.
    fn new(
        fleet: Arc<Fleet>,
        state: Arc<Mutex<FleetState>>,
        opts: RunOptions,
    ) -> (Console, mpsc::UnboundedReceiver<Arrival>) {
        let mut app = App::new(fleet, opts.theme);
        app.title = opts.title;
        app.banner = opts.banner;
        app.read_only = opts.read_only;
        let (queue, arrivals) = Queue::new();
        let service = Service::new(
            app.fleet().clone(),
            opts.db,
            crate::host::whoami(),
            queue.clone(),
        );
        let console = Console {
            app,
            state,
            service,
            queue,
            theme_dirs: opts.theme_dirs,
            reads: Reads::default(),
            dirty: true,
            drawn: Drawn {
                headline: None,
                second: i64::MIN,
                area: Rect::default(),
                at: None,
            },
        };
        (console, arrivals)
    }

    /// Takes what the input thread sent.
    async fn input(
        &mut self,
        input: Option<Input>,
        terminal: Terminal<'_>,
        sigcont: &mut Signal,
    ) -> io::Result<Step> {
        match input {
            Some(Input::Event(Event::Key(key)))
                if crate::keys::REDRAW.matches(&key) && key.kind != KeyEventKind::Release =>
            {
                // Whatever put the terminal out of step with what was
                // drawn, the next frame is drawn whole.
                terminal.screen.clear()?;
                self.dirty = true;
            }
            Some(Input::Event(Event::Key(key))) => return Ok(self.key(key)),
            Some(Input::Event(Event::Mouse(m))) => self.mouse(&m),
            Some(Input::Event(Event::Resize(..))) => self.dirty = true,
            Some(Input::Event(_)) => {}
            Some(Input::Suspend) => {
                if terminal.held.can_suspend() {
                    terminal.held.suspend(terminal.screen)?;
                    // The SIGCONT that continued it is taken in here, not
                    // drawn for a second time.
                    let _ = tokio::time::timeout(FRAME_INTERVAL, sigcont.recv()).await;
                } else {
                    self.app.now_ms = now_ms();
                    self.app.notify(CANNOT_SUSPEND, true);
                }
                let _ = terminal.go_on.send(());
                self.dirty = true;
            }
            Some(Input::Failed(e)) => return Err(e),
            None => return Err(io::Error::other("the keyboard input thread stopped")),
        }
        Ok(Step::Go)
    }

    /// Hands `key` to the app, then starts what it asked for: a confirmed
    /// action, a check, a reading, a theme.
    fn key(&mut self, key: KeyEvent) -> Step {
        let app = &mut self.app;
        app.now_ms = now_ms();
        let action = app.handle_key(key, &lock(&self.state));
        if action == Action::Quit {
            return Step::Quit;
        }
        if let Some(confirmed) = app.take_confirmed() {
            match self.service.perform(confirmed) {
                Ok(said) => app.notify(said, false),
                Err(why) => app.notify(why, true),
            }
        }
        if let Some((token, intent)) = app.take_check() {
            self.service.prepare(token, intent);
        }
        if let Some(load) = app.take_releases_wanted() {
            self.service.load(load);
        }
        if let Some(index) = app.take_available_wanted() {
            self.service.available(index);
        }
        if let Some(name) = app.take_theme_wanted() {
            load_theme(name, self.theme_dirs.clone(), &self.queue);
        }
        self.dirty = true;
        Step::Go
    }

    /// A click or the wheel, unless the screen is too small to use.
    fn mouse(&mut self, m: &MouseEvent) {
        let state = lock(&self.state);
        let (app, area) = (&mut self.app, self.drawn.area);
        self.dirty |= match Gesture::of(m) {
            _ if too_small::too_small(area) => false,
            Some(Gesture::Up) => app.apply(Action::Up, &state) != Action::None,
            Some(Gesture::Down) => app.apply(Action::Down, &state) != Action::None,
            Some(Gesture::Click { column, row }) => app.click(column, row, area, &state),
            None => false,
        };
    }

    /// Takes in `arrival`, and whatever else has arrived, before drawing.
    fn arrived(&mut self, arrival: Arrival, arrivals: &mut mpsc::UnboundedReceiver<Arrival>) {
        self.app.now_ms = now_ms();
        self.reads.arrived(&arrival);
        self.app.arrive(arrival);
        while let Ok(more) = arrivals.try_recv() {
            self.reads.arrived(&more);
            self.app.arrive(more);
        }
        self.dirty = true;
    }

    /// Starts a reading the view wants, then draws a frame if one is due
    /// and the last is at least [`FRAME_INTERVAL`] old (the next tick
    /// draws otherwise).
    fn frame(&mut self, screen: &mut Screen) -> io::Result<()> {
        self.reads.maybe_read(&self.app, &self.service);
        if self.drawn.at.is_some_and(|t| t.elapsed() < FRAME_INTERVAL) {
            return Ok(());
        }
        let now = now_ms();
        let headline = lock(&self.state).headline_generation();
        let due = self.dirty
            || self.drawn.headline != Some(headline)
            || self.drawn.second != now.div_euclid(1000);
        if !due {
            return Ok(());
        }
        draw(screen, &mut self.app, &self.state, now, &mut self.drawn)?;
        self.dirty = false;
        Ok(())
    }
}

/// Gives the terminal back once the input thread has stopped reading.
async fn give_back(input: JoinHandle<()>, mut screen: Screen, held: Held) {
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
    if screen.show_cursor().is_ok() {
        drop(screen);
    } else {
        std::mem::forget(screen);
    }
    drop(held);
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
    fn arrived(&mut self, arrival: &Arrival) {
        use super::load::Loaded;
        match arrival {
            // Completion's readings are not the view's.
            Arrival::Loaded(Ok(Loaded::Releases(_) | Loaded::Available { .. })) => {}
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
        queue.post(Arrival::Theme { name, result });
    });
}

/// Renders a frame into memory with `state` locked, then writes what
/// changed with it unlocked.
fn draw(
    screen: &mut Screen,
    app: &mut App,
    state: &Mutex<FleetState>,
    now: i64,
    drawn: &mut Drawn,
) -> io::Result<()> {
    screen.autoresize()?;
    {
        let state = lock(state);
        app.now_ms = now;
        app.recheck(&state);
        let mut frame = screen.get_frame();
        drawn.area = frame.area();
        super::draw(&mut frame, app, &state);
        drawn.headline = Some(state.headline_generation());
    }
    screen.apply_buffer()?;
    drawn.second = now.div_euclid(1000);
    drawn.at = Some(Instant::now());
    Ok(())
}

fn lock(state: &Mutex<FleetState>) -> std::sync::MutexGuard<'_, FleetState> {
    // A prober that panicked while holding the lock leaves usable data.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `key` is Ctrl-Z.
fn is_suspend(key: &KeyEvent) -> bool {
    crate::keys::SUSPEND.matches(key) && key.kind != KeyEventKind::Release
}

/// Reads terminal events on a thread so that nothing async ever blocks on
/// the terminal. Stops when `stop` is set or the receiver is gone. After
/// Ctrl-Z it reads nothing until told to go on through `told`.
fn spawn_input(
    tx: mpsc::Sender<Input>,
    stop: Arc<AtomicBool>,
    told: std::sync::mpsc::Receiver<()>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rollguard-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let input = match event::poll(INPUT_POLL) {
                    Ok(false) => continue,
                    Ok(true) => match event::read() {
                        Ok(Event::Key(k)) if is_suspend(&k) => Input::Suspend,
                        Ok(ev) => Input::Event(ev),
                        Err(e) => Input::Failed(e),
                    },
                    Err(e) => Input::Failed(e),
                };
                let (suspend, failed) = (
                    matches!(input, Input::Suspend),
                    matches!(input, Input::Failed(_)),
                );
                if tx.blocking_send(input).is_err() || failed {
                    return;
                }
                if suspend && told.recv().is_err() {
                    return;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn ctrl_z_is_taken_for_suspending() {
        let k = |c, m| KeyEvent::new(KeyCode::Char(c), m);
        assert!(is_suspend(&k('z', KeyModifiers::CONTROL)));
        assert!(is_suspend(&k(
            'z',
            KeyModifiers::CONTROL | KeyModifiers::SHIFT
        )));
        assert!(!is_suspend(&k('z', KeyModifiers::NONE)));
        assert!(!is_suspend(&k('c', KeyModifiers::CONTROL)));
        let mut release = k('z', KeyModifiers::CONTROL);
        release.kind = KeyEventKind::Release;
        assert!(!is_suspend(&release));
    }
}
