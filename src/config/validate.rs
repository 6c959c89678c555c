//! Turning the raw file into a [`Fleet`]: `${NAME}` interpolation, defaults,
//! and every semantic check (unknown hosts, duplicates, ranges, probe keys,
//! conditions, templates). Errors are collected, not returned at the first.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod email;
mod metrics;
mod notify;
mod prometheus;
mod secret;

use super::raw::{
    RawApp, RawCommand, RawDocker, RawHealth, RawHost, RawInstance, RawKeys, RawMetrics, RawNotify,
    RawProbe, RawProcess, RawRollout, RawSsh, RawTraffic, S,
};
use super::{ConfigError, Receiver, Secrets, format_duration, literal, parse_duration, types::*};
use crate::condition::Condition;
use crate::keys::{RemapPlace, remapped};

/// Placeholders a probe's command, container or URL template may use.
pub const PROBE_PLACEHOLDERS: &[&str] = &["app", "instance", "host", "port"];

struct Ctx<'a> {
    file: PathBuf,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
    /// Every `${NAME}` expanded so far, with its value.
    interpolated: Vec<(String, String)>,
}

/// A string after `${NAME}` expansion.
#[derive(Default)]
struct Expanded {
    text: String,
    /// For each character of `text`, the index of the character of the
    /// value as written that it comes from (for an expansion: its `$`).
    origin: Vec<usize>,
}

impl Expanded {
    /// Appends `s`, whose first character is character `at` as written.
    fn push_str(&mut self, s: &str, at: usize) {
        self.text.push_str(s);
        self.origin.extend(at..at + s.chars().count());
    }
}

impl Ctx<'_> {
    fn pos(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (line, col) = self.pos(span.start);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }

    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.error(span, message, None);
    }

    /// The string with `${NAME}` replaced; `$${` is a literal `${`.
    fn string(&mut self, s: &S<String>) -> String {
        self.expand(s).text
    }

    /// [`Ctx::string`], with where each character of the result came from.
    fn expand(&mut self, s: &S<String>) -> Expanded {
        let raw = s.get_ref();
        let mut out = Expanded::default();
        let mut rest = raw.as_str();
        // Character index in `raw` of the start of `rest`.
        let mut at = 0;
        while let Some(i) = rest.find("${") {
            let before = &rest[..i];
            if before.ends_with('$') {
                out.push_str(&before[..i - 1], at);
                // The first `$` of `$${` is the escape.
                let dollar = at + before.chars().count() - 1;
                out.push_str("${", dollar + 1);
                rest = &rest[i + 2..];
                at = dollar + 3;
                continue;
            }
            out.push_str(before, at);
            at += before.chars().count();
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                self.error(
                    s.span(),
                    "`${` without a closing `}`",
                    Some("write ${NAME}, or $${ for a literal ${".into()),
                );
                let mut whole = Expanded::default();
                whole.push_str(raw, 0);
                return whole;
            };
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.err(s.span(), format!("`${{{name}}}` is not a variable name"));
            } else {
                match (self.env)(name) {
                    Some(v) => {
                        // Every character of the value points at its `${`.
                        out.text.push_str(&v);
                        out.origin
                            .extend(std::iter::repeat_n(at, v.chars().count()));
                        self.interpolated.push((name.to_string(), v));
                    }
                    None => self.error(
                        s.span(),
                        format!("environment variable `{name}` is not set"),
                        Some(format!("export {name}=... before starting rollguard")),
                    ),
                }
            }
            at += name.chars().count() + 3;
            rest = &after[end + 1..];
        }
        out.push_str(rest, at);
        out
    }

    /// Reports an error at character `index` of `value`, which
    /// [`Ctx::expand`] made from `s`: at the place in the file it came from.
    fn error_in(
        &mut self,
        s: &S<String>,
        value: &Expanded,
        index: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let span = s.span();
        let written = self.text.get(span.clone()).unwrap_or("");
        // The character of the raw value, then where it is in the file.
        let raw_index = value
            .origin
            .get(index)
            .copied()
            .unwrap_or_else(|| s.get_ref().chars().count());
        let offset = literal::char_offsets(written, s.get_ref())
            .and_then(|offsets| offsets.get(raw_index).copied())
            .unwrap_or(0);
        let start = span.start + offset;
        self.error(start..start, message, hint);
    }

    /// Reports the first control character of `value` (made from `s`),
    /// which `what` cannot hold on the wire; a tab is fine where `tab`.
    fn control_chars(&mut self, s: &S<String>, value: &Expanded, what: &str, tab: bool) {
        let found = value
            .text
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && !(tab && *c == '\t'));
        if let Some((at, c)) = found {
            let hint = if tab {
                "keep it on one line of printable text (a tab is allowed)"
            } else {
                "keep it on one line; percent-encode what it needs (e.g. %0A)"
            };
            self.error_in(
                s,
                value,
                at,
                format!("{what} holds a control character (U+{:04X})", u32::from(c)),
                Some(hint.into()),
            );
        }
    }

    fn opt_string(&mut self, s: &Option<S<String>>) -> Option<String> {
        s.as_ref().map(|s| self.string(s))
    }

    /// A duration key: its value within `bounds`, else an error at it
    /// saying what is allowed (and `default`).
    fn duration(
        &mut self,
        s: &Option<S<String>>,
        key: &str,
        default: Duration,
        bounds: Bounds,
    ) -> Duration {
        let Some(s) = s else { return default };
        let text = self.string(s);
        let (min, max) = (format_duration(bounds.min), format_duration(bounds.max));
        let allowed = Some(format!(
            "{key} takes {min} to {max}, e.g. \"{}\"",
            format_duration(default.clamp(bounds.min, bounds.max))
        ));
        match parse_duration(&text) {
            Ok(d) if d < bounds.min => {
                self.error(
                    s.span(),
                    format!("{key} must be at least {min}, not {}", text.trim()),
                    allowed,
                );
                default
            }
            Ok(d) if d > bounds.max => {
                self.error(
                    s.span(),
                    format!("{key} must be at most {max}, not {}", text.trim()),
                    allowed,
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.error(s.span(), e, allowed);
                default
            }
        }
    }

    fn port(&mut self, p: &S<i64>, what: &str) -> u16 {
        match u16::try_from(*p.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                self.error(
                    p.span(),
                    format!("{what} {} is out of range", p.get_ref()),
                    Some("a port is between 1 and 65535".into()),
                );
                1
            }
        }
    }

    fn threshold(&mut self, t: &Option<S<i64>>, name: &str, default: u32) -> u32 {
        let Some(t) = t else { return default };
        match u32::try_from(*t.get_ref()) {
            Ok(v) if v > 0 => v,
            _ => {
                self.error(
                    t.span(),
                    format!("{name} must be at least 1, not {}", t.get_ref()),
                    Some(format!("{name} = 1 acts on the first result")),
                );
                default
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        s: &Option<S<String>>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(s) = s else { return default };
        let v = self.string(s);
        match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<_> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.error(
                    s.span(),
                    format!("unknown {key} \"{v}\""),
                    Some(format!("{key} is one of {}", names.join(", "))),
                );
                default
            }
        }
    }

    /// Checks a template's placeholders: only `allowed` names, and for a
    /// shell template (`shell`), none where quoting could not protect it.
    fn template(&mut self, s: &S<String>, value: &str, allowed: &[&str], shell: bool) {
        use crate::shell as sh;
        let checked = if shell {
            sh::validate(value, allowed)
        } else {
            let vars: Vec<(&str, &str)> = allowed.iter().map(|k| (*k, "x")).collect();
            sh::render_plain(value, &vars).map(|_| ())
        };
        if let Err(e) = checked {
            self.err(s.span(), e.to_string());
        }
    }

    fn unique<'n>(
        &mut self,
        seen: &mut HashSet<String>,
        name: &'n S<String>,
        what: &str,
    ) -> &'n str {
        if !seen.insert(name.get_ref().clone()) {
            self.error(
                name.span(),
                format!("duplicate {what} name \"{}\"", name.get_ref()),
                Some(format!("every {what} needs its own name")),
            );
        }
        if !valid_name(name.get_ref()) {
            self.error(
                name.span(),
                format!("{what} name \"{}\" is not allowed", name.get_ref()),
                Some("use letters, digits, `.`, `_` and `-`, starting with a letter or digit (at most 63)".into()),
            );
        }
        name.get_ref()
    }
}

