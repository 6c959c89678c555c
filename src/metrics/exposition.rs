//! What `/metrics` says, as Prometheus' text exposition format (version
//! 0.0.4): every family with `# HELP` and `# TYPE`, label values escaped
//! (backslash, double quote, newline). Pure: a [`Scrape`], copied from the
//! monitor when Prometheus asks, in; the text out. The README's table of
//! metrics is this file's families.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::probes::{BUCKETS, ProbeCounts};
use crate::config::Strategy;
use crate::model::{AppStatus, DeploymentState, ErrorKind, Verdict};

/// The `Content-Type` of the text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One probe on one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeSeries<'a> {
    /// App name.
    pub app: &'a str,
    /// Instance name.
    pub instance: &'a str,
    /// Probe name.
    pub probe: &'a str,
    /// The probe's `type`.
    pub kind: &'a str,
    /// What the hub counted.
    pub counts: ProbeCounts,
}

/// One instance's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSeries<'a> {
    /// App name.
    pub app: &'a str,
    /// Instance name.
    pub instance: &'a str,
    /// Its verdict.
    pub verdict: Verdict,
}

/// A rollout that has not ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutSeries {
    /// Deployment id.
    pub deployment: i64,
    /// How it deploys.
    pub strategy: Strategy,
    /// The deployment's state.
    pub state: DeploymentState,
    /// The release being deployed.
    pub release: String,
    /// The stage being worked on, from 1 (0 before the first).
    pub stage: usize,
    /// Stages of its plan.
    pub stages: usize,
}

/// One app's health, releases and rollout.
#[derive(Clone, Debug, PartialEq)]
pub struct AppSeries<'a> {
    /// App name.
    pub app: &'a str,
    /// Its status.
    pub status: AppStatus,
    /// Instances whose verdict is healthy.
    pub healthy: usize,
    /// Instances in the config.
    pub instances: usize,
    /// The releases its instances run, as recorded.
    pub releases: Vec<String>,
    /// Its rollout under way, if any.
    pub rollout: Option<RolloutSeries>,
}

/// One app's counts read from the history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryCounts {
    /// App name.
    pub app: String,
    /// Ended deployments (manual rollbacks included) per outcome.
    pub deployments: BTreeMap<String, u64>,
    /// Rollbacks rollguard started itself.
    pub rollbacks_automatic: u64,
    /// Rollbacks an operator asked for (an abort, a manual rollback).
    pub rollbacks_by_hand: u64,
    /// Incidents opened.
    pub incidents: u64,
    /// Incidents not resolved yet.
    pub incidents_open: u64,
}

/// Everything one scrape shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape<'a> {
    /// rollguard's version.
    pub version: &'a str,
    /// Every probe, in fleet order.
    pub probes: Vec<ProbeSeries<'a>>,
    /// Every instance, in fleet order.
    pub instances: Vec<InstanceSeries<'a>>,
    /// Every app, in fleet order.
    pub apps: Vec<AppSeries<'a>>,
    /// What the history holds; `None` until it has been read once.
    pub history: Option<&'a [HistoryCounts]>,
}

/// About how many bytes of text [`render_pieces`] hands on at a time.
pub const PIECE: usize = 64 * 1024;

/// The text being written, handed to `out` a piece at a time, so a scrape
/// of a large fleet never holds its whole text.
struct Text<'o> {
    /// The piece being written.
    buf: String,
    out: &'o mut dyn FnMut(String),
}

impl Text<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.buf, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// Hands the piece on once it holds [`PIECE`] bytes.
    fn hand_on_if_full(&mut self) {
        if self.buf.len() >= PIECE {
            let full = std::mem::replace(&mut self.buf, String::with_capacity(PIECE + 1024));
            (self.out)(full);
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: Value) {
        self.buf.push_str(name);
        if !labels.is_empty() {
            self.buf.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.buf.push(',');
                }
                self.buf.push_str(k);
                self.buf.push_str("=\"");
                escape_into(&mut self.buf, v);
                self.buf.push('"');
            }
            self.buf.push('}');
        }
        let _ = match value {
            Value::Int(n) => writeln!(self.buf, " {n}"),
            Value::Float(f) => writeln!(self.buf, " {}", float(f)),
        };
        self.hand_on_if_full();
    }
}

/// A sample's value.
#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(n as u64)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Int(u64::from(b))
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Prometheus reads it (`+Inf`, `-Inf`, `NaN`).
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

