#!/usr/bin/env bash
# Runs every check and test of rollguard against real components.
#
# On a fresh Debian machine, as root, it first installs what the tests need
# (openssh-server, nginx-light, haproxy, docker.io, tmux, busybox-static,
# socat, prometheus, python3-aiosmtpd, postgresql),
# starts a private dockerd (own data root and socket) when no Docker daemon
# answers, and stops it again at the end. It exports ROLLGUARD_REQUIRE_REAL=1
# so that a test whose real component is missing fails instead of skipping.
#
# Usage: tests/run.sh [extra arguments for cargo test, before its --]
# (ROLLGUARD_TEST_THREADS: how many integration tests run at once, 6)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

packages=(openssh-server nginx-light haproxy docker.io tmux busybox-static socat prometheus python3-aiosmtpd postgresql)
need_pkg() {
  case "$1" in
    openssh-server) [ -x /usr/sbin/sshd ] ;;
    nginx-light) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] ;;
    haproxy) command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] ;;
    docker.io) command -v dockerd >/dev/null ;;
    tmux) command -v tmux >/dev/null ;;
    socat) command -v socat >/dev/null ;;
    prometheus) command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] ;;
    # The store's tests start a private cluster with initdb and pg_ctl.
    postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ;;
    # The email tests' SMTP server (tests/smtp_server.py).
    python3-aiosmtpd) /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ;;
    # The docker tests copy busybox into images FROM scratch: it must be static.
    busybox-static) [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ;;
    *) echo "tests/run.sh: no check for package $1" >&2; return 1 ;;
  esac
}

missing=()
for p in "${packages[@]}"; do need_pkg "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 2
  fi
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages' own services are not wanted: tests start their own.
  for svc in nginx haproxy ssh docker containerd prometheus postgresql; do
    (service "$svc" stop || true) >/dev/null 2>&1
  done
fi
mkdir -p /run/sshd 2>/dev/null || true

dockerd_pid=""
docker_dir=""
cleanup() {
  if [ -n "$dockerd_pid" ]; then
    say "stopping the test dockerd"
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dockerd_pid" 2>/dev/null || true
    # containerd started by dockerd goes with it; unmount what is left.
    grep -o "$docker_dir[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$docker_dir" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  if command -v dockerd >/dev/null && [ "$(id -u)" -eq 0 ]; then
    docker_dir=$(mktemp -d /tmp/rollguard-dockerd.XXXXXX)
    say "starting a private dockerd in $docker_dir"
    dockerd --data-root "$docker_dir/root" --exec-root "$docker_dir/exec" \
      --pidfile "$docker_dir/dockerd.pid" -H "unix://$docker_dir/docker.sock" \
      >"$docker_dir/dockerd.log" 2>&1 &
    dockerd_pid=$!
    export DOCKER_HOST="unix://$docker_dir/docker.sock"
    for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    if ! docker info >/dev/null 2>&1; then
      echo "tests/run.sh: dockerd did not start; its log:" >&2
      tail -20 "$docker_dir/dockerd.log" >&2
      exit 1
    fi
  else
    echo "tests/run.sh: no Docker daemon answers and dockerd cannot be started here" >&2
  fi
fi

export ROLLGUARD_REQUIRE_REAL=1
export CARGO_TERM_COLOR=never

say "cargo fmt --check"
cargo fmt --check
say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
# The integration tests are one binary (tests/it). Most of them wait on real
# processes rather than compute, so they run side by side, more at once
# than there are cores. Those that run `rollguard demo` (the demo picks its
# ports itself: two at once could pick the same one) wait for each other;
# they run in a lane of their own, beside the rest, so that the ones
# waiting do not hold the other lane's threads.
threads=${ROLLGUARD_TEST_THREADS:-6}
demo_lane=(console_flows:: console_tmux:: demo::)
skip_demo_lane=()
for m in "${demo_lane[@]}"; do skip_demo_lane+=(--skip "$m"); done

say "cargo test (building)"
cargo test --no-run "$@"
say "cargo test --lib --bins"
cargo test --lib --bins "$@"
say "cargo test --doc"
cargo test --doc "$@"

lane_log=$(mktemp /tmp/rollguard-demo-lane.XXXXXX)
say "cargo test --test it: the demo lane (one at a time, log in $lane_log) beside the rest ($threads threads)"
cargo test --test it "$@" -- --test-threads=1 "${demo_lane[@]}" >"$lane_log" 2>&1 &
lane_pid=$!
rest=0
cargo test --test it "$@" -- --test-threads="$threads" "${skip_demo_lane[@]}" || rest=$?
lane=0
wait "$lane_pid" || lane=$?
say "the demo lane"
cat "$lane_log"
rm -f "$lane_log"
if [ "$rest" -ne 0 ] || [ "$lane" -ne 0 ]; then
  echo "tests/run.sh: integration tests failed (rest: exit $rest, demo lane: exit $lane)" >&2
  exit 1
fi
