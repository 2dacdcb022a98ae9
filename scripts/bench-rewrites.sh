#!/usr/bin/env bash
# The rewrite phase of workload (f) alone, where a rewrite's own cost shows:
# 2,000 files of 4-64 KiB made before the agent starts, then each rewritten
# in place ("wb") with new content made beforehand, timed from inside the
# writer. Arms in turn, ROUNDS times: the listener that only answers, this
# build, and BEFORE (an older mamori) if given. Prints the phase's seconds
# and, per thread of the agent, the CPU it took meanwhile (schedstat, ns).
# Usage: sudo [ROUNDS=N] [BEFORE=BIN] scripts/bench-rewrites.sh
set -euo pipefail
source "$(dirname "$0")/common.sh" rewrites
comparisons

# Per thread of process $1: "name=ns" lines.
threads() { for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm")=$(cut -d' ' -f1 "$t/schedstat")"; done; }

run=0
arm() {
  local kind=$1 agent=$2 pid
  run=$((run + 1))
  local dir="$work/$kind$run" state="$work/state$run"
  old_files "$dir"
  sync
  if [ "$kind" = listener ]; then
    "$floor_bin" "$dir" >"$dir.ready" &
    pid=$!
    until [ -s "$dir.ready" ]; do sleep 0.05; done
  else
    "$agent" run --protect "$dir" --state "$state" >/dev/null 2>"$work/agent$run.log" &
    pid=$!
    until "$agent" status --state "$state" >/dev/null 2>&1; do sleep 0.1; done
  fi
  threads "$pid" >"$work/threads$run"
  local seconds
  seconds=$(python3 - "$dir" <<'PY'
import os, random, sys, time
random.seed(13)
new = [os.urandom(random.randint(4, 64) * 1024) for _ in range(2000)]
start = time.perf_counter()
for i, content in enumerate(new):
    with open(os.path.join(sys.argv[1], f"o{i}.dat"), "wb") as f:
        f.write(content)
print(f"{time.perf_counter() - start:.3f}")
PY
  )
  local cpu
  cpu=$(threads "$pid" | awk -F= 'NR == FNR { t[$1] = $2; next } { printf " %s %.0f ms", $1, ($2 - t[$1]) / 1e6 }' "$work/threads$run" -)
  echo "$kind: ${seconds} s;$cpu"
  kill "$pid"
  wait "$pid" || true
}

for _ in $(seq "${ROUNDS:-3}"); do
  arm listener -
  arm mamori "$bin"
  if [ -n "$before_bin" ]; then arm before "$before_bin"; fi
done
