//! Tests of the rollout tables of the history store on real SQLite files in
//! temporary folders: round trips of deployments, events, batches, changes,
//! snapshots, releases, instance state, locks and commands; lenient reads
//! of hand-edited rows; and races between several connections for the lock
//! and the command queue.

use crate::common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::TempDir;
use common::postgres::backends;
use rollguard::model::now_ms;
use rollguard::store::{LockOwner, Store, StoreError};
use serde_json::json;

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn owner(pid: u32) -> LockOwner {
    LockOwner {
        user: "alice".into(),
        host: "ops-1".into(),
        pid,
        start: Some(u64::from(pid) * 10),
    }
}

fn new_deployment(store: &Store, app: &str, to: &str) -> i64 {
    store
        .create_deployment(
            app,
            Some("1.0"),
            to,
            rollguard::config::Strategy::Rolling,
            "alice",
            Some("ticket 42"),
            &json!({"batches": 2}),
            &["no canary".to_string()],
        )
        .unwrap()
}

fn is_no_row(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Query {
            source: rollguard::store::db::DbError::NoRows,
            ..
        }
    )
}

#[test]
fn deployment_round_trip() {
    for backend in backends("rollout-deploy") {
        let store = backend.open();
        let before = now_ms();
        let id = new_deployment(&store, "web", "1.1");

        let d = store.deployment(id).unwrap().unwrap();
        assert_eq!(d.id, id);
        assert_eq!(d.app, "web");
        assert_eq!(d.from_version.as_deref(), Some("1.0"));
        assert_eq!(d.to_version, "1.1");
        assert_eq!(d.strategy.as_str(), "rolling");
        assert_eq!(d.state.as_str(), "pending");
        assert_eq!(d.outcome, None);
        assert_eq!(d.actor, "alice");
        assert_eq!(d.reason.as_deref(), Some("ticket 42"));
        assert!(d.started_at_ms >= before && d.started_at_ms <= now_ms());
        assert_eq!(d.ended_at_ms, None);
        assert_eq!(d.plan, json!({"batches": 2}));
        assert_eq!(d.warnings, ["no canary"]);
        assert!(store.deployment(id + 100).unwrap().is_none());

        store
            .set_deployment_state(id, rollguard::model::DeploymentState::Running)
            .unwrap();
        store.add_deployment_warning(id, "slow probe").unwrap();
        store
            .add_deployment_warning(id, "quote \" and ] inside")
            .unwrap();
        let d = store.deployment(id).unwrap().unwrap();
        assert_eq!(d.state.as_str(), "running");
        assert_eq!(
            d.warnings,
            ["no canary", "slow probe", "quote \" and ] inside"]
        );
        assert_eq!(store.unfinished_deployments(None).unwrap().len(), 1);

        store
            .finish_deployment(
                id,
                rollguard::model::DeploymentState::Done,
                rollguard::model::Outcome::Deployed,
            )
            .unwrap();
        let d = store.deployment(id).unwrap().unwrap();
        assert_eq!(d.state.as_str(), "done");
        assert_eq!(
            d.outcome.map(rollguard::model::Outcome::as_str),
            Some("deployed")
        );
        assert!(d.ended_at_ms.is_some_and(|t| t >= d.started_at_ms));
        assert!(store.unfinished_deployments(None).unwrap().is_empty());

        // Updating a deployment that does not exist is an error, not a no-op.
        for e in [
            store
                .set_deployment_state(999, rollguard::model::DeploymentState::Running)
                .unwrap_err(),
            store
                .finish_deployment(
                    999,
                    rollguard::model::DeploymentState::Done,
                    rollguard::model::Outcome::Deployed,
                )
                .unwrap_err(),
            store.add_deployment_warning(999, "w").unwrap_err(),
        ] {
            assert!(is_no_row(&e), "{e}");
            assert!(e.to_string().contains("no deployment has that id"), "{e}");
        }

        // Serializes (for --json output).
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["to_version"], "1.1");
    }
}

#[test]
fn deployments_list_newest_first_and_filter() {
    for backend in backends("rollout-list") {
        let store = backend.open();
        let a1 = new_deployment(&store, "web", "1");
        let b1 = new_deployment(&store, "api", "1");
        let a2 = new_deployment(&store, "web", "2");
        let a3 = new_deployment(&store, "web", "3");
        store
            .finish_deployment(
                a2,
                rollguard::model::DeploymentState::Done,
                rollguard::model::Outcome::Deployed,
            )
            .unwrap();

        let ids = |v: Vec<rollguard::store::Deployment>| v.iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(store.deployments(None, 10).unwrap()), [a3, a2, b1, a1]);
        assert_eq!(
            ids(store.deployments(Some("web"), 10).unwrap()),
            [a3, a2, a1]
        );
        assert_eq!(ids(store.deployments(Some("web"), 2).unwrap()), [a3, a2]);
        assert!(store.deployments(Some("nope"), 10).unwrap().is_empty());
        assert_eq!(
            ids(store.unfinished_deployments(None).unwrap()),
            [a3, b1, a1]
        );
        assert_eq!(
            ids(store.unfinished_deployments(Some("api")).unwrap()),
            [b1]
        );
    }
}