/// The durations a key accepts, both ends included.
#[derive(Clone, Copy)]
struct Bounds {
    min: Duration,
    max: Duration,
}

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// `[console] refresh`: a summary recomputed at least hourly.
const REFRESH: Bounds = Bounds {
    min: Duration::from_millis(100),
    max: HOUR,
};
/// `[console] retention`: up to ten years of probe history.
const RETENTION: Bounds = Bounds {
    min: MINUTE,
    max: Duration::from_secs(3650 * 86_400),
};
/// `ssh.connect_timeout`.
const CONNECT_TIMEOUT: Bounds = Bounds {
    min: SECOND,
    max: Duration::from_secs(600),
};
/// `[app.health] interval`: a probe runs at least daily.
const INTERVAL: Bounds = Bounds {
    min: Duration::from_millis(100),
    max: DAY,
};
/// `[app.health] initial_delay`.
const INITIAL_DELAY: Bounds = Bounds {
    min: Duration::ZERO,
    max: DAY,
};
/// `[app.health] deadline`: a new instance gets at least a second.
const DEADLINE: Bounds = Bounds {
    min: SECOND,
    max: Duration::from_secs(7 * 86_400),
};
/// Waits within a rollout: `monitor`, `pause`, `step_pause`, `confirm_window`.
const ROLLOUT_WAIT: Bounds = Bounds {
    min: Duration::ZERO,
    max: Duration::from_secs(7 * 86_400),
};
/// `[[app.probe]] timeout`.
const PROBE_TIMEOUT: Bounds = Bounds {
    min: MS,
    max: Duration::from_secs(600),
};
/// `[app.process] grace` and `[app.docker] stop_timeout`.
const STOP_WAIT: Bounds = Bounds {
    min: Duration::ZERO,
    max: HOUR,
};
/// `[app.traffic] drain_timeout`.
const DRAIN_TIMEOUT: Bounds = Bounds {
    min: Duration::ZERO,
    max: DAY,
};

