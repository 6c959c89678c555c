//! A protected app (`protected = true`) through the `rollguard` binary,
//! with real processes behind a real nginx: `deploy`, `rollback`, `abort`
//! and `fire` with `--yes` do nothing without `--confirm-app` naming the
//! app (`E_PROTECTED`, exit 2), and nothing without a terminal to type the
//! name on (`E_CONFIRM`); with the name they go through. `abort` and
//! `fire` check first that a rollout runs that they apply to, and need a
//! reason, on any app.

use crate::common;

use std::time::Duration;

use common::rollout::Env;
use common::wait_for;

fn outcome(env: &Env) -> String {
    let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v[0]["outcome"].as_str().unwrap_or("-").to_string()
}

fn deployments(env: &Env) -> usize {
    let (_, out, _) = env.rollguard(&["history", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v.as_array().map_or(0, Vec::len)
}

/// Runs `args` and checks it was refused with `code` (exit 2), naming the
/// flag that would confirm.
fn refused(env: &Env, args: &[&str], code: &str) {
    let (exit, out, err) = env.rollguard(args);
    assert_eq!(exit, 2, "{args:?}: {out}\n{err}");
    assert!(err.starts_with(code), "{args:?}: {err}");
    assert!(err.contains("--confirm-app web"), "{args:?}: {err}");
    assert!(err.contains("nothing was done"), "{args:?}: {err}");
}

#[test]
fn a_protected_app_needs_its_name_with_yes() {
    let Some(env) = Env::new("rollout_protected", "nginx", "") else {
        return;
    };
    env.edit_config(
        "driver = \"process\"",
        "driver = \"process\"\nprotected = true",
    );
    env.edit_config("pause = \"0s\"", "pause = \"1s\"");

    // --yes alone, or with another name: refused before anything runs.
    refused(&env, &["deploy", "web", "v1", "--yes"], "E_PROTECTED");
    refused(
        &env,
        &["deploy", "web", "v1", "--yes", "--confirm-app", "wbe"],
        "E_PROTECTED",
    );
    // No terminal to type the name on (the test's stdin is not one).
    refused(&env, &["deploy", "web", "v1"], "E_CONFIRM");
    assert_eq!(deployments(&env), 0, "nothing was deployed");
    assert_eq!(env.served(&env.ports), ["down", "down", "down"]);

    // With the name, it deploys.
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes", "--confirm-app", "web"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);

    // A rollback is refused the same way.
    refused(
        &env,
        &["rollback", "web", "--reason", "back", "--yes"],
        "E_PROTECTED",
    );
    assert_eq!(deployments(&env), 1);

    // fire: the flags are checked first; then, before anything is asked,
    // whether there is a rollout to fire at all.
    refused(&env, &["fire", "web", "--yes"], "E_PROTECTED");
    for args in [
        &["fire", "web", "--reason", "now"][..],
        &["fire", "web"][..],
        &[
            "fire",
            "web",
            "--reason",
            "now",
            "--yes",
            "--confirm-app",
            "web",
        ][..],
        &["abort", "web", "--reason", "now"][..],
    ] {
        let (code, out, err) = env.rollguard(args);
        assert_eq!(code, 1, "{args:?}: {out}\n{err}");
        assert!(err.starts_with("E_NO_ROLLOUT"), "{args:?}: {err}");
        assert!(!out.contains("type its name"), "asked first: {out}");
    }

    // abort during a rollout (slow enough to be asked about): refused
    // without the name, the rollout goes on; with it, the rollout is
    // aborted.
    env.edit_config("pause = \"1s\"", "pause = \"5s\"");
    let (code, out, err) = env.rollguard(&[
        "deploy",
        "web",
        "v2",
        "--yes",
        "--confirm-app",
        "web",
        "--detach",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    // No reason, and no terminal to ask for one on.
    let (code, out, err) = env.rollguard(&["abort", "web", "--yes", "--confirm-app", "web"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.starts_with("E_USAGE"), "{err}");
    assert!(
        err.contains("a reason is needed to abort the rollout of web")
            && err.contains("--reason TEXT"),
        "{err}"
    );
    refused(
        &env,
        &["abort", "web", "--yes", "--reason", "stop"],
        "E_PROTECTED",
    );
    refused(&env, &["abort", "web", "--reason", "stop"], "E_CONFIRM");
    assert_eq!(outcome(&env), "-", "the rollout still runs");
    let reason = match common::tmux::Session::start("rollout_protected", 120, 20) {
        // At a terminal: the reason is asked, then the name.
        Some(pane) => {
            pane.run(&format!(
                "{} --config {} --db {} abort web",
                common::rollout::BIN,
                env.config().display(),
                env.dir.join("history.db").display()
            ));
            let asked = "Why abort the rollout of web? (kept in the history)";
            let screen = pane.wait("the reason asked", Duration::from_secs(10), |sc| {
                sc.contains(asked)
            });
            assert!(!screen.contains("type its name"), "{screen}");
            pane.run("stop, typed at the prompt");
            let screen = pane.wait("the name asked", Duration::from_secs(10), |sc| {
                sc.contains("web is protected: type its name to abort it:")
            });
            assert!(
                screen.contains("Abort the rollout of web: deployment "),
                "{screen}"
            );
            pane.run("web");
            pane.wait("the abort sent", Duration::from_secs(10), |sc| {
                sc.contains("abort sent to deployment")
            });
            "stop, typed at the prompt"
        }
        None => {
            let (code, out, err) = env.rollguard(&[
                "abort",
                "web",
                "--reason",
                "stop",
                "--yes",
                "--confirm-app",
                "web",
            ]);
            assert_eq!(code, 0, "{out}\n{err}");
            "stop"
        }
    };
    wait_for("the rollout to end", Duration::from_secs(60), || {
        outcome(&env) != "-"
    });
    assert_eq!(outcome(&env), "aborted");
    let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
    assert!(out.contains(reason), "the reason is kept: {out}");
    assert_eq!(env.served(&env.ports), ["v1", "v1", "v1"]);
}

#[test]
fn an_app_that_is_not_protected_takes_yes_alone() {
    let Some(env) = Env::new("rollout_unprotected", "nginx", "") else {
        return;
    };
    // A --confirm-app naming another app is a mistake, protected or not.
    let (code, _, err) = env.rollguard(&["deploy", "web", "v1", "--yes", "--confirm-app", "api"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("E_USAGE"), "{err}");
    env.deploy_ok("v1", "rolling");
    // Nothing to fire: told so before a reason is asked for.
    let (code, _, err) = env.rollguard(&["fire", "web"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("E_NO_ROLLOUT"), "{err}");
}
