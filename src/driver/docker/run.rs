//! The command runner: `docker WORDS` as one shell line in which every
//! word is quoted, run by the slot's executor, and its failure described.

use std::time::Duration;

use crate::driver::{DriverError, Slot};
use crate::exec::{Executor, Output};
use crate::model::Version;
use crate::shell;

/// `DriverError::Failed` for `slot`.
pub(super) fn failed(slot: Slot<'_>, what: &str, detail: String) -> DriverError {
    DriverError::Failed {
        slot: slot.label(),
        what: what.into(),
        detail,
    }
}

/// The shell line `docker WORD...`, every word quoted by [`shell::render`].
pub(crate) fn command_line(words: &[&str]) -> String {
    let names: Vec<String> = (0..words.len()).map(placeholder_name).collect();
    let mut template = String::from("docker");
    for n in &names {
        template.push_str(" {");
        template.push_str(n);
        template.push('}');
    }
    let vars: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(words.iter().copied())
        .collect();
    // The template is ours: bare placeholders outside quotes never fail.
    shell::render(&template, &vars).unwrap_or_else(|_| {
        let mut line = String::from("docker");
        for w in words {
            line.push(' ');
            line.push_str(&shell::quote(w));
        }
        line
    })
}

/// `w_a`, `w_b`, …, `w_z`, `w_ba`, …: placeholder names (lowercase only).
fn placeholder_name(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (i % 26) as u8);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    s.reverse();
    format!("w_{}", String::from_utf8_lossy(&s))
}

/// The lines of `out` that are release names, each once, in order.
pub(crate) fn release_names(out: &str) -> Vec<Version> {
    let mut seen: Vec<Version> = Vec::new();
    for v in out.lines().filter_map(|l| Version::parse(l.trim()).ok()) {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

/// Runs `docker WORDS` and returns the output whatever the exit code.
pub(super) async fn run(
    exec: &Executor,
    slot: Slot<'_>,
    words: &[&str],
    timeout: Duration,
) -> Result<Output, DriverError> {
    exec.run(&command_line(words), timeout)
        .await
        .map_err(|source| DriverError::Exec {
            slot: slot.label(),
            source,
        })
}

/// Runs `docker WORDS`; a non-zero exit is [`DriverError::Failed`] with
/// docker's message. Returns stdout.
pub(super) async fn run_ok(
    exec: &Executor,
    slot: Slot<'_>,
    what: &str,
    words: &[&str],
    timeout: Duration,
) -> Result<String, DriverError> {
    let out = run(exec, slot, words, timeout).await?;
    if out.code == Some(0) {
        Ok(out.stdout)
    } else {
        Err(failed(slot, what, describe(&out)))
    }
}

/// `exit N: <end of stderr>` (or of stdout when stderr is empty).
pub(super) fn describe(out: &Output) -> String {
    let code = match out.code {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".into(),
    };
    let text = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    let tail: String = {
        let chars: Vec<char> = text.chars().collect();
        let start = chars.len().saturating_sub(600);
        chars[start..].iter().collect()
    };
    if tail.is_empty() {
        code
    } else {
        format!("{code}: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("sh runs");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn command_lines_keep_every_word_whole() {
        let words = [
            "run",
            "a b",
            "$(touch /tmp/rollguard-docker-pwned)",
            "x'; echo injected; '",
            "{{.ID}} {{.Names}}",
            "",
            "{w_a}",
        ];
        let line = command_line(&words);
        assert!(line.starts_with("docker "), "{line}");
        // Swap `docker` for printf to see the words the shell hands over.
        let shown = sh(&format!("printf '[%s]\\n'{}", &line["docker".len()..]));
        let expect: String = words.iter().map(|w| format!("[{w}]\n")).collect();
        assert_eq!(shown, expect);
        assert!(!std::path::Path::new("/tmp/rollguard-docker-pwned").exists());
        let many: Vec<String> = (0..60).map(|i| i.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let shown = sh(&format!(
            "printf '%s\\n'{}",
            &command_line(&many)["docker".len()..]
        ));
        assert_eq!(shown.lines().count(), 60);
    }
}
