//! Preflight: everything a deploy checks before anything moves. What runs
//! now on every instance, the plan, the target's artifact on every host,
//! and the way back: the artifact of what runs now must be present too, so
//! a deploy never starts without a rollback target (an install, where
//! nothing runs yet, needs none).

use crate::config::{App, Fleet, Strategy};
use crate::driver::{Driver, DriverError, Side, Slot};
use crate::error::{Code, UserError};
use crate::exec::{ExecError, Executor, Executors};
use crate::model::Version;
use crate::store::Store;

use super::plan::{self, InstanceNow, Plan, PlanError};

/// A release checked on one instance's host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Artifact {
    /// The instance.
    pub instance: String,
    /// The release.
    pub version: Version,
    /// Whether its artifact (image, release folder) is there.
    pub present: bool,
}

/// What preflight found, before anything moves: what runs where, the
/// target's artifacts, the way back, and the plan with its warnings.
#[derive(Clone, Debug)]
pub struct Preflight {
    /// Index of the app in the fleet.
    pub app: usize,
    /// Each instance's live side.
    pub live: Vec<Side>,
    /// What runs now, per instance.
    pub now: Vec<InstanceNow>,
    /// The target's artifact on every instance's host.
    pub artifacts: Vec<Artifact>,
    /// The way back: the artifact of what runs now on every instance
    /// (empty for an install, or a forced manual rollback).
    pub way_back: Vec<Artifact>,
    /// The plan (its warnings are the report's warnings).
    pub plan: Plan,
}

impl Preflight {
    /// The report in lines, as the CLI prints it and the console's
    /// question shows it: the plan's summary, its stages, its warnings,
    /// then what runs on each instance and whether it is kept for a
    /// rollback. Text from hosts and the config is not yet made
    /// printable: the caller does that for its terminal.
    pub fn lines(&self, fleet: &Fleet) -> Vec<String> {
        let app = &fleet.apps[self.app];
        let plan = &self.plan;
        let from = plan.from.as_ref().map_or_else(
            || {
                if plan.install {
                    "nothing (install)".to_string()
                } else {
                    "mixed versions".to_string()
                }
            },
            Version::to_string,
        );
        let mut out = vec![format!(
            "Deploy {} {} → {} ({}, {} instances)",
            plan.app,
            from,
            plan.to,
            plan.strategy.as_str(),
            app.instances.len()
        )];
        for (i, s) in plan.stages.iter().enumerate() {
            out.push(format!("  {:>2}. {}", i + 1, s.describe(app)));
        }
        for w in &plan.warnings {
            out.push(format!("  warning: {w}"));
        }
        for (i, now) in self.now.iter().enumerate() {
            let back = self
                .way_back
                .iter()
                .find(|a| a.instance == app.instances[i].name)
                .map(|a| {
                    if a.present {
                        ", kept for a rollback"
                    } else {
                        ", MISSING for a rollback"
                    }
                })
                .unwrap_or("");
            out.push(format!(
                "     {:<20} runs {} on {}{back}",
                app.instances[i].name,
                now.version
                    .as_ref()
                    .map_or("nothing".to_string(), Version::to_string),
                now.live
            ));
        }
        out
    }
}

/// The releases whose artifact the driver finds on the host of `app`'s
/// first instance, for completion; empty when it cannot list them. A
/// release offered here is still checked on every host by [`check`].
pub async fn available(fleet: &Fleet, execs: &Executors, app: usize) -> Vec<Version> {
    let Some(a) = fleet.apps.get(app) else {
        return Vec::new();
    };
    let (Ok(driver), Some(inst)) = (Driver::for_app(a), a.instances.first()) else {
        return Vec::new();
    };
    let (Some(exec), Some(host)) = (execs.get(&inst.host), fleet.host(&inst.host)) else {
        return Vec::new();
    };
    let slot = Slot {
        app: a,
        instance: inst,
        host,
        side: Side::Main,
    };
    match driver.available(exec, slot).await {
        Ok(found) => found.unwrap_or_default(),
        Err(e) => {
            tracing::debug!("cannot list the releases of {}: {e}", a.name);
            Vec::new()
        }
    }
}

/// How many releases [`present_words`] names before it counts the rest.
const RELEASES_NAMED: usize = 5;

