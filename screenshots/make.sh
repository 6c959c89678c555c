#!/usr/bin/env bash
# Regenerates screenshots/fleet.png from a real `rollguard demo` in tmux.
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
tmux send-keys -t "$session" q
echo "wrote screenshots/fleet.png"
