//! The shell the process driver runs on a slot's host: the slot's files
//! as shell variables, the functions that tell our process by its pid and
//! start time and stop its group ([`PRELUDE`]), the wrapper a started
//! process runs before it becomes the release ([`WRAP`]), the start and
//! status scripts, and the markers they print.

use super::Process;
use crate::driver::Slot;
use crate::shell::quote;

/// `rg_stat PID`, shared by [`PRELUDE`] and [`WRAP`].
macro_rules! rg_stat_fn {
    () => {
        r#"# rg_stat PID: whether PID is a live (not zombie) process; sets rg_start to
# a token that tells apart two processes that had the same pid.
rg_stat() {
  rg_start=
  if [ "$rg_proc" = 1 ]; then
    { read -r rg_line < "/proc/$1/stat"; } 2>/dev/null || return 1
    rg_rest=${rg_line##*) }
    set -f; set -- $rg_rest; set +f
    case ${1:-} in Z|X|x|'') return 1 ;; esac
    rg_start=${20:-}
    [ -n "$rg_start" ]
    return
  fi
  kill -0 "$1" 2>/dev/null || return 1
  rg_st=$(ps -o stat= -p "$1" 2>/dev/null) || rg_st=
  case $rg_st in *Z*) return 1 ;; esac
  rg_start=$(ps -o lstart= -p "$1" 2>/dev/null | tr -d ' ') || rg_start=
  return 0
}

"#
    };
}

/// Shell functions shared by every script. Uses only POSIX `sh`, `kill`,
/// `mv`, `rm`, `tail`, `wc` and `sleep`, plus `/proc` or `ps`. Expects the
/// variables set by [`Process::vars_script`].
pub(super) const PRELUDE: &str = concat!(
    r#"
rg_proc=0
[ -r /proc/self/stat ] && rg_proc=1

rg_sleep() { sleep "${1:-0.1}" 2>/dev/null || sleep 1; }

"#,
    rg_stat_fn!(),
    r#"# rg_group PGID: whether a live process is in process group PGID.
rg_group() {
  if [ "$rg_proc" = 1 ]; then
    rg_g=$1
    for rg_f in /proc/[0-9]*/stat; do
      { read -r rg_line < "$rg_f"; } 2>/dev/null || continue
      rg_rest=${rg_line##*) }
      set -f; set -- $rg_rest; set +f
      [ "${3:-}" = "$rg_g" ] || continue
      case ${1:-} in Z|X|x) continue ;; esac
      return 0
    done
    return 1
  fi
  kill -0 "-$1" 2>/dev/null
}

# rg_owned: whether the pidfile names a live process that is the one we
# started (same start time); sets rg_pid and rg_want.
rg_owned() {
  rg_pid=
  rg_want=
  { read -r rg_pid < "$pidf"; } 2>/dev/null || { rg_pid=; return 1; }
  case $rg_pid in ''|*[!0-9]*) rg_pid=; return 1 ;; esac
  [ "$rg_pid" -gt 1 ] 2>/dev/null || { rg_pid=; return 1; }
  [ "$rg_pid" != "$$" ] || { rg_pid=; return 1; }
  { read -r rg_want < "$startf"; } 2>/dev/null || rg_want=
  [ -n "$rg_want" ] || return 1
  rg_stat "$rg_pid" || return 1
  [ "$rg_start" = "$rg_want" ]
}

# rg_running PID: our leader PID, or any process of its group, still runs.
# (The kernel does not reuse a pid while a group of that number exists.)
rg_running() {
  if rg_stat "$1" && [ "$rg_start" = "$rg_want" ]; then
    return 0
  fi
  rg_group "$1"
}

# rg_signal SIG PID: signals the group PID leads, or else the process if it
# is still our leader.
rg_signal() {
  kill "-$1" "-$2" 2>/dev/null && return 0
  if rg_stat "$2" && [ "$rg_start" = "$rg_want" ]; then
    kill "-$1" "$2" 2>/dev/null
  fi
}

# rg_stop: stops what runs on the slot (if it is ours) and moves the
# version file aside.
rg_stop() {
  if rg_owned; then
    rg_t=$rg_pid
    rg_how=term
    rg_signal TERM "$rg_t"
    rg_i=0
    while rg_running "$rg_t" && [ "$rg_i" -lt "$ticks" ]; do
      rg_sleep
      rg_i=$((rg_i + 1))
    done
    if rg_running "$rg_t"; then
      rg_how=kill
      rg_signal KILL "$rg_t"
      rg_i=0
      while rg_running "$rg_t" && [ "$rg_i" -lt 50 ]; do
        rg_sleep
        rg_i=$((rg_i + 1))
      done
      if rg_running "$rg_t"; then
        echo "rollguard-unkillable $rg_t"
        return 5
      fi
    fi
    echo "rollguard-stopped $rg_t $rg_how"
  else
    echo "rollguard-not-running"
  fi
  rm -f "$pidf" "$startf"
  if [ -f "$verf" ]; then
    mv -f "$verf" "$lastf" || return 6
  fi
  return 0
}
"#
);

