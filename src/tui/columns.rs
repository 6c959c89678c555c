//! Fitting table columns into a width: columns are dropped in a set order
//! when they do not fit, then the remaining space is shared out. Gives the
//! same, predictable layout at every size, down to a single column.

/// What a column needs.
#[derive(Clone, Copy, Debug)]
pub struct Col {
    /// Narrowest useful width.
    pub min: u16,
    /// Width it grows to before any column grows beyond its own `pref`.
    pub pref: u16,
    /// Widest useful width (`u16::MAX` takes all that is left).
    pub max: u16,
    /// 0: never dropped; otherwise higher numbers are dropped first.
    pub drop: u8,
}

impl Col {
    /// A column that grows from `min` to `pref`, then to `max`.
    pub const fn new(min: u16, pref: u16, max: u16, drop: u8) -> Col {
        Col {
            min,
            pref,
            max,
            drop,
        }
    }

    /// A column of fixed width that is never dropped.
    pub const fn fixed(w: u16) -> Col {
        Col::new(w, w, w, 0)
    }
}

/// Widths for `cols` within `width`, with `spacing` between columns; a
/// dropped column gets 0. Extra space first brings columns (in the given
/// order) up to their `pref`, then up to their `max`.
pub fn fit(width: u16, spacing: u16, cols: &[Col]) -> Vec<u16> {
    let mut active: Vec<bool> = vec![true; cols.len()];
    let need = |active: &[bool]| -> u32 {
        let n = active.iter().filter(|a| **a).count() as u32;
        let mins: u32 = cols
            .iter()
            .zip(active)
            .filter(|(_, a)| **a)
            .map(|(c, _)| u32::from(c.min))
            .sum();
        mins + n.saturating_sub(1) * u32::from(spacing)
    };
    while need(&active) > u32::from(width) {
        let victim = cols
            .iter()
            .enumerate()
            .filter(|(i, c)| active[*i] && c.drop > 0)
            .max_by_key(|(i, c)| (c.drop, *i))
            .map(|(i, _)| i);
        match victim {
            Some(i) => active[i] = false,
            None => break,
        }
    }
    let mut widths: Vec<u16> = cols
        .iter()
        .zip(&active)
        .map(|(c, a)| if *a { c.min } else { 0 })
        .collect();
    let mut left = u32::from(width).saturating_sub(need(&active));
    for target in [|c: &Col| c.pref, |c: &Col| c.max] {
        for (i, c) in cols.iter().enumerate() {
            if !active[i] || left == 0 {
                continue;
            }
            let grow = u32::from(target(c).max(c.min).saturating_sub(widths[i])).min(left);
            widths[i] += grow as u16;
            left -= grow;
        }
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_in_order_then_grows() {
        let cols = [
            Col::fixed(10),
            Col::new(5, 20, 20, 0),
            Col::new(8, 30, 30, 2),
            Col::new(10, u16::MAX, u16::MAX, 3),
        ];
        assert_eq!(fit(100, 1, &cols), vec![10, 20, 30, 37]);
        assert_eq!(fit(36, 1, &cols), vec![10, 5, 8, 10]);
        assert_eq!(fit(35, 1, &cols), vec![10, 15, 8, 0]);
        assert_eq!(fit(20, 1, &cols), vec![10, 9, 0, 0]);
        assert_eq!(fit(5, 1, &cols), vec![10, 5, 0, 0]);
        assert_eq!(fit(0, 1, &cols), vec![10, 5, 0, 0]);
    }

    #[test]
    fn preferred_widths_come_first() {
        let cols = [Col::new(8, 16, 30, 2), Col::new(12, 40, u16::MAX, 3)];
        assert_eq!(fit(41, 1, &cols), vec![16, 24]);
        assert_eq!(fit(61, 1, &cols), vec![20, 40]);
        assert_eq!(fit(101, 1, &cols), vec![30, 70]);
    }
}

/// The first visible row of a table of `len` rows showing `visible` rows,
/// so that `selected` is on screen, moving as little as possible from
/// `previous`.
pub fn scroll_offset(previous: usize, selected: usize, visible: usize, len: usize) -> usize {
    if visible == 0 {
        return selected.min(len.saturating_sub(1));
    }
    let mut offset = previous;
    if selected < offset {
        offset = selected;
    } else if selected >= offset + visible {
        offset = selected + 1 - visible;
    }
    offset.min(len.saturating_sub(visible))
}

#[cfg(test)]
mod scroll_tests {
    use super::scroll_offset;

    #[test]
    fn scrolls_minimally() {
        assert_eq!(scroll_offset(0, 5, 10, 100), 0);
        assert_eq!(scroll_offset(0, 10, 10, 100), 1);
        assert_eq!(scroll_offset(20, 15, 10, 100), 15);
        assert_eq!(scroll_offset(95, 99, 10, 100), 90);
        assert_eq!(scroll_offset(3, 2, 10, 5), 0);
        assert_eq!(scroll_offset(0, 4, 0, 5), 4);
    }
}