/// Names of hosts, apps, instances and probes: they appear in container
/// names, file names and shell commands, so they are kept plain.
pub fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(super) fn validate(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Fleet, Vec<ConfigError>> {
    let mut cx = Ctx {
        file: path.to_path_buf(),
        text,
        env,
        errors: Vec::new(),
        interpolated: Vec::new(),
    };
    // Every problem of the file's shape, then (when it could be read whole
    // once they were taken out) every problem of its values.
    let (raw, problems) = super::raw::read(text);
    for p in problems {
        cx.error(p.span, p.message, p.hint);
    }
    let Some(raw) = raw else {
        return Err(cx.errors);
    };

    let console = match &raw.console {
        None => Console::default(),
        Some(c) => {
            let d = Console::default();
            let refresh = cx.duration(&c.refresh, "refresh", d.refresh, REFRESH);
            let theme = cx.opt_string(&c.theme).unwrap_or(d.theme);
            let retention = cx.duration(&c.retention, "retention", d.retention, RETENTION);
            let keys = c
                .keys
                .as_ref()
                .map_or(d.keys, |table| console_keys(&mut cx, table));
            Console {
                refresh,
                theme,
                retention,
                read_only: c.read_only.unwrap_or(d.read_only),
                keys,
                mouse: c.mouse.unwrap_or(d.mouse),
            }
        }
    };

    let mut host_names = HashSet::new();
    let mut hosts: Vec<Host> = raw
        .host
        .iter()
        .map(|h| host(&mut cx, &mut host_names, h))
        .collect();

    let mut app_names = HashSet::new();
    let mut needs_local = false;
    let mut apps: Vec<App> = raw
        .app
        .iter()
        .map(|a| app(&mut cx, &mut app_names, &host_names, &mut needs_local, a))
        .collect();
    let receivers = notify::receivers(&mut cx, &raw.notify, &app_names);
    // Any value from the environment may reach an app's commands (a host's
    // address is `{host}`), so every app knows all of them.
    let secrets = Secrets::new(std::mem::take(&mut cx.interpolated));
    let receivers: Vec<std::sync::Arc<Receiver>> = receivers
        .into_iter()
        .map(|mut r| {
            r.secrets = secrets.union(&r.secrets);
            std::sync::Arc::new(r)
        })
        .collect();
    for a in &mut apps {
        a.secrets = secrets.clone();
        a.notify = receivers
            .iter()
            .filter(|r| r.apps.as_ref().is_none_or(|names| names.contains(&a.name)))
            .cloned()
            .collect();
    }
    if needs_local {
        hosts.push(Host {
            name: LOCAL_HOST.into(),
            address: "127.0.0.1".into(),
            ssh: None,
        });
    }

    let metrics = raw
        .metrics
        .as_ref()
        .and_then(|m| metrics::metrics(&mut cx, m));

    if cx.errors.is_empty() {
        Ok(Fleet {
            source: path.to_path_buf(),
            console,
            hosts,
            apps,
            metrics,
        })
    } else {
        // An error quotes what it read, and what it read may hold a value
        // from the environment: those are masked.
        let mut hide = secrets.union(&Secrets::new(std::mem::take(&mut cx.interpolated)));
        for r in &receivers {
            hide = hide.union(&r.secrets);
        }
        for e in &mut cx.errors {
            e.message = hide.mask(&e.message);
            e.hint = e.hint.as_deref().map(|h| hide.mask(h));
        }
        Err(cx.errors)
    }
}

/// The host an instance runs on when it names none: this machine.
pub const LOCAL_HOST: &str = "local";

/// `[console.keys]`, in file order. What the keymap refuses (an unknown
/// action, a key it cannot read, a key that would mean two things) is an
/// error at the action's name or at the key.
fn console_keys(cx: &mut Ctx<'_>, table: &BTreeMap<S<String>, S<RawKeys>>) -> Vec<KeyRemap> {
    let mut lines: Vec<(&S<String>, Vec<S<String>>)> = table
        .iter()
        .map(|(action, keys)| {
            let keys = match keys.get_ref() {
                RawKeys::One(key) => vec![S::new(keys.span(), key.clone())],
                RawKeys::List(list) => list.clone(),
            };
            (action, keys)
        })
        .collect();
    lines.sort_by_key(|(action, _)| action.span().start);
    let remaps: Vec<KeyRemap> = lines
        .iter()
        .map(|(action, keys)| KeyRemap {
            action: action.get_ref().clone(),
            keys: keys.iter().map(|k| k.get_ref().clone()).collect(),
        })
        .collect();
    if let Err(errors) = remapped(&remaps) {
        for e in errors {
            let span = match e.place {
                RemapPlace::Action(n) => lines.get(n).map(|(action, _)| action.span()),
                RemapPlace::Key(n, k) => {
                    lines.get(n).and_then(|(_, keys)| keys.get(k)).map(S::span)
                }
            };
            let span = span.unwrap_or_default();
            cx.error(span, e.message, Some(e.hint));
        }
    }
    remaps
}

fn host(cx: &mut Ctx<'_>, seen: &mut HashSet<String>, h: &S<RawHost>) -> Host {
    let h = h.get_ref();
    let name = cx.unique(seen, &h.name, "host").to_string();
    let address = cx.opt_string(&h.address).unwrap_or_else(|| name.clone());
    if address.trim().is_empty()
        && let Some(a) = &h.address
    {
        cx.err(a.span(), "address is empty");
    }
    let ssh = h.ssh.as_ref().map(|s| ssh(cx, s.get_ref()));
    Host { name, address, ssh }
}

fn ssh(cx: &mut Ctx<'_>, s: &RawSsh) -> Ssh {
    let port = s.port.as_ref().map_or(22, |p| cx.port(p, "ssh port"));
    let expand = |p: String| -> PathBuf {
        match p.strip_prefix("~/") {
            Some(rest) => super::home_dir().join(rest),
            None => PathBuf::from(p),
        }
    };
    let identity = cx.opt_string(&s.identity).map(expand);
    let known_hosts = cx.opt_string(&s.known_hosts).map(expand);
    let host_key_check = cx.choice(
        &s.host_key_check,
        "host_key_check",
        &[
            ("strict", HostKeyCheck::Strict),
            ("accept-new", HostKeyCheck::AcceptNew),
            ("off", HostKeyCheck::Off),
        ],
        HostKeyCheck::Strict,
    );
    Ssh {
        user: cx.opt_string(&s.user),
        port,
        identity,
        known_hosts,
        host_key_check,
        connect_timeout: cx.duration(
            &s.connect_timeout,
            "connect_timeout",
            Duration::from_secs(10),
            CONNECT_TIMEOUT,
        ),
    }
}

fn app(
    cx: &mut Ctx<'_>,
    seen: &mut HashSet<String>,
    hosts: &HashSet<String>,
    needs_local: &mut bool,
    a: &S<RawApp>,
) -> App {
    let span = a.span();
    let a = a.get_ref();
    let name = cx.unique(seen, &a.name, "app").to_string();
    let driver = cx.choice(
        &a.driver,
        "driver",
        &[
            ("docker", DriverKind::Docker),
            ("process", DriverKind::Process),
            ("command", DriverKind::Command),
        ],
        DriverKind::Process,
    );
    let strategy = cx.choice(
        &a.strategy,
        "strategy",
        &[
            ("rolling", Strategy::Rolling),
            ("blue-green", Strategy::BlueGreen),
            ("canary", Strategy::Canary),
        ],
        Strategy::Rolling,
    );
    if a.instance.is_empty() {
        cx.error(
            span.clone(),
            format!("app \"{name}\" has no instances"),
            Some("add at least one [[app.instance]] with a name, host and port".into()),
        );
    }
    if a.probe.is_empty() {
        cx.error(
            span,
            format!("app \"{name}\" has no probes"),
            Some("add at least one [[app.probe]]; without one its health is never known".into()),
        );
    }
    let mut inst_names = HashSet::new();
    let instances = a
        .instance
        .iter()
        .map(|i| instance(cx, &mut inst_names, hosts, needs_local, i.get_ref()))
        .collect();
    let mut probe_names = HashSet::new();
    let probes = a
        .probe
        .iter()
        .map(|p| probe(cx, &mut probe_names, p.get_ref()))
        .collect();
    let health = a
        .health
        .as_ref()
        .map_or_else(Health::default, |h| health(cx, h));
    let docker = a.docker.as_ref().map(|d| docker(cx, d.get_ref()));
    let process = a.process.as_ref().map(|p| process(cx, p.get_ref()));
    let command = a.command.as_ref().map(|c| command_driver(cx, c.get_ref()));
    // A section for another driver is a mistake worth pointing at.
    let sections = [
        ("docker", DriverKind::Docker, a.docker.as_ref().map(S::span)),
        (
            "process",
            DriverKind::Process,
            a.process.as_ref().map(S::span),
        ),
        (
            "command",
            DriverKind::Command,
            a.command.as_ref().map(S::span),
        ),
    ];
    for (section, kind, span) in sections {
        if let Some(span) = span.filter(|_| kind != driver) {
            cx.error(
                span,
                format!("[app.{section}] does not apply: app \"{name}\" uses another driver"),
                Some(format!("set driver = \"{section}\", or remove the section")),
            );
        }
    }
    let traffic = a
        .traffic
        .as_ref()
        .map_or(Traffic::None, |t| traffic(cx, hosts, needs_local, t));
    let rollout = a
        .rollout
        .as_ref()
        .map_or_else(Rollout::default, |r| rollout(cx, r, a.instance.len()));
    let app = App {
        name,
        driver,
        strategy,
        protected: a.protected.unwrap_or(false),
        instances,
        probes,
        health,
        docker,
        process,
        command,
        traffic,
        rollout,
        // Filled in once the whole file is read.
        secrets: Secrets::default(),
        notify: Vec::new(),
    };
    if app.strategy != Strategy::Rolling {
        // Blue-green runs every instance beside itself; a canary its first ones.
        let (needed, what) = match app.strategy {
            Strategy::Canary => (app.rollout.canary as usize, "canary"),
            _ => (app.instances.len(), "blue-green"),
        };
        for (raw, inst) in a.instance.iter().zip(&app.instances).take(needed) {
            if inst.alt_port.is_none() {
                cx.error(
                    raw.get_ref().name.span(),
                    format!(
                        "instance \"{}\" needs alt_port: the {what} strategy starts the new version beside the old",
                        inst.name
                    ),
                    Some("add alt_port = <a free port> to the instance".into()),
                );
            }
        }
    }
    app
}

fn driver_template(cx: &mut Ctx<'_>, s: &S<String>) -> String {
    let v = cx.string(s);
    if v.trim().is_empty() {
        cx.err(s.span(), "this command is empty");
    }
    cx.template(s, &v, DRIVER_PLACEHOLDERS, true);
    v
}

fn opt_driver_template(cx: &mut Ctx<'_>, s: &Option<S<String>>) -> Option<String> {
    s.as_ref().map(|s| driver_template(cx, s))
}

fn docker(cx: &mut Ctx<'_>, d: &RawDocker) -> DockerSpec {
    let image = cx.string(&d.image);
    let bad_image = image.is_empty()
        || image.contains(char::is_whitespace)
        || image.starts_with('-')
        || image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
    if bad_image {
        cx.error(
            d.image.span(),
            format!("\"{image}\" is not an image repository"),
            Some("write the repository without a tag, e.g. \"registry.local/checkout\": the version is the tag".into()),
        );
    }
    let container = match &d.container {
        Some(c) => {
            let v = cx.string(c);
            cx.template(c, &v, PROBE_PLACEHOLDERS, false);
            v
        }
        None => "{app}-{instance}".into(),
    };
    let args = d
        .args
        .iter()
        .map(|a| {
            let v = cx.string(a);
            cx.template(a, &v, DRIVER_PLACEHOLDERS, false);
            v
        })
        .collect();
    let keep = match &d.keep {
        None => 3,
        Some(k) => u32::try_from(*k.get_ref()).unwrap_or_else(|_| {
            cx.err(k.span(), "keep must be 0 or more");
            3
        }),
    };
    DockerSpec {
        image,
        container,
        port: d.port.as_ref().map(|p| cx.port(p, "port")),
        args,
        keep,
        stop_timeout: cx.duration(
            &d.stop_timeout,
            "stop_timeout",
            Duration::from_secs(10),
            STOP_WAIT,
        ),
    }
}

fn process(cx: &mut Ctx<'_>, p: &RawProcess) -> ProcessSpec {
    ProcessSpec {
        run: driver_template(cx, &p.run),
        present: opt_driver_template(cx, &p.present),
        grace: cx.duration(&p.grace, "grace", Duration::from_secs(10), STOP_WAIT),
        run_dir: cx
            .opt_string(&p.run_dir)
            .unwrap_or_else(|| "/tmp/rollguard-run".into()),
    }
}

fn command_driver(cx: &mut Ctx<'_>, c: &RawCommand) -> CommandSpec {
    CommandSpec {
        start: driver_template(cx, &c.start),
        stop: driver_template(cx, &c.stop),
        current: opt_driver_template(cx, &c.current),
        present: opt_driver_template(cx, &c.present),
    }
}

fn traffic(
    cx: &mut Ctx<'_>,
    hosts: &HashSet<String>,
    needs_local: &mut bool,
    t: &S<RawTraffic>,
) -> Traffic {
    let span = t.span();
    let t = t.get_ref();
    let kind = cx.string(&t.kind);
    let host = match &t.host {
        None => {
            *needs_local = true;
            LOCAL_HOST.to_string()
        }
        Some(h) => {
            let v = cx.string(h);
            if !hosts.contains(&v) {
                cx.err(h.span(), format!("unknown host \"{v}\""));
            }
            v
        }
    };
    let keys: [(&str, &str, Option<Range<usize>>); 9] = [
        (
            "upstream_file",
            "nginx",
            t.upstream_file.as_ref().map(S::span),
        ),
        ("validate", "nginx", t.validate.as_ref().map(S::span)),
        ("reload", "nginx", t.reload.as_ref().map(S::span)),
        ("socket", "haproxy", t.socket.as_ref().map(S::span)),
        ("backend", "haproxy", t.backend.as_ref().map(S::span)),
        (
            "drain_timeout",
            "haproxy",
            t.drain_timeout.as_ref().map(S::span),
        ),
        ("drain", "command", t.drain.as_ref().map(S::span)),
        ("undrain", "command", t.undrain.as_ref().map(S::span)),
        ("weight", "command", t.weight.as_ref().map(S::span)),
    ];
    for (key, owner, key_span) in keys {
        if let Some(key_span) = key_span.filter(|_| owner != kind) {
            cx.error(
                key_span,
                format!("`{key}` does not apply to traffic type \"{kind}\""),
                Some(format!("`{key}` belongs to type \"{owner}\"")),
            );
        }
    }
    let required = |cx: &mut Ctx<'_>, v: &Option<S<String>>, key: &str| -> String {
        match v {
            Some(s) => cx.string(s),
            None => {
                cx.error(
                    span.clone(),
                    format!("traffic type \"{kind}\" needs `{key}`"),
                    Some("see config.example.toml".into()),
                );
                String::new()
            }
        }
    };
    match kind.as_str() {
        "none" => Traffic::None,
        "nginx" => Traffic::Nginx(NginxTraffic {
            upstream_file: required(cx, &t.upstream_file, "upstream_file"),
            validate: opt_driver_template(cx, &t.validate).unwrap_or_else(|| "nginx -t".into()),
            reload: opt_driver_template(cx, &t.reload).unwrap_or_else(|| "nginx -s reload".into()),
            host,
        }),
        "haproxy" => Traffic::Haproxy(HaproxyTraffic {
            socket: required(cx, &t.socket, "socket"),
            backend: required(cx, &t.backend, "backend"),
            drain_timeout: cx.duration(
                &t.drain_timeout,
                "drain_timeout",
                Duration::from_secs(30),
                DRAIN_TIMEOUT,
            ),
            host,
        }),
        "command" => {
            let drain = match &t.drain {
                Some(d) => driver_template(cx, d),
                None => required(cx, &None, "drain"),
            };
            let undrain = match &t.undrain {
                Some(d) => driver_template(cx, d),
                None => required(cx, &None, "undrain"),
            };
            let weight = t.weight.as_ref().map(|w| {
                let v = cx.string(w);
                let mut allowed = DRIVER_PLACEHOLDERS.to_vec();
                allowed.push("weight");
                cx.template(w, &v, &allowed, true);
                v
            });
            Traffic::Command(CommandTraffic {
                host,
                drain,
                undrain,
                weight,
            })
        }
        other => {
            cx.error(
                t.kind.span(),
                format!("unknown traffic type \"{other}\""),
                Some("type is one of \"nginx\", \"haproxy\", \"command\", \"none\"".into()),
            );
            Traffic::None
        }
    }
}

