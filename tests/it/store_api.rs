//! The store's API on both backends: every test here runs on an SQLite
//! file and on a real PostgreSQL database (a private cluster the tests
//! start: `common::postgres`), through the same calls.

use crate::common;

use rollguard::config::Strategy;
use rollguard::model::event::EventKind;
use rollguard::model::evidence::Evidence;
use rollguard::model::incident::IncidentCause;
use rollguard::model::{
    DeploymentState, ErrorKind, Outcome, ProbeKey, ProbeResult, Verdict, now_ms,
};
use rollguard::store::follow::Names;
use rollguard::store::{LeaseHolder, LeaseTake, Opened};

use common::postgres::backends;

#[test]
fn a_new_history_has_the_schema_and_opening_again_changes_nothing() {
    for b in backends("schema_once") {
        let name = b.name;
        let store = b.open();
        assert_eq!(
            store.schema_version().unwrap(),
            rollguard::store::SCHEMA_VERSION,
            "{name}"
        );
        let id = store
            .create_deployment(
                "web",
                Some("v1"),
                "v2",
                Strategy::Rolling,
                "ana",
                Some("why"),
                &serde_json::json!({"kind": "deploy"}),
                &["careful".to_string()],
            )
            .unwrap();
        drop(store);
        let again = b.open();
        let d = again.deployment(id).unwrap().unwrap();
        assert_eq!(
            (d.app.as_str(), d.to_version.as_str()),
            ("web", "v2"),
            "{name}"
        );
        assert_eq!(d.state, DeploymentState::Pending, "{name}");
        again
            .finish_deployment(id, DeploymentState::Done, Outcome::Deployed)
            .unwrap();
        assert_eq!(
            again.deployment(id).unwrap().unwrap().outcome,
            Some(Outcome::Deployed)
        );
        assert_eq!(d.warnings, ["careful"], "{name}");
    }
}

fn holder(token: &str, pid: u32) -> LeaseHolder {
    LeaseHolder {
        kind: "console".into(),
        user: "ana".into(),
        host: "h1".into(),
        pid,
        token: token.into(),
        fleet: String::new(),
        acquired_ms: 0,
        heartbeat_ms: 0,
    }
}

#[test]
fn a_lease_is_taken_once_kept_by_its_holder_and_taken_over_when_gone() {
    for backend in backends("lease_take") {
        let s = backend.open();
        let (a, b) = (holder("a", 10), holder("b", 11));
        assert_eq!(
            s.take_lease("prober", &a, 1_000, |_| false).unwrap(),
            LeaseTake::Held { took_over: None }
        );
        // b asks while a lives: a holds it.
        let LeaseTake::HeldBy(h) = s.take_lease("prober", &b, 2_000, |_| false).unwrap() else {
            panic!("b took a live lease");
        };
        assert_eq!((h.token.as_str(), h.acquired_ms), ("a", 1_000));
        // a renews; its acquisition time stays.
        assert!(s.renew_lease("prober", "a", 3_000).unwrap());
        assert_eq!(
            s.take_lease("prober", &a, 3_500, |_| false).unwrap(),
            LeaseTake::Held { took_over: None }
        );
        let now = s.lease("prober").unwrap().unwrap();
        assert_eq!((now.acquired_ms, now.heartbeat_ms), (1_000, 3_500));
        // a is gone: b takes over and a's renewal says it lost the lease.
        let LeaseTake::Held {
            took_over: Some(old),
        } = s
            .take_lease("prober", &b, 4_000, |h| h.token == "a")
            .unwrap()
        else {
            panic!("b did not take over");
        };
        assert_eq!(old.token, "a");
        assert!(!s.renew_lease("prober", "a", 4_100).unwrap());
        assert!(s.renew_lease("prober", "b", 4_100).unwrap());
        // Releasing with a stale token does nothing; with the holder's frees it.
        s.release_lease("prober", "a").unwrap();
        assert!(s.lease("prober").unwrap().is_some());
        s.release_lease("prober", "b").unwrap();
        assert!(s.lease("prober").unwrap().is_none());
    }
}

