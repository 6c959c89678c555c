//! Which release of an app is good now, and when to record it again: the
//! pure decisions behind the monitor's record of healthy releases (a
//! release seen healthy on every instance is one a rollback may return to,
//! whoever started it).

use std::time::Duration;

use crate::model::{Verdict, Version};

/// The release every instance of an app runs, when every one of them is
/// healthy now. `instances` pairs each instance's version (`None`: not
/// known, or nothing runs) with its verdict, which is healthy only after
/// `success_threshold` passes in a row.
///
/// `None` for an app without instances, when any instance's version is
/// unknown, when they run different versions, or when any instance is not
/// healthy.
pub fn good_release<'a>(
    instances: impl IntoIterator<Item = (Option<&'a Version>, Verdict)>,
) -> Option<&'a Version> {
    let mut good: Option<&Version> = None;
    for (version, verdict) in instances {
        let version = version?;
        if verdict != Verdict::Healthy || good.is_some_and(|g| g != version) {
            return None;
        }
        good = Some(version);
    }
    good
}

/// When an app's good release is to be recorded: the first time it is
/// found good, then at most once every period per release. A clock that
/// moved by more than a period either way makes it due again.
#[derive(Clone, Debug)]
pub struct ReleaseMarks {
    every_ms: i64,
    /// Per app: the releases recorded and when.
    recorded: Vec<Vec<(Version, i64)>>,
}

impl ReleaseMarks {
    /// Marks for `apps` apps, recording each good release at most once
    /// every `every`.
    pub fn new(apps: usize, every: Duration) -> ReleaseMarks {
        ReleaseMarks {
            every_ms: i64::try_from(every.as_millis()).unwrap_or(i64::MAX),
            recorded: vec![Vec::new(); apps],
        }
    }

    /// Whether `version` of app `app`, found good at `now_ms`, is to be
    /// recorded now. False for an app outside the marks.
    pub fn due(&self, app: usize, version: &Version, now_ms: i64) -> bool {
        let Some(recorded) = self.recorded.get(app) else {
            return false;
        };
        match recorded.iter().find(|(v, _)| v == version) {
            None => true,
            Some((_, at)) => now_ms.abs_diff(*at) >= self.every_ms.unsigned_abs(),
        }
    }

    /// `version` of app `app` was recorded at `at_ms`. Releases recorded
    /// more than a period before are forgotten, so the marks stay small.
    pub fn recorded(&mut self, app: usize, version: &Version, at_ms: i64) {
        let every = self.every_ms.unsigned_abs();
        let Some(recorded) = self.recorded.get_mut(app) else {
            return;
        };
        recorded.retain(|(v, at)| v != version && at_ms.abs_diff(*at) < every);
        recorded.push((version.clone(), at_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn one_release_healthy_everywhere_is_good() {
        let v1 = v("v1");
        let got = good_release([
            (Some(&v1), Healthy),
            (Some(&v1), Healthy),
            (Some(&v1), Healthy),
        ]);
        assert_eq!(got, Some(&v1));
        assert_eq!(good_release([(Some(&v1), Healthy)]), Some(&v1));
    }

    #[test]
    fn an_instance_not_healthy_makes_nothing_good() {
        let v1 = v("v1");
        for bad in [Unknown, Unhealthy] {
            let got = good_release([(Some(&v1), Healthy), (Some(&v1), bad), (Some(&v1), Healthy)]);
            assert_eq!(got, None, "{bad:?}");
            // Wherever it sits.
            assert_eq!(good_release([(Some(&v1), bad), (Some(&v1), Healthy)]), None);
            assert_eq!(good_release([(Some(&v1), Healthy), (Some(&v1), bad)]), None);
        }
    }

    #[test]
    fn mixed_or_unknown_versions_make_nothing_good() {
        let (v1, v2) = (v("v1"), v("v2"));
        assert_eq!(
            good_release([
                (Some(&v1), Healthy),
                (Some(&v2), Healthy),
                (Some(&v1), Healthy)
            ]),
            None
        );
        assert_eq!(good_release([(Some(&v1), Healthy), (None, Healthy)]), None);
        assert_eq!(good_release([(None, Healthy)]), None);
        assert_eq!(good_release(std::iter::empty()), None);
    }

    #[test]
    fn marks_are_due_once_per_release_per_period() {
        let (v1, v2) = (v("v1"), v("v2"));
        let mut m = ReleaseMarks::new(2, Duration::from_secs(30));
        assert!(m.due(0, &v1, 1_000));
        m.recorded(0, &v1, 1_000);
        assert!(!m.due(0, &v1, 1_001));
        assert!(!m.due(0, &v1, 30_999));
        assert!(m.due(0, &v1, 31_000));
        // Other releases and other apps have their own marks.
        assert!(m.due(0, &v2, 1_001));
        assert!(m.due(1, &v1, 1_001));
        m.recorded(0, &v2, 2_000);
        assert!(!m.due(0, &v2, 2_500));
        assert!(!m.due(0, &v1, 2_500));
        // A clock set back by more than a period.
        assert!(m.due(0, &v2, 2_000 - 30_000));
        // Outside the fleet: never due, recording is ignored.
        assert!(!m.due(5, &v1, 0));
        m.recorded(5, &v1, 0);
    }

    #[test]
    fn marks_forget_old_releases() {
        let mut m = ReleaseMarks::new(1, Duration::from_secs(1));
        for i in 0..100 {
            m.recorded(0, &v(&format!("r{i}")), i * 2_000);
        }
        assert_eq!(m.recorded[0].len(), 1);
        assert!(m.due(0, &v("r0"), 198_000));
        assert!(!m.due(0, &v("r99"), 198_500));
    }
}