#[test]
fn odd_deployment_rows_read_leniently() {
    for backend in backends("rollout-odd") {
        // Only SQLite keeps any value in any column; PostgreSQL's types
        // refuse these rows before they are written.
        if !backend.is_sqlite() {
            continue;
        }
        let store = backend.open();
        backend.sql(
            "INSERT INTO deployments (id, app, to_version, strategy, state, actor, started_at_ms, \
               ended_at_ms, plan, warnings, from_version) \
             VALUES (7, X'ff41', 3, 'rolling', 'pending', 'bob', 'soon', 'later', '[1,2]', \
               '{\"a\":1}', 12);
             INSERT INTO deployments (id, app, to_version, strategy, state, actor, started_at_ms, \
               plan, warnings) \
             VALUES (8, 'web', '2', 'rolling', 'pending', 'bob', 1.9e3, '5', '\"just one\"');",
        );
        let d = store.deployment(7).unwrap().unwrap();
        assert_eq!(d.app, "\u{FFFD}A");
        assert_eq!(d.to_version, "3");
        assert_eq!(d.from_version.as_deref(), Some("12"));
        assert_eq!(d.started_at_ms, 0);
        assert_eq!(d.ended_at_ms, None);
        assert_eq!(d.plan, json!([1, 2]));
        assert_eq!(d.warnings, [r#"{"a":1}"#]);
        let d = store.deployment(8).unwrap().unwrap();
        assert_eq!(d.started_at_ms, 1900);
        assert_eq!(d.plan, json!(5));
        assert_eq!(d.warnings, ["just one"]);

        // Appending to warnings that are not an array keeps the old value.
        store.add_deployment_warning(7, "new").unwrap();
        store.add_deployment_warning(8, "new").unwrap();
        assert_eq!(
            store.deployment(7).unwrap().unwrap().warnings,
            [r#"{"a":1}"#, "new"]
        );
        assert_eq!(
            store.deployment(8).unwrap().unwrap().warnings,
            ["just one", "new"]
        );
        // And the list readers survive the odd rows.
        assert_eq!(store.deployments(None, 10).unwrap().len(), 2);
    }
}

#[test]
fn deployment_events_paginate_by_id() {
    for backend in backends("rollout-events") {
        let store = backend.open();
        let d1 = new_deployment(&store, "web", "2");
        let d2 = new_deployment(&store, "web", "3");
        let mut mine = Vec::new();
        for i in 0..5 {
            let evidence = json!({"n": i});
            mine.push(
                store
                    .record_deployment_event(
                        "web",
                        Some(d1),
                        "batch_started",
                        "rollguard",
                        (i == 0).then_some("first"),
                        Some(&evidence),
                    )
                    .unwrap(),
            );
            // Interleaved noise: another deployment and an app-level event.
            store
                .record_deployment_event("web", Some(d2), "other", "rollguard", None, None)
                .unwrap();
            store
                .record_event("web", "probe_paused", "bob", None, None)
                .unwrap();
        }

        let all = store.deployment_events(d1, 0).unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), mine);
        assert!(all.iter().all(|e| e.deployment_id == Some(d1)));
        assert_eq!(all[0].reason.as_deref(), Some("first"));
        assert_eq!(all[3].evidence, Some(json!({"n": 3})));
        assert_eq!(all[1].kind, "batch_started");
        assert_eq!(all[1].actor, "rollguard");

        // A follower polling with the last id it saw gets only newer events.
        let page = store.deployment_events(d1, mine[1]).unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), &mine[2..]);
        assert!(store.deployment_events(d1, mine[4]).unwrap().is_empty());
        let next = store
            .record_deployment_event("web", Some(d1), "done", "rollguard", None, None)
            .unwrap();
        let page = store.deployment_events(d1, mine[4]).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, next);
        assert_eq!(page[0].evidence, None);

        // Deployment events also appear in the general audit log.
        assert!(store.events(Some("web"), 100).unwrap().len() >= 16);
        // An unknown deployment id is refused by the foreign key.
        assert!(
            store
                .record_deployment_event("web", Some(999), "x", "y", None, None)
                .is_err()
        );
    }
}

