//! rollguard: a terminal console that watches a fleet of applications,
//! judges their health, and deploys and rolls them back. The binary in
//! `main.rs` is a thin command line over this library; tests use the
//! library and the binary as a user would.
//!
//! # The flow
//!
//! ```text
//! config.toml ──load + validate──► Fleet (immutable, shared)
//!                                     │
//!   monitor (console, agent, demo): the prober's lease decides the role
//!     prober: scheduler, one task per (instance, probe), jittered;
//!             http · tcp · prometheus · command and docker through exec
//!             (local | ssh)
//!     reader: results the prober wrote, read back by row id every second
//!                                     │ ProbeResult
//!              ┌──────────────────────┴─────────────────┐
//!              ▼                                        ▼
//!      health tracker (verdicts)              store writer (one thread,
//!      console state, sparklines              batched transactions;
//!      incident watch (prober only) ──┐       prober only)
//!      /metrics slots (prober only)   │
//!                                     ▼                 ▼
//!      the history (an SQLite file, WAL; or PostgreSQL): results, verdicts,
//!      incidents, events, deployments, batches, changes, snapshots, releases,
//!      locks, commands, the prober's lease, the notification outbox
//!              ▲                      ▲                       ▲
//!              │                      │                       │
//!   console / CLI ──► rollout service ──start (one tx)──► rollout worker
//!   (print, ask,      (preflight, start,   then spawn      (detached process:
//!    send commands)    rollback, recover,                   engine + gate,
//!                      send, lock)                          drivers, traffic)
//!   `events --follow`: the audit log, read by row id every 250 ms
//!   `report`, `incident`: read-only; results aggregated per app, probe
//!   and hour in SQL, then computed and written by pure functions
//!
//!   notifier (run by the lease holder, and by every rollout worker while
//!   it runs; reads and writes the history): events past the outbox's
//!   cursor → outbox rows (one tx) → claimed with a lease (one tx) → each
//!   sent in its own task (slack · discord · webhook · pagerduty · email
//!   over SMTP · command), retried with backoff, then sent or
//!   `notification_failed`
//!   event stream (`websocket` receivers; run by the lease holder only):
//!   the audit log read by row id every 250 ms → each client with the
//!   token, through a bounded buffer (no outbox)
//!   /metrics (`[metrics] listen`; run by the lease holder only): the hub
//!   counts each result in its probe's slot (atomics); a scrape copies
//!   the slots, verdicts and rollouts and writes Prometheus' text; the
//!   history's deployments, rollbacks and incidents counted every 10 s
//! ```
//!
//! The store is the meeting point. A rollout does not live inside the
//! process that started it: [`rollout::service::start`] writes the lock,
//! the deployment, its batches and first events in one transaction, then
//! spawns a detached worker that owns the app's lock, heartbeats it, and
//! takes operators' commands from the store. A console or SSH session
//! that drops loses nothing.
//!
//! Probing has one owner per history too: the process that holds the
//! prober's lease (`monitor/lease.rs`: taken when free, renewed every
//! second, taken over when its holder's process is gone or its heartbeat is
//! 5 s old) probes and writes results, verdicts and incidents; every other
//! console reads what it writes. `rollguard agent` ([`agent`]) is a
//! monitor without a console. When an outage begins and ends is decided in
//! `health/incident.rs` (a pure function); the incident watch records it.
//!
//! One file answers each of the questions asked most:
//! - what a rollout does next: `rollout/decide.rs` (a pure function);
//! - starting one: `rollout/service.rs` (`start`: preflight, one
//!   transaction written by `store/start.rs`, then the worker);
//! - the app's lock, who holds it and when it is abandoned:
//!   `rollout/lock.rs` (its row: `store/lock.rs`);
//! - the console's keys: `keys/` (the table, `keys/table.rs`; a remap
//!   checked in `keys/remap.rs`);
//! - what the store writes when a batch ends: `store/batch.rs`;
//! - the store's API: the public methods of [`store::Store`], one file per
//!   table under `store/`, taking and giving the model's types; SQL appears
//!   nowhere else;
//! - the store API that a second backend implements: [`store::db::Db`]
//!   (`store/db/`: statements with numbered arguments, rows read by
//!   position, transactions; SQLite's side in `db/sqlite.rs`), under the
//!   tables' files, which are written once; `rusqlite` appears only there,
//!   where a file is opened and migrated (`store/file.rs`,
//!   `store/schema.rs`) and where SQLite's error codes are read
//!   (`store/error.rs`); a PostgreSQL database is opened in
//!   `store/server.rs`.
//!
//! # Modules
//!
//! | module | holds | does not |
//! |---|---|---|
//! | [`printable`] | control characters and bidirectional overrides made visible before text reaches a terminal; joiners and emoji presentation marks left out, so the width the console measures is the width drawn | |
//! | [`host`] | this machine: its name, the user, a random token that tells this process's leases and claims apart, its processes (`/proc/PID/stat`: alive, start time, parent, group), whether the disk holding a file is full; the crate's one door to libc (signals, process groups and sessions, the effective user, write access, a hung-up standard output, a child's session or parent's-death signal), the only module allowed `unsafe` | know about locks, leases or apps |
//! | [`clock`] | times as people read them: a stored time in local time (`local_time`, `day_time`, `minute_time`, `clock_time`), each with the offset of its own date; the local zone (`TZ`, else `/etc/localtime`) read once and kept (`read_zone`, before the console's first frame), so writing a time reads no file | read the clock for a decision (that is `model::now_ms`) |
//! | [`shutdown`] | the signal a long-running task stops on ([`shutdown::Shutdown`]: the next tick, a pause or the signal itself, each wait ending early when it comes) | decide when to stop |
//! | [`condition`] | the condition language of probes (comparisons of values or arithmetic on `[BODY]`, `[STATUS]`, `[VALUE]`, `[CANARY]`, ...), parsed once with the column of an error, evaluated on every response; pure (`condition/`: the parsed tree in `syntax`, parsing in `parse`, evaluation and its messages in `eval`) | run a probe |
//! | [`promql`] | a PromQL query's placeholders (`QUERY_PLACEHOLDERS`) filled in, each value escaped inside the string literal it stands in and taken literally in a regex matcher; a placeholder where a value could add to the query refused (`fill`); pure | ask Prometheus |
//! | [`shell`] | shell templates with quoting: each `{name}` replaced by quoted text, templates that put a placeholder where quoting cannot protect it refused (`render`, `render_plain`, `validate`, `quote`); pure | run anything |
//! | [`error`] | the one [`error::Code`] enum (`E_...`, exit code, meaning) and [`error::UserError`] | decide anything |
//! | [`model`] | the vocabulary: probe results, error kinds, verdicts, `Version`; [`model::rollout`]: deployment and batch states (and where a batch settles when its deployment ends), change actions, verbs, outcomes, triggers, sides; [`model::event`]: `EventKind`, every event with its typed payload (kinds and JSON meet only in its `to_stored`/`from_stored`; a gate's evidence stored flat, older nested records lifted on read); [`model::evidence`]: what a gate saw, and what it spent of its failure budget in words (`GateOutcome::budget_words`); [`model::budget`]: a failure budget (`FailureBudget`); [`model::topic`]: the topics a `[[notify]]` receiver listens to (`on`), and which event is which; [`model::incident`]: what an incident holds | I/O |
//! | [`keys`] | the console's keys: every action a key may ask for (`Action`), the one table of bindings with the views and modes each applies in (`KEYMAP`), a key as written and read (`Key`), and `[console.keys]`'s lines checked against the table (`remapped`: an unknown action, an unreadable key, a key that would mean two things, at the line at fault); pure (`keys/`: `action`, `views` (views and modes), `key`, `table`, `remap`) | know the console's views or modes as values; draw |
//! | [`config`] | serde types (`config/types/`: one file per part: fleet, app, probe, driver, traffic, rollout, store), discovery, `[store] url` (where the history is, `${ENV}` expanded and kept as a secret, its place kept for an error; read as a `store::Location` by the caller), the app names of a file read without its checks (for completion), `[[notify]]` receivers (kept by each app they hear of, their URLs, keys, passwords and tokens as secrets), `${ENV}` interpolation (the values kept as secrets, masked or templated before they are stored or logged), validation with `FILE:LINE:COL` (`config/validate/`: one file per section, the context they share in `context.rs`; its errors printed with control characters escaped; `[console.keys]` checked against the console's key table in [`keys`], shell templates with [`shell`], conditions with [`condition`], PromQL placeholders with [`promql`]), durations with bounds; the index of an app by name (`Fleet::app_index`, `E_USAGE` naming the apps there are) | run anything |
//! | [`exec`] | one executor interface; local and SSH (a master connection per host; `exec/ssh/`: the runs, the master (`master.rs`), the wrapper and its markers (`wrapper.rs`)), running lines built from [`shell`] templates; a host key ssh refuses read out of its banner into what changed and what to do (`host_key`, pure; the banner goes to the log only) | know about apps |
//! | [`store`] | the connection the tables' files speak, which a second backend implements (`db`: statements, rows, transactions; SQLite's side in `db/sqlite.rs`, PostgreSQL's in `db/postgres/`: its client on a thread of its own, TLS with rustls; the statements the dialects write differently named in `db::Dialect`), where the history is (`location`: a file, or a postgres:// URL read as libpq reads it, with its environment, password file and sslmode; another scheme refused), a PostgreSQL database opened and its schema made or migrated at SQLite's version numbers under an advisory lock (`server`), a whole history copied between stores with its counts checked (`copy`; `cli`: `rollguard store copy`), an SQLite file's schema and migrations and its opening (`file`) (only a missing file is created; read-only for reading commands, and as immutable where SQLite cannot make its `-shm` file (a read-only file system, a full disk) and no `-wal` file holds changes; a full disk said in words (`StoreError::DiskFull`); a damaged or foreign file is an error; a file of the history is never opened behind SQLite's back), the batched result writer, typed queries, results read back by row id, a deployment's start in one transaction, its end with its batches settled in one, lock rows (the holder's host, pid and process start time; a schema before 5 read without the start time), lease, incident, verdict and command rows, a deployment's kind read from its stored plan (`Deployment::kind`), rows typed in the model's words (a deployment's strategy, state and outcome, a batch's state, a change's action and state, a command's verb: a stored name it does not know is `E_STORE` naming the table, column and value), one file per rollout table (what a batch's end writes answered in `store/batch.rs`), a store error as the user's (`E_STORE` with its hint, `From<StoreError> for UserError`), the notification outbox (`outbox`: rows made past a cursor, claimed with a lease, at least once; each receiver's newest about an app), the report's reads (`report`: results folded in one ordered index scan, counts per hour, deployments and rollbacks counted, the rows around an incident) | hold business rules (who counts as gone, when an incident opens) |
//! | [`health`] | consecutive counters, instance and app verdicts, when an incident opens, widens and resolves | talk to the network |
//! | [`completion`] | shell completion: the script `rollguard completions SHELL` prints (clap_complete's dynamic one: at a TAB the shell asks `rollguard` with `COMPLETE=SHELL`), and the candidates offered: apps from the config (read as TOML, unchecked) and the history, an app's releases from the history | write anything, or ask a host |
//! | [`probe`] | http, tcp, command, docker and prometheus probes (`prometheus`: a PromQL query filled by [`promql`], the API's answer read as a value or no data, and the comparison of a rollout's new side with its old, `[CANARY]` against `[BASELINE]`), judged by the [`condition`] language; plain `http://` spoken as HTTP/1.1 over kept connections (`http1`; an answer's head and chunked body read in `http1/framing.rs`, pure); the scheduler (each run on the side its instance serves, `LivePorts`); every result made in one place in the prober, its message with the config's secrets masked | decide health |
//! | [`driver`] | docker, process and command drivers: current, present, snapshot (a stopped container is kept in it, running no release), start, restore, told apart in one `match` (`each!`); `driver/docker/`: the driver, its command runner, `docker inspect`, the snapshot's data, what to create, kept containers; `driver/process/`: the driver, and the shell it runs on the host (`script.rs`) | route traffic |
//! | [`traffic`] | nginx (file, validate, reload), HAProxy (runtime API), command hooks | start instances |
//! | [`audit`] | the audit log as people read it: `rollguard events` (its options, the newest events oldest first, `--follow` polling the history for rows newer than the last seen, one line of words per event from its typed payload, JSON Lines) | write the history |
//! | [`report`] | reading history back: `rollguard report` (`availability`: availability as the share of results that passed, p50/p95/p99 of passing latencies, the longest run of failures per instance and the longest incident per app, deployments by outcome, rollbacks automatic or by hand, the mean time from an incident's opening to healthy again; the console's hourly availability as `HourBucket`s; `render`: table, JSON, CSV), `rollguard incident` (`timeline`: one incident's or deployment's rows loaded, `postmortem`: written as Markdown, pure; `markdown`: host text escaped or in code spans), `cli` | write the history, open it for writing, or create it |
//! | [`notify`] | receivers' topics (`topic`, kept in [`model::topic`]), what a message says (`message`, pure: one incident → one message and one "resolved"), each receiver type's body (`payload`: Slack blocks, Discord embed, the webhook JSON, PagerDuty trigger/resolve, a command's stdin and Markdown timeline), an email's subject, thread headers and text (`email`, pure), the webhook's HMAC-SHA256 signature (`signature`), backoff and giving up (`retry`), events into outbox rows (`enqueue`), one attempt over HTTP or a quoted command template (`deliver`) or SMTP (`smtp`), the [`notify::Notifier`] task (`sender`: run by the prober's lease holder and by every rollout worker while it runs, so a rollout's notifications go out with no console open), the live event stream of `websocket` receivers (`stream`: a loopback listener run by the prober's lease holder, a token checked at the handshake, a bounded buffer per client, no outbox), `rollguard notify test` (`cli`) | block probing, a gate or a rollback; store a secret |
//! | [`rollout`] | `plan`, `routing` and `decide` (pure: the next stage, a retry, when and how to roll back, whether a recovery may resume or must carry a rollback on and from which stage, which batch a failure belongs to (the one whose instance failed), the outcome, the order of restores; where traffic goes without a failing slot, and who serves while a rollback restores: never a slot seen failing, the slot that started the failed release last alone when nothing good serves), `gate` (each probe on each slot, and a comparison probe once a round for the gate's slots against the old slots that still serve, which the engine names; every round of every slot recorded in the rollout's `Seen`), `engine` (carries decisions out and records them, a file each for its records, commands, stages, the replacement of a batch, its gates and its way back; `plan` says where it pauses; `engine/rest.rs`: a slot whose last probe failed leaves traffic while its gate judges it, for its old side beside it when that still runs, and while one fails the rest of its release moves to the old sides beside it; the same while a rollback waits for a person; its way back, in `engine/restore.rs`, puts each restored slot back into traffic as soon as its gate passes), `eject` (a slot seen failing while a start is under way leaves traffic at once), `service` (the one way in: preflight, start, rollback checks, recover, send; `send` writes a command only to the deployment it names, and only where `decide::accepts` says the verb applies, the rule the rollout itself follows: `E_NO_ROLLOUT` for one that ended, `E_WRONG_STATE` otherwise), `lock` (who holds it (the holder's host and pid from [`host`]), and the one pure decision of when it is abandoned: a heartbeat older than 30 s by the store's clock read with the lock (the server's for PostgreSQL), or its pid here gone or another process's; `status`, `recover` and `--break-lock` all ask it), `report` (a deployment's typed report: the store's row with its batches, changes, commands and events), `worker` (fenced: stops at once when its lock is another's or could not be refreshed for 15 s; changes nothing when it cannot write its log; given its history as `--db PATH`, or a PostgreSQL history's whole URL in `$ROLLGUARD_DB`, never on its command line; its log in `rollouts/` beside the history file, or the default history's folder), `cli` (printing over the service), `consent` (the CLI's confirmations: `[y/N]`, a protected app's name typed at the prompt or given with `--yes --confirm-app NAME`; the reason `abort` and `fire` need, `--reason` or typed at the prompt) | print or read stdin, except `cli` and `consent` |
//! | [`state`] | the fleet state the monitor fills and the console and `/metrics` read (`FleetState`: last results, sparklines, success rates over `RATE_WINDOW_MS`, verdicts, the rollouts read back), and what this process does for the fleet (`Role`: probing, reading another's probes, alone); bounded by position | I/O; draw |
//! | [`metrics`] | `/metrics` for Prometheus: each probe's slot of counts the hub fills (`probes`: last result, latency histogram, failures per kind; atomics, found by position), the history's counts read every 10 s (`history`), the text format (`exposition`, pure, handed on in 64 KiB pieces), the listener the lease holder runs (`serve`: the text sent piece by piece as it is written) | block the hub; export a secret |
//! | [`monitor`] | watching a fleet: the prober's lease and the role it gives (`lease`), probing while it is held (`probing`: scheduler, the release watch in `releases`, the incident watch in `incidents`, which leaves the instances a running rollout has changed to its gates; results go through one hub to the [`state`] and the history writer), reading what the holder wrote otherwise and the recent past at start (`reader`), rollouts and the live sides read back every second | draw |
//! | [`agent`] | `rollguard agent`: a monitor without a console, journald-ready log lines, SIGTERM, the example systemd unit | draw |
//! | [`tui`] | the console: data state ([`state`]) apart from view state; components as named fields of `App` (fleet view with its `/` filter, its visible rows kept apart from the fleet index; app view with releases, deployments and what each receiver was last told; History; one deployment, the Rollout view with its "why" card and timeline; Events; Logs; help; the confirm modal; the log pane; one text input), one `Mode` for what is open (a key applied by mode in `tui/app/keys.rs`), a keymap (`tui::keymap`: the table of [`keys`] with `[console.keys]`'s remaps, looked up by view and mode; keys, help and footer come from it), `:` commands with completion and a history of lines, a read-only mode (`--read-only`, `[console] read_only`) in which no key or command acts, one queue for what background tasks report, views that say what to read and a run loop that reads it off the input path, deploys and rollbacks checked through the rollout service before they are asked, every rollout key bound by id to the deployment the screen shows (`App::rollout_target`: in the Deployment view only the deployment shown, and only while the rollouts read say it runs; `R` opens the app's newest deployment, read when it opens; an open question rechecked before each frame and each key, `control::still_applies`, so one about a deployment that ended says so and sends nothing), destructive actions as `ConfirmAction` → modal (opens on Cancel; a reason required for abort, fire, rollback and breaking a lock; a protected app's name typed) → `ConfirmedAction` → the one `match` in `tui/perform.rs` that goes through the rollout service (a start spawns a detached worker); themes (built-in and files, `NO_COLOR`); the terminal held and given back (Ctrl-Z, a panic), written to only where cells changed, the mouse only with `--mouse`, one message below 80x24 | I/O on the draw or input path |
//! | [`demo`] | the demo fleet, its demo application (with `/metrics` of made-up traffic), its Slack stand-in (`receiver`: a loopback HTTP server its `[[notify]]` posts to, saying what it got in the log), its config file (`fleet_file`), its private nginx when one is installed (`nginx`), its private Prometheus when one is installed (`prometheus`: scraping the canary app's every side), when its bad release turns bad (`bad`: once the rollout that deploys it monitors every instance, whatever the machine's speed), and its teardown (`teardown`: whichever way the demo ends, rollout workers, instances and Prometheus, then nginx, stopped in that order and the folder removed) | ship in the hot path |
//! | [`manual`] | `rollguard man`: one roff page from the clap definition (clap_mangen), every command a subsection with its synopsis and options | |
//!
//! # Layers
//!
//! Imports point one way: a module may use modules of the layers below
//! its own, and one beside it in its own layer where no circle forms;
//! never one above. Pure pieces that several layers need are
//! leaves at the bottom. The table above is in this order. From the
//! bottom (the test `layers_point_one_way` below holds the code to this
//! list, and `the_crate_documentation_states_the_layers` this list to the
//! test's):
//!
//! 1. `printable`, `host`, `clock`, `shutdown`, `condition`, `promql`, `shell`: the leaves; they use nothing of the crate
//! 2. `error`: what a user is told
//! 3. `model`: the vocabulary
//! 4. `keys`: the console's key table, which the config checks `[console.keys]` against
//! 5. `config`: the fleet as loaded and checked
//! 6. `exec`, `store`, `health`: running commands on hosts, the history, verdicts
//! 7. `completion`: candidates read from the config and the history
//! 8. `probe`, `driver`, `traffic`: the adapters to the real things
//! 9. `audit`: the audit log as people read it
//! 10. `report`: the history read back (it words events as `audit` does)
//! 11. `notify`: telling people (a command receiver's timeline as `report` writes it)
//! 12. `rollout`: deploys and rollbacks (its worker runs a notifier)
//! 13. `state`: the fleet state, which holds the rollouts read back
//! 14. `metrics`: `/metrics`, from the state and the history
//! 15. `monitor`: watching the fleet, filling the state, serving `/metrics`, notifying
//! 16. `agent`, `tui`, `demo`, `manual`: what a command runs
//!
//! Each piece has one path: the leaves and `state` are named where they
//! live (`crate::condition`, `crate::shell`, `model::topic`, `state::Role`),
//! not re-exported from the layers that once held them.
//!
//! # Sizes
//!
//! A file holds one concept and a function one step: not counting test
//! modules, at most 8 files of `src/` are over 600 lines and at most 15
//! functions over 80 (the test `files_and_functions_stay_small` below
//! holds the house to it and names them; `cargo test --lib
//! files_and_functions -- --nocapture` lists them).
//!
//! # Rules the design keeps
//!
//! 1. Pure core, effects at the edge: plans, routing, verdicts, conditions
//!    and the rollout's decisions (`rollout::decide`) are pure functions
//!    with unit tests; the engine only carries decisions out; drivers,
//!    traffic and executors are thin adapters tested against the real
//!    thing.
//! 2. Write before act: a rollout's start is recorded before its worker
//!    runs, and each change before it is made; recovery reads the records.
//!    A notification is an outbox row before it is sent.
//! 3. One writer for probe results; rollout writes are transactions.
//! 4. The console never waits: I/O happens in tasks.
//! 5. No user value is pasted into a shell string: commands come from
//!    templates whose values are quoted.
//! 6. Errors a user sees have a stable code from [`error::Code`] and say
//!    what to do next; the README's table is checked against the enum.
//! 7. Nothing a host sends or a config holds reaches a terminal raw
//!    ([`printable`]); no secret reaches the store, a log or `--json` (a
//!    probe result's message is masked where the prober makes it).
//! 8. Layers point one way (see "# Layers"); a test holds the house to
//!    it.
//! 9. Liveness is a heartbeat judged by the store's clock (the server's
//!    for a history in PostgreSQL, read with the row), never a pid alone
//!    and never one machine's clock against another's.

