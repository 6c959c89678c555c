//! The batched probe-result writer. It exists so probes and the UI never
//! wait for the disk: producers push results into an unbounded in-memory
//! channel ([`ResultSender::send`] never blocks), and one dedicated thread
//! owning its own [`Store`] writes them in batches — one transaction per
//! up to [`BATCH_MAX`] rows or [`FLUSH_INTERVAL`], whichever comes first —
//! and prunes rows older than the retention, a chunk at a time.
//!
//! Failures are counted, not fatal: a batch that fails (disk full, lock
//! held past the busy timeout) is logged, kept and retried on the next
//! rounds, and dropped (counted in `failed`) after [`MAX_TRIES`] tries.
//! Memory stays bounded: at most [`MAX_PENDING`] results wait in memory;
//! beyond that `send` drops new results (counted in `failed`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::queries::PRUNE_CHUNK;
use super::{Store, StoreError};
use crate::model::{ProbeResult, now_ms};

/// Most rows written in one transaction.
pub const BATCH_MAX: usize = 5_000;
/// Longest a received result waits before its batch is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// How often old results are pruned (also once at start).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Tries per batch before it is dropped and counted as failed. This bound
/// (with [`MAX_PENDING`]) keeps a broken disk from growing memory forever.
pub const MAX_TRIES: u32 = 3;
/// Most results held in memory (queued or awaiting retry); `send` drops
/// results beyond it. About 200 bytes each, so roughly 50 MB at most.
pub const MAX_PENDING: u64 = 250_000;

/// Counters of a [`ResultWriter`], readable from any thread. Always
/// `received = written + failed + pending` (up to a moment's skew).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Results handed to `send`.
    pub received: u64,
    /// Results committed to the database.
    pub written: u64,
    /// Results dropped: write failed [`MAX_TRIES`] times, backlog over
    /// [`MAX_PENDING`], or sent after shutdown.
    pub failed: u64,
    /// Results received but not yet written or dropped.
    pub pending: u64,
    /// The last write or prune error, if any happened.
    pub last_error: Option<String>,
}

enum Msg {
    Result(ProbeResult),
    Shutdown,
}

/// State shared by the senders and the writer thread.
#[derive(Default)]
struct Shared {
    received: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    /// Set when shutdown starts; later sends are counted as failed.
    closed: AtomicBool,
    /// Whether the over-backlog warning was logged (reset once writes
    /// succeed again), so a long outage logs once, not per result.
    overflow_warned: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn pending(&self) -> u64 {
        // Load the outputs first: they never exceed `received`.
        let done = self.written.load(Relaxed) + self.failed.load(Relaxed);
        self.received.load(Relaxed).saturating_sub(done)
    }