fn ev(instance: &str) -> Evidence {
    Evidence {
        instance: instance.into(),
        probe: "health".into(),
        reason: Some("3 failures in a row".into()),
        ..Evidence::default()
    }
}

#[test]
fn one_open_incident_per_app_widened_then_resolved_with_its_events() {
    for backend in backends("incident_once") {
        let s = backend.open();
        let first = s
            .open_incident("web", None, IncidentCause::Probe, &[ev("web-1")], 1_000)
            .unwrap();
        let Opened::New(id) = first else {
            panic!("{first:?}")
        };
        let again = s.open_incident("web", None, IncidentCause::Probe, &[ev("web-1")], 2_000);
        assert_eq!(again.unwrap(), Opened::Known(id));
        let wider = s.open_incident("web", None, IncidentCause::Probe, &[ev("web-2")], 3_000);
        assert_eq!(wider.unwrap(), Opened::Widened(id));
        // Another app gets its own.
        let other = s.open_incident("api", None, IncidentCause::Probe, &[ev("api-1")], 3_000);
        assert!(matches!(other.unwrap(), Opened::New(o) if o != id));
        assert_eq!(s.open_incidents().unwrap().len(), 2);

        assert!(s.resolve_incident(id, 61_000, 121_000).unwrap());
        assert!(!s.resolve_incident(id, 61_000, 122_000).unwrap());
        let i = s.incident(id).unwrap().unwrap();
        assert_eq!((i.healthy_ms, i.resolved_ms), (Some(61_000), Some(121_000)));
        assert_eq!(i.evidence.instances(), ["web-1", "web-2"]);

        let kinds: Vec<EventKind> = s
            .events(Some("web"), 10)
            .unwrap()
            .iter()
            .rev()
            .map(|e| e.typed().unwrap())
            .collect();
        assert!(
            matches!(&kinds[0], EventKind::IncidentOpened { incident, evidence, .. } if *incident == id && evidence.len() == 1)
        );
        assert!(
            matches!(&kinds[1], EventKind::IncidentWidened { evidence, .. } if evidence[0].instance == "web-2")
        );
        assert!(matches!(
            &kinds[2],
            EventKind::IncidentResolved { outage_ms: 60_000, instances, .. } if instances.len() == 2
        ));
        assert_eq!(kinds.len(), 3);
        // Its events are found by the incident's number.
        assert_eq!(s.incident_events("web", id).unwrap().len(), 3);
        assert_eq!(s.incident_counts("web").unwrap(), (1, 0));
        // A new outage after resolution is a new incident.
        let next = s.open_incident("web", None, IncidentCause::Probe, &[ev("web-1")], 200_000);
        assert!(matches!(next.unwrap(), Opened::New(n) if n != id));
        assert_eq!(s.incidents(Some("web"), 10).unwrap().len(), 2);
        assert_eq!(s.incidents(None, 10).unwrap().len(), 3);
    }
}

#[test]
fn a_verdict_keeps_its_since_until_it_changes() {
    for backend in backends("verdict_since") {
        let s = backend.open();
        s.write_verdicts("web", &[("web-1", Verdict::Healthy)], 1_000)
            .unwrap();
        s.write_verdicts("web", &[("web-1", Verdict::Healthy)], 2_000)
            .unwrap();
        let v = &s.verdicts("web").unwrap()[0];
        assert_eq!(
            (v.verdict, v.since_ms, v.updated_ms),
            (Verdict::Healthy, 1_000, 2_000)
        );
        s.write_verdicts("web", &[("web-1", Verdict::Unhealthy)], 3_000)
            .unwrap();
        let v = &s.verdicts("web").unwrap()[0];
        assert_eq!((v.verdict, v.since_ms), (Verdict::Unhealthy, 3_000));
    }
}

fn result(probe: &str, at_ms: i64, kind: Option<ErrorKind>) -> ProbeResult {
    ProbeResult {
        key: ProbeKey {
            app: "web".into(),
            instance: "web-1".into(),
            probe: probe.into(),
        },
        at_ms,
        ok: kind.is_none(),
        latency_ms: 1.5,
        code: Some(200),
        error_kind: kind,
        message: String::new(),
    }
}

