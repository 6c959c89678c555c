//! The `:` command line's words: what a typed line asks for. Pure; the
//! console carries a [`Command`] out the way its key would be
//! (`:approve web` opens the same question as `a` on web's row). Today:
//! `:q` (`:quit`) and the rollout verbs `:approve`, `:hold`, `:fire` and
//! `:abort APP`; `:deploy`, `:rollback` and `:theme`, completion and a
//! history of lines come with the actions they start.

use super::control::Verb;

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Leave the console.
    Quit,
    /// Ask to send `verb` to the rollout of the app named `app`.
    Rollout {
        /// The verb.
        verb: Verb,
        /// The app's name, as typed.
        app: String,
    },
}

/// The commands, as the error for an unknown one lists them.
const KNOWN: &str = ":approve APP, :hold APP, :fire APP, :abort APP, :q";

/// Reads a command line (without its `:`); the error says what is wrong
/// in words the footer shows.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Err(format!("type a command: {KNOWN}"));
    };
    let rest: Vec<&str> = words.collect();
    let verb = match first {
        "q" | "quit" if rest.is_empty() => return Ok(Command::Quit),
        "q" | "quit" => return Err(format!(":{first} takes nothing after it")),
        "approve" => Verb::Approve,
        "hold" => Verb::Hold,
        "fire" => Verb::Fire,
        "abort" => Verb::Abort,
        other => return Err(format!("unknown command :{other} (try {KNOWN})")),
    };
    match rest.as_slice() {
        [app] => Ok(Command::Rollout {
            verb,
            app: (*app).to_string(),
        }),
        _ => Err(format!(":{first} takes the name of one app: :{first} APP")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_commands() {
        assert_eq!(parse("q"), Ok(Command::Quit));
        assert_eq!(parse(" quit "), Ok(Command::Quit));
        assert_eq!(
            parse("abort  web"),
            Ok(Command::Rollout {
                verb: Verb::Abort,
                app: "web".into()
            })
        );
        assert_eq!(
            parse("fire"),
            Err(":fire takes the name of one app: :fire APP".into())
        );
        assert!(
            parse("deploy web v3")
                .unwrap_err()
                .starts_with("unknown command :deploy")
        );
        assert!(parse("").unwrap_err().starts_with("type a command"));
        assert!(parse("q now").is_err());
    }
}