    fn stats(&self) -> WriterStats {
        let written = self.written.load(Relaxed);
        let failed = self.failed.load(Relaxed);
        let received = self.received.load(Relaxed);
        WriterStats {
            received,
            written,
            failed,
            pending: received.saturating_sub(written + failed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }
}

/// A cheap, cloneable handle for pushing probe results to a
/// [`ResultWriter`] from any thread or task.
#[derive(Clone)]
pub struct ResultSender {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl ResultSender {
    /// Queues `result` for writing. Never blocks and never waits for the
    /// disk. If the writer is shut down or [`MAX_PENDING`] results are
    /// already waiting, the result is dropped and counted as failed.
    pub fn send(&self, result: ProbeResult) {
        let s = &self.shared;
        s.received.fetch_add(1, Relaxed);
        if s.closed.load(Relaxed) {
            s.failed.fetch_add(1, Relaxed);
            return;
        }
        if s.pending() > MAX_PENDING {
            s.failed.fetch_add(1, Relaxed);
            if !s.overflow_warned.swap(true, Relaxed) {
                let msg = format!(
                    "over {MAX_PENDING} probe results waiting for the history database; \
                     dropping new ones until it catches up"
                );
                tracing::warn!("{msg}");
                // try_lock: never block a producer for a status message.
                if let Ok(mut last) = s.last_error.try_lock() {
                    *last = Some(msg);
                }
            }
            return;
        }
        if self.tx.send(Msg::Result(result)).is_err() {
            // The writer thread is gone.
            s.failed.fetch_add(1, Relaxed);
        }
    }

    /// The writer's counters now.
    pub fn stats(&self) -> WriterStats {
        self.shared.stats()
    }
}

impl std::fmt::Debug for ResultSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultSender")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Owns the writer thread. Clone [`ResultWriter::sender`] for producers;
/// call [`ResultWriter::shutdown`] to flush and stop. Dropping it without
/// `shutdown` asks the thread to flush and stop but does not wait.
#[derive(Debug)]
pub struct ResultWriter {
    sender: ResultSender,
    thread: Option<JoinHandle<()>>,
}

impl ResultWriter {
    /// Opens the database at `path` (on the calling thread, so open errors
    /// are returned here) and starts the writer thread, which owns that
    /// connection. Results older than `retention` are pruned at start and
    /// every [`PRUNE_INTERVAL`].
    pub fn spawn(path: PathBuf, retention: Duration) -> Result<ResultWriter, StoreError> {
        let store = Store::open(&path)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rollguard-store-writer".into())
            .spawn(move || run(store, rx, thread_shared, retention))
            .map_err(|source| StoreError::Io {
                path,
                action: "start the writer thread for",
                source,
            })?;
        Ok(ResultWriter {
            sender: ResultSender { tx, shared },
            thread: Some(thread),
        })
    }

    /// A handle for producers.
    pub fn sender(&self) -> ResultSender {
        self.sender.clone()
    }

    /// Same as [`ResultSender::send`].
    pub fn send(&self, result: ProbeResult) {
        self.sender.send(result);
    }

    /// The counters now.
    pub fn stats(&self) -> WriterStats {
        self.sender.stats()
    }

    /// Writes everything received so far, stops the thread and waits for
    /// it; returns the final counters. Blocks (up to the retries of a
    /// failing disk): from async code, call it in `spawn_blocking`. Results
    /// sent afterwards through remaining [`ResultSender`]s are counted as
    /// failed.
    pub fn shutdown(mut self) -> WriterStats {
        self.close();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::warn!("history writer thread panicked");
            self.sender
                .shared
                .set_error("history writer thread panicked".into());
        }
        self.stats()
    }

    fn close(&self) {
        self.sender.shared.closed.store(true, Relaxed);
        let _ = self.sender.tx.send(Msg::Shutdown);
    }
}

impl Drop for ResultWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.close();
        }
    }
}

/// A batch awaiting its write, with the tries spent on it.
struct Batch {
    rows: Vec<ProbeResult>,
    tries: u32,
}

/// What writing the queue came to.
enum Flush {
    /// Everything queued is written.
    Done,
    /// The front batch failed and was kept for a retry.
    Retry,
    /// The front batch failed its last try and was dropped.
    Dropped,
}

/// Age-based pruning, one chunk per round so inserts are not held up.
struct Pruner {
    retention_ms: i64,
    next_at: Instant,
    cutoff: Option<i64>,
    deleted: usize,
}

impl Pruner {
    fn step(&mut self, store: &Store, shared: &Shared) {
        if self.cutoff.is_none() && Instant::now() >= self.next_at {
            self.cutoff = Some(now_ms().saturating_sub(self.retention_ms));
            self.next_at = Instant::now() + PRUNE_INTERVAL;
            self.deleted = 0;
        }
        let Some(cutoff) = self.cutoff else { return };
        match store.prune_chunk(cutoff, PRUNE_CHUNK) {
            Ok(n) => {
                self.deleted += n;
                if n < PRUNE_CHUNK {
                    self.cutoff = None;
                    if self.deleted > 0 {
                        tracing::debug!(deleted = self.deleted, "pruned old probe results");
                    }
                }
            }
            Err(e) => {
                tracing::warn!("{e}");
                shared.set_error(e.to_string());
                self.cutoff = None;
            }
        }
    }

