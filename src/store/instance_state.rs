//! What is believed to run on each instance now: its version and the side
//! that serves.

use serde::Serialize;

use super::db::args;
use super::queries::{int, opt_text, text};
use super::{Store, StoreError};
use crate::model::now_ms;

/// What is believed to run on one instance now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceState {
    /// The app.
    pub app: String,
    /// The instance.
    pub instance: String,
    /// The version running, when known.
    pub version: Option<String>,
    /// For blue/green: which side serves traffic.
    pub live_side: Option<String>,
    /// When this row was last written.
    pub updated_ms: i64,
}

impl Store {
    /// Records what runs on an instance now (replacing what was recorded),
    /// stamped now.
    pub fn set_instance_state(
        &self,
        app: &str,
        instance: &str,
        version: Option<&str>,
        live_side: Option<&str>,
    ) -> Result<(), StoreError> {
        let op = "record the state of an instance";
        self.db
            .execute(
                "INSERT INTO instance_state (app, instance, version, live_side, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (app, instance) DO UPDATE SET version = excluded.version, \
                   live_side = excluded.live_side, updated_ms = excluded.updated_ms",
                args![app, instance, version, live_side, now_ms()],
            )
            .map_err(self.sql_err(op))?;
        Ok(())
    }

    /// What is believed to run on each instance of `app`, by instance name.
    pub fn instance_states(&self, app: &str) -> Result<Vec<InstanceState>, StoreError> {
        let err = || self.sql_err("read instance states");
        self.db
            .query_map(
                "SELECT app, instance, version, live_side, updated_ms FROM instance_state \
                 WHERE app = ?1 ORDER BY instance",
                args![app],
                |row| {
                    Ok(InstanceState {
                        app: text(row.get_ref(0)?),
                        instance: text(row.get_ref(1)?),
                        version: opt_text(row.get_ref(2)?),
                        live_side: opt_text(row.get_ref(3)?),
                        updated_ms: int(row.get_ref(4)?).unwrap_or(0),
                    })
                },
            )
            .map_err(err())
    }
}