#[test]
fn batches_round_trip_and_timestamps() {
    for backend in backends("rollout-batches") {
        let store = backend.open();
        let d = new_deployment(&store, "web", "2");
        let ids = store
            .insert_batches(
                d,
                &[
                    ("step", vec!["a".into()], Some(10.0)),
                    ("batch", vec!["b".into(), "c".into()], None),
                    ("batch", vec![], Some(100.0)),
                ],
            )
            .unwrap();
        assert_eq!(ids.len(), 3);

        let bs = store.batches(d).unwrap();
        assert_eq!(bs.iter().map(|b| b.id).collect::<Vec<_>>(), ids);
        assert_eq!(bs.iter().map(|b| b.idx).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(bs[0].kind, "step");
        assert_eq!(bs[0].instances, ["a"]);
        assert_eq!(bs[0].traffic_percent, Some(10.0));
        assert_eq!(bs[1].instances, ["b", "c"]);
        assert_eq!(bs[1].traffic_percent, None);
        assert!(bs[2].instances.is_empty());
        assert!(bs.iter().all(|b| b.state.as_str() == "pending"
            && b.started_at_ms.is_none()
            && b.ended_at_ms.is_none()));
        assert!(bs.iter().all(|b| b.deployment_id == d));

        // pending → running stamps the start only.
        store
            .set_batch_state(ids[0], rollguard::model::BatchState::Pending)
            .unwrap();
        assert_eq!(store.batches(d).unwrap()[0].started_at_ms, None);
        store
            .set_batch_state(ids[0], rollguard::model::BatchState::Running)
            .unwrap();
        let b = &store.batches(d).unwrap()[0];
        let started = b.started_at_ms.unwrap();
        assert_eq!(b.ended_at_ms, None);
        // Backdate the start to see that later states keep it.
        backend.sql(&format!(
            "UPDATE batches SET started_at_ms = 5 WHERE id = {}",
            ids[0]
        ));
        store
            .set_batch_state(ids[0], rollguard::model::BatchState::Running)
            .unwrap();
        assert_eq!(store.batches(d).unwrap()[0].started_at_ms, Some(5));
        store
            .set_batch_state(ids[0], rollguard::model::BatchState::Passed)
            .unwrap();
        let b = &store.batches(d).unwrap()[0];
        assert_eq!(b.state.as_str(), "passed");
        assert_eq!(b.started_at_ms, Some(5));
        assert!(b.ended_at_ms.is_some_and(|t| t >= started));
        // Every end state stamps the end.
        for (i, state) in ["failed", "rolled_back", "skipped"].iter().enumerate() {
            let id = if i == 2 { ids[2] } else { ids[1] };
            store
                .set_batch_state(id, rollguard::model::BatchState::parse(state).unwrap())
                .unwrap();
        }
        let bs = store.batches(d).unwrap();
        assert_eq!(bs[1].state.as_str(), "rolled_back");
        assert!(bs[1].ended_at_ms.is_some() && bs[1].started_at_ms.is_some());
        assert_eq!(bs[2].state.as_str(), "skipped");
        assert!(bs[2].ended_at_ms.is_some());
        assert!(is_no_row(
            &store
                .set_batch_state(999, rollguard::model::BatchState::Running)
                .unwrap_err()
        ));

        // One bad batch (kind, or percent out of range) writes none of them.
        let d2 = new_deployment(&store, "web", "3");
        assert!(
            store
                .insert_batches(
                    d2,
                    &[("batch", vec!["a".into()], None), ("wave", vec![], None)],
                )
                .is_err()
        );
        assert!(
            store
                .insert_batches(
                    d2,
                    &[
                        ("batch", vec!["a".into()], None),
                        ("step", vec![], Some(150.0))
                    ],
                )
                .is_err()
        );
        assert!(store.batches(d2).unwrap().is_empty());
        // Inserting the same positions twice is refused.
        assert!(store.insert_batches(d, &[("batch", vec![], None)]).is_err());
        assert_eq!(store.batches(d).unwrap().len(), 3);
        assert!(store.insert_batches(d2, &[]).unwrap().is_empty());
    }
}

#[test]
fn changes_round_trip() {
    for backend in backends("rollout-changes") {
        let store = backend.open();
        let d = new_deployment(&store, "web", "2");
        let b = store
            .insert_batches(d, &[("batch", vec!["a".into()], None)])
            .unwrap()[0];
        let c1 = store
            .record_change(
                d,
                Some(b),
                "a",
                rollguard::model::ChangeAction::Start,
                Some("1"),
                Some("2"),
                rollguard::model::ChangeState::Started,
                None,
            )
            .unwrap();
        let c2 = store
            .record_change(
                d,
                None,
                "a",
                rollguard::model::ChangeAction::Retire,
                None,
                None,
                rollguard::model::ChangeState::Done,
                Some(&json!({"ms": 30})),
            )
            .unwrap();

        let cs = store.changes(d).unwrap();
        assert_eq!(cs.iter().map(|c| c.id).collect::<Vec<_>>(), [c1, c2]);
        assert_eq!(cs[0].batch_id, Some(b));
        assert_eq!(cs[0].instance, "a");
        assert_eq!(cs[0].action.as_str(), "start");
        assert_eq!(cs[0].from_version.as_deref(), Some("1"));
        assert_eq!(cs[0].to_version.as_deref(), Some("2"));
        assert_eq!(cs[0].state.as_str(), "started");
        assert_eq!(cs[0].detail, None);
        assert!(cs[0].at_ms > 0);
        assert_eq!(cs[1].batch_id, None);
        assert_eq!(cs[1].detail, Some(json!({"ms": 30})));

        store
            .set_change_state(
                c1,
                rollguard::model::ChangeState::Failed,
                Some(&json!({"error": "exit 1"})),
            )
            .unwrap();
        // None keeps the detail.
        store
            .set_change_state(c2, rollguard::model::ChangeState::Done, None)
            .unwrap();
        let cs = store.changes(d).unwrap();
        assert_eq!(cs[0].state.as_str(), "failed");
        assert_eq!(cs[0].detail, Some(json!({"error": "exit 1"})));
        assert_eq!(cs[1].state.as_str(), "done");
        assert_eq!(cs[1].detail, Some(json!({"ms": 30})));
        assert!(is_no_row(
            &store
                .set_change_state(999, rollguard::model::ChangeState::Done, None)
                .unwrap_err()
        ));
        assert!(store.changes(d + 1).unwrap().is_empty());
    }
}

#[test]
fn snapshots_round_trip_and_latest() {
    for backend in backends("rollout-snap") {
        let store = backend.open();
        let d = new_deployment(&store, "web", "2");
        let s1 = store
            .save_snapshot(Some(d), "web", "a", "docker", &json!({"image": "web:1"}))
            .unwrap();
        let s2 = store
            .save_snapshot(Some(d), "web", "b", "docker", &json!({"image": "web:1"}))
            .unwrap();
        let s3 = store
            .save_snapshot(None, "web", "a", "systemd", &json!({"unit": "web"}))
            .unwrap();

        let snaps = store.deployment_snapshots(d).unwrap();
        assert_eq!(snaps.iter().map(|s| s.id).collect::<Vec<_>>(), [s1, s2]);
        assert_eq!(snaps[0].deployment_id, Some(d));
        assert_eq!(snaps[0].app, "web");
        assert_eq!(snaps[0].instance, "a");
        assert_eq!(snaps[0].driver, "docker");
        assert_eq!(snaps[0].data, json!({"image": "web:1"}));

        let latest = store.latest_snapshot("web", "a").unwrap().unwrap();
        assert_eq!(latest.id, s3);
        assert_eq!(latest.deployment_id, None);
        assert_eq!(latest.driver, "systemd");
        // By time first: an older-stamped later row does not win.
        backend.sql(&format!("UPDATE snapshots SET at_ms = 1 WHERE id = {}", s3));
        assert_eq!(store.latest_snapshot("web", "a").unwrap().unwrap().id, s1);
        assert!(store.latest_snapshot("web", "zzz").unwrap().is_none());
        assert!(store.latest_snapshot("api", "a").unwrap().is_none());
    }
}

#[test]
fn releases_and_last_good() {
    for backend in backends("rollout-releases") {
        let store = backend.open();
        assert!(store.last_good_release("web", None).unwrap().is_none());

        store.touch_release("web", "1").unwrap();
        let r1 = store.release("web", "1").unwrap().unwrap();
        assert_eq!(r1.last_healthy_ms, None);
        assert_eq!(r1.artifact, None);
        // Touching again keeps first_seen.
        std::thread::sleep(Duration::from_millis(3));
        store.touch_release("web", "1").unwrap();
        assert_eq!(store.release("web", "1").unwrap().unwrap(), r1);
        // Never healthy: no rollback target.
        assert!(store.last_good_release("web", None).unwrap().is_none());

        store.mark_release_healthy("web", "1", 1_000).unwrap();
        store.mark_release_healthy("web", "2", 3_000).unwrap(); // new row
        store.mark_release_healthy("web", "3", 2_000).unwrap();
        store.mark_release_healthy("api", "9", 9_000).unwrap();
        // last_healthy only moves forward.
        store.mark_release_healthy("web", "2", 500).unwrap();
        let r2 = store.release("web", "2").unwrap().unwrap();
        assert_eq!(r2.last_healthy_ms, Some(3_000));
        assert_eq!(r2.first_seen_ms, 3_000, "first seen no later than healthy");
        store.mark_release_healthy("web", "1", 1_500).unwrap();
        assert_eq!(
            store.release("web", "1").unwrap().unwrap().last_healthy_ms,
            Some(1_500)
        );

        let last = |except| {
            store
                .last_good_release("web", except)
                .unwrap()
                .map(|r| r.version)
        };
        assert_eq!(last(None).as_deref(), Some("2"));
        assert_eq!(last(Some("2")).as_deref(), Some("3"));
        assert_eq!(last(Some("nope")).as_deref(), Some("2"));
        store.mark_release_healthy("web", "1", 4_000).unwrap();
        assert_eq!(last(None).as_deref(), Some("1"));
        assert_eq!(last(Some("1")).as_deref(), Some("2"));
        assert_eq!(
            store
                .last_good_release("api", Some("9"))
                .unwrap()
                .map(|r| r.version),
            None
        );

        // releases(): most recently first seen first.
        backend.sql(
            "UPDATE releases SET first_seen_ms = 10 WHERE app = 'web' AND version = '1';
             UPDATE releases SET first_seen_ms = 30 WHERE app = 'web' AND version = '2';
             UPDATE releases SET first_seen_ms = 20 WHERE app = 'web' AND version = '3';",
        );
        let versions: Vec<_> = store
            .releases("web")
            .unwrap()
            .into_iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(versions, ["2", "3", "1"]);

        // Odd values: a text last_healthy is no candidate and gets replaced;
        // an artifact reads back as JSON.
        if !backend.is_sqlite() {
            // PostgreSQL's bigint column cannot hold text: the rest is
            // about odd values only SQLite keeps.
            continue;
        }
        backend.sql(
            "UPDATE releases SET last_healthy_ms = 'yesterday', artifact = '{\"digest\":\"sha256:x\"}' \
               WHERE app = 'web' AND version = '1';",
        );
        let r1 = store.release("web", "1").unwrap().unwrap();
        assert_eq!(r1.last_healthy_ms, None);
        assert_eq!(r1.artifact, Some(json!({"digest": "sha256:x"})));
        assert_eq!(last(None).as_deref(), Some("2"));
        store.mark_release_healthy("web", "1", 100).unwrap();
        assert_eq!(
            store.release("web", "1").unwrap().unwrap().last_healthy_ms,
            Some(100)
        );
    }
}

#[test]
fn instance_state_upserts() {
    for backend in backends("rollout-istate") {
        let store = backend.open();
        store
            .set_instance_state("web", "b", Some("1"), Some("blue"))
            .unwrap();
        store
            .set_instance_state("web", "a", Some("1"), None)
            .unwrap();
        store.set_instance_state("api", "a", None, None).unwrap();
        store
            .set_instance_state("web", "b", Some("2"), Some("green"))
            .unwrap();

        let states = store.instance_states("web").unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].instance, "a");
        assert_eq!(states[0].version.as_deref(), Some("1"));
        assert_eq!(states[0].live_side, None);
        assert_eq!(states[1].instance, "b");
        assert_eq!(states[1].app, "web");
        assert_eq!(states[1].version.as_deref(), Some("2"));
        assert_eq!(states[1].live_side.as_deref(), Some("green"));
        assert!(states[1].updated_ms > 0);
        store.set_instance_state("web", "b", None, None).unwrap();
        let states = store.instance_states("web").unwrap();
        assert_eq!(states[1].version, None);
        assert_eq!(states[1].live_side, None);
        assert_eq!(store.instance_states("api").unwrap().len(), 1);
        assert!(store.instance_states("none").unwrap().is_empty());
    }
}