#[test]
fn results_are_read_on_by_id_from_the_recent_past() {
    for backend in backends("results_follow") {
        let mut s = backend.open();
        assert_eq!(s.results_start(0, 100).unwrap(), 0);
        let rows: Vec<_> = (0..10)
            .map(|i| {
                let kind = (i % 2 != 0).then_some(ErrorKind::Condition);
                result("health", i * 1000, kind)
            })
            .collect();
        s.insert_results(&rows).unwrap();
        assert_eq!(s.result_count().unwrap(), 10);
        let mut names = Names::new();
        // From 5 s on: ids 6..=10; at most 3 rows back: ids 8..=10.
        let from = s.results_start(5_000, 100).unwrap();
        let got = s.results_after(from, 100, &mut names).unwrap();
        assert_eq!(got.first().map(|(id, r)| (*id, r.at_ms)), Some((6, 5_000)));
        assert_eq!(got.len(), 5);
        assert_eq!(s.results_start(0, 3).unwrap(), 7);
        // Read on from the last id: nothing until more is written.
        let last = got.last().unwrap().0;
        assert!(s.results_after(last, 100, &mut names).unwrap().is_empty());
        s.insert_results(&[result("health", 11_000, Some(ErrorKind::Refused))])
            .unwrap();
        let more = s.results_after(last, 100, &mut names).unwrap();
        assert_eq!(more.len(), 1);
        assert!(!more[0].1.ok);
        assert_eq!(more[0].1.error_kind, Some(ErrorKind::Refused));
        // Nothing recent: start after the newest.
        assert_eq!(s.results_start(99_000, 100).unwrap(), 11);
        // Newest first, and pruned by age.
        let recent = s.recent_results(Some("web"), 0, 3).unwrap();
        assert_eq!(
            recent.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
            [11_000, 9_000, 8_000]
        );
        assert_eq!(s.prune_results(5_000).unwrap(), 5);
        assert_eq!(s.result_count().unwrap(), 6);
    }
}

#[test]
fn the_no_data_of_a_skip_probe_is_not_counted() {
    for backend in backends("uncounted") {
        let mut store = backend.open();
        let rows = [
            result("errors", 1_000, None),
            result("errors", 2_000, Some(ErrorKind::NoData)),
            result("errors", 3_000, Some(ErrorKind::NoData)),
            result("errors", 4_000, Some(ErrorKind::Condition)),
            result("health", 5_000, Some(ErrorKind::NoData)),
        ];
        store.insert_results(&rows).unwrap();
        let skip = ["errors".to_string()];
        let hours = store.hourly_results("web", 0, 3_600_000, &skip).unwrap();
        // Counted: the pass, the condition failure, and health's no_data.
        assert_eq!(hours, [(0, 1, 3)]);
        let all = store.hourly_results("web", 0, 3_600_000, &[]).unwrap();
        assert_eq!(all, [(0, 1, 5)]);
        let (tallies, _) = store.result_summary("web", 0, 10_000, &skip).unwrap();
        let counted: u64 = tallies.iter().map(|t| t.count).sum();
        assert_eq!(counted, 3);
        assert!(store.knows_app("web").unwrap());
        assert!(!store.knows_app("api").unwrap());
        assert_eq!(store.history_apps().unwrap(), ["web"]);
    }
}