pub mod agent;
pub mod audit;
pub mod clock;
pub mod completion;
pub mod condition;
pub mod config;
pub mod demo;
pub mod driver;
pub mod error;
pub mod exec;
pub mod health;
pub mod host;
pub mod keys;
pub mod manual;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod notify;
pub mod printable;
pub mod probe;
pub mod promql;
pub mod report;
pub mod rollout;
pub mod shell;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod traffic;
pub mod tui;

#[cfg(test)]
mod tests {
    //! The house held to its layers: every use of one top-level module by
    //! another, read from the source (`crate::…` paths, and `super::`
    //! chains that reach the crate's root), outside `#[cfg(test)]` items,
    //! comments and literals, points down [`LAYERS`] and forms no circle.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// The layers, from the bottom. A module may use the modules of the
    /// layers below its own, and those of its own layer as long as no
    /// circle forms; never one above. The crate documentation's "# Layers"
    /// states the same list.
    const LAYERS: &[&[&str]] = &[
        &[
            "printable",
            "host",
            "clock",
            "shutdown",
            "condition",
            "promql",
            "shell",
        ],
        &["error"],
        &["model"],
        &["keys"],
        &["config"],
        &["exec", "store", "health"],
        &["completion"],
        &["probe", "driver", "traffic"],
        &["audit"],
        &["report"],
        &["notify"],
        &["rollout"],
        &["state"],
        &["metrics"],
        &["monitor"],
        &["agent", "tui", "demo", "manual"],
    ];

