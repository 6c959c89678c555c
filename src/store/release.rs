//! Releases: the versions of an app rollguard has seen, when each was last
//! healthy, and the last good one (a rollback's target).

use serde::Serialize;
use serde_json::Value;

use super::column::opt_json;
use super::db::{DbError, Optional, Row, args};
use super::queries::{int, text};
use super::{Store, StoreError};
use crate::model::now_ms;

/// A version of an app that rollguard has seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Release {
    /// The app.
    pub app: String,
    /// The version.
    pub version: String,
    /// When it was first recorded.
    pub first_seen_ms: i64,
    /// The latest time it was seen healthy; `None` if never.
    pub last_healthy_ms: Option<i64>,
    /// What was deployed (image digest, archive checksum, ...), if known.
    pub artifact: Option<Value>,
}

const RELEASE_COLS: &str = "app, version, first_seen_ms, last_healthy_ms, artifact";

impl Store {
    /// Records that `version` of `app` exists, first seen now, unless it is
    /// already recorded.
    pub fn touch_release(&self, app: &str, version: &str) -> Result<(), StoreError> {
        let op = "record a release";
        self.db
            .execute(
                "INSERT INTO releases (app, version, first_seen_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (app, version) DO NOTHING",
                args![app, version, now_ms()],
            )
            .map_err(self.sql_err(op))?;
        Ok(())
    }

    /// Records that `version` of `app` was healthy at `at_ms`, recording the
    /// release if needed (first seen at the earlier of now and `at_ms`).
    /// `last_healthy_ms` only moves forward: an older `at_ms` changes
    /// nothing. A stored value that is not a number is replaced.
    pub fn mark_release_healthy(
        &self,
        app: &str,
        version: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let op = "mark a release healthy";
        let number = self.db.dialect().is_number("releases.last_healthy_ms");
        self.db
            .execute(
                &format!(
                    "INSERT INTO releases (app, version, first_seen_ms, last_healthy_ms) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (app, version) DO UPDATE SET last_healthy_ms = \
                   CASE WHEN releases.last_healthy_ms IS NULL OR NOT ({number}) \
                          OR releases.last_healthy_ms < excluded.last_healthy_ms \
                        THEN excluded.last_healthy_ms ELSE releases.last_healthy_ms END"
                ),
                args![app, version, now_ms().min(at_ms), at_ms],
            )
            .map_err(self.sql_err(op))?;
        Ok(())
    }

    /// One release, if recorded.
    pub fn release(&self, app: &str, version: &str) -> Result<Option<Release>, StoreError> {
        let err = || self.sql_err("read a release");
        self.db
            .query_row(
                &format!("SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 AND version = ?2"),
                args![app, version],
                release_from_row,
            )
            .optional()
            .map_err(err())
    }

    /// The releases of `app`, most recently first seen first.
    pub fn releases(&self, app: &str) -> Result<Vec<Release>, StoreError> {
        let err = || self.sql_err("read releases");
        self.db
            .query_map(
                &format!(
                    "SELECT {RELEASE_COLS} FROM releases WHERE app = ?1 \
                 ORDER BY first_seen_ms DESC, version DESC"
                ),
                args![app],
                release_from_row,
            )
            .map_err(err())
    }

    /// The release of `app` seen healthy most recently, other than
    /// `except` (typically the version being rolled back from): the
    /// rollback target. Ties go to the most recently first seen. Releases
    /// never seen healthy are not candidates.
    pub fn last_good_release(
        &self,
        app: &str,
        except: Option<&str>,
    ) -> Result<Option<Release>, StoreError> {
        let err = || self.sql_err("find the last good release");
        let number = self.db.dialect().is_number("last_healthy_ms");
        self.db
            .query_row(
                &format!(
                    "SELECT {RELEASE_COLS} FROM releases \
                 WHERE app = ?1 AND {number} \
                   AND (CAST(?2 AS TEXT) IS NULL OR version <> ?2) \
                 ORDER BY last_healthy_ms DESC, first_seen_ms DESC, version DESC LIMIT 1"
                ),
                args![app, except],
                release_from_row,
            )
            .optional()
            .map_err(err())
    }
}

fn release_from_row(row: &Row<'_>) -> Result<Release, DbError> {
    Ok(Release {
        app: text(row.get_ref(0)?),
        version: text(row.get_ref(1)?),
        first_seen_ms: int(row.get_ref(2)?).unwrap_or(0),
        last_healthy_ms: int(row.get_ref(3)?),
        artifact: opt_json(row.get_ref(4)?),
    })
}