/// The releases found on `host`, in words: newest first (by their
/// numbers: `v10` after `v9`), at most `RELEASES_NAMED` and how many
/// more: `present on box-1: v3, v2, v1`, or `nothing present on box-1`.
pub fn present_words(host: &str, mut found: Vec<Version>) -> String {
    if found.is_empty() {
        return format!("nothing present on {host}");
    }
    found.sort_by(|a, b| natural_order(b.as_str(), a.as_str()));
    let named: Vec<&str> = found
        .iter()
        .take(RELEASES_NAMED)
        .map(Version::as_str)
        .collect();
    let more = found.len().saturating_sub(RELEASES_NAMED);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("present on {host}: {}{more}", named.join(", "))
}

/// Orders release names as people count: runs of digits by their value,
/// the rest as text (`v2` < `v10`, `1.9` < `1.10`).
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    /// The next run of digits or of other characters, and the rest.
    fn run(s: &str) -> (&str, &str) {
        let digit = s.starts_with(|c: char| c.is_ascii_digit());
        let end = s
            .find(|c: char| c.is_ascii_digit() != digit)
            .unwrap_or(s.len());
        s.split_at(end)
    }
    let (mut a, mut b) = (a, b);
    while !a.is_empty() && !b.is_empty() {
        let ((ra, rest_a), (rb, rest_b)) = (run(a), run(b));
        let numbers = ra.starts_with(|c: char| c.is_ascii_digit())
            && rb.starts_with(|c: char| c.is_ascii_digit());
        let order = if numbers {
            let (ta, tb) = (ra.trim_start_matches('0'), rb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            ra.cmp(rb)
        };
        if order.is_ne() {
            return order;
        }
        (a, b) = (rest_a, rest_b);
    }
    a.len().cmp(&b.len())
}

/// Maps a driver error met during preflight to a user error.
pub fn driver_error(e: DriverError) -> UserError {
    match e {
        DriverError::Config(m) => UserError::new(Code::Config, m),
        DriverError::Exec {
            source: ExecError::HostKey { ref refusal, .. },
            ..
        } => {
            let steps = refusal.steps().join("\n        ");
            UserError::new(Code::HostKey, e.to_string()).hint(steps)
        }
        DriverError::Exec {
            source: ExecError::Connect { .. },
            ..
        } => UserError::new(Code::Ssh, e.to_string())
            .hint("check that the host is up and reachable over ssh"),
        other => UserError::new(Code::Preflight, other.to_string()),
    }
}

/// The live side of each instance of `app` as last recorded (default
/// main). A store that cannot be read is an error, never "all main".
pub fn live_sides(fleet: &Fleet, app: usize, store: &Store) -> Result<Vec<Side>, UserError> {
    let a = &fleet.apps[app];
    let states = store.instance_states(&a.name).map_err(UserError::from)?;
    Ok(a.instances
        .iter()
        .map(|inst| {
            states
                .iter()
                .find(|s| s.instance == inst.name)
                .and_then(|s| s.live_side.as_deref())
                .map_or(
                    Side::Main,
                    |s| if s == "alt" { Side::Alt } else { Side::Main },
                )
        })
        .collect())
}

/// The version last recorded on each instance of `app`, in config order
/// (`None` where none is, or it is not a valid version).
pub fn recorded_versions(
    fleet: &Fleet,
    app: usize,
    store: &Store,
) -> Result<Vec<Option<Version>>, UserError> {
    let states = store
        .instance_states(&fleet.apps[app].name)
        .map_err(UserError::from)?;
    Ok(fleet.apps[app]
        .instances
        .iter()
        .map(|inst| {
            states
                .iter()
                .find(|s| s.instance == inst.name)
                .and_then(|s| s.version.as_deref())
                .and_then(|v| Version::parse(v).ok())
        })
        .collect())
}

/// Runs every check for deploying `version` of `app_name`. `way_back`
/// checks that what runs now could be restored (skipped only by a forced
/// manual rollback).
pub async fn check(
    fleet: &Fleet,
    store: &Store,
    execs: &Executors,
    app_name: &str,
    version: &Version,
    strategy: Option<Strategy>,
    way_back: bool,
) -> Result<Preflight, UserError> {
    let app_idx = fleet.app_index(app_name)?;
    let app = &fleet.apps[app_idx];
    let reach = Reach {
        fleet,
        app,
        execs,
        driver: Driver::for_app(app).map_err(driver_error)?,
        live: live_sides(fleet, app_idx, store)?,
    };
    // Without a way to ask (a command driver with no `current`), what runs
    // is what rollguard last recorded there.
    let recorded = if reach.driver.tells_current() {
        Vec::new()
    } else {
        recorded_versions(fleet, app_idx, store)?
    };
    let now = reach.running(&recorded).await?;
    let plan =
        plan::plan(app, strategy.unwrap_or(app.strategy), &now, version).map_err(plan_error)?;
    if let Some(e) = sides_not_told_apart(fleet, app, &plan) {
        return Err(e);
    }
    // The target must be there, everywhere it will run.
    let artifacts = reach.target_present(version).await?;
    // And the way back.
    let back = if way_back && !plan.install {
        reach.way_back(&now).await?
    } else {
        Vec::new()
    };
    Ok(Preflight {
        app: app_idx,
        live: reach.live,
        now,
        artifacts,
        way_back: back,
        plan,
    })
}

