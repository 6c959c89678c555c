//! The terminal as the console holds it. [`Held::take`] puts it in raw
//! mode on the alternate screen (with `--mouse`, reporting clicks and the
//! wheel too); dropping the [`Held`] gives it back as it was, and so does a
//! panic while it is held. [`Held::suspend`] is Ctrl-Z: the terminal given
//! back, the job stopped for the shell, taken again on `fg`.
//!
//! What reaches the terminal goes through [`LightBackend`], so that a
//! console over a slow link (SSH) stays light: a frame in which no cell
//! changed writes nothing, the cursor is hidden once rather than every
//! frame, a few unchanged cells between two changed ones are written again
//! when that is shorter than moving the cursor over them, and each frame
//! leaves in one write.

use std::fmt;
use std::io::{self, BufWriter, Stdout, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

use crossterm::{Command, cursor, queue, terminal};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell, CellDiffOption};
use ratatui::layout::{Position, Rect, Size};

use super::text;
use crate::host;

/// The console's terminal.
pub(crate) type Screen = Terminal<LightBackend<BufWriter<Stdout>>>;

/// Room for a whole frame of a large terminal, so that it leaves in one write.
const FRAME_BUFFER: usize = 256 * 1024;

/// Whether the terminal is held (what the panic hook gives back): 0 no,
/// 1 yes, 2 yes with the mouse reported.
static HELD: AtomicU8 = AtomicU8::new(0);

/// The terminal, held by the console: given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    mouse: bool,
    /// Whether a shell can take the terminal back on Ctrl-Z, as found at
    /// the start, and the parent it was found with.
    job_control: (bool, libc::pid_t),
}

impl Held {
    /// Raw mode, the alternate screen, the cursor hidden, and with `mouse`
    /// the reports of clicks and the wheel. Fails when standard output is
    /// not a terminal.
    pub(crate) fn take(mouse: bool) -> io::Result<(Held, Screen)> {
        install_panic_hook();
        let parent = host::parent_pid();
        // Fails when standard output is not a terminal, before anything is
        // written to it.
        terminal::enable_raw_mode()?;
        // From here on, dropping `held` gives the terminal back.
        HELD.store(1 + u8::from(mouse), Ordering::Relaxed);
        let held = Held {
            mouse,
            job_control: (job_control(), parent),
        };
        enter(mouse)?;
        let backend = LightBackend::new(BufWriter::with_capacity(FRAME_BUFFER, io::stdout()));
        let mut screen = Terminal::new(backend)?;
        screen.hide_cursor()?;
        // What was on the screen before goes.
        screen.clear()?;
        Ok((held, screen))
    }

    /// Whether Ctrl-Z can suspend the console: a shell of this session
    /// waits to take the terminal back and continue it with `fg`. Not so
    /// under `ssh -t host rollguard` (nothing could continue it) or when
    /// the shell that started it is gone.
    pub(crate) fn can_suspend(&self) -> bool {
        let parent = host::parent_pid();
        self.job_control.0 && parent == self.job_control.1
    }

    /// Ctrl-Z: gives the terminal back, stops this job (SIGTSTP to its
    /// process group, as the terminal itself would send), and once the
    /// shell continues it (`fg`) takes the terminal again
    /// ([`Held::retake`]). Returns after the job was continued.
    pub(crate) fn suspend(&self, screen: &mut Screen) -> io::Result<()> {
        screen.show_cursor()?;
        give_back(self.mouse)?;
        HELD.store(0, Ordering::Relaxed);
        // SIGTSTP's default action stops this group until SIGCONT, and
        // the call returns after that.
        host::signal_own_group(libc::SIGTSTP);
        self.retake(screen)
    }

    /// Takes the terminal again after the process was stopped and
    /// continued (by Ctrl-Z and `fg`, or from outside, when whatever ran
    /// meanwhile may have changed its modes and its screen), and clears it,
    /// so that the next frame is drawn whole.
    pub(crate) fn retake(&self, screen: &mut Screen) -> io::Result<()> {
        // Raw mode is set anew even if it was never left: crossterm skips
        // enabling it while it thinks it is on.
        terminal::disable_raw_mode()?;
        enter(self.mouse)?;
        HELD.store(1 + u8::from(self.mouse), Ordering::Relaxed);
        screen.hide_cursor()?;
        screen.clear()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if HELD.swap(0, Ordering::Relaxed) != 0 {
            let _ = give_back(self.mouse);
        }
    }
}