#[test]
fn the_audit_log_is_read_newest_or_after_a_cursor_with_its_filters() {
    for backend in backends("events_after") {
        let store = backend.open();
        assert_eq!(store.last_event_id().unwrap(), 0);
        for (app, kind) in [("a", "one"), ("b", "two"), ("a", "three"), ("a", "four")] {
            store.record_event(app, kind, "me", None, None).unwrap();
        }
        let ids =
            |events: Vec<rollguard::store::Event>| events.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(store.last_event_id().unwrap(), 4);
        assert_eq!(ids(store.newest_events(None, None, 2).unwrap()), [3, 4]);
        assert_eq!(
            ids(store.newest_events(Some("a"), None, 10).unwrap()),
            [1, 3, 4]
        );
        assert_eq!(
            ids(store.events_after(1, Some("a"), None, 10).unwrap()),
            [3, 4]
        );
        assert_eq!(ids(store.events_after(1, None, None, 2).unwrap()), [2, 3]);
        let soon = now_ms() + 60_000;
        assert!(
            store
                .newest_events(None, Some(soon), 10)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .events_after(0, Some("a"), Some(soon), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(store.events_after(0, Some("b"), Some(0), 10).unwrap()),
            [2]
        );
    }
}

#[test]
fn the_outbox_makes_each_notification_once_and_one_sender_holds_it() {
    use rollguard::store::{NewNotification, NotificationState};
    for backend in backends("outbox") {
        let s = backend.open();
        for app in ["web", "web", "api"] {
            s.record_event(app, "rollout_failed", "me", None, None)
                .unwrap();
        }
        let plan = |_: &rollguard::store::Store, e: &rollguard::store::Event| {
            vec![NewNotification {
                receiver: "slack".into(),
                topic: "rollout".into(),
                dedup_key: format!("deployment-{}", e.app),
                payload: serde_json::json!({"text": e.kind}),
            }]
        };
        assert_eq!(s.enqueue_notifications(100, plan, 1_000).unwrap(), (3, 3));
        // The cursor moved: nothing is made twice.
        assert_eq!(s.enqueue_notifications(100, plan, 1_000).unwrap(), (0, 0));
        assert_eq!(s.unsent_notifications().unwrap(), 3);
        // One claim per row; the second web row waits behind the first.
        let a = s
            .claim_notifications("slack", "a", 2_000, 10_000, 10)
            .unwrap();
        assert_eq!(
            a.iter().map(|n| n.app.as_str()).collect::<Vec<_>>(),
            ["web", "api"]
        );
        assert_eq!(a[0].attempts, 1);
        assert_eq!(a[0].payload, serde_json::json!({"text": "rollout_failed"}));
        let b = s
            .claim_notifications("slack", "b", 2_000, 10_000, 10)
            .unwrap();
        assert!(b.is_empty(), "claimed twice: {b:?}");
        assert!(s.mark_notification_sent(a[0].id, "a", 3_000).unwrap());
        assert!(
            s.retry_notification(a[1].id, "a", 5_000, "HTTP 503")
                .unwrap()
        );
        // Another sender cannot finish what a holds.
        assert!(!s.mark_notification_sent(a[1].id, "b", 3_000).unwrap());
        let n = s.notification(a[1].id).unwrap().unwrap();
        assert_eq!(n.state, NotificationState::Pending);
        assert_eq!(n.last_error.as_deref(), Some("HTTP 503"));
        // The second web row is free now; a claim that lapses is taken over.
        let c = s
            .claim_notifications("slack", "c", 6_000, 1_000, 10)
            .unwrap();
        assert_eq!(c.len(), 2);
        let d = s
            .claim_notifications("slack", "d", 8_000, 1_000, 10)
            .unwrap();
        assert_eq!(d.len(), 2, "a lapsed claim is taken over");
        assert!(
            s.give_up_notification(d[0].id, "d", 9_000, "refused")
                .unwrap()
        );
        assert_eq!(s.notifications(Some("slack"), 10).unwrap().len(), 3);
        assert_eq!(s.latest_notifications("web").unwrap().len(), 1);
        assert_eq!(s.unsent_notifications().unwrap(), 1);
    }
}

#[test]
fn a_start_is_one_transaction_and_the_reports_count_what_happened() {
    use rollguard::model::BatchState;
    use rollguard::store::{LockOwner, NewBatch, NewDeployment};
    for backend in backends("start_and_counts") {
        let s = backend.open();
        let owner = LockOwner {
            user: "ana".into(),
            host: "bastion-a".into(),
            pid: 42,
            start: Some(7),
        };
        let new = NewDeployment {
            app: "web".into(),
            owner: owner.clone(),
            reason: "deploy v2".into(),
            break_lock: None,
            from_version: Some("v1".into()),
            to_version: "v2".into(),
            strategy: Strategy::Rolling,
            plan: serde_json::json!({"kind": "deploy"}),
            warnings: vec![],
            batches: vec![NewBatch {
                kind: "batch",
                instances: vec!["web-1".into()],
                traffic_percent: None,
            }],
            events: vec![],
        };
        let started = s.start_deployment(&new).unwrap().unwrap();
        let d = started.deployment;
        // The lock is held: a second start writes nothing.
        let other = LockOwner {
            pid: 43,
            ..owner.clone()
        };
        let refused = s
            .start_deployment(&NewDeployment {
                owner: other,
                ..new.clone()
            })
            .unwrap();
        assert_eq!(refused.unwrap_err().owner_pid, 42);
        assert_eq!(s.deployments(Some("web"), 10).unwrap().len(), 1);
        assert_eq!(s.lock("web").unwrap().unwrap().deployment_id, Some(d));
        let batch = s.batches(d).unwrap()[0].id;
        s.set_batch_state(batch, BatchState::Running).unwrap();
        s.record_change(
            d,
            Some(batch),
            "web-1",
            rollguard::model::ChangeAction::Start,
            Some("v1"),
            Some("v2"),
            rollguard::model::ChangeState::Done,
            None,
        )
        .unwrap();
        assert_eq!(s.instances_in_rollout("web", 30_000).unwrap(), ["web-1"]);
        s.record_event(
            "web",
            "rollback_started",
            "rollguard",
            None,
            Some(&serde_json::json!({"trigger": "gate_failed"})),
        )
        .unwrap();
        s.finish_deployment(d, DeploymentState::Done, Outcome::RolledBack)
            .unwrap();
        assert_eq!(s.batches(d).unwrap()[0].state, BatchState::RolledBack);
        let counts = s.deployment_counts("web", 0, i64::MAX).unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(
            (counts[0].outcome, counts[0].count),
            (Some(Outcome::RolledBack), 1)
        );
        assert_eq!(
            s.rollback_triggers("web", 0, i64::MAX).unwrap(),
            [("gate_failed".to_string(), 1)]
        );
        assert_eq!(s.deployments_between("web", 0, i64::MAX).unwrap().len(), 1);
        assert_eq!(
            s.deployment_before("web", i64::MAX).unwrap().map(|d| d.id),
            Some(d)
        );
        assert!(s.deployment_before("web", 0).unwrap().is_none());
        let mut results = backend.open();
        results
            .insert_results(&[
                result("health", 1_000, Some(ErrorKind::Refused)),
                result("health", 2_000, Some(ErrorKind::Timeout)),
                result("health", 3_000, None),
            ])
            .unwrap();
        let spans = s.failure_spans("web", 0, 10_000).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0].count, spans[0].first_ms, spans[0].last_ms),
            (2, 1_000, 2_000)
        );
        assert_eq!(spans[0].kinds, ["refused", "timeout"]);
        assert!(s.unlock("web", &owner).unwrap());
    }
}