/// Why no plan could be made, as the user's error.
fn plan_error(e: PlanError) -> UserError {
    match e {
        PlanError::MinHealthy { .. } => UserError::new(Code::MinHealthy, e.to_string()),
        PlanError::NothingToDo { .. } => UserError::new(Code::NothingToDo, e.to_string()),
        PlanError::NoAltPort(_) => UserError::new(Code::Config, e.to_string()).hint(
            "blue-green and canary start the new version beside the old: give instances an alt_port",
        ),
        PlanError::NoInstances(_) => UserError::new(Code::Config, e.to_string()),
    }
}

/// An app's instances as preflight reaches them: each one's live side,
/// its host's executor and the app's driver.
struct Reach<'a> {
    fleet: &'a Fleet,
    app: &'a App,
    execs: &'a Executors,
    driver: Driver,
    live: Vec<Side>,
}

impl Reach<'_> {
    /// Instance `i`'s `side`.
    fn slot(&self, i: usize, side: Side) -> Slot<'_> {
        let instance = &self.app.instances[i];
        Slot {
            app: self.app,
            instance,
            host: self.fleet.host_of(instance),
            side,
        }
    }

    /// The executor of instance `i`'s host.
    fn exec(&self, i: usize) -> Result<&Executor, UserError> {
        let host = &self.app.instances[i].host;
        self.execs
            .get(host)
            .ok_or_else(|| UserError::new(Code::Preflight, format!("no executor for host {host}")))
    }

    /// What runs on each instance's live side now, as its driver tells it
    /// (or, where it cannot, as `recorded`).
    async fn running(&self, recorded: &[Option<Version>]) -> Result<Vec<InstanceNow>, UserError> {
        let mut now = Vec::new();
        for (i, &side) in self.live.iter().enumerate() {
            let mut version = (self.driver)
                .current(self.exec(i)?, self.slot(i, side))
                .await
                .map_err(driver_error)?;
            if version.is_none() {
                version = recorded.get(i).cloned().flatten();
            }
            now.push(InstanceNow {
                version,
                live: side,
            });
        }
        Ok(now)
    }

    /// Whether `version` is present for every instance; `E_ARTIFACT_MISSING`
    /// naming what is there instead when it is not.
    async fn target_present(&self, version: &Version) -> Result<Vec<Artifact>, UserError> {
        let mut artifacts = Vec::new();
        for (i, &side) in self.live.iter().enumerate() {
            let present = (self.driver)
                .present(self.exec(i)?, self.slot(i, side), version)
                .await
                .map_err(driver_error)?;
            artifacts.push(Artifact {
                instance: self.app.instances[i].name.clone(),
                version: version.clone(),
                present,
            });
        }
        let missing: Vec<usize> = (0..artifacts.len())
            .filter(|&i| !artifacts[i].present)
            .collect();
        if missing.is_empty() {
            return Ok(artifacts);
        }
        Err(self.missing(version, &missing).await?)
    }

    /// `E_ARTIFACT_MISSING` for the instances `missing`, with what is
    /// there instead on each host that lacks `version`.
    async fn missing(&self, version: &Version, missing: &[usize]) -> Result<UserError, UserError> {
        let mut there = Vec::new();
        let mut hosts: Vec<&str> = Vec::new();
        for &i in missing {
            let host = self.app.instances[i].host.as_str();
            if hosts.contains(&host) {
                continue;
            }
            hosts.push(host);
            let slot = self.slot(i, self.live[i]);
            match self.driver.available(self.exec(i)?, slot).await {
                Ok(Some(found)) => there.push(present_words(host, found)),
                // The driver cannot list them (a command driver).
                Ok(None) => {}
                Err(e) => tracing::debug!("cannot list the releases on {host}: {e}"),
            }
        }
        let names: Vec<&str> = missing
            .iter()
            .map(|&i| self.app.instances[i].name.as_str())
            .collect();
        let mut message = format!("{version} is not present for {}", names.join(", "));
        for words in &there {
            message.push_str("; ");
            message.push_str(words);
        }
        let hint = if there.is_empty() {
            format!("build or copy {version} (the release or image) to those hosts first")
        } else {
            format!(
                "deploy one of the releases present, or build or copy {version} (the release or image) to those hosts first"
            )
        };
        Ok(UserError::new(Code::ArtifactMissing, message).hint(hint))
    }

    /// Whether the release running now on each instance is still present
    /// there, so a rollback could restore it; `E_ROLLBACK_TARGET_MISSING`
    /// when one is not.
    async fn way_back(&self, now: &[InstanceNow]) -> Result<Vec<Artifact>, UserError> {
        let mut back = Vec::new();
        let mut gone = Vec::new();
        for (i, n) in now.iter().enumerate() {
            let Some(current) = &n.version else { continue };
            let present = (self.driver)
                .present(self.exec(i)?, self.slot(i, self.live[i]), current)
                .await
                .map_err(driver_error)?;
            if !present {
                gone.push(format!("{} ({current})", self.app.instances[i].name));
            }
            back.push(Artifact {
                instance: self.app.instances[i].name.clone(),
                version: current.clone(),
                present,
            });
        }
        if !gone.is_empty() {
            return Err(UserError::new(
                Code::RollbackTargetMissing,
                format!(
                    "the release running now is missing on its host, so a rollback could not restore it: {}",
                    gone.join(", ")
                ),
            )
            .hint("put the running release back on those hosts before deploying"));
        }
        Ok(back)
    }
}

