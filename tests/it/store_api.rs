//! The store's API on both backends: every test here runs on an SQLite
//! file and on a real PostgreSQL database (a private cluster the tests
//! start: `common::postgres`), through the same calls.

use crate::common;

use rollguard::config::Strategy;
use rollguard::model::{DeploymentState, Outcome};

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
