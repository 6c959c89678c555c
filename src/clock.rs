//! Times as people read them: a stored time (ms since the epoch) written
//! in this machine's local time, at the precision each place shows. Pure
//! but for the time zone; `?` for a number that is no time.

/// `YYYY-MM-DD HH:MM:SS` local time of `ms` (as `history` and `events`
/// print it), or `?`.
pub fn local_time(ms: i64) -> String {
    local(ms, "%Y-%m-%d %H:%M:%S")
}

/// `MM-DD HH:MM:SS` local time of `ms` (the console's History), or `?`.
pub fn day_time(ms: i64) -> String {
    local(ms, "%m-%d %H:%M:%S")
}

/// `HH:MM:SS` local time of `ms`, or `?`.
pub fn clock_time(ms: i64) -> String {
    local(ms, "%H:%M:%S")
}

/// The local time of `ms` in `format`, or `?` when `ms` is no time.
fn local(ms: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format(format).to_string())
        .unwrap_or_else(|| "?".into())
}
