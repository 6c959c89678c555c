//! The `command` driver: user commands start and stop each instance, and
//! no `current` command says what runs. rollguard then goes by what it
//! recorded: the second deploy is an upgrade from v1 (not an install), and
//! a bad release rolls back by starting v2 again, behind a real nginx,
//! with a client that never sees a failed request.

use crate::common;

use common::rollout::Env;

/// Rewrites the environment's app to the command driver without `current`.
fn command_driver(env: &Env) {
    let cfg = std::fs::read_to_string(env.config()).unwrap();
    let start = cfg.find("[app.process]").expect("a process section");
    let end = start + cfg[start..].find("grace = ").unwrap();
    let end = end + cfg[end..].find('\n').unwrap() + 1;
    let d = env.dir.0.display();
    // Start replaces what runs: stop it (and wait until it is gone), then
    // start the version asked for, detached, its pid in a pidfile.
    let stop = format!(
        "f={d}/run/web/{{instance}}.pid; if [ -f $f ]; then p=$(cat $f); kill $p 2>/dev/null; \
         while kill -0 $p 2>/dev/null; do sleep 0.05; done; rm -f $f; fi"
    );
    let section = format!(
        "[app.command]\n\
         start = \"mkdir -p {d}/run/web; {stop}; setsid {d}/releases/{{version}}/run --port {{port}} \
         </dev/null >/dev/null 2>&1 & echo $! > {d}/run/web/{{instance}}.pid\"\n\
         stop = \"{stop}\"\n"
    );
    let cfg = format!("{}{section}{}", &cfg[..start], &cfg[end..])
        .replace("driver = \"process\"", "driver = \"command\"");
    std::fs::write(env.config(), cfg).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn command_driver_without_current_upgrades_and_rolls_back_from_what_it_recorded() {
    let Some(env) = Env::new("command_driver", "nginx", "") else {
        return;
    };
    command_driver(&env);
    let (code, out, err) = env.rollguard(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");

    env.deploy_ok("v1", "rolling");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    let (code, report, seen) = env
        .deploy_under_load("v2", &["--strategy", "rolling"])
        .await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["from"], "v1", "an upgrade, not an install: {report}");
    assert!(seen.failed.is_empty(), "{:?}", seen.some_failures());
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);

    // v3 fails once it has run a while: each instance gets v2 back.
    let (code, report, seen) = env
        .deploy_under_load("v3", &["--strategy", "rolling"])
        .await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert!(
        seen.failed.is_empty(),
        "failed requests during the rollback: {:?}",
        seen.some_failures()
    );
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);
}