/// The whole text of `s`, at once.
pub fn render(s: &Scrape<'_>) -> String {
    let mut text = String::new();
    render_pieces(s, &mut |piece| text.push_str(&piece));
    text
}

/// The text of `s`, handed to `out` in pieces of about [`PIECE`] bytes, in
/// order; the last may be shorter. A family's samples may span pieces.
pub fn render_pieces(s: &Scrape<'_>, out: &mut dyn FnMut(String)) {
    let mut t = Text {
        buf: String::with_capacity(PIECE + 1024),
        out,
    };
    probes(&mut t, &s.probes);
    instances(&mut t, &s.instances);
    apps(&mut t, &s.apps);
    rollouts(&mut t, &s.apps);
    if let Some(h) = s.history {
        history(&mut t, h);
    }
    t.family(
        "rollguard_build_info",
        "gauge",
        "rollguard's version; always 1.",
    );
    t.sample(
        "rollguard_build_info",
        &[("version", s.version)],
        1u64.into(),
    );
    let last = std::mem::take(&mut t.buf);
    if !last.is_empty() {
        (t.out)(last);
    }
}

fn probes(t: &mut Text, probes: &[ProbeSeries<'_>]) {
    t.family(
        "rollguard_probe_success",
        "gauge",
        "Whether the probe's last result passed (1) or failed (0).",
    );
    for p in probes {
        if let Some(ok) = p.counts.last_ok {
            let labels = [
                ("app", p.app),
                ("instance", p.instance),
                ("probe", p.probe),
                ("type", p.kind),
            ];
            t.sample("rollguard_probe_success", &labels, ok.into());
        }
    }
    t.family(
        "rollguard_probe_duration_seconds",
        "histogram",
        "How long the probe took, since this process began probing.",
    );
    let bounds: Vec<String> = BUCKETS.iter().map(|b| float(*b)).collect();
    for p in probes {
        let c = &p.counts;
        for (le, n) in bounds.iter().zip(c.buckets) {
            let labels = [
                ("app", p.app),
                ("instance", p.instance),
                ("probe", p.probe),
                ("le", le.as_str()),
            ];
            t.sample("rollguard_probe_duration_seconds_bucket", &labels, n.into());
        }
        let labels = [("app", p.app), ("instance", p.instance), ("probe", p.probe)];
        let inf = [labels[0], labels[1], labels[2], ("le", "+Inf")];
        t.sample(
            "rollguard_probe_duration_seconds_bucket",
            &inf,
            c.count.into(),
        );
        t.sample(
            "rollguard_probe_duration_seconds_sum",
            &labels,
            Value::Float(c.sum_seconds),
        );
        t.sample(
            "rollguard_probe_duration_seconds_count",
            &labels,
            c.count.into(),
        );
    }
    t.family(
        "rollguard_probe_failures_total",
        "counter",
        "Failed results of the probe by error kind, since this process began probing (kinds never seen are left out).",
    );
    for p in probes {
        for (kind, n) in ErrorKind::ALL.iter().zip(p.counts.failures) {
            if n > 0 {
                let labels = [
                    ("app", p.app),
                    ("instance", p.instance),
                    ("probe", p.probe),
                    ("kind", kind.as_str()),
                ];
                t.sample("rollguard_probe_failures_total", &labels, n.into());
            }
        }
    }
}

const VERDICTS: [Verdict; 3] = [Verdict::Healthy, Verdict::Unhealthy, Verdict::Unknown];
const STATUSES: [AppStatus; 4] = [
    AppStatus::Healthy,
    AppStatus::Degraded,
    AppStatus::Down,
    AppStatus::Unknown,
];

fn instances(t: &mut Text, instances: &[InstanceSeries<'_>]) {
    t.family(
        "rollguard_instance_healthy",
        "gauge",
        "Whether the instance's verdict is healthy (1) or not (0: unhealthy or unknown).",
    );
    for i in instances {
        let labels = [("app", i.app), ("instance", i.instance)];
        let healthy = i.verdict == Verdict::Healthy;
        t.sample("rollguard_instance_healthy", &labels, healthy.into());
    }
    t.family(
        "rollguard_instance_state",
        "gauge",
        "The instance's verdict: 1 for the state it is in, 0 for the others.",
    );
    for i in instances {
        for v in VERDICTS {
            let labels = [
                ("app", i.app),
                ("instance", i.instance),
                ("state", v.as_str()),
            ];
            t.sample("rollguard_instance_state", &labels, (i.verdict == v).into());
        }
    }
}

fn apps(t: &mut Text, apps: &[AppSeries<'_>]) {
    t.family(
        "rollguard_app_status",
        "gauge",
        "The app's status: 1 for the status it has, 0 for the others.",
    );
    for a in apps {
        for s in STATUSES {
            let labels = [("app", a.app), ("status", s.as_str())];
            t.sample("rollguard_app_status", &labels, (a.status == s).into());
        }
    }
    t.family(
        "rollguard_app_healthy_instances",
        "gauge",
        "The app's instances whose verdict is healthy.",
    );
    for a in apps {
        let labels = [("app", a.app)];
        t.sample("rollguard_app_healthy_instances", &labels, a.healthy.into());
    }
    t.family(
        "rollguard_app_instances",
        "gauge",
        "The app's instances in the config.",
    );
    for a in apps {
        t.sample(
            "rollguard_app_instances",
            &[("app", a.app)],
            a.instances.into(),
        );
    }
    t.family(
        "rollguard_app_release_info",
        "gauge",
        "A release the app's instances run, as rollguard recorded it; always 1.",
    );
    for a in apps {
        for r in &a.releases {
            let labels = [("app", a.app), ("release", r.as_str())];
            t.sample("rollguard_app_release_info", &labels, 1u64.into());
        }
    }
}

fn rollouts(t: &mut Text, apps: &[AppSeries<'_>]) {
    t.family(
        "rollguard_rollout_active",
        "gauge",
        "Whether a rollout of the app is under way (1) or not (0).",
    );
    for a in apps {
        let active = a.rollout.is_some();
        t.sample("rollguard_rollout_active", &[("app", a.app)], active.into());
    }
    t.family(
        "rollguard_rollout_info",
        "gauge",
        "The rollout under way: its deployment, strategy, state and the release it deploys; always 1.",
    );
    for a in apps {
        if let Some(r) = &a.rollout {
            let id = r.deployment.to_string();
            let labels = [
                ("app", a.app),
                ("deployment", id.as_str()),
                ("strategy", r.strategy.as_str()),
                ("state", r.state.as_str()),
                ("release", r.release.as_str()),
            ];
            t.sample("rollguard_rollout_info", &labels, 1u64.into());
        }
    }
    t.family(
        "rollguard_rollout_stage",
        "gauge",
        "The stage the rollout under way works on, from 1 (0 before the first).",
    );
    for a in apps {
        if let Some(r) = &a.rollout {
            t.sample("rollguard_rollout_stage", &[("app", a.app)], r.stage.into());
        }
    }
    t.family(
        "rollguard_rollout_stages",
        "gauge",
        "The stages of the rollout under way.",
    );
    for a in apps {
        if let Some(r) = &a.rollout {
            t.sample(
                "rollguard_rollout_stages",
                &[("app", a.app)],
                r.stages.into(),
            );
        }
    }
}

fn history(t: &mut Text, counts: &[HistoryCounts]) {
    t.family(
        "rollguard_deployments_total",
        "counter",
        "Ended deployments of the app in the history (manual rollbacks included), by outcome.",
    );
    for c in counts {
        for (outcome, n) in &c.deployments {
            let labels = [("app", c.app.as_str()), ("outcome", outcome.as_str())];
            t.sample("rollguard_deployments_total", &labels, (*n).into());
        }
    }
    t.family(
        "rollguard_rollbacks_total",
        "counter",
        "Rollbacks of the app in the history: started by rollguard (automatic) or asked for by an operator (by_hand).",
    );
    for c in counts {
        for (kind, n) in [
            ("automatic", c.rollbacks_automatic),
            ("by_hand", c.rollbacks_by_hand),
        ] {
            let labels = [("app", c.app.as_str()), ("kind", kind)];
            t.sample("rollguard_rollbacks_total", &labels, n.into());
        }
    }
    t.family(
        "rollguard_incidents_total",
        "counter",
        "Incidents of the app in the history.",
    );
    for c in counts {
        let labels = [("app", c.app.as_str())];
        t.sample("rollguard_incidents_total", &labels, c.incidents.into());
    }
    t.family(
        "rollguard_incidents_open",
        "gauge",
        "The app's incidents not resolved yet.",
    );
    for c in counts {
        let labels = [("app", c.app.as_str())];
        t.sample("rollguard_incidents_open", &labels, c.incidents_open.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(last_ok: Option<bool>) -> ProbeCounts {
        let mut c = ProbeCounts {
            last_ok,
            buckets: [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2],
            count: 3,
            sum_seconds: 10.0125,
            ..ProbeCounts::default()
        };
        c.failures[0] = 2; // timeout
        c
    }

    fn scrape<'a>(history: Option<&'a [HistoryCounts]>) -> Scrape<'a> {
        Scrape {
            version: "0.1.0",
            probes: vec![ProbeSeries {
                app: "web",
                instance: "web-1",
                probe: "health",
                kind: "http",
                counts: counts(Some(true)),
            }],
            instances: vec![InstanceSeries {
                app: "web",
                instance: "web-1",
                verdict: Verdict::Unhealthy,
            }],
            apps: vec![AppSeries {
                app: "web",
                status: AppStatus::Down,
                healthy: 0,
                instances: 1,
                releases: vec!["v2".into()],
                rollout: Some(RolloutSeries {
                    deployment: 7,
                    strategy: Strategy::Canary,
                    state: DeploymentState::Running,
                    release: "v3".into(),
                    stage: 1,
                    stages: 3,
                }),
            }],
            history,
        }
    }

    #[test]
    fn a_large_scrape_is_handed_on_in_pieces_that_make_the_whole_text() {
        let mut s = scrape(None);
        let names: Vec<String> = (0..2_000).map(|i| format!("web-{i}")).collect();
        let one = s.probes[0].clone();
        s.probes = names
            .iter()
            .map(|n| ProbeSeries {
                instance: n,
                ..one.clone()
            })
            .collect();
        let mut pieces: Vec<String> = Vec::new();
        render_pieces(&s, &mut |p| pieces.push(p));
        assert!(pieces.len() > 10, "{} pieces", pieces.len());
        let (last, full) = pieces.split_last().unwrap();
        assert!(!last.is_empty());
        for p in full {
            assert!(p.len() >= PIECE && p.len() < PIECE + 1024, "{}", p.len());
            assert!(p.ends_with('\n'), "a piece ends with a whole line");
        }
        assert_eq!(pieces.concat(), render(&s));
    }

    #[test]
    fn the_text_has_every_family_with_help_and_type() {
        let history = [HistoryCounts {
            app: "web".into(),
            deployments: BTreeMap::from([("deployed".into(), 2), ("rolled_back".into(), 1)]),
            rollbacks_automatic: 1,
            rollbacks_by_hand: 0,
            incidents: 4,
            incidents_open: 1,
        }];
        let want = r#"# HELP rollguard_probe_success Whether the probe's last result passed (1) or failed (0).
# TYPE rollguard_probe_success gauge
rollguard_probe_success{app="web",instance="web-1",probe="health",type="http"} 1
# HELP rollguard_probe_duration_seconds How long the probe took, since this process began probing.
# TYPE rollguard_probe_duration_seconds histogram
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.005"} 0
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.01"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.025"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.05"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.1"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.25"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="0.5"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="1"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="2.5"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="5"} 1
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="10"} 2
rollguard_probe_duration_seconds_bucket{app="web",instance="web-1",probe="health",le="+Inf"} 3
rollguard_probe_duration_seconds_sum{app="web",instance="web-1",probe="health"} 10.0125
rollguard_probe_duration_seconds_count{app="web",instance="web-1",probe="health"} 3
# HELP rollguard_probe_failures_total Failed results of the probe by error kind, since this process began probing (kinds never seen are left out).
# TYPE rollguard_probe_failures_total counter
rollguard_probe_failures_total{app="web",instance="web-1",probe="health",kind="timeout"} 2
# HELP rollguard_instance_healthy Whether the instance's verdict is healthy (1) or not (0: unhealthy or unknown).
# TYPE rollguard_instance_healthy gauge
rollguard_instance_healthy{app="web",instance="web-1"} 0
# HELP rollguard_instance_state The instance's verdict: 1 for the state it is in, 0 for the others.
# TYPE rollguard_instance_state gauge
rollguard_instance_state{app="web",instance="web-1",state="healthy"} 0
rollguard_instance_state{app="web",instance="web-1",state="unhealthy"} 1
rollguard_instance_state{app="web",instance="web-1",state="unknown"} 0
# HELP rollguard_app_status The app's status: 1 for the status it has, 0 for the others.
# TYPE rollguard_app_status gauge
rollguard_app_status{app="web",status="healthy"} 0
rollguard_app_status{app="web",status="degraded"} 0
rollguard_app_status{app="web",status="down"} 1
rollguard_app_status{app="web",status="unknown"} 0
# HELP rollguard_app_healthy_instances The app's instances whose verdict is healthy.
# TYPE rollguard_app_healthy_instances gauge
rollguard_app_healthy_instances{app="web"} 0
# HELP rollguard_app_instances The app's instances in the config.
# TYPE rollguard_app_instances gauge
rollguard_app_instances{app="web"} 1
# HELP rollguard_app_release_info A release the app's instances run, as rollguard recorded it; always 1.
# TYPE rollguard_app_release_info gauge
rollguard_app_release_info{app="web",release="v2"} 1
# HELP rollguard_rollout_active Whether a rollout of the app is under way (1) or not (0).
# TYPE rollguard_rollout_active gauge
rollguard_rollout_active{app="web"} 1
# HELP rollguard_rollout_info The rollout under way: its deployment, strategy, state and the release it deploys; always 1.
# TYPE rollguard_rollout_info gauge
rollguard_rollout_info{app="web",deployment="7",strategy="canary",state="running",release="v3"} 1
# HELP rollguard_rollout_stage The stage the rollout under way works on, from 1 (0 before the first).
# TYPE rollguard_rollout_stage gauge
rollguard_rollout_stage{app="web"} 1
# HELP rollguard_rollout_stages The stages of the rollout under way.
# TYPE rollguard_rollout_stages gauge
rollguard_rollout_stages{app="web"} 3
# HELP rollguard_deployments_total Ended deployments of the app in the history (manual rollbacks included), by outcome.
# TYPE rollguard_deployments_total counter
rollguard_deployments_total{app="web",outcome="deployed"} 2
rollguard_deployments_total{app="web",outcome="rolled_back"} 1
# HELP rollguard_rollbacks_total Rollbacks of the app in the history: started by rollguard (automatic) or asked for by an operator (by_hand).
# TYPE rollguard_rollbacks_total counter
rollguard_rollbacks_total{app="web",kind="automatic"} 1
rollguard_rollbacks_total{app="web",kind="by_hand"} 0
# HELP rollguard_incidents_total Incidents of the app in the history.
# TYPE rollguard_incidents_total counter
rollguard_incidents_total{app="web"} 4
# HELP rollguard_incidents_open The app's incidents not resolved yet.
# TYPE rollguard_incidents_open gauge
rollguard_incidents_open{app="web"} 1
# HELP rollguard_build_info rollguard's version; always 1.
# TYPE rollguard_build_info gauge
rollguard_build_info{version="0.1.0"} 1
"#;
        let got = render(&scrape(Some(&history)));
        if got != want {
            for (g, w) in got.lines().zip(want.lines()) {
                assert_eq!(g, w);
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn before_the_history_is_read_and_before_a_result_their_series_are_left_out() {
        let mut s = scrape(None);
        s.probes[0].counts = ProbeCounts::default();
        s.apps[0].rollout = None;
        let got = render(&s);
        assert!(!got.contains("rollguard_deployments_total"));
        assert!(!got.contains("\nrollguard_probe_success{"));
        assert!(!got.contains("rollguard_probe_failures_total{"));
        assert!(got.contains("rollguard_rollout_active{app=\"web\"} 0\n"));
        assert!(!got.contains("rollguard_rollout_stage{"));
        assert!(got.contains("# TYPE rollguard_probe_success gauge\n"));
        assert!(
            got.contains(
                "rollguard_probe_duration_seconds_count{app=\"web\",instance=\"web-1\",probe=\"health\"} 0\n"
            )
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = scrape(None);
        s.apps[0].releases = vec!["v1 \"quoted\" C:\\dir\nnext".into()];
        let got = render(&s);
        assert!(got.contains(
            "rollguard_app_release_info{app=\"web\",release=\"v1 \\\"quoted\\\" C:\\\\dir\\nnext\"} 1\n"
        ));
    }

    #[test]
    fn floats_are_written_as_prometheus_reads_them() {
        assert_eq!(float(0.25), "0.25");
        assert_eq!(float(3.0), "3");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
    }
}
