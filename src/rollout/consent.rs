//! How the command line makes sure a person meant a destructive command.
//! `deploy` and `rollback` print their plan and ask `[y/N]` unless `--yes`
//! is given. On an app with `protected = true`, `deploy`, `rollback`,
//! `abort` and `fire` ask for the app's name instead of `y`, and `--yes`
//! is taken only with `--confirm-app NAME` naming the app (else
//! `E_PROTECTED`, before anything is done). Without a terminal and
//! without `--yes` nothing is done (`E_CONFIRM`). With `cli.rs`, this is
//! the only place that reads stdin.

use std::io::{IsTerminal, Write};

use crate::error::{Code, UserError};

/// The confirmation flags of the destructive commands.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ConsentArgs {
    /// Do not ask for confirmation (a protected app also needs --confirm-app).
    #[arg(long)]
    pub yes: bool,
    /// The app's name again, as the confirmation `--yes` needs on a
    /// protected app.
    #[arg(long, value_name = "APP")]
    pub confirm_app: Option<String>,
}

/// Checks the flags before anything is done: `--confirm-app` must name
/// `app`, and on a protected app `--yes` needs it.
pub fn check(app: &str, protected: bool, args: &ConsentArgs) -> Result<(), UserError> {
    let code = if protected {
        Code::Protected
    } else {
        Code::Usage
    };
    match (&args.confirm_app, protected && args.yes) {
        (Some(named), _) if named != app => Err(UserError::new(
            code,
            format!("--confirm-app names \"{named}\", but the command acts on \"{app}\"; nothing was done"),
        )
        .hint(format!("pass --confirm-app {app}, or leave it out"))),
        (None, true) => Err(UserError::new(
            Code::Protected,
            format!("{app} is protected: --yes needs --confirm-app {app}; nothing was done"),
        )
        .hint(format!(
            "pass --yes --confirm-app {app}, or leave --yes out and type the name at the prompt"
        ))),
        _ => Ok(()),
    }
}

/// Asks on the terminal whether to `what` (e.g. "deploy") `app`: `[y/N]`,
/// or its name when it is protected. `yes` (already [`check`]ed) answers
/// for the person. Returns whether to go on; `E_CONFIRM` without a
/// terminal.
pub fn ask(app: &str, protected: bool, yes: bool, what: &str) -> Result<bool, UserError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        let flags = if protected {
            format!("--yes --confirm-app {app}")
        } else {
            "--yes".to_string()
        };
        return Err(UserError::new(
            Code::Confirm,
            format!("no terminal to confirm the {what} of {app} on; nothing was done"),
        )
        .hint(format!("pass {flags} to {what} without asking")));
    }
    if protected {
        print!("{app} is protected: type its name to {what} it: ");
    } else {
        print!("Proceed? [y/N] ");
    }
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return Ok(false);
    }
    let accepted = accepted(&answer, app, protected);
    if protected && !accepted {
        println!("That is not {app}.");
    }
    Ok(accepted)
}

/// Whether a line typed at the prompt says yes: the app's name exactly
/// for a protected app, else `y` or `yes`.
pub fn accepted(answer: &str, app: &str, protected: bool) -> bool {
    if protected {
        answer.trim_end_matches(['\n', '\r']) == app
    } else {
        matches!(answer.trim(), "y" | "Y" | "yes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(yes: bool, confirm_app: Option<&str>) -> ConsentArgs {
        ConsentArgs {
            yes,
            confirm_app: confirm_app.map(str::to_string),
        }
    }

    #[test]
    fn a_protected_app_takes_yes_only_with_its_name() {
        let code = |protected, a: &ConsentArgs| check("web", protected, a).err().map(|e| e.code);
        assert_eq!(code(true, &args(true, None)), Some(Code::Protected));
        assert_eq!(code(true, &args(true, Some("wbe"))), Some(Code::Protected));
        assert_eq!(code(true, &args(true, Some("web"))), None);
        assert_eq!(code(true, &args(false, None)), None, "the prompt asks");
        assert_eq!(code(false, &args(true, None)), None);
        assert_eq!(code(false, &args(true, Some("api"))), Some(Code::Usage));
        let e = check("web", true, &args(true, None)).unwrap_err();
        assert!(e.message.contains("--confirm-app web"), "{e}");
    }

    #[test]
    fn the_prompt_wants_the_name_exactly() {
        assert!(accepted("web\n", "web", true));
        assert!(!accepted("y\n", "web", true));
        assert!(!accepted("Web\n", "web", true));
        assert!(!accepted(" web\n", "web", true));
        assert!(accepted(" yes\n", "web", false));
        assert!(!accepted("web\n", "web", false));
        assert!(!accepted("\n", "web", false));
    }
}