    /// What the reader keeps of Rust source.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Token {
        /// A name or keyword.
        Ident(String),
        /// `::`.
        PathSep,
        /// Any other character that is not blank.
        Punct(char),
    }

    use Token::{Ident, PathSep, Punct};

    fn ident(name: &str) -> Token {
        Ident(name.into())
    }

    /// The tokens of `text`, each with its line; comments, string and
    /// character literals, numbers and lifetimes are left out.
    fn tokens(text: &str) -> Vec<(usize, Token)> {
        let chars: Vec<char> = text.chars().collect();
        let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
        let mut out = Vec::new();
        let (mut i, mut line) = (0, 1);
        // Skips a string's body from `i` to its closing quote (and
        // `hashes` #s for a raw one); returns the index after it.
        let string = |mut i: usize, raw: bool, hashes: usize, line: &mut usize| {
            while i < chars.len() {
                match chars[i] {
                    '\\' if !raw => i += 1,
                    '\n' => *line += 1,
                    '"' if (1..=hashes).all(|k| at(i + k) == '#') => return i + 1 + hashes,
                    _ => {}
                }
                i += 1;
            }
            i
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '\n' {
                line += 1;
                i += 1;
            } else if c.is_whitespace() {
                i += 1;
            } else if c == '/' && at(i + 1) == '/' {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && at(i + 1) == '*' {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                }
            } else if c == '"' {
                i = string(i + 1, false, 0, &mut line);
            } else if c == '\'' {
                // 'x', '\n', '\u{1b}' are characters; 'a (no closing
                // quote after one character) is a lifetime or a label.
                if at(i + 1) == '\\' {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                    while at(i).is_alphanumeric() || at(i) == '_' {
                        i += 1;
                    }
                }
            } else if c.is_ascii_digit() {
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            } else if c.is_alphabetic() || c == '_' {
                let start = i;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let raw = matches!(word.as_str(), "r" | "br" | "cr");
                if raw && (at(i) == '"' || at(i) == '#') {
                    let hashes = chars[i..].iter().take_while(|c| **c == '#').count();
                    if at(i + hashes) == '"' {
                        i = string(i + hashes + 1, true, hashes, &mut line);
                        continue;
                    }
                    // r#name: a raw identifier.
                    i += hashes;
                    let start = i;
                    while at(i).is_alphanumeric() || at(i) == '_' {
                        i += 1;
                    }
                    out.push((line, Ident(chars[start..i].iter().collect())));
                } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                    i = string(i + 1, false, 0, &mut line);
                } else if word == "b" && at(i) == '\'' {
                    i += 1;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1 + usize::from(chars[i] == '\\');
                    }
                    i += 1;
                } else {
                    out.push((line, Ident(word)));
                }
            } else if c == ':' && at(i + 1) == ':' {
                out.push((line, PathSep));
                i += 2;
            } else {
                out.push((line, Punct(c)));
                i += 1;
            }
        }
        out
    }

    /// `tokens` without the items that `#[cfg(test)]` marks.
    fn without_tests(tokens: &[(usize, Token)]) -> Vec<(usize, Token)> {
        let attr = [
            Punct('#'),
            Punct('['),
            ident("cfg"),
            Punct('('),
            ident("test"),
            Punct(')'),
            Punct(']'),
        ];
        let mut out = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if attr
                .iter()
                .enumerate()
                .all(|(k, t)| tokens.get(i + k).is_some_and(|(_, x)| x == t))
            {
                i = item_end(tokens, i + attr.len());
            } else {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
        out
    }

    /// Where the item that starts at `i` ends: after its `;` or its
    /// closing `}`, or (a field, an arm) at its `,` or the `}` around it.
    fn item_end(tokens: &[(usize, Token)], mut i: usize) -> usize {
        let mut depth = 0i32;
        while let Some((_, t)) = tokens.get(i) {
            match t {
                Punct('(' | '[' | '{') => depth += 1,
                Punct(')' | ']') => depth -= 1,
                Punct('}') if depth == 0 => return i,
                Punct('}') => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                Punct(';' | ',') if depth == 0 => return i + 1,
                _ => {}
            }
            i += 1;
        }
        i
    }

    /// The names a path goes on with at `i`, each with its line: one
    /// name, or the first name of each item of a `{…}` group.
    fn continued(tokens: &[(usize, Token)], i: usize) -> Vec<(usize, String)> {
        match tokens.get(i) {
            Some((line, Ident(name))) => vec![(*line, name.clone())],
            Some((_, Punct('{'))) => {
                let mut names = Vec::new();
                let mut depth = 0;
                let mut item_start = true;
                for (line, t) in &tokens[i..] {
                    let starts = item_start;
                    item_start = false;
                    match t {
                        Punct('{') => {
                            depth += 1;
                            item_start = depth == 1;
                        }
                        Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Punct(',') if depth == 1 => item_start = true,
                        Ident(name) if starts && depth == 1 => names.push((*line, name.clone())),
                        _ => {}
                    }
                }
                names
            }
            _ => Vec::new(),
        }
    }

    /// The names that follow the crate's root in `tokens`, each with its
    /// line: `crate::NAME`, `crate::{NAME, …}`, and a `super::` chain that
    /// climbs from a module `depth` deep (counting inline `mod`s) to the
    /// root.
    fn from_root(tokens: &[(usize, Token)], depth: usize) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        let mut braces = 0usize;
        let mut inline: Vec<usize> = Vec::new();
        let get = |k: usize| tokens.get(k).map(|(_, t)| t);
        for (i, (_, t)) in tokens.iter().enumerate() {
            let before = i.checked_sub(1).and_then(get);
            match t {
                Punct('{') => braces += 1,
                Punct('}') => {
                    if inline.last() == Some(&braces) {
                        inline.pop();
                    }
                    braces = braces.saturating_sub(1);
                }
                Ident(w)
                    if w == "mod"
                        && matches!(get(i + 1), Some(Ident(_)))
                        && get(i + 2) == Some(&Punct('{')) =>
                {
                    inline.push(braces + 1);
                }
                Ident(w)
                    if w == "crate"
                        && before != Some(&Punct('$'))
                        && get(i + 1) == Some(&PathSep) =>
                {
                    found.extend(continued(tokens, i + 2));
                }
                Ident(w) if w == "super" && before != Some(&PathSep) => {
                    let mut k = i;
                    let mut climbed = 0;
                    while get(k) == Some(&ident("super")) && get(k + 1) == Some(&PathSep) {
                        climbed += 1;
                        k += 2;
                    }
                    if climbed == depth + inline.len() {
                        found.extend(continued(tokens, k));
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Every `.rs` file under `dir`.
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// The layer of each module.
    fn layer_of() -> BTreeMap<&'static str, usize> {
        let mut of = BTreeMap::new();
        for (n, layer) in LAYERS.iter().enumerate() {
            for module in *layer {
                assert!(of.insert(*module, n).is_none(), "{module} is in two layers");
            }
        }
        of
    }

    /// A circle among `uses` (module → module, with where), if any, in
    /// words: "a → b (src/a.rs:3) → a (src/b.rs:9)".
    fn circle(uses: &BTreeMap<(String, String), String>) -> Option<String> {
        fn visit(
            m: &str,
            uses: &BTreeMap<(String, String), String>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<String> {
            if let Some(start) = path.iter().position(|p| p == m) {
                let mut words = path[start].clone();
                let ring: Vec<&String> = path[start..].iter().chain([&path[start]]).collect();
                for pair in ring.windows(2) {
                    let place = &uses[&(pair[0].clone(), pair[1].clone())];
                    words.push_str(&format!(" → {} ({place})", pair[1]));
                }
                return Some(words);
            }
            if !done.insert(m.to_string()) {
                return None;
            }
            path.push(m.to_string());
            for (_, to) in uses.keys().filter(|(from, _)| from == m) {
                if let Some(found) = visit(to, uses, path, done) {
                    return Some(found);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for (from, _) in uses.keys() {
            if let Some(found) = visit(from, uses, &mut Vec::new(), &mut done) {
                return Some(found);
            }
        }
        None
    }

    #[test]
    fn every_module_is_in_one_layer() {
        let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
        let declared: BTreeSet<&str> = lib
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
            .collect();
        let listed: BTreeSet<&str> = layer_of().into_keys().collect();
        assert_eq!(declared, listed, "LAYERS lists each module of lib.rs");
    }

    #[test]
    fn layers_point_one_way() {
        let src = src();
        let layer_of = layer_of();
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut wrong = Vec::new();
        let mut beside: BTreeMap<(String, String), String> = BTreeMap::new();
        for path in files {
            let rel = path.strip_prefix(&src).unwrap();
            let parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts == ["lib.rs"] || parts == ["main.rs"] {
                continue;
            }
            let from = parts[0].trim_end_matches(".rs");
            let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
            let Some(&ours) = layer_of.get(from) else {
                wrong.push(format!("src/{}: {from} is in no layer", rel.display()));
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code = without_tests(&tokens(&text));
            for (line, to) in from_root(&code, depth) {
                let Some(&theirs) = layer_of.get(to.as_str()) else {
                    continue;
                };
                let place = format!("src/{}:{line}", rel.display());
                if theirs > ours {
                    wrong.push(format!(
                        "{place}: {from} (layer {}) uses {to} (layer {}), which is above it",
                        ours + 1,
                        theirs + 1
                    ));
                } else if theirs == ours && to != from {
                    beside.entry((from.to_string(), to)).or_insert(place);
                }
            }
        }
        if let Some(words) = circle(&beside) {
            wrong.push(format!("a circle within a layer: {words}"));
        }
        assert!(
            wrong.is_empty(),
            "uses that do not point down the layers (see LAYERS in src/lib.rs):\n{}",
            wrong.join("\n")
        );
    }

    /// The lines of `text` before its test module.
    fn without_test_module(text: &str) -> Vec<&str> {
        let lines: Vec<&str> = text.lines().collect();
        let end = (0..lines.len())
            .find(|&i| {
                lines[i] == "#[cfg(test)]"
                    && lines.get(i + 1).is_some_and(|l| l.starts_with("mod tests"))
            })
            .unwrap_or(lines.len());
        lines[..end].to_vec()
    }

    /// Each function of `lines` with its name and length in lines: from
    /// its `fn` line to the `}` at the same indentation.
    fn functions<'a>(lines: &[&'a str]) -> Vec<(&'a str, usize, usize)> {
        let mut found = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = &line[..line.len() - code.len()];
            let mut rest = code;
            for word in [
                "pub(crate) ",
                "pub(super) ",
                "pub ",
                "const ",
                "async ",
                "unsafe ",
            ] {
                rest = rest.strip_prefix(word).unwrap_or(rest);
            }
            let Some(after) = rest.strip_prefix("fn ") else {
                continue;
            };
            if line.trim_end().ends_with(';') {
                continue;
            }
            let name = after
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            let close = format!("{indent}}}");
            if let Some(end) = (i + 1..lines.len()).find(|&j| lines[j].trim_end() == close) {
                found.push((name, i + 1, end - i + 1));
            }
        }
        found
    }

    #[test]
    fn files_and_functions_stay_small() {
        let src = src();
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let (mut big_files, mut long_functions) = (Vec::new(), Vec::new());
        for path in files {
            let rel = path.strip_prefix(&src).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = without_test_module(&text);
            if lines.len() > 600 {
                big_files.push(format!("src/{rel}: {} lines", lines.len()));
            }
            for (name, line, length) in functions(&lines) {
                if length > 80 {
                    long_functions.push(format!("src/{rel}:{line}: {name}, {length} lines"));
                }
            }
        }
        println!("files over 600 lines:\n{}", big_files.join("\n"));
        println!("functions over 80 lines:\n{}", long_functions.join("\n"));
        assert!(
            big_files.len() <= 8,
            "more than 8 files over 600 lines (see \"# Sizes\" in src/lib.rs):\n{}",
            big_files.join("\n")
        );
        assert!(
            long_functions.len() <= 15,
            "more than 15 functions over 80 lines (see \"# Sizes\" in src/lib.rs):\n{}",
            long_functions.join("\n")
        );
    }

    #[test]
    fn the_reader_counts_files_and_functions() {
        let text = "fn a() {\n    x();\n}\n\nimpl T {\n    pub(crate) async fn b(&self) {\n        if y {\n        }\n    }\n    fn c();\n}\n#[cfg(test)]\nmod tests {\n    fn d() {\n    }\n}\n";
        let lines = without_test_module(text);
        assert_eq!(lines.len(), 11);
        assert_eq!(functions(&lines), [("a", 1, 3), ("b", 6, 4)]);
    }

    #[test]
    fn the_crate_documentation_states_the_layers() {
        let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
        let stated: Vec<Vec<&str>> = lib
            .lines()
            .skip_while(|l| *l != "//! # Layers")
            .skip(1)
            .take_while(|l| !l.starts_with("//! # "))
            .filter_map(|l| {
                let (n, rest) = l.strip_prefix("//! ")?.split_once(". ")?;
                n.parse::<usize>().ok()?;
                let names = rest.split_once(": ").map_or(rest, |(names, _)| names);
                Some(names.split('`').skip(1).step_by(2).collect())
            })
            .collect();
        let declared: Vec<Vec<&str>> = LAYERS.iter().map(|l| l.to_vec()).collect();
        assert_eq!(stated, declared, "\"# Layers\" in lib.rs lists LAYERS");
    }

    #[test]
    fn the_reader_sees_what_the_compiler_does() {
        let text = r##"
use crate::config::Fleet; // crate::tui in a comment
use crate::{
    model::Side,
    store::{Store, StoreError},
};
/* crate::monitor in a block comment */
const S: &str = "crate::agent in a string";
const R: &str = r#"crate::demo "in" a raw string"#;
const C: char = '"';
fn f<'a>(x: &'a str) -> &'a str { let _ = crate::health::Tracker::new; x }
fn g() { super::super::report::run(); super::sibling(); }
#[cfg(test)]
mod tests {
    use crate::tui::App;
}
#[cfg(test)]
use crate::notify::Notifier;
mod inline {
    fn h() { super::super::super::probe::run(); }
}
struct T {
    #[cfg(test)]
    seen: crate::rollout::Plan,
    kept: crate::exec::Output,
}
"##;
        let names: Vec<(usize, String)> = from_root(&without_tests(&tokens(text)), 2);
        let names: Vec<(usize, &str)> = names.iter().map(|(l, n)| (*l, n.as_str())).collect();
        assert_eq!(
            names,
            [
                (2, "config"),
                (4, "model"),
                (5, "store"),
                (11, "health"),
                (12, "report"),
                (20, "probe"),
                (25, "exec"),
            ]
        );
    }
}