/// A plain screen shown while what the console will watch is being set up
/// (the demo's instances starting): the alternate screen with a few lines
/// on it, the terminal otherwise left as it is, so that Ctrl-C still
/// interrupts. Given back when dropped, unless handed over to the console
/// ([`SettingUp::hand_over`]), which then takes the same screen on without
/// a glimpse of the shell's in between.
#[derive(Debug)]
pub struct SettingUp {
    shown: bool,
}

impl SettingUp {
    /// Shows `lines`, one under the other; shows nothing when standard
    /// output is not a terminal.
    pub fn show(lines: &[&str]) -> SettingUp {
        use std::io::IsTerminal;
        let mut out = io::stdout();
        if !out.is_terminal() {
            return SettingUp { shown: false };
        }
        let mut shown = Ok(());
        let mut keep = |r: io::Result<()>| {
            if shown.is_ok() {
                shown = r;
            }
        };
        keep(queue!(
            out,
            terminal::EnterAlternateScreen,
            cursor::Hide,
            terminal::Clear(terminal::ClearType::All)
        ));
        let cols = terminal::size().map_or(80, |(cols, _)| cols);
        for (row, line) in setting_up_rows(lines, cols) {
            keep(queue!(
                out,
                cursor::MoveTo(1, row),
                crossterm::style::Print(line)
            ));
        }
        keep(out.flush());
        SettingUp { shown: true }
    }

    /// The console takes the screen over: it is not given back here.
    pub fn hand_over(mut self) {
        self.shown = false;
    }
}

impl Drop for SettingUp {
    fn drop(&mut self) {
        if self.shown {
            let mut out = io::stdout();
            let _ = queue!(out, terminal::LeaveAlternateScreen, cursor::Show);
            let _ = out.flush();
        }
    }
}

/// Where [`SettingUp::show`] puts `lines` on a screen `cols` wide: from
/// the second row, a blank row between two of them, each wrapped at
/// spaces by display width inside a margin of one column either side.
fn setting_up_rows(lines: &[&str], cols: u16) -> Vec<(u16, String)> {
    let width = usize::from(cols.saturating_sub(2)).max(1);
    let mut rows = Vec::new();
    let mut row = 1u16;
    for line in lines {
        for part in text::wrap(line, width, width) {
            rows.push((row, part));
            row = row.saturating_add(1);
        }
        row = row.saturating_add(1);
    }
    rows
}

/// Takes the terminal: raw mode, the alternate screen, the mouse.
fn enter(mouse: bool) -> io::Result<()> {
    terminal::enable_raw_mode()?;
    let mut out = io::stdout();
    queue!(out, terminal::EnterAlternateScreen)?;
    if mouse {
        queue!(out, MouseReports(true))?;
    }
    out.flush()
}

/// Gives the terminal back: every step is tried; the first failure is
/// returned.
fn give_back(mouse: bool) -> io::Result<()> {
    let mut out = io::stdout();
    let mut first = Ok(());
    let mut keep = |r: io::Result<()>| {
        if first.is_ok() {
            first = r;
        }
    };
    // Raw mode first, as ratatui's restore does.
    keep(terminal::disable_raw_mode());
    if mouse {
        keep(queue!(out, MouseReports(false)));
    }
    keep(queue!(out, terminal::LeaveAlternateScreen, cursor::Show));
    keep(out.flush());
    first
}

/// A panic while the terminal is held gives it back before the panic's
/// message is printed (after the hook that was there before).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            match HELD.swap(0, Ordering::Relaxed) {
                0 => {}
                held => {
                    let _ = give_back(held == 2);
                }
            }
            previous(info);
        }));
    });
}

