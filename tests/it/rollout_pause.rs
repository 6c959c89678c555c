//! An operator pauses a rollout between batches and resumes it; an abort
//! while paused rolls it back. Real processes behind a real nginx, through
//! the `rollguard` binary.

use crate::common;

use std::time::Duration;

use common::rollout::{Env, version_at};
use common::wait_for;
use rollguard::error::Code;
use rollguard::model::Verb;
use rollguard::rollout::service;
use rollguard::store::Store;

fn state(env: &Env) -> String {
    let (_, out, _) = env.rollguard(&["status", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v[0]["active"][0]["state"]
        .as_str()
        .unwrap_or("-")
        .to_string()
}

fn outcome(env: &Env) -> String {
    let (_, out, _) = env.rollguard(&["history", "web", "--limit", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v[0]["outcome"].as_str().unwrap_or("-").to_string()
}

#[test]
fn pause_holds_between_batches_resume_finishes_and_abort_while_paused_rolls_back() {
    let Some(env) = Env::new("rollout_pause", "nginx", "") else {
        return;
    };
    env.deploy_ok("v1", "rolling");
    env.edit_config("pause = \"0s\"", "pause = \"1s\"");

    for end in ["resume", "abort"] {
        let (code, out, err) = env.rollguard(&["deploy", "web", "v2", "--yes", "--detach"]);
        assert_eq!(code, 0, "{out}\n{err}");
        let (code, out, err) = env.rollguard(&["pause", "web", "--reason", "look first"]);
        assert_eq!(code, 0, "{out}\n{err}");
        wait_for("the rollout to pause", Duration::from_secs(20), || {
            state(&env) == "paused"
        });
        // Paused: what runs stays as it is.
        let seen = env.served(&env.ports);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(env.served(&env.ports), seen, "nothing moves while paused");
        assert!(
            seen.contains(&"v1".to_string()),
            "paused before the end: {seen:?}"
        );
        assert_eq!(state(&env), "paused");
        // What does not apply to a paused rollout is refused, and not
        // written for the rollout to ignore.
        for verb in ["pause", "approve", "hold"] {
            let (code, out, err) = env.rollguard(&[verb, "web", "--reason", "x"]);
            assert_eq!(code, 1, "{verb}: {out}\n{err}");
            assert!(err.contains("E_WRONG_STATE"), "{verb}: {err}");
            assert!(err.contains("was not sent"), "{verb}: {err}");
        }

        // abort asks for confirmation where resume does not: --yes.
        let yes: &[&str] = if end == "abort" { &["--yes"] } else { &[] };
        let args = [&[end, "web", "--reason", "checked"][..], yes].concat();
        let (code, out, err) = env.rollguard(&args);
        assert_eq!(code, 0, "{end}: {out}\n{err}");
        wait_for("the rollout to end", Duration::from_secs(60), || {
            outcome(&env) != "-"
        });
        let p = env.ports.clone();
        match end {
            "resume" => {
                assert_eq!(outcome(&env), "deployed");
                assert_eq!(env.served(&p), ["v2", "v2", "v2"]);
                // Back to v1 for the abort round.
                env.edit_config("pause = \"1s\"", "pause = \"0s\"");
                env.deploy_ok("v1", "rolling");
                env.edit_config("pause = \"0s\"", "pause = \"1s\"");
            }
            _ => {
                assert_eq!(outcome(&env), "aborted");
                assert!(p.iter().all(|port| version_at(*port) == "v1"));
            }
        }
    }
    // A command meant for a deployment that has ended goes nowhere, and
    // says how that deployment ended.
    let store = Store::open(&env.dir.join("history.db")).unwrap();
    let ended = store.deployments(Some("web"), 1).unwrap()[0].id;
    let e = service::send(&store, "web", Some(ended), Verb::Abort, "t", None).unwrap_err();
    assert_eq!(e.code, Code::NoRollout, "{e}");
    assert!(
        e.message
            .contains(&format!("deployment {ended} of web has ended (aborted)")),
        "{e}"
    );
    assert!(
        store.take_commands("web", ended).unwrap().is_empty(),
        "nothing was written"
    );

    let (_, out, _) = env.rollguard(&["history", "web"]);
    assert!(
        out.contains("pause by"),
        "the pause and who sent it are listed: {out}"
    );
}
