//! The `:` command line's words: what a typed line asks for, and how a
//! line is completed. Pure; the console carries a [`Command`] out the way
//! its key would be (`:approve web` opens the same question as `a` on
//! web's row, `:deploy web v3` the same check and question as `d`).

use crate::config::Strategy;
use crate::model::Version;
use crate::rollout::cli::strategy_arg;

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
    /// Check a deploy, then ask it.
    Deploy {
        /// The app's name, as typed.
        app: String,
        /// The release.
        version: Version,
        /// A strategy other than the app's.
        strategy: Option<Strategy>,
    },
    /// Check a rollback by hand, then ask it.
    Rollback {
        /// The app's name, as typed.
        app: String,
        /// A deployment id or a version; `None` is the last good release.
        to: Option<String>,
    },
    /// Ask to break an app's abandoned lock.
    BreakLock {
        /// The app's name, as typed.
        app: String,
    },
    /// Use another theme.
    Theme(String),
    /// Show a view: `fleet`, `history` or `events`.
    Show(&'static str),
}

/// The words a line may start with, in the order completion offers them.
pub const COMMANDS: &[&str] = &[
    "deploy",
    "rollback",
    "approve",
    "hold",
    "fire",
    "abort",
    "pause",
    "resume",
    "break-lock",
    "history",
    "events",
    "fleet",
    "theme",
    "q",
];

/// The commands, as the error for an unknown one lists them.
const KNOWN: &str = ":deploy APP VERSION [STRATEGY], :rollback APP [ID|VERSION], :approve|:hold|:fire|:abort|:pause|:resume APP, :break-lock APP, :history, :events, :theme NAME, :q";

/// Reads a command line (without its `:`); the error says what is wrong
/// in words the footer shows.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Err(format!("type a command: {KNOWN}"));
    };
    let rest: Vec<&str> = words.collect();
    let nothing_after = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(format!(":{first} takes nothing after it"))
        }
    };
    let verb = match first {
        "q" | "quit" => return nothing_after(Command::Quit),
        "history" => return nothing_after(Command::Show("history")),
        "events" => return nothing_after(Command::Show("events")),
        "fleet" => return nothing_after(Command::Show("fleet")),
        "deploy" => return deploy(&rest),
        "rollback" => {
            return match rest.as_slice() {
                [app] => Ok(Command::Rollback {
                    app: (*app).into(),
                    to: None,
                }),
                [app, to] => Ok(Command::Rollback {
                    app: (*app).into(),
                    to: Some((*to).into()),
                }),
                _ => Err(":rollback takes an app, then optionally a deployment id or a version: :rollback APP [ID|VERSION]".into()),
            };
        }
        "theme" => {
            return match rest.as_slice() {
                [name] => Ok(Command::Theme((*name).into())),
                _ => Err(":theme takes the name of one theme: :theme NAME".into()),
            };
        }
        "break-lock" => {
            return match rest.as_slice() {
                [app] => Ok(Command::BreakLock { app: (*app).into() }),
                _ => Err(":break-lock takes the name of one app: :break-lock APP".into()),
            };
        }
        other => match Verb::parse(other) {
            Some(v) => v,
            None => return Err(format!("unknown command :{other} (try {KNOWN})")),
        },
    };
    match rest.as_slice() {
        [app] => Ok(Command::Rollout {
            verb,
            app: (*app).to_string(),
        }),
        _ => Err(format!(":{first} takes the name of one app: :{first} APP")),
    }
}

fn deploy(rest: &[&str]) -> Result<Command, String> {
    let (app, version, strategy) = match rest {
        [app, version] => (app, version, None),
        [app, version, s] => (app, version, Some(*s)),
        _ => {
            return Err(
                ":deploy takes an app and a release: :deploy APP VERSION [rolling|blue-green|canary]"
                    .into(),
            );
        }
    };
    let version = Version::parse(version).map_err(|e| format!(":deploy {app} {version}: {e}"))?;
    let strategy = strategy
        .map(|s| strategy_arg(s).map_err(|e| format!(":deploy strategy {s:?}: {e}")))
        .transpose()?;
    Ok(Command::Deploy {
        app: (*app).into(),
        version,
        strategy,
    })
}

/// What completion can offer: the apps, each app's known releases, the
/// themes.
#[derive(Clone, Debug, Default)]
pub struct Words<'a> {
    /// The apps' names.
    pub apps: Vec<&'a str>,
    /// The releases known for an app (by name).
    pub releases: Vec<(&'a str, Vec<String>)>,
    /// Theme names.
    pub themes: Vec<&'a str>,
}