    /// How long the thread may sleep before the next prune is due.
    fn idle_wait(&self) -> Duration {
        if self.cutoff.is_some() {
            Duration::ZERO
        } else {
            self.next_at.saturating_duration_since(Instant::now())
        }
    }
}

/// The writer thread's body.
fn run(mut store: Store, rx: Receiver<Msg>, shared: Arc<Shared>, retention: Duration) {
    let mut queue: VecDeque<Batch> = VecDeque::new();
    let mut pruner = Pruner {
        retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
        next_at: Instant::now(),
        cutoff: None,
        deleted: 0,
    };
    let mut stopping = false;
    while !stopping {
        pruner.step(&store, &shared);

        // Wait for a first result: briefly if there is work to retry or
        // prune, else until the next prune is due (a shutdown wakes us).
        let first_wait = if queue.is_empty() {
            pruner.idle_wait()
        } else {
            FLUSH_INTERVAL
        };
        let mut rows = Vec::new();
        match rx.recv_timeout(first_wait) {
            Ok(Msg::Result(r)) => rows.push(r),
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => stopping = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Then gather more for up to FLUSH_INTERVAL or BATCH_MAX rows.
        if !rows.is_empty() {
            let deadline = Instant::now() + FLUSH_INTERVAL;
            while rows.len() < BATCH_MAX {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(Msg::Result(r)) => rows.push(r),
                    Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            queue.push_back(Batch { rows, tries: 0 });
        }
        flush(&mut store, &mut queue, &shared);
    }

    // Shutting down: take whatever is already in the channel, write it all.
    let mut rows = Vec::new();
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Result(r) = msg {
            rows.push(r);
            if rows.len() == BATCH_MAX {
                queue.push_back(Batch {
                    rows: std::mem::take(&mut rows),
                    tries: 0,
                });
            }
        }
    }
    if !rows.is_empty() {
        queue.push_back(Batch { rows, tries: 0 });
    }
    loop {
        match flush(&mut store, &mut queue, &shared) {
            Flush::Done => break,
            Flush::Retry => std::thread::sleep(FLUSH_INTERVAL),
            Flush::Dropped => {
                // The store is failing; do not make shutdown wait through
                // every remaining batch's tries.
                let left: usize = queue.drain(..).map(|b| b.rows.len()).sum();
                if left > 0 {
                    tracing::warn!(
                        dropped = left,
                        "history writer stopping; results not written"
                    );
                }
                shared.failed.fetch_add(left as u64, Relaxed);
                break;
            }
        }
    }
    // Anything that raced in after the drain above is dropped with the
    // channel: count it, so `pending` ends at zero.
    let late = rx
        .try_iter()
        .filter(|m| matches!(m, Msg::Result(_)))
        .count();
    shared.failed.fetch_add(late as u64, Relaxed);
}

/// Writes queued batches oldest first, stopping at the first failure.
fn flush(store: &mut Store, queue: &mut VecDeque<Batch>, shared: &Shared) -> Flush {
    while let Some(batch) = queue.front_mut() {
        match store.insert_results(&batch.rows) {
            Ok(n) => {
                shared.written.fetch_add(n as u64, Relaxed);
                shared.overflow_warned.store(false, Relaxed);
                queue.pop_front();
            }
            Err(e) => {
                batch.tries += 1;
                let n = batch.rows.len();
                shared.set_error(e.to_string());
                if batch.tries >= MAX_TRIES {
                    tracing::warn!(rows = n, tries = batch.tries, "dropping probe results: {e}");
                    shared.failed.fetch_add(n as u64, Relaxed);
                    queue.pop_front();
                    return Flush::Dropped;
                }
                tracing::warn!(
                    rows = n,
                    tries = batch.tries,
                    "will retry writing probe results: {e}"
                );
                return Flush::Retry;
            }
        }
    }
    Flush::Done
}
