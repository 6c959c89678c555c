//! The agent beside rollouts, with real process instances behind a real
//! nginx: the planned restarts of a good rolling deploy whose release takes
//! two seconds to start open no incident (the rollout's gates judge those
//! instances), and once it ends the agent judges them again, so an
//! instance that dies afterwards opens one. After a blue-green switch the
//! agent and `rollguard probe` probe the side that serves, not the one the
//! switch left. The agent's `/metrics` follows a live rollout: active,
//! paused, ended, and counted.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::agent::Agent;
use common::rollout::Env;
use common::wait_for;
use rusqlite::{Connection, OpenFlags};

/// How many events of `kind` the history holds.
fn count(db: &Path, kind: &str) -> i64 {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row("SELECT count(*) FROM events WHERE kind = ?1", [kind], |r| {
        r.get(0)
    })
    .unwrap()
}

/// The newest result of `probe` on `instance`: (ok, message).
fn last_result(db: &Path, instance: &str) -> Option<(bool, String)> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row(
        "SELECT ok, message FROM probe_results WHERE instance = ?1 ORDER BY id DESC LIMIT 1",
        [instance],
        |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)),
    )
    .ok()
}

/// Kills the process group of `instance`'s `side` ("main" or "alt").
fn kill(env: &Env, instance: &str, side: &str) {
    let f = env
        .dir
        .join("run")
        .join("web")
        .join(format!("{instance}-{side}.pid"));
    let pid: i32 = std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill on a process group this test started.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

#[test]
fn a_rollouts_restarts_open_no_incident_and_its_instances_are_judged_again_after() {
    let Some(env) = Env::new("agent_beside_a_rollout", "nginx", "") else {
        return;
    };
    // v7 takes 2 s to start: the gates wait it out; the agent must too.
    env.edit_config("initial_delay = \"1500ms\"", "initial_delay = \"3s\"");
    env.deploy_ok("v1", "rolling");
    let db = env.dir.join("history.db");
    let agent = Agent::start(&env.config(), &db, env.dir.join("agent.log"));
    wait_for("the agent to probe", Duration::from_secs(20), || {
        last_result(&db, "web-3").is_some_and(|(ok, _)| ok)
    });
    // Each instance refuses connections for 2 s while v7 starts: eight
    // failed probes in a row, four times the failure threshold.
    env.deploy_ok("v7", "rolling");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(&db, "incident_opened"),
        0,
        "a good rollout opened an incident; the agent's log:\n{}",
        agent.log()
    );
    // The rollout is over: the agent judges its instances again.
    kill(&env, "web-2", "main");
    wait_for("an incident for web-2", Duration::from_secs(20), || {
        count(&db, "incident_opened") == 1
    });
    drop(agent);
}

#[test]
fn after_a_blue_green_switch_the_agent_probes_the_side_that_serves() {
    let Some(env) = Env::new("agent_after_blue_green", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    let db = env.dir.join("history.db");
    let agent = Agent::start(&env.config(), &db, env.dir.join("agent.log"));
    wait_for("the agent to probe", Duration::from_secs(20), || {
        last_result(&db, "web-1").is_some_and(|(ok, _)| ok)
    });
    // v2 starts on the alt ports; the main sides are stopped once it is
    // monitored.
    env.deploy_ok("v2", "blue-green");
    assert_eq!(env.served(&env.alt_ports), ["v2", "v2", "v2"]);
    assert_eq!(env.served(&env.ports), ["down", "down", "down"]);
    std::thread::sleep(Duration::from_secs(3));
    for i in ["web-1", "web-2", "web-3"] {
        let last = last_result(&db, i);
        assert!(
            last.as_ref().is_some_and(|(ok, _)| *ok),
            "{i} is probed on a side that no longer serves: {last:?}"
        );
    }
    assert_eq!(
        count(&db, "incident_opened"),
        0,
        "the agent's log:\n{}",
        agent.log()
    );
    // So does `rollguard probe`.
    let (code, out, err) = env.rollguard(&["probe", "--json"]);
    assert_eq!(code, 0, "rollguard probe after the switch: {out}\n{err}");
    // What the agent probes is the live side: killing it is seen.
    kill(&env, "web-1", "alt");
    wait_for("an incident for web-1", Duration::from_secs(20), || {
        count(&db, "incident_opened") == 1
    });
    drop(agent);
}

/// `/metrics` on `port`: the text, or empty while it does not answer.
fn metrics(port: u16) -> String {
    common::prometheus::request(port, "GET", "/metrics")
}

#[test]
fn the_agents_metrics_follow_a_live_rollout_from_start_to_its_count() {
    let Some(env) = Env::new("agent_metrics_rollout", "nginx", "") else {
        return;
    };
    let port = common::free_port();
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{cfg}"),
    )
    .unwrap();
    env.deploy_ok("v1", "rolling");
    let db = env.dir.join("history.db");
    let agent = Agent::start(&env.config(), &db, env.dir.join("agent.log"));
    let has = |line: &str| metrics(port).lines().any(|l| l == line);
    wait_for("no rollout in /metrics", Duration::from_secs(20), || {
        has("rollguard_rollout_active{app=\"web\"} 0")
    });
    let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = env.rollguard(&["pause", "web"]);
    assert_eq!(code, 0, "{out}\n{err}");
    wait_for(
        "the paused rollout in /metrics",
        Duration::from_secs(30),
        || {
            let text = metrics(port);
            text.lines()
                .any(|l| l == "rollguard_rollout_active{app=\"web\"} 1")
                && text.lines().any(|l| {
                    l.starts_with("rollguard_rollout_info{app=\"web\",")
                        && l.contains("strategy=\"rolling\",state=\"paused\",release=\"v2\"")
                        && l.ends_with("} 1")
                })
                && text
                    .lines()
                    .any(|l| l.starts_with("rollguard_rollout_stage{app=\"web\"} "))
        },
    );
    let (code, out, err) = env.rollguard(&["resume", "web"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The history is read every 10 s: the count follows within a few.
    wait_for("the ended rollout counted", Duration::from_secs(45), || {
        has("rollguard_rollout_active{app=\"web\"} 0")
            && has("rollguard_deployments_total{app=\"web\",outcome=\"deployed\"} 2")
            && has("rollguard_app_release_info{app=\"web\",release=\"v2\"} 1")
    });
    drop(agent);
}