fn rollout(cx: &mut Ctx<'_>, r: &RawRollout, instances: usize) -> Rollout {
    let d = Rollout::default();
    let batch_hint = "write a count like 1 or a share like \"25%\" (1% to 100%)";
    let batch = match &r.batch {
        None => d.batch,
        Some(b) => match b.get_ref() {
            toml::Value::Integer(n) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                BatchSize::Count(*n as u32)
            }
            toml::Value::String(s) => match s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<u32>().ok())
            {
                Some(p) if (1..=100).contains(&p) => BatchSize::Percent(p),
                _ => {
                    cx.error(
                        b.span(),
                        format!("\"{s}\" is not a batch size"),
                        Some(batch_hint.into()),
                    );
                    d.batch
                }
            },
            other => {
                cx.error(
                    b.span(),
                    format!("{other} is not a batch size"),
                    Some(batch_hint.into()),
                );
                d.batch
            }
        },
    };
    let count = |cx: &mut Ctx<'_>, v: &Option<S<i64>>, key: &str, min: u32, default: u32| {
        let Some(v) = v else { return default };
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= min => n,
            _ => {
                cx.err(v.span(), format!("{key} must be at least {min}"));
                default
            }
        }
    };
    let min_healthy = count(cx, &r.min_healthy, "min_healthy", 0, d.min_healthy);
    if let Some(m) = &r.min_healthy
        && instances > 0
        && min_healthy as usize >= instances
    {
        cx.error(
            m.span(),
            format!(
                "min_healthy = {min_healthy} leaves no instance free to replace (the app has {instances})"
            ),
            Some(format!(
                "set min_healthy to at most {}",
                instances.saturating_sub(1)
            )),
        );
    }
    let canary = count(cx, &r.canary, "canary", 1, d.canary);
    if let Some(c) = &r.canary
        && canary as usize > instances
    {
        cx.err(
            c.span(),
            format!("canary = {canary} but the app has {instances} instances"),
        );
    }
    let steps = match &r.steps {
        None => d.steps,
        Some(list) => {
            let mut out: Vec<u32> = Vec::new();
            for s in list.get_ref() {
                let v = *s.get_ref();
                if !(1..=100).contains(&v) {
                    cx.err(
                        s.span(),
                        format!("step {v} is not a percentage from 1 to 100"),
                    );
                } else if out.last().is_some_and(|l| i64::from(*l) >= v) {
                    cx.err(s.span(), "steps must go up, e.g. [10, 25, 50, 100]");
                } else {
                    out.push(v as u32);
                }
            }
            if list.get_ref().is_empty() {
                cx.err(list.span(), "steps is empty; list at least one percentage");
            }
            out
        }
    };
    let step_pause = match &r.step_pause {
        Some(s) if s.get_ref() == "manual" => StepPause::Manual,
        Some(_) => StepPause::After(cx.duration(
            &r.step_pause,
            "step_pause",
            Duration::from_secs(300),
            ROLLOUT_WAIT,
        )),
        None => d.step_pause,
    };
    Rollout {
        batch,
        pause: cx.duration(&r.pause, "pause", d.pause, ROLLOUT_WAIT),
        min_healthy,
        max_failed_batches: count(cx, &r.max_failed_batches, "max_failed_batches", 1, 1),
        canary,
        steps,
        step_pause,
        auto_rollback: cx.choice(
            &r.auto_rollback,
            "auto_rollback",
            &[
                ("auto", AutoRollback::Auto),
                ("confirm", AutoRollback::Confirm),
                ("off", AutoRollback::Off),
            ],
            AutoRollback::Auto,
        ),
        confirm_window: cx.duration(
            &r.confirm_window,
            "confirm_window",
            d.confirm_window,
            ROLLOUT_WAIT,
        ),
        rollback_batch: r
            .rollback_batch
            .as_ref()
            .map(|_| count(cx, &r.rollback_batch, "rollback_batch", 1, 1)),
        surge: r.surge.as_ref().is_some_and(|s| *s.get_ref()),
    }
}

