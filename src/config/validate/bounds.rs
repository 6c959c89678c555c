//! The durations each duration key accepts ([`Bounds`]), both ends
//! included.

use std::time::Duration;

/// The durations a key accepts, both ends included.
#[derive(Clone, Copy)]
pub(super) struct Bounds {
    /// The shortest allowed.
    pub(super) min: Duration,
    /// The longest allowed.
    pub(super) max: Duration,
}

/// Units of the bounds.
const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
pub(super) const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// `[console] refresh`: a summary recomputed at least hourly.
pub(super) const REFRESH: Bounds = Bounds {
    min: Duration::from_millis(100),
    max: HOUR,
};
/// `[console] retention`: up to ten years of probe history.
pub(super) const RETENTION: Bounds = Bounds {
    min: MINUTE,
    max: Duration::from_secs(3650 * 86_400),
};
/// `ssh.connect_timeout`.
pub(super) const CONNECT_TIMEOUT: Bounds = Bounds {
    min: SECOND,
    max: Duration::from_secs(600),
};
/// `[app.health] interval`: a probe runs at least daily.
pub(super) const INTERVAL: Bounds = Bounds {
    min: Duration::from_millis(100),
    max: DAY,
};
/// `[app.health] initial_delay`.
pub(super) const INITIAL_DELAY: Bounds = Bounds {
    min: Duration::ZERO,
    max: DAY,
};
/// `[app.health] deadline`: a new instance gets at least a second.
pub(super) const DEADLINE: Bounds = Bounds {
    min: SECOND,
    max: Duration::from_secs(7 * 86_400),
};
/// Waits within a rollout: `monitor`, `pause`, `step_pause`, `confirm_window`.
pub(super) const ROLLOUT_WAIT: Bounds = Bounds {
    min: Duration::ZERO,
    max: Duration::from_secs(7 * 86_400),
};
/// `[[app.probe]] timeout`.
pub(super) const PROBE_TIMEOUT: Bounds = Bounds {
    min: MS,
    max: Duration::from_secs(600),
};
/// `[app.process] grace` and `[app.docker] stop_timeout`.
pub(super) const STOP_WAIT: Bounds = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};
/// `[app.traffic] drain_timeout`.
pub(super) const DRAIN_TIMEOUT: Bounds = Bounds {
    min: Duration::ZERO,
    max: DAY,
};
