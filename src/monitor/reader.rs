//! Reading probe results that are already stored into the console state:
//! the recent past at start (so sparklines, success rates and verdicts
//! show at once, and show what every other console on the history shows),
//! and, while another process holds the prober's lease, what it writes,
//! by row id about once a second. The state is locked per chunk of rows,
//! never while the history is read, so drawing never waits for the disk.

use std::sync::Arc;

use super::{Ctx, SharedStore, with_store};
use crate::model::{ProbeResult, now_ms};
use crate::state::RATE_WINDOW_MS;
use crate::store::follow::Names;

/// Rows read per query (and observed per lock of the state).
pub const READ_CHUNK: usize = 20_000;

/// Most rows of the recent past read at start: a fleet with more results
/// in the last [`RATE_WINDOW_MS`] starts from a shorter past.
pub const PRELOAD_MAX: usize = 250_000;

/// Where reading stands: the last row id read, and the names read so far
/// (kept, so each name is allocated once, not once per row).
#[derive(Default)]
pub(super) struct Follow {
    last_id: i64,
    names: Names,
}

impl Follow {
    /// Reads the recent past (the last [`RATE_WINDOW_MS`], at most
    /// [`PRELOAD_MAX`] rows) into the state, not counting it as seen. When
    /// the history cannot be read, everything is read as new later.
    pub(super) async fn preload(ctx: &Arc<Ctx>, store: &SharedStore) -> Follow {
        let (db, s) = (ctx.db.clone(), store.clone());
        let start = tokio::task::spawn_blocking(move || {
            with_store(&db, &s, |s| {
                s.results_start(now_ms() - RATE_WINDOW_MS, PRELOAD_MAX)
                    .map_err(|e| e.message())
            })
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let mut follow = Follow::default();
        match start {
            Ok(from) => {
                follow.last_id = from;
                follow.read(ctx, store, false).await;
            }
            Err(e) => tracing::warn!("cannot read the recent probe results: {e}"),
        }
        follow
    }

    /// Skips to the newest stored result (what this process wrote itself).
    pub(super) async fn skip_to_newest(&mut self, ctx: &Arc<Ctx>, store: &SharedStore) {
        let (db, s) = (ctx.db.clone(), store.clone());
        let newest = tokio::task::spawn_blocking(move || {
            with_store(&db, &s, |s| {
                s.results_start(i64::MAX, 0).map_err(|e| e.message())
            })
        })
        .await;
        if let Ok(Ok(id)) = newest {
            self.last_id = id;
        }
    }

    /// Reads every result stored since the last one read into the state,
    /// a chunk at a time, counting them as seen. A read that fails is
    /// logged and tried again from the same row next time.
    pub(super) async fn read_on(&mut self, ctx: &Arc<Ctx>, store: &SharedStore) {
        self.read(ctx, store, true).await;
    }

    /// [`Follow::read_on`], counting the results in the counters when
    /// `count`.
    async fn read(&mut self, ctx: &Arc<Ctx>, store: &SharedStore, count: bool) {
        let (c, s) = (ctx.clone(), store.clone());
        let (mut last, mut names) = (self.last_id, std::mem::take(&mut self.names));
        let read = tokio::task::spawn_blocking(move || {
            let failed = loop {
                let rows = with_store(&c.db, &s, |s| {
                    s.results_after(last, READ_CHUNK, &mut names)
                        .map_err(|e| e.message())
                });
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(e) => break Some(e),
                };
                let n = rows.len();
                if let Some((id, _)) = rows.last() {
                    last = *id;
                }
                observe(&c, rows.into_iter().map(|(_, r)| r), count);
                if n < READ_CHUNK {
                    break None;
                }
            };
            (last, names, failed)
        })
        .await;
        match read {
            Ok((last, names, failed)) => {
                self.last_id = last;
                self.names = names;
                if let Some(e) = failed {
                    tracing::warn!("cannot read the probe results the prober wrote: {e}");
                }
            }
            Err(e) => tracing::warn!("reading probe results stopped: {e}"),
        }
    }
}

/// Hands results to the state (and the counters when `count`), as the
/// hub does with results probed here.
fn observe(ctx: &Ctx, rows: impl Iterator<Item = ProbeResult>, count: bool) {
    let mut st = ctx.state_mut();
    for r in rows {
        st.observe(&r);
        if count {
            ctx.counters.count(r.error_kind);
        }
    }
}