#[test]
fn lock_lifecycle() {
    for backend in backends("rollout-lock") {
        let store = backend.open();
        let other = backend.open();
        assert!(store.lock("web").unwrap().is_none());

        let before = now_ms();
        store
            .try_lock("web", &owner(100), "deploy 2", None)
            .unwrap()
            .unwrap();
        let held = other
            .try_lock("web", &owner(200), "me too", None)
            .unwrap()
            .unwrap_err();
        assert_eq!(held.app, "web");
        assert_eq!(held.owner_pid, 100);
        assert_eq!(held.owner_user, "alice");
        assert_eq!(held.owner_host, "ops-1");
        assert_eq!(held.reason, "deploy 2");
        assert_eq!(held.deployment_id, None);
        assert!(held.acquired_ms >= before);
        assert_eq!(held.acquired_ms, held.heartbeat_ms);
        assert_eq!(other.lock("web").unwrap(), Some(held.clone()));
        // Another app is independent.
        other
            .try_lock("api", &owner(200), "", None)
            .unwrap()
            .unwrap();

        let d = new_deployment(&store, "web", "2");
        store.set_lock_deployment("web", d).unwrap();
        assert_eq!(store.lock("web").unwrap().unwrap().deployment_id, Some(d));

        // A non-owner can neither refresh nor release it.
        assert!(!other.heartbeat("web", &owner(200)).unwrap());
        assert!(!other.unlock("web", &owner(200)).unwrap());
        assert_eq!(store.lock("web").unwrap().unwrap().owner_pid, 100);

        // Hand over to a worker: the old pid loses it, the new one has it.
        backend.sql("UPDATE locks SET heartbeat_ms = 1 WHERE app = 'web'");
        assert!(
            store
                .lock("web")
                .unwrap()
                .unwrap()
                .is_stale(now_ms(), 60_000)
        );
        store.set_lock_owner("web", &owner(300)).unwrap();
        let l = store.lock("web").unwrap().unwrap();
        assert_eq!(l.owner_pid, 300);
        assert!(!l.is_stale(now_ms(), 60_000), "hand-over is a heartbeat");
        assert!(!store.heartbeat("web", &owner(100)).unwrap());
        backend.sql("UPDATE locks SET heartbeat_ms = 1 WHERE app = 'web'");
        assert!(store.heartbeat("web", &owner(300)).unwrap());
        assert!(store.lock("web").unwrap().unwrap().heartbeat_ms >= before);

        // The same pid on another host, or a later process given that pid
        // (another start time), is not the holder.
        let elsewhere = LockOwner {
            host: "ops-2".into(),
            ..owner(300)
        };
        let later = LockOwner {
            start: Some(4_200),
            ..owner(300)
        };
        for not_holder in [&elsewhere, &later] {
            assert!(!store.heartbeat("web", not_holder).unwrap());
            assert!(!store.unlock("web", not_holder).unwrap());
        }
        assert_eq!(store.lock("web").unwrap().unwrap().owner_start, Some(3_000));
        assert!(!store.unlock("web", &owner(100)).unwrap());
        assert!(store.unlock("web", &owner(300)).unwrap());
        assert!(store.lock("web").unwrap().is_none());
        assert!(!store.unlock("web", &owner(300)).unwrap());
        assert!(!store.heartbeat("web", &owner(300)).unwrap());
        assert!(is_no_row(&store.set_lock_deployment("web", d).unwrap_err()));
        assert!(is_no_row(
            &store.set_lock_owner("web", &owner(1)).unwrap_err()
        ));

        // break_lock returns what it removed, whoever held it.
        let broken = store.break_lock("api").unwrap().unwrap();
        assert_eq!(broken.owner_pid, 200);
        assert!(store.lock("api").unwrap().is_none());
        assert!(store.break_lock("api").unwrap().is_none());
        // ... after which the lock can be taken again.
        store
            .try_lock("api", &owner(100), "", Some(d))
            .unwrap()
            .unwrap();
        assert_eq!(store.lock("api").unwrap().unwrap().deployment_id, Some(d));
    }
}

