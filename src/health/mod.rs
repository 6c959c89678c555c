//! health (stub)
