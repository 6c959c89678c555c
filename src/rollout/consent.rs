//! How the command line makes sure a person meant a destructive command.
//! `deploy` and `rollback` print their plan and ask `[y/N]` unless `--yes`
//! is given. On an app with `protected = true`, `deploy`, `rollback`,
//! `abort` and `fire` ask for the app's name instead of `y`, and `--yes`
//! is taken only with `--confirm-app NAME` naming the app (else
//! `E_PROTECTED`, before anything is done). Without a terminal and
//! without `--yes` nothing is done (`E_CONFIRM`). `abort` and `fire` ask
//! `[y/N]` (or the name) too, as the console's question does, and need a
//! reason: `--reason TEXT`, else typed at the prompt; without a terminal
//! and without `--reason` nothing is sent (`E_USAGE`: `--yes` answers the
//! question, never the reason). With `cli.rs`, this is the only place that
//! reads stdin.

use std::io::{BufRead, IsTerminal, Write};

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

/// The reason a command that needs one (`abort`, `fire`) goes with:
/// `given` (`--reason`), else what the person types at the terminal.
/// `what` says the act in words ("abort the rollout of web"); `flags` are
/// the other flags a script would pass with `--reason` (e.g. `--yes`).
/// `E_USAGE`, nothing sent, when the reason is blank, or is missing and
/// there is no terminal to ask on.
pub fn reason(what: &str, given: Option<&str>, flags: &str) -> Result<String, UserError> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    reason_from(
        what,
        given,
        flags,
        terminal.then(|| stdin.lock()),
        &mut std::io::stdout(),
    )
}

/// [`reason`], reading from `input` (`None`: no terminal) and writing its
/// question to `out`.
fn reason_from(
    what: &str,
    given: Option<&str>,
    flags: &str,
    input: Option<impl BufRead>,
    out: &mut dyn Write,
) -> Result<String, UserError> {
    let with = |flags: &str| {
        if flags.is_empty() {
            String::new()
        } else {
            format!(" {flags}")
        }
    };
    if let Some(r) = given {
        if r.trim().is_empty() {
            return Err(UserError::new(
                Code::Usage,
                format!("--reason is blank: a reason is needed to {what}; nothing was sent"),
            )
            .hint("say why in --reason TEXT (it is kept in the history with the command)"));
        }
        return Ok(r.to_string());
    }
    let Some(mut input) = input else {
        return Err(UserError::new(
            Code::Usage,
            format!(
                "a reason is needed to {what}, and there is no terminal to ask for it on; nothing was sent"
            ),
        )
        .hint(format!(
            "pass --reason TEXT{} (the reason is kept in the history)",
            with(flags)
        )));
    };
    let _ = write!(out, "Why {what}? (kept in the history) ");
    let _ = out.flush();
    let mut line = String::new();
    let typed = match input.read_line(&mut line) {
        Ok(_) => line.trim().to_string(),
        Err(_) => String::new(),
    };
    if typed.is_empty() {
        return Err(UserError::new(
            Code::Usage,
            format!("no reason was typed: one is needed to {what}; nothing was sent"),
        )
        .hint(format!(
            "type why at the prompt, or pass --reason TEXT{}",
            with(flags)
        )));
    }
    Ok(typed)
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
    fn a_reason_is_given_typed_or_refused() {
        let what = "abort the rollout of web";
        let run = |given: Option<&str>, typed: Option<&str>| {
            let mut out = Vec::new();
            let got = reason_from(what, given, "--yes", typed.map(str::as_bytes), &mut out);
            (got, String::from_utf8(out).unwrap())
        };
        // Given: taken as it is, nothing asked.
        let (got, asked) = run(Some("v2 is slow"), Some("ignored\n"));
        assert_eq!(got.unwrap(), "v2 is slow");
        assert_eq!(asked, "");
        // Blank: refused, whatever a terminal would say.
        let (got, _) = run(Some("  "), Some("why\n"));
        assert_eq!(got.unwrap_err().code, Code::Usage);
        // Missing, at a terminal: asked, and the answer taken.
        let (got, asked) = run(None, Some("  error rate up \n"));
        assert_eq!(got.unwrap(), "error rate up");
        assert_eq!(asked, format!("Why {what}? (kept in the history) "));
        // Nothing typed: nothing sent.
        let (got, _) = run(None, Some("\n"));
        let e = got.unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert!(e.message.contains("nothing was sent"), "{e}");
        // Missing without a terminal: the flags that would do it.
        let (got, asked) = run(None, None);
        let e = got.unwrap_err();
        assert_eq!(e.code, Code::Usage);
        assert_eq!(asked, "");
        assert!(e.message.contains("no terminal"), "{e}");
        assert!(
            e.hint.as_deref().unwrap().contains("--reason TEXT --yes"),
            "{e}"
        );
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