fn instance(
    cx: &mut Ctx<'_>,
    seen: &mut HashSet<String>,
    hosts: &HashSet<String>,
    needs_local: &mut bool,
    i: &RawInstance,
) -> Instance {
    let name = cx.unique(seen, &i.name, "instance").to_string();
    let host = match &i.host {
        None => {
            *needs_local = true;
            LOCAL_HOST.to_string()
        }
        Some(h) => {
            let v = cx.string(h);
            if !hosts.contains(&v) {
                let mut known: Vec<_> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
                known.sort();
                let hint = if known.is_empty() {
                    "no [[host]] is defined; add one, or omit host to run on this machine"
                        .to_string()
                } else {
                    format!("known hosts: {}", known.join(", "))
                };
                cx.error(h.span(), format!("unknown host \"{v}\""), Some(hint));
            }
            v
        }
    };
    let port = cx.port(&i.port, "port");
    let alt_port = i.alt_port.as_ref().map(|p| cx.port(p, "alt_port"));
    if alt_port == Some(port)
        && let Some(p) = &i.alt_port
    {
        cx.err(p.span(), "alt_port must differ from port");
    }
    Instance {
        name,
        host,
        port,
        alt_port,
    }
}

fn health(cx: &mut Ctx<'_>, h: &RawHealth) -> Health {
    let d = Health::default();
    Health {
        interval: cx.duration(&h.interval, "interval", d.interval, INTERVAL),
        initial_delay: cx.duration(
            &h.initial_delay,
            "initial_delay",
            d.initial_delay,
            INITIAL_DELAY,
        ),
        success_threshold: cx.threshold(&h.success_threshold, "success_threshold", 1),
        failure_threshold: cx.threshold(&h.failure_threshold, "failure_threshold", 3),
        max_failures: (h.max_failures.is_some())
            .then(|| cx.threshold(&h.max_failures, "max_failures", 1)),
        require: cx.choice(
            &h.require,
            "require",
            &[("all", Require::All), ("any", Require::Any)],
            Require::All,
        ),
        deadline: cx.duration(&h.deadline, "deadline", d.deadline, DEADLINE),
        monitor: cx.duration(&h.monitor, "monitor", d.monitor, ROLLOUT_WAIT),
        resolve_after: cx.duration(
            &h.resolve_after,
            "resolve_after",
            d.resolve_after,
            ROLLOUT_WAIT,
        ),
    }
}

