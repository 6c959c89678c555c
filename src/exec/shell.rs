//! Shell quoting and templates. (stub, replaced by the exec work)

/// Quotes `s` for POSIX sh.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