/// A comparison probe whose query comes out the same on both sides of an
/// instance that `plan` starts beside the old (a canary, a blue-green
/// idle side, a surge batch): it would compare a series with itself. A
/// canary shares its instance's name and host, so only `{port}` tells the
/// sides apart. `None` when every such query differs.
fn sides_not_told_apart(fleet: &Fleet, app: &crate::config::App, plan: &Plan) -> Option<UserError> {
    let beside: Vec<usize> = plan
        .stages
        .iter()
        .filter_map(|s| match s {
            plan::Stage::StartIdle { instances } => Some(instances.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    for probe in app.probes.iter().filter(|p| p.compares()) {
        let crate::config::ProbeKind::Prometheus(p) = &probe.kind else {
            continue;
        };
        for &i in &beside {
            let inst = app.instances.get(i)?;
            let (Some(host), Some(alt)) = (fleet.host(&inst.host), inst.alt_port) else {
                continue;
            };
            let query = |port: u16| {
                let target = crate::probe::Target {
                    app,
                    instance: inst,
                    host,
                    port,
                };
                target.query(&p.query).ok()
            };
            if let Some(q) = query(inst.port)
                && query(alt) == Some(q.clone())
            {
                return Some(
                    UserError::new(
                        Code::Config,
                        format!(
                            "prometheus probe \"{}\" asks the same of both sides of {} ({q}): it would compare a series with itself",
                            probe.name, inst.name
                        ),
                    )
                    .hint("a canary shares its instance's name and host: select each side's series by {port}"),
                );
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(names: &[&str]) -> Vec<Version> {
        names.iter().map(|n| Version::parse(n).unwrap()).collect()
    }

    #[test]
    fn the_releases_present_are_named_newest_first_and_capped() {
        assert_eq!(
            present_words("box-1", versions(&["v1", "v10", "v2", "v9"])),
            "present on box-1: v10, v9, v2, v1"
        );
        assert_eq!(
            present_words(
                "box-1",
                versions(&["1.9.0", "1.10.0", "1.2.3", "2.0", "0.1", "1.10.1"])
            ),
            "present on box-1: 2.0, 1.10.1, 1.10.0, 1.9.0, 1.2.3 and 1 more"
        );
        assert_eq!(
            present_words("box-2", Vec::new()),
            "nothing present on box-2"
        );
    }

    #[test]
    fn release_names_are_counted_as_people_count() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_order("v2", "v10"), Less);
        assert_eq!(natural_order("v010", "v10"), Equal);
        assert_eq!(natural_order("v1", "v1.1"), Less);
        assert_eq!(natural_order("a", "b"), Less);
        assert_eq!(natural_order("2024-01-02", "2024-01-10"), Less);
    }
}