/// What the started process runs before it becomes the release (`exec`):
/// it records itself (start time, version, then pid) in the slot's files.
/// The process keeps its pid and start time across `exec`, so from the
/// moment the release runs its files say so, even when whoever started it
/// dies mid-start. Arguments: pidfile, start file, version file, version,
/// run line.
pub(super) const WRAP: &str = concat!(
    r#"pidf=$1 startf=$2 verf=$3 version=$4 run=$5
rg_proc=0
[ -r /proc/self/stat ] && rg_proc=1
"#,
    rg_stat_fn!(),
    r#"rg_stat "$$" || exit 121
{
  printf '%s\n' "$rg_start" > "$startf.tmp" && mv -f "$startf.tmp" "$startf" &&
  printf '%s\n' "$version" > "$verf.tmp" && mv -f "$verf.tmp" "$verf" &&
  printf '%s\n' "$$" > "$pidf.tmp" && mv -f "$pidf.tmp" "$pidf"
} || { rm -f "$pidf" "$startf" "$verf" "$pidf.tmp" "$startf.tmp" "$verf.tmp"; exit 122; }
exec sh -c "$run"
"#
);

/// The start script's body; expects `run`, `version` and the slot variables.
pub(super) const START: &str = r#"
mkdir -p "$dir" || exit 10
rg_stop || exit $?
: >> "$logf" || exit 10
printf '%s rollguard: starting %s\n' "$(date '+%Y-%m-%dT%H:%M:%S%z' 2>/dev/null)" "$version" >> "$logf"
rg_off=$(wc -c < "$logf" | tr -d ' ')
case $rg_off in ''|*[!0-9]*) rg_off=0 ;; esac
rg_pre=
if command -v nohup >/dev/null 2>&1; then rg_pre=nohup; fi
if command -v setsid >/dev/null 2>&1; then rg_pre="setsid $rg_pre"; fi
$rg_pre sh -c "$rg_wrap" rollguard-run "$pidf" "$startf" "$verf" "$version" "$run" < /dev/null >> "$logf" 2>&1 &
rg_i=0
while [ ! -s "$pidf" ] && [ "$rg_i" -lt 100 ]; do
  rg_sleep
  rg_i=$((rg_i + 1))
done
pid=
{ read -r pid < "$pidf"; } 2>/dev/null || pid=
case $pid in
  ''|*[!0-9]*)
    echo "rollguard-no-pid"
    tail -c "+$((rg_off + 1))" "$logf" 2>/dev/null | tail -n TAIL
    exit 4
    ;;
esac
rg_sleep 0.2
if ! rg_owned; then
  rm -f "$pidf" "$startf" "$verf"
  echo "rollguard-died"
  tail -c "+$((rg_off + 1))" "$logf" 2>/dev/null | tail -n TAIL
  exit 3
fi
echo "rollguard-started $pid"
"#;

/// The status script's body: prints whether our process runs, and its
/// pid and version.
pub(super) const STATUS: &str = r#"
if rg_owned; then
  echo "rollguard-running $rg_pid"
  rg_v=
  { read -r rg_v < "$verf"; } 2>/dev/null || rg_v=
  echo "rollguard-version $rg_v"
else
  echo "rollguard-not-running"
fi
"#;

impl Process {
    /// Shell assignments of the slot's file paths and the grace in ticks.
    pub(super) fn vars_script(&self, slot: Slot<'_>) -> String {
        let run_dir = self.spec.run_dir.trim_end_matches('/');
        let run_dir = if run_dir.is_empty() { "/" } else { run_dir };
        // `~/x` means the remote user's home; quoting would keep the `~`.
        let dir = match run_dir.strip_prefix("~/") {
            Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
            None if run_dir == "~" => "\"$HOME\"".into(),
            None => quote(run_dir),
        };
        let ticks = self.spec.grace.as_millis().div_ceil(100);
        format!(
            "dir={dir}/{app}\nbase={base}\nticks={ticks}\n\
             pidf=\"$dir/$base.pid\"\nstartf=\"$dir/$base.start\"\n\
             verf=\"$dir/$base.version\"\nlastf=\"$dir/$base.last-version\"\n\
             logf=\"$dir/$base.log\"\n",
            app = quote(&slot.app.name),
            base = quote(&format!("{}-{}", slot.instance.name, slot.side)),
        )
    }
}

/// The rest of the first stdout line that starts with `name` (and a space
/// or nothing), trimmed.
pub(super) fn marker<'a>(stdout: &'a str, name: &str) -> Option<&'a str> {
    stdout.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if rest.is_empty() || rest.starts_with(' ') {
            Some(rest.trim())
        } else {
            None
        }
    })
}

/// The log lines after the `rollguard-died`/`rollguard-no-pid` line.
pub(super) fn log_tail(stdout: &str) -> String {
    let mut lines = stdout.lines();
    for l in lines.by_ref() {
        if l == "rollguard-died" || l == "rollguard-no-pid" {
            break;
        }
    }
    let tail: Vec<&str> = lines.collect();
    tail.join("\n").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_log_tail_survive_odd_output() {
        let out = "banner\nrollguard-stopped 12 kill\nrollguard-started 13\n";
        assert_eq!(marker(out, "rollguard-started"), Some("13"));
        assert_eq!(marker(out, "rollguard-stopped"), Some("12 kill"));
        assert_eq!(marker(out, "rollguard-start"), None);
        assert_eq!(marker("", "x"), None);
        assert_eq!(log_tail("rollguard-died\na\nb\n"), "a\nb");
        assert_eq!(log_tail("rollguard-died\n"), "");
        assert_eq!(log_tail("garbage"), "");
    }
}
