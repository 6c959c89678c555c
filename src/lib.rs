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
//!           history.db (SQLite, WAL): results, verdicts, incidents,
//!           events, deployments, batches, changes, snapshots, releases,
//!           locks, commands, the prober's lease, the notification outbox
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
//!   it runs; reads and writes history.db): events past the outbox's
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
//! Three files answer the questions asked most: what a rollout does next
//! is decided in `rollout/decide.rs` (a pure function), a rollout is
//! started in `rollout/service.rs` (one transaction, then the worker), and
//! the app's lock is held and broken in `rollout/lock.rs`.
//!
//! # Modules
//!
//! | module | holds | does not |
//! |---|---|---|
//! | [`config`] | serde types, discovery, the app names of a file read without its checks (for completion), `[[notify]]` receivers (kept by each app they hear of, their URLs, keys, passwords and tokens as secrets), `${ENV}` interpolation (the values kept as secrets, masked or templated before they are stored or logged), validation with `FILE:LINE:COL` (its errors printed with control characters escaped), durations with bounds | run anything |
//! | [`model`] | the vocabulary: probe results, error kinds, verdicts, `Version`; [`model::rollout`]: deployment and batch states (and where a batch settles when its deployment ends), change actions, verbs, outcomes, triggers, sides; [`model::event`]: `EventKind`, every event with its typed payload (kinds and JSON meet only in its `to_stored`/`from_stored`; a gate's evidence stored flat, older nested records lifted on read); [`model::evidence`]: what a gate saw; [`model::incident`]: what an incident holds | I/O |
//! | [`error`] | the one [`error::Code`] enum (`E_...`, exit code, meaning) and [`error::UserError`] | decide anything |
//! | [`printable`] | control characters and bidirectional overrides made visible before text reaches a terminal; joiners and emoji presentation marks left out, so the width the console measures is the width drawn | |
//! | [`host`] | this machine: its name, the user, its processes (`/proc/PID/stat`: alive, start time, parent, group), whether the disk holding a file is full | know about locks, leases or apps |
//! | [`exec`] | one executor interface; local and SSH (a master connection per host); shell templates with quoting; a host key ssh refuses read out of its banner into what changed and what to do (`host_key`, pure; the banner goes to the log only) | know about apps |
//! | [`probe`] | http, tcp, command, docker and prometheus probes (`prometheus`: a PromQL query whose placeholders are escaped inside its string literals, the API's answer read as a value or no data, and the comparison of a rollout's new side with its old, `[CANARY]` against `[BASELINE]`); the condition language (comparisons of values or arithmetic); the scheduler (each run on the side its instance serves, `LivePorts`); every result made in one place in the prober, its message with the config's secrets masked | decide health |
//! | [`health`] | consecutive counters, failure budgets, instance and app verdicts, when an incident opens, widens and resolves | talk to the network |
//! | [`monitor`] | watching a fleet: the prober's lease and the role it gives (`lease`), probing while it is held (`probing`: scheduler, the release watch in `releases`, the incident watch in `incidents`, which leaves the instances a running rollout has changed to its gates; results go through one hub to the state and the history writer), reading what the holder wrote otherwise and the recent past at start (`reader`), rollouts and the live sides read back every second | draw |
//! | [`agent`] | `rollguard agent`: a monitor without a console, journald-ready log lines, SIGTERM, the example systemd unit | draw |
//! | [`store`] | schema and migrations, opening (only a missing file is created; read-only for reading commands, and as immutable where SQLite cannot make its `-shm` file (a read-only file system, a full disk) and no `-wal` file holds changes; a full disk said in words (`StoreError::DiskFull`); a damaged or foreign file is an error; a file of the history is never opened behind SQLite's back), the batched result writer, typed queries, results read back by row id, a deployment's start in one transaction, its end with its batches settled in one, lock rows (the holder's host, pid and process start time; a schema before 5 read without the start time), lease, incident, verdict and command rows, the notification outbox (`outbox`: rows made past a cursor, claimed with a lease, at least once; each receiver's newest about an app), the report's reads (`report`: results folded in one ordered index scan, counts per hour, deployments and rollbacks counted, the rows around an incident) | hold business rules (who counts as gone, when an incident opens) |
//! | [`driver`] | docker, process and command drivers: current, present, snapshot (a stopped container is kept in it, running no release), start, restore | route traffic |
//! | [`traffic`] | nginx (file, validate, reload), HAProxy (runtime API), command hooks | start instances |
//! | [`rollout`] | `plan`, `routing` and `decide` (pure: the next stage, a retry, when and how to roll back, whether a recovery may resume or must carry a rollback on and from which stage, which batch a failure belongs to (the one whose instance failed), the outcome, the order of restores; where traffic goes without a failing slot, and who serves while a rollback restores: never a slot seen failing, the slot that started the failed release last alone when nothing good serves), `gate` (each probe on each slot, and a comparison probe once a round for the gate's slots against the old slots that still serve, which the engine names; every round of every slot recorded in the rollout's `Seen`), `engine` (carries decisions out and records them; `engine/rest.rs`: a slot whose last probe failed leaves traffic while its gate judges it, for its old side beside it when that still runs, and while one fails the rest of its release moves to the old sides beside it; the same while a rollback waits for a person; its way back, in `engine/restore.rs`, puts each restored slot back into traffic as soon as its gate passes), `eject` (a slot seen failing while a start is under way leaves traffic at once), `service` (the one way in: preflight, start, rollback checks, recover, send; `send` writes a command only to the deployment it names, and only where `decide::accepts` says the verb applies, the rule the rollout itself follows: `E_NO_ROLLOUT` for one that ended, `E_WRONG_STATE` otherwise), `lock` (who holds it, and the one pure decision of when it is abandoned: a heartbeat older than 30 s, or its pid here gone or another process's; `status`, `recover` and `--break-lock` all ask it), `report` (a deployment's typed report), `worker` (fenced: stops at once when its lock is another's or could not be refreshed for 15 s; changes nothing when it cannot write its log), `cli` (printing over the service), `consent` (the CLI's confirmations: `[y/N]`, a protected app's name typed at the prompt or given with `--yes --confirm-app NAME`; the reason `abort` and `fire` need, `--reason` or typed at the prompt) | print or read stdin, except `cli` and `consent` |
//! | [`audit`] | the audit log as people read it: `rollguard events` (its options, the newest events oldest first, `--follow` polling the history for rows newer than the last seen, one line of words per event from its typed payload, JSON Lines) | write the history |
//! | [`report`] | reading history back: `rollguard report` (`availability`: availability as the share of results that passed, p50/p95/p99 of passing latencies, the longest run of failures per instance and the longest incident per app, deployments by outcome, rollbacks automatic or by hand, the mean time from an incident's opening to healthy again; the console's hourly availability as `HourBucket`s; `render`: table, JSON, CSV), `rollguard incident` (`timeline`: one incident's or deployment's rows loaded, `postmortem`: written as Markdown, pure; `markdown`: host text escaped or in code spans), `cli` | write the history, open it for writing, or create it |
//! | [`tui`] | the console: data state apart from view state; components as named fields of `App` (fleet view with its `/` filter, its visible rows kept apart from the fleet index; app view with releases, deployments and what each receiver was last told; History; one deployment, the Rollout view with its "why" card and timeline; Events; Logs; help; the confirm modal; the log pane; one text input), one `Mode` for what is open, a keymap whose bindings know their views and modes (keys, help and footer come from it; `[console.keys]` remaps it), `:` commands with completion and a history of lines, a read-only mode (`--read-only`, `[console] read_only`) in which no key or command acts, one queue for what background tasks report, views that say what to read and a run loop that reads it off the input path, deploys and rollbacks checked through the rollout service before they are asked, every rollout key bound by id to the deployment the screen shows (`App::rollout_target`: in the Deployment view only the deployment shown, and only while the rollouts read say it runs; `R` opens the app's newest deployment, read when it opens; an open question rechecked before each frame and each key, `control::still_applies`, so one about a deployment that ended says so and sends nothing), destructive actions as `ConfirmAction` → modal (opens on Cancel; a reason required for abort, fire, rollback and breaking a lock; a protected app's name typed) → `ConfirmedAction` → the one `match` in `tui/perform.rs` that goes through the rollout service (a start spawns a detached worker); themes (built-in and files, `NO_COLOR`); the terminal held and given back (Ctrl-Z, a panic), written to only where cells changed, the mouse only with `--mouse`, one message below 80x24 | I/O on the draw or input path |
//! | [`manual`] | `rollguard man`: one roff page from the clap definition (clap_mangen), every command a subsection with its synopsis and options | |
//! | [`notify`] | receivers' topics (`topic`), what a message says (`message`, pure: one incident → one message and one "resolved"), each receiver type's body (`payload`: Slack blocks, Discord embed, the webhook JSON, PagerDuty trigger/resolve, a command's stdin and Markdown timeline), an email's subject, thread headers and text (`email`, pure), the webhook's HMAC-SHA256 signature (`signature`), backoff and giving up (`retry`), events into outbox rows (`enqueue`), one attempt over HTTP or a quoted command template (`deliver`) or SMTP (`smtp`), the [`notify::Notifier`] task (`sender`: run by the prober's lease holder and by every rollout worker while it runs, so a rollout's notifications go out with no console open), the live event stream of `websocket` receivers (`stream`: a loopback listener run by the prober's lease holder, a token checked at the handshake, a bounded buffer per client, no outbox), `rollguard notify test` (`cli`) | block probing, a gate or a rollback; store a secret |
//! | [`metrics`] | `/metrics` for Prometheus: each probe's slot of counts the hub fills (`probes`: last result, latency histogram, failures per kind; atomics, found by position), the history's counts read every 10 s (`history`), the text format (`exposition`, pure, handed on in 64 KiB pieces), the listener the lease holder runs (`serve`: the text sent piece by piece as it is written) | block the hub; export a secret |
//! | [`completion`] | shell completion: the script `rollguard completions SHELL` prints (clap_complete's dynamic one: at a TAB the shell asks `rollguard` with `COMPLETE=SHELL`), and the candidates offered: apps from the config (read as TOML, unchecked) and the history, an app's releases from the history | write anything, or ask a host |
//! | [`demo`] | the demo fleet, its demo application (with `/metrics` of made-up traffic), its Slack stand-in (`receiver`: a loopback HTTP server its `[[notify]]` posts to, saying what it got in the log), its private Prometheus when one is installed (`prometheus`: scraping the canary app's every side), and its teardown (`teardown`: whichever way the demo ends, rollout workers, instances and Prometheus, then nginx, stopped in that order and the folder removed) | ship in the hot path |
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
pub mod state;
pub mod store;
pub mod traffic;
pub mod tui;
