//! Stable error codes for errors users see. A code never changes meaning
//! once released; the README lists them all.

use std::fmt;

/// A stable, documented error code such as `E_CONFIG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The configuration file is missing, unreadable or invalid.
    Config,
    /// A command-line argument is wrong.
    Usage,
    /// The history database cannot be opened or written.
    Store,
    /// An SSH connection could not be made.
    Ssh,
    /// The SSH host key is unknown or changed.
    HostKey,
    /// A command could not be run.
    Exec,
    /// The terminal could not be set up.
    Terminal,
    /// The demo could not start its fleet.
    Demo,
    /// Another rollout holds the app's lock.
    Locked,
    /// The version to roll back to is not present on every host.
    RollbackTargetMissing,
    /// The version to deploy is not present on every host.
    ArtifactMissing,
    /// A manual rollback's target is unknown or was never healthy.
    RollbackUnsafe,
    /// `min_healthy` leaves no instance free to replace.
    MinHealthy,
    /// A preflight check could not be made (a host did not answer).
    Preflight,
    /// Nothing to deploy: every instance runs the version already.
    NothingToDo,
    /// No terminal to confirm on, and no `--yes`.
    Confirm,
    /// No rollout of that app is running.
    NoRollout,
}

impl Code {
    /// The code as printed, e.g. `E_CONFIG`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Config => "E_CONFIG",
            Code::Usage => "E_USAGE",
            Code::Store => "E_STORE",
            Code::Ssh => "E_SSH",
            Code::HostKey => "E_HOST_KEY",
            Code::Exec => "E_EXEC",
            Code::Terminal => "E_TERMINAL",
            Code::Demo => "E_DEMO",
            Code::Locked => "E_LOCKED",
            Code::RollbackTargetMissing => "E_ROLLBACK_TARGET_MISSING",
            Code::ArtifactMissing => "E_ARTIFACT_MISSING",
            Code::RollbackUnsafe => "E_ROLLBACK_UNSAFE",
            Code::MinHealthy => "E_MIN_HEALTHY",
            Code::Preflight => "E_PREFLIGHT",
            Code::NothingToDo => "E_NOTHING_TO_DO",
            Code::Confirm => "E_CONFIRM",
            Code::NoRollout => "E_NO_ROLLOUT",
        }
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
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UserError {}