/// Keys that only one probe type takes, to report a key on the wrong type.
fn foreign_keys(p: &RawProbe, kind: &str) -> Vec<(&'static str, Range<usize>)> {
    let mut keys: Vec<(&'static str, &'static str, Option<Range<usize>>)> = vec![
        ("method", "http", p.method.as_ref().map(S::span)),
        ("path", "http", p.path.as_ref().map(S::span)),
        ("url", "http", p.url.as_ref().map(S::span)),
        ("scheme", "http", p.scheme.as_ref().map(S::span)),
        ("headers", "http", p.headers.as_ref().map(S::span)),
        (
            "expect_status",
            "http",
            p.expect_status.as_ref().map(S::span),
        ),
        (
            "body_contains",
            "http",
            p.body_contains.as_ref().map(S::span),
        ),
        ("query", "prometheus", p.query.as_ref().map(S::span)),
        (
            "on_no_data",
            "prometheus",
            p.on_no_data.as_ref().map(S::span),
        ),
        (
            "bearer_token",
            "prometheus",
            p.bearer_token.as_ref().map(S::span),
        ),
        ("username", "prometheus", p.username.as_ref().map(S::span)),
        ("password", "prometheus", p.password.as_ref().map(S::span)),
        ("send", "tcp", p.send.as_ref().map(S::span)),
        ("expect", "tcp", p.expect.as_ref().map(S::span)),
        ("command", "command", p.command.as_ref().map(S::span)),
        (
            "expect_exit",
            "command",
            p.expect_exit.as_ref().map(S::span),
        ),
        (
            "output_contains",
            "command",
            p.output_contains.as_ref().map(S::span),
        ),
        ("container", "docker", p.container.as_ref().map(S::span)),
    ];
    if kind != "tcp" {
        keys.push(("port", "tcp", p.port.as_ref().map(S::span)));
    }
    // Keys an http and a prometheus probe both take.
    if kind != "http" && kind != "prometheus" {
        keys.push(("conditions", "http", p.conditions.as_ref().map(S::span)));
        keys.push(("insecure_tls", "http", p.insecure_tls.as_ref().map(S::span)));
    }
    if kind == "prometheus" {
        keys.retain(|(k, _, _)| *k != "url");
    }
    keys.into_iter()
        .filter(|(_, owner, span)| *owner != kind && span.is_some())
        .map(|(k, _, span)| (k, span.unwrap_or(0..0)))
        .collect()
}

