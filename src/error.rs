//! Stable error codes for errors users see: one enum, each code with its
//! exit code and a one-line meaning. A code never changes meaning once
//! released; the README's table lists them all, and a test keeps the two
//! equal.

use std::fmt;

use crate::printable::printable_lines;

/// A stable, documented error code such as `E_CONFIG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The configuration file is missing, unreadable or invalid.
    Config,
    /// A command-line argument is wrong, or missing where no terminal can
    /// ask for it.
    Usage,
    /// No terminal to confirm on, and no `--yes`.
    Confirm,
    /// A protected app's destructive command was not confirmed with its name.
    Protected,
    /// Another rollout holds the app's lock.
    Locked,
    /// A probe failed past its thresholds during a rollout or its monitoring.
    GateFailed,
    /// New instances were not healthy within `deadline`.
    Deadline,
    /// An instance failed to start.
    StartFailed,
    /// Traffic could not be moved.
    Traffic,
    /// Too few healthy instances to take a batch out.
    MinHealthy,
    /// An operator aborted the rollout.
    Aborted,
    /// The rollout's process died and recovery rolled it back.
    Interrupted,
    /// The rollout failed and, with `auto_rollback = "off"`, nothing was undone.
    RolloutFailed,
    /// Some instances could not be restored.
    RollbackPartial,
    /// No instance could be restored.
    RollbackFailed,
    /// The release to roll back to is unknown or not present on every host.
    RollbackTargetMissing,
    /// A manual rollback's target is unknown or was never seen healthy.
    RollbackUnsafe,
    /// The version to deploy is not present on every host.
    ArtifactMissing,
    /// Nothing to deploy: every instance runs the version already.
    NothingToDo,
    /// No rollout of that app is running.
    NoRollout,
    /// The command does not apply to the rollout as it is now.
    WrongState,
    /// A preflight check could not be made (a host did not answer).
    Preflight,
    /// An SSH connection could not be made.
    Ssh,
    /// The SSH host key is unknown or changed.
    HostKey,
    /// The history database cannot be opened, read or written.
    Store,
    /// A command could not be run.
    Exec,
    /// The terminal could not be set up.
    Terminal,
    /// The demo could not start its fleet.
    Demo,
    /// A notification could not be sent.
    Notify,
}

impl Code {
    /// Every code, in the README's order.
    pub const ALL: [Code; 29] = [
        Code::Config,
        Code::Usage,
        Code::Confirm,
        Code::Protected,
        Code::Locked,
        Code::GateFailed,
        Code::Deadline,
        Code::StartFailed,
        Code::Traffic,
        Code::MinHealthy,
        Code::Aborted,
        Code::Interrupted,
        Code::RolloutFailed,
        Code::RollbackPartial,
        Code::RollbackFailed,
        Code::RollbackTargetMissing,
        Code::RollbackUnsafe,
        Code::ArtifactMissing,
        Code::NothingToDo,
        Code::NoRollout,
        Code::WrongState,
        Code::Preflight,
        Code::Ssh,
        Code::HostKey,
        Code::Store,
        Code::Exec,
        Code::Terminal,
        Code::Demo,
        Code::Notify,
    ];

