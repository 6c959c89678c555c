//! monitor (stub)