#[test]
fn try_lock_race_has_exactly_one_winner() {
    const ROUNDS: usize = 100;
    let dir = TempDir::new("rollout-lock-race");
    let path = dir.join("h.db");
    drop(Store::open(&path).unwrap()); // migrate once up front
    let barrier = Arc::new(Barrier::new(2));
    let wins: Arc<Vec<AtomicU32>> = Arc::new((0..ROUNDS).map(|_| AtomicU32::new(0)).collect());
    let threads: Vec<_> = (1..=2u32)
        .map(|pid| {
            let (path, barrier, wins) = (path.clone(), barrier.clone(), wins.clone());
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                for round in 0..ROUNDS {
                    barrier.wait();
                    let won = match store.try_lock("web", &owner(pid), "race", None).unwrap() {
                        Ok(()) => {
                            wins[round].fetch_add(1, Ordering::SeqCst);
                            true
                        }
                        Err(lock) => {
                            assert_ne!(lock.owner_pid, i64::from(pid), "round {round}");
                            false
                        }
                    };
                    barrier.wait();
                    if won {
                        assert!(store.unlock("web", &owner(pid)).unwrap());
                    }
                    barrier.wait();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (round, w) in wins.iter().enumerate() {
        assert_eq!(w.load(Ordering::SeqCst), 1, "round {round}");
    }
}

#[test]
fn commands_are_scoped_and_taken_once() {
    for backend in backends("rollout-commands") {
        let store = backend.open();
        let d1 = new_deployment(&store, "web", "2");
        let d2 = new_deployment(&store, "web", "3");
        let a = store
            .send_command(
                "web",
                Some(d1),
                rollguard::model::Verb::Pause,
                "bob",
                Some("looks odd"),
            )
            .unwrap();
        let b = store
            .send_command("web", None, rollguard::model::Verb::Abort, "carol", None)
            .unwrap();
        store
            .send_command("web", Some(d2), rollguard::model::Verb::Resume, "bob", None)
            .unwrap();
        store
            .send_command("api", None, rollguard::model::Verb::Pause, "bob", None)
            .unwrap();

        let got = store.take_commands("web", d1).unwrap();
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), [a, b]);
        assert_eq!(got[0].verb.as_str(), "pause");
        assert_eq!(got[0].actor, "bob");
        assert_eq!(got[0].reason.as_deref(), Some("looks odd"));
        assert_eq!(got[0].deployment_id, Some(d1));
        assert_eq!(got[0].app, "web");
        assert!(got[0].at_ms > 0);
        assert_eq!(got[1].deployment_id, None);
        assert!(store.take_commands("web", d1).unwrap().is_empty());
        // The app-wide abort went to d1 only; d2 still has its own.
        let got = store.take_commands("web", d2).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].verb.as_str(), "resume");
        assert_eq!(store.take_commands("api", 12345).unwrap().len(), 1);
    }
}

