//! Verdict rows: each instance's verdict as the prober last judged it and
//! since when, for whoever does not probe (`status`, other processes).

use serde::Serialize;

use super::db::args;
use super::queries::text;
use super::{Store, StoreError};
use crate::model::Verdict;

/// One instance's stored verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredVerdict {
    /// The instance.
    pub instance: String,
    /// Its verdict; a stored name this version does not know reads as
    /// unknown.
    pub verdict: Verdict,
    /// Since when it has had this verdict.
    pub since_ms: i64,
    /// When the prober last wrote it.
    pub updated_ms: i64,
}

impl Store {
    /// Writes the verdicts of `app`'s instances at `now_ms`, in one
    /// transaction; an unchanged verdict keeps its `since_ms`.
    pub fn write_verdicts(
        &self,
        app: &str,
        rows: &[(&str, Verdict)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let op = "record verdicts";
        let tx = self.immediate(op)?;
        for (instance, verdict) in rows {
            tx.execute(
                "INSERT INTO verdicts (app, instance, verdict, since_ms, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (app, instance) DO UPDATE SET \
                 since_ms = CASE WHEN verdicts.verdict = excluded.verdict \
                            THEN verdicts.since_ms ELSE excluded.since_ms END, \
                 verdict = excluded.verdict, updated_ms = excluded.updated_ms",
                args![app, instance, verdict.as_str(), now_ms],
            )
            .map_err(self.sql_err(op))?;
        }
        tx.commit().map_err(self.sql_err(op))
    }

    /// The stored verdicts of `app`'s instances, by instance name.
    pub fn verdicts(&self, app: &str) -> Result<Vec<StoredVerdict>, StoreError> {
        let err = || self.sql_err("read verdicts");
        self.db
            .query_map(
                "SELECT instance, verdict, since_ms, updated_ms FROM verdicts \
                 WHERE app = ?1 ORDER BY instance",
                args![app],
                |r| {
                    Ok(StoredVerdict {
                        instance: text(r.get_ref(0)?),
                        verdict: Verdict::parse(&text(r.get_ref(1)?)).unwrap_or(Verdict::Unknown),
                        since_ms: r.get(2)?,
                        updated_ms: r.get(3)?,
                    })
                },
            )
            .map_err(err())
    }
}
