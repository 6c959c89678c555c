//! The `command` probe: a shell command run on the instance's host (here or
//! over SSH), passing on the expected exit code and optional output text.

use std::time::Duration;

use super::{Outcome, Target};
use crate::config::{CommandProbe, format_duration};
use crate::exec::{ExecError, Executor};
use crate::model::ErrorKind;
use crate::shell;

/// Runs one command probe within `timeout`.
pub async fn run(
    exec: &Executor,
    target: Target<'_>,
    p: &CommandProbe,
    timeout: Duration,
) -> Outcome {
    let vars = target.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let script = match shell::render(&p.command, &vars) {
        Ok(s) => s,
        Err(e) => return Outcome::fail(ErrorKind::Exec, None, e.to_string()),
    };
    let out = match exec.run(&script, timeout).await {
        Ok(o) => o,
        Err(e) => return exec_failure(&e, timeout),
    };
    let code = out.code.map(i64::from);
    // Masked whole before `tail` cuts it: a secret the command printed is
    // never left half shown (the prober masks the message again).
    let text = target
        .app
        .secrets
        .mask(&format!("{}{}", out.stdout, out.stderr));
    match out.code {
        Some(c) if c == p.expect_exit => {}
        Some(c) => {
            return Outcome::fail(
                ErrorKind::ExitCode,
                code,
                format!("exit {c}, expected {}{}", p.expect_exit, tail(&text)),
            );
        }
        None => {
            return Outcome::fail(
                ErrorKind::ExitCode,
                None,
                format!("killed by a signal{}", tail(&text)),
            );
        }
    }
    if let Some(needle) = &p.output_contains
        && !text.contains(needle.as_str())
    {
        return Outcome::fail(
            ErrorKind::Body,
            code,
            format!("output does not contain \"{needle}\"{}", tail(&text)),
        );
    }
    Outcome::pass(code, format!("exit {}{}", p.expect_exit, tail(&text)))
}

/// Maps an executor error to a probe outcome. A refused host key says
/// what to do too, in the same line.
pub fn exec_failure(e: &ExecError, timeout: Duration) -> Outcome {
    match e {
        ExecError::Timeout(_) => Outcome::fail(
            ErrorKind::Timeout,
            None,
            format!("no answer within {}; killed", format_duration(timeout)),
        ),
        ExecError::HostKey { refusal, .. } => Outcome::fail(
            ErrorKind::HostKey,
            None,
            format!("{e}; {}", refusal.steps().join("; ")),
        ),
        other => Outcome::fail(ErrorKind::Exec, None, other.to_string()),
    }
}

/// `: <last non-empty output line>`, shortened, or nothing.
fn tail(text: &str) -> String {
    match text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(l) => {
            let short: String = l.chars().take(120).collect();
            format!(": {short}")
        }
        None => String::new(),
    }
}
