//! The words of a rollout, typed: where a deployment and its batches are,
//! what a change did, what an operator asks, how a rollout ended and what
//! started its rollback. Each has one stored and printed name (`as_str`)
//! and a `parse` that says `None` for a name it does not know, so a store
//! value written by hand or by a newer version reads as a clear error,
//! never a panic. Nothing here does I/O.

use serde::{Deserialize, Serialize};

use crate::error::Code;

/// Declares an enum whose variants each have one stored name, with
/// `ALL`, `as_str`, `parse` and `Display`.
macro_rules! named {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored and printed name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses a stored name; `None` when it is not known.
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// The name in words, as people read it: `rolled back` for
            /// `rolled_back`.
            pub fn words(self) -> String {
                self.as_str().replace('_', " ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

named! {
    /// Where a deployment is.
    DeploymentState {
        /// Recorded, its worker not yet running.
        Pending => "pending",
        /// Its stages run.
        Running => "running",
        /// A manual step waits for `approve`.
        WaitingApproval => "waiting_approval",
        /// Paused by an operator.
        Paused => "paused",
        /// A failure was seen; deciding what to do.
        Failing => "failing",
        /// `auto_rollback = "confirm"`: the rollback fires unless held.
        RollbackArmed => "rollback_armed",
        /// An armed rollback held by an operator; waits for fire or abort.
        RollbackHeld => "rollback_held",
        /// Restoring what it changed.
        RollingBack => "rolling_back",
        /// Ended (see its outcome).
        Done => "done",
        /// Ended with a failure that was not rolled back.
        Failed => "failed",
        /// Its worker died and a later deployment took the app over: it
        /// will never be resumed or rolled back.
        Superseded => "superseded",
    }
}

impl Default for DeploymentState {
    /// A deployment recorded and not yet running.
    fn default() -> DeploymentState {
        DeploymentState::Pending
    }
}

impl DeploymentState {
    /// Whether a deployment in this state has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentState::Done | DeploymentState::Failed | DeploymentState::Superseded
        )
    }
}

named! {
    /// Where a batch (rolling) or step (canary, blue-green) is.
    BatchState {
        /// Not started.
        Pending => "pending",
        /// Running: replacing, gating or pausing.
        Running => "running",
        /// Its gate passed.
        Passed => "passed",
        /// Its gate (or start, or traffic change) failed.
        Failed => "failed",
        /// Undone by a rollback.
        RolledBack => "rolled_back",
        /// Never run: the rollout ended before it.
        Skipped => "skipped",
        /// Stopped while it ran, its gate undecided: an earlier batch's
        /// instance failed meanwhile (that batch is the failed one), or its
        /// worker stopped and a later deployment superseded the deployment
        /// before it was recovered. Some of its changes may have been made
        /// (the changes say which).
        Interrupted => "interrupted",
    }
}

impl BatchState {
    /// Whether the batch has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, BatchState::Pending | BatchState::Running)
    }

    /// Where a batch in this state is once its deployment has ended with
    /// `outcome`: one not reached is skipped; one a rollback undid (it
    /// passed, or ran or was interrupted when the failure or the crash
    /// came) is rolled back; one left running by a worker that stopped is
    /// interrupted when the deployment is superseded. A failed batch stays
    /// failed, so the report says where the rollout failed.
    pub fn settled(self, outcome: Outcome) -> BatchState {
        use BatchState::*;
        let undone = matches!(
            outcome,
            Outcome::RolledBack
                | Outcome::RollbackPartial
                | Outcome::RollbackFailed
                | Outcome::Aborted
        );
        match self {
            Pending => Skipped,
            Running | Passed | Interrupted if undone => RolledBack,
            Running => match outcome {
                Outcome::Deployed => Passed,
                Outcome::Failed => Failed,
                _ => Interrupted,
            },
            other => other,
        }
    }
}

named! {
    /// Where one recorded change to an instance is (write before act: a
    /// change is `started` before it is made).
    ChangeState {
        /// Recorded; the change may be half done.
        Started => "started",
        /// Made.
        Done => "done",
        /// Tried and failed.
        Failed => "failed",
    }
}

named! {
    /// What a change does to one instance's slot.
    ChangeAction {
        /// Starts the new release on a slot.
        Start => "start",
        /// Stops a side that no longer serves.
        Retire => "retire",
        /// Puts back what a snapshot describes.
        Restore => "restore",
    }
}

named! {
    /// What an operator asks of a running rollout.
    Verb {
        /// Go on past a manual step.
        Approve => "approve",
        /// Keep an armed rollback from firing; it waits for fire or abort.
        Hold => "hold",
        /// Fire an armed rollback now.
        Fire => "fire",
        /// Stop the rollout and roll back what it did.
        Abort => "abort",
        /// Stop at the next safe point and wait.
        Pause => "pause",
        /// Go on after a pause.
        Resume => "resume",
    }
}

named! {
    /// What a deployment row is: a deploy, or a manual rollback.
    DeploymentKind {
        /// `rollguard deploy`: a new release.
        Deploy => "deploy",
        /// `rollguard rollback`: a previous release put back by hand.
        Rollback => "rollback",
    }
}

named! {
    /// How a rollout ended.
    Outcome {
        /// Every stage passed.
        Deployed => "deployed",
        /// A failure was rolled back; every instance is restored and healthy.
        RolledBack => "rolled_back",
        /// Some instances could not be restored; the others were.
        RollbackPartial => "rollback_partial",
        /// No instance could be restored.
        RollbackFailed => "rollback_failed",
        /// An operator aborted and the rollback succeeded.
        Aborted => "aborted",
        /// A failure with `auto_rollback = "off"`: reported, nothing undone.
        Failed => "failed",
        /// Its worker died and the lock was broken for a later deployment.
        Superseded => "superseded",
    }
}

