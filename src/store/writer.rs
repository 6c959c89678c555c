//! The batched probe-result writer. It exists so probes and the UI never
//! wait for the disk: producers push results into an unbounded in-memory
//! queue ([`ResultSender::send`] never blocks), and one dedicated thread
//! owning its own [`Store`] writes them in batches — one transaction per
//! up to [`BATCH_MAX`] rows or [`FLUSH_INTERVAL`], whichever comes first —
//! and prunes rows older than the retention, a chunk at a time.
//!
//! The queue is a vector behind a mutex that the thread swaps out whole;
//! a producer wakes the thread only when it waits for the first result of
//! a batch or for a full one, so ten thousand results a second cost a few
//! wake-ups, not one each.
//!
//! Failures are counted, not fatal: a batch that fails (disk full, lock
//! held past the busy timeout) is logged, kept and retried on the next
//! rounds, and dropped (counted in `failed`) after [`MAX_TRIES`] tries.
//! Memory stays bounded: at most [`MAX_PENDING`] results wait in memory;
//! beyond that `send` drops new results (counted in `failed`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::queries::PRUNE_CHUNK;
use super::{Location, Store, StoreError};
use crate::model::{ProbeResult, now_ms};

/// Most rows written in one transaction: a batch of [`FLUSH_INTERVAL`] at
/// 20,000 results a second.
pub const BATCH_MAX: usize = 20_000;
/// Longest a received result waits before its batch is written: consoles
/// that read the history look once a second, so a result reaches them
/// within about two. Each row also goes into the `(app, instance, probe,
/// at_ms)` index, and once a probe has a hundred rows or so its next row
/// goes into an index page of its own, rewritten whole by each commit that
/// touches it: a probe run every second has that page written once a
/// second.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The writer's page cache, in KiB. The index pages where each probe's
/// next row goes are read on every batch; with thousands of probes they
/// outgrow SQLite's default of 2 MiB.
pub const CACHE_KIB: i64 = 16 * 1024;
/// WAL pages written before the writer copies them back into the file. A
/// page changed by many batches is copied once per checkpoint, so
/// checkpoints farther apart copy less (SQLite's default is 1,000).
pub const CHECKPOINT_PAGES: i64 = 10_000;
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

/// What the thread waits for, so producers know when to wake it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// Not waiting (writing, pruning, or about to look at the queue).
    No,
    /// Any result.
    First,
    /// A full batch ([`BATCH_MAX`] results); the rest waits for its time.
    Full,
}

/// Results received and not yet taken by the thread.
struct Inbox {
    rows: Vec<ProbeResult>,
    /// When the first of `rows` arrived.
    since: Option<Instant>,
    /// Set by shutdown; later sends are counted as failed.
    closed: bool,
    waiting: Waiting,
}

/// State shared by the senders and the writer thread.
struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
    received: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    /// Whether the over-backlog warning was logged (reset once writes
    /// succeed again), so a long outage logs once, not per result.
    overflow_warned: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            inbox: Mutex::new(Inbox {
                rows: Vec::new(),
                since: None,
                closed: false,
                waiting: Waiting::No,
            }),
            wake: Condvar::new(),
            received: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            overflow_warned: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }
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

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A cheap, cloneable handle for pushing probe results to a
/// [`ResultWriter`] from any thread or task.
#[derive(Clone)]
pub struct ResultSender {
    shared: Arc<Shared>,
}

