//! rollguard with its history in PostgreSQL, as a bastion runs it: the
//! URL in `$ROLLGUARD_DB`, a real server (the tests' private cluster), and
//! real rollouts whose workers write there.

use crate::common;

use common::rollout::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_and_its_rollback_are_recorded_in_postgresql() {
    let Some(url) = common::postgres::database("rollout_in_postgres") else {
        return;
    };
    let Some(mut env) = Env::new("rollout_in_postgres", "nginx", "") else {
        return;
    };
    env.history_url = Some(url.clone());
    let (code, out, err) = env.rollguard(&["deploy", "web", "v1", "--yes"]);
    assert_eq!(code, 0, "install failed:\n{out}\n{err}");
    let (code, report, seen) = env.deploy_under_load("v2", &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"], "deployed");
    assert!(seen.failed.is_empty(), "{:?}", seen.some_failures());
    let (code, report, _) = env.deploy_under_load("v3", &[]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(env.served(&env.ports), ["v2", "v2", "v2"]);

    // Nothing was written beside the config: the history is the server's.
    assert!(!env.dir.join("history.db").exists());
    let (code, out, err) = env.rollguard(&["history", "web", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["rolled_back", "deployed", "deployed"], "{out}");
    let (code, out, err) = env.rollguard(&["events", "--app", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rollback"), "{out}");
    // The workers' logs are kept on this machine, in the default
    // history's folder; the password is nowhere in them or in what was
    // printed.
    let logs: Vec<String> = std::fs::read_dir(env.dir.join("data/rollguard/rollouts"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(logs.len(), 3, "one log per deploy");
    for text in logs.iter().chain([&out, &err]) {
        assert!(!text.contains(common::postgres::PASSWORD), "{text}");
    }
}
