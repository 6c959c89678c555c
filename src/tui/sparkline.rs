//! A latency sparkline in which failures look different from slow
//! successes: passing probes are bars `▁`..`█` scaled to their latency
//! (relative to the slowest pass shown), failed probes are a `✖` in the
//! theme's `fail_bar` color. A distinct glyph, not only a color, so that
//! failures stand out without color and for red-green color blindness. ratatui's own `Sparkline` cannot color
//! single bars, hence this small widget.

use std::collections::VecDeque;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::theme::Theme;
use crate::state::Sample;

/// Bars from lowest to highest.
pub const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// The mark of a failed probe (in the `fail_bar` color).
pub const FAIL_BAR: char = '✖';

/// The most recent samples, one cell each, newest on the right.
#[derive(Clone, Copy, Debug)]
pub struct LatencySparkline<'a> {
    samples: &'a VecDeque<Sample>,
    theme: &'a Theme,
}

impl<'a> LatencySparkline<'a> {
    /// A sparkline of `samples` (oldest first) colored by `theme`.
    pub fn new(samples: &'a VecDeque<Sample>, theme: &'a Theme) -> Self {
        LatencySparkline { samples, theme }
    }

    /// The glyph of each of the last `width` samples, oldest first.
    pub fn glyphs(&self, width: usize) -> Vec<(char, bool)> {
        let skip = self.samples.len().saturating_sub(width);
        let shown = || self.samples.iter().skip(skip);
        let max = shown()
            .filter(|s| s.ok)
            .map(|s| s.latency_ms)
            .fold(0.0f32, f32::max);
        shown()
            .map(|s| {
                if !s.ok {
                    (FAIL_BAR, false)
                } else {
                    (BARS[level(s.latency_ms, max)], true)
                }
            })
            .collect()
    }

    /// Exactly `width` cells: blank padding on the left, then the bars.
    pub fn to_line(&self, width: usize) -> Line<'static> {
        let glyphs = self.glyphs(width);
        let mut spans = Vec::new();
        let pad = width - glyphs.len();
        if pad > 0 {
            spans.push(Span::raw(" ".repeat(pad)));
        }
        let ok = Style::new().fg(self.theme.ok_bar);
        let fail = Style::new().fg(self.theme.fail_bar);
        let mut run = String::new();
        let mut run_ok = true;
        for (c, is_ok) in glyphs {
            if is_ok != run_ok && !run.is_empty() {
                let style = if run_ok { ok } else { fail };
                spans.push(Span::styled(std::mem::take(&mut run), style));
            }
            run_ok = is_ok;
            run.push(c);
        }
        if !run.is_empty() {
            spans.push(Span::styled(run, if run_ok { ok } else { fail }));
        }
        Line::from(spans)
    }
}

/// Bar index 0..=7 for a latency relative to the slowest pass.
fn level(latency: f32, max: f32) -> usize {
    if max.is_nan() || max <= 0.0 || !latency.is_finite() {
        return 0;
    }
    let l = (latency / max * BARS.len() as f32).ceil() as usize;
    l.clamp(1, BARS.len()) - 1
}

impl Widget for LatencySparkline<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let line = self.to_line(area.width as usize);
        buf.set_line(area.x, area.y, &line, area.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(v: &[(f32, bool)]) -> VecDeque<Sample> {
        v.iter()
            .enumerate()
            .map(|(i, &(l, ok))| Sample {
                at_ms: i as i64,
                latency_ms: l,
                ok,
            })
            .collect()
    }

    #[test]
    fn scales_passes_and_marks_failures() {
        let t = Theme::default();
        let s = samples(&[(10.0, true), (80.0, true), (5000.0, false), (40.0, true)]);
        let g = LatencySparkline::new(&s, &t).glyphs(10);
        assert_eq!(
            g,
            vec![('▁', true), ('█', true), (FAIL_BAR, false), ('▄', true)]
        );
    }

    #[test]
    fn line_is_padded_to_width_and_keeps_the_newest() {
        let t = Theme::default();
        let s = samples(&[(1.0, true), (1.0, false), (1.0, true)]);
        let line = LatencySparkline::new(&s, &t).to_line(5);
        assert_eq!(line.width(), 5);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "  █✖█");
        assert_eq!(line.spans[2].style.fg, Some(t.fail_bar));
        let line = LatencySparkline::new(&s, &t).to_line(2);
        assert_eq!(line.width(), 2);
        assert_eq!(line.spans[0].style.fg, Some(t.fail_bar));
    }

    #[test]
    fn degenerate_inputs() {
        let t = Theme::default();
        let empty = VecDeque::new();
        assert_eq!(LatencySparkline::new(&empty, &t).to_line(3).width(), 3);
        assert_eq!(LatencySparkline::new(&empty, &t).to_line(0).width(), 0);
        let s = samples(&[(0.0, true), (f32::NAN, true)]);
        assert_eq!(
            LatencySparkline::new(&s, &t).glyphs(4),
            vec![('▁', true); 2]
        );
        let mut buf = Buffer::empty(Rect::new(0, 0, 1, 1));
        LatencySparkline::new(&s, &t).render(Rect::new(0, 0, 0, 0), &mut buf);
    }
}
