#!/usr/bin/env bash
# Peak memory (VmHWM) of the agent protecting 100,000 files in 1,000 folders,
# after every file has been opened once and a tenth rewritten.
# Usage: sudo scripts/bench-rss.sh [FILES]
set -euo pipefail
files=${1:-100000}
source "$(dirname "$0")/common.sh" rss
python3 - "$work/data" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"dept{i % 1000:04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"doc{i}.txt"), "w") as f:
        f.write(f"record {i}: quarterly figures and customer notes\n" * 20)
PY
"$bin" run --protect "$work/data" --state "$work/state" 2>"$work/agent.log" &
agent=$!
until "$bin" status --state "$work/state" >/dev/null 2>&1; do sleep 0.1; done
echo "agent active on $files files; RSS after start: $(grep VmRSS /proc/$agent/status | awk '{print $2}') KiB"
find "$work/data" -type f -name '*.txt' -print0 | xargs -0 cat > /dev/null
find "$work/data" -type f -name 'doc*0.txt' -print0 | xargs -0 sed -i 's/quarterly/annual/'
sleep 1
echo "after reading every file and rewriting a tenth: VmHWM $(grep VmHWM /proc/$agent/status | awk '{print $2}') KiB, VmRSS $(grep VmRSS /proc/$agent/status | awk '{print $2}') KiB"
echo "incidents: $("$bin" incidents --json --state "$work/state" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
kill "$agent"; wait "$agent" || true
