//! Reading probe results that are already stored into the console state:
//! the recent past at start (so sparklines, success rates and verdicts
//! show at once, and show what every other console on the history shows),
//! and, while another process holds the prober's lease, what it writes,
//! by row id about once a second. The state is locked per chunk of rows,
//! never while the history is read, so drawing never waits for the disk.

use std::sync::Arc;

use super::{Ctx, SharedStore, with_store};
use crate::model::{ProbeResult, now_ms};
use crate::store::follow::Names;
use crate::tui::state::RATE_WINDOW_MS;

/// Rows read per query (and observed per lock of the state).
pub const READ_CHUNK: usize = 20_000;

/// Most rows of the recent past read at start: a fleet with more results
/// in the last [`RATE_WINDOW_MS`] starts from a shorter past.
pub const PRELOAD_MAX: usize = 250_000;

/// Reads the recent past (the last [`RATE_WINDOW_MS`], at most
/// [`PRELOAD_MAX`] rows) into the state; returns the id read up to (0
/// when the history cannot be read: everything is then read as new).
pub(super) async fn preload(ctx: &Arc<Ctx>, store: &SharedStore) -> i64 {
    let (db, s) = (ctx.db.clone(), store.clone());
    let start = tokio::task::spawn_blocking(move || {
        with_store(&db, &s, |s| {
            s.results_start(now_ms() - RATE_WINDOW_MS, PRELOAD_MAX)
                .map_err(|e| e.message())
        })
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match start {
        Ok(from) => read(ctx, store, from, false).await,
        Err(e) => {
            tracing::warn!("cannot read the recent probe results: {e}");
            0
        }
    }
}

/// The id of the newest stored result.
pub(super) async fn newest_id(ctx: &Arc<Ctx>, store: &SharedStore) -> Option<i64> {
    let (db, s) = (ctx.db.clone(), store.clone());
    tokio::task::spawn_blocking(move || {
        with_store(&db, &s, |s| {
            s.results_start(i64::MAX, 0).map_err(|e| e.message())
        })
    })
    .await
    .ok()?
    .ok()
}

/// Reads every result stored after `after_id` into the state, a chunk at
/// a time, counting them as seen; returns the last id read. A read that
/// fails is logged and tried again from the same id next time.
pub(super) async fn read_on(ctx: &Arc<Ctx>, store: &SharedStore, after_id: i64) -> i64 {
    read(ctx, store, after_id, true).await
}

/// [`read_on`], counting the results in the counters when `count`.
async fn read(ctx: &Arc<Ctx>, store: &SharedStore, after_id: i64, count: bool) -> i64 {
    let (c, s) = (ctx.clone(), store.clone());
    let read = tokio::task::spawn_blocking(move || {
        let mut last = after_id;
        let mut names = Names::new();
        loop {
            let rows = with_store(&c.db, &s, |s| {
                s.results_after(last, READ_CHUNK, &mut names)
                    .map_err(|e| e.message())
            });
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => return (last, Some(e)),
            };
            let n = rows.len();
            if let Some((id, _)) = rows.last() {
                last = *id;
            }
            observe(&c, rows.into_iter().map(|(_, r)| r), count);
            if n < READ_CHUNK {
                return (last, None);
            }
        }
    })
    .await;
    match read {
        Ok((last, None)) => last,
        Ok((last, Some(e))) => {
            tracing::warn!("cannot read the probe results the prober wrote: {e}");
            last
        }
        Err(e) => {
            tracing::warn!("reading probe results stopped: {e}");
            after_id
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
