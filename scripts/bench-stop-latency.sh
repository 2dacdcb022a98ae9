#!/usr/bin/env bash
# Time from the deciding event to every process of the actor suspended, over
# repeated real attacks (default 30, alternating a single-process and a
# process-per-file family). Prints p50/p99/max from the incidents' stop_latency_us.
# Usage: sudo scripts/bench-stop-latency.sh [RUNS]
set -euo pipefail
runs=${1:-30}
source "$(dirname "$0")/common.sh" bench
printf '[canary]\nenabled = false\n' > "$work/cfg.toml"
lat=()
for i in $(seq 1 "$runs"); do
  fam=overwrite; [ $((i % 2)) -eq 0 ] && fam=process-per-file
  d=$work/run$i; mkdir -p "$d"
  "$bin" sim corpus "$d/data" --docs 30 --large 0 >/dev/null
  "$bin" run --protect "$d/data" --state "$d/state" --config "$work/cfg.toml" 2>"$d/agent.log" &
  agent=$!
  until "$bin" status --state "$d/state" >/dev/null 2>&1; do sleep 0.05; done
  "$bin" sim run "$fam" "$d/data" >/dev/null 2>&1 &
  sim=$!
  for _ in $(seq 1 600); do
    n=$("$bin" incidents --json --state "$d/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [ "$n" -gt 0 ] && break; sleep 0.1
  done
  us=$("$bin" incidents --json --state "$d/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stop_latency_us"])')
  id=$("$bin" incidents --json --state "$d/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  "$bin" kill "$id" --state "$d/state" >/dev/null
  wait "$sim" 2>/dev/null || true
  kill "$agent"; wait "$agent" || true
  lat+=("$us")
  echo "run $i ($fam): ${us} us"
done
printf '%s\n' "${lat[@]}" | python3 -c '
import sys
v = sorted(int(x) for x in sys.stdin)
pick = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
print(f"stop latency over {len(v)} attacks: p50 {pick(0.5)/1000:.2f} ms, p99 {pick(0.99)/1000:.2f} ms, max {v[-1]/1000:.2f} ms")'
