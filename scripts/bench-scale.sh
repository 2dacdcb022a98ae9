#!/usr/bin/env bash
# What protecting a large tree costs: FILES files (default 1,000,000) of
# 0-4 KiB in DIRS folders (default 50,000), on a new loop-mounted ext4.
# Reports, in one run:
#   - the time from starting the agent until protection is active (every
#     folder marked: `mamori status` answers);
#   - the agent's RSS once active, and after reading every file once;
#   - kernel memory: the slab caches of fanotify's marks and of what held
#     descriptors keep (files, dentries, inodes), before the agent, once
#     active, and after the read;
#   - reading every file once (tar) without a listener, under the listener
#     that only answers (crates/sensor/examples/answer_only.rs) and with
#     mamori, as ratios.
# Usage: sudo [FILES=N] [DIRS=N] scripts/bench-scale.sh
set -euo pipefail
source "$(dirname "$0")/common.sh" scale
cargo build --release -q -p mamori-sensor --example answer_only
floor_bin=$PWD/target/release/examples/answer_only
files=${FILES:-1000000}
dirs=${DIRS:-50000}

truncate -s 40G "$work/fs.img"
mkfs.ext4 -q -F -N $((files + dirs + 100000)) "$work/fs.img"
mkdir "$work/fs"
mount -o loop "$work/fs.img" "$work/fs"
scratch=$work
trap 'kill $(jobs -p) 2>/dev/null || true; wait; umount "$scratch/fs" || umount -l "$scratch/fs"; rm -rf "$scratch"' EXIT
tree=$work/fs/tree

echo "making $files files in $dirs folders..."
python3 - "$tree" "$files" "$dirs" <<'PY'
import os, random, sys
root, files, dirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(5)
blob = os.urandom(4096)
for d in range(dirs):
    os.makedirs(os.path.join(root, f"g{d // 1000:03d}", f"d{d:05d}"), exist_ok=True)
for i in range(files):
    d = i % dirs
    with open(os.path.join(root, f"g{d // 1000:03d}", f"d{d:05d}", f"f{i}.txt"), "wb") as f:
        f.write(blob[: random.randint(0, 4096)])
PY
sync

slab() {
  # All slab memory (marks share merged caches with others, so they show
  # only in the total), and the caches that held descriptors keep, in KiB.
  awk '/^Slab:/ {printf "Slab=%d KiB ", $2}' /proc/meminfo
  awk '$1 ~ /^(filp|dentry|ext4_inode_cache)$/ {
         kib[$1] = $2 * $4 / 1024 } END { for (c in kib) printf "%s=%d KiB ", c, kib[c]; print "" }' /proc/slabinfo
}
rss() { awk '/^VmRSS/ {print $2 " KiB"}' "/proc/$1/status"; }
read_all() { tar cf - -C "$tree" . | cat >/dev/null; }
timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); python3 -c "print(round($e - $s, 2))"; }

# Warm: the tree is read once untimed, so every arm finds it in the page
# cache (a first read under mamori means the first since the agent started).
read_all
echo "slab before the agent: $(slab)"
without=$(timed read_all)

"$floor_bin" "$tree" >"$work/floor.ready" &
fpid=$!
until [ -s "$work/floor.ready" ]; do sleep 0.1; done
floor=$(timed read_all)
kill "$fpid"; wait "$fpid" || true

start=$(date +%s.%N)
"$bin" run --protect "$tree" --state "$work/state" >/dev/null 2>"$work/agent.log" &
apid=$!
until "$bin" status --state "$work/state" >/dev/null 2>&1; do sleep 0.05; done
active=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
echo "protection active after $active s; agent RSS $(rss $apid); slab $(slab)"
ticks=$(awk '{print $14 + $15}' "/proc/$apid/stat")
with=$(timed read_all)
cpu=$(awk -v t="$ticks" '{print ($14 + $15 - t) / 100}' "/proc/$apid/stat")
sleep 1
echo "after reading every file: agent RSS $(rss $apid); slab $(slab)"
"$bin" status --state "$work/state" | grep vault
kill "$apid"; wait "$apid" || true
python3 - "$without" "$floor" "$with" "$cpu" <<'PY'
import sys
w, f, m, cpu = map(float, sys.argv[1:])
print(f"first read of every file: without {w:.2f} s, listener that only answers {f:.2f} s, mamori {m:.2f} s; "
      f"mamori {m / w:.2f}x, listener {f / w:.2f}x, mamori over the listener {m / f:.2f}x; agent CPU {cpu:.2f} s")
PY
