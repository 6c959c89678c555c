//! The command queue: an operator's request (pause, resume, abort, ...)
//! from any terminal to the worker running a deployment, taken once.

use serde::Serialize;

use super::column::named;
use super::db::{DbError, Row, args};
use super::queries::{int, opt_text, text};
use super::{Store, StoreError};
use crate::model::{Verb, now_ms};

/// A request (pause, resume, abort, ...) from another terminal to the
/// process running a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    /// Row id; increases with sending order.
    pub id: i64,
    /// The app.
    pub app: String,
    /// The deployment it is for; `None` for whichever deployment of the
    /// app takes it first.
    pub deployment_id: Option<i64>,
    /// What to do.
    pub verb: Verb,
    /// Who asked.
    pub actor: String,
    /// Why, as the actor gave it.
    pub reason: Option<String>,
    /// When it was sent.
    pub at_ms: i64,
}

const COMMAND_COLS: &str = "id, app, deployment_id, verb, actor, reason, at_ms";

impl Store {
    /// Queues a command for the process running a deployment of `app`
    /// (for `deployment_id`, or for whichever deployment takes it first
    /// when `None`), stamped now; returns its id.
    pub fn send_command(
        &self,
        app: &str,
        deployment_id: Option<i64>,
        verb: Verb,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<i64, StoreError> {
        let err = || self.sql_err("send a command");
        self.db
            .query_row(
                "INSERT INTO commands (app, deployment_id, verb, actor, reason, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                args![app, deployment_id, verb.as_str(), actor, reason, now_ms()],
                |r| r.get(0),
            )
            .map_err(err())
    }

    /// Takes the unconsumed commands for deployment `deployment_id` of
    /// `app` (and those of `app` sent with no deployment), oldest (lowest
    /// id) first, marking them consumed in the same IMMEDIATE transaction:
    /// however many processes call this at once, each command is delivered
    /// once. A command whose verb this version does not know (sent by a
    /// newer rollguard) is taken too, and left out with a warning in the
    /// log: it never holds back the commands after it.
    pub fn take_commands(&self, app: &str, deployment_id: i64) -> Result<Vec<Command>, StoreError> {
        let op = "take commands";
        let tx = self.immediate(op)?;
        let mut taken: Vec<i64> = Vec::new();
        let mut commands: Vec<Command> = Vec::new();
        tx.each(
            &format!(
                "SELECT {COMMAND_COLS} FROM commands \
                 WHERE app = ?1 AND consumed_ms IS NULL \
                   AND (deployment_id = ?2 OR deployment_id IS NULL) \
                 ORDER BY id"
            ),
            args![app, deployment_id],
            |row| {
                taken.push(int(row.get_ref(0)?).unwrap_or(0));
                match command_from_row(row) {
                    Ok(c) => commands.push(c),
                    Err(DbError::Unknown(value)) => {
                        tracing::warn!("ignoring a command this version does not know: {value}");
                    }
                    Err(e) => return Err(e),
                }
                Ok(())
            },
        )
        .map_err(self.sql_err(op))?;
        if taken.is_empty() {
            return Ok(commands);
        }
        let now = now_ms();
        for id in taken {
            tx.execute(
                "UPDATE commands SET consumed_ms = ?2 WHERE id = ?1",
                args![id, now],
            )
            .map_err(self.sql_err(op))?;
        }
        tx.commit().map_err(self.sql_err(op))?;
        Ok(commands)
    }
}

fn command_from_row(row: &Row<'_>) -> Result<Command, DbError> {
    Ok(Command {
        id: int(row.get_ref(0)?).unwrap_or(0),
        app: text(row.get_ref(1)?),
        deployment_id: int(row.get_ref(2)?),
        verb: named(row, 3, "commands", "verb", Verb::parse)?,
        actor: text(row.get_ref(4)?),
        reason: opt_text(row.get_ref(5)?),
        at_ms: int(row.get_ref(6)?).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_this_version_does_not_know_is_taken_and_left_out() {
        let store = Store::empty(std::path::Path::new("/h.db")).unwrap();
        store
            .db
            .execute_batch(
                "INSERT INTO commands (app, deployment_id, verb, actor, at_ms) \
                 VALUES ('web', NULL, 'reboot', 'bob', 1);",
            )
            .unwrap();
        store
            .send_command("web", None, Verb::Pause, "ana", None)
            .unwrap();
        let taken = store.take_commands("web", 1).unwrap();
        assert_eq!(
            taken.iter().map(|c| c.verb).collect::<Vec<_>>(),
            [Verb::Pause]
        );
        assert!(store.take_commands("web", 1).unwrap().is_empty());
    }
}
