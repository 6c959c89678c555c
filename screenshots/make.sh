#!/usr/bin/env bash
# Regenerates the screenshots from a real `rollguard demo` in tmux, driven
# by keys as an operator would:
#   fleet.png    the fleet view once search-2 has had a bad spell
#   deploy.png   the question before `:deploy checkout v3`: the plan
#   rollout.png  checkout's Rollout view while v3 goes out
#   why.png      the same once v3 failed and was rolled back: the why card
#   app.png      checkout's app view: probes, releases, deployments
#   confirm.png  payments' armed rollback about to be fired, reason typed
#   canary.png   with Prometheus installed: catalog's canary of v4 rolled
#                back by its error ratio, the why card with both values
#   history.png  History: the two deployments
#   events.png   Events: the audit log of every app
#   logs.png     Logs: rollguard's log and payments' worker log
# Needs tmux, python3 with Pillow, fonts-dejavu-core and fonts-symbola (emoji).
set -euo pipefail
# The Debian python3 has python3-pil; a python3 earlier in PATH may not.
py=/usr/bin/python3; [ -x "$py" ] || py=python3
cd "$(dirname "$0")/.."
cargo build --release
session="rg-shot-$$"
tmux new-session -d -s "$session" -x 100 -y 30
trap 'tmux kill-session -t "$session" 2>/dev/null || true' EXIT

shot() { # NAME: the pane as it is now
  tmux capture-pane -e -p -t "$session" > "/tmp/rollguard-$1.ans"
  "$py" screenshots/ansi2png.py "/tmp/rollguard-$1.ans" "screenshots/$1.png" 100 30
  echo "wrote screenshots/$1.png"
}
key() { # KEYS...: one at a time (Esc then a letter would read as Alt)
  for k in "$@"; do tmux send-keys -t "$session" "$k"; sleep 0.4; done
}
wait_for() { # TEXT [SECONDS]
  for _ in $(seq "${2:-90}"); do
    tmux capture-pane -p -t "$session" | grep -qF -- "$1" && return 0
    sleep 1
  done
  echo "timed out waiting for: $1" >&2
  return 1
}
colon() { # LINE: typed on the `:` line
  key ":"
  tmux send-keys -t "$session" -l "$1"
  key Enter
}

tmux send-keys -t "$session" "./target/release/rollguard demo" Enter
sleep "${WAIT:-30}"     # long enough for search-2's first bad spell
shot fleet

colon "deploy checkout v3"
wait_for "> Cancel <"
tmux send-keys -t "$session" -l "v3: faster checkout"
sleep 0.5
shot deploy
key Tab Enter
wait_for "deployment 1 started"
sleep 2                 # the fleet view reads the rollout within a second
key R
sleep 6                 # a batch or two out
shot rollout
wait_for "WHY" 120
sleep 1
shot why

key Escape Enter        # checkout's app view
sleep 3
shot app
key Escape

key j                   # payments asks before it rolls back
colon "deploy payments v3"
wait_for "> Cancel <"
key Tab Enter
wait_for "rollback of v3" 120
key f
wait_for "Roll payments back now"
tmux send-keys -t "$session" -l "v3 fails its health checks"
key Tab                 # from Cancel to Fire
shot confirm
key Enter
wait_for "v3 rolled back" 90

if command -v prometheus >/dev/null; then
  colon "deploy catalog v4"
  wait_for "> Cancel <"
  tmux send-keys -t "$session" -l "v4: new catalog search"
  key Tab Enter
  wait_for "v4 rolled back" 90
  key H
  sleep 2
  key Enter             # the newest deployment: catalog's
  wait_for "compared" 20
  sleep 1
  shot canary
  key Escape Escape
fi

key H
sleep 2
shot history
key E
sleep 2
shot events
key Escape L
sleep 2
shot logs
key q
