//! A failure budget: the total of counted failures of one probe on one
//! instance within a window, whether in a row or not. Where the health
//! module's `ProbeCounter` forgives a failure as soon as a pass follows it, the budget keeps it until the window ends, so a probe
//! that fails every other check is caught too.

use std::fmt;

/// Counted failures within one window, against the most allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureBudget {
    /// Counted failures so far.
    pub failures: u32,
    /// Failures that spend the budget (at least 1).
    pub max_failures: u32,
}

impl FailureBudget {
    /// An unspent budget of `max_failures` (0 is treated as 1).
    pub const fn new(max_failures: u32) -> Self {
        FailureBudget {
            failures: 0,
            max_failures: if max_failures == 0 { 1 } else { max_failures },
        }
    }

    /// Records one result. A pass changes nothing; a failure with
    /// `counts = false` (the grace after a start) is not counted either.
    /// Returns whether the budget is now spent.
    pub fn observe(&mut self, ok: bool, counts: bool) -> bool {
        if !ok && counts {
            self.failures = self.failures.saturating_add(1);
        }
        self.spent()
    }

    /// `max_failures` failures were counted.
    pub const fn spent(&self) -> bool {
        self.failures >= self.max_failures
    }
}

impl fmt::Display for FailureBudget {
    /// "2 of 3 failures".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} failures", self.failures, self.max_failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_failures_add_up() {
        let mut b = FailureBudget::new(2);
        assert!(!b.observe(false, true));
        for _ in 0..5 {
            assert!(!b.observe(true, true));
        }
        assert_eq!(b.failures, 1);
        assert!(b.observe(false, true));
        assert_eq!(b.to_string(), "2 of 2 failures");
    }

    #[test]
    fn grace_failures_are_not_counted() {
        let mut b = FailureBudget::new(1);
        for _ in 0..3 {
            assert!(!b.observe(false, false));
        }
        assert_eq!(b.failures, 0);
        assert!(b.observe(false, true));
    }

    #[test]
    fn a_zero_budget_acts_as_one() {
        let mut b = FailureBudget::new(0);
        assert_eq!(b.max_failures, 1);
        assert!(!b.spent());
        assert!(b.observe(false, true));
    }

    #[test]
    fn says_how_much_is_spent() {
        let mut b = FailureBudget::new(3);
        assert_eq!(b.to_string(), "0 of 3 failures");
        b.observe(false, true);
        b.observe(false, true);
        assert_eq!(b.to_string(), "2 of 3 failures");
    }
}