    /// The code as printed, e.g. `E_CONFIG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Config => "E_CONFIG",
            Code::Usage => "E_USAGE",
            Code::Confirm => "E_CONFIRM",
            Code::Protected => "E_PROTECTED",
            Code::Locked => "E_LOCKED",
            Code::GateFailed => "E_GATE_FAILED",
            Code::Deadline => "E_DEADLINE",
            Code::StartFailed => "E_START_FAILED",
            Code::Traffic => "E_TRAFFIC",
            Code::MinHealthy => "E_MIN_HEALTHY",
            Code::Aborted => "E_ABORTED",
            Code::Interrupted => "E_INTERRUPTED",
            Code::RolloutFailed => "E_FAILED",
            Code::RollbackPartial => "E_ROLLBACK_PARTIAL",
            Code::RollbackFailed => "E_ROLLBACK_FAILED",
            Code::RollbackTargetMissing => "E_ROLLBACK_TARGET_MISSING",
            Code::RollbackUnsafe => "E_ROLLBACK_UNSAFE",
            Code::ArtifactMissing => "E_ARTIFACT_MISSING",
            Code::NothingToDo => "E_NOTHING_TO_DO",
            Code::NoRollout => "E_NO_ROLLOUT",
            Code::WrongState => "E_WRONG_STATE",
            Code::Preflight => "E_PREFLIGHT",
            Code::Ssh => "E_SSH",
            Code::HostKey => "E_HOST_KEY",
            Code::Store => "E_STORE",
            Code::Exec => "E_EXEC",
            Code::Terminal => "E_TERMINAL",
            Code::Demo => "E_DEMO",
            Code::Notify => "E_NOTIFY",
        }
    }

    /// The exit code of a command that ends with this error: 2 for usage,
    /// config and confirmation (a protected app's too), 3 when a rollout
    /// was rolled back, 4 when its rollback failed or was partial, 5 when
    /// locked, 1 otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            Code::Config | Code::Usage | Code::Confirm | Code::Protected => 2,
            Code::Locked => 5,
            Code::GateFailed
            | Code::Deadline
            | Code::StartFailed
            | Code::Traffic
            | Code::Aborted
            | Code::Interrupted => 3,
            Code::MinHealthy
            | Code::RolloutFailed
            | Code::RollbackTargetMissing
            | Code::RollbackUnsafe
            | Code::ArtifactMissing
            | Code::NothingToDo
            | Code::NoRollout
            | Code::WrongState
            | Code::Preflight
            | Code::Ssh
            | Code::HostKey
            | Code::Store
            | Code::Exec
            | Code::Terminal
            | Code::Demo
            | Code::Notify => 1,
            Code::RollbackPartial | Code::RollbackFailed => 4,
        }
    }

    /// What the code means, in one line (the README's table says the same).
    pub fn meaning(self) -> &'static str {
        match self {
            Code::Config => "the config file is missing, unreadable or invalid",
            Code::Usage => {
                "a command-line argument is missing or blank (`abort`/`fire` without `--reason` and no terminal to ask on), names nothing that exists, or a version is invalid"
            }
            Code::Confirm => "no terminal to confirm on and no `--yes`: nothing was done",
            Code::Protected => {
                "the app is protected: `--yes` needs `--confirm-app` with its name; nothing was done"
            }
            Code::Locked => "another rollout holds the app's lock",
            Code::GateFailed => {
                "a probe failed during a rollout or its monitoring; the rollout was rolled back"
            }
            Code::Deadline => {
                "new instances were not healthy within `deadline`; the rollout was rolled back"
            }
            Code::StartFailed => "an instance failed to start; the rollout was rolled back",
            Code::Traffic => {
                "traffic could not be moved (nginx refused the file, HAProxy refused a command); the rollout was rolled back"
            }
            Code::MinHealthy => {
                "too few healthy instances to take a batch out (refused before anything moved, or the rollout was rolled back)"
            }
            Code::Aborted => "an operator aborted the rollout and it was rolled back",
            Code::Interrupted => "the rollout's process died; `recover --rollback` rolled it back",
            Code::RolloutFailed => {
                "the rollout failed with `auto_rollback = \"off\"`: nothing was undone"
            }
            Code::RollbackPartial => "some instances could not be restored",
            Code::RollbackFailed => "no instance could be restored",
            Code::RollbackTargetMissing => {
                "the release to go back to is not present, or none is known (nothing moved)"
            }
            Code::RollbackUnsafe => "a manual rollback's target is unknown or was never healthy",
            Code::ArtifactMissing => "the version to deploy is not present on every host",
            Code::NothingToDo => "every instance already runs that version",
            Code::NoRollout => {
                "`approve`/`hold`/`fire`/`abort`/`recover` found no rollout of that app"
            }
            Code::WrongState => {
                "the command does not apply to the rollout as it is now (nothing to approve, no rollback armed, already paused, its worker gone): nothing was sent"
            }
            Code::Preflight => "a preflight check could not be made",
            Code::Ssh => "a host could not be reached over SSH",
            Code::HostKey => "a host's SSH key is unknown or changed",
            Code::Store => "the history database cannot be opened, read or written",
            Code::Exec => "a command could not be started",
            Code::Terminal => "the console could not use the terminal",
            Code::Demo => "the demo could not start its fleet",
            Code::Notify => "a receiver refused a notification or did not answer (`notify test`)",
        }
    }

    /// Parses a printed code, e.g. from a stored event.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}
impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error for the user: a code, what happened, and what to do.
#[derive(Debug)]
pub struct UserError {
    /// Stable code.
    pub code: Code,
    /// What went wrong, naming the thing it concerns.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl UserError {
    /// A new error without a hint.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        UserError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `E_USAGE`: no app named `name` in the config or the history; the
    /// hint names those that are (`known`).
    pub fn unknown_app(name: &str, known: &[String]) -> Self {
        let e = UserError::new(
            Code::Usage,
            format!("no app named \"{name}\" in the config or the history"),
        );
        if known.is_empty() {
            e.hint("no app is known yet: check --config and --db")
        } else {
            e.hint(format!("apps: {}", known.join(", ")))
        }
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages carry what hosts and users said: never raw to a terminal.
        write!(f, "{}: {}", self.code, printable_lines(&self.message))?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {}", printable_lines(h))?;
        }
        Ok(())
    }
}

impl std::error::Error for UserError {}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_distinct_and_parse_back() {
        for (i, a) in Code::ALL.iter().enumerate() {
            assert_eq!(Code::parse(a.as_str()), Some(*a));
            assert!(a.as_str().starts_with("E_"), "{a}");
            assert!(!a.meaning().is_empty(), "{a}");
            for b in &Code::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }
}