impl Outcome {
    /// The exit code of `rollguard deploy`: 0 deployed, 3 rolled back,
    /// 4 rollback failed or partial, 1 anything else.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Deployed => 0,
            Outcome::RolledBack | Outcome::Aborted => 3,
            Outcome::RollbackPartial | Outcome::RollbackFailed => 4,
            Outcome::Failed | Outcome::Superseded => 1,
        }
    }

    /// The error code of an outcome that is not a success.
    pub fn code(self) -> Option<Code> {
        match self {
            Outcome::Deployed | Outcome::RolledBack | Outcome::Aborted => None,
            Outcome::RollbackPartial => Some(Code::RollbackPartial),
            Outcome::RollbackFailed => Some(Code::RollbackFailed),
            Outcome::Failed => Some(Code::RolloutFailed),
            Outcome::Superseded => Some(Code::Interrupted),
        }
    }
}

named! {
    /// What started a rollback.
    Trigger {
        /// A probe failed past its thresholds (`E_GATE_FAILED`).
        GateFailed => "gate_failed",
        /// New instances were not healthy within `deadline` (`E_DEADLINE`).
        Deadline => "deadline",
        /// An instance failed to start (`E_START_FAILED`).
        StartFailed => "start_failed",
        /// Traffic could not be moved (`E_TRAFFIC`).
        Traffic => "traffic",
        /// A failure while monitoring after the last stage.
        Monitor => "monitor",
        /// Too few healthy instances to take a batch out (`E_MIN_HEALTHY`).
        MinHealthy => "min_healthy",
        /// An operator aborted.
        Abort => "abort",
        /// `rollguard recover --rollback` after the worker died.
        Recovered => "recovered",
        /// A record of the rollout could not be written: it stops at the
        /// next safe point and undoes what it did (`E_STORE`).
        Store => "store",
    }
}

impl Trigger {
    /// The stable error code users see.
    pub fn code(self) -> Code {
        match self {
            Trigger::GateFailed | Trigger::Monitor => Code::GateFailed,
            Trigger::Deadline => Code::Deadline,
            Trigger::StartFailed => Code::StartFailed,
            Trigger::Traffic => Code::Traffic,
            Trigger::MinHealthy => Code::MinHealthy,
            Trigger::Abort => Code::Aborted,
            Trigger::Recovered => Code::Interrupted,
            Trigger::Store => Code::Store,
        }
    }
}

/// Which of an instance's two ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The instance's `port`.
    Main,
    /// The instance's `alt_port` (blue-green, canary).
    Alt,
}

impl Side {
    /// `main` or `alt`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Main => "main",
            Side::Alt => "alt",
        }
    }

    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Main => Side::Alt,
            Side::Alt => Side::Main,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for s in DeploymentState::ALL {
            assert_eq!(DeploymentState::parse(s.as_str()), Some(*s));
        }
        for s in BatchState::ALL {
            assert_eq!(BatchState::parse(s.as_str()), Some(*s));
        }
        for v in Verb::ALL {
            assert_eq!(Verb::parse(v.as_str()), Some(*v));
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::json!(v.as_str())
            );
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
        for t in Trigger::ALL {
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::json!(t.as_str())
            );
        }
        assert_eq!(Verb::parse("reboot"), None);
        assert_eq!(DeploymentState::parse(""), None);
        assert_eq!(Outcome::parse("succeeded"), None);
    }

    #[test]
    fn exit_codes_follow_the_outcome() {
        assert_eq!(Outcome::Deployed.exit_code(), 0);
        assert_eq!(Outcome::RolledBack.exit_code(), 3);
        assert_eq!(Outcome::RollbackPartial.exit_code(), 4);
        assert_eq!(Trigger::Monitor.code(), Code::GateFailed);
    }

    #[test]
    fn a_batch_is_settled_by_how_its_deployment_ended() {
        use BatchState::*;
        assert_eq!(Pending.settled(Outcome::Deployed), Skipped);
        assert_eq!(Pending.settled(Outcome::RolledBack), Skipped);
        assert_eq!(Passed.settled(Outcome::Deployed), Passed);
        assert_eq!(Passed.settled(Outcome::RolledBack), RolledBack);
        assert_eq!(Running.settled(Outcome::RolledBack), RolledBack);
        assert_eq!(Running.settled(Outcome::Aborted), RolledBack);
        assert_eq!(Failed.settled(Outcome::RolledBack), Failed);
        assert_eq!(Running.settled(Outcome::Failed), Failed);
        assert_eq!(Passed.settled(Outcome::Failed), Passed);
        assert_eq!(Running.settled(Outcome::Superseded), Interrupted);
        assert_eq!(Passed.settled(Outcome::Superseded), Passed);
        // Cut short by an earlier batch's failure: undone by the rollback,
        // else left interrupted (never failed: another batch failed).
        assert_eq!(Interrupted.settled(Outcome::RolledBack), RolledBack);
        assert_eq!(Interrupted.settled(Outcome::Failed), Interrupted);
        for s in BatchState::ALL {
            for o in Outcome::ALL {
                let once = s.settled(*o);
                assert!(once.is_final(), "{s} after {o}");
                // The store settles state by state: settling again moves
                // nothing.
                assert_eq!(once.settled(*o), once, "{s} after {o}");
            }
        }
    }
}
