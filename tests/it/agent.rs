//! The prober's lease, `rollguard agent` and health incidents, with real
//! processes on one history: of two agents one probes and the other reads;
//! the prober killed with `kill -9` is taken over by the other; SIGTERM
//! stops an agent cleanly and frees the lease; a real HTTP server that
//! fails and flaps makes one incident, opened and resolved once, whose
//! evidence names both instances that failed together, and two messages
//! to a webhook receiver: its opening and its end.

use crate::common;
use common::wait_for;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::TempDir;
use common::agent::Agent;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

const BIN: &str = env!("CARGO_BIN_EXE_rollguard");

/// An HTTP server on loopback that answers 200, or 500 while `failing`,
/// and counts the requests it gets.
struct Flapper {
    port: u16,
    failing: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

fn flapper() -> Flapper {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let failing = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let (f, n) = (failing.clone(), requests.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (f, n) = (f.clone(), n.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    // The request head, up to its blank line.
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    n.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = if f.load(Ordering::SeqCst) {
                        ("500 Internal Server Error", "broken")
                    } else {
                        ("200 OK", "ok")
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Flapper {
        port,
        failing,
        requests,
    }
}

/// A config of app `web` with one instance per port, probed every 100 ms.
fn config(dir: &TempDir, ports: &[u16]) -> PathBuf {
    config_with(dir, ports, "")
}

/// [`config`] with `extra` TOML at its end (e.g. `[[notify]]`).
fn config_with(dir: &TempDir, ports: &[u16], extra: &str) -> PathBuf {
    let mut t = String::from("[[app]]\nname = \"web\"\n");
    for (i, p) in ports.iter().enumerate() {
        t.push_str(&format!(
            "[[app.instance]]\nname = \"web-{}\"\nport = {p}\n",
            i + 1
        ));
    }
    t.push_str(
        "[[app.probe]]\nname = \"health\"\ntype = \"http\"\npath = \"/health\"\ntimeout = \"1s\"\n\
         [app.health]\ninterval = \"100ms\"\nfailure_threshold = 2\nresolve_after = \"2s\"\n",
    );
    t.push_str(extra);
    let path = dir.join("fleet.toml");
    std::fs::write(&path, t).unwrap();
    path
}

/// What a receiver got: each notification's topic and body.
type Told = Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// A webhook receiver on loopback: answers 200 and keeps each
/// notification's topic and body.
fn receiver() -> (u16, Told) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut topic, mut length) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-rollguard-topic:") {
                    topic = v.trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let body = serde_json::from_slice(&body).unwrap_or_default();
            kept.lock().unwrap().push((topic, body));
        }
    });
    (port, got)
}