/// Whether a process group of this session other than this one is an
/// ancestor of this process (a shell with job control, which can continue
/// this group after Ctrl-Z). Otherwise the group is orphaned: the kernel
/// discards a SIGTSTP sent to it, and nothing would continue it.
fn job_control() -> bool {
    let group = host::own_group();
    let Some(session) = host::session_of(0) else {
        return false;
    };
    let mut pid = host::parent_pid();
    // Ancestors in the same group (`cargo run`, a wrapper script).
    for _ in 0..64 {
        if pid <= 1 {
            return false;
        }
        let (Some(their_group), Some(their_session)) = (host::group_of(pid), host::session_of(pid))
        else {
            return false;
        };
        if their_session != session {
            return false;
        }
        if their_group != group {
            return true;
        }
        match parent_of(pid) {
            Some(p) => pid = p,
            None => return false,
        }
    }
    false
}

/// The parent of process `pid`, from `/proc` (read once, at the start).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    crate::host::stat(i64::from(pid)).map(|s| s.ppid)
}

/// xterm's reports of button presses and releases (mode 1000), the wheel
/// included, in SGR form (mode 1006), which carries any column. Not the
/// reports of every movement (modes 1002 and 1003), which would send bytes
/// over the link each time the mouse moves.
#[derive(Clone, Copy, Debug)]
struct MouseReports(bool);

impl Command for MouseReports {
    fn write_ansi(&self, f: &mut impl fmt::Write) -> fmt::Result {
        f.write_str(if self.0 {
            "\x1b[?1000h\x1b[?1006h"
        } else {
            "\x1b[?1006l\x1b[?1000l"
        })
    }
}

/// crossterm's backend, lighter on the link: a frame with no changed cell
/// writes nothing (not even the colour reset crossterm's backend ends each
/// frame with), the cursor is hidden once rather than with every frame,
/// and a frame's cells are written at [`Backend::flush`], so a frame leaves
/// in one write when `W` buffers it. Between two changed cells of a row,
/// the unchanged ones are written again (in the same style, one column
/// wide each) when that takes fewer bytes than the cursor movement over
/// them: it remembers what it wrote since the screen was last cleared
/// whole. It never asks the terminal where its cursor is (that would wait
/// for the answer, and race the input thread for it): the cursor is where
/// it was last put.
#[derive(Debug)]
pub struct LightBackend<W: Write> {
    inner: CrosstermBackend<W>,
    cursor_hidden: bool,
    cursor: Position,
    /// What is on the screen, as this backend wrote it since it was last
    /// cleared whole; `None` while that is not known.
    shadow: Option<Buffer>,
}

impl<W: Write> LightBackend<W> {
    /// A backend that writes to `writer`.
    pub fn new(writer: W) -> Self {
        LightBackend {
            inner: CrosstermBackend::new(writer),
            cursor_hidden: false,
            cursor: Position::ORIGIN,
            shadow: None,
        }
    }

    /// The screen of `area` was cleared: every cell blank.
    fn cleared(&mut self, area: Rect) {
        self.shadow = Some(Buffer::empty(area));
    }
}

/// The cells of `shadow` at columns `xs` of row `y` (between a cell just
/// written, `before`, and the next changed one), when writing them again
/// takes fewer bytes than moving the cursor to the end of the range: each
/// one column wide, in `before`'s style, as drawn.
fn gap_fill(
    shadow: &Buffer,
    before: &Cell,
    xs: std::ops::Range<u16>,
    y: u16,
) -> Option<Vec<(u16, u16, Cell)>> {
    let digits = |n: u16| n.checked_ilog10().unwrap_or(0) as usize + 1;
    // ESC [ row ; column H, both counted from 1.
    let jump = 4 + digits(y.saturating_add(1)) + digits(xs.end.saturating_add(1));
    let mut bytes = 0;
    let mut fill = Vec::new();
    for x in xs {
        let c = shadow.cell((x, y))?;
        let same_style = c.fg == before.fg
            && c.bg == before.bg
            && c.underline_color == before.underline_color
            && c.modifier == before.modifier;
        if !same_style || c.diff_option != CellDiffOption::None || text::width(c.symbol()) != 1 {
            return None;
        }
        bytes += c.symbol().len();
        if bytes >= jump {
            return None;
        }
        fill.push((x, y, c.clone()));
    }
    Some(fill)
}

