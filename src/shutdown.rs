//! The signal a long-running task stops on: a `watch` channel of `bool`
//! that turns `true` once, or whose sender is dropped. [`Shutdown`] is its
//! receiving end, with the waits every task's loop is made of (the next
//! tick of an interval, a pause, the signal itself), each of them ending
//! early when the signal comes.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Interval;

/// The receiving end of a shutdown signal. Cheap to clone; each clone
/// sees the signal.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// The signal `rx` carries.
    pub fn new(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown(rx)
    }

    /// Whether the signal is `true` now (without waiting); it is then
    /// marked seen, so [`Shutdown::wait`] waits for a later change.
    pub fn is_set(&mut self) -> bool {
        *self.0.borrow_and_update()
    }

    /// Returns once the signal changes to `true` or its sender is dropped.
    /// Cancel-safe: it can be one arm of a `tokio::select!`.
    pub async fn wait(&mut self) {
        loop {
            if self.0.changed().await.is_err() || *self.0.borrow_and_update() {
                return;
            }
        }
    }

    /// Waits for `every`'s next tick: `true` when it came, `false` when
    /// the signal came first (whichever is ready is picked at random when
    /// both are).
    pub async fn tick(&mut self, every: &mut Interval) -> bool {
        tokio::select! {
            _ = every.tick() => true,
            _ = self.wait() => false,
        }
    }

    /// Sleeps for `d`: `true` when it has passed, `false` when the signal
    /// came first.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.wait() => false,
        }
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown::new(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tick_comes_until_the_signal_is_sent() {
        let (tx, rx) = watch::channel(false);
        let mut shutdown = Shutdown::new(rx);
        let mut every = tokio::time::interval(Duration::from_millis(5));
        assert!(shutdown.tick(&mut every).await);
        assert!(shutdown.tick(&mut every).await);
        assert!(!shutdown.is_set());
        tx.send(true).unwrap();
        assert!(!shutdown.sleep(Duration::from_secs(3600)).await);
        assert!(shutdown.is_set());
    }

    #[tokio::test]
    async fn a_dropped_sender_is_the_signal() {
        let (tx, rx) = watch::channel(false);
        let mut shutdown = Shutdown::new(rx);
        assert!(shutdown.sleep(Duration::from_millis(10)).await);
        drop(tx);
        assert!(!shutdown.sleep(Duration::from_secs(3600)).await);
        shutdown.wait().await;
        assert!(!shutdown.is_set(), "the value stays what was last sent");
    }

    #[tokio::test]
    async fn false_sent_is_no_signal() {
        let (tx, rx) = watch::channel(false);
        let mut shutdown = Shutdown::new(rx);
        tx.send(false).unwrap();
        assert!(shutdown.sleep(Duration::from_millis(10)).await);
        tx.send(true).unwrap();
        shutdown.wait().await;
    }
}