#[test]
fn take_commands_from_two_stores_never_delivers_twice() {
    const SENT: usize = 200;
    let dir = TempDir::new("rollout-commands-race");
    let path = dir.join("h.db");
    let store = Store::open(&path).unwrap();
    let d = new_deployment(&store, "web", "2");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let takers: Vec<_> = (0..2)
        .map(|_| {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                let mut got = Vec::new();
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    got.extend(
                        store
                            .take_commands("web", d)
                            .unwrap()
                            .into_iter()
                            .map(|c| c.id),
                    );
                    if finished {
                        return got;
                    }
                }
            })
        })
        .collect();
    let mut sent = HashSet::new();
    for i in 0..SENT {
        let dep = if i % 3 == 0 { None } else { Some(d) };
        sent.insert(
            store
                .send_command("web", dep, rollguard::model::Verb::Pause, "bob", None)
                .unwrap(),
        );
    }
    done.store(true, Ordering::SeqCst);

    let mut seen = HashSet::new();
    let mut per_taker = Vec::new();
    for t in takers {
        let got = t.join().unwrap();
        // Each taker sees its commands oldest first.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        per_taker.push(got.len());
        for id in got {
            assert!(seen.insert(id), "command {id} delivered twice");
        }
    }
    assert_eq!(seen, sent, "every command delivered once");
    eprintln!("commands taken per store: {per_taker:?}");
}

