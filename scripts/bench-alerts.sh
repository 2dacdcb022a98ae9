#!/usr/bin/env bash
# How fast an incident reaches the alert outputs, and whether telling costs
# the stop anything. One run, two agents in turn on the same kind of folder:
# first with no output, then with syslog (UDP), the ECS file, a webhook, and
# two outputs that are down (CEF over TCP to a closed port; Elasticsearch on a
# server that accepts and never answers). RUNS attacks each (default 30).
# Prints p50/p99/max of the stop latency for both, and of the time from the
# verdict to each output receiving the incident.
# Usage: sudo scripts/bench-alerts.sh [RUNS]
set -euo pipefail
runs=${1:-30}
source "$(dirname "$0")/common.sh" alerts
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web=$(port); udp=$(port); hang=$(port); closed=$(port)
python3 scripts/alert-sink.py "$work/received.jsonl" "$web" "$udp" "$hang" "$work/alerts.json" &
printf '[canary]\nenabled = false\n' > "$work/none.toml"
cat > "$work/all.toml" <<TOML
[canary]
enabled = false
[alerts]
retry_max_seconds = 5
[alerts.syslog]
url = "udp://127.0.0.1:$udp"
[alerts.ecs]
path = "$work/alerts.json"
[alerts.webhook]
url = "http://127.0.0.1:$web/hook"
[alerts.cef]
url = "tcp://127.0.0.1:$closed"
timeout_seconds = 2
[alerts.elasticsearch]
url = "http://127.0.0.1:$hang"
timeout_seconds = 2
TOML

attack_all() { # $1 = config name
  local d=$work/$1
  mkdir -p "$d"
  for i in $(seq 1 "$runs"); do "$bin" sim corpus "$d/data/run$i" --docs 20 --large 0 >/dev/null; done
  "$bin" run --protect "$d/data" --state "$d/state" --config "$work/$1.toml" 2>"$d/agent.log" &
  local agent=$!
  until "$bin" status --state "$d/state" >/dev/null 2>&1; do sleep 0.05; done
  for i in $(seq 1 "$runs"); do
    "$bin" sim run overwrite "$d/data/run$i" >/dev/null 2>&1 &
    local sim=$!
    for _ in $(seq 1 600); do
      n=$("$bin" incidents --json --state "$d/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
      [ "$n" -ge "$i" ] && break; sleep 0.1
    done
    id=$("$bin" incidents --json --state "$d/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
    "$bin" kill "$id" --state "$d/state" >/dev/null
    wait "$sim" 2>/dev/null || true
  done
  sleep 3 # the last incident's alerts
  kill "$agent"; wait "$agent" || true
  "$bin" incidents --json --state "$d/state" > "$d/incidents.json"
}
attack_all none
attack_all all
python3 - "$work" <<'PY'
import json, sys, datetime
work = sys.argv[1]
pick = lambda v, q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
def line(name, v, unit="ms"):
    v = sorted(v)
    print(f"{name:<34} n={len(v):<3} p50 {pick(v,.5):8.2f} {unit}  p99 {pick(v,.99):8.2f} {unit}  max {v[-1]:8.2f} {unit}")
for cfg in ("none", "all"):
    incs = json.load(open(f"{work}/{cfg}/incidents.json"))
    line(f"stop latency, outputs: {cfg}", [i["stop_latency_us"] / 1000 for i in incs])
incs = {i["id"]: datetime.datetime.fromisoformat(i["detected_at"].replace("Z", "+00:00")).timestamp()
        for i in json.load(open(f"{work}/all/incidents.json"))}
got = {}
for l in open(f"{work}/received.jsonl"):
    r = json.loads(l)
    if r["incident"] in incs:
        got.setdefault(r["output"], []).append((r["t"] - incs[r["incident"]]) * 1000)
for out in ("syslog", "ecs", "webhook"):
    v = got.get(out, [])
    if len(v) < len(incs):
        print(f"{out}: only {len(v)} of {len(incs)} incidents arrived")
    if v:
        line(f"verdict to {out}", v)
PY
