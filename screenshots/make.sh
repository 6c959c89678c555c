#!/usr/bin/env bash
# Regenerates the screenshots from a real `rollguard demo` in tmux:
# fleet.png (the fleet view once search-2 has had a bad spell) and
# rollout.png (payments' view with its rollback armed, about to be fired).
# Needs tmux, python3 with Pillow and fonts-dejavu-core.
set -euo pipefail
# The Debian python3 has python3-pil; a python3 earlier in PATH may not.
py=/usr/bin/python3; [ -x "$py" ] || py=python3
cd "$(dirname "$0")/.."
cargo build --release
session="rg-shot-$$"
tmux new-session -d -s "$session" -x 100 -y 30
trap 'tmux kill-session -t "$session" 2>/dev/null || true' EXIT
tmux send-keys -t "$session" "./target/release/rollguard demo" Enter
sleep "${WAIT:-30}"     # long enough for search-2's first bad spell
tmux capture-pane -e -p -t "$session" > /tmp/rollguard-fleet.ans
"$py" screenshots/ansi2png.py /tmp/rollguard-fleet.ans screenshots/fleet.png 100 30
echo "wrote screenshots/fleet.png"

# The banner names the demo's `rg` script; deploy a bad v3 of payments
# with it. payments asks before it rolls back: wait for the armed rollback,
# then press f, type a reason and move to Fire, as an operator would.
rg=$(tmux capture-pane -p -t "$session" | grep -o '/[^ `]*/rg' | head -1)
tmux new-window -d -t "$session" "$rg deploy payments v3 --yes >/dev/null 2>&1"
tmux send-keys -t "$session:0" j Enter  # open payments (the second app)
for _ in $(seq 90); do
  tmux capture-pane -p -t "$session:0" | grep -q 'rollback of v3' && break
  sleep 1
done
tmux send-keys -t "$session:0" f
sleep 1
tmux send-keys -t "$session:0" -l "v3 fails its health checks"
tmux send-keys -t "$session:0" Tab      # from Cancel to Fire
sleep 1
tmux capture-pane -e -p -t "$session:0" > /tmp/rollguard-rollout.ans
"$py" screenshots/ansi2png.py /tmp/rollguard-rollout.ans screenshots/rollout.png 100 30
echo "wrote screenshots/rollout.png"
tmux send-keys -t "$session:0" Enter    # fire it
sleep 20                                # let the rollback finish
tmux send-keys -t "$session:0" q