#[test]
fn a_locks_age_is_read_by_the_stores_clock() {
    use rollguard::store::LockOwner;
    for backend in backends("lock_clock") {
        let s = backend.open();
        let owner = LockOwner {
            user: "ana".into(),
            host: "bastion-elsewhere".into(),
            pid: 7,
            start: None,
        };
        s.try_lock("web", &owner, "deploy", None).unwrap().unwrap();
        let l = s.lock("web").unwrap().unwrap();
        // Stamped and read by one clock: the store's.
        assert!(l.read_ms >= l.heartbeat_ms, "{l:?}");
        assert!(l.read_ms - l.heartbeat_ms < 5_000, "{l:?}");
        assert_eq!(rollguard::rollout::lock::breakable(&l), None);
        // Its heartbeat 31 s behind the store's clock: abandoned, whatever
        // this machine's clock says.
        backend.sql("UPDATE locks SET heartbeat_ms = heartbeat_ms - 31000");
        let l = s.lock("web").unwrap().unwrap();
        let why = rollguard::rollout::lock::breakable(&l).unwrap();
        assert!(why.starts_with("its heartbeat is 3"), "{why}");
        assert!(s.heartbeat("web", &owner).unwrap());
        let l = s.lock("web").unwrap().unwrap();
        assert_eq!(rollguard::rollout::lock::breakable(&l), None);
        let clock = s.clock_ms().unwrap();
        assert!((clock - l.read_ms).abs() < 5_000);
    }
}
