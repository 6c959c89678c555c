//! `rollguard store copy --from FROM --to TO`: a whole history moved from
//! one store to another (an SQLite file into PostgreSQL, or back), with
//! each table's rows counted on both sides and printed.

use super::location::{Location, Source};
use super::{Copied, Store};
use crate::error::{Code, UserError};

/// `rollguard store` commands.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// The `rollguard store` subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Copy a whole history (results, events, deployments and everything
    /// else) into a store that holds none yet, and check the counts.
    Copy {
        /// The history to copy: a file, or a postgres:// URL (its password
        /// from PGPASSWORD or ~/.pgpass).
        #[arg(long, value_name = "FILE|URL")]
        from: String,
        /// Where to copy it: a new file, or an empty PostgreSQL database.
        #[arg(long, value_name = "FILE|URL")]
        to: String,
    },
}

/// How old a lock's heartbeat may be for its rollout to count as still
/// running on the source (a worker heartbeats every few seconds).
const RUNNING_WITHIN_MS: i64 = 30_000;

/// Runs `rollguard store ...`; returns the exit code.
pub fn store(args: &StoreArgs) -> u8 {
    match &args.command {
        StoreCommand::Copy { from, to } => match copy(from, to) {
            Ok(copied) => {
                print!("{}", table(&copied));
                0
            }
            Err(e) => {
                eprintln!("{e}");
                e.code.exit_code()
            }
        },
    }
}

fn copy(from: &str, to: &str) -> Result<Vec<Copied>, UserError> {
    let env = |k: &str| std::env::var(k).ok();
    let location = |text: &str, flag: &str| {
        Location::parse(text, Source::CommandLine, &env).map_err(|e| {
            UserError::new(Code::Usage, format!("--{flag}: {}", e.message))
                .hint("give a history file's path or a postgres:// URL")
        })
    };
    let (from_at, to_at) = (location(from, "from")?, location(to, "to")?);
    if from_at == to_at {
        return Err(UserError::new(
            Code::Usage,
            "--from and --to name the same history",
        ));
    }
    if let Some(file) = from_at.file()
        && !file.exists()
    {
        return Err(UserError::new(
            Code::Usage,
            format!("--from: there is no history at {}", file.display()),
        )
        .hint("give the path of the history file to copy"));
    }
    let source = Store::open_at(&from_at)?;
    let target = Store::open_at(&to_at)?;
    Ok(source.copy_into(&target, RUNNING_WITHIN_MS)?)
}

/// The counts as a table, each table's rows on both sides, then the total.
fn table(copied: &[Copied]) -> String {
    let mut out = format!("{:<18} {:>12} {:>12}\n", "TABLE", "SOURCE", "TARGET");
    for c in copied {
        out.push_str(&format!(
            "{:<18} {:>12} {:>12}\n",
            c.table, c.source, c.target
        ));
    }
    let total: u64 = copied.iter().map(|c| c.target).sum();
    out.push_str(&format!(
        "copied {total} rows in {} tables; every count matches\n",
        copied.len()
    ));
    out
}