fn read(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

/// The pid holding the prober's lease, if any holds it.
fn lease_pid(db: &Path) -> Option<u32> {
    if !db.exists() {
        return None;
    }
    read(db)
        .query_row(
            "SELECT owner_pid FROM leases WHERE role = 'prober'",
            [],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten()
}

fn results_since(db: &Path, at_ms: i64) -> i64 {
    read(db)
        .query_row(
            "SELECT count(*) FROM probe_results WHERE at_ms >= ?1",
            [at_ms],
            |r| r.get(0),
        )
        .unwrap()
}

fn now_ms() -> i64 {
    rollguard::model::now_ms()
}

#[test]
fn one_agent_probes_the_other_reads_and_takes_over_after_kill_9() {
    let dir = TempDir::new("agent-lease");
    let servers = [flapper(), flapper()];
    let cfg = config(&dir, &[servers[0].port, servers[1].port]);
    let db = dir.join("history.db");

    let mut a = Agent::start(&cfg, &db, dir.join("a.log"));
    wait_for(
        "the first agent to take the lease",
        Duration::from_secs(15),
        || lease_pid(&db) == Some(a.pid()),
    );
    let mut b = Agent::start(&cfg, &db, dir.join("b.log"));
    wait_for("the second agent to read", Duration::from_secs(15), || {
        b.log().contains("reading what it writes")
    });
    assert_eq!(lease_pid(&db), Some(a.pid()), "{}", b.log());

    // Only one process probes: two instances every 100 ms make about 20
    // requests a second; two probers would make about 40.
    let requests = || -> usize {
        servers
            .iter()
            .map(|s| s.requests.load(Ordering::SeqCst))
            .sum()
    };
    let (before, t0) = (requests(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let rate = (requests() - before) as f64 / t0.elapsed().as_secs_f64();
    assert!(rate > 2.0, "nobody probes: {rate:.1} requests/s");
    assert!(rate < 30.0, "both agents probe: {rate:.1} requests/s");

    // kill -9 the prober: the other takes the lease over and probes.
    let killed_at = now_ms();
    assert!(a.signal(libc::SIGKILL).is_some());
    wait_for(
        "the second agent to take over",
        Duration::from_secs(15),
        || lease_pid(&db) == Some(b.pid()),
    );
    assert!(b.log().contains("took over probing"), "{}", b.log());
    wait_for(
        "results probed after the kill",
        Duration::from_secs(15),
        || results_since(&db, killed_at + 500) > 10,
    );

    // SIGTERM stops it cleanly and gives the lease up.
    let status = b.signal(libc::SIGTERM).expect("the agent stops on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", b.log());
    assert_eq!(lease_pid(&db), None, "the lease is given up: {}", b.log());
    assert!(b.log().contains("agent stopped"), "{}", b.log());
    // Log lines carry a syslog priority for journald.
    assert!(b.log().lines().all(|l| l.starts_with('<')), "{}", b.log());
}

/// Events of `kind` in the history, with their payloads.
fn events(db: &Path, kind: &str) -> Vec<serde_json::Value> {
    let c = read(db);
    let mut stmt = c
        .prepare("SELECT evidence FROM events WHERE kind = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([kind], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|e| serde_json::from_str(&e.unwrap()).unwrap())
        .collect()
}

#[test]
fn a_flapping_outage_of_two_instances_is_one_incident_opened_and_resolved_once() {
    let dir = TempDir::new("agent-incident");
    let servers = [flapper(), flapper()];
    // The on-call are told of it: once when it opens, once when it ends.
    let (hook, told) = receiver();
    let notify = format!(
        "[[notify]]\nname = \"oncall\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n"
    );
    let cfg = config_with(&dir, &[servers[0].port, servers[1].port], &notify);
    let db = dir.join("history.db");
    let mut agent = Agent::start(&cfg, &db, dir.join("agent.log"));
    wait_for("probes to run", Duration::from_secs(15), || {
        db.exists() && results_since(&db, 0) > 10
    });

    // Both instances fail together, then flap: never healthy for the 2 s
    // of resolve_after until the end.
    let set = |failing: bool| {
        for s in &servers {
            s.failing.store(failing, Ordering::SeqCst);
        }
    };
    set(true);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        set(false);
        std::thread::sleep(Duration::from_millis(600));
        set(true);
        std::thread::sleep(Duration::from_millis(600));
    }
    set(false);
    wait_for(
        "the incident to be resolved",
        Duration::from_secs(30),
        || !events(&db, "incident_resolved").is_empty(),
    );
    std::thread::sleep(Duration::from_secs(1));

    let opened = events(&db, "incident_opened");
    assert_eq!(opened.len(), 1, "one incident: {opened:?}\n{}", agent.log());
    let resolved = events(&db, "incident_resolved");
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    let id = &opened[0]["incident"];
    assert_eq!(&resolved[0]["incident"], id);
    // What failed: both instances, with the probe, thresholds and samples,
    // named at opening or when the incident widened.
    let mut named: Vec<serde_json::Value> = opened[0]["evidence"].as_array().unwrap().clone();
    for w in events(&db, "incident_widened") {
        assert_eq!(&w["incident"], id);
        named.extend(w["evidence"].as_array().unwrap().iter().cloned());
    }
    let mut instances: Vec<&str> = named
        .iter()
        .map(|e| e["instance"].as_str().unwrap())
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, ["web-1", "web-2"], "{named:?}");
    for e in &named {
        assert_eq!(e["probe"], "health");
        assert_eq!(e["failure_threshold"], 2);
        let samples = e["last_samples"].as_array().unwrap();
        let last = samples.last().expect("samples");
        assert_eq!(last["ok"], false, "{e}");
        assert_eq!(last["code"], 500, "{e}");
    }
    assert_eq!(opened[0]["cause"], "probe");
    // The outage lasted from the first failures to the end of the flaps
    // (about 5 s), not counting the healthy wait before resolving.
    let outage = resolved[0]["outage_ms"].as_u64().unwrap();
    assert!((3_000..15_000).contains(&outage), "outage {outage} ms");
    // Two messages for the whole flapping outage, about that incident.
    wait_for("both messages", Duration::from_secs(15), || {
        told.lock().unwrap().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(1));
    let told = told.lock().unwrap().clone();
    let topics: Vec<&str> = told.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["incident_opened", "incident_resolved"], "{told:?}");
    for (_, body) in &told {
        assert_eq!(&body["incident"], id, "{body}");
    }
    let instances = resolved[0]["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{resolved:?}");

    let (state, healthy): (Option<i64>, Option<i64>) = read(&db)
        .query_row(
            "SELECT resolved_ms, healthy_ms FROM incidents WHERE id = ?1",
            [id.as_i64().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(state.is_some() && healthy.is_some());
    // The verdicts the prober wrote are healthy again.
    let verdicts: Vec<String> = read(&db)
        .prepare("SELECT verdict FROM verdicts WHERE app = 'web' ORDER BY instance")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(verdicts, ["healthy", "healthy"]);
    assert!(agent.signal(libc::SIGTERM).is_some_and(|s| s.success()));
    let text = agent.log();
    assert!(text.contains("incident opened"), "{text}");
}

/// A tmux server of its own (`tmux -L NAME`), killed on drop.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn a_console_reads_what_the_agent_probes_takes_over_and_frees_the_lease_when_its_terminal_dies() {
    let test = "a_console_reads_what_the_agent_probes";
    if common::program(test, "tmux").is_none() {
        return;
    }
    let dir = TempDir::new("agent-console");
    let servers = [flapper(), flapper()];
    let cfg = config(&dir, &[servers[0].port, servers[1].port]);
    let db = dir.join("history.db");
    let mut agent = Agent::start(&cfg, &db, dir.join("agent.log"));
    wait_for(
        "the agent to take the lease",
        Duration::from_secs(15),
        || lease_pid(&db) == Some(agent.pid()),
    );

    let tmux = Tmux(format!("rg-agent-console-{}", std::process::id()));
    let console = format!("{BIN} --config {} --db {}", cfg.display(), db.display());
    tmux.run(&["new-session", "-d", "-x", "120", "-y", "30", &console]);
    let screen = || tmux.run(&["capture-pane", "-p"]);
    wait_for(
        "the console to read what the agent probes",
        Duration::from_secs(15),
        || screen().contains(" reading "),
    );
    wait_for(
        "verdicts read from the history",
        Duration::from_secs(15),
        || screen().contains("● healthy"),
    );

    // The agent stops: the console takes the lease over and probes.
    assert!(agent.signal(libc::SIGTERM).is_some_and(|s| s.success()));
    wait_for("the console to take over", Duration::from_secs(15), || {
        screen().contains("probing")
    });
    let console_pid = lease_pid(&db).expect("the console holds the lease");
    assert_ne!(console_pid, agent.pid());

    // Its terminal dies: it stops and gives the lease up.
    tmux.run(&["kill-server"]);
    wait_for("the console to stop", Duration::from_secs(15), || {
        !alive(console_pid)
    });
    assert_eq!(lease_pid(&db), None, "the lease is given up");
}