/// Fills a history with enough deployments, batches, changes, events,
/// snapshots, releases, instance states and locks that every table spans
/// many pages, and returns the page count right after the schema was made
/// (every page after it holds rows).
fn big_history(path: &std::path::Path) -> i64 {
    let store = Store::open(path).unwrap();
    let schema_pages: i64 = raw(path)
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    let filler = "x".repeat(300);
    for n in 0..120 {
        let app = format!("app-{}", n % 4);
        let id = new_deployment(&store, &app, &format!("2.{n}"));
        let batches = store
            .insert_batches(
                id,
                &[
                    ("batch", vec![format!("{app}-1"), filler.clone()], None),
                    ("batch", vec![format!("{app}-2")], None),
                ],
            )
            .unwrap();
        store
            .record_change(
                id,
                Some(batches[0]),
                &format!("{app}-1"),
                rollguard::model::ChangeAction::Start,
                Some("1.0"),
                Some("2.0"),
                rollguard::model::ChangeState::Done,
                Some(&json!({ "out": filler })),
            )
            .unwrap();
        store
            .record_deployment_event(&app, Some(id), "note", "alice", Some(&filler), None)
            .unwrap();
        store
            .save_snapshot(
                Some(id),
                &app,
                &format!("{app}-1"),
                "process",
                &json!({ "f": filler }),
            )
            .unwrap();
        store
            .mark_release_healthy(&app, &format!("2.{n}"), now_ms())
            .unwrap();
        store
            .mark_release_healthy(&app, &format!("2.{n}+{filler}"), now_ms())
            .unwrap();
        store
            .set_instance_state(&app, &format!("{app}-{n}-{filler}"), Some("2.0"), None)
            .unwrap();
        let locked = if n < 4 {
            app.clone()
        } else {
            format!("locked-{n}-{filler}")
        };
        store
            .try_lock(&locked, &owner(7), &filler, Some(id))
            .unwrap()
            .unwrap();
        store
            .send_command(
                &app,
                Some(id),
                rollguard::model::Verb::Pause,
                "bob",
                Some(&filler),
            )
            .unwrap();
        if n % 2 == 0 {
            store
                .finish_deployment(
                    id,
                    rollguard::model::DeploymentState::Done,
                    rollguard::model::Outcome::Deployed,
                )
                .unwrap();
        }
    }
    // The last pages hold probe results, so the damage below spares none
    // of the tables read.
    let mut store = store;
    let results: Vec<_> = (0..200)
        .map(|n| rollguard::model::ProbeResult {
            key: rollguard::model::ProbeKey {
                app: "app-0".into(),
                instance: "app-0-1".into(),
                probe: "http".into(),
            },
            at_ms: n,
            ok: true,
            latency_ms: 1.0,
            code: Some(200),
            error_kind: None,
            message: filler.clone(),
        })
        .collect();
    store.insert_results(&results).unwrap();
    drop(store);
    schema_pages
}

