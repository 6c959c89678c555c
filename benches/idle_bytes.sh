#!/usr/bin/env bash
# What an idle console costs a slow link: the bytes `rollguard demo` writes
# to its terminal per second while nobody presses a key and the demo probes
# every instance every second.
#
# It runs the demo in a tmux pane of a fixed size, waits until every app's
# row shows a sparkline and then for a warm-up, and counts every byte the
# pane receives for the measured seconds (`tmux pipe-pane`). With --ssh the
# console runs inside `ssh -t` to a private sshd on 127.0.0.1 (own keys in
# a temporary folder, like the tests' sshd), and the bytes the SSH
# connection carried to the client in the same seconds (encryption and
# framing included, from `ss -ti`) are printed as well.
#
# Usage: benches/idle_bytes.sh [--seconds N] [--warmup N] [--size WxH]
#                              [--ssh] [--bin PATH] [--runs N]
# Without --bin it builds and uses target/release/rollguard.
# Needs tmux; --ssh also needs sshd, ssh, ssh-keygen and ss.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 warmup=5 size=100x30 over_ssh=0 bin= runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --ssh) over_ssh=1; shift ;;
    --bin) bin=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "idle_bytes.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
width=${size%x*} height=${size#*x}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/rollguard
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=$(mktemp -d /tmp/rollguard-idle-bytes-XXXXXX)
session="rg-idle-$$"
sshd_pid=
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

sbin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; }; }

port=
if [ "$over_ssh" = 1 ]; then
  sshd=$(sbin sshd) || { echo "idle_bytes.sh: --ssh needs sshd" >&2; exit 2; }
  mkdir -p /run/sshd 2>/dev/null || true
  ssh-keygen -q -t ed25519 -N '' -C rollguard-bench -f "$work/host_key"
  ssh-keygen -q -t ed25519 -N '' -C rollguard-bench -f "$work/user_key"
  cp "$work/user_key.pub" "$work/authorized_keys"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + $$ % 20000)))
  cat > "$work/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel ERROR
EOF
  "$sshd" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
  sshd_pid=$!
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/host_key.pub")" > "$work/known_hosts"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
fi

# The bytes the SSH client has received on its connection to our sshd.
wire_bytes() {
  ss -tinH state established "( dport = :$port )" 2>/dev/null \
    | grep -o 'bytes_received:[0-9]*' | head -1 | cut -d: -f2
}

one_run() {
  local out="$work/pane.bytes" cmd
  rm -f "$out"
  cmd="TMPDIR=$work exec $bin demo"
  if [ "$over_ssh" = 1 ]; then
    cmd="exec ssh -t -p $port -i $work/user_key -o IdentitiesOnly=yes \
-o UserKnownHostsFile=$work/known_hosts -o StrictHostKeyChecking=yes \
-o LogLevel=ERROR 127.0.0.1 \"TMPDIR=$work exec $bin demo\""
  fi
  tmux new-session -d -s "$session" -x "$width" -y "$height" "$cmd"
  # Every app's row has a sparkline of several results.
  for _ in $(seq 120); do
    if tmux capture-pane -p -t "$session" 2>/dev/null | awk '
      /checkout|payments|search/ { n = gsub(/[▁▂▃▄▅▆▇█✖]/, ""); if (n >= 5) ok++ }
      END { exit ok >= 3 ? 0 : 1 }'; then break; fi
    sleep 0.5
  done
  sleep "$warmup"
  local wire0= wire1=
  [ "$over_ssh" = 1 ] && wire0=$(wire_bytes)
  tmux pipe-pane -o -t "$session" "cat >> $out"
  sleep "$seconds"
  tmux pipe-pane -t "$session"
  [ "$over_ssh" = 1 ] && wire1=$(wire_bytes)
  local bytes
  bytes=$(stat -c %s "$out" 2>/dev/null || echo 0)
  local line
  line=$(printf 'terminal: %d bytes in %d s = %d bytes/s at %s' \
    "$bytes" "$seconds" $((bytes / seconds)) "$size")
  if [ "$over_ssh" = 1 ] && [ -n "$wire0" ] && [ -n "$wire1" ]; then
    line+=$(printf '; ssh connection: %d bytes/s' $(((wire1 - wire0) / seconds)))
  fi
  echo "$line"
  tmux send-keys -t "$session" q
  for _ in $(seq 100); do
    tmux has-session -t "$session" 2>/dev/null || break
    sleep 0.1
  done
  tmux kill-session -t "$session" 2>/dev/null || true
}

for _ in $(seq "$runs"); do one_run; done
