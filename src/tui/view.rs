//! What fills the console's screen: one of its views, and in the
//! Deployment view, which deployment. Plain values every part of the
//! console names (the keymap, the components, the mouse) without the
//! [`App`](super::App) that holds them.

/// What fills the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One row per app.
    Fleet,
    /// One row per (instance, probe) of the app at this fleet index, its
    /// releases and its recent deployments.
    App(usize),
    /// Every app's deployments and rollbacks, newest first.
    History,
    /// One deployment: its batches, instances, "why" card and timeline
    /// (the Rollout view of an app's rollout, or one opened from History).
    Deployment(Shown),
    /// The live audit log of every app.
    Events,
    /// rollguard's log and a rollout worker's.
    Logs,
}

/// Which deployment the Deployment view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// This one (opened from History).
    Id(i64),
    /// The newest deployment of the app at this fleet index, read again
    /// while shown (the Rollout view, `R`): one started meanwhile takes
    /// its place.
    Newest(usize),
}