/// Overwrites pages `from..=to` (1-based, as SQLite counts) of the file
/// with bytes that are no SQLite page.
fn scribble(path: &std::path::Path, from: i64, to: i64) {
    use std::io::{Seek, SeekFrom, Write};
    let page_size: i64 = raw(path)
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for page in from..=to {
        let mut bytes = vec![0u8; page_size as usize];
        for b in &mut bytes {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        // No valid page type (2, 5, 10, 13) in the first byte.
        bytes[0] = 0xEE;
        f.seek(SeekFrom::Start(((page - 1) * page_size) as u64))
            .unwrap();
        f.write_all(&bytes).unwrap();
    }
    f.sync_all().unwrap();
}

/// Every reader of the history, each answering how many items it found
/// (1 for `Some`, 0 for `None`) for deployment `dep`.
#[allow(clippy::type_complexity)]
fn readers(
    dep: i64,
) -> Vec<(
    &'static str,
    Box<dyn Fn(&Store) -> Result<usize, StoreError>>,
)> {
    vec![
        (
            "deployments",
            Box::new(|s: &Store| Ok(s.deployments(None, 1000)?.len())),
        ),
        (
            "deployments of an app",
            Box::new(|s: &Store| Ok(s.deployments(Some("app-1"), 1000)?.len())),
        ),
        (
            "deployment",
            Box::new(move |s: &Store| Ok(s.deployment(dep)?.iter().count())),
        ),
        (
            "unfinished deployments",
            Box::new(|s: &Store| Ok(s.unfinished_deployments(None)?.len())),
        ),
        (
            "batches",
            Box::new(move |s: &Store| Ok(s.batches(dep)?.len())),
        ),
        (
            "changes",
            Box::new(move |s: &Store| Ok(s.changes(dep)?.len())),
        ),
        (
            "deployment events",
            Box::new(move |s: &Store| Ok(s.deployment_events(dep, 0)?.len())),
        ),
        (
            "events",
            Box::new(|s: &Store| Ok(s.events(None, 1000)?.len())),
        ),
        (
            "deployment snapshots",
            Box::new(move |s: &Store| Ok(s.deployment_snapshots(dep)?.len())),
        ),
        (
            "latest snapshot",
            Box::new(|s: &Store| Ok(s.latest_snapshot("app-0", "app-0-1")?.iter().count())),
        ),
        (
            "releases",
            Box::new(|s: &Store| Ok(s.releases("app-0")?.len())),
        ),
        (
            "release",
            Box::new(|s: &Store| Ok(s.release("app-0", "2.0")?.iter().count())),
        ),
        (
            "last good release",
            Box::new(|s: &Store| Ok(s.last_good_release("app-0", None)?.iter().count())),
        ),
        (
            "instance states",
            Box::new(|s: &Store| Ok(s.instance_states("app-0")?.len())),
        ),
        (
            "lock",
            Box::new(|s: &Store| Ok(s.lock("app-0")?.iter().count())),
        ),
        (
            "schema version",
            Box::new(|s: &Store| Ok(s.schema_version()? as usize)),
        ),
    ]
}

#[test]
fn damaged_pages_are_errors_not_empty_answers() {
    let dir = TempDir::new("rollout-damaged");
    let path = dir.join("history.db");
    let schema_pages = big_history(&path);
    let pages: i64 = raw(&path)
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    assert!(
        pages > schema_pages + 20,
        "{pages} pages, {schema_pages} for the schema"
    );

    // Before the damage every reader finds something.
    let store = Store::open(&path).unwrap();
    let dep = store.deployments(Some("app-0"), 1).unwrap()[0].id;
    for (what, read) in readers(dep) {
        let n = read(&store).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(n > 0, "{what} found nothing before the damage");
    }
    drop(store);

    scribble(&path, schema_pages + 1, pages - 1);

    let read_only = Store::open_read_only(&path).expect("the schema pages are intact");
    let store = Store::open(&path).expect("the schema pages are intact");
    // Both the usual and the read-only open find every read failing.
    for ((what, read), store) in readers(dep)
        .into_iter()
        .map(|r| (r, &store))
        .chain(readers(dep).into_iter().map(|r| (r, &read_only)))
    {
        if what == "schema version" {
            // Page 1 is intact: the version is still known.
            assert_eq!(
                read(store).unwrap(),
                rollguard::store::SCHEMA_VERSION as usize,
                "{what}"
            );
            continue;
        }
        let e = match read(store) {
            Ok(n) => panic!("{what}: the damaged file read as {n} items instead of an error"),
            Err(e) => e,
        };
        assert!(e.is_damaged(), "{what}: {e:?}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{what}: {text}");
        assert!(text.contains("is damaged"), "{what}: {text}");
        assert!(text.contains("backup"), "{what}: {text}");
        assert!(!e.is_transient(), "{what}: {text}");
    }
    let e = store.take_commands("app-0", dep).unwrap_err();
    assert!(e.is_damaged(), "take commands: {e}");
    // Writers fail the same way rather than writing into the damage.
    let e = store.send_command(
        "app-0",
        Some(dep),
        rollguard::model::Verb::Pause,
        "bob",
        None,
    );
    assert!(e.is_err(), "send a command: {e:?}");
}

/// A history from before locks recorded their holder's start time: read
/// as it is (the lock without a start time), and upgraded by a command
/// that writes, its lock kept.
#[test]
fn a_lock_of_a_history_before_start_times_reads_and_upgrades() {
    use rollguard::store::schema::{LOCK_START_FROM, MIGRATIONS, SCHEMA_VERSION};
    let dir = TempDir::new("rollout-lock-v4");
    let path = dir.join("h.db");
    let before = LOCK_START_FROM - 1;
    {
        let c = raw(&path);
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        for m in &MIGRATIONS[..before as usize] {
            c.execute_batch(m).unwrap();
        }
        c.pragma_update(None, "user_version", before).unwrap();
        c.execute(
            "INSERT INTO locks (app, owner_user, owner_host, owner_pid, reason, acquired_ms, \
             heartbeat_ms) VALUES ('web', 'alice', 'ops-1', 4242, 'deploy 2', 1000, 2000)",
            [],
        )
        .unwrap();
    }
    let old = Store::open_read_only(&path).unwrap();
    assert_eq!(old.schema_version().unwrap(), before);
    let l = old.lock("web").unwrap().unwrap();
    assert_eq!(
        (l.owner_pid, l.owner_start, l.heartbeat_ms),
        (4242, None, 2000)
    );
    drop(old);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.lock("web").unwrap(), Some(l));
    // The lock's old holder is a pid alone: it refreshes and releases it
    // only without a start time.
    let mut holder = LockOwner {
        start: None,
        ..owner(4242)
    };
    assert!(store.heartbeat("web", &holder).unwrap());
    holder.start = Some(1);
    assert!(!store.unlock("web", &holder).unwrap());
    holder.start = None;
    assert!(store.unlock("web", &holder).unwrap());
}