impl<W: Write> Backend for LightBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut content = content.peekable();
        if content.peek().is_none() {
            return Ok(());
        }
        let Some(shadow) = self.shadow.as_mut() else {
            return self.inner.draw(content);
        };
        let mut cells: Vec<(u16, u16, Cell)> = Vec::new();
        for (x, y, cell) in content {
            let fill = cells.last().and_then(|(px, py, before)| {
                let gap = *py == y && x > px.saturating_add(1) && text::width(before.symbol()) == 1;
                gap.then(|| gap_fill(shadow, before, px + 1..x, y))
                    .flatten()
            });
            cells.extend(fill.into_iter().flatten());
            cells.push((x, y, cell.clone()));
        }
        self.inner.draw(cells.iter().map(|(x, y, c)| (*x, *y, c)))?;
        for (x, y, c) in cells {
            match shadow.cell_mut((x, y)) {
                Some(on_screen) => *on_screen = c,
                // Drawn beyond the screen it knows: it knows no more.
                None => {
                    self.shadow = None;
                    break;
                }
            }
        }
        Ok(())
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if !self.cursor_hidden {
            self.inner.hide_cursor()?;
            self.cursor_hidden = true;
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()?;
        self.cursor_hidden = false;
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(self.cursor)
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.cursor = position.into();
        self.inner.set_cursor_position(self.cursor)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.shadow = None;
        self.inner.clear_region(clear_type)?;
        if clear_type == ClearType::All {
            let size = self.inner.size()?;
            self.cleared(Rect::new(0, 0, size.width, size.height));
        }
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_up_screen_wraps_its_lines_at_spaces() {
        let lines = [
            "rollguard · demo",
            "Setting up the demo: nine instances start behind nginx",
            "Ctrl-C stops it.",
        ];
        assert_eq!(
            setting_up_rows(&lines, 30),
            [
                (1, "rollguard · demo".to_string()),
                (3, "Setting up the demo: nine".into()),
                (4, "instances start behind nginx".into()),
                (6, "Ctrl-C stops it.".into()),
            ]
        );
        assert_eq!(setting_up_rows(&lines, 100).len(), 3);
    }

    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;

    /// Counts the writes that reach it; clones share what they count.
    #[derive(Clone, Default)]
    struct Link(std::rc::Rc<std::cell::RefCell<(Vec<u8>, usize)>>);

    impl Write for Link {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut l = self.0.borrow_mut();
            l.0.extend_from_slice(buf);
            l.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Link {
        fn bytes(&self) -> Vec<u8> {
            self.0.borrow().0.clone()
        }
        fn writes(&self) -> usize {
            self.0.borrow().1
        }
    }

    fn backend() -> (LightBackend<BufWriter<Link>>, Link) {
        let link = Link::default();
        (LightBackend::new(BufWriter::new(link.clone())), link)
    }

    #[test]
    fn a_frame_without_changes_writes_nothing() {
        let (mut b, link) = backend();
        b.hide_cursor().unwrap();
        assert_eq!(link.bytes(), b"\x1b[?25l");
        for _ in 0..5 {
            b.draw(std::iter::empty()).unwrap();
            b.hide_cursor().unwrap();
            Backend::flush(&mut b).unwrap();
        }
        assert_eq!(link.bytes(), b"\x1b[?25l");
    }

    #[test]
    fn a_frame_leaves_in_one_write() {
        let (mut b, link) = backend();
        b.hide_cursor().unwrap();
        let before = link.writes();
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 3));
        buf.set_string(0, 0, "checkout", ratatui::style::Style::new());
        buf.set_string(4, 2, "▁▂▃", ratatui::style::Style::new());
        let previous = Buffer::empty(buf.area);
        b.draw(previous.diff(&buf).into_iter()).unwrap();
        b.hide_cursor().unwrap();
        assert_eq!(link.writes(), before);
        Backend::flush(&mut b).unwrap();
        assert_eq!(link.writes(), before + 1);
        let text = String::from_utf8_lossy(&link.bytes()).into_owned();
        assert!(
            text.contains("checkout") && text.contains("▁▂▃"),
            "{text:?}"
        );
    }

    #[test]
    fn the_cursor_is_hidden_once_and_shown_when_asked() {
        let (mut b, link) = backend();
        b.hide_cursor().unwrap();
        b.hide_cursor().unwrap();
        b.show_cursor().unwrap();
        b.hide_cursor().unwrap();
        assert_eq!(link.bytes(), b"\x1b[?25l\x1b[?25h\x1b[?25l");
        assert_eq!(b.get_cursor_position().unwrap(), Position::ORIGIN);
        b.set_cursor_position((3, 4)).unwrap();
        assert_eq!(b.get_cursor_position().unwrap(), Position::new(3, 4));
    }

    /// What `b` writes for `frame` drawn over `before` (both at `area`).
    fn written(
        b: &mut LightBackend<BufWriter<Link>>,
        link: &Link,
        before: &Buffer,
        frame: &Buffer,
    ) -> String {
        let from = link.bytes().len();
        b.draw(before.diff(frame).into_iter()).unwrap();
        Backend::flush(b).unwrap();
        String::from_utf8_lossy(&link.bytes()[from..]).into_owned()
    }

    #[test]
    fn short_gaps_are_written_again_long_ones_jumped() {
        let area = Rect::new(0, 0, 40, 3);
        let style = ratatui::style::Style::new().fg(ratatui::style::Color::Green);
        let mut first = Buffer::empty(area);
        first.set_string(10, 1, "▁▂▃▄▅▆▇█▁▂▃▄▅▆▇█", style);
        let (mut b, link) = backend();
        b.cleared(area);
        written(&mut b, &link, &Buffer::empty(area), &first);
        // Two bars change with one unchanged between them, and one far off.
        let mut second = first.clone();
        second.set_string(10, 1, "█", style);
        second.set_string(12, 1, "█", style);
        second.set_string(30, 1, "█", style);
        let out = written(&mut b, &link, &first, &second);
        // Row 2 (1-based), column 11: then "█▂█" in one run, then a jump.
        assert!(out.starts_with("\x1b[2;11H"), "{out:?}");
        assert!(out.contains("█▂█"), "the gap is written again: {out:?}");
        assert!(
            out.contains("\x1b[2;31H█"),
            "the long gap is jumped: {out:?}"
        );
        assert_eq!(out.matches('H').count(), 2, "{out:?}");

        // A cell of another style in the gap is jumped, not rewritten.
        let mut third = second.clone();
        let red = ratatui::style::Style::new().fg(ratatui::style::Color::Red);
        third.set_string(14, 1, "x", red);
        let mut fourth = third.clone();
        written(&mut b, &link, &second, &third);
        fourth.set_string(13, 1, "█", style);
        fourth.set_string(15, 1, "█", style);
        let out = written(&mut b, &link, &third, &fourth);
        assert!(out.contains("\x1b[2;16H"), "{out:?}");
    }

    #[test]
    fn without_a_known_screen_nothing_is_written_again() {
        let area = Rect::new(0, 0, 20, 2);
        let (mut b, link) = backend();
        let mut frame = Buffer::empty(area);
        frame.set_string(0, 0, "a", ratatui::style::Style::new());
        frame.set_string(2, 0, "b", ratatui::style::Style::new());
        let out = written(&mut b, &link, &Buffer::empty(area), &frame);
        assert!(out.contains("\x1b[1;3Hb"), "{out:?}");
    }

    #[test]
    fn mouse_reports_are_clicks_and_the_wheel_only() {
        let mut on = String::new();
        MouseReports(true).write_ansi(&mut on).unwrap();
        assert_eq!(on, "\x1b[?1000h\x1b[?1006h");
        let mut off = String::new();
        MouseReports(false).write_ansi(&mut off).unwrap();
        assert_eq!(off, "\x1b[?1006l\x1b[?1000l");
    }

    #[test]
    fn the_parent_is_read_from_proc() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert_eq!(parent_of(me), Some(host::parent_pid()));
        assert_eq!(parent_of(-5), None);
    }
}