fn probe(cx: &mut Ctx<'_>, seen: &mut HashSet<String>, p: &RawProbe) -> Probe {
    let name = cx.unique(seen, &p.name, "probe").to_string();
    let type_name = cx.string(&p.kind);
    let timeout = cx.duration(&p.timeout, "timeout", Duration::from_secs(2), PROBE_TIMEOUT);
    if ["http", "tcp", "command", "docker", "prometheus"].contains(&type_name.as_str()) {
        for (key, span) in foreign_keys(p, &type_name) {
            cx.error(
                span,
                format!("`{key}` does not apply to a {type_name} probe"),
                Some("remove it, or change the probe's type".into()),
            );
        }
    }
    let kind = match type_name.as_str() {
        "http" => ProbeKind::Http(http(cx, &name, p)),
        "tcp" => ProbeKind::Tcp(TcpProbe {
            port: p.port.as_ref().map(|x| cx.port(x, "port")),
            send: cx.opt_string(&p.send),
            expect: cx.opt_string(&p.expect),
        }),
        "command" => {
            let command = match &p.command {
                Some(c) => {
                    let v = cx.string(c);
                    if v.trim().is_empty() {
                        cx.err(c.span(), "command is empty");
                    }
                    cx.template(c, &v, PROBE_PLACEHOLDERS, true);
                    v
                }
                None => {
                    cx.error(
                        p.name.span(),
                        format!("command probe \"{name}\" has no `command`"),
                        Some(
                            "add command = \"...\"; {app} {instance} {host} {port} are filled in"
                                .into(),
                        ),
                    );
                    String::new()
                }
            };
            let expect_exit = match &p.expect_exit {
                None => 0,
                Some(e) => i32::try_from(*e.get_ref())
                    .ok()
                    .filter(|c| (0..=255).contains(c))
                    .unwrap_or_else(|| {
                        cx.err(e.span(), "expect_exit must be between 0 and 255");
                        0
                    }),
            };
            ProbeKind::Command(CommandProbe {
                command,
                expect_exit,
                output_contains: cx.opt_string(&p.output_contains),
            })
        }
        "docker" => {
            let container = match &p.container {
                Some(c) => {
                    let v = cx.string(c);
                    cx.template(c, &v, PROBE_PLACEHOLDERS, false);
                    v
                }
                None => "{app}-{instance}".to_string(),
            };
            ProbeKind::Docker(DockerProbe { container })
        }
        "prometheus" => ProbeKind::Prometheus(prometheus::probe(cx, &name, p)),
        other => {
            cx.error(
                p.kind.span(),
                format!("unknown probe type \"{other}\""),
                Some(
                    "type is one of \"http\", \"tcp\", \"command\", \"docker\", \"prometheus\""
                        .into(),
                ),
            );
            ProbeKind::Tcp(TcpProbe {
                port: None,
                send: None,
                expect: None,
            })
        }
    };
    Probe {
        name,
        timeout,
        kind,
    }
}

