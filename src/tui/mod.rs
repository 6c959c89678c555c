//! tui (stub)
