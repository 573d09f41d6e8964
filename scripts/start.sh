#!/usr/bin/env bash
# `npm start [-- flags]`: set up what is missing, build, and run the daemon in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
npm run -s build

# npm (10 and 11) does not pass SIGTERM on to the script it runs: killing `npm start` left the
# daemon running without it. So the daemon runs as this script's child: a signal this script
# gets is passed on, and when the npm process that started it is gone, the daemon is stopped
# the way SIGTERM stops it (calls in flight finish; containers keep running).
# scripts/daemon-node-flags: a 2 MB young generation keeps the daemon's RSS ~35 MB lower (fresh
# 114 -> 76 MiB, 133 -> 94 MiB with 100 pods, density bench) at no measured CPU cost; a 4x
# interrupt budget leaves code that runs a few times per pod to the interpreter and baseline
# code instead of V8's optimising compiler; --no-turbofan keeps that compiler off while the
# daemon's modules load, and crisp turns it on once they are (src/cli/optimising-compiler.ts;
# docs/architecture.md, "The daemon's own memory").
read -r -a node_flags < scripts/daemon-node-flags
node "${node_flags[@]}" dist/src/cli/main.js daemon "$@" &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null || true' TERM INT HUP
if [[ -n "${npm_lifecycle_event:-}" ]]; then
  # npm -> sh -c "bash scripts/start.sh" -> this script
  npm_pid=$(ps -o ppid= -p "$PPID" | tr -d ' ')
  (
    while kill -0 "$npm_pid" 2>/dev/null && kill -0 "$daemon" 2>/dev/null; do sleep 1; done
    kill -TERM "$daemon" 2>/dev/null || true
  ) &
fi
status=0
while kill -0 "$daemon" 2>/dev/null; do
  wait "$daemon" && status=0 || status=$?
done
exit "$status"
