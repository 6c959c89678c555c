//! One probe on one instance: consecutive passes and failures, and the
//! verdict they add up to. The smallest unit of health judgement; the
//! [`Tracker`](super::Tracker) keeps one per (app, instance, probe).

use crate::model::Verdict;

/// Consecutive passes and failures of one probe on one instance.
///
/// The verdict turns [`Verdict::Healthy`] after `success_threshold`
/// consecutive passes and [`Verdict::Unhealthy`] after `failure_threshold`
/// consecutive failures that count; in between it keeps its previous value.
/// It starts [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCounter {
    /// Passes in a row, since the last failure.
    pub consecutive_ok: u32,
    /// Counted failures in a row, since the last pass.
    pub consecutive_fail: u32,
    /// What the counts add up to.
    pub verdict: Verdict,
}

impl Default for ProbeCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl ProbeCounter {
    /// A fresh counter: no results, verdict unknown.
    pub const fn new() -> Self {
        ProbeCounter {
            consecutive_ok: 0,
            consecutive_fail: 0,
            verdict: Verdict::Unknown,
        }
    }

    /// Records one result and returns the (possibly unchanged) verdict.
    ///
    /// `counts = false` is the grace period after a (re)start: a failure
    /// still breaks a run of passes but does not advance toward
    /// [`Verdict::Unhealthy`]. Thresholds of 0 are treated as 1.
    pub fn observe(
        &mut self,
        ok: bool,
        counts: bool,
        success_threshold: u32,
        failure_threshold: u32,
    ) -> Verdict {
        if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            if self.consecutive_ok >= success_threshold.max(1) {
                self.verdict = Verdict::Healthy;
            }
        } else {
            self.consecutive_ok = 0;
            if counts {
                self.consecutive_fail = self.consecutive_fail.saturating_add(1);
                if self.consecutive_fail >= failure_threshold.max(1) {
                    self.verdict = Verdict::Unhealthy;
                }
            }
        }
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_unknown() {
        assert_eq!(ProbeCounter::new().verdict, Verdict::Unknown);
        assert_eq!(ProbeCounter::default(), ProbeCounter::new());
    }

    #[test]
    fn healthy_after_success_threshold_passes() {
        let mut c = ProbeCounter::new();
        assert_eq!(c.observe(true, true, 3, 2), Verdict::Unknown);
        assert_eq!(c.observe(true, true, 3, 2), Verdict::Unknown);
        assert_eq!(c.observe(true, true, 3, 2), Verdict::Healthy);
        assert_eq!(c.consecutive_ok, 3);
    }

    #[test]
    fn unhealthy_after_failure_threshold_failures() {
        let mut c = ProbeCounter::new();
        c.observe(true, true, 1, 3);
        assert_eq!(c.verdict, Verdict::Healthy);
        assert_eq!(c.observe(false, true, 1, 3), Verdict::Healthy);
        assert_eq!(c.observe(false, true, 1, 3), Verdict::Healthy);
        assert_eq!(c.observe(false, true, 1, 3), Verdict::Unhealthy);
        assert_eq!(c.consecutive_fail, 3);
        assert_eq!(c.consecutive_ok, 0);
    }

    #[test]
    fn a_pass_interrupts_a_run_of_failures() {
        let mut c = ProbeCounter::new();
        c.observe(false, true, 1, 3);
        c.observe(false, true, 1, 3);
        c.observe(true, true, 2, 3);
        assert_eq!(c.consecutive_fail, 0);
        c.observe(false, true, 2, 3);
        c.observe(false, true, 2, 3);
        assert_eq!(c.verdict, Verdict::Unknown);
        c.observe(false, true, 2, 3);
        assert_eq!(c.verdict, Verdict::Unhealthy);
    }

    #[test]
    fn a_failure_interrupts_a_run_of_passes() {
        let mut c = ProbeCounter::new();
        c.observe(true, true, 2, 3);
        c.observe(false, true, 2, 3);
        c.observe(true, true, 2, 3);
        assert_eq!(c.verdict, Verdict::Unknown);
        c.observe(true, true, 2, 3);
        assert_eq!(c.verdict, Verdict::Healthy);
    }

    #[test]
    fn grace_failures_do_not_advance_toward_unhealthy() {
        let mut c = ProbeCounter::new();
        for _ in 0..10 {
            assert_eq!(c.observe(false, false, 1, 2), Verdict::Unknown);
        }
        assert_eq!(c.consecutive_fail, 0);
        // They still break a run of passes.
        c.observe(true, false, 2, 2);
        c.observe(false, false, 2, 2);
        assert_eq!(c.consecutive_ok, 0);
        // Once the grace is over, failures count again.
        c.observe(false, true, 2, 2);
        assert_eq!(c.verdict, Verdict::Unknown);
        c.observe(false, true, 2, 2);
        assert_eq!(c.verdict, Verdict::Unhealthy);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut c = ProbeCounter::new();
        assert_eq!(c.observe(true, true, 0, 0), Verdict::Healthy);
        assert_eq!(c.observe(false, true, 0, 0), Verdict::Unhealthy);
    }
}
