//! Conditions. (in progress)
/// A parsed condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition;
