#!/usr/bin/env bash
# Regenerates the screenshots from a real `rollguard demo` in tmux:
# fleet.png (the fleet view once checkout-2 has had a bad spell) and
# rollout.png (checkout's view while a bad v3 is deployed and rolled back).
# Needs tmux, python3 with Pillow and fonts-dejavu-core.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
session="rg-shot-$$"
tmux new-session -d -s "$session" -x 100 -y 30
trap 'tmux kill-session -t "$session" 2>/dev/null || true' EXIT
tmux send-keys -t "$session" "./target/release/rollguard demo" Enter
sleep "${WAIT:-40}"     # long enough for checkout-2's first bad spell
tmux capture-pane -e -p -t "$session" > /tmp/rollguard-fleet.ans
python3 screenshots/ansi2png.py /tmp/rollguard-fleet.ans screenshots/fleet.png 100 30
echo "wrote screenshots/fleet.png"

# The banner names the demo's `rg` script; deploy the bad v3 with it.
rg=$(tmux capture-pane -p -t "$session" | grep -o '/[^ `]*/rg' | head -1)
tmux new-window -d -t "$session" "$rg deploy checkout v3 --yes >/dev/null 2>&1"
tmux send-keys -t "$session:0" Enter    # open checkout (the first app)
sleep "${ROLLOUT_WAIT:-9}"              # v3 runs on some instances, or rolls back
tmux capture-pane -e -p -t "$session:0" > /tmp/rollguard-rollout.ans
python3 screenshots/ansi2png.py /tmp/rollguard-rollout.ans screenshots/rollout.png 100 30
echo "wrote screenshots/rollout.png"
sleep 20                                # let the rollback finish
tmux send-keys -t "$session:0" q