fn http(cx: &mut Ctx<'_>, name: &str, p: &RawProbe) -> HttpProbe {
    let method = cx
        .opt_string(&p.method)
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| "GET".into());
    if (!method.chars().all(|c| c.is_ascii_uppercase()) || method.is_empty())
        && let Some(m) = &p.method
    {
        cx.err(m.span(), format!("\"{method}\" is not an HTTP method"));
    }
    let scheme = cx.opt_string(&p.scheme).unwrap_or_else(|| "http".into());
    if scheme != "http"
        && scheme != "https"
        && let Some(s) = &p.scheme
    {
        cx.err(s.span(), "scheme is \"http\" or \"https\"");
    }
    let target = match (&p.path, &p.url) {
        (Some(path), None) => {
            let expanded = cx.expand(path);
            cx.control_chars(path, &expanded, "path", false);
            let v = expanded.text;
            if !v.starts_with('/') {
                cx.error(
                    path.span(),
                    "path must start with `/`",
                    Some(format!("write path = \"/{v}\", or use url for a full URL")),
                );
            }
            HttpTarget::Path { scheme, path: v }
        }
        (None, Some(url)) => {
            let expanded = cx.expand(url);
            let v = expanded.text.clone();
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                cx.err(url.span(), "url must start with http:// or https://");
            }
            cx.control_chars(url, &expanded, "url", false);
            if let Some((at, message)) = url_port_problem(&v) {
                cx.error_in(
                    url,
                    &expanded,
                    at,
                    message,
                    Some("a port is a number from 1 to 65535, or {port} for the instance's".into()),
                );
            }
            cx.template(url, &v, PROBE_PLACEHOLDERS, false);
            if p.scheme.is_some() {
                cx.err(url.span(), "give the scheme inside url, not as `scheme`");
            }
            HttpTarget::Url(v)
        }
        (Some(_), Some(url)) => {
            cx.error(
                url.span(),
                "give either path or url, not both",
                Some(
                    "path is joined to the instance's address and port; url is used as written"
                        .into(),
                ),
            );
            HttpTarget::Url(String::new())
        }
        (None, None) => {
            cx.error(
                p.name.span(),
                format!("http probe \"{name}\" has neither `path` nor `url`"),
                Some("add path = \"/health\" (or a full url)".into()),
            );
            HttpTarget::Url(String::new())
        }
    };
    let headers = match &p.headers {
        None => Vec::new(),
        Some(h) => h
            .get_ref()
            .iter()
            .map(|(k, v)| {
                if !valid_header_name(k) {
                    cx.error(
                        v.span(),
                        format!("{k:?} is not a header name"),
                        Some("a header name is letters, digits and any of !#$%&'*+-.^_`|~".into()),
                    );
                }
                let expanded = cx.expand(v);
                cx.control_chars(v, &expanded, &format!("header {k}"), true);
                (k.clone(), expanded.text)
            })
            .collect(),
    };
    let expect_status = match &p.expect_status {
        None => vec![StatusRange { lo: 200, hi: 399 }],
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.err(
                    list.span(),
                    "expect_status is empty; list at least one status",
                );
            }
            list.get_ref()
                .iter()
                .filter_map(|v| status_range(cx, v))
                .collect()
        }
    };
    let conditions = conditions(cx, &p.conditions, HTTP_READS);
    HttpProbe {
        method,
        target,
        headers,
        expect_status,
        body_contains: cx.opt_string(&p.body_contains),
        conditions,
        insecure_tls: p.insecure_tls.as_ref().is_some_and(|b| *b.get_ref()),
    }
}

/// What an HTTP probe's conditions read.
const HTTP_READS: &[&str] = &["[STATUS]", "[RESPONSE_TIME]", "[BODY]"];

/// A probe's `conditions`, each parsed, reading only the placeholders
/// named in `reads`; errors point at the character.
fn conditions(
    cx: &mut Ctx<'_>,
    list: &Option<S<Vec<S<String>>>>,
    reads: &[&str],
) -> Vec<Condition> {
    let Some(list) = list else {
        return Vec::new();
    };
    let example = if reads.contains(&"[VALUE]") {
        "conditions look like [VALUE] < 0.05, [VALUE] >= 1"
    } else {
        "conditions look like [STATUS] == 200, [BODY].status == \"ok\", [RESPONSE_TIME] < 500"
    };
    list.get_ref()
        .iter()
        .filter_map(|c| {
            let v = cx.expand(c);
            let cond = match Condition::parse(&v.text) {
                Ok(cond) => cond,
                Err(e) => {
                    cx.error_in(
                        c,
                        &v,
                        e.column.saturating_sub(1),
                        format!("condition does not parse: {}", e.message),
                        Some(example.into()),
                    );
                    return None;
                }
            };
            if let Some(p) = cond
                .placeholders()
                .into_iter()
                .find(|p| !reads.contains(&p.name()))
            {
                let at = v.text.find(p.name()).unwrap_or(0);
                let at = v.text[..at].chars().count();
                cx.error_in(
                    c,
                    &v,
                    at,
                    format!(
                        "this probe has no {}; it reads {}",
                        p.name(),
                        reads.join(", ")
                    ),
                    Some(example.into()),
                );
                return None;
            }
            Some(cond)
        })
        .collect()
}

/// Whether `s` is an HTTP header name (an RFC 9110 token).
fn valid_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// What is wrong with the port of `url` (`scheme://[user@]host[:port]/…`),
/// with the index (in characters) where the port starts. A port that is or
/// holds a placeholder is left to the run, which fills it in.
fn url_port_problem(url: &str) -> Option<(usize, String)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_at = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_at..];
    let colon = if host_port.starts_with('[') {
        let close = host_port.find(']')?;
        host_port[close + 1..]
            .starts_with(':')
            .then_some(close + 1)?
    } else {
        host_port.rfind(':')?
    };
    let port = &host_port[colon + 1..];
    if port.is_empty() || port.contains('{') {
        return None;
    }
    let at = url[..start + host_at + colon + 1].chars().count();
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Some((at, format!("`{port}` in url is not a port")));
    }
    match port.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => None,
        _ => Some((at, format!("port {port} in url is out of range"))),
    }
}

fn status_range(cx: &mut Ctx<'_>, v: &S<toml::Value>) -> Option<StatusRange> {
    let ok = |n: i64| (100..=599).contains(&n);
    match v.get_ref() {
        toml::Value::Integer(n) if ok(*n) => Some(StatusRange {
            lo: *n as u16,
            hi: *n as u16,
        }),
        toml::Value::String(s) => {
            let parsed = s.split_once('-').and_then(|(a, b)| {
                let (a, b) = (a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?);
                (ok(a) && ok(b) && a <= b).then_some(StatusRange {
                    lo: a as u16,
                    hi: b as u16,
                })
            });
            if parsed.is_none() {
                cx.error(
                    v.span(),
                    format!("\"{s}\" is not a status range"),
                    Some("write a status like 200 or a range like \"200-299\"".into()),
                );
            }
            parsed
        }
        other => {
            cx.error(
                v.span(),
                format!("{other} is not an HTTP status"),
                Some("write a status between 100 and 599, or a range like \"200-299\"".into()),
            );
            None
        }
    }
}
