//! The counts `/metrics` reads from the history: each app's ended
//! deployments by outcome, rollbacks automatic or by hand (counted as
//! `rollguard report` counts them), incidents and open incidents. Read
//! on a blocking task every [`READ_EVERY`] and kept, so a scrape never
//! waits for the disk; a read that fails keeps the counts before it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::exposition::HistoryCounts;
use crate::config::Fleet;
use crate::report::availability::deployments;
use crate::shutdown::Shutdown;
use crate::store::Location;
use crate::store::{SharedStore, Store, StoreError, with_store};

/// How often the history is read.
pub const READ_EVERY: Duration = Duration::from_secs(10);

/// The counts last read, per app of the fleet; `None` before the first
/// read.
pub type LastRead = Arc<Mutex<Option<Arc<Vec<HistoryCounts>>>>>;

/// Every app of `fleet`'s counts in `store`, in fleet order.
pub fn read(store: &Store, fleet: &Fleet) -> Result<Vec<HistoryCounts>, StoreError> {
    let mut all = Vec::with_capacity(fleet.apps.len());
    for a in &fleet.apps {
        let counts = store.deployment_counts(&a.name, i64::MIN, i64::MAX)?;
        let triggers = store.rollback_triggers(&a.name, i64::MIN, i64::MAX)?;
        let (_, rollbacks) = deployments(&counts, &triggers);
        let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
        for c in &counts {
            if let Some(o) = c.outcome {
                *by_outcome.entry(o.as_str().to_string()).or_default() += c.count;
            }
        }
        let (incidents, incidents_open) = store.incident_counts(&a.name)?;
        all.push(HistoryCounts {
            app: a.name.clone(),
            deployments: by_outcome,
            rollbacks_automatic: rollbacks.automatic,
            rollbacks_by_hand: rollbacks.by_hand,
            incidents,
            incidents_open,
        });
    }
    Ok(all)
}

/// Until `shutdown`: reads the counts of the history at `db` into `last`
/// now and every [`READ_EVERY`].
pub async fn follow(fleet: Arc<Fleet>, db: Location, last: LastRead, mut shutdown: Shutdown) {
    let store: SharedStore = Arc::default();
    let mut warned = false;
    let mut tick = tokio::time::interval(READ_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !shutdown.tick(&mut tick).await {
            return;
        }
        let (fleet, db, store) = (fleet.clone(), db.clone(), store.clone());
        let got = tokio::task::spawn_blocking(move || {
            with_store(&db, &store, |s| read(s, &fleet).map_err(|e| e.message()))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match got {
            Ok(counts) => {
                warned = false;
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(counts));
            }
            Err(e) if !warned => {
                tracing::warn!("/metrics cannot read the history's counts: {e}");
                warned = true;
            }
            Err(_) => {}
        }
    }
}