impl ResultSender {
    /// Queues `result` for writing. Never blocks and never waits for the
    /// disk (it takes a mutex that is only ever held for a push or a
    /// swap). If the writer is shut down or [`MAX_PENDING`] results are
    /// already waiting, the result is dropped and counted as failed.
    pub fn send(&self, result: ProbeResult) {
        let s = &self.shared;
        s.received.fetch_add(1, Relaxed);
        let mut inbox = s.inbox();
        if inbox.closed {
            drop(inbox);
            s.failed.fetch_add(1, Relaxed);
            return;
        }
        if s.pending() > MAX_PENDING {
            drop(inbox);
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
        inbox.rows.push(result);
        if inbox.since.is_none() {
            inbox.since = Some(Instant::now());
        }
        let wake = match inbox.waiting {
            Waiting::No => false,
            Waiting::First => true,
            Waiting::Full => inbox.rows.len() >= BATCH_MAX,
        };
        if wake {
            inbox.waiting = Waiting::No;
            drop(inbox);
            s.wake.notify_one();
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
    /// Opens the history at `location` (on the calling thread, so open
    /// errors are returned here) and starts the writer thread, which owns that
    /// connection. Results older than `retention` are pruned at start and
    /// every [`PRUNE_INTERVAL`].
    pub fn spawn(location: &Location, retention: Duration) -> Result<ResultWriter, StoreError> {
        let store = Store::open_at(location)?;
        let path = store.path().to_path_buf();
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        let location = location.clone();
        let thread = std::thread::Builder::new()
            .name("rollguard-store-writer".into())
            .spawn(move || run(store, &location, &thread_shared, retention))
            .map_err(|source| StoreError::Io {
                path,
                action: "start the writer thread for",
                source,
            })?;
        Ok(ResultWriter {
            sender: ResultSender { shared },
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
        let s = &self.sender.shared;
        s.inbox().closed = true;
        s.wake.notify_one();
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

/// Waits for results and takes them: until the first arrives (at most
/// `first_wait`), then until [`FLUSH_INTERVAL`] after it or a full batch.
/// Returns what was taken (perhaps nothing) and whether shutdown began;
/// once it has, everything still queued is taken.
fn take(shared: &Shared, first_wait: Duration) -> (Vec<ProbeResult>, bool) {
    let mut inbox = shared.inbox();
    let until = Instant::now() + first_wait;
    inbox = wait_while(shared, inbox, until, Waiting::First, |i| i.rows.is_empty());
    if let Some(since) = inbox.since {
        let until = since + FLUSH_INTERVAL;
        inbox = wait_while(shared, inbox, until, Waiting::Full, |i| {
            i.rows.len() < BATCH_MAX
        });
    }
    inbox.waiting = Waiting::No;
    inbox.since = None;
    let capacity = inbox.rows.len().min(BATCH_MAX);
    let rows = std::mem::replace(&mut inbox.rows, Vec::with_capacity(capacity));
    (rows, inbox.closed)
}

/// Waits, saying how (`waiting`, so producers know when to wake the
/// thread), while `more` holds, until `until` or shutdown.
fn wait_while<'a>(
    shared: &'a Shared,
    mut inbox: MutexGuard<'a, Inbox>,
    until: Instant,
    waiting: Waiting,
    more: impl Fn(&Inbox) -> bool,
) -> MutexGuard<'a, Inbox> {
    while more(&inbox) && !inbox.closed {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        inbox.waiting = waiting;
        inbox = shared
            .wake
            .wait_timeout(inbox, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    inbox
}

/// Queues `rows` as batches of at most [`BATCH_MAX`], each in the order of
/// the `(app, instance, probe, at_ms)` index: one probe's rows of a batch
/// then go into its index page one after the other, while it is cached.
fn enqueue(queue: &mut VecDeque<Batch>, mut rows: Vec<ProbeResult>) {
    rows.sort_by(|a, b| {
        let name = |x: &std::sync::Arc<str>, y: &std::sync::Arc<str>| {
            if std::sync::Arc::ptr_eq(x, y) {
                std::cmp::Ordering::Equal
            } else {
                x.cmp(y)
            }
        };
        name(&a.key.app, &b.key.app)
            .then_with(|| name(&a.key.instance, &b.key.instance))
            .then_with(|| name(&a.key.probe, &b.key.probe))
            .then(a.at_ms.cmp(&b.at_ms))
    });
    while rows.len() > BATCH_MAX {
        let rest = rows.split_off(BATCH_MAX);
        queue.push_back(Batch { rows, tries: 0 });
        rows = rest;
    }
    if !rows.is_empty() {
        queue.push_back(Batch { rows, tries: 0 });
    }
}

/// The writer thread's body.
fn run(mut store: Store, location: &Location, shared: &Shared, retention: Duration) {
    for (pragma, value) in [
        ("cache_size", -CACHE_KIB),
        ("wal_autocheckpoint", CHECKPOINT_PAGES),
    ] {
        if let Some(Err(e)) = store.sqlite().map(|c| c.pragma_update(None, pragma, value)) {
            // Only slower without it.
            tracing::warn!("history writer: cannot set {pragma}: {e}");
        }
    }
    let mut queue: VecDeque<Batch> = VecDeque::new();
    let mut pruner = Pruner {
        retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
        next_at: Instant::now(),
        cutoff: None,
        deleted: 0,
    };
    loop {
        pruner.step(&store, shared);

        // Wait for a first result: briefly if there is work to retry or
        // prune, else until the next prune is due (a shutdown wakes us).
        // Then gather more for up to FLUSH_INTERVAL or BATCH_MAX rows.
        let first_wait = if queue.is_empty() {
            pruner.idle_wait()
        } else {
            FLUSH_INTERVAL
        };
        let (rows, stopping) = take(shared, first_wait);
        enqueue(&mut queue, rows);
        if stopping {
            break;
        }
        flush(&mut store, &mut queue, shared);
        reconnect(&mut store, location);
    }

    // Shutting down: everything received is queued; write it all. Sends
    // from now on see `closed` and count as failed.
    loop {
        match flush(&mut store, &mut queue, shared) {
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
}

/// Opens the history again when the store's connection ended (a
/// PostgreSQL server that restarted): the batches kept for a retry are
/// then written through the new connection.
fn reconnect(store: &mut Store, location: &Location) {
    if !store.is_broken() {
        return;
    }
    match Store::open_at(location) {
        Ok(s) => {
            tracing::info!("history writer: connected to the history again");
            *store = s;
        }
        Err(e) => tracing::warn!("history writer: cannot connect to the history yet: {e}"),
    }
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
                let n = batch.rows.len();
                shared.set_error(e.to_string());
                if store.is_broken() {
                    // The server is away: the batch waits, untried, for
                    // the connection again (memory is bounded by
                    // MAX_PENDING, beyond which new results are dropped
                    // and counted).
                    tracing::warn!(rows = n, "the history is unreachable; results wait: {e}");
                    return Flush::Retry;
                }
                batch.tries += 1;
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
