//! How an attempt went ([`Attempt`]: what its answer means, in one line),
//! when a failed notification is tried again, and when it is given up.
//! Pure: the sender asks these with the time and the attempt's answer;
//! every way of sending (HTTP, a command, SMTP) words its attempt here.
//!
//! Attempt N (from 1) that fails is tried again after
//! `min(BACKOFF_FIRST * 2^(N-1), BACKOFF_MAX)`, until the next try would
//! start later than the receiver's `retry_for` after the notification was
//! made, or [`MAX_ATTEMPTS`] were made. A receiver that refuses the
//! request itself (a 4xx other than 408 and 429: a wrong URL or key) is
//! not tried again.

use std::time::Duration;

/// The wait after the first failed attempt.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Attempts made at most, whatever `retry_for` says.
pub const MAX_ATTEMPTS: u32 = 50;

/// What an attempt's answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// The receiver took it.
    Delivered,
    /// It may work later (no answer, a timeout, 5xx, 408, 429, a command
    /// that failed).
    Retry,
    /// It will not work as configured (4xx).
    Refused,
}

/// What an HTTP status means.
pub fn judge_status(status: u16) -> Judgement {
    match status {
        200..=299 => Judgement::Delivered,
        408 | 429 => Judgement::Retry,
        400..=499 => Judgement::Refused,
        _ => Judgement::Retry,
    }
}

/// The wait after failed attempt `attempts` (from 1).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    BACKOFF_FIRST
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_MAX)
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    /// Give it up.
    GiveUp,
}

/// After failed attempt `attempts` of a notification made at
/// `created_ms`, judged `judgement`, at `now_ms`, for a receiver that
/// tries for `retry_for`.
pub fn after_failure(
    judgement: Judgement,
    attempts: u32,
    created_ms: i64,
    now_ms: i64,
    retry_for: Duration,
) -> Next {
    if judgement == Judgement::Refused || attempts >= MAX_ATTEMPTS {
        return Next::GiveUp;
    }
    let at = now_ms.saturating_add(backoff(attempts).as_millis() as i64);
    let until = created_ms.saturating_add(retry_for.as_millis().min(i64::MAX as u128) as i64);
    if at > until {
        Next::GiveUp
    } else {
        Next::RetryAt(at)
    }
}

/// The header that names a notification, the same on every attempt, so a
/// receiver can tell a repeat.
pub const DELIVERY_HEADER: &str = "X-Rollguard-Delivery";

/// How an attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// What it means.
    pub judgement: Judgement,
    /// What came back, in one line: "HTTP 500: oops", "timed out after
    /// 2s", "exit 0: ok". No secret, no control character.
    pub answer: String,
}

/// A timeout, in words.
pub fn timed_out(timeout: Duration) -> Attempt {
    Attempt {
        judgement: Judgement::Retry,
        answer: format!(
            "no answer within {} (timeout)",
            crate::config::format_duration(timeout)
        ),
    }
}

/// An error and its causes, one after the other.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(0), BACKOFF_FIRST);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn answers_are_judged_and_retries_are_bounded() {
        assert_eq!(judge_status(204), Judgement::Delivered);
        assert_eq!(judge_status(500), Judgement::Retry);
        assert_eq!(judge_status(429), Judgement::Retry);
        assert_eq!(judge_status(404), Judgement::Refused);
        assert_eq!(judge_status(302), Judgement::Retry);
        let hour = Duration::from_secs(3600);
        assert_eq!(
            after_failure(Judgement::Retry, 1, 0, 10_000, hour),
            Next::RetryAt(11_000)
        );
        assert_eq!(
            after_failure(Judgement::Retry, 3, 0, 10_000, hour),
            Next::RetryAt(14_000)
        );
        // The next try would start after retry_for.
        assert_eq!(
            after_failure(Judgement::Retry, 3, 0, 3_599_000, hour),
            Next::GiveUp
        );
        assert_eq!(
            after_failure(Judgement::Retry, 1, 0, 0, Duration::ZERO),
            Next::GiveUp
        );
        assert_eq!(
            after_failure(Judgement::Refused, 1, 0, 0, hour),
            Next::GiveUp
        );
        assert_eq!(
            after_failure(Judgement::Retry, MAX_ATTEMPTS, 0, 0, Duration::MAX),
            Next::GiveUp
        );
    }
}