/// Completes the last word of `line`: to the longest start all candidates
/// share (a single candidate gets a space after it). Returns the new line
/// and the candidates (for the footer), or `None` when nothing matches.
pub fn complete(line: &str, words: &Words) -> Option<(String, Vec<String>)> {
    let ends_in_space = line.is_empty() || line.ends_with(' ');
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (done, partial) = if ends_in_space {
        (parts.as_slice(), "")
    } else {
        let (last, done) = parts.split_last()?;
        (done, *last)
    };
    let candidates: Vec<String> = match done {
        [] => COMMANDS.iter().map(|s| s.to_string()).collect(),
        [cmd] if takes_app(cmd) => words.apps.iter().map(|s| s.to_string()).collect(),
        ["theme"] => words.themes.iter().map(|s| s.to_string()).collect(),
        ["deploy" | "rollback", app] => words
            .releases
            .iter()
            .find(|(a, _)| a == app)
            .map(|(_, r)| r.clone())
            .unwrap_or_default(),
        ["deploy", _, _] => Strategy::ALL
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let matching: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(partial))
        .collect();
    let first = matching.first()?;
    let common = matching.iter().fold(first.clone(), |acc, c| {
        acc.chars()
            .zip(c.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect()
    });
    let mut out: String = done.iter().map(|w| format!("{w} ")).collect();
    out.push_str(&common);
    if matching.len() == 1 {
        out.push(' ');
    }
    Some((out, matching))
}

fn takes_app(cmd: &str) -> bool {
    matches!(cmd, "deploy" | "rollback" | "break-lock") || Verb::parse(cmd).is_some()
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
            parse("pause web"),
            Ok(Command::Rollout {
                verb: Verb::Pause,
                app: "web".into()
            })
        );
        assert_eq!(
            parse("fire"),
            Err(":fire takes the name of one app: :fire APP".into())
        );
        assert!(
            parse("launch web")
                .unwrap_err()
                .starts_with("unknown command :launch")
        );
        assert!(parse("").unwrap_err().starts_with("type a command"));
        assert!(parse("q now").is_err());
        assert_eq!(parse("theme mono"), Ok(Command::Theme("mono".into())));
        assert_eq!(parse("history"), Ok(Command::Show("history")));
    }

    #[test]
    fn deploy_and_rollback_lines() {
        assert_eq!(
            parse("deploy checkout v3"),
            Ok(Command::Deploy {
                app: "checkout".into(),
                version: Version::parse("v3").unwrap(),
                strategy: None
            })
        );
        assert_eq!(
            parse("deploy checkout v3 canary"),
            Ok(Command::Deploy {
                app: "checkout".into(),
                version: Version::parse("v3").unwrap(),
                strategy: Some(Strategy::Canary)
            })
        );
        assert!(parse("deploy checkout").is_err());
        assert!(
            parse("deploy checkout v3 sideways")
                .unwrap_err()
                .contains("sideways")
        );
        assert!(
            parse("deploy checkout 'v3;rm'").is_err(),
            "not a release name"
        );
        assert_eq!(
            parse("rollback checkout"),
            Ok(Command::Rollback {
                app: "checkout".into(),
                to: None
            })
        );
        assert_eq!(
            parse("rollback checkout 12"),
            Ok(Command::Rollback {
                app: "checkout".into(),
                to: Some("12".into())
            })
        );
    }

    #[test]
    fn completion_offers_commands_apps_releases_and_strategies() {
        let words = Words {
            apps: vec!["checkout", "search"],
            releases: vec![("checkout", vec!["v1".into(), "v2".into(), "v3".into()])],
            themes: vec!["default", "dark"],
        };
        assert_eq!(complete("dep", &words).unwrap().0, "deploy ");
        assert_eq!(complete("deploy ch", &words).unwrap().0, "deploy checkout ");
        let (line, all) = complete("deploy checkout ", &words).unwrap();
        assert_eq!(line, "deploy checkout v");
        assert_eq!(all, ["v1", "v2", "v3"]);
        assert_eq!(
            complete("deploy checkout v3 c", &words).unwrap().0,
            "deploy checkout v3 canary "
        );
        assert_eq!(complete("theme d", &words).unwrap().1, ["default", "dark"]);
        assert_eq!(complete("theme da", &words).unwrap().0, "theme dark ");
        assert_eq!(complete("abort s", &words).unwrap().0, "abort search ");
        assert!(complete("deploy nowhere ", &words).is_none());
        assert!(complete("zzz", &words).is_none());
    }
}
